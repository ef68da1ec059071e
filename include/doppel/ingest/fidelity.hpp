// How closely a replay reproduces the traces it was built from (doppel build --check,
// docs/fidelity.md): per operation, observed vs simulated latency quantiles and the
// Kolmogorov-Smirnov distance between the two latency samples; per call, the mean number of
// calls per caller span on both sides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "doppel/ingest/reconstruct.hpp"

namespace doppel::ingest {

struct QuantilePair {
  double observed = 0.0;
  double simulated = 0.0;
  // (simulated - observed) / observed; 0 when both are 0, infinite when only observed is 0.
  double relative_error() const;
};

struct OperationFidelity {
  std::string operation;  // "service.operation"
  std::uint64_t observed_spans = 0;
  std::uint64_t simulated_spans = 0;  // 0: the replay never reached it
  QuantilePair p50;
  QuantilePair p90;
  QuantilePair p99;
  double ks_distance = 1.0;  // sup |F_observed - F_simulated|, 1 when one side is empty
};

struct CallCountFidelity {
  std::string caller;      // "service.operation"
  std::string callee;      // "component.operation"
  double observed = 0.0;   // mean calls per caller span
  double simulated = 0.0;  // 0 when the replay never made the call
};

struct FidelityReport {
  std::vector<OperationFidelity> operations;  // sorted by name
  std::vector<CallCountFidelity> calls;       // sorted by caller, callee
};

// Compares the observations of two reconstructions: `observed` from the user's traces,
// `simulated` from the traces of a replay of the topology built from them.
FidelityReport compare_fidelity(const Reconstruction& observed, const Reconstruction& simulated);

// The q-quantile (0..1) of ascending samples, linear between closest ranks; 0 when empty.
double quantile(const std::vector<double>& sorted, double q);

// Kolmogorov-Smirnov distance between two ascending samples: the largest gap between their
// empirical CDFs. 1 when either is empty.
double ks_distance(const std::vector<double>& a, const std::vector<double>& b);

// {"doppel": "fidelity/v1", "operations": [...], "calls": [...]}, for scripts and tests.
std::string fidelity_to_json_text(const FidelityReport& report);

}  // namespace doppel::ingest
