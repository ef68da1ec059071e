#include "doppel/experiments/fix_verdict.hpp"

#include <cmath>
#include <sstream>

#include <gtest/gtest.h>

namespace doppel::experiments {
namespace {

Figure slo(std::string name, double limit, std::vector<double> values) {
  Figure figure;
  figure.name = std::move(name);
  figure.unit = "ms";
  figure.limit = limit;
  figure.per_replication = std::move(values);
  return figure;
}

// Three arms of the db-pool-exhaustion story: checkout p99 (limit 500 ms), the home page p99
// (limit 300 ms), and the orders database's peak connections (max_connections 100).
ArmResults arm(std::vector<double> checkout, std::vector<double> home,
               std::vector<double> connections) {
  ArmResults results;
  results.figures.push_back(slo("route checkout p99 latency", 500, std::move(checkout)));
  results.figures.push_back(slo("route home p99 latency", 300, std::move(home)));
  results.figures.push_back(
      saturation_figure("orders-db connections", "connections", 100, connections));
  return results;
}

const ArmResults kNoCause =
    arm({210, 220, 205, 215, 212}, {90, 95, 92, 91, 94}, {40, 42, 41, 43, 40});
const ArmResults kCause =
    arm({2400, 2600, 2500, 2450, 2550}, {95, 97, 93, 96, 94}, {50, 50, 50, 50, 50});

TEST(FixVerdict, RecommendWhenTheSloRecoversWithConfidence) {
  const ArmResults rollback =
      arm({230, 240, 225, 235, 238}, {92, 93, 95, 91, 94}, {45, 44, 46, 45, 44});
  const auto verdict = judge_fix("rollback", &kNoCause, kCause, rollback);
  EXPECT_EQ(verdict.kind, VerdictKind::recommend) << verdict.reason;
  EXPECT_EQ(to_string(verdict.kind), "recommend");
  EXPECT_EQ(verdict.reason,
            "recovers route checkout p99 latency with 95% confidence and breaks nothing else");
  ASSERT_EQ(verdict.figures.size(), 3U);
  EXPECT_TRUE(verdict.figures[0].broken_by_cause);
  EXPECT_EQ(verdict.figures[0].outcome, "recovers");
  EXPECT_EQ(verdict.figures[2].outcome, "within limit");
}

TEST(FixVerdict, RejectIneffectiveWhenTheSloStaysBroken) {
  const ArmResults longer_timeout =
      arm({2300, 2500, 2450, 2400, 2600}, {93, 95, 94, 92, 96}, {50, 50, 50, 50, 50});
  const auto verdict = judge_fix("longer timeout", &kNoCause, kCause, longer_timeout);
  EXPECT_EQ(verdict.kind, VerdictKind::reject_ineffective) << verdict.reason;
  EXPECT_EQ(to_string(verdict.kind), "reject: ineffective");
  EXPECT_NE(verdict.reason.find("route checkout p99 latency stays at 2450 ms"), std::string::npos)
      << verdict.reason;
  EXPECT_TRUE(verdict.breaks.empty());
}

TEST(FixVerdict, RejectHarmfulNamesTheSaturationItMoves) {
  // A bigger pool: checkout recovers, but the database now sees more connections than it
  // accepts.
  const ArmResults bigger_pool =
      arm({220, 230, 225, 228, 226}, {92, 94, 93, 95, 91}, {140, 150, 145, 148, 142});
  const auto verdict = judge_fix("pool 50 -> 150", &kNoCause, kCause, bigger_pool);
  EXPECT_EQ(verdict.kind, VerdictKind::reject_harmful) << verdict.reason;
  EXPECT_EQ(to_string(verdict.kind), "reject: harmful");
  ASSERT_EQ(verdict.breaks.size(), 1U);
  EXPECT_EQ(verdict.breaks[0],
            "orders-db connections: 145 connections > 100 connections (saturation moved here)");
}

TEST(FixVerdict, SaturationWhereTheFixAppliesIsIneffectiveNotHarmful) {
  // A longer connection-acquire timeout on orders -> orders-db: checkout stays broken and
  // orders' own workers fill up waiting. That is the fix failing where it was applied; the same
  // figure at a component the fix does not change is saturation moved there.
  const auto with_workers = [](ArmResults results, std::vector<double> busy) {
    results.figures.push_back(
        saturation_figure("service orders workers busy", "share", 0.9, busy, "orders"));
    return results;
  };
  const ArmResults no_cause = with_workers(kNoCause, {0.10, 0.11, 0.10, 0.12, 0.11});
  const ArmResults cause = with_workers(kCause, {0.50, 0.52, 0.49, 0.51, 0.50});
  const ArmResults longer_timeout =
      with_workers(arm({2300, 2500, 2450, 2400, 2600}, {93, 95, 94, 92, 96}, {50, 50, 50, 50, 50}),
                   {1.0, 1.0, 0.99, 1.0, 1.0});
  FixVerdictOptions options;
  options.touched_components = {"orders"};
  const auto verdict = judge_fix("longer timeout", &no_cause, cause, longer_timeout, options);
  EXPECT_EQ(verdict.kind, VerdictKind::reject_ineffective) << verdict.reason;
  EXPECT_TRUE(verdict.breaks.empty());
  EXPECT_NE(verdict.reason.find("service orders workers busy rises to"), std::string::npos)
      << verdict.reason;
  EXPECT_EQ(verdict.figures.back().outcome, "saturated where the fix applies");

  options.touched_components = {"gateway"};
  const auto elsewhere = judge_fix("longer timeout", &no_cause, cause, longer_timeout, options);
  EXPECT_EQ(elsewhere.kind, VerdictKind::reject_harmful) << elsewhere.reason;
  ASSERT_EQ(elsewhere.breaks.size(), 1U);
  EXPECT_NE(elsewhere.breaks[0].find("saturation moved here"), std::string::npos);
}

TEST(FixVerdict, RejectHarmfulWhenAnotherSloIsNewlyBroken) {
  const ArmResults rate_limit =
      arm({230, 240, 235, 232, 238}, {450, 480, 470, 460, 455}, {45, 45, 45, 45, 45});
  const auto verdict = judge_fix("rate limit", &kNoCause, kCause, rate_limit);
  EXPECT_EQ(verdict.kind, VerdictKind::reject_harmful);
  ASSERT_EQ(verdict.breaks.size(), 1U);
  EXPECT_NE(verdict.breaks[0].find("route home p99 latency"), std::string::npos);
  EXPECT_NE(verdict.breaks[0].find("SLO newly broken"), std::string::npos);
}

TEST(FixVerdict, NeedsReviewNamesTheUncertainFigureAndTheReplicationsToSettleIt) {
  // Checkout ends near its limit with a wide spread: the interval straddles 500 ms.
  const ArmResults index =
      arm({380, 520, 450, 610, 400}, {92, 93, 95, 91, 94}, {45, 44, 46, 45, 44});
  const auto verdict = judge_fix("index", &kNoCause, kCause, index);
  EXPECT_EQ(verdict.kind, VerdictKind::needs_review) << verdict.reason;
  EXPECT_EQ(to_string(verdict.kind), "needs review");
  EXPECT_EQ(verdict.uncertain_figure, "route checkout p99 latency");
  // mean 472, half-width 2.776 * sd/sqrt(5) = 2.776 * 94.18 / 2.236 = 116.9; distance 28:
  // n = ceil(5 * (116.9 / 28)^2 * 1.1) = 96.
  EXPECT_EQ(verdict.suggested_replications, 96);
  EXPECT_NE(verdict.reason.find("about 96 replications"), std::string::npos) << verdict.reason;
}

TEST(FixVerdict, NeedsReviewWithOneReplication) {
  const ArmResults single_cause = arm({2400}, {95}, {50});
  const ArmResults single_fix = arm({230}, {95}, {45});
  const auto verdict = judge_fix("rollback", nullptr, single_cause, single_fix);
  EXPECT_EQ(verdict.kind, VerdictKind::needs_review);
  EXPECT_EQ(verdict.suggested_replications, 5);
}

TEST(FixVerdict, IntervalIsStudentT) {
  const auto interval = interval_of(slo("x", 0, {1, 2, 3}));
  EXPECT_EQ(interval.replications, 3);
  EXPECT_DOUBLE_EQ(interval.mean, 2.0);
  EXPECT_NEAR(interval.upper - interval.mean, 4.303 * 1.0 / std::sqrt(3.0), 1e-9);
  EXPECT_TRUE(std::isinf(interval_of(slo("x", 0, {1})).upper));
}

TEST(FixVerdict, FiguresFromSummariesCollectEverySloCheck) {
  std::vector<telemetry::Summary> runs(2);
  for (std::size_t r = 0; r < runs.size(); ++r) {
    telemetry::SloResult result;
    result.route = "checkout";
    telemetry::SloCheck latency;
    latency.percentile = 99;
    latency.bound = 500;
    latency.observed = 400.0 + 100.0 * static_cast<double>(r);
    latency.verdict = telemetry::Verdict::pass;
    telemetry::SloCheck errors;
    errors.kind = telemetry::SloCheck::Kind::error_rate;
    errors.bound = 0.01;
    errors.observed = 0.0;
    errors.verdict = telemetry::Verdict::pass;
    result.checks = {latency, errors};
    runs[r].slos.push_back(result);
  }
  const auto arm = figures_from_summaries(runs);
  ASSERT_EQ(arm.figures.size(), 2U);
  EXPECT_EQ(arm.figures[0].name, "route checkout p99 latency");
  EXPECT_EQ(arm.figures[0].per_replication, (std::vector<double>{400, 500}));
  EXPECT_EQ(arm.figures[1].name, "route checkout error rate");
  EXPECT_EQ(arm.figures[1].unit, "share");
}

TEST(FixVerdict, TablePrintsEveryVerdict) {
  const ArmResults rollback =
      arm({230, 240, 225, 235, 238}, {92, 93, 95, 91, 94}, {45, 44, 46, 45, 44});
  std::ostringstream out;
  print_fix_verdicts(out, {judge_fix("rollback", &kNoCause, kCause, rollback)});
  EXPECT_NE(out.str().find("rollback"), std::string::npos);
  EXPECT_NE(out.str().find("recommend"), std::string::npos);
}

}  // namespace
}  // namespace doppel::experiments
