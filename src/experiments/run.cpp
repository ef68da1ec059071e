#include "doppel/experiments/run.hpp"

#include <memory>

#include "doppel/twin/runtime.hpp"

namespace doppel::experiments {

namespace {
// Reports progress from inside simulated time: a timer chain of 100 ticks.
void schedule_progress(twin::TwinRuntime& runtime, double duration_s,
                       const std::function<void(double)>& report) {
  constexpr int kTicks = 100;
  const double step = duration_s / kTicks;
  for (int i = 1; i < kTicks; ++i) {
    runtime.at(step * i, [&report, i](twin::TwinRuntime&) { report(double(i) / kTicks); });
  }
}
}  // namespace

RunResult run_simulation(const model::Topology& topology, const RunOptions& options) {
  telemetry::TelemetrySuite suite(topology, options.telemetry);
  twin::TwinOptions twin_options = options.twin;
  // Gauges are sampled once per metrics window: a shorter window would repeat stale values.
  twin_options.snapshot_interval_s = options.telemetry.window_s;
  const double duration_s =
      twin_options.duration_s > 0 ? twin_options.duration_s : topology.workload.duration_s;
  if (options.on_progress) {
    auto chained = twin_options.on_start;
    twin_options.on_start = [chained, &options, duration_s](twin::TwinRuntime& runtime) {
      if (chained) chained(runtime);
      schedule_progress(runtime, duration_s, options.on_progress);
    };
  }
  auto observers = suite.observers();
  observers.insert(observers.end(), options.extra_observers.begin(), options.extra_observers.end());
  RunResult result;
  result.stats = twin::run_twin(topology, twin_options, observers);
  result.summary = suite.finish();
  if (options.on_progress) options.on_progress(1.0);
  return result;
}

}  // namespace doppel::experiments
