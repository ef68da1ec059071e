// `doppel rehearse`: replay a failure scenario against the twin and judge its steady state
// before, during and after the injections, with the blast radius and the chain of events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/experiments/run.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/telemetry/summary_recorder.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::twin {
class TwinRuntime;
}

namespace doppel::experiments {

// An abort condition that fired: the first one to cross its bound in a run.
struct AbortFiring {
  std::size_t condition = 0;  // index in the scenario's abort_conditions
  faults::AbortCondition spec;
  double time_s = 0.0;         // simulated time it fired
  double measured = 0.0;       // the figure over the window (a share, or milliseconds)
  std::uint64_t requests = 0;  // requests in the window
  bool stopped_run = false;    // the run ended there (false: --no-abort, only reported)
};

// Evaluates a scenario's abort conditions while the twin runs, over the entry requests that
// completed in the last window_s seconds (matching the condition's route and client class).
// A condition is judged once a whole window has passed since the start and the window holds
// at least kMinRequests requests; error rates at every completed request, latency
// percentiles (nearest rank) at most every window_s / 50 of simulated time. The first
// crossing is kept, reported as an `abort_condition_fired` event and, when stop_run, ends
// the run there (TwinRuntime::stop).
class AbortMonitor final : public twin::TwinObserver {
 public:
  static constexpr std::uint64_t kMinRequests = 10;

  AbortMonitor(std::vector<faults::AbortCondition> conditions, bool stop_run);
  // The runtime to stop and report through (call from TwinOptions::on_start). Without it
  // the monitor only records the firing.
  void attach(twin::TwinRuntime& runtime) { runtime_ = &runtime; }

  void on_entry(const twin::EntryRecord& entry) override;
  const std::optional<AbortFiring>& fired() const { return fired_; }

 private:
  struct Completed {
    double end_s;
    double latency_ms;
    bool failed;
  };
  struct Window {
    std::deque<Completed> requests;
    std::uint64_t failed = 0;
    double next_percentile_s = 0.0;
  };
  std::optional<double> measure(std::size_t index, double now);
  void fire(std::size_t index, double now, double measured);

  std::vector<faults::AbortCondition> conditions_;
  std::vector<Window> windows_;
  bool stop_run_;
  twin::TwinRuntime* runtime_ = nullptr;
  std::optional<AbortFiring> fired_;
  std::vector<double> scratch_;
};

struct PhaseResult {
  std::string name;  // "before", "during", "after"
  double start_s = 0.0;
  double end_s = 0.0;
  telemetry::Summary summary;  // requests that started in the phase, steady-state SLOs
};

struct RehearsalResult {
  std::string scenario;
  RunResult run;
  std::vector<PhaseResult> phases;  // a phase with no time is left out
  // Routes and client classes that broke the steady state during or after the injections
  // while it held before (or had no data before).
  std::vector<std::string> broken_routes;
  std::vector<std::string> affected_clients;  // error rate during > before + 1 point
  // What happened to the system, in time order: the first occurrence of each (kind,
  // component), so a flapping breaker does not drown the chain.
  std::vector<twin::TwinEvent> causal_chain;
  bool steady_state_held = true;  // every phase passed (no_data counts as passing)
  // The first abort condition that fired; with stopped_run the run (and the phases) end at
  // its time_s.
  std::optional<AbortFiring> abort;
  bool aborted() const { return abort && abort->stopped_run; }
  double simulated_until_s = 0.0;  // the end of the run: the scenario's end, or the abort
  double scenario_end_s = 0.0;     // where the timeline would have ended
};

struct RehearseOptions {
  // An abort condition that fires stops the run (true), or is only reported (false: the
  // whole timeline runs, `doppel rehearse --no-abort`).
  bool stop_on_abort = true;
};

// Simulates prepare_topology(scenario, topology) with the scenario applied (one SimGrid run:
// once per process) and writes the run's telemetry to options.telemetry.out_dir.
// The scenario's abort conditions are evaluated during the run (AbortMonitor).
RehearsalResult rehearse(const faults::Scenario& scenario, const model::Topology& topology,
                         const RunOptions& options, const RehearseOptions& rehearse_options = {});

// --- Replications ----------------------------------------------------------------------------
// `doppel rehearse --replications N` runs replication i as its own process with twin run
// number i (RandomStream substreams of the same seed: ns-3's seed + run), into
// OUT/replication-NNN/, then aggregates their rehearsal.json documents.

// "replication-007"
std::string replication_dir_name(std::size_t index);

// The "doppel-rehearsal-replications/v1" document (docs/rehearsal.md) from N rehearsal.json
// documents in replication order: each figure with its mean, min, max and 95% interval
// (Student's t), the share of replications in which each route broke and each client class
// was affected, how many aborted. Throws std::invalid_argument for no documents.
nlohmann::json aggregate_rehearsals(const std::vector<nlohmann::json>& replications);
// The aggregate as tables for a terminal.
void print_rehearsal_aggregate(std::ostream& out, const nlohmann::json& aggregate);

// rehearsal.json ("doppel-rehearsal/v1", docs/rehearsal.md).
void write_rehearsal_json(std::ostream& out, const RehearsalResult& result);
// The same story as tables for a terminal.
void print_rehearsal(std::ostream& out, const RehearsalResult& result);

}  // namespace doppel::experiments
