// Deploy changes on the topology/v1 document: JSON pointers that may name array elements
// ("/services/cartservice/replicas", "/edges/cartservice->redis-cart/timeout_ms") resolved
// to plain ones, and the set / scale / remove operations applied to a document.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "doppel/faults/scenario.hpp"

namespace doppel::faults::detail {

struct ResolvedPointer {
  std::string pointer;  // plain RFC 6901 pointer, indices for names; "" on failure
  std::string error;    // why it does not resolve
  bool exists = false;  // false: the last token names a new member / "-" appends
};

// `allow_new_member`: the last token may name an object member that does not exist yet, or
// be "-" to append to an array (a set may add; a scale or a remove may not).
ResolvedPointer resolve_topology_pointer(const nlohmann::json& doc, std::string_view path,
                                         bool allow_new_member);

// Applies a change whose resolved_path is set; the caller has checked it resolves.
void apply_topology_change(nlohmann::json& doc, const TopologyChange& change);

}  // namespace doppel::faults::detail
