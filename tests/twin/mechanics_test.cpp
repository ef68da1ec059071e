// Unit tests of the twin's SimGrid-free mechanics, driven by explicit timestamps.
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

#include "twin/arrival_process.hpp"
#include "twin/circuit_breaker.hpp"
#include "twin/gateway_router.hpp"
#include "twin/load_balancer.hpp"
#include "twin/replica_versions.hpp"
#include "twin/retry_policy.hpp"
#include "twin/sim_harness.hpp"

namespace doppel::twin::detail {
namespace {

model::CircuitBreakerPolicy breaker_policy() {
  model::CircuitBreakerPolicy p;
  p.enabled = true;
  p.error_threshold = 0.5;
  p.min_requests = 10;
  p.window_s = 10.0;
  p.open_s = 5.0;
  p.half_open_probes = 2;
  return p;
}

TEST(CircuitBreaker, StaysClosedBelowMinimumRequests) {
  CircuitBreaker breaker(breaker_policy());
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(breaker.allow(i * 0.1));
    breaker.record(i * 0.1, false);
  }
  EXPECT_EQ(breaker.state(), BreakerState::closed);
  EXPECT_FALSE(breaker.take_transition());
}

TEST(CircuitBreaker, OpensAtThresholdThenHalfOpensAndCloses) {
  CircuitBreaker breaker(breaker_policy());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(breaker.allow(1.0));
    breaker.record(1.0, i % 2 == 0);  // 5 failures of 10: exactly the threshold
  }
  EXPECT_EQ(breaker.state(), BreakerState::open);
  auto t = breaker.take_transition();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->from, BreakerState::closed);
  EXPECT_EQ(t->to, BreakerState::open);

  EXPECT_FALSE(breaker.allow(5.9));  // open_s has not passed
  EXPECT_TRUE(breaker.allow(6.0));   // half-open: first probe
  EXPECT_EQ(breaker.state(), BreakerState::half_open);
  EXPECT_TRUE(breaker.allow(6.0));   // second probe
  EXPECT_FALSE(breaker.allow(6.0));  // no third while two are in flight
  breaker.record(6.1, true);
  EXPECT_EQ(breaker.state(), BreakerState::half_open);
  breaker.record(6.2, true);
  EXPECT_EQ(breaker.state(), BreakerState::closed);
  t = breaker.take_transition();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->from, BreakerState::half_open);
  EXPECT_EQ(t->to, BreakerState::closed);
  // Closing starts over: one failure does not reopen it.
  breaker.record(6.3, false);
  EXPECT_EQ(breaker.state(), BreakerState::closed);
}

TEST(CircuitBreaker, FailedProbeReopensForAnotherOpenPeriod) {
  CircuitBreaker breaker(breaker_policy());
  for (int i = 0; i < 10; ++i) breaker.record(0.5, false);
  ASSERT_EQ(breaker.state(), BreakerState::open);
  ASSERT_TRUE(breaker.allow(5.5));
  breaker.record(5.6, false);
  EXPECT_EQ(breaker.state(), BreakerState::open);
  EXPECT_FALSE(breaker.allow(10.5));
  EXPECT_TRUE(breaker.allow(10.6));
}

TEST(CircuitBreaker, OldFailuresSlideOutOfTheWindow) {
  CircuitBreaker breaker(breaker_policy());
  for (int i = 0; i < 9; ++i) breaker.record(0.0, false);
  // 11 s later the 9 failures are outside the 10 s window: 1 failure + 9 successes.
  breaker.record(11.0, false);
  for (int i = 0; i < 9; ++i) breaker.record(11.0, true);
  EXPECT_EQ(breaker.state(), BreakerState::closed);
}

TEST(CircuitBreaker, DisabledBreakerAlwaysAllows) {
  auto policy = breaker_policy();
  policy.enabled = false;
  CircuitBreaker breaker(policy);
  for (int i = 0; i < 100; ++i) breaker.record(0.0, false);
  EXPECT_TRUE(breaker.allow(0.0));
  EXPECT_EQ(breaker.state(), BreakerState::closed);
}

TEST(RetryPolicy, BackoffDoublesUpToTheCapWithoutJitter) {
  model::RetryPolicy policy;
  policy.backoff_base_ms = 25;
  policy.backoff_cap_ms = 250;
  policy.jitter = model::JitterKind::none;
  model::RandomStream rng(1);
  const std::vector<double> expected{25, 50, 100, 200, 250, 250};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_DOUBLE_EQ(backoff_ms(policy, static_cast<int>(i) + 1, rng), expected[i]);
  }
}

TEST(RetryPolicy, FullAndEqualJitterStayInTheirRanges) {
  model::RetryPolicy policy;
  policy.backoff_base_ms = 100;
  policy.backoff_cap_ms = 1000;
  model::RandomStream rng(42);
  for (auto jitter : {model::JitterKind::full, model::JitterKind::equal}) {
    policy.jitter = jitter;
    const double lo = jitter == model::JitterKind::full ? 0.0 : 200.0;
    double sum = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double d = backoff_ms(policy, 3, rng);  // ceiling 400
      ASSERT_GE(d, lo);
      ASSERT_LT(d, 400.0);
      sum += d;
    }
    EXPECT_NEAR(sum / n, (lo + 400.0) / 2, 4.0);
  }
}

TEST(RetryPolicy, OnlyCalleeAndNetworkFailuresAreRetried) {
  EXPECT_TRUE(is_retryable(Outcome::error));
  EXPECT_TRUE(is_retryable(Outcome::timeout));
  EXPECT_TRUE(is_retryable(Outcome::rejected));
  EXPECT_TRUE(is_retryable(Outcome::unavailable));
  EXPECT_FALSE(is_retryable(Outcome::ok));
  EXPECT_FALSE(is_retryable(Outcome::circuit_open));
  EXPECT_FALSE(is_retryable(Outcome::pool_timeout));
}

TEST(RetryBudget, CapsRetriesAtTheRatioOfCallsInTheWindow) {
  RetryBudget budget(0.2);
  for (int i = 0; i < 100; ++i) budget.record_call(1.0);
  int granted = 0;
  while (granted < 1000 && budget.try_spend_retry(1.0)) ++granted;
  EXPECT_EQ(granted, 20);
  // A window later the old calls and retries are gone.
  EXPECT_FALSE(budget.try_spend_retry(12.0));
  for (int i = 0; i < 10; ++i) budget.record_call(12.0);
  EXPECT_TRUE(budget.try_spend_retry(12.0));
  EXPECT_TRUE(budget.try_spend_retry(12.0));
  EXPECT_FALSE(budget.try_spend_retry(12.0));
}

TEST(RetryBudget, ZeroRatioMeansNoBudget) {
  RetryBudget budget(0.0);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(budget.try_spend_retry(0.0));
}

TEST(LoadBalancer, RoundRobinCyclesOverCandidates) {
  LoadBalancer lb(model::LoadBalancing::round_robin);
  model::RandomStream rng(1);
  const std::vector<int> candidates{0, 2, 3};
  const std::vector<int> load{0, 0, 0, 0};
  std::vector<int> picks;
  for (int i = 0; i < 6; ++i) picks.push_back(lb.pick(candidates, load, rng));
  EXPECT_EQ(picks, (std::vector<int>{0, 2, 3, 0, 2, 3}));
  EXPECT_EQ(lb.pick({}, load, rng), -1);
}

TEST(LoadBalancer, LeastRequestPicksTheLeastLoadedAndSpreadsTies) {
  LoadBalancer lb(model::LoadBalancing::least_request);
  model::RandomStream rng(1);
  const std::vector<int> candidates{0, 1, 2};
  EXPECT_EQ(lb.pick(candidates, std::vector<int>{5, 1, 3}, rng), 1);
  EXPECT_EQ(lb.pick(candidates, std::vector<int>{5, 1, 3}, rng), 1);
  std::map<int, int> counts;
  for (int i = 0; i < 30; ++i) ++counts[lb.pick(candidates, std::vector<int>{2, 2, 2}, rng)];
  EXPECT_EQ(counts.size(), 3u);
}

TEST(LoadBalancer, PowerOfTwoNeverPicksTheMostLoadedOfTwo) {
  LoadBalancer lb(model::LoadBalancing::power_of_two);
  model::RandomStream rng(3);
  const std::vector<int> load{10, 0, 5, 7};
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(lb.pick(std::vector<int>{0, 1}, load, rng), 1);
  }
  // Among four, the most loaded can never win a duel; the least loaded wins every duel it is in.
  std::map<int, int> counts;
  const std::vector<int> all{0, 1, 2, 3};
  for (int i = 0; i < 6000; ++i) ++counts[lb.pick(all, load, rng)];
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[1], 3000, 200);  // in a duel with probability 1/2
  EXPECT_GT(counts[2], counts[3]);
}

class GatewayRouterTest : public ::testing::Test {
 protected:
  // all-features.json: home-mobile (GET, path regex, user-agent regex), home (GET, prefix "/"),
  // and a default.
  model::Topology topology =
      model::load_topology(testing::source_path("tests/data/topologies/all-features.json"));
};

TEST_F(GatewayRouterTest, HeaderRegexCapturesAMobileUserAgent) {
  GatewayRouter router(topology.gateway, "all-features");
  const std::map<std::string, std::string> iphone{
      {"User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"}};
  const std::map<std::string, std::string> desktop{
      {"user-agent", "Mozilla/5.0 (X11; Linux x86_64)"}};
  auto m = router.match("GET", "/index.html", iphone);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route_name, "home-mobile");
  EXPECT_EQ(m->service, "web");
  m = router.match("GET", "/", iphone);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route_name, "home-mobile");
  // The path regex is a full match: a longer path falls through to the prefix route.
  m = router.match("GET", "/index.html/x", iphone);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route_name, "home");
  m = router.match("GET", "/index.html", desktop);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route_name, "home");
  // No header at all: the header route cannot match.
  m = router.match("GET", "/", {});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route_name, "home");
}

TEST_F(GatewayRouterTest, UnmatchedGoesToTheDefaultOrIsA404) {
  GatewayRouter router(topology.gateway, "all-features");
  auto m = router.match("POST", "/", {});  // both routes want GET
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route, -1);
  EXPECT_EQ(m->route_name, "");
  EXPECT_EQ(m->service, "web");
  EXPECT_EQ(m->operation, "home");

  topology.gateway.default_service.reset();
  topology.gateway.default_operation.reset();
  GatewayRouter strict(topology.gateway, "all-features");
  EXPECT_FALSE(strict.match("POST", "/", {}));
  // The method is exact and case-sensitive.
  EXPECT_FALSE(strict.match("get", "/", {}));
}

TEST_F(GatewayRouterTest, BadRegexIsAnInputErrorAtItsPlace) {
  topology.gateway.routes[0].headers[0].regex = "(unclosed";
  try {
    GatewayRouter router(topology.gateway, "all-features");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where().json_pointer, "/gateway/routes/0/headers/0/regex");
  }
}

TEST(ReplicaVersions, ReplicaCatchesUpAfterTheLag) {
  ReplicaVersions versions(2);
  const auto v1 = versions.commit(7);
  EXPECT_EQ(v1, 1u);
  versions.replicate(0, 7, v1, 1.0, 1.05);
  versions.replicate(1, 7, v1, 1.0, 1.50);
  EXPECT_EQ(versions.primary_version(7), 1u);
  EXPECT_EQ(versions.replica_version(0, 7, 1.04), 0u);
  EXPECT_TRUE(versions.is_stale(7, versions.replica_version(0, 7, 1.04)));
  EXPECT_NEAR(versions.lag_s(0, 1.04), 0.04, 1e-12);
  EXPECT_EQ(versions.replica_version(0, 7, 1.05), 1u);
  EXPECT_FALSE(versions.is_stale(7, 1));
  EXPECT_DOUBLE_EQ(versions.lag_s(0, 1.2), 0.0);
  EXPECT_NEAR(versions.lag_s(1, 1.2), 0.2, 1e-12);
  EXPECT_EQ(versions.node_version(0, 7, 0.0), 1u);  // the primary has it at once
  EXPECT_EQ(versions.replica_version(1, 8, 9.0), 0u);
}

TEST(ReplicaVersions, ReplicationLogKeepsCommitOrder) {
  ReplicaVersions versions(1);
  const auto a = versions.commit(1);
  versions.replicate(0, 1, a, 0.0, 0.5);
  const auto b = versions.commit(2);
  versions.replicate(0, 2, b, 0.1, 0.2);  // a shorter lag cannot overtake the log
  EXPECT_EQ(versions.replica_version(0, 2, 0.3), 0u);
  EXPECT_EQ(versions.replica_version(0, 2, 0.5), 1u);
  EXPECT_EQ(versions.replica_version(0, 1, 0.5), 1u);
}

TEST(ArrivalProcess, ConstantRateGivesPoissonCounts) {
  ArrivalProcess arrivals({{0.0, 200.0}});
  model::RandomStream rng(11);
  int n = 0;
  double sum_sq_gap = 0;
  double last = 0;
  for (double t = arrivals.next_after(0, rng); t < 100.0; t = arrivals.next_after(t, rng)) {
    sum_sq_gap += (t - last) * (t - last);
    last = t;
    ++n;
  }
  EXPECT_NEAR(n, 20000, 3 * std::sqrt(20000.0));
  // Exponential gaps: E[gap^2] = 2 / rate^2.
  EXPECT_NEAR(sum_sq_gap / n, 2.0 / (200.0 * 200.0), 0.05 * 2.0 / (200.0 * 200.0));
}

TEST(ArrivalProcess, PiecewiseRateIsFollowedSegmentBySegment) {
  ArrivalProcess arrivals({{10.0, 0.0}, {0.0, 100.0}, {20.0, 400.0}});
  model::RandomStream rng(5);
  int first = 0, silent = 0, last = 0;
  for (double t = arrivals.next_after(0, rng); t < 30.0; t = arrivals.next_after(t, rng)) {
    if (t < 10)
      ++first;
    else if (t < 20)
      ++silent;
    else
      ++last;
  }
  EXPECT_NEAR(first, 1000, 3 * std::sqrt(1000.0));
  EXPECT_EQ(silent, 0);
  EXPECT_NEAR(last, 4000, 3 * std::sqrt(4000.0));
  EXPECT_DOUBLE_EQ(arrivals.rate_at(15.0), 0.0);
  EXPECT_DOUBLE_EQ(arrivals.rate_at(25.0), 400.0);
}

TEST(ArrivalProcess, RateDroppingToZeroEndsArrivals) {
  ArrivalProcess arrivals({{0.0, 50.0}, {1.0, 0.0}});
  model::RandomStream rng(2);
  EXPECT_EQ(arrivals.next_after(1.0, rng), std::numeric_limits<double>::infinity());
  ArrivalProcess none({});
  EXPECT_EQ(none.next_after(0.0, rng), std::numeric_limits<double>::infinity());
}

TEST(WeightedChoice, PicksInProportionToWeights) {
  WeightedChoice choice({3.0, 1.0, 0.0});
  model::RandomStream rng(9);
  std::vector<int> counts(3);
  for (int i = 0; i < 40000; ++i) ++counts[static_cast<std::size_t>(choice.pick(rng))];
  EXPECT_NEAR(counts[0], 30000, 400);
  EXPECT_NEAR(counts[1], 10000, 400);
  EXPECT_EQ(counts[2], 0);
}

}  // namespace
}  // namespace doppel::twin::detail
