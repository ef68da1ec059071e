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
  // Low rates (count_onset): a component whose baseline sees at most this many requests a
  // row is tested on its counts, where a handful of requests a row cannot make 4 of 5 rows
  // depart; a change point counts when its test statistic (a likelihood ratio G for rates and
  // error counts, |z| of a rank-sum for latencies) passes these thresholds.
  double low_rate_max_per_row = 20.0;
  // G is divided by the counts' overdispersion (quasi-likelihood). Nominal tails 8e-6 and
  // 6e-5 a split; measured on 12 healthy HotROD runs at 1 request/s: no false onset (the
  // largest G was 17).
  double count_g_threshold = 20.0;  // chi-square(1)
  double rank_z_threshold = 4.0;    // two-sided normal
  // detect_onset takes the count rule's onset over the persistence rule's only when it is
  // more than this many rows earlier; closer, both saw one change and persistence places it
  // to the row. A count's change point is only as sharp as the counts: a rate that sags for
  // a few rows before it falls puts it there (Online Boutique: payment's calls, 4 rows).
  double count_rule_lead_rows = 5.0;
  // Where neither rule finds an onset at the thresholds above, diagnose_by_simulation looks
  // again at these (nominal tails ~0.3% a test, not corrected for the many tests): someone
  // who asks for a diagnosis saw something, and the weak change most like a symptom is a
  // better start for the candidates than none. "No fault" stays a candidate, so a cause
  // drawn from noise has to beat the null hypothesis (docs/diagnosis.md: on 12 healthy
  // runs, 11 still found no onset and one ranked a cause first). 0: no second look.
  double relaxed_threshold = 4.0;
  double relaxed_count_g_threshold = 10.0;
  double relaxed_rank_z_threshold = 3.0;
};

// The options with the relaxed thresholds in place of the usual ones.
OnsetOptions relaxed(OnsetOptions options);

// When the symptoms began: the earliest time a metric departs from its baseline by the
// persistence rule, or where the count rule below (count_onset) finds a change more than
// count_rule_lead_rows earlier (the persistence rule leaves low-rate components' rates, error
// shares and latencies to it); nullopt when neither finds anything.
std::optional<double> detect_onset(const MetricSeries& observed, const OnsetOptions& options = {});

// The onset rule at low rates, where every row holds a few requests: for each component whose
// <component>_rps baseline is at most low_rate_max_per_row requests a row, the most likely
// single change point of its request count (Poisson), of its error count (binomial, errors
// rising: <component>_err x requests), both as quasi-likelihood ratios scaled by the counts'
// overdispersion, and of each <component>_lat_* series (Wilcoxon rank-sum, either way); a
// change point counts when its statistic passes the option's threshold, the
// split leaving at least min_baseline_points rows before and persistence_points after, none in
// the first baseline_share. The earliest such change (the first row after it); nullopt if none.
std::optional<double> count_onset(const MetricSeries& observed, const OnsetOptions& options = {});

// The metrics whose median from `from_s` on departs from their baseline (the points before
// from_s - baseline_guard_s), by the rule above.
std::set<std::string> departing_metrics(const MetricSeries& observed, double from_s,
                                        const OnsetOptions& options = {});

// What pruning knows of the observed data: the metrics that depart over the window, the
// components too quiet to show anything (their <component>_rps baseline median is below
// quiet_rps, or they have no rate at all): silence there is no evidence of health; and the
// components whose traffic stopped (their rate's median over the window is at most
// silenced_share of its baseline median): nothing reaches them, which is itself a symptom.
struct ObservedEvidence {
  std::set<std::string> departing;
  std::set<std::string> rated;  // components with a <component>_rps column
  std::set<std::string> quiet;
  std::set<std::string> silenced;
};
ObservedEvidence observed_evidence(const MetricSeries& observed, double from_s,
                                   const OnsetOptions& options = {}, double quiet_rps = 5.0,
                                   double silenced_share = 0.1);

// Whether the observed data leaves the candidate worth simulating: a metric of one of its
// components departs, or one is quiet, silenced or not observed at all, or a metric of where
// its symptoms show first (Candidate::witnesses: the callers of a service, the routes to it)
// departs. The null hypothesis, zone-wide faults and candidates without a named component are
// always worth it; an edge counts its two ends and its pool; a client class counts the routes.
bool worth_simulating(const Candidate& candidate, const ObservedEvidence& evidence);

// How close to a cause's best screened variant another variant of it must be to go deep too:
// within max(margin, share x |its log-likelihood|). Variants that differ by which instance or
// host they hit score alike on one short replication, and the wrong one alone in the deep pass
// loses to "no fault" on the metrics of the host it got wrong.
struct CloseVariants {
  double share = 0.05;
  double margin = 10.0;
  int max_per_cause = 3;  // the best included
};

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
  // The deep pass also gets the best variant of the screening's next causes until this many
  // causes (besides "no fault") are in it: one replication per candidate is a noisy judge where
  // every row holds a few requests, and a cause it ranks fourth may be the one.
  int min_leading_causes = 3;
  // The screening's best variants of its min_leading_causes best causes are refined: the
  // magnitudes halfway to their grid neighbours (magnitude_refinements) are screened too
  // before the deep pass picks its leaders.
  bool refine_magnitudes = true;
  // ... and each leading cause's variants that screened about as well as its best.
  CloseVariants close_variants;
  double clear_leader_posterior = 0.95;
  DiagnosisOptions diagnosis;  // window fields are set from the above
  // With diagnosis.bin_s left at 0: comparison bins at least this many entry requests wide
  // (all_routes_rps before the onset). At a request a second, 1 s bins hold a 0-or-1 error
  // share each, and which seconds fail is luck, not cause; ten requests a bin carry the share.
  double min_requests_per_bin = 10.0;
  OnsetOptions onset;
};

struct SimulatedDiagnosis {
  double onset_s = 0.0;  // where the candidates' injections start
  // The onset came from the relaxed thresholds (OnsetOptions): the evidence of any symptom
  // is weak, and the ranking says so only as far as "no fault" competes.
  bool onset_relaxed = false;
  double window_start_s = 0.0;
  double window_end_s = 0.0;
  double duration_s = 0.0;
  std::vector<std::string> pruned;   // candidates not simulated: nothing observed at them
  std::vector<std::string> refined;  // variants added at magnitudes between the grid's
  Diagnosis screening;               // every other candidate, screening_replications each
  std::vector<std::string> leaders;  // kept for the deep pass
  Diagnosis result;                  // the leaders, every replication
  int simulations = 0;
  bool stopped_early = false;                   // the leader was clear before `replications`
  std::map<std::string, std::string> cause_of;  // candidate name -> its cause
  // cause -> the services or datastores it blames (Candidate::components)
  std::map<std::string, std::vector<std::string>> components_of;
};

// Causes (variants summed up), best first: the deep pass's ranking, then the screened-out
// causes by their screening probability. Pruned causes are not listed.
struct RankedCause {
  std::string cause;
  double posterior = 0.0;  // deep pass; 0 for the screened-out
  double screening_posterior = 0.0;
  std::string best_candidate;  // its most probable variant
  std::vector<std::string> components;
};
std::vector<RankedCause> rank_causes(const SimulatedDiagnosis& diagnosis);

// `leaders` plus, in screening order, the best variant of each further cause, until the
// leaders cover `min_causes` causes other than the null hypothesis.
std::vector<std::string> with_leading_causes(const Diagnosis& screening,
                                             std::vector<std::string> leaders,
                                             const std::map<std::string, std::string>& cause_of,
                                             int min_causes);

// `leaders` plus, for each cause among them, its other variants close to its best (screening
// order), up to max_per_cause variants a cause.
std::vector<std::string> with_close_variants(const Diagnosis& screening,
                                             std::vector<std::string> leaders,
                                             const std::map<std::string, std::string>& cause_of,
                                             const CloseVariants& close = {});

// `leaders` plus the grid variant each refined leader was refined from (`refined_from`:
// refined variant -> its parent), when not already in: a refined magnitude that wins one
// short screening run alone can lose the deep pass to a neighbour's cause while its parent,
// nearer the truth, screened a little behind (Sock Shop: 500 ms deep, 250 ms left out, for a
// 238 ms latency).
std::vector<std::string> with_refined_parents(
    std::vector<std::string> leaders, const std::map<std::string, std::string>& refined_from);

// The bin width that puts min_requests_per_bin entry requests in each bin, from the median of
// all_routes_rps before from_s; 0 (the default width) when that rate is unknown or zero.
double sparse_bin_width(const MetricSeries& observed, double from_s, double min_requests_per_bin);

// Runs the candidates' simulations and ranks them. Throws InputError (file "--window" or
// "--observed") when no window can be found, std::runtime_error when a simulation fails.
SimulatedDiagnosis diagnose_by_simulation(const ObservedSymptoms& observed,
                                          const SimulatedDiagnosisOptions& options);

// diagnosis.json with the run's own figures around the ranking ("doppel-diagnosis/v1").
void write_simulated_diagnosis_json(std::ostream& out, const SimulatedDiagnosis& diagnosis);

}  // namespace doppel::experiments
