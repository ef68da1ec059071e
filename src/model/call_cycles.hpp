// The operation-level call graph of a topology must be a DAG: a request that calls back into
// an operation already on its path would recurse forever in the twin.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "doppel/model/topology.hpp"

namespace doppel::model::detail {

struct OperationRef {
  std::string service;
  std::string operation;

  bool operator==(const OperationRef&) const = default;
};

// One call from a service operation to another service operation.
struct OperationCall {
  OperationRef caller;
  OperationRef callee;
  std::string pointer;  // where the call is written, for the error message
};

struct CallCycle {
  std::vector<OperationRef> path;    // starts and ends with the same operation
  std::string closing_call_pointer;  // the call that closes the cycle
};

// The first cycle a depth-first search meets, visiting operations in file order and calls in
// the order given, so the reported cycle does not depend on anything but the file.
std::optional<CallCycle> find_call_cycle(const Topology& topology,
                                         const std::vector<OperationCall>& calls);

}  // namespace doppel::model::detail
