// Ranking candidate root causes: which simulated scenario explains the observed symptoms
// best, with posterior probabilities and their uncertainty (method and formulas:
// docs/diagnosis.md). Pure computation over time series; running the simulations is the
// caller's job, so everything here is testable without the engine.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "doppel/experiments/symptoms.hpp"

namespace doppel::experiments {

inline constexpr const char* kDiagnosisFormat = "doppel-diagnosis/v1";

// One hypothesis and what the twin made of it: N seeded replications, each a set of series
// named like the observed ones.
struct CandidateRuns {
  std::string name;         // "db-pool-exhaustion@orders-db", "no fault"
  std::string description;  // one line for the table and the report
  bool null_hypothesis = false;
  std::vector<MetricSeries> replications;
};

struct DiagnosisOptions {
  // The comparison window, in the series' seconds. Points before window_start_s are the
  // observed baseline that sets each metric's centre and scale.
  double window_start_s = 0.0;
  double window_end_s = 0.0;
  // Width of the comparison bins; 0 picks (end - start) / 30, at least the observed spacing.
  double bin_s = 0.0;
  // Added to the replication variance, in normalised units: the part of the mismatch that no
  // replication count removes (model error, measurement noise).
  double noise_floor = 0.5;
  // A metric's scale is at least this share of its baseline level, so a flat baseline
  // (spread 0) does not make every wiggle infinitely surprising.
  double relative_scale_floor = 0.05;
  // ... and at least this share of its resolution, the smallest step between two of its
  // observed values: gauges count workers, connections and waiters, so one more is a step of
  // 1 (or 1/64 of a pool of 64), and a baseline that reads 0 throughout must not make that
  // one step a twenty-sigma event.
  double resolution_share = 0.5;
  // A simulated z beyond this counts as this: a candidate far off in one metric is far off,
  // without one metric outweighing every other (the cap 1 / relative_scale_floor that the
  // largest-excursion floor puts on the observed z).
  double max_abs_z = 20.0;
  // The bins of one metric are autocorrelated, not independent: each metric's log-likelihood
  // counts as this many independent observations (its mean per bin times this).
  double effective_samples_per_metric = 4.0;
  // A mean normalised deviation beyond this is a symptom (observed) or a prediction
  // (simulated).
  double deviation_threshold = 3.0;
  int bootstrap_samples = 200;
  // The bootstrap always redraws each candidate's replications (simulation noise). Redrawing
  // the compared metrics as well asks "would the ranking survive without some of the
  // evidence?"; off by default because an incident usually shows in a handful of metrics
  // among hundreds, and dropping them then says nothing about the candidates.
  bool resample_metrics = false;
  double interval_level = 0.90;  // central interval of the bootstrap posteriors
  std::uint64_t seed = 1;
  // Only these metrics when not empty (names as in the series).
  std::vector<std::string> metrics;
};

struct PosteriorInterval {
  double lower = 0.0;
  double upper = 0.0;
};

// A metric's observed and simulated curves over the window, for tables and plots.
struct ComparedMetric {
  std::string name;
  double baseline_center = 0.0;     // in the metric's own unit
  double scale = 1.0;               // one normalised unit, in the metric's own unit
  std::vector<double> bin_times_s;  // bin centres
  std::vector<double> observed;     // per bin, own unit, NaN where nothing was observed
  double observed_deviation = 0.0;  // mean normalised deviation over the window
  bool symptom = false;             // |observed_deviation| > deviation_threshold
};

struct CandidateScore {
  std::string name;
  std::string description;
  bool null_hypothesis = false;
  int replications = 0;
  double log_likelihood = 0.0;
  double posterior = 0.0;
  PosteriorInterval interval;
  // Metrics where the simulated mean follows the observed deviation.
  std::vector<std::string> explains;
  // Metrics where the candidate predicts a deviation not observed, or of the opposite sign.
  std::vector<std::string> contradicts;
  // Observed symptoms the candidate does not reproduce.
  std::vector<std::string> misses;
  // Per compared metric (same order as Diagnosis::metrics): simulated mean and standard
  // deviation per bin, own unit; and the mean normalised deviation it predicts.
  std::vector<std::vector<double>> simulated_mean;
  std::vector<std::vector<double>> simulated_sd;
  std::vector<double> predicted_deviation;
};

struct Diagnosis {
  DiagnosisOptions options;
  std::vector<ComparedMetric> metrics;
  std::vector<std::string> ignored_metrics;  // observed but never simulated, or the reverse
  std::vector<CandidateScore> ranking;       // best first; ties keep the input order
};

// Scores every candidate against the observed series. Throws std::invalid_argument when there
// are no candidates, a candidate has no replication, or the window is empty.
Diagnosis diagnose(const MetricSeries& observed, const std::vector<CandidateRuns>& candidates,
                   const DiagnosisOptions& options);

// Scores against a symptom spec instead of series: a candidate's likelihood for a symptom is
// the share of its replications in which the symptom holds (the median of the metric over the
// symptom's span satisfies the comparison), smoothed as (k + 1/2) / (n + 1).
Diagnosis diagnose(const SymptomSpec& spec, const std::vector<CandidateRuns>& candidates,
                   const DiagnosisOptions& options);

// The tiering helpers: which candidates deserve deep replications after a cheap pass. Keeps
// the best ones until their posteriors add up to `coverage` (at most max_leaders, at least
// one), plus any whose interval reaches min_upper; the null hypothesis stays in when asked.
struct ScreeningOptions {
  double coverage = 0.99;
  int max_leaders = 5;
  double min_upper = 0.05;
  bool keep_null_hypothesis = true;
};
std::vector<std::string> screen(const Diagnosis& cheap_pass, const ScreeningOptions& options = {});

// Early stop: the leader's posterior is above `threshold` and the lower end of its interval
// is above the upper end of the runner-up's.
bool leader_is_clear(const Diagnosis& diagnosis, double threshold = 0.95);

// The ranked table for a terminal.
void print_diagnosis_table(std::ostream& out, const Diagnosis& diagnosis, int max_rows = 20);
// diagnosis.json, format "doppel-diagnosis/v1" (docs/diagnosis.md).
void write_diagnosis_json(std::ostream& out, const Diagnosis& diagnosis);

}  // namespace doppel::experiments
