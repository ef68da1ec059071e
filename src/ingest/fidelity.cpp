// Observed vs replayed: the comparison behind doppel build --check and docs/fidelity.md.
#include "doppel/ingest/fidelity.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace doppel::ingest {

double QuantilePair::relative_error() const {
  if (observed == 0.0) {
    return simulated == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return (simulated - observed) / observed;
}

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(rank);
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (rank - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

double ks_distance(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) return 1.0;
  std::size_t i = 0;
  std::size_t j = 0;
  double gap = 0.0;
  // Step both CDFs past every distinct value in turn: ties move together.
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    gap = std::max(gap, std::abs(static_cast<double>(i) / static_cast<double>(a.size()) -
                                 static_cast<double>(j) / static_cast<double>(b.size())));
  }
  return gap;
}

FidelityReport compare_fidelity(const Reconstruction& observed, const Reconstruction& simulated) {
  FidelityReport report;
  // Reconstruction::observed is a std::map: both lists come out sorted by name.
  for (const auto& entry : observed.observed) {
    // Named, not a structured binding: clang 14 cannot capture those in the lambda below.
    const std::string& name = entry.first;
    const ObservedOperation& op = entry.second;
    OperationFidelity row;
    row.operation = name;
    row.observed_spans = op.spans;
    auto it = simulated.observed.find(name);
    const std::vector<double> none;
    const std::vector<double>& replayed =
        it == simulated.observed.end() ? none : it->second.latency_ms;
    if (it != simulated.observed.end()) row.simulated_spans = it->second.spans;
    auto pair = [&](double q) {
      return QuantilePair{quantile(op.latency_ms, q), quantile(replayed, q)};
    };
    row.p50 = pair(0.5);
    row.p90 = pair(0.9);
    row.p99 = pair(0.99);
    row.ks_distance = ks_distance(op.latency_ms, replayed);
    report.operations.push_back(std::move(row));

    for (const auto& [callee, mean] : op.calls_per_span) {
      CallCountFidelity call{name, callee, mean, 0.0};
      if (it != simulated.observed.end()) {
        auto replayed_call = it->second.calls_per_span.find(callee);
        if (replayed_call != it->second.calls_per_span.end())
          call.simulated = replayed_call->second;
      }
      report.calls.push_back(std::move(call));
    }
  }
  return report;
}

std::string fidelity_to_json_text(const FidelityReport& report) {
  auto pair = [](const QuantilePair& p) {
    nlohmann::ordered_json out{{"observed_ms", p.observed}, {"simulated_ms", p.simulated}};
    const double error = p.relative_error();
    out["relative_error"] = std::isfinite(error) ? nlohmann::ordered_json(error) : nullptr;
    return out;
  };
  nlohmann::ordered_json operations = nlohmann::ordered_json::array();
  for (const auto& op : report.operations) {
    operations.push_back({{"operation", op.operation},
                          {"observed_spans", op.observed_spans},
                          {"simulated_spans", op.simulated_spans},
                          {"p50", pair(op.p50)},
                          {"p90", pair(op.p90)},
                          {"p99", pair(op.p99)},
                          {"ks_distance", op.ks_distance}});
  }
  nlohmann::ordered_json calls = nlohmann::ordered_json::array();
  for (const auto& call : report.calls) {
    calls.push_back({{"caller", call.caller},
                     {"callee", call.callee},
                     {"observed_per_span", call.observed},
                     {"simulated_per_span", call.simulated}});
  }
  return nlohmann::ordered_json{
             {"doppel", "fidelity/v1"}, {"operations", operations}, {"calls", calls}}
             .dump(2) +
         "\n";
}

}  // namespace doppel::ingest
