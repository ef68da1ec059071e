#include "doppel/telemetry/latency_histogram.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

namespace doppel::telemetry {

std::size_t nearest_rank(std::size_t n, double percentile) {
  const double rank = std::ceil(percentile / 100.0 * static_cast<double>(n));
  if (!(rank >= 1.0)) return 1;  // also catches NaN
  if (rank >= static_cast<double>(n)) return n;
  return static_cast<std::size_t>(rank);
}

double percentile_of_sorted(std::span<const double> sorted, double percentile) {
  if (sorted.empty()) return 0.0;
  return sorted[nearest_rank(sorted.size(), percentile) - 1];
}

void select_percentiles(std::span<double> samples, std::span<const double> percentiles,
                        std::span<double> results) {
  if (results.size() != percentiles.size()) {
    throw std::invalid_argument("select_percentiles: one result per percentile");
  }
  if (samples.empty()) {
    std::fill(results.begin(), results.end(), 0.0);
    return;
  }
  // Lowest rank first: each selection then only has to look right of the one before, whose
  // element is already where a sort would put it.
  std::vector<std::pair<std::size_t, std::size_t>> ranks;  // (0-based rank, which percentile)
  ranks.reserve(percentiles.size());
  for (std::size_t i = 0; i < percentiles.size(); ++i) {
    ranks.emplace_back(nearest_rank(samples.size(), percentiles[i]) - 1, i);
  }
  std::sort(ranks.begin(), ranks.end());
  // samples[settled - 1] is where a sort would put it, and nothing left of it is larger than
  // anything right of it.
  std::size_t settled = 0;
  for (const auto& [rank, which] : ranks) {
    if (rank >= settled) {
      std::nth_element(samples.begin() + static_cast<std::ptrdiff_t>(settled),
                       samples.begin() + static_cast<std::ptrdiff_t>(rank), samples.end());
      settled = rank + 1;
    }
    results[which] = samples[rank];
  }
}

LatencyHistogram::LatencyHistogram() : LatencyHistogram(Options{}) {}

LatencyHistogram::LatencyHistogram(Options options) : options_(options) {
  if (!(options_.relative_accuracy > 0.0 && options_.relative_accuracy < 1.0)) {
    throw std::invalid_argument("LatencyHistogram: relative_accuracy must be in (0, 1)");
  }
  if (!(options_.min_value > 0.0 && options_.max_value > options_.min_value)) {
    throw std::invalid_argument("LatencyHistogram: need 0 < min_value < max_value");
  }
  const double a = options_.relative_accuracy;
  log_gamma_ = std::log((1.0 + a) / (1.0 - a));
  lowest_index_ = bucket_index(options_.min_value);
  highest_index_ = bucket_index(options_.max_value);
}

int LatencyHistogram::bucket_index(double value) const {
  return static_cast<int>(std::ceil(std::log(value) / log_gamma_));
}

double LatencyHistogram::bucket_value(int index) const {
  const double gamma = std::exp(log_gamma_);
  return 2.0 * std::exp(log_gamma_ * index) / (gamma + 1.0);
}

std::size_t LatencyHistogram::max_bucket_count() const {
  return static_cast<std::size_t>(highest_index_ - lowest_index_ + 1);
}

void LatencyHistogram::add(double value) {
  if (!(value > 0.0)) value = 0.0;
  if (count_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  ++count_;
  sum_ += value;
  if (value <= options_.min_value) {
    ++underflow_;
    return;
  }
  const int index = std::clamp(bucket_index(value), lowest_index_, highest_index_);
  if (counts_.empty()) {
    first_index_ = index;
    counts_.assign(1, 0);
  } else if (index < first_index_) {
    counts_.insert(counts_.begin(), static_cast<std::size_t>(first_index_ - index), 0);
    first_index_ = index;
  } else if (index >= first_index_ + static_cast<int>(counts_.size())) {
    counts_.resize(static_cast<std::size_t>(index - first_index_ + 1), 0);
  }
  ++counts_[static_cast<std::size_t>(index - first_index_)];
}

double LatencyHistogram::percentile(double percentile) const {
  if (count_ == 0) return 0.0;
  const std::uint64_t rank = nearest_rank(count_, percentile);
  if (rank <= underflow_) return min_;
  std::uint64_t seen = underflow_;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::clamp(bucket_value(first_index_ + static_cast<int>(i)), min_, max_);
    }
  }
  return max_;
}

}  // namespace doppel::telemetry
