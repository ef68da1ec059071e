// `doppel run`: one simulation of a topology under its workload, with every telemetry file
// written to an output directory.
#pragma once

#include <functional>
#include <vector>

#include "doppel/model/topology.hpp"
#include "doppel/telemetry/summary_recorder.hpp"
#include "doppel/telemetry/telemetry_suite.hpp"
#include "doppel/twin/twin.hpp"

namespace doppel::experiments {

struct RunOptions {
  twin::TwinOptions twin;
  telemetry::TelemetryOptions telemetry;
  // Called now and then (about every 1% of simulated time) with the share done, for a
  // progress bar. Never affects the outputs.
  std::function<void(double fraction_done)> on_progress;
  // More observers of the run (e.g. a Chaos Toolkit probe recorder); not owned.
  std::vector<twin::TwinObserver*> extra_observers;
};

struct RunResult {
  twin::RunStats stats;
  telemetry::Summary summary;
};

// Simulates the topology (one SimGrid run: once per process) and writes the telemetry.
RunResult run_simulation(const model::Topology& topology, const RunOptions& options);

}  // namespace doppel::experiments
