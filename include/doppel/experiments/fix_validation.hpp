// `doppel validate`: each candidate fix simulated against the cause, next to the cause left
// alone and to no cause at all, and judged (fix_verdict.hpp) before anyone touches production.
// Fix file format "fixes/v1": docs/diagnosis.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/experiments/automation_policy.hpp"
#include "doppel/experiments/fix_verdict.hpp"
#include "doppel/experiments/simulation_batch.hpp"
#include "doppel/model/topology.hpp"

namespace doppel::experiments {

inline constexpr const char* kFixesFormat = "fixes/v1";

// A fix staged: its changes reach the first `instances` instances of each service they touch
// at at_s, and every instance for_s later (docs/diagnosis.md, "canary").
struct FixCanary {
  int instances = 1;
  double for_s = 0.0;
};

struct Fix {
  std::string name;
  std::string description;
  std::string kind;  // the action kind the automation policy knows: "rollback", "pool_size"...
  double at_s = 0.0;
  // The cause's injections (by name) that this fix ends at at_s: a rollback.
  std::vector<std::string> rollback;
  // Topology changes (the deploy vocabulary: set / scale / remove at a JSON pointer).
  nlohmann::json changes = nlohmann::json::array();
  // Any other scenario/v1 injections (a route fix as route_change, a rate limit...).
  nlohmann::json injections = nlohmann::json::array();
  // The scenario/v1 injections the fix arm adds to the cause (built by load_fixes).
  nlohmann::json arm_injections = nlohmann::json::array();
  FixAction action;  // for the automation policy: what it touches
  std::optional<FixCanary> canary;

  // When every instance has the fix: at_s, or the end of the canary stage.
  double full_rollout_s() const { return at_s + (canary ? canary->for_s : 0.0); }
};

// Reads a fixes/v1 file and checks each fix, applied to the cause scenario, against the
// topology. Errors are InputError with the file and JSON pointer.
std::vector<Fix> load_fixes(const std::filesystem::path& file, const nlohmann::json& cause,
                            const model::Topology& topology);
std::vector<Fix> parse_fixes(const nlohmann::json& document, const std::string& file_label,
                             const nlohmann::json& cause, const model::Topology& topology);

// The cause scenario as a what-if: without its topology path and abort conditions.
nlohmann::json cause_document(const std::filesystem::path& scenario_file);

struct FixValidationOptions {
  BatchOptions batch;
  std::filesystem::path work_dir;
  int replications = 5;
  std::uint64_t seed = 1;
  double duration_s = 0.0;  // <= 0: the cause scenario's
  // Figures count the requests that start this long after the latest fix.
  double settle_s = 10.0;
  // Saturation limit of a service's busy workers and of a host's CPU, as a share, both
  // averaged over the judged window: above it, queues grow with any burst.
  double busy_limit = 0.9;
  AutomationPolicy policy;
};

struct ArmRuns {
  std::string name;  // "no cause", "cause", or the fix's name
  nlohmann::json scenario;
  std::vector<std::filesystem::path> replication_dirs;
  ArmResults figures;
  // route_<r>_err and route_<r>_lat_99 per metrics row, mean over the replications.
  MetricSeries mean_series;
  // Per service: its request rate (<service>_rps) over the judged window, mean over the
  // replications; services with no rate column are absent.
  std::map<std::string, double, std::less<>> service_rps;
};

// A service that takes more requests under a fix than both with no cause and with the cause
// left alone: load the fix puts on a shared dependency (more retries, a bigger pool letting
// more through). Less load is not listed: it is what failing requests upstream leave, and the
// SLO figures already judge that. No limit judges it either; it is what an SRE checks on the
// dependency's dashboards before rollout.
struct LoadShift {
  std::string service;
  double no_cause_rps = 0.0;
  double cause_rps = 0.0;
  double fix_rps = 0.0;
};

struct LoadShiftOptions {
  double min_relative_increase = 0.25;  // fix / max(no cause, cause) - 1
  double min_rps = 1.0;                 // and at least this many more requests/s
};

// The services whose rate rises past both thresholds, in service-name order.
std::vector<LoadShift> load_shifts(const ArmRuns& no_cause, const ArmRuns& cause,
                                   const ArmRuns& fix, const LoadShiftOptions& options = {});

// What the canary stage of a fix showed, against the other two arms over the same window (the
// stage's second half, or from settle_s after the fix, whichever is shorter): what an SRE
// watching the canary would have seen before going on.
struct CanaryCheck {
  int instances = 0;
  double from_s = 0.0;
  double to_s = 0.0;
  // Every route's error share and p99 latency (ms): means of the per-second values over the
  // window and the replications.
  double err_no_cause = 0.0;
  double err_cause = 0.0;
  double err_fix = 0.0;
  double p99_no_cause = 0.0;
  double p99_cause = 0.0;
  double p99_fix = 0.0;
  // Saturation the canary already pushes over its limit (as FixVerdict::breaks).
  std::vector<std::string> breaks;
  std::string finding;  // one sentence: stop at the canary, go on, or no clear signal
};

struct FixValidation {
  double judge_from_s = 0.0;
  double duration_s = 0.0;
  int replications = 0;
  int simulations = 0;
  ArmRuns no_cause;
  ArmRuns cause;
  std::vector<ArmRuns> fixes;
  std::vector<FixVerdict> verdicts;
  std::vector<Recommendation> recommendations;
  // Per fix: seconds from the fix until the mean error rate and p99 over every route stay
  // back near the no-cause arm's (error rate within 1 point of its worst, p99 within twice
  // its median) to the end of the run; nullopt when they never do.
  std::vector<std::optional<double>> recovery_s;
  // Per fix: load_shifts(no_cause, cause, fix).
  std::vector<std::vector<LoadShift>> load_shifts;
  // Per fix: what its canary stage showed (nullopt: the fix has no canary).
  std::vector<std::optional<CanaryCheck>> canary_checks;
};

// The recovery time above, from the arms' mean series.
std::optional<double> recovery_time(const ArmRuns& no_cause, const ArmRuns& fix, double fix_at_s);

FixValidation validate_fixes(const nlohmann::json& cause, const std::vector<Fix>& fixes,
                             const model::Topology& topology, const FixValidationOptions& options);

// validation.json ("doppel-validation/v1").
void write_validation_json(std::ostream& out, const FixValidation& validation);

}  // namespace doppel::experiments
