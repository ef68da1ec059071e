// Many simulations of one topology, each a child process of the doppel binary (the SimGrid
// engine runs once per process): the runs behind `doppel diagnose` and `doppel validate`.
//
// A job is a scenario/v1 document, a seed and a duration. The parent writes the scenario to
// the job's directory and starts `doppel simulate`; the child (simulate_job) writes
// metrics.csv, summary.json and judged-summary.json there, and the parent reads them back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/experiments/symptoms.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/topology.hpp"
#include "doppel/telemetry/summary_recorder.hpp"
#include "doppel/twin/twin.hpp"

namespace doppel::experiments {

inline constexpr const char* kJudgedSummaryFileName = "judged-summary.json";

// --- The child's side --------------------------------------------------------------------

struct SimulateOptions {
  std::uint64_t seed = 1;
  double duration_s = 0.0;  // <= 0: the scenario's, else the workload's
  twin::TwinOptions::NetworkModel network = twin::TwinOptions::NetworkModel::latency;
  // judged-summary.json holds the requests that start at or after this time: the figures a
  // fix is judged on, once it has had time to act.
  double judge_from_s = 0.0;
  std::filesystem::path out_dir;
};

// One scenario against the topology, abort conditions ignored (a what-if runs to its end):
// writes metrics.csv, summary.json and judged-summary.json (no traces, no events). One twin
// run: once per process.
void simulate_job(const faults::Scenario& scenario, const model::Topology& topology,
                  const SimulateOptions& options);

// --- The parent's side -------------------------------------------------------------------

struct SimulationJob {
  nlohmann::json scenario;  // scenario/v1, without "topology": the batch gives it
  std::uint64_t seed = 1;
  double duration_s = 0.0;
  double judge_from_s = 0.0;
  std::filesystem::path dir;  // where the child writes; created
};

struct BatchOptions {
  std::filesystem::path executable;  // the doppel binary
  std::filesystem::path topology_file;
  int jobs = 1;
  std::string network = "latency";
  // After each job ends, with (jobs done, jobs in the batch).
  std::function<void(std::size_t, std::size_t)> on_progress;
};

// A name as a directory name: letters, digits, '-', '_' and '.' kept, anything else '-'
// ("datastore_slowdown@redis-cart x20" -> "datastore_slowdown-redis-cart-x20").
std::string directory_name(const std::string& name);

// The arguments of `doppel simulate` for one job (after the executable).
std::vector<std::string> simulate_arguments(const SimulationJob& job, const BatchOptions& options);

// Runs every job; a job whose directory already holds its outputs for the same scenario, seed
// and duration is not run again (so an interrupted diagnosis resumes). Throws
// std::runtime_error naming the job and its log when a child fails.
void run_batch(const std::vector<SimulationJob>& jobs, const BatchOptions& options);

// What a finished job wrote.
MetricSeries read_job_metrics(const std::filesystem::path& dir);
// The SLO results of judged-summary.json (only "slos" is read back).
telemetry::Summary read_judged_slos(const std::filesystem::path& dir);
// The largest value of a metrics.csv column at or after from_s (0 when absent or empty).
double peak_after(const MetricSeries& series, const std::string& metric, double from_s);
// The mean of a metrics.csv column's points at or after from_s; nullopt when it has none.
std::optional<double> mean_after(const MetricSeries& series, const std::string& metric,
                                 double from_s);

}  // namespace doppel::experiments
