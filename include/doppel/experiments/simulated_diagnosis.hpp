// `doppel diagnose`: every candidate cause simulated against the twin and ranked by how well
// its telemetry reproduces the observed symptoms. Tiered as the cost demands: one cheap pass
// over every candidate, then deeper replications for the leaders only, stopping early once
// the leader is clear (docs/diagnosis.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "doppel/experiments/candidates.hpp"
#include "doppel/experiments/diagnosis.hpp"
#include "doppel/experiments/simulation_batch.hpp"
#include "doppel/experiments/symptoms.hpp"

namespace doppel::experiments {

// What the user saw: metric series (a metrics CSV, or traces turned into metrics) or a
// symptom spec.
struct ObservedSymptoms {
  MetricSeries series;
  std::optional<SymptomSpec> spec;
};

struct OnsetOptions {
  // The first share of the series is the baseline (at least min_baseline_points points).
  double baseline_share = 0.25;
  int min_baseline_points = 5;
  // A metric departs at a point beyond `threshold` baseline scales (median absolute
  // deviation x 1.4826, at least relative_floor x |median|, at least absolute_floor) when at
  // least `persistence_share` of the `persistence_points` from there on are beyond too: a
  // symptom persists, a blip does not.
  double threshold = 6.0;
  int persistence_points = 5;
  double persistence_share = 0.8;
  double relative_floor = 0.1;
  double absolute_floor = 1e-3;
  // ... and beyond the baseline's own range widened by this share of it on each side, so a
  // gauge that is mostly 0 with the odd blip is not departing at its next blip.
  double range_margin = 0.5;
  // departing_metrics: the seconds before from_s left out of the baseline.
  double baseline_guard_s = 2.0;
};

// When the symptoms began: the earliest time a metric departs from its baseline; nullopt when
// none does.
std::optional<double> detect_onset(const MetricSeries& observed, const OnsetOptions& options = {});

// The metrics whose median from `from_s` on departs from their baseline (the points before
// from_s - baseline_guard_s), by the rule above.
std::set<std::string> departing_metrics(const MetricSeries& observed, double from_s,
                                        const OnsetOptions& options = {});

// What pruning knows of the observed data: the metrics that depart over the window, and the
// components too quiet to show anything (their <component>_rps baseline median is below
// quiet_rps, or they have no rate at all): silence there is no evidence of health.
struct ObservedEvidence {
  std::set<std::string> departing;
  std::set<std::string> rated;  // components with a <component>_rps column
  std::set<std::string> quiet;
};
ObservedEvidence observed_evidence(const MetricSeries& observed, double from_s,
                                   const OnsetOptions& options = {}, double quiet_rps = 5.0);

// Whether the observed data leaves the candidate worth simulating: a metric of its component
// departs, or the component is quiet or not observed at all. The null hypothesis, zone-wide faults
// and candidates without a named component are always worth it; an edge counts its two ends and its
// pool; a client class counts the routes.
bool worth_simulating(const Candidate& candidate, const ObservedEvidence& evidence);

struct SimulatedDiagnosisOptions {
  BatchOptions batch;
  std::filesystem::path work_dir;  // one directory per candidate and replication under it
  std::vector<Candidate> candidates;
  // The comparison window; absent: from the detected onset (or the spec's first symptom)
  // to the end of the observed series.
  std::optional<double> window_start_s;
  std::optional<double> window_end_s;
  // Simulated seconds per run; <= 0: the end of the observed series (or of the window).
  double duration_s = 0.0;
  std::uint64_t seed = 1;
  int screening_replications = 1;
  // The screening pass simulates only this long past the onset (the deep pass: to the end).
  double screening_horizon_s = 20.0;
  // Candidates whose component shows nothing in the observed metrics are not simulated.
  bool prune_unaffected = true;
  int replications = 4;            // per leader, in total
  int replications_per_round = 2;  // deep replications added before each early-stop check
  ScreeningOptions screening;
  double clear_leader_posterior = 0.95;
  DiagnosisOptions diagnosis;  // window fields are set from the above
  OnsetOptions onset;
};

struct SimulatedDiagnosis {
  double onset_s = 0.0;  // where the candidates' injections start
  double window_start_s = 0.0;
  double window_end_s = 0.0;
  double duration_s = 0.0;
  std::vector<std::string> pruned;   // candidates not simulated: nothing observed at them
  Diagnosis screening;               // every other candidate, screening_replications each
  std::vector<std::string> leaders;  // kept for the deep pass
  Diagnosis result;                  // the leaders, every replication
  int simulations = 0;
  bool stopped_early = false;                   // the leader was clear before `replications`
  std::map<std::string, std::string> cause_of;  // candidate name -> its cause
};

// Causes (variants summed up), best first: the deep pass's ranking, then the screened-out
// causes by their screening probability. Pruned causes are not listed.
struct RankedCause {
  std::string cause;
  double posterior = 0.0;  // deep pass; 0 for the screened-out
  double screening_posterior = 0.0;
  std::string best_candidate;  // its most probable variant
};
std::vector<RankedCause> rank_causes(const SimulatedDiagnosis& diagnosis);

// Runs the candidates' simulations and ranks them. Throws InputError (file "--window" or
// "--observed") when no window can be found, std::runtime_error when a simulation fails.
SimulatedDiagnosis diagnose_by_simulation(const ObservedSymptoms& observed,
                                          const SimulatedDiagnosisOptions& options);

// diagnosis.json with the run's own figures around the ranking ("doppel-diagnosis/v1").
void write_simulated_diagnosis_json(std::ostream& out, const SimulatedDiagnosis& diagnosis);

}  // namespace doppel::experiments
