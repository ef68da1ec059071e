// `doppel rehearse`: replay a failure scenario against the twin and judge its steady state
// before, during and after the injections, with the blast radius and the chain of events.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "doppel/experiments/run.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/telemetry/summary_recorder.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::experiments {

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
};

// Simulates prepare_topology(scenario, topology) with the scenario applied (one SimGrid run:
// once per process) and writes the run's telemetry to options.telemetry.out_dir.
RehearsalResult rehearse(const faults::Scenario& scenario, const model::Topology& topology,
                         const RunOptions& options);

// rehearsal.json ("doppel-rehearsal/v1", docs/rehearsal.md).
void write_rehearsal_json(std::ostream& out, const RehearsalResult& result);
// The same story as tables for a terminal.
void print_rehearsal(std::ostream& out, const RehearsalResult& result);

}  // namespace doppel::experiments
