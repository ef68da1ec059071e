// summary.json and the summary table: what a run amounted to, per entry route, per client
// class and per service, with the topology's SLOs checked. Latency percentiles come from
// LatencyHistogram (1% relative accuracy), so memory does not grow with the run's length.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doppel/model/topology.hpp"
#include "doppel/telemetry/latency_histogram.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::telemetry {

struct LatencyStats {
  std::uint64_t count = 0;
  double p50_ms = 0.0;
  double p90_ms = 0.0;
  double p99_ms = 0.0;
  double max_ms = 0.0;  // exact
  double mean_ms = 0.0;
};

// Requests through the gateway that share a route or a client class.
struct RequestStats {
  std::string name;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  // entries whose outcome is not ok
  double error_rate = 0.0;
  LatencyStats latency;
};

struct OutcomeCount {
  std::string outcome;  // twin::to_string(Outcome)
  std::uint64_t count = 0;
};

struct ServiceStats {
  std::string name;
  std::uint64_t requests = 0;  // server spans
  std::uint64_t errors = 0;
  double error_rate = 0.0;
  LatencyStats latency;
  std::vector<OutcomeCount> outcomes;  // of its server spans, every outcome, in enum order
  std::uint64_t call_attempts = 0;     // client spans it issued
  std::uint64_t retries = 0;           // of which attempt > 0
  std::vector<OutcomeCount> call_outcomes;
};

enum class Verdict { pass, fail, no_data };
std::string_view to_string(Verdict verdict);

struct SloCheck {
  enum class Kind { latency, error_rate };
  Kind kind = Kind::latency;
  double percentile = 0.0;  // latency checks only
  double bound = 0.0;       // ms for latency, a share (0..1) for the error rate
  double observed = 0.0;
  Verdict verdict = Verdict::no_data;  // no_data: the route saw no requests
};

struct SloResult {
  std::string route;
  std::vector<SloCheck> checks;
  Verdict verdict = Verdict::no_data;  // fail if a check fails, else no_data if one has none
};

struct Summary {
  double duration_s = 0.0;
  RequestStats total;                  // every entry
  std::vector<RequestStats> routes;    // topology order, then "(no route)" and unknown ones
  std::vector<RequestStats> clients;   // topology order, then unknown ones
  std::vector<ServiceStats> services;  // topology order, then unknown ones
  std::vector<SloResult> slos;
  Verdict slo_verdict = Verdict::pass;  // over all SLOs, as for one SLO; pass when none
  std::uint64_t server_spans = 0;
  std::uint64_t client_spans = 0;
  std::vector<std::pair<std::string, std::uint64_t>> events_by_kind;  // sorted by kind
  double latency_relative_accuracy = 0.01;
};

// summary.json (format "doppel-summary/v1", docs/telemetry.md).
void write_summary_json(std::ostream& out, const Summary& summary);
// The same, as fixed-width tables for a terminal.
void print_summary_table(std::ostream& out, const Summary& summary);

class SummaryRecorder final : public twin::TwinObserver {
 public:
  explicit SummaryRecorder(const model::Topology& topology);
  ~SummaryRecorder() override;
  SummaryRecorder(const SummaryRecorder&) = delete;
  SummaryRecorder& operator=(const SummaryRecorder&) = delete;

  void on_span(const twin::SpanRecord& span) override;
  void on_entry(const twin::EntryRecord& entry) override;
  void on_event(const twin::TwinEvent& event) override;
  void on_run_end(double end_time_s) override;

  // What has been recorded so far, SLOs checked.
  Summary summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::telemetry
