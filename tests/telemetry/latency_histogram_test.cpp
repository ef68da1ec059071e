#include "doppel/telemetry/latency_histogram.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace doppel::telemetry {
namespace {

TEST(NearestRank, FollowsTheCeilingDefinition) {
  EXPECT_EQ(nearest_rank(100, 50.0), 50u);
  EXPECT_EQ(nearest_rank(100, 99.0), 99u);
  EXPECT_EQ(nearest_rank(10, 99.0), 10u);
  EXPECT_EQ(nearest_rank(3, 50.0), 2u);
  EXPECT_EQ(nearest_rank(5, 0.0), 1u);
  EXPECT_EQ(nearest_rank(5, 100.0), 5u);
}

TEST(PercentileOfSorted, PicksASampleNotAnInterpolation) {
  const std::vector<double> sorted{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(percentile_of_sorted(sorted, 50.0), 5.0);
  EXPECT_EQ(percentile_of_sorted(sorted, 90.0), 9.0);
  EXPECT_EQ(percentile_of_sorted(sorted, 91.0), 10.0);
  EXPECT_EQ(percentile_of_sorted({}, 50.0), 0.0);
}

TEST(SelectPercentiles, GivesWhatSortingGivesForAnyOrderOfPercentiles) {
  std::mt19937_64 random(7);
  // Few distinct values: ties at the ranks are the case a selection could get wrong.
  std::uniform_int_distribution<int> few(0, 9);
  std::lognormal_distribution<double> latency(2.0, 1.0);
  const std::vector<double> percentiles{99.0, 50.0, 90.0, 50.0, 100.0, 0.1};
  for (const std::size_t n : {1u, 2u, 3u, 10u, 99u, 100u, 101u, 1000u}) {
    for (const bool ties : {false, true}) {
      std::vector<double> samples;
      for (std::size_t i = 0; i < n; ++i) {
        samples.push_back(ties ? double(few(random)) : latency(random));
      }
      std::vector<double> sorted = samples;
      std::sort(sorted.begin(), sorted.end());
      std::vector<double> results(percentiles.size(), -1.0);
      select_percentiles(samples, percentiles, results);
      for (std::size_t i = 0; i < percentiles.size(); ++i) {
        EXPECT_EQ(results[i], percentile_of_sorted(sorted, percentiles[i]))
            << "n " << n << " p" << percentiles[i] << (ties ? " with ties" : "");
      }
      std::sort(samples.begin(), samples.end());
      EXPECT_EQ(samples, sorted) << "reordered, never changed";
    }
  }
}

TEST(SelectPercentiles, NoSamplesGiveZerosAndSizesMustMatch) {
  std::vector<double> none;
  const std::vector<double> percentiles{50.0, 99.0};
  std::vector<double> results{-1.0, -1.0};
  select_percentiles(none, percentiles, results);
  EXPECT_EQ(results, (std::vector<double>{0.0, 0.0}));
  std::vector<double> one_result(1);
  std::vector<double> samples{1.0, 2.0};
  EXPECT_THROW(select_percentiles(samples, percentiles, one_result), std::invalid_argument);
}

TEST(LatencyHistogram, EmptyReportsZeros) {
  const LatencyHistogram histogram;
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.percentile(99.0), 0.0);
  EXPECT_EQ(histogram.max(), 0.0);
  EXPECT_EQ(histogram.bucket_count(), 0u);
}

// The promise: every percentile is within the relative accuracy of the exact nearest-rank
// value of the same samples, over seven decades of values.
TEST(LatencyHistogram, PercentilesStayWithinTheRelativeAccuracy) {
  std::mt19937_64 random(42);
  std::lognormal_distribution<double> latency(std::log(20.0), 2.0);
  LatencyHistogram histogram;
  std::vector<double> samples;
  for (int i = 0; i < 50000; ++i) {
    const double value = latency(random);
    samples.push_back(value);
    histogram.add(value);
  }
  std::sort(samples.begin(), samples.end());
  for (const double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0}) {
    const double exact = percentile_of_sorted(samples, p);
    const double approximate = histogram.percentile(p);
    EXPECT_LE(std::abs(approximate - exact), exact * 0.01 * (1 + 1e-9)) << "p" << p;
  }
  EXPECT_EQ(histogram.max(), samples.back());
  EXPECT_EQ(histogram.min(), samples.front());
}

TEST(LatencyHistogram, ASingleValueIsReportedExactly) {
  LatencyHistogram histogram;
  for (int i = 0; i < 10; ++i) histogram.add(12.345);
  EXPECT_EQ(histogram.percentile(50.0), 12.345);  // clamped to the exact min and max
  EXPECT_DOUBLE_EQ(histogram.mean(), 12.345);
}

TEST(LatencyHistogram, ZeroAndNegativeValuesCountAsZero) {
  LatencyHistogram histogram;
  histogram.add(0.0);
  histogram.add(-3.0);
  histogram.add(std::nan(""));
  histogram.add(10.0);
  EXPECT_EQ(histogram.count(), 4u);
  EXPECT_EQ(histogram.percentile(75.0), 0.0);
  EXPECT_EQ(histogram.min(), 0.0);
  EXPECT_NEAR(histogram.percentile(100.0), 10.0, 0.1);
}

TEST(LatencyHistogram, SizeDependsOnTheRangeNotOnTheCount) {
  LatencyHistogram histogram;
  std::mt19937_64 random(7);
  std::uniform_real_distribution<double> latency(1.0, 1000.0);
  histogram.add(1.0);  // the range's edges, so that later samples can only fall inside it
  histogram.add(1000.0);
  for (int i = 0; i < 1000; ++i) histogram.add(latency(random));
  const std::size_t after_thousand = histogram.bucket_count();
  for (int i = 0; i < 1000000; ++i) histogram.add(latency(random));
  EXPECT_EQ(histogram.bucket_count(), after_thousand);
  // Three decades at 1%: ln(1000) / ln(1.01/0.99) ~ 346 buckets.
  EXPECT_LE(histogram.bucket_count(), 350u);
  histogram.add(1e15);  // beyond max_value: clamped, not a bigger allocation
  histogram.add(1e-12);
  EXPECT_LE(histogram.bucket_count(), histogram.max_bucket_count());
  EXPECT_LE(histogram.max_bucket_count(), 1800u);
}

TEST(LatencyHistogram, RejectsNonsenseOptions) {
  EXPECT_THROW(LatencyHistogram(LatencyHistogram::Options{0.0, 1e-6, 1e9}), std::invalid_argument);
  EXPECT_THROW(LatencyHistogram(LatencyHistogram::Options{0.01, 1.0, 0.5}), std::invalid_argument);
}

}  // namespace
}  // namespace doppel::telemetry
