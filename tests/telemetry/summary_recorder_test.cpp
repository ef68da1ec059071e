#include "doppel/telemetry/summary_recorder.hpp"

#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "synthetic_stream.hpp"

namespace doppel::telemetry {
namespace {

using testing::client_span;
using testing::entry;
using testing::server_span;
using testing::small_topology;

// `count` entries on `route`, latencies spread evenly over [low_ms, high_ms], the first
// `failures` of them failed.
void feed_entries(SummaryRecorder& recorder, std::string_view route, int count, double low_ms,
                  double high_ms, int failures = 0) {
  for (int i = 0; i < count; ++i) {
    const double latency_ms = low_ms + (high_ms - low_ms) * i / std::max(1, count - 1);
    recorder.on_entry(entry(route, 1.0, 1.0 + latency_ms / 1000.0,
                            i < failures ? twin::Outcome::error : twin::Outcome::ok));
  }
}

const RequestStats& route_named(const Summary& summary, std::string_view name) {
  for (const auto& route : summary.routes) {
    if (route.name == name) return route;
  }
  throw std::out_of_range(std::string(name));
}

TEST(SummaryRecorder, RouteStatsAndPercentilesWithinPrecision) {
  SummaryRecorder recorder(small_topology());
  feed_entries(recorder, "home", 100, 1.0, 100.0, 1);
  recorder.on_run_end(60.0);
  const Summary summary = recorder.summary();
  EXPECT_EQ(summary.duration_s, 60.0);
  const auto& home = route_named(summary, "home");
  EXPECT_EQ(home.requests, 100u);
  EXPECT_EQ(home.errors, 1u);
  EXPECT_DOUBLE_EQ(home.error_rate, 0.01);
  EXPECT_NEAR(home.latency.p50_ms, 50.0, 0.5);
  EXPECT_NEAR(home.latency.p90_ms, 90.0, 0.9);
  EXPECT_NEAR(home.latency.p99_ms, 99.0, 0.99);
  EXPECT_NEAR(home.latency.max_ms, 100.0, 1e-9);  // exact, but for the test's own float arithmetic
  EXPECT_EQ(route_named(summary, "api").requests, 0u);  // in the topology: listed anyway
  EXPECT_EQ(summary.total.requests, 100u);
  ASSERT_EQ(summary.clients.size(), 1u);
  EXPECT_EQ(summary.clients[0].name, "browser");
  EXPECT_EQ(summary.clients[0].requests, 100u);
}

TEST(SummaryRecorder, SloPassesWhenWithinEveryBound) {
  SummaryRecorder recorder(small_topology());
  feed_entries(recorder, "home", 1000, 1.0, 20.0);
  const Summary summary = recorder.summary();
  ASSERT_EQ(summary.slos.size(), 1u);
  const auto& slo = summary.slos[0];
  EXPECT_EQ(slo.route, "home");
  ASSERT_EQ(slo.checks.size(), 3u);
  EXPECT_EQ(slo.checks[0].kind, SloCheck::Kind::latency);
  EXPECT_EQ(slo.checks[0].percentile, 50.0);
  EXPECT_EQ(slo.checks[0].bound, 50.0);
  EXPECT_NEAR(slo.checks[0].observed, 10.5, 0.11);
  EXPECT_EQ(slo.checks[2].kind, SloCheck::Kind::error_rate);
  EXPECT_EQ(slo.checks[2].observed, 0.0);
  for (const auto& check : slo.checks) EXPECT_EQ(check.verdict, Verdict::pass);
  EXPECT_EQ(slo.verdict, Verdict::pass);
  EXPECT_EQ(summary.slo_verdict, Verdict::pass);
}

TEST(SummaryRecorder, SloFailsOnEachBoundSeparately) {
  SummaryRecorder slow(small_topology());
  // p50 = 40 ms passes the 50 ms bound, p99 ~ 250 ms fails the 200 ms one.
  feed_entries(slow, "home", 97, 40.0, 40.0);
  feed_entries(slow, "home", 3, 250.0, 250.0);
  const auto slow_slo = slow.summary().slos.at(0);
  EXPECT_EQ(slow_slo.checks[0].verdict, Verdict::pass);
  EXPECT_EQ(slow_slo.checks[1].verdict, Verdict::fail);
  EXPECT_EQ(slow_slo.checks[2].verdict, Verdict::pass);
  EXPECT_EQ(slow_slo.verdict, Verdict::fail);
  EXPECT_EQ(slow.summary().slo_verdict, Verdict::fail);

  SummaryRecorder failing(small_topology());
  feed_entries(failing, "home", 100, 1.0, 10.0, 5);  // 5% errors against a 1% bound
  const auto failing_slo = failing.summary().slos.at(0);
  EXPECT_EQ(failing_slo.checks[0].verdict, Verdict::pass);
  EXPECT_EQ(failing_slo.checks[1].verdict, Verdict::pass);
  EXPECT_DOUBLE_EQ(failing_slo.checks[2].observed, 0.05);
  EXPECT_EQ(failing_slo.checks[2].verdict, Verdict::fail);
  EXPECT_EQ(failing_slo.verdict, Verdict::fail);
}

TEST(SummaryRecorder, SloWithoutTrafficHasNoData) {
  SummaryRecorder recorder(small_topology());
  feed_entries(recorder, "api", 10, 1.0, 2.0);
  const Summary summary = recorder.summary();
  EXPECT_EQ(summary.slos.at(0).verdict, Verdict::no_data);
  EXPECT_EQ(summary.slos.at(0).checks.at(0).verdict, Verdict::no_data);
  EXPECT_EQ(summary.slo_verdict, Verdict::no_data);
}

TEST(SummaryRecorder, ServicesCountServerAndClientOutcomes) {
  SummaryRecorder recorder(small_topology());
  recorder.on_span(server_span("back", 0.0, 0.010));
  recorder.on_span(server_span("back", 0.0, 0.020, twin::Outcome::rejected));
  recorder.on_span(client_span("front", "back", 0.0, 0.3, 0, twin::Outcome::timeout));
  recorder.on_span(client_span("front", "back", 0.3, 0.4, 1, twin::Outcome::circuit_open));
  recorder.on_span(client_span("front", "back", 0.4, 0.5, 2, twin::Outcome::pool_timeout));
  recorder.on_span(server_span("front", 0.0, 0.5, twin::Outcome::error));
  recorder.on_entry(entry("", 0.0, 0.001, twin::Outcome::not_found));
  recorder.on_event(twin::TwinEvent{1.0, "pool_exhausted", "front->back", {}});
  recorder.on_event(twin::TwinEvent{2.0, "breaker_open", "front->back", {}});
  recorder.on_event(twin::TwinEvent{3.0, "breaker_open", "front->back", {}});
  const Summary summary = recorder.summary();
  ASSERT_EQ(summary.services.size(), 2u);
  const auto& front = summary.services[0];
  const auto& back = summary.services[1];
  EXPECT_EQ(front.name, "front");
  EXPECT_EQ(front.requests, 1u);
  EXPECT_EQ(front.errors, 1u);
  EXPECT_EQ(front.call_attempts, 3u);
  EXPECT_EQ(front.retries, 2u);
  auto count_of = [](const std::vector<OutcomeCount>& counts, std::string_view outcome) {
    for (const auto& count : counts) {
      if (count.outcome == outcome) return count.count;
    }
    return std::uint64_t{999};
  };
  EXPECT_EQ(count_of(front.call_outcomes, "timeout"), 1u);
  EXPECT_EQ(count_of(front.call_outcomes, "circuit_open"), 1u);
  EXPECT_EQ(count_of(front.call_outcomes, "pool_timeout"), 1u);
  EXPECT_EQ(count_of(front.call_outcomes, "ok"), 0u);
  EXPECT_EQ(back.requests, 2u);
  EXPECT_EQ(back.errors, 1u);
  EXPECT_EQ(count_of(back.outcomes, "rejected"), 1u);
  EXPECT_EQ(count_of(back.outcomes, "ok"), 1u);
  EXPECT_NEAR(back.latency.p50_ms, 10.0, 0.1);
  EXPECT_EQ(summary.server_spans, 3u);
  EXPECT_EQ(summary.client_spans, 3u);
  EXPECT_EQ(route_named(summary, "(no route)").errors, 1u);
  ASSERT_EQ(summary.events_by_kind.size(), 2u);
  EXPECT_EQ(summary.events_by_kind[0],
            std::make_pair(std::string("breaker_open"), std::uint64_t{2}));
  EXPECT_EQ(summary.events_by_kind[1].first, "pool_exhausted");
}

TEST(SummaryRecorder, JsonCarriesEveryVerdict) {
  SummaryRecorder recorder(small_topology());
  feed_entries(recorder, "home", 100, 1.0, 10.0, 5);
  recorder.on_run_end(10.0);
  std::ostringstream out;
  write_summary_json(out, recorder.summary());
  const auto json = nlohmann::json::parse(out.str());
  EXPECT_EQ(json.at("format"), "doppel-summary/v1");
  EXPECT_EQ(json.at("slo_verdict"), "fail");
  EXPECT_EQ(json.at("total").at("requests"), 100);
  EXPECT_EQ(json.at("routes").at(0).at("name"), "home");
  EXPECT_DOUBLE_EQ(json.at("routes").at(0).at("error_rate").get<double>(), 0.05);
  EXPECT_NEAR(json.at("routes").at(0).at("latency_ms").at("max").get<double>(), 10.0, 1e-9);
  const auto& checks = json.at("slos").at(0).at("checks");
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks.at(0).at("kind"), "latency");
  EXPECT_EQ(checks.at(0).at("bound_ms"), 50.0);
  EXPECT_EQ(checks.at(0).at("verdict"), "pass");
  EXPECT_EQ(checks.at(2).at("kind"), "error_rate");
  EXPECT_EQ(checks.at(2).at("verdict"), "fail");
  EXPECT_EQ(json.at("services").at(0).at("outcomes").size(), 8u);
}

TEST(SummaryRecorder, TableShowsRoutesServicesAndVerdicts) {
  SummaryRecorder recorder(small_topology());
  feed_entries(recorder, "home", 97, 40.0, 40.0);
  feed_entries(recorder, "home", 3, 250.0, 250.0);
  recorder.on_span(client_span("front", "back", 0.0, 0.3, 0, twin::Outcome::timeout));
  recorder.on_run_end(30.0);
  std::ostringstream out;
  print_summary_table(out, recorder.summary());
  const std::string table = out.str();
  EXPECT_NE(table.find("SLOs: fail"), std::string::npos) << table;
  EXPECT_NE(table.find("home                                100        0    0.00%"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("p99 latency"), std::string::npos);
  EXPECT_NE(table.find("200.00 ms"), std::string::npos);
  EXPECT_NE(table.find("timeout=1"), std::string::npos);
  EXPECT_NE(table.find("fail"), std::string::npos);
}

}  // namespace
}  // namespace doppel::telemetry
