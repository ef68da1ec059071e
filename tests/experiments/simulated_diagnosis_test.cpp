#include "doppel/experiments/simulated_diagnosis.hpp"

#include <cmath>

#include <gtest/gtest.h>

namespace doppel::experiments {
namespace {

TimeSeries flat_then_step(double level, double step_at_s, double stepped, int seconds) {
  TimeSeries series;
  for (int t = 1; t <= seconds; ++t) {
    // A little deterministic noise so the baseline has a spread.
    const double noise = 0.02 * level * std::sin(t * 1.7);
    series.push_back({double(t), (t >= step_at_s ? stepped : level) + noise});
  }
  return series;
}

TEST(DetectOnset, FindsTheEarliestDepartureAcrossMetrics) {
  MetricSeries observed;
  observed["a_lat_99"] = flat_then_step(10.0, 31.0, 80.0, 60);
  observed["b_err"] = flat_then_step(0.0, 26.0, 0.4, 60);
  observed["c_rps"] = flat_then_step(100.0, 1000.0, 0.0, 60);  // never departs
  const auto onset = detect_onset(observed);
  ASSERT_TRUE(onset.has_value());
  EXPECT_DOUBLE_EQ(*onset, 26.0);
}

TEST(DetectOnset, NoneWhenNothingDeparts) {
  MetricSeries observed;
  observed["a_lat_99"] = flat_then_step(10.0, 1000.0, 0.0, 60);
  EXPECT_FALSE(detect_onset(observed).has_value());
}

TEST(DetectOnset, ABlipShorterThanTheRunIsNotAnOnset) {
  MetricSeries observed;
  auto series = flat_then_step(10.0, 1000.0, 0.0, 60);
  series[40].value = 500.0;  // one row, then back
  series[41].value = 500.0;
  observed["a_lat_99"] = series;
  EXPECT_FALSE(detect_onset(observed).has_value());
}

}  // namespace
}  // namespace doppel::experiments
