#include "doppel/experiments/diagnosis.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/model/distribution.hpp"

namespace doppel::experiments {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Below this a scale is treated as "the metric never moves": nothing to normalise by.
constexpr double kTinyScale = 1e-12;

struct BinGrid {
  double start = 0.0;
  double width = 1.0;
  std::size_t count = 0;

  std::optional<std::size_t> bin_of(double t) const {
    const double end = start + width * static_cast<double>(count);
    if (t < start || t > end) return std::nullopt;
    const auto index = static_cast<std::size_t>((t - start) / width);
    return std::min(index, count - 1);  // the window's end belongs to the last bin
  }
  double centre(std::size_t bin) const { return start + width * (static_cast<double>(bin) + 0.5); }
};

double median_spacing(const TimeSeries& series) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < series.size(); ++i) gaps.push_back(series[i].t_s - series[i - 1].t_s);
  if (gaps.empty()) return 0.0;
  std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2),
                   gaps.end());
  return gaps[gaps.size() / 2];
}

BinGrid make_grid(const DiagnosisOptions& options, const MetricSeries& observed) {
  const double span = options.window_end_s - options.window_start_s;
  if (!(span > 0.0) || !std::isfinite(span)) {
    throw std::invalid_argument(fmt::format("the diagnosis window [{}, {}] is empty",
                                            options.window_start_s, options.window_end_s));
  }
  double width = options.bin_s > 0.0 ? options.bin_s : span / 30.0;
  if (options.bin_s <= 0.0) {
    for (const auto& [name, series] : observed) width = std::max(width, median_spacing(series));
  }
  BinGrid grid;
  grid.start = options.window_start_s;
  grid.count = static_cast<std::size_t>(std::max(1.0, std::ceil(span / width - 1e-9)));
  grid.width = span / static_cast<double>(grid.count);
  return grid;
}

// The weight of each point of `series`: the request count of its row when `requests` is
// given (matched by time; a point without a request row weighs 1), else 1.
std::vector<double> point_weights(const TimeSeries& series, const TimeSeries* requests) {
  std::vector<double> weights(series.size(), 1.0);
  if (requests == nullptr) return weights;
  std::size_t r = 0;
  for (std::size_t i = 0; i < series.size(); ++i) {
    while (r < requests->size() && (*requests)[r].t_s < series[i].t_s) ++r;
    if (r < requests->size() && (*requests)[r].t_s == series[i].t_s) {
      weights[i] = std::max(0.0, (*requests)[r].value);
    }
  }
  return weights;
}

// Weighted mean of the points in each bin; NaN where a bin has no weight.
std::vector<double> bin_series(const TimeSeries* series, const BinGrid& grid,
                               const TimeSeries* requests = nullptr) {
  std::vector<double> sums(grid.count, 0.0);
  std::vector<double> weights(grid.count, 0.0);
  if (series != nullptr) {
    const auto point_weight = point_weights(*series, requests);
    for (std::size_t i = 0; i < series->size(); ++i) {
      const auto& point = (*series)[i];
      if (!std::isfinite(point.value) || !(point_weight[i] > 0.0)) continue;
      if (const auto bin = grid.bin_of(point.t_s)) {
        sums[*bin] += point.value * point_weight[i];
        weights[*bin] += point_weight[i];
      }
    }
  }
  std::vector<double> means(grid.count, kNaN);
  for (std::size_t b = 0; b < grid.count; ++b) {
    if (weights[b] > 0.0) means[b] = sums[b] / weights[b];
  }
  return means;
}

double median(std::vector<double> values) {
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Median and 1.4826 * MAD (the standard deviation for normal data, unmoved by outliers).
std::pair<double, double> robust_centre_and_spread(const std::vector<double>& values) {
  const double centre = median(values);
  std::vector<double> deviations;
  deviations.reserve(values.size());
  for (double v : values) deviations.push_back(std::abs(v - centre));
  return {centre, 1.4826 * median(deviations)};
}

// The smallest step between two distinct values of a series (0 if it has one value): a
// gauge of whole workers or connections moves by one of them at least.
double resolution_of(const TimeSeries& series) {
  std::vector<double> values;
  values.reserve(series.size());
  for (const auto& point : series) {
    if (std::isfinite(point.value)) values.push_back(point.value);
  }
  std::sort(values.begin(), values.end());
  double step = 0.0;
  for (std::size_t i = 1; i < values.size(); ++i) {
    const double gap = values[i] - values[i - 1];
    // Steps of a value's last printed digits are rounding, not resolution.
    if (gap <= 1e-9 * std::max(1.0, std::abs(values[i]))) continue;
    if (step == 0.0 || gap < step) step = gap;
  }
  return step;
}

const TimeSeries* find_series(const MetricSeries& series, const std::string& name) {
  const auto found = series.find(name);
  return found == series.end() || found->second.empty() ? nullptr : &found->second;
}

// An error share (`<component>_err`) is errors over requests: a row without requests has no
// share, whatever its cell says (writers put 0 there), and rows weigh by their requests when
// binned. Its request series, `<component>_rps`, when the data has one.
const TimeSeries* requests_behind(const MetricSeries& series, const std::string& name) {
  if (!name.ends_with("_err")) return nullptr;
  return find_series(series, name.substr(0, name.size() - 4) + "_rps");
}

// The bins of metric `name` of `series`, error shares weighed by their requests.
std::vector<double> bin_metric(const MetricSeries& series, const std::string& name,
                               const BinGrid& grid) {
  return bin_series(find_series(series, name), grid, requests_behind(series, name));
}

double quantile_of_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[above] - sorted[below]);
}

std::vector<double> softmax(const std::vector<double>& log_likelihoods) {
  const double top = *std::max_element(log_likelihoods.begin(), log_likelihoods.end());
  std::vector<double> weights;
  weights.reserve(log_likelihoods.size());
  double total = 0.0;
  for (double ll : log_likelihoods) {
    weights.push_back(std::exp(ll - top));
    total += weights.back();
  }
  for (double& w : weights) w /= total;
  return weights;
}

// Normalised values of every candidate's replications: [candidate][replication][metric][bin].
using NormalisedRuns = std::vector<std::vector<std::vector<std::vector<double>>>>;

// The scoring core shared by the point estimate and the bootstrap: the Gaussian
// log-likelihood of the observed bins given a multiset of replications (indices may repeat).
class SeriesScorer {
 public:
  SeriesScorer(const std::vector<std::vector<double>>& observed_z, const NormalisedRuns& runs,
               const DiagnosisOptions& options)
      : observed_z_(observed_z), runs_(runs), options_(options) {}

  double metric_log_likelihood(std::size_t candidate, std::size_t metric,
                               const std::vector<std::size_t>& replications) const {
    const auto& observed = observed_z_[metric];
    const std::size_t bin_count = observed.size();
    // Replication by replication, each one's bins contiguous: this loop is the diagnosis's
    // whole cost (bootstrap draws x candidates x metrics x replications x bins).
    sums_.assign(bin_count, 0.0);
    sum_squares_.assign(bin_count, 0.0);
    counts_.assign(bin_count, 0);
    for (std::size_t r : replications) {
      const std::vector<double>& row = runs_[candidate][r][metric];
      for (std::size_t b = 0; b < bin_count; ++b) {
        const double z = row[b];
        if (!std::isfinite(z)) continue;
        sums_[b] += z;
        sum_squares_[b] += z * z;
        ++counts_[b];
      }
    }
    const double floor_variance = options_.noise_floor * options_.noise_floor;
    double total = 0.0;
    int bins = 0;
    for (std::size_t b = 0; b < bin_count; ++b) {
      if (!std::isfinite(observed[b])) continue;
      const int n = counts_[b];
      // A bin no replication covered predicts the baseline (no deviation).
      const double mean = n > 0 ? sums_[b] / n : 0.0;
      const double sample_variance =
          n > 1 ? std::max(0.0, (sum_squares_[b] - n * mean * mean) / (n - 1)) : 0.0;
      // The predictive variance of a new draw: the replications' spread, inflated for their
      // own estimate of the mean, plus the floor.
      const double variance = (n > 0 ? sample_variance * (1.0 + 1.0 / n) : 0.0) + floor_variance;
      const double residual = observed[b] - mean;
      total +=
          -0.5 * (residual * residual / variance + std::log(2.0 * std::numbers::pi * variance));
      ++bins;
    }
    if (bins == 0) return 0.0;
    return total / bins * options_.effective_samples_per_metric;
  }

 private:
  const std::vector<std::vector<double>>& observed_z_;
  const NormalisedRuns& runs_;
  const DiagnosisOptions& options_;
  // Scratch space reused across calls (one scorer, one thread).
  mutable std::vector<double> sums_;
  mutable std::vector<double> sum_squares_;
  mutable std::vector<int> counts_;
};

std::vector<std::size_t> all_indices(std::size_t n) {
  std::vector<std::size_t> indices(n);
  std::iota(indices.begin(), indices.end(), 0);
  return indices;
}

std::vector<std::size_t> resample(std::size_t n, model::RandomStream& rng) {
  std::vector<std::size_t> drawn(n);
  for (auto& index : drawn) index = static_cast<std::size_t>(rng.below(n));
  return drawn;
}

// Fills posterior, interval and the order of `scores` from the point log-likelihoods and
// the bootstrap draws ([draw][candidate] log-likelihoods).
void rank(std::vector<CandidateScore>& scores,
          const std::vector<std::vector<double>>& bootstrap_log_likelihoods,
          const DiagnosisOptions& options) {
  std::vector<double> point;
  for (const auto& score : scores) point.push_back(score.log_likelihood);
  const auto posteriors = softmax(point);
  std::vector<std::vector<double>> draws(scores.size());
  for (const auto& draw : bootstrap_log_likelihoods) {
    const auto p = softmax(draw);
    for (std::size_t c = 0; c < scores.size(); ++c) draws[c].push_back(p[c]);
  }
  const double tail = (1.0 - options.interval_level) / 2.0;
  for (std::size_t c = 0; c < scores.size(); ++c) {
    scores[c].posterior = posteriors[c];
    auto& sorted = draws[c];
    std::sort(sorted.begin(), sorted.end());
    if (sorted.empty()) {
      scores[c].interval = {posteriors[c], posteriors[c]};
    } else {
      // The interval always holds the point estimate: a bootstrap whose draws all miss it
      // says more about the draws than about the estimate.
      scores[c].interval.lower = std::min(quantile_of_sorted(sorted, tail), posteriors[c]);
      scores[c].interval.upper = std::max(quantile_of_sorted(sorted, 1.0 - tail), posteriors[c]);
    }
  }
  std::stable_sort(scores.begin(), scores.end(), [](const auto& a, const auto& b) {
    return a.log_likelihood > b.log_likelihood;
  });
}

void check_candidates(const std::vector<CandidateRuns>& candidates) {
  if (candidates.empty()) throw std::invalid_argument("no candidate causes to rank");
  for (const auto& candidate : candidates) {
    if (candidate.replications.empty()) {
      throw std::invalid_argument(
          fmt::format("candidate '{}' has no simulated replication", candidate.name));
    }
  }
}

CandidateScore blank_score(const CandidateRuns& candidate) {
  CandidateScore score;
  score.name = candidate.name;
  score.description = candidate.description;
  score.null_hypothesis = candidate.null_hypothesis;
  score.replications = static_cast<int>(candidate.replications.size());
  return score;
}

bool simulated_by_every_candidate(const std::vector<CandidateRuns>& candidates,
                                  const std::string& name) {
  return std::all_of(candidates.begin(), candidates.end(), [&](const CandidateRuns& candidate) {
    return std::any_of(candidate.replications.begin(), candidate.replications.end(),
                       [&](const MetricSeries& run) { return find_series(run, name) != nullptr; });
  });
}

bool selected(const DiagnosisOptions& options, const std::string& name) {
  return options.metrics.empty() ||
         std::find(options.metrics.begin(), options.metrics.end(), name) != options.metrics.end();
}

std::vector<double> column_mean_and_sd(const std::vector<std::vector<double>>& per_run,
                                       std::size_t bins, std::vector<double>& sd) {
  std::vector<double> mean(bins, kNaN);
  sd.assign(bins, kNaN);
  for (std::size_t b = 0; b < bins; ++b) {
    double sum = 0.0;
    double sum_squares = 0.0;
    int n = 0;
    for (const auto& run : per_run) {
      if (!std::isfinite(run[b])) continue;
      sum += run[b];
      sum_squares += run[b] * run[b];
      ++n;
    }
    if (n == 0) continue;
    mean[b] = sum / n;
    sd[b] = n > 1 ? std::sqrt(std::max(0.0, (sum_squares - n * mean[b] * mean[b]) / (n - 1))) : 0.0;
  }
  return mean;
}

double mean_of_finite(const std::vector<double>& values) {
  double sum = 0.0;
  int n = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    sum += v;
    ++n;
  }
  return n > 0 ? sum / n : 0.0;
}

}  // namespace

Diagnosis diagnose(const MetricSeries& observed, const std::vector<CandidateRuns>& candidates,
                   const DiagnosisOptions& options) {
  check_candidates(candidates);
  const BinGrid grid = make_grid(options, observed);
  Diagnosis diagnosis;
  diagnosis.options = options;

  // Metrics compared: observed in the window and simulated by every candidate.
  std::vector<std::string> names;
  for (const auto& [name, series] : observed) {
    if (!selected(options, name)) continue;
    const auto bins = bin_metric(observed, name, grid);
    const bool seen_in_window =
        std::any_of(bins.begin(), bins.end(), [](double v) { return std::isfinite(v); });
    if (seen_in_window && simulated_by_every_candidate(candidates, name)) {
      names.push_back(name);
    } else {
      diagnosis.ignored_metrics.push_back(name);
    }
  }

  // Raw binned values: [candidate][replication][metric][bin].
  NormalisedRuns runs(candidates.size());
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    for (const auto& replication : candidates[c].replications) {
      auto& per_metric = runs[c].emplace_back();
      for (const auto& name : names) per_metric.push_back(bin_metric(replication, name, grid));
    }
  }

  std::vector<std::vector<double>> observed_z;
  for (std::size_t m = 0; m < names.size(); ++m) {
    ComparedMetric metric;
    metric.name = names[m];
    const TimeSeries& series = observed.find(names[m])->second;
    metric.observed = bin_metric(observed, names[m], grid);
    for (std::size_t b = 0; b < grid.count; ++b) metric.bin_times_s.push_back(grid.centre(b));

    std::vector<double> baseline;
    const auto weights = point_weights(series, requests_behind(observed, names[m]));
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (series[i].t_s < options.window_start_s && weights[i] > 0.0) {
        baseline.push_back(series[i].value);
      }
    }
    if (baseline.size() < 3) {
      // No observed baseline: the null hypothesis's simulated window is the reference, else
      // the observed window itself.
      baseline.clear();
      for (std::size_t c = 0; c < candidates.size(); ++c) {
        if (!candidates[c].null_hypothesis) continue;
        for (const auto& run : runs[c]) {
          for (double v : run[m]) {
            if (std::isfinite(v)) baseline.push_back(v);
          }
        }
      }
      if (baseline.empty()) {
        for (double v : metric.observed) {
          if (std::isfinite(v)) baseline.push_back(v);
        }
      }
    }
    const auto [centre, spread] = robust_centre_and_spread(baseline);
    // The largest excursion observed (or simulated without a fault) bounds how small the
    // scale may get, so a metric that is flat at baseline (an error rate of 0) cannot
    // outweigh all others. Not the candidates' excursions: then the scores of two candidates
    // would depend on which others are in the set.
    double largest_excursion = 0.0;
    for (double v : metric.observed) {
      if (std::isfinite(v)) largest_excursion = std::max(largest_excursion, std::abs(v - centre));
    }
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      if (!candidates[c].null_hypothesis) continue;
      for (const auto& run : runs[c]) {
        for (double v : run[m]) {
          if (std::isfinite(v))
            largest_excursion = std::max(largest_excursion, std::abs(v - centre));
        }
      }
    }
    metric.baseline_center = centre;
    metric.scale = std::max({spread, options.relative_scale_floor * std::abs(centre),
                             options.relative_scale_floor * largest_excursion,
                             options.resolution_share * resolution_of(series), kTinyScale});
    std::vector<double> z(grid.count, kNaN);
    for (std::size_t b = 0; b < grid.count; ++b) {
      if (std::isfinite(metric.observed[b])) z[b] = (metric.observed[b] - centre) / metric.scale;
    }
    metric.observed_deviation = mean_of_finite(z);
    metric.symptom = std::abs(metric.observed_deviation) > options.deviation_threshold;
    observed_z.push_back(std::move(z));
    diagnosis.metrics.push_back(std::move(metric));
  }

  // Keep own-unit curves for the report before normalising in place.
  std::vector<CandidateScore> scores;
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    CandidateScore score = blank_score(candidates[c]);
    for (std::size_t m = 0; m < names.size(); ++m) {
      std::vector<std::vector<double>> per_run;
      for (const auto& run : runs[c]) per_run.push_back(run[m]);
      std::vector<double> sd;
      score.simulated_mean.push_back(column_mean_and_sd(per_run, grid.count, sd));
      score.simulated_sd.push_back(std::move(sd));
    }
    for (auto& run : runs[c]) {
      for (std::size_t m = 0; m < names.size(); ++m) {
        for (double& v : run[m]) {
          if (std::isfinite(v)) {
            v = std::clamp((v - diagnosis.metrics[m].baseline_center) / diagnosis.metrics[m].scale,
                           -options.max_abs_z, options.max_abs_z);
          }
        }
      }
    }
    scores.push_back(std::move(score));
  }

  const SeriesScorer scorer(observed_z, runs, options);
  const double threshold = options.deviation_threshold;
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    const auto every_run = all_indices(runs[c].size());
    CandidateScore& score = scores[c];
    for (std::size_t m = 0; m < names.size(); ++m) {
      score.log_likelihood += scorer.metric_log_likelihood(c, m, every_run);
      std::vector<double> mean_z(grid.count, kNaN);
      for (std::size_t b = 0; b < grid.count; ++b) {
        // Only bins that were observed: the deviation compares like with like.
        if (!std::isfinite(observed_z[m][b]) || !std::isfinite(score.simulated_mean[m][b])) {
          continue;
        }
        mean_z[b] = (score.simulated_mean[m][b] - diagnosis.metrics[m].baseline_center) /
                    diagnosis.metrics[m].scale;
      }
      const double predicted = mean_of_finite(mean_z);
      score.predicted_deviation.push_back(predicted);
      const double seen = diagnosis.metrics[m].observed_deviation;
      const bool observed_deviates = std::abs(seen) > threshold;
      const bool predicted_deviates = std::abs(predicted) > threshold;
      const bool same_sign = (seen > 0) == (predicted > 0);
      if (observed_deviates && predicted_deviates && same_sign) {
        if (std::abs(predicted - seen) <= std::max(threshold, 0.5 * std::abs(seen))) {
          score.explains.push_back(names[m]);
        } else if (std::abs(predicted) > 2.0 * std::abs(seen) + threshold) {
          score.contradicts.push_back(names[m]);  // far more than was seen
        } else {
          score.misses.push_back(names[m]);  // the right way, but too little
        }
      } else if (predicted_deviates) {
        score.contradicts.push_back(names[m]);
      } else if (observed_deviates) {
        score.misses.push_back(names[m]);
      }
    }
  }

  // Bootstrap: each candidate's replications drawn with replacement (replication noise), and
  // the metrics too when asked (how much the ranking rests on single metrics).
  std::vector<std::vector<double>> bootstrap;
  if (!names.empty()) {
    for (int draw = 0; draw < options.bootstrap_samples; ++draw) {
      auto rng = model::RandomStream::for_component(options.seed, static_cast<std::uint64_t>(draw),
                                                    "diagnosis-bootstrap");
      const auto metrics_drawn =
          options.resample_metrics ? resample(names.size(), rng) : all_indices(names.size());
      std::vector<double> log_likelihoods;
      for (std::size_t c = 0; c < candidates.size(); ++c) {
        const auto runs_drawn = resample(runs[c].size(), rng);
        double total = 0.0;
        for (std::size_t m : metrics_drawn) total += scorer.metric_log_likelihood(c, m, runs_drawn);
        log_likelihoods.push_back(total);
      }
      bootstrap.push_back(std::move(log_likelihoods));
    }
  }
  rank(scores, bootstrap, options);
  diagnosis.ranking = std::move(scores);
  for (const auto& candidate : candidates) {
    for (const auto& run : candidate.replications) {
      for (const auto& [name, series] : run) {
        if (find_series(observed, name) == nullptr && selected(options, name) &&
            std::find(diagnosis.ignored_metrics.begin(), diagnosis.ignored_metrics.end(), name) ==
                diagnosis.ignored_metrics.end()) {
          diagnosis.ignored_metrics.push_back(name);
        }
      }
    }
  }
  std::sort(diagnosis.ignored_metrics.begin(), diagnosis.ignored_metrics.end());
  return diagnosis;
}

namespace {

// Whether a symptom holds in one run: the median of the metric over the symptom's span.
std::optional<bool> symptom_holds(const Symptom& symptom, const MetricSeries& run,
                                  double window_end_s) {
  const TimeSeries* series = find_series(run, symptom.metric_name());
  if (series == nullptr) return std::nullopt;
  const double until = symptom.until_s.value_or(std::max(window_end_s, symptom.from_s));
  std::vector<double> values;
  for (const auto& point : *series) {
    if (point.t_s >= symptom.from_s && point.t_s <= until) values.push_back(point.value);
  }
  if (values.empty()) return std::nullopt;
  return symptom.holds(median(values));
}

}  // namespace

Diagnosis diagnose(const SymptomSpec& spec, const std::vector<CandidateRuns>& candidates,
                   const DiagnosisOptions& options) {
  check_candidates(candidates);
  const BinGrid grid = make_grid(options, {});
  Diagnosis diagnosis;
  diagnosis.options = options;

  std::vector<const Symptom*> compared;
  for (const auto& symptom : spec.symptoms) {
    const std::string name = symptom.metric_name();
    const bool simulated = std::any_of(candidates.begin(), candidates.end(), [&](const auto& c) {
      return std::any_of(c.replications.begin(), c.replications.end(), [&](const auto& run) {
        return symptom_holds(symptom, run, options.window_end_s).has_value();
      });
    });
    if (!simulated) {
      diagnosis.ignored_metrics.push_back(symptom.describe());
      continue;
    }
    compared.push_back(&symptom);
    ComparedMetric metric;
    metric.name = symptom.describe();
    for (std::size_t b = 0; b < grid.count; ++b) metric.bin_times_s.push_back(grid.centre(b));
    metric.observed.assign(grid.count, kNaN);
    metric.symptom = true;
    diagnosis.metrics.push_back(std::move(metric));
  }

  // holds[c][r][s]: 1 holds, 0 does not, -1 no data.
  std::vector<std::vector<std::vector<int>>> holds(candidates.size());
  std::vector<CandidateScore> scores;
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    CandidateScore score = blank_score(candidates[c]);
    for (const auto& run : candidates[c].replications) {
      auto& row = holds[c].emplace_back();
      for (const Symptom* symptom : compared) {
        const auto result = symptom_holds(*symptom, run, options.window_end_s);
        row.push_back(result ? static_cast<int>(*result) : -1);
      }
    }
    for (const Symptom* symptom : compared) {
      std::vector<std::vector<double>> per_run;
      for (const auto& run : candidates[c].replications) {
        per_run.push_back(bin_metric(run, symptom->metric_name(), grid));
      }
      std::vector<double> sd;
      score.simulated_mean.push_back(column_mean_and_sd(per_run, grid.count, sd));
      score.simulated_sd.push_back(std::move(sd));
    }
    scores.push_back(std::move(score));
  }

  const auto log_likelihood = [&](std::size_t c, std::size_t s,
                                  const std::vector<std::size_t>& runs) {
    int held = 0;
    int with_data = 0;
    for (std::size_t r : runs) {
      if (holds[c][r][s] < 0) continue;
      held += holds[c][r][s];
      ++with_data;
    }
    return std::log((held + 0.5) / (with_data + 1.0));
  };

  for (std::size_t c = 0; c < candidates.size(); ++c) {
    const auto every_run = all_indices(candidates[c].replications.size());
    for (std::size_t s = 0; s < compared.size(); ++s) {
      const double ll = log_likelihood(c, s, every_run);
      scores[c].log_likelihood += ll;
      const double share = std::exp(ll);
      scores[c].predicted_deviation.push_back(share);
      (share >= 0.5 ? scores[c].explains : scores[c].misses).push_back(compared[s]->describe());
    }
  }

  std::vector<std::vector<double>> bootstrap;
  if (!compared.empty()) {
    for (int draw = 0; draw < options.bootstrap_samples; ++draw) {
      auto rng = model::RandomStream::for_component(options.seed, static_cast<std::uint64_t>(draw),
                                                    "diagnosis-bootstrap");
      const auto symptoms_drawn =
          options.resample_metrics ? resample(compared.size(), rng) : all_indices(compared.size());
      std::vector<double> log_likelihoods;
      for (std::size_t c = 0; c < candidates.size(); ++c) {
        const auto runs_drawn = resample(candidates[c].replications.size(), rng);
        double total = 0.0;
        for (std::size_t s : symptoms_drawn) total += log_likelihood(c, s, runs_drawn);
        log_likelihoods.push_back(total);
      }
      bootstrap.push_back(std::move(log_likelihoods));
    }
  }
  rank(scores, bootstrap, options);
  diagnosis.ranking = std::move(scores);
  return diagnosis;
}

std::vector<std::string> screen(const Diagnosis& cheap_pass, const ScreeningOptions& options) {
  std::vector<std::string> leaders;
  double covered = 0.0;
  for (const auto& score : cheap_pass.ranking) {
    const bool within_coverage =
        leaders.empty() ||
        (covered < options.coverage && static_cast<int>(leaders.size()) < options.max_leaders);
    const bool plausible = score.interval.upper >= options.min_upper;
    const bool kept_null = options.keep_null_hypothesis && score.null_hypothesis;
    if (within_coverage || plausible || kept_null) {
      leaders.push_back(score.name);
      covered += score.posterior;
    }
  }
  return leaders;
}

bool leader_is_clear(const Diagnosis& diagnosis, double threshold) {
  if (diagnosis.ranking.empty()) return false;
  const auto& leader = diagnosis.ranking.front();
  if (!(leader.posterior > threshold)) return false;
  if (diagnosis.ranking.size() < 2) return true;
  return leader.interval.lower > diagnosis.ranking[1].interval.upper;
}

namespace {

std::string joined(const std::vector<std::string>& names, std::size_t limit) {
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) {
    if (i > 0) text += ", ";
    text += names[i];
  }
  if (names.size() > limit) text += fmt::format(" (+{})", names.size() - limit);
  return text.empty() ? "-" : text;
}

nlohmann::json finite_or_null(const std::vector<double>& values) {
  nlohmann::json array = nlohmann::json::array();
  for (double v : values) array.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
  return array;
}

}  // namespace

void print_diagnosis_table(std::ostream& out, const Diagnosis& diagnosis, int max_rows) {
  out << fmt::format("{:>4}  {:<36} {:>11}  {:<15}  {}\n", "rank", "cause", "probability",
                     "90% interval", "explains / contradicts");
  int row = 0;
  for (const auto& score : diagnosis.ranking) {
    if (row >= max_rows) {
      out << fmt::format("      ... {} more\n", diagnosis.ranking.size() - row);
      break;
    }
    ++row;
    std::string name = score.name;
    if (name.size() > 36) name = name.substr(0, 33) + "...";
    out << fmt::format("{:>4}  {:<36} {:>11.3f}  [{:.3f}, {:.3f}]  +{} / -{}\n", row, name,
                       score.posterior, score.interval.lower, score.interval.upper,
                       joined(score.explains, 3), joined(score.contradicts, 3));
  }
  std::size_t symptoms = 0;
  for (const auto& metric : diagnosis.metrics) symptoms += metric.symptom ? 1 : 0;
  out << fmt::format("{} metrics compared ({} deviate from baseline), {} not compared\n",
                     diagnosis.metrics.size(), symptoms, diagnosis.ignored_metrics.size());
}

void write_diagnosis_json(std::ostream& out, const Diagnosis& diagnosis) {
  using nlohmann::json;
  const auto& options = diagnosis.options;
  json doc;
  doc["format"] = kDiagnosisFormat;
  doc["window"] = {{"start_s", options.window_start_s}, {"end_s", options.window_end_s}};
  doc["method"] = {{"noise_floor", options.noise_floor},
                   {"relative_scale_floor", options.relative_scale_floor},
                   {"resolution_share", options.resolution_share},
                   {"max_abs_z", options.max_abs_z},
                   {"effective_samples_per_metric", options.effective_samples_per_metric},
                   {"deviation_threshold", options.deviation_threshold},
                   {"bootstrap_samples", options.bootstrap_samples},
                   {"resample_metrics", options.resample_metrics},
                   {"interval_level", options.interval_level},
                   {"seed", options.seed}};
  json metrics = json::array();
  for (const auto& metric : diagnosis.metrics) {
    metrics.push_back({{"name", metric.name},
                       {"baseline_center", metric.baseline_center},
                       {"scale", metric.scale},
                       {"observed_deviation", metric.observed_deviation},
                       {"symptom", metric.symptom},
                       {"bin_times_s", metric.bin_times_s},
                       {"observed", finite_or_null(metric.observed)}});
  }
  doc["metrics"] = std::move(metrics);
  doc["ignored_metrics"] = diagnosis.ignored_metrics;
  json ranking = json::array();
  int rank_number = 0;
  for (const auto& score : diagnosis.ranking) {
    json simulated = json::object();
    for (std::size_t m = 0; m < diagnosis.metrics.size() && m < score.simulated_mean.size(); ++m) {
      simulated[diagnosis.metrics[m].name] = {
          {"mean", finite_or_null(score.simulated_mean[m])},
          {"sd", finite_or_null(score.simulated_sd[m])},
          {"predicted_deviation", score.predicted_deviation[m]}};
    }
    ranking.push_back({{"rank", ++rank_number},
                       {"name", score.name},
                       {"description", score.description},
                       {"null_hypothesis", score.null_hypothesis},
                       {"replications", score.replications},
                       {"log_likelihood", score.log_likelihood},
                       {"posterior", score.posterior},
                       {"interval", {score.interval.lower, score.interval.upper}},
                       {"explains", score.explains},
                       {"contradicts", score.contradicts},
                       {"misses", score.misses},
                       {"simulated", std::move(simulated)}});
  }
  doc["ranking"] = std::move(ranking);
  doc["leader_is_clear"] = leader_is_clear(diagnosis);
  out << doc.dump(2) << '\n';
}

}  // namespace doppel::experiments
