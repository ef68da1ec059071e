// Latency distributions: one percentile definition, computed two ways.
//
// Exact: select from a window's samples (metrics.csv, memory bounded by one window). Approximate:
// a log-bucket histogram whose size depends on the value range, never on the number of
// samples (summary.json over a whole run). Both use the nearest-rank definition, so on the
// same samples they agree within the histogram's relative accuracy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace doppel::telemetry {

// The 1-based nearest rank of the p-th percentile among n samples: ceil(p/100 * n), clamped
// to [1, n]. p is in (0, 100]; n > 0.
std::size_t nearest_rank(std::size_t n, double percentile);

// The nearest-rank percentile of ascending-sorted samples: the smallest sample such that at
// least p% of the samples are <= it. 0 for no samples.
double percentile_of_sorted(std::span<const double> sorted, double percentile);

// The same nearest-rank percentiles of unsorted samples, exactly the values a sort then
// percentile_of_sorted would give, found by selection: O(n) per percentile instead of the
// sort's O(n log n). Reorders `samples`. results[i] is percentiles[i]'s (any order); 0 for no
// samples. The two spans must have the same size.
void select_percentiles(std::span<double> samples, std::span<const double> percentiles,
                        std::span<double> results);

// A histogram with logarithmic buckets (as in DDSketch): bucket i holds values in
// (gamma^(i-1), gamma^i] with gamma = (1+a)/(1-a), and reports 2*gamma^i/(gamma+1), which is
// within a relative error a of every value in the bucket. With the defaults (a = 1%, values
// in [1e-6, 1e9] of whatever unit the caller uses) it holds at most ~1,700 counters, ~14 KB.
// Values at or below min_value (0 included) share one underflow bucket, reported as the
// smallest value seen; values above max_value go to the top bucket. Percentiles are clamped
// to the exact [min, max] seen, so max() and the 100th percentile are exact.
class LatencyHistogram {
 public:
  struct Options {
    double relative_accuracy = 0.01;
    double min_value = 1e-6;
    double max_value = 1e9;
  };

  LatencyHistogram();
  explicit LatencyHistogram(Options options);

  // Negative and NaN values count as 0 (a duration cannot be negative).
  void add(double value);

  std::uint64_t count() const { return count_; }
  double min() const { return count_ == 0 ? 0.0 : min_; }
  double max() const { return count_ == 0 ? 0.0 : max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }
  double relative_accuracy() const { return options_.relative_accuracy; }

  // Nearest-rank percentile, p in (0, 100]; 0 when empty.
  double percentile(double percentile) const;

  // Counters allocated: grows with the range of values seen, bounded by
  // max_bucket_count(), independent of count().
  std::size_t bucket_count() const { return counts_.size(); }
  std::size_t max_bucket_count() const;

 private:
  int bucket_index(double value) const;
  double bucket_value(int index) const;

  Options options_;
  double log_gamma_ = 0.0;
  int lowest_index_ = 0;   // bucket index of min_value
  int highest_index_ = 0;  // bucket index of max_value
  int first_index_ = 0;    // bucket index of counts_[0]
  std::vector<std::uint64_t> counts_;
  std::uint64_t underflow_ = 0;
  std::uint64_t count_ = 0;
  double sum_ = 0.0;
  double min_ = 0.0;
  double max_ = 0.0;
};

}  // namespace doppel::telemetry
