// The parts of a rehearsal that need no engine: abort conditions judged over a stream of
// entry records, and the aggregate of replications. The engine runs are in tests/faults
// (rehearsal_test.cpp) and tests/cli.
#include "doppel/experiments/rehearse.hpp"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace doppel::experiments {
namespace {

using nlohmann::json;

twin::EntryRecord entry(std::string_view route, std::string_view client, double start_s,
                        double end_s, bool failed) {
  twin::EntryRecord e;
  e.route = route;
  e.client = client;
  e.start_s = start_s;
  e.end_s = end_s;
  e.outcome = failed ? twin::Outcome::timeout : twin::Outcome::ok;
  e.status = failed ? 504 : 200;
  return e;
}

faults::AbortCondition error_rate_above(double above, std::string route = "",
                                        std::string client = "") {
  faults::AbortCondition c;
  c.metric = faults::AbortCondition::Metric::error_rate;
  c.route = std::move(route);
  c.client = std::move(client);
  c.above = above;
  c.window_s = 2.0;
  return c;
}

TEST(AbortMonitor, ErrorRateFiresOnceTheWindowIsWholeAndAboveTheBound) {
  AbortMonitor monitor({error_rate_above(0.5, "checkout")}, true);
  // Every request fails from the start, but the first 2 s are not a whole window.
  double t = 0.0;
  for (; t < 1.99; t += 0.1) {
    monitor.on_entry(entry("checkout", "web", t, t + 0.01, true));
    ASSERT_FALSE(monitor.fired()) << "at " << t;
  }
  // Another route's failures do not count.
  monitor.on_entry(entry("home", "web", 2.0, 2.05, true));
  EXPECT_FALSE(monitor.fired());
  monitor.on_entry(entry("checkout", "web", 2.0, 2.05, true));
  ASSERT_TRUE(monitor.fired());
  const AbortFiring& fired = *monitor.fired();
  EXPECT_EQ(fired.condition, 0u);
  EXPECT_DOUBLE_EQ(fired.time_s, 2.05);
  EXPECT_DOUBLE_EQ(fired.measured, 1.0);
  EXPECT_EQ(fired.requests, 20u);  // (0.05, 2.05]: the one at 0.01 left the window
  EXPECT_FALSE(fired.stopped_run) << "no runtime attached: nothing to stop";
}

TEST(AbortMonitor, OldFailuresLeaveTheWindowAndAThinWindowIsNotJudged) {
  AbortMonitor monitor({error_rate_above(0.3, "", "mobile")}, true);
  // 2..4 s: 20% of mobile's requests fail, below the bound; shoppers all fail, not counted.
  for (int i = 0; i < 40; ++i) {
    const double t = 2.0 + i * 0.05;
    monitor.on_entry(entry("home", "mobile", t, t, i % 5 == 0));
    monitor.on_entry(entry("home", "shoppers", t, t, true));
  }
  EXPECT_FALSE(monitor.fired());
  // 10 s: a lone failure; the window (8, 10] holds 1 request, fewer than kMinRequests.
  monitor.on_entry(entry("home", "mobile", 10.0, 10.0, true));
  EXPECT_FALSE(monitor.fired());
  for (std::uint64_t i = 1; i < AbortMonitor::kMinRequests; ++i) {
    monitor.on_entry(entry("home", "mobile", 10.0 + 0.01 * i, 10.0 + 0.01 * i, true));
  }
  ASSERT_TRUE(monitor.fired());
  EXPECT_EQ(monitor.fired()->requests, AbortMonitor::kMinRequests);
}

TEST(AbortMonitor, LatencyPercentileOverTheWindowAndTheFirstFiringIsKept) {
  faults::AbortCondition p99;
  p99.metric = faults::AbortCondition::Metric::latency_p99_ms;
  p99.above = 250.0;
  p99.window_s = 5.0;
  AbortMonitor monitor({error_rate_above(0.9), p99}, false);
  // 100 requests a second at 10 ms, then every one at 300 ms from 8 s on.
  for (int i = 0; i < 1000; ++i) {
    const double end = i * 0.01;
    const double latency = end >= 8.0 ? 0.3 : 0.01;
    monitor.on_entry(entry("home", "web", end - latency, end, false));
  }
  ASSERT_TRUE(monitor.fired());
  const AbortFiring& fired = *monitor.fired();
  EXPECT_EQ(fired.condition, 1u);
  EXPECT_FALSE(fired.stopped_run);
  EXPECT_NEAR(fired.measured, 300.0, 1e-6);
  // p99 of the 500 requests in the window passes 250 ms once more than 5 of them are slow;
  // judged every 0.1 s (window / 50), so within 0.1 s of 8.05.
  EXPECT_GE(fired.time_s, 8.05);
  EXPECT_LE(fired.time_s, 8.16);
}

// A rehearsal.json as write_rehearsal_json writes it, with the figures a test varies.
json replication(bool held, double error_rate, double p99, bool broke, double abort_at) {
  std::ostringstream text;
  RehearsalResult r;
  r.scenario = "storm";
  r.steady_state_held = held;
  r.scenario_end_s = 60.0;
  r.simulated_until_s = abort_at > 0 ? abort_at : 60.0;
  if (abort_at > 0) {
    r.abort = AbortFiring{0, error_rate_above(0.5, "checkout"), abort_at, 0.7, 40, true};
  }
  if (broke) r.broken_routes = {"checkout"};
  PhaseResult during;
  during.name = "during";
  during.start_s = 20.0;
  during.end_s = r.simulated_until_s;
  telemetry::RequestStats checkout;
  checkout.name = "checkout";
  checkout.requests = 100;
  checkout.errors = static_cast<std::uint64_t>(error_rate * 100);
  checkout.error_rate = error_rate;
  checkout.latency.p50_ms = p99 / 2;
  checkout.latency.p99_ms = p99;
  during.summary.routes.push_back(checkout);
  telemetry::RequestStats idle;
  idle.name = "idle-route";
  during.summary.routes.push_back(idle);
  r.phases.push_back(during);
  r.causal_chain.push_back({21.0 + error_rate, "breaker_open", "frontend->checkout", {}});
  write_rehearsal_json(text, r);
  return json::parse(text.str());
}

TEST(RehearsalAggregate, EachFigureWithItsSpreadAndTheShareOfReplicationsThatBroke) {
  const std::vector<json> docs = {replication(true, 0.10, 100.0, false, 0),
                                  replication(false, 0.30, 300.0, true, 30.0),
                                  replication(false, 0.20, 200.0, true, 0)};
  const json aggregate = aggregate_rehearsals(docs);
  EXPECT_EQ(aggregate["format"], "doppel-rehearsal-replications/v1");
  EXPECT_EQ(aggregate["replications"], 3);
  EXPECT_EQ(aggregate["steady_state_held"]["count"], 1);
  EXPECT_EQ(aggregate["aborted"]["count"], 1);
  EXPECT_DOUBLE_EQ(aggregate["abort_time_s"]["mean"].get<double>(), 30.0);
  EXPECT_DOUBLE_EQ(aggregate["simulated_until_s"]["min"].get<double>(), 30.0);
  const json& route = aggregate["phases"][0]["routes"][0];
  EXPECT_EQ(route["name"], "checkout");
  const json& errors = route["error_rate"];
  EXPECT_NEAR(errors["mean"].get<double>(), 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(errors["min"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(errors["max"].get<double>(), 0.3);
  // sd 0.1, n 3: 0.2 +- 4.303 * 0.1 / sqrt(3)
  EXPECT_NEAR(errors["ci95"][0].get<double>(), 0.2 - 4.303 * 0.1 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(errors["ci95"][1].get<double>(), 0.2 + 4.303 * 0.1 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(route["p99_ms"]["mean"].get<double>(), 200.0, 1e-9);
  // A route without requests has no error rate or latency to average.
  const json& idle = aggregate["phases"][0]["routes"][1];
  EXPECT_TRUE(idle["error_rate"].is_null());
  EXPECT_DOUBLE_EQ(idle["requests"]["max"].get<double>(), 0.0);
  ASSERT_EQ(aggregate["blast_radius"]["routes"].size(), 1u);
  EXPECT_EQ(aggregate["blast_radius"]["routes"][0]["route"], "checkout");
  EXPECT_NEAR(aggregate["blast_radius"]["routes"][0]["share"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_EQ(aggregate["causal_chain"][0]["count"], 3);
  // Same inputs, same bytes; and the terminal table names the route with its spread.
  EXPECT_EQ(aggregate.dump(), aggregate_rehearsals(docs).dump());
  std::ostringstream table;
  print_rehearsal_aggregate(table, aggregate);
  EXPECT_NE(table.str().find("over 3 replications"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("20.00 [10.00-30.00]"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("checkout (67%)"), std::string::npos) << table.str();
}

TEST(RehearsalAggregate, OneReplicationHasNoIntervalAndNoneIsAnError) {
  const json one = aggregate_rehearsals({replication(true, 0.1, 100.0, false, 0)});
  EXPECT_EQ(one["replications"], 1);
  EXPECT_TRUE(one["phases"][0]["routes"][0]["error_rate"]["ci95"].is_null());
  EXPECT_THROW(aggregate_rehearsals({}), std::invalid_argument);
  EXPECT_EQ(replication_dir_name(7), "replication-007");
}

}  // namespace
}  // namespace doppel::experiments
