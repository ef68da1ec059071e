#include "doppel/experiments/simulated_diagnosis.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/model/input_error.hpp"

namespace doppel::experiments {

namespace {

double median_of(std::vector<double> values) {
  if (values.empty()) return 0.0;
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

double series_end(const MetricSeries& series) {
  double end = 0.0;
  for (const auto& [name, points] : series) {
    if (!points.empty()) end = std::max(end, points.back().t_s);
  }
  return end;
}

}  // namespace

namespace {

// A metric's baseline: where it sits, how much it moves, and its range.
struct Baseline {
  double center = 0.0;
  double scale = 1.0;
  double low = 0.0;
  double high = 0.0;

  bool departs(double value, const OnsetOptions& options) const {
    const double margin = options.range_margin * (high - low);
    return std::abs(value - center) > options.threshold * scale &&
           (value > high + margin || value < low - margin);
  }
};

Baseline baseline_of(const std::vector<double>& values, const OnsetOptions& options) {
  Baseline baseline;
  baseline.center = median_of(values);
  std::vector<double> deviations;
  for (const double value : values) deviations.push_back(std::abs(value - baseline.center));
  baseline.scale =
      std::max({median_of(deviations) * 1.4826, options.relative_floor * std::abs(baseline.center),
                options.absolute_floor});
  baseline.low = *std::min_element(values.begin(), values.end());
  baseline.high = *std::max_element(values.begin(), values.end());
  return baseline;
}

}  // namespace

namespace {

// k log(k / n), 0 at k = 0: the terms of Poisson and binomial log-likelihoods at their
// maximum-likelihood rates.
double xlogx_over(double k, double n) {
  return k > 0.0 && n > 0.0 ? k * std::log(k / n) : 0.0;
}

// Twice the log-likelihood ratio of "the rate changed after `split` rows" against "one rate
// throughout", for Poisson counts per row.
double poisson_change_g(double count_before, double rows_before, double count_after,
                        double rows_after) {
  const double split = xlogx_over(count_before, rows_before) + xlogx_over(count_after, rows_after);
  const double joint = xlogx_over(count_before + count_after, rows_before + rows_after);
  return 2.0 * (split - joint);
}

// The same for binomial error counts (errors out of requests).
double binomial_change_g(double errors_before, double requests_before, double errors_after,
                         double requests_after) {
  const auto ll = [](double errors, double requests) {
    return xlogx_over(errors, requests) + xlogx_over(requests - errors, requests);
  };
  return 2.0 * (ll(errors_before, requests_before) + ll(errors_after, requests_after) -
                ll(errors_before + errors_after, requests_before + requests_after));
}

// Overdispersion of counts around a mean per segment (Pearson chi-square over its degrees of
// freedom, at least 1): calls a request fans out into arrive in bursts, ten route calls per
// HotROD request, so their counts vary far more than a Poisson count, and an unscaled
// likelihood ratio would see a change in every lull (measured: 9 healthy runs in 12).
double poisson_dispersion(const std::vector<double>& counts, std::size_t split) {
  if (counts.size() <= 2) return 1.0;
  double chi_square = 0.0;
  for (const auto& [from, to] :
       {std::pair{std::size_t{0}, split}, std::pair{split, counts.size()}}) {
    double sum = 0.0;
    for (std::size_t i = from; i < to; ++i) sum += counts[i];
    const double mean = to > from ? sum / double(to - from) : 0.0;
    if (mean <= 0.0) continue;
    for (std::size_t i = from; i < to; ++i)
      chi_square += (counts[i] - mean) * (counts[i] - mean) / mean;
  }
  return std::max(1.0, chi_square / double(counts.size() - 2));
}

// The same for error counts out of each row's requests, around a share per segment.
double binomial_dispersion(const std::vector<double>& errors, const std::vector<double>& requests,
                           std::size_t split) {
  if (errors.size() <= 2) return 1.0;
  double chi_square = 0.0;
  for (const auto& [from, to] :
       {std::pair{std::size_t{0}, split}, std::pair{split, errors.size()}}) {
    double failed = 0.0;
    double total = 0.0;
    for (std::size_t i = from; i < to; ++i) {
      failed += errors[i];
      total += requests[i];
    }
    const double share = total > 0.0 ? failed / total : 0.0;
    if (share <= 0.0 || share >= 1.0) continue;
    for (std::size_t i = from; i < to; ++i) {
      const double expected = requests[i] * share;
      if (expected > 0.0) {
        chi_square += (errors[i] - expected) * (errors[i] - expected) / (expected * (1.0 - share));
      }
    }
  }
  return std::max(1.0, chi_square / double(errors.size() - 2));
}

// Mid-ranks (ties averaged), 1-based.
std::vector<double> mid_ranks(const std::vector<double>& values) {
  const std::size_t n = values.size();
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> rank(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j + 1 < n && values[order[j + 1]] == values[order[i]]) ++j;
    for (std::size_t k = i; k <= j; ++k) rank[order[k]] = 0.5 * double(i + j) + 1.0;
    i = j + 1;
  }
  return rank;
}

// The Wilcoxon rank-sum z of the n - split values after `split` against those before, from
// the sum of their ranks (no tie correction of the variance: conservative).
double rank_sum_z(double after_ranks, std::size_t n, std::size_t split) {
  const double before = double(split);
  const double after = double(n - split);
  const double expected = after * (double(n) + 1.0) / 2.0;
  const double variance = before * after * (double(n) + 1.0) / 12.0;
  return variance > 0.0 ? (after_ranks - expected) / std::sqrt(variance) : 0.0;
}

// prefix[i] = sum of values[0..i).
std::vector<double> prefix_sums(const std::vector<double>& values) {
  std::vector<double> prefix(values.size() + 1, 0.0);
  for (std::size_t i = 0; i < values.size(); ++i) prefix[i + 1] = prefix[i] + values[i];
  return prefix;
}

// The median gap between a series' points: its row spacing.
double median_gap(const TimeSeries& points) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < points.size(); ++i) gaps.push_back(points[i].t_s - points[i - 1].t_s);
  return median_of(gaps);
}

// Requests per row of a `<component>_rps` series: the rate times the row spacing.
std::vector<double> requests_per_row(const TimeSeries& rates) {
  const double row_s = std::max(1e-9, median_gap(rates));
  std::vector<double> requests;
  requests.reserve(rates.size());
  for (const auto& point : rates) requests.push_back(std::max(0.0, point.value * row_s));
  return requests;
}

std::size_t baseline_rows(std::size_t rows, const OnsetOptions& options) {
  return std::max<std::size_t>(
      static_cast<std::size_t>(std::max(1, options.min_baseline_points)),
      static_cast<std::size_t>(std::ceil(options.baseline_share * double(rows))));
}

// Whether the baseline rows of `requests` (per row) see at most low_rate_max_per_row.
bool low_rate(const std::vector<double>& requests, const OnsetOptions& options) {
  const std::size_t first = std::min(requests.size(), baseline_rows(requests.size(), options));
  return median_of({requests.begin(), requests.begin() + static_cast<std::ptrdiff_t>(first)}) <=
         options.low_rate_max_per_row;
}

// The components whose baseline sees at most low_rate_max_per_row requests a row.
std::set<std::string> low_rate_components(const MetricSeries& observed,
                                          const OnsetOptions& options) {
  std::set<std::string> low;
  for (const auto& [name, rates] : observed) {
    if (!name.ends_with("_rps") || rates.size() < 2) continue;
    if (low_rate(requests_per_row(rates), options)) low.insert(name.substr(0, name.size() - 4));
  }
  return low;
}

// The rows' spacing: the median gap of the first series that has two points.
double row_spacing(const MetricSeries& observed) {
  for (const auto& [name, points] : observed) {
    if (points.size() >= 2) return median_gap(points);
  }
  return 0.0;
}

// Whether `name` is one of the series counted from a component's requests (its rate, load,
// error share and latency percentiles).
bool counted_from_requests(const std::string& name, const std::string& component) {
  if (!name.starts_with(component) || name.size() <= component.size() ||
      name[component.size()] != '_') {
    return false;
  }
  const std::string_view metric = std::string_view(name).substr(component.size() + 1);
  return metric == "rps" || metric == "lod" || metric == "err" || metric.starts_with("lat_");
}

}  // namespace

std::optional<double> count_onset(const MetricSeries& observed, const OnsetOptions& options) {
  std::optional<double> onset;
  const auto note = [&](double t_s) {
    if (!onset || t_s < *onset) onset = t_s;
  };
  // The splits a series may change at: enough rows before, in the baseline and after.
  const auto splits = [&](std::size_t rows) {
    const auto first = baseline_rows(rows, options);
    const auto tail = static_cast<std::size_t>(std::max(1, options.persistence_points));
    return std::pair{first, rows >= tail ? rows - tail : 0};
  };
  for (const auto& [name, rates] : observed) {
    if (!name.ends_with("_rps") || rates.size() < 2) continue;
    const std::string component = name.substr(0, name.size() - 4);
    const auto requests = requests_per_row(rates);
    const auto [first, last] = splits(requests.size());
    if (first >= last || !low_rate(requests, options)) continue;

    // Request counts: the best split of a Poisson rate.
    const auto best_split = [&](auto statistic, std::size_t count, std::size_t lo,
                                std::size_t hi) -> std::optional<std::size_t> {
      double best = 0.0;
      std::optional<std::size_t> at;
      for (std::size_t split = lo; split <= hi && split < count; ++split) {
        const double value = statistic(split);
        if (value > best) {
          best = value;
          at = split;
        }
      }
      return at;
    };
    const auto request_sums = prefix_sums(requests);
    const auto rate_g = [&](std::size_t split) {
      const double before = request_sums[split];
      return poisson_change_g(before, double(split), request_sums.back() - before,
                              double(requests.size() - split)) /
             poisson_dispersion(requests, split);
    };
    if (const auto at = best_split(rate_g, requests.size(), first, last);
        at && rate_g(*at) > options.count_g_threshold) {
      note(rates[*at].t_s);
    }

    // Error counts, by the rows that have both a rate and an error share.
    if (const auto err = observed.find(component + "_err"); err != observed.end()) {
      std::map<double, double> share_at;
      for (const auto& point : err->second) share_at[point.t_s] = point.value;
      std::vector<double> times, errors, counts;
      for (std::size_t i = 0; i < rates.size(); ++i) {
        const auto share = share_at.find(rates[i].t_s);
        if (share == share_at.end()) continue;
        times.push_back(rates[i].t_s);
        counts.push_back(requests[i]);
        errors.push_back(std::clamp(share->second, 0.0, 1.0) * requests[i]);
      }
      const auto [lo, hi] = splits(times.size());
      const auto error_sums = prefix_sums(errors);
      const auto count_sums = prefix_sums(counts);
      const auto error_g = [&](std::size_t split) {
        const double e = error_sums[split], n = count_sums[split];
        const double e_after = error_sums.back() - e, n_after = count_sums.back() - n;
        // Only errors rising: fewer errors is no symptom.
        if (n <= 0.0 || n_after <= 0.0 || e_after / n_after <= e / n) return 0.0;
        return binomial_change_g(e, n, e_after, n_after) /
               binomial_dispersion(errors, counts, split);
      };
      if (lo < hi) {
        if (const auto at = best_split(error_g, times.size(), lo, hi);
            at && error_g(*at) > options.count_g_threshold) {
          note(times[*at]);
        }
      }
    }

    // Latencies: one request a row is one value; a rank test needs no distribution.
    const std::string latency_prefix = component + "_lat_";
    for (auto it = observed.lower_bound(latency_prefix);
         it != observed.end() && it->first.starts_with(latency_prefix); ++it) {
      std::vector<double> values;
      for (const auto& point : it->second) values.push_back(point.value);
      const auto [lo, hi] = splits(values.size());
      if (lo >= hi) continue;
      const auto rank_sums = prefix_sums(mid_ranks(values));
      const auto z = [&](std::size_t split) {
        return std::abs(rank_sum_z(rank_sums.back() - rank_sums[split], values.size(), split));
      };
      if (const auto at = best_split(z, values.size(), lo, hi);
          at && z(*at) > options.rank_z_threshold) {
        note(it->second[*at].t_s);
      }
    }
  }
  return onset;
}

OnsetOptions relaxed(OnsetOptions options) {
  options.threshold = options.relaxed_threshold;
  options.count_g_threshold = options.relaxed_count_g_threshold;
  options.rank_z_threshold = options.relaxed_rank_z_threshold;
  return options;
}

std::optional<double> detect_onset(const MetricSeries& observed, const OnsetOptions& options) {
  std::optional<double> onset;
  // A handful of requests a row makes a rate, error share or percentile jump from row to
  // row; a baseline of seven rows that happen to read 1 request then "departs" at the first
  // 3. Those series are the count rule's, which knows they are counts.
  const auto low_rate = low_rate_components(observed, options);
  const auto counted_at_low_rate = [&](const std::string& name) {
    return std::any_of(low_rate.begin(), low_rate.end(), [&](const std::string& component) {
      return counted_from_requests(name, component);
    });
  };
  for (const auto& [name, points] : observed) {
    if (counted_at_low_rate(name)) continue;
    const auto baseline_points = baseline_rows(points.size(), options);
    const auto window = static_cast<std::size_t>(std::max(1, options.persistence_points));
    if (points.size() < baseline_points + window) continue;
    std::vector<double> values;
    for (std::size_t i = 0; i < baseline_points; ++i) values.push_back(points[i].value);
    const Baseline baseline = baseline_of(values, options);
    std::vector<bool> departs;
    for (const auto& point : points) departs.push_back(baseline.departs(point.value, options));
    for (std::size_t i = baseline_points; i + window <= points.size(); ++i) {
      if (!departs[i]) continue;
      const auto beyond =
          std::count(departs.begin() + static_cast<std::ptrdiff_t>(i),
                     departs.begin() + static_cast<std::ptrdiff_t>(i + window), true);
      if (double(beyond) >= options.persistence_share * double(window)) {
        if (!onset || points[i].t_s < *onset) onset = points[i].t_s;
        break;
      }
    }
  }
  // At a few requests a row, persistence cannot show; counts over many rows can. The count
  // rule is the only judge of the series left out above, so it always has its say. But where
  // both see the same change, persistence places it to the row: a change point of counts can
  // land rows early (a row without requests, or a rate sagging by chance, just before the
  // change fits either side), and a fault started before its symptoms contradicts healthy
  // rows.
  if (const auto counted = count_onset(observed, options)) {
    const double lead_s = options.count_rule_lead_rows * row_spacing(observed);
    if (!onset || *counted < *onset - lead_s - 1e-9) onset = counted;
  }
  return onset;
}

std::set<std::string> departing_metrics(const MetricSeries& observed, double from_s,
                                        const OnsetOptions& options) {
  std::set<std::string> departing;
  for (const auto& [name, points] : observed) {
    // The rows just before from_s stay out of the baseline: an onset detected a row or two
    // late would otherwise make the fault's first values look normal.
    std::vector<double> before;
    std::vector<double> after;
    for (const auto& point : points) {
      if (point.t_s >= from_s) {
        after.push_back(point.value);
      } else if (point.t_s < from_s - options.baseline_guard_s) {
        before.push_back(point.value);
      }
    }
    if (before.size() < static_cast<std::size_t>(options.min_baseline_points) || after.empty()) {
      continue;
    }
    if (baseline_of(before, options).departs(median_of(after), options)) departing.insert(name);
  }
  return departing;
}

ObservedEvidence observed_evidence(const MetricSeries& observed, double from_s,
                                   const OnsetOptions& options, double quiet_rps,
                                   double silenced_share) {
  ObservedEvidence evidence;
  evidence.departing = departing_metrics(observed, from_s, options);
  // Every component with a rate column; those without one are quiet by definition below.
  for (const auto& [name, points] : observed) {
    if (!name.ends_with("_rps")) continue;
    evidence.rated.insert(name.substr(0, name.size() - 4));
    std::vector<double> before;
    std::vector<double> after;
    for (const auto& point : points) {
      (point.t_s < from_s ? before : after).push_back(point.value);
    }
    const std::string component = name.substr(0, name.size() - 4);
    const double usual = median_of(before);
    if (before.empty() || usual < quiet_rps) evidence.quiet.insert(component);
    if (!before.empty() && !after.empty() && usual > 0.0 &&
        median_of(after) <= silenced_share * usual) {
      evidence.silenced.insert(component);
    }
  }
  return evidence;
}

bool worth_simulating(const Candidate& candidate, const ObservedEvidence& evidence) {
  if (candidate.null_hypothesis || candidate.component.empty()) return true;
  if (candidate.kind == "zone_outage" || candidate.kind == "partition") return true;
  const auto& departing = evidence.departing;
  const auto any_with_prefix = [&](const std::string& prefix) {
    const auto it = departing.lower_bound(prefix);
    return it != departing.end() && it->starts_with(prefix);
  };
  // Silence is evidence only where the component is observed and busy; traffic that stops
  // altogether is a symptom of its own.
  const auto shows_or_quiet = [&](const std::string& component) {
    return any_with_prefix(component + "_") || evidence.quiet.contains(component) ||
           evidence.silenced.contains(component) || !evidence.rated.contains(component);
  };
  if (candidate.kind == "traffic_surge" || candidate.kind == "traffic_shift") {
    return any_with_prefix("route_") || any_with_prefix("all_routes_");
  }
  for (const auto& witness : candidate.witnesses) {
    if (any_with_prefix(witness)) return true;
  }
  const auto arrow = candidate.component.find("->");
  if (arrow != std::string::npos) {
    return shows_or_quiet(candidate.component.substr(0, arrow)) ||
           shows_or_quiet(candidate.component.substr(arrow + 2));
  }
  if (candidate.components.empty()) return shows_or_quiet(candidate.component);
  return std::any_of(candidate.components.begin(), candidate.components.end(), shows_or_quiet);
}

std::vector<std::string> with_leading_causes(const Diagnosis& screening,
                                             std::vector<std::string> leaders,
                                             const std::map<std::string, std::string>& cause_of,
                                             int min_causes) {
  const auto cause = [&](const std::string& name) {
    const auto found = cause_of.find(name);
    return found == cause_of.end() ? name : found->second;
  };
  std::set<std::string> causes;
  for (const auto& score : screening.ranking) {
    if (!score.null_hypothesis &&
        std::find(leaders.begin(), leaders.end(), score.name) != leaders.end()) {
      causes.insert(cause(score.name));
    }
  }
  for (const auto& score : screening.ranking) {  // best first
    if (static_cast<int>(causes.size()) >= min_causes) break;
    if (score.null_hypothesis || causes.contains(cause(score.name))) continue;
    causes.insert(cause(score.name));
    leaders.push_back(score.name);
  }
  return leaders;
}

std::vector<std::string> with_close_variants(const Diagnosis& screening,
                                             std::vector<std::string> leaders,
                                             const std::map<std::string, std::string>& cause_of,
                                             const CloseVariants& close) {
  const auto cause = [&](const std::string& name) {
    const auto found = cause_of.find(name);
    return found == cause_of.end() ? name : found->second;
  };
  std::map<std::string, int> variants;  // leading cause -> its variants among the leaders
  for (const auto& name : leaders) ++variants[cause(name)];
  std::map<std::string, double> best;  // leading cause -> its best screened log-likelihood
  for (const auto& score : screening.ranking) {  // best first
    if (score.null_hypothesis) continue;
    const std::string of = cause(score.name);
    if (!variants.contains(of)) continue;
    const auto [at, first] = best.emplace(of, score.log_likelihood);
    if (first) continue;
    const double within = std::max(close.margin, close.share * std::abs(at->second));
    if (score.log_likelihood < at->second - within || variants[of] >= close.max_per_cause ||
        std::find(leaders.begin(), leaders.end(), score.name) != leaders.end()) {
      continue;
    }
    leaders.push_back(score.name);
    ++variants[of];
  }
  return leaders;
}

std::vector<std::string> with_refined_parents(
    std::vector<std::string> leaders, const std::map<std::string, std::string>& refined_from) {
  const std::size_t chosen = leaders.size();
  for (std::size_t i = 0; i < chosen; ++i) {
    const auto parent = refined_from.find(leaders[i]);
    if (parent != refined_from.end() &&
        std::find(leaders.begin(), leaders.end(), parent->second) == leaders.end()) {
      leaders.push_back(parent->second);
    }
  }
  return leaders;
}

double sparse_bin_width(const MetricSeries& observed, double from_s, double min_requests_per_bin) {
  const auto entry = observed.find("all_routes_rps");
  if (entry == observed.end() || min_requests_per_bin <= 0.0) return 0.0;
  std::vector<double> before;
  for (const auto& point : entry->second) {
    if (point.t_s < from_s) before.push_back(point.value);
  }
  const double rate = median_of(before);
  return rate > 0.0 ? min_requests_per_bin / rate : 0.0;
}

SimulatedDiagnosis diagnose_by_simulation(const ObservedSymptoms& observed,
                                          const SimulatedDiagnosisOptions& options) {
  if (options.candidates.empty()) throw InputError("--candidates", {}, "no candidate to simulate");
  SimulatedDiagnosis result;

  // The window, and where the candidates' faults start.
  const double observed_end = series_end(observed.series);
  double onset = 0.0;
  if (options.window_start_s) {
    onset = *options.window_start_s;
  } else if (observed.spec && !observed.spec->symptoms.empty()) {
    onset = observed.spec->symptoms.front().from_s;
    for (const auto& symptom : observed.spec->symptoms) onset = std::min(onset, symptom.from_s);
  } else if (const auto detected = detect_onset(observed.series, options.onset)) {
    // The row stamped t covers (t - 1 row, t]: the fault began inside the row before.
    onset = std::max(0.0, *detected - 1.0);
  } else if (const auto weak = options.onset.relaxed_threshold > 0.0
                                   ? detect_onset(observed.series, relaxed(options.onset))
                                   : std::nullopt) {
    onset = std::max(0.0, *weak - 1.0);
    result.onset_relaxed = true;
  } else {
    throw InputError("--observed", {},
                     "no metric departs from its baseline: no symptom onset found (pass "
                     "--window START:END to say where to look)");
  }
  double duration = options.duration_s;
  if (duration <= 0.0) duration = options.window_end_s.value_or(observed_end);
  if (duration <= onset) {
    throw InputError("--window", {},
                     fmt::format("the window starts at {:g} s, at or after the end of the "
                                 "simulated span ({:g} s)",
                                 onset, duration));
  }
  result.onset_s = onset;
  result.window_start_s = onset;
  result.window_end_s = options.window_end_s.value_or(duration);
  result.duration_s = duration;
  const double screening_duration = options.screening_horizon_s > 0.0
                                        ? std::min(duration, onset + options.screening_horizon_s)
                                        : duration;

  DiagnosisOptions diagnosis_options = options.diagnosis;
  diagnosis_options.seed = options.seed;
  if (diagnosis_options.bin_s <= 0.0 && !observed.spec) {
    // The default width, a 30th of the window, unless that holds too few requests.
    const double sparse = sparse_bin_width(observed.series, onset, options.min_requests_per_bin);
    if (sparse > (result.window_end_s - onset) / 30.0) diagnosis_options.bin_s = sparse;
  }

  ObservedEvidence evidence;
  const bool prune = options.prune_unaffected && !observed.spec;
  if (prune) evidence = observed_evidence(observed.series, onset, options.onset);

  struct Plan {
    const Candidate* candidate = nullptr;
    std::filesystem::path dir;
    CandidateRuns screening;
    CandidateRuns deep;
  };
  std::vector<Plan> plans;
  for (std::size_t c = 0; c < options.candidates.size(); ++c) {
    const Candidate& candidate = options.candidates[c];
    result.cause_of[candidate.name] = candidate.cause.empty() ? candidate.name : candidate.cause;
    if (!candidate.components.empty()) {
      result.components_of[result.cause_of[candidate.name]] = candidate.components;
    }
    if (prune && !worth_simulating(candidate, evidence)) {
      result.pruned.push_back(candidate.name);
      continue;
    }
    Plan plan;
    plan.candidate = &candidate;
    plan.dir = options.work_dir / fmt::format("{:03}-{}", c, directory_name(candidate.name));
    for (auto* runs : {&plan.screening, &plan.deep}) {
      runs->name = candidate.name;
      runs->description = candidate.description;
      runs->null_hypothesis = candidate.null_hypothesis;
    }
    plans.push_back(std::move(plan));
  }

  // Adds replications until each chosen plan has `target` of the given kind.
  const auto replicate = [&](const std::vector<Plan*>& chosen, bool deep, int target) {
    const double span = deep ? duration : screening_duration;
    std::vector<SimulationJob> jobs;
    std::vector<Plan*> owners;
    for (Plan* plan : chosen) {
      CandidateRuns& runs = deep ? plan->deep : plan->screening;
      for (int r = static_cast<int>(runs.replications.size()); r < target; ++r) {
        SimulationJob job;
        job.scenario = candidate_scenario(*plan->candidate, onset, span, options.seed);
        // Common random numbers: replication r of every candidate shares its seed, so the
        // candidates differ by their fault, not by their luck.
        job.seed = options.seed + static_cast<std::uint64_t>(r);
        job.duration_s = span;
        job.judge_from_s = onset;
        job.dir = plan->dir / fmt::format("{}-{:03}", deep ? "deep" : "screen", r);
        jobs.push_back(std::move(job));
        owners.push_back(plan);
      }
    }
    run_batch(jobs, options.batch);
    result.simulations += static_cast<int>(jobs.size());
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      (deep ? owners[j]->deep : owners[j]->screening)
          .replications.push_back(read_job_metrics(jobs[j].dir));
    }
  };
  const auto rank = [&](const std::vector<Plan*>& chosen, bool deep) {
    std::vector<CandidateRuns> runs;
    for (const Plan* plan : chosen) runs.push_back(deep ? plan->deep : plan->screening);
    DiagnosisOptions ranked = diagnosis_options;
    ranked.window_start_s = result.window_start_s;
    ranked.window_end_s =
        deep ? result.window_end_s : std::min(result.window_end_s, screening_duration);
    return observed.spec ? diagnose(*observed.spec, runs, ranked)
                         : diagnose(observed.series, runs, ranked);
  };

  std::vector<Plan*> everyone;
  for (auto& plan : plans) everyone.push_back(&plan);
  const int screening_replications = std::max(1, options.screening_replications);
  replicate(everyone, false, screening_replications);
  result.screening = rank(everyone, false);

  // Plans point into this; a deque keeps the refined candidates where they are.
  std::deque<Candidate> refined;
  std::map<std::string, std::string> refined_from;  // refined variant -> the one it refines
  if (options.refine_magnitudes) {
    std::set<std::string> causes;
    std::vector<Plan> added;
    for (const auto& score : result.screening.ranking) {  // best first
      if (static_cast<int>(causes.size()) >= options.min_leading_causes) break;
      if (score.null_hypothesis || !causes.insert(result.cause_of[score.name]).second) continue;
      const auto best = std::find_if(plans.begin(), plans.end(), [&](const Plan& plan) {
        return plan.candidate->name == score.name;
      });
      for (auto& variant : magnitude_refinements(*best->candidate, options.candidates)) {
        if (result.cause_of.contains(variant.name)) continue;  // already a candidate
        result.cause_of[variant.name] = result.cause_of[score.name];
        refined_from[variant.name] = score.name;
        result.refined.push_back(variant.name);
        const Candidate& candidate = refined.emplace_back(std::move(variant));
        Plan plan;
        plan.candidate = &candidate;
        plan.dir = options.work_dir / fmt::format("{:03}-{}",
                                                  options.candidates.size() + refined.size() - 1,
                                                  directory_name(candidate.name));
        for (auto* runs : {&plan.screening, &plan.deep}) {
          runs->name = candidate.name;
          runs->description = candidate.description;
          runs->null_hypothesis = false;
        }
        added.push_back(std::move(plan));
      }
    }
    if (!added.empty()) {
      for (auto& plan : added) plans.push_back(std::move(plan));
      everyone.clear();
      for (auto& plan : plans) everyone.push_back(&plan);
      replicate(everyone, false, screening_replications);
      result.screening = rank(everyone, false);
    }
  }

  result.leaders = with_refined_parents(
      with_close_variants(
          result.screening,
          with_leading_causes(result.screening, screen(result.screening, options.screening),
                              result.cause_of, options.min_leading_causes),
          result.cause_of, options.close_variants),
      refined_from);
  std::vector<Plan*> leaders;
  for (const auto& name : result.leaders) {
    for (auto& plan : plans) {
      if (plan.candidate->name == name) leaders.push_back(&plan);
    }
  }
  // Screening runs that already cover the whole span count as the first deep replications.
  if (screening_duration >= duration) {
    for (Plan* plan : leaders) plan->deep.replications = plan->screening.replications;
  }
  int done = 0;
  for (const Plan* plan : leaders) done = static_cast<int>(plan->deep.replications.size());
  const int step = std::max(1, options.replications_per_round);
  if (done == 0) {
    done = std::min(options.replications, step);
    replicate(leaders, true, done);
  }
  result.result = rank(leaders, true);
  while (done < options.replications) {
    if (done >= 2 && leader_is_clear(result.result, options.clear_leader_posterior)) {
      result.stopped_early = true;
      break;
    }
    done = std::min(options.replications, done + step);
    replicate(leaders, true, done);
    result.result = rank(leaders, true);
  }
  return result;
}

std::vector<RankedCause> rank_causes(const SimulatedDiagnosis& diagnosis) {
  const auto cause_of = [&](const std::string& name) {
    const auto found = diagnosis.cause_of.find(name);
    return found == diagnosis.cause_of.end() ? name : found->second;
  };
  std::vector<RankedCause> causes;
  const auto entry = [&](const std::string& cause) -> RankedCause& {
    for (auto& ranked : causes) {
      if (ranked.cause == cause) return ranked;
    }
    const auto components = diagnosis.components_of.find(cause);
    causes.push_back({cause, 0.0, 0.0, "",
                      components == diagnosis.components_of.end() ? std::vector<std::string>{}
                                                                  : components->second});
    return causes.back();
  };
  // Deep pass first: the ranking is best-first, so the first variant seen is the best one.
  for (const auto& score : diagnosis.result.ranking) {
    RankedCause& ranked = entry(cause_of(score.name));
    ranked.posterior += score.posterior;
    if (ranked.best_candidate.empty()) ranked.best_candidate = score.name;
  }
  const std::size_t deep_causes = causes.size();
  for (const auto& score : diagnosis.screening.ranking) {
    RankedCause& ranked = entry(cause_of(score.name));
    ranked.screening_posterior += score.posterior;
    if (ranked.best_candidate.empty()) ranked.best_candidate = score.name;
  }
  const auto by = [](auto member) {
    return [member](const RankedCause& a, const RankedCause& b) { return a.*member > b.*member; };
  };
  std::stable_sort(causes.begin(), causes.begin() + static_cast<std::ptrdiff_t>(deep_causes),
                   by(&RankedCause::posterior));
  std::stable_sort(causes.begin() + static_cast<std::ptrdiff_t>(deep_causes), causes.end(),
                   by(&RankedCause::screening_posterior));
  return causes;
}

void write_simulated_diagnosis_json(std::ostream& out, const SimulatedDiagnosis& diagnosis) {
  std::ostringstream ranked;
  write_diagnosis_json(ranked, diagnosis.result);
  nlohmann::json doc = nlohmann::json::parse(ranked.str());
  nlohmann::json screening = nlohmann::json::array();
  for (const auto& score : diagnosis.screening.ranking) {
    screening.push_back({{"cause", score.name},
                         {"posterior", score.posterior},
                         {"log_likelihood", score.log_likelihood},
                         {"replications", score.replications},
                         {"kept", std::find(diagnosis.leaders.begin(), diagnosis.leaders.end(),
                                            score.name) != diagnosis.leaders.end()}});
  }
  nlohmann::json causes = nlohmann::json::array();
  for (const auto& cause : rank_causes(diagnosis)) {
    causes.push_back({{"cause", cause.cause},
                      {"posterior", cause.posterior},
                      {"screening_posterior", cause.screening_posterior},
                      {"best_candidate", cause.best_candidate},
                      {"components", cause.components}});
  }
  doc["causes"] = std::move(causes);
  doc["simulation"] = {{"onset_s", diagnosis.onset_s},
                       {"onset_relaxed", diagnosis.onset_relaxed},
                       {"pruned", diagnosis.pruned},
                       {"refined", diagnosis.refined},
                       {"duration_s", diagnosis.duration_s},
                       {"simulations", diagnosis.simulations},
                       {"stopped_early", diagnosis.stopped_early},
                       {"screening", std::move(screening)}};
  out << doc.dump(2) << '\n';
}

}  // namespace doppel::experiments
