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

// Five baseline scales (the floor: a tenth of the median) is under the threshold of six but
// over the relaxed four: a diagnosis asked for anyway starts from it, flagged as weak.
TEST(DetectOnset, AWeakChangeIsAnOnsetOnlyAtTheRelaxedThresholds) {
  MetricSeries observed;
  observed["a_lat_99"] = flat_then_step(10.0, 31.0, 15.0, 60);
  EXPECT_FALSE(detect_onset(observed).has_value());
  EXPECT_DOUBLE_EQ(detect_onset(observed, relaxed({})).value_or(-1.0), 31.0);
  OnsetOptions options;
  options.relaxed_threshold = 5.5;
  EXPECT_FALSE(detect_onset(observed, relaxed(options)).has_value());
  const OnsetOptions loose = relaxed({});
  EXPECT_DOUBLE_EQ(loose.threshold, 4.0);
  EXPECT_DOUBLE_EQ(loose.count_g_threshold, 10.0);
  EXPECT_DOUBLE_EQ(loose.rank_z_threshold, 3.0);
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

namespace doppel::experiments {
namespace {

TEST(Pruning, ACalleeIsKeptWhenItsCallersShowWhatItCannot) {
  // A busy service whose own metrics stay flat (requests to it fail before reaching it, or
  // are delayed in front of it), while its caller's errors rise.
  MetricSeries observed;
  observed["cart_rps"] = flat_then_step(100.0, 1000.0, 0.0, 60);
  observed["front_rps"] = flat_then_step(100.0, 1000.0, 0.0, 60);
  observed["front_err"] = flat_then_step(0.0, 31.0, 0.5, 60);
  const auto evidence = observed_evidence(observed, 30.0);
  Candidate callee = candidate_at("dns_failure", "cart");
  EXPECT_FALSE(worth_simulating(callee, evidence));  // no witness known: its metrics are flat
  callee.witnesses = {"front_err", "front_lat_"};
  EXPECT_TRUE(worth_simulating(callee, evidence));
  callee.witnesses = {"front_lat_"};  // the caller's latency did not move
  EXPECT_FALSE(worth_simulating(callee, evidence));
}

TEST(Pruning, TrafficThatStopsIsASymptom) {
  // A busy service whose rate falls to nothing: its other metrics go empty, not departing.
  MetricSeries observed;
  auto rate = flat_then_step(100.0, 1000.0, 0.0, 60);
  for (auto& point : rate) {
    if (point.t_s >= 31.0) point.value = 0.0;
  }
  observed["cart_rps"] = rate;
  const auto evidence = observed_evidence(observed, 30.0);
  EXPECT_TRUE(evidence.silenced.contains("cart"));
  EXPECT_TRUE(worth_simulating(candidate_at("instance_crash", "cart"), evidence));
  observed["cart_rps"] = flat_then_step(100.0, 31.0, 60.0, 60);  // less, not silent
  EXPECT_FALSE(observed_evidence(observed, 30.0).silenced.contains("cart"));
}

TEST(Pruning, AHostWideCauseCountsEveryServiceOnTheHost) {
  MetricSeries observed;
  observed["a_rps"] = flat_then_step(100.0, 1000.0, 0.0, 60);
  observed["b_rps"] = flat_then_step(100.0, 1000.0, 0.0, 60);
  observed["b_lat_99"] = flat_then_step(10.0, 31.0, 50.0, 60);
  const auto evidence = observed_evidence(observed, 30.0);
  Candidate stress = candidate_at("cpu_stress", "host-1");
  stress.components = {"a"};
  EXPECT_FALSE(worth_simulating(stress, evidence));
  stress.components = {"a", "b"};
  EXPECT_TRUE(worth_simulating(stress, evidence));
}

// One request a second; from errors_from_s on, three requests in five fail (fail, pass, fail,
// pass, fail, ...): never 4 failing rows in 5.
MetricSeries one_request_a_second(int seconds, int errors_from_s) {
  MetricSeries observed;
  for (int t = 1; t <= seconds; ++t) {
    observed["front_rps"].push_back({double(t), 1.0});
    const bool failed = t >= errors_from_s && (t - errors_from_s) % 5 % 2 == 0;
    observed["front_err"].push_back({double(t), failed ? 1.0 : 0.0});
  }
  return observed;
}

TEST(CountOnset, ErrorsAtOneRequestASecondAreFoundOnTheirCounts) {
  // Persistence misses it; the error count over the rows that follow does not.
  const auto observed = one_request_a_second(40, 21);
  OnsetOptions persistence_only;
  persistence_only.count_g_threshold = 1e9;
  persistence_only.rank_z_threshold = 1e9;
  EXPECT_FALSE(detect_onset(observed, persistence_only).has_value());
  const auto onset = count_onset(observed);
  ASSERT_TRUE(onset.has_value());
  EXPECT_NEAR(*onset, 21.0, 1.0);
  EXPECT_EQ(detect_onset(observed), onset);
}

TEST(CountOnset, ALoneFailureIsNoOnset) {
  // One failed request in 40 (t = 25): not evidence of a change.
  auto observed = one_request_a_second(40, 1000);
  observed["front_err"][24].value = 1.0;
  observed["front_err"][31].value = 1.0;
  EXPECT_FALSE(count_onset(observed).has_value());
}

TEST(CountOnset, BusyComponentsAreLeftToThePersistenceRule) {
  auto observed = one_request_a_second(40, 21);
  for (auto& point : observed["front_rps"]) point.value = 500.0;
  EXPECT_FALSE(count_onset(observed).has_value());
}

TEST(DetectOnset, LowRateCountsAreLeftToTheCountRule) {
  // Sock Shop, a catalogue crash at 25 s: payment sees one to three requests a row, and its
  // first rows happened to read 1 each. By persistence its rate "departed" at 11 s; as counts
  // (10 requests in 10 rows, then 75 in 30) it is no change. The busy catalogue's errors are
  // the onset.
  MetricSeries observed;
  for (int t = 1; t <= 40; ++t) {
    observed["pay_rps"].push_back({double(t), t <= 10 ? 1.0 : (t % 2 == 0 ? 3.0 : 2.0)});
    observed["pay_err"].push_back({double(t), 0.0});
    observed["pay_lat_99"].push_back({double(t), 20.0 + 5.0 * (t % 3)});
    observed["cat_rps"].push_back({double(t), 200.0 + t % 3});
    observed["cat_err"].push_back({double(t), t < 25 ? 0.0 : 0.5});
  }
  const auto onset = detect_onset(observed);
  ASSERT_TRUE(onset.has_value());
  EXPECT_DOUBLE_EQ(*onset, 25.0);
  // Payment's other series (CPU, memory) are not counts: the persistence rule keeps them.
  for (int t = 1; t <= 40; ++t) observed["pay_cpu"].push_back({double(t), t < 15 ? 0.1 : 0.9});
  EXPECT_DOUBLE_EQ(detect_onset(observed).value_or(-1.0), 15.0);
}

TEST(DetectOnset, ALowRateChangeBeforeABusyOneIsTheOnset) {
  // Online Boutique: checkout (five requests a row) fails 27% from 22 s; a busy gauge moves
  // only at 34 s. The count rule judges checkout's errors even though persistence found one.
  MetricSeries observed;
  for (int t = 1; t <= 40; ++t) {
    observed["checkout_rps"].push_back({double(t), 5.0});
    observed["checkout_err"].push_back({double(t), t < 22 ? 0.0 : (t % 2 == 0 ? 0.2 : 0.4)});
    observed["pool_waiters"].push_back({double(t), t < 34 ? 0.0 : 4.0});
  }
  const auto onset = detect_onset(observed);
  ASSERT_TRUE(onset.has_value());
  EXPECT_NEAR(*onset, 22.0, 1.0);
}

TEST(DetectOnset, WhereBothRulesSeeOneChangePersistencePlacesIt) {
  // Sock Shop, DNS failure of the entry service at 16 s: every request fails from the row
  // stamped 17. A quiet service downstream saw no request in row 16 either, so its count's
  // change point lands a row early; the busy entry's errors say 17.
  MetricSeries observed;
  for (int t = 1; t <= 40; ++t) {
    observed["front_rps"].push_back({double(t), 100.0});
    observed["front_err"].push_back({double(t), t < 17 ? 0.0 : 1.0});
    observed["orders_rps"].push_back({double(t), t >= 16 ? 0.0 : (t % 2 == 0 ? 3.0 : 4.0)});
  }
  EXPECT_DOUBLE_EQ(count_onset(observed).value_or(-1.0), 16.0);
  EXPECT_DOUBLE_EQ(detect_onset(observed).value_or(-1.0), 17.0);

  // Online Boutique, a bad deploy at 20 s: payment's calls (about 9 a row) sag by chance for
  // the rows before they fall, and their change point lands four rows early.
  MetricSeries sagging;
  const double payment[] = {7, 5, 18, 8, 7, 10, 11, 9, 11, 10, 8, 10, 11, 7, 8, 7, 5, 7,  6, 5,
                            5, 1, 2,  2, 7, 4,  4,  6, 5,  5,  0, 2,  3,  3, 2, 3, 1, 11, 2, 6};
  for (int t = 1; t <= 40; ++t) {
    sagging["payment_rps"].push_back({double(t), payment[t - 1]});
    sagging["cart_rps"].push_back({double(t), 400.0});
    sagging["cart_err"].push_back({double(t), t < 21 ? 0.0 : 0.5});
  }
  EXPECT_DOUBLE_EQ(count_onset(sagging).value_or(-1.0), 17.0);
  EXPECT_DOUBLE_EQ(detect_onset(sagging).value_or(-1.0), 21.0);
}

TEST(CountOnset, CallsArrivingInBurstsAreNotAChangeOfRate) {
  // Ten calls per request at about one request a second: 0, 10 or 20 calls a row. A lull
  // (no request for a few seconds) is what bursts do, not an onset.
  MetricSeries observed;
  const int per_row[] = {10, 0,  20, 10, 10, 0,  10, 20, 0,  10, 10, 10, 20, 0,
                         10, 10, 0,  20, 10, 10, 0,  0,  10, 0,  0,  10, 0,  0,
                         10, 0,  20, 10, 0,  10, 0,  10, 0,  10, 20, 0};
  for (int t = 1; t <= 40; ++t)
    observed["route_rps"].push_back({double(t), double(per_row[t - 1])});
  EXPECT_FALSE(count_onset(observed).has_value());
  // The same totals, 190 calls in 20 rows then 110, arriving steadily: a change of rate.
  MetricSeries steady;
  for (int t = 1; t <= 40; ++t) {
    steady["route_rps"].push_back({double(t), t <= 20 ? 9.0 + t % 2 : 5.0 + t % 2});
  }
  EXPECT_TRUE(count_onset(steady).has_value());
}

TEST(CountOnset, RequestsThatStopAndLatencyThatShiftsAreFound) {
  MetricSeries stopped;
  for (int t = 1; t <= 40; ++t) stopped["cart_rps"].push_back({double(t), t < 19 ? 1.0 : 0.0});
  const auto stop = count_onset(stopped);
  ASSERT_TRUE(stop.has_value());
  EXPECT_NEAR(*stop, 19.0, 1.0);

  // One latency value a row, some rows without a request; +60% from t = 23, next to the
  // baseline's spread rather than far beyond it.
  MetricSeries slower;
  for (int t = 1; t <= 40; ++t) {
    slower["front_rps"].push_back({double(t), 1.0});
    if (t % 7 == 0) continue;
    const double wobble = 30.0 * std::sin(t * 2.3);
    slower["front_lat_99"].push_back({double(t), (t >= 23 ? 160.0 : 100.0) + wobble});
  }
  const auto shift = count_onset(slower);
  ASSERT_TRUE(shift.has_value());
  EXPECT_NEAR(*shift, 23.0, 2.0);
}

TEST(RankCauses, ACauseListsTheComponentsItBlames) {
  SimulatedDiagnosis diagnosis;
  diagnosis.cause_of = {{"cpu_stress@h 80%", "cpu_stress@h"}, {"no fault", "no fault"}};
  diagnosis.components_of = {{"cpu_stress@h", {"a", "b"}}};
  diagnosis.result.ranking.push_back({});
  diagnosis.result.ranking.back().name = "cpu_stress@h 80%";
  diagnosis.result.ranking.back().posterior = 0.9;
  diagnosis.result.ranking.push_back({});
  diagnosis.result.ranking.back().name = "no fault";
  diagnosis.result.ranking.back().posterior = 0.1;
  const auto causes = rank_causes(diagnosis);
  ASSERT_EQ(causes.size(), 2u);
  EXPECT_EQ(causes[0].cause, "cpu_stress@h");
  EXPECT_EQ(causes[0].components, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(causes[1].components.empty());
}

}  // namespace
}  // namespace doppel::experiments

namespace doppel::experiments {
namespace {

TEST(Leaders, TheDeepPassSeesSeveralCausesNotOnlyTheScreeningsFavourite) {
  Diagnosis screening;
  const auto add = [&](std::string name, bool null_hypothesis = false) {
    screening.ranking.push_back({});
    screening.ranking.back().name = std::move(name);
    screening.ranking.back().null_hypothesis = null_hypothesis;
  };
  add("latency@a 1000ms");
  add("latency@a 250ms");  // another variant of the same cause: not a new cause
  add("no fault", true);
  add("error_rate@b 25%");
  add("error_rate@b 75%");
  add("dns_failure@c");
  add("latency@d 50ms");
  const std::map<std::string, std::string> cause_of = {{"latency@a 1000ms", "latency@a"},
                                                       {"latency@a 250ms", "latency@a"},
                                                       {"no fault", "no fault"},
                                                       {"error_rate@b 25%", "error_rate@b"},
                                                       {"error_rate@b 75%", "error_rate@b"},
                                                       {"dns_failure@c", "dns_failure@c"},
                                                       {"latency@d 50ms", "latency@d"}};
  const auto leaders =
      with_leading_causes(screening, {"latency@a 1000ms", "no fault"}, cause_of, 3);
  EXPECT_EQ(leaders, (std::vector<std::string>{"latency@a 1000ms", "no fault", "error_rate@b 25%",
                                               "dns_failure@c"}));
  // Enough causes already: nothing added.
  EXPECT_EQ(with_leading_causes(screening, {"latency@a 1000ms"}, cause_of, 1),
            (std::vector<std::string>{"latency@a 1000ms"}));
}

TEST(Leaders, ARefinedLeaderBringsTheVariantItRefines) {
  const std::map<std::string, std::string> refined_from = {{"latency@c 500ms", "latency@c 250ms"},
                                                           {"latency@c 112ms", "latency@c 250ms"}};
  EXPECT_EQ(with_refined_parents({"latency@c 500ms", "no fault", "latency@o 112ms"}, refined_from),
            (std::vector<std::string>{"latency@c 500ms", "no fault", "latency@o 112ms",
                                      "latency@c 250ms"}));
  // Already in: not twice; grid variants have no parent.
  EXPECT_EQ(
      with_refined_parents({"latency@c 250ms", "latency@c 500ms", "latency@c 112ms"}, refined_from),
      (std::vector<std::string>{"latency@c 250ms", "latency@c 500ms", "latency@c 112ms"}));
}

TEST(Leaders, VariantsThatScreenedAsWellAsTheBestGoDeepToo) {
  // A crash of instance 1 screened a little better than one of instance 2 (the true one): one
  // short replication cannot tell them apart, the deep pass can, if it gets both.
  Diagnosis screening;
  const auto add = [&](std::string name, double log_likelihood, bool null_hypothesis = false) {
    screening.ranking.push_back({});
    screening.ranking.back().name = std::move(name);
    screening.ranking.back().log_likelihood = log_likelihood;
    screening.ranking.back().null_hypothesis = null_hypothesis;
  };
  add("crash@p instance 1", -284);
  add("crash@p instance 2", -291);  // within 5% of 284: goes deep
  add("crash@p instance 0", -325);  // 41 behind: does not
  add("no fault", -456, true);
  add("stress@p 50%", -460);
  add("stress@p 80%", -466);  // stress@p is not a leader: its variants stay out
  const std::map<std::string, std::string> cause_of = {
      {"crash@p instance 1", "crash@p"}, {"crash@p instance 2", "crash@p"},
      {"crash@p instance 0", "crash@p"}, {"no fault", "no fault"},
      {"stress@p 50%", "stress@p"},      {"stress@p 80%", "stress@p"}};
  EXPECT_EQ(with_close_variants(screening, {"crash@p instance 1", "no fault"}, cause_of),
            (std::vector<std::string>{"crash@p instance 1", "no fault", "crash@p instance 2"}));
  // At most max_per_cause variants a cause, the best counted.
  CloseVariants one;
  one.max_per_cause = 1;
  EXPECT_EQ(with_close_variants(screening, {"crash@p instance 1", "no fault"}, cause_of, one),
            (std::vector<std::string>{"crash@p instance 1", "no fault"}));
}

}  // namespace
}  // namespace doppel::experiments
