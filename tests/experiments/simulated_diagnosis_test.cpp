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

namespace doppel::experiments {
namespace {

Candidate candidate_at(std::string kind, std::string component) {
  Candidate candidate;
  candidate.name = candidate.cause = kind + "@" + component;
  candidate.kind = std::move(kind);
  candidate.component = std::move(component);
  return candidate;
}

TEST(Pruning, SilenceCountsOnlyWhereAComponentIsBusyEnoughToShowSomething) {
  MetricSeries observed;
  observed["busy_rps"] = flat_then_step(100.0, 1000.0, 0.0, 60);   // busy, unchanged
  observed["broken_rps"] = flat_then_step(100.0, 31.0, 20.0, 60);  // busy, departs
  observed["idle_rps"] = flat_then_step(1.0, 1000.0, 0.0, 60);     // one request a second
  const auto evidence = observed_evidence(observed, 30.0);
  EXPECT_TRUE(evidence.departing.contains("broken_rps"));
  EXPECT_TRUE(evidence.quiet.contains("idle"));
  EXPECT_FALSE(evidence.quiet.contains("busy"));
  EXPECT_TRUE(worth_simulating(candidate_at("latency", "broken"), evidence));
  EXPECT_FALSE(worth_simulating(candidate_at("latency", "busy"), evidence));
  EXPECT_TRUE(worth_simulating(candidate_at("dns_failure", "idle"), evidence));
  EXPECT_TRUE(worth_simulating(candidate_at("latency", "unseen"), evidence));  // no column
  EXPECT_TRUE(worth_simulating(candidate_at("pool_exhaustion", "busy->broken"), evidence));
  EXPECT_FALSE(worth_simulating(candidate_at("pool_exhaustion", "busy->busy"), evidence));
}

}  // namespace
}  // namespace doppel::experiments

namespace doppel::experiments {
namespace {

TEST(Pruning, AnOnsetFoundLateDoesNotHideTheFaultsFirstRows) {
  // Errors from t = 23; the onset is taken at 24: row 23 must not count as normal.
  MetricSeries observed;
  auto errors = flat_then_step(0.0, 23.0, 0.2, 60);
  errors[22].value = 0.36;  // t = 23, the first row of the fault, worse than what follows
  observed["checkout_err"] = errors;
  EXPECT_TRUE(departing_metrics(observed, 24.0).contains("checkout_err"));
}

}  // namespace
}  // namespace doppel::experiments
