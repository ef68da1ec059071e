#include "doppel/telemetry/metrics_recorder.hpp"

#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "synthetic_stream.hpp"

namespace doppel::telemetry {
namespace {

using testing::client_span;
using testing::entry;
using testing::server_span;
using testing::small_topology;

using Row = std::map<std::string, std::string>;

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream stream(text);
  while (std::getline(stream, part, separator)) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.emplace_back();
  return parts;
}

// Rows keyed by column name; checks every row has as many cells as the header.
std::vector<Row> parse_csv(const std::string& csv) {
  const auto lines = split(csv, '\n');
  EXPECT_FALSE(lines.empty());
  const auto header = split(lines.at(0), ',');
  std::vector<Row> rows;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto cells = split(lines[i], ',');
    EXPECT_EQ(cells.size(), header.size()) << "row " << i;
    Row row;
    for (std::size_t c = 0; c < header.size() && c < cells.size(); ++c) row[header[c]] = cells[c];
    rows.push_back(row);
  }
  return rows;
}

std::string record(const std::function<void(MetricsRecorder&)>& feed, MetricsOptions options = {}) {
  std::ostringstream out;
  const auto topology = small_topology();
  MetricsRecorder recorder(topology, out, options);
  feed(recorder);
  return out.str();
}

TEST(MetricsRecorder, ColumnsFollowTheTopologyOrder) {
  std::ostringstream out;
  MetricsRecorder recorder(small_topology(), out);
  const std::vector<std::string> expected{"time",
                                          "front_rps",
                                          "front_err",
                                          "front_lat_50",
                                          "front_lat_90",
                                          "front_lat_99",
                                          "front_lod",
                                          "front_cpu",
                                          "front_cpu_pct",
                                          "front_mem",
                                          "front_workers_util",
                                          "front_queue",
                                          "front_retries",
                                          "front_breaker_open",
                                          "back_rps",
                                          "back_err",
                                          "back_lat_50",
                                          "back_lat_90",
                                          "back_lat_99",
                                          "back_lod",
                                          "back_cpu",
                                          "back_cpu_pct",
                                          "back_mem",
                                          "back_workers_util",
                                          "back_queue",
                                          "back_retries",
                                          "back_breaker_open",
                                          "db_rps",
                                          "db_err",
                                          "db_lat_99",
                                          "db_replication_lag_ms",
                                          "db_stale_read_rate",
                                          "db_connections",
                                          "db_refused",
                                          "front_to_back_pool_util",
                                          "front_to_back_pool_waiters",
                                          "front_to_back_rps",
                                          "front_to_back_err",
                                          "front_to_back_lat_50",
                                          "front_to_back_lat_99",
                                          "h1_host_cpu",
                                          "h2_host_cpu",
                                          "route_home_rps",
                                          "route_home_err",
                                          "route_home_lat_99",
                                          "route_api_rps",
                                          "route_api_err",
                                          "route_api_lat_99",
                                          "all_routes_rps",
                                          "all_routes_err",
                                          "all_routes_lat_50",
                                          "all_routes_lat_99"};
  EXPECT_EQ(recorder.columns(), expected);
  std::string header;
  for (const auto& column : expected) header += (header.empty() ? "" : ",") + column;
  EXPECT_EQ(out.str(), header + "\n");  // written before any record
}

// docs/telemetry.md lists every column as a template (`<s>_rps`): none may go undocumented.
TEST(MetricsRecorder, EveryColumnIsDocumented) {
  std::ifstream file(std::string(DOPPEL_SOURCE_DIR) + "/docs/telemetry.md");
  ASSERT_TRUE(file);
  const std::string docs{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  std::ostringstream out;
  MetricsRecorder recorder(small_topology(), out);
  const std::vector<std::pair<std::string, std::string>> placeholders{
      {"front_to_back_", "<from>_to_<to>_"},
      {"route_home_", "route_<r>_"},
      {"route_api_", "route_<r>_"},
      {"front_", "<s>_"},
      {"back_", "<s>_"},
      {"db_", "<d>_"},
      {"h1_", "<h>_"},
      {"h2_", "<h>_"}};
  for (const auto& column : recorder.columns()) {
    std::string documented = column;
    for (const auto& [name, placeholder] : placeholders) {
      if (documented.rfind(name, 0) == 0) {
        documented = placeholder + documented.substr(name.size());
        break;
      }
    }
    EXPECT_NE(docs.find("`" + documented + "`"), std::string::npos) << documented;
  }
}

TEST(MetricsRecorder, AssignsSpansToHalfOpenWindowsByEndTime) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_span(server_span("front", 0.1, 0.5));
    recorder.on_span(server_span("front", 0.2, 0.999));
    recorder.on_span(server_span("front", 0.5, 1.0));  // ends on the boundary: window 1
    recorder.on_span(server_span("front", 1.2, 1.5));
    recorder.on_run_end(3.0);
  }));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("time"), "1700000001");
  EXPECT_EQ(rows[0].at("front_rps"), "2");
  EXPECT_EQ(rows[0].at("front_lod"), "2");
  EXPECT_EQ(rows[1].at("front_rps"), "2");
  EXPECT_EQ(rows[2].at("time"), "1700000003");
  EXPECT_EQ(rows[2].at("front_rps"), "0");
  EXPECT_EQ(rows[2].at("front_lat_99"), "");  // idle: no latency rather than a fake 0
  EXPECT_EQ(rows[0].at("back_rps"), "0");
}

TEST(MetricsRecorder, PercentilesAreExactPerWindow) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    // 100 requests of 1..100 ms, presented out of latency order.
    for (int i = 100; i >= 1; --i) recorder.on_span(server_span("back", 0.5 - i / 1000.0, 0.5));
    recorder.on_span(server_span("back", 1.0, 1.25));  // next window: 250 ms
    recorder.on_run_end(2.0);
  }));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("back_lat_50"), "50");
  EXPECT_EQ(rows[0].at("back_lat_90"), "90");
  EXPECT_EQ(rows[0].at("back_lat_99"), "99");
  EXPECT_EQ(rows[0].at("back_rps"), "100");
  EXPECT_EQ(rows[1].at("back_lat_50"), "250");
  EXPECT_EQ(rows[1].at("back_lat_99"), "250");
}

TEST(MetricsRecorder, AWrittenWindowLeavesNothingBehindForALaterOne) {
  // A written window's storage is reused: none of its samples or counts may show again.
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    for (int i = 1; i <= 50; ++i) {
      recorder.on_span(server_span("back", 0.0, 0.9, twin::Outcome::error));
      recorder.on_span(client_span("front", "back", 0.0, 0.9, 1));
      recorder.on_span(client_span("front", "db", 0.0, 0.9));
      recorder.on_span(server_span("db", 0.9, 0.9, twin::Outcome::rejected));
      recorder.on_entry(entry("home", 0.0, 0.9));
    }
    for (int second = 3; second < 6; ++second) {
      recorder.on_span(server_span("back", second + 0.1, second + 0.101));
    }
    recorder.on_span(client_span("front", "db", 5.0, 5.002));
    recorder.on_entry(entry("api", 5.0, 5.003));
    recorder.on_run_end(6.0);
  }));
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].at("back_rps"), "50");
  EXPECT_EQ(rows[0].at("back_lat_99"), "900");
  for (std::size_t row = 3; row < 6; ++row) {
    EXPECT_EQ(rows[row].at("back_rps"), "1") << row;
    EXPECT_EQ(rows[row].at("back_err"), "0") << row;
    EXPECT_EQ(rows[row].at("back_lat_50"), "1") << row;
    EXPECT_EQ(rows[row].at("back_lat_99"), "1") << row;
    EXPECT_EQ(rows[row].at("front_retries"), "0") << row;
    EXPECT_EQ(rows[row].at("db_refused"), "0") << row;
    EXPECT_EQ(rows[row].at("route_home_rps"), "0") << row;
  }
  EXPECT_EQ(rows[5].at("db_rps"), "1");
  EXPECT_EQ(rows[5].at("db_lat_99"), "2");
  EXPECT_EQ(rows[5].at("route_api_lat_99"), "3");
  EXPECT_EQ(rows[5].at("all_routes_rps"), "1");
  EXPECT_EQ(rows[5].at("all_routes_lat_50"), "3");
}

TEST(MetricsRecorder, ErrorRatesRetriesAndDatastoreCalls) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_span(server_span("front", 0.0, 0.1));
    recorder.on_span(server_span("front", 0.0, 0.2, twin::Outcome::timeout));
    recorder.on_span(server_span("front", 0.0, 0.3));
    recorder.on_span(server_span("front", 0.0, 0.4));
    recorder.on_span(client_span("front", "back", 0.0, 0.1, 0, twin::Outcome::timeout));
    recorder.on_span(client_span("front", "back", 0.1, 0.2, 1));
    recorder.on_span(client_span("front", "back", 0.2, 0.3, 2));
    recorder.on_span(client_span("front", "db", 0.3, 0.302));
    recorder.on_span(client_span("front", "db", 0.3, 0.304, 0, twin::Outcome::error));
    recorder.on_span(server_span("nobody", 0.0, 0.5));  // not in the topology: ignored
    // The datastore refused two queries (every connection taken); a served one is not counted.
    recorder.on_span(server_span("db", 0.5, 0.5, twin::Outcome::rejected));
    recorder.on_span(server_span("db", 0.6, 0.6, twin::Outcome::rejected));
    recorder.on_span(server_span("db", 0.6, 0.7));
    recorder.on_run_end(1.0);
  }));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("front_err"), "0.25");
  EXPECT_EQ(rows[0].at("front_retries"), "2");
  EXPECT_EQ(rows[0].at("back_retries"), "0");
  EXPECT_EQ(rows[0].at("db_rps"), "2");
  EXPECT_EQ(rows[0].at("db_err"), "0.5");
  EXPECT_EQ(rows[0].at("db_lat_99"), "4");
  EXPECT_EQ(rows[0].at("db_refused"), "2");
}

// Retries hide a flaky callee from its caller's own columns; the call edge shows every
// attempt, as a service mesh's client-side metrics do.
TEST(MetricsRecorder, CallEdgesCountEveryAttemptFromTheCallersSide) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_span(client_span("front", "back", 0.0, 0.100, 0, twin::Outcome::timeout));
    recorder.on_span(client_span("front", "back", 0.1, 0.104, 1));
    recorder.on_span(client_span("front", "back", 0.2, 0.202, 0));
    recorder.on_span(client_span("front", "back", 0.3, 0.310, 0, twin::Outcome::error));
    recorder.on_span(client_span("front", "db", 0.3, 0.302));  // a datastore: its own columns
    recorder.on_span(server_span("front", 0.0, 0.4));          // the caller itself succeeded
    recorder.on_span(client_span("front", "back", 1.2, 1.203));
    recorder.on_run_end(2.0);
  }));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("front_err"), "0");
  EXPECT_EQ(rows[0].at("front_to_back_rps"), "4");
  EXPECT_EQ(rows[0].at("front_to_back_err"), "0.5");
  EXPECT_EQ(rows[0].at("front_to_back_lat_50"), "4");
  EXPECT_EQ(rows[0].at("front_to_back_lat_99"), "100");
  EXPECT_EQ(rows[0].at("db_rps"), "1");
  EXPECT_EQ(rows[1].at("front_to_back_rps"), "1");
  EXPECT_EQ(rows[1].at("front_to_back_err"), "0");
  EXPECT_EQ(rows[1].at("front_to_back_lat_99"), "3");
}

TEST(MetricsRecorder, CallEdgesCanBeLeftOut) {
  MetricsOptions options;
  options.call_edges = false;
  const auto rows = parse_csv(record(
      [](MetricsRecorder& recorder) {
        recorder.on_span(client_span("front", "back", 0.0, 0.1));
        recorder.on_run_end(1.0);
      },
      options));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].count("front_to_back_rps"), 0u);
  EXPECT_EQ(rows[0].count("front_to_back_pool_util"), 1u);
}

TEST(MetricsRecorder, RoutesAndAllRoutes) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_entry(entry("home", 0.0, 0.010));
    recorder.on_entry(entry("home", 0.0, 0.030, twin::Outcome::error));
    recorder.on_entry(entry("", 0.0, 0.020));  // no route: counted in all_routes only
    recorder.on_run_end(0.5);                  // a half window
  }));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("time"), "1700000000.5");
  EXPECT_EQ(rows[0].at("route_home_rps"), "4");  // 2 requests in 0.5 s
  EXPECT_EQ(rows[0].at("route_home_err"), "0.5");
  EXPECT_EQ(rows[0].at("route_home_lat_99"), "30");
  EXPECT_EQ(rows[0].at("route_api_rps"), "0");
  EXPECT_EQ(rows[0].at("all_routes_rps"), "6");
  EXPECT_EQ(rows[0].at("all_routes_err"), "0.333333");
  EXPECT_EQ(rows[0].at("all_routes_lat_50"), "20");
}

twin::Snapshot snapshot_at(double time_s, double front_cpu_total, double h1_busy_total) {
  twin::Snapshot snapshot;
  snapshot.time_s = time_s;
  snapshot.instances = {
      {"front", 0, "h1", true, 16, 4, 3, 100.0, front_cpu_total},
      {"front", 1, "h2", true, 16, 12, 1, 150.0, 0.0},
      {"back", 0, "h2", false, 16, 0, 0, 0.0, 0.0},
  };
  snapshot.hosts = {{"h1", "z1", 4, h1_busy_total}, {"h2", "z1", 2, 0.0}};
  snapshot.pools = {{"front", "back", 10, 5, 2, 0}, {"back", "db", 4, 4, 9, 0}};
  snapshot.breakers = {{"front", "back", 0, twin::BreakerState::open},
                       {"front", "back", 1, twin::BreakerState::half_open},
                       {"front", "db", 1, twin::BreakerState::open}};
  const auto replica_reads = static_cast<std::uint64_t>(50 * time_s);
  const auto replica_stale_reads = static_cast<std::uint64_t>(5 * time_s);
  snapshot.datastores = {{"db", 0, true, 99.0, 7, 50, 0, 10},
                         {"db", 1, true, 12.5, 1, replica_reads, replica_stale_reads, 0}};
  return snapshot;
}

TEST(MetricsRecorder, GaugesAndRatesFromSnapshots) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_snapshot(snapshot_at(1.0, 0.5, 2.0));
    recorder.on_snapshot(snapshot_at(2.0, 2.0, 2.0));
    // No snapshot ends window 2: its gauges repeat window 1's.
    recorder.on_run_end(3.0);
  }));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("front_cpu"), "0.5");
  // front runs on h1 (4 cores x speed 1) and h2 (2 x 2): 8 reference cores.
  EXPECT_EQ(rows[0].at("front_cpu_pct"), "6.25");
  EXPECT_EQ(rows[0].at("front_mem"), "250");
  EXPECT_EQ(rows[0].at("front_workers_util"), "0.5");
  EXPECT_EQ(rows[0].at("front_queue"), "4");
  EXPECT_EQ(rows[0].at("front_breaker_open"), "2");  // half-open does not count
  EXPECT_EQ(rows[0].at("back_mem"), "0");            // down
  EXPECT_EQ(rows[0].at("back_workers_util"), "0");
  EXPECT_EQ(rows[0].at("front_to_back_pool_util"), "0.5");
  EXPECT_EQ(rows[0].at("front_to_back_pool_waiters"), "2");
  EXPECT_EQ(rows[0].at("h1_host_cpu"), "0.5");
  EXPECT_EQ(rows[0].at("db_replication_lag_ms"), "12.5");  // replicas only
  EXPECT_EQ(rows[0].at("db_connections"), "7");            // the busiest node
  EXPECT_EQ(rows[0].at("db_stale_read_rate"), "0.05");     // 5 stale of 100 reads
  EXPECT_EQ(rows[1].at("front_cpu"), "1.5");
  EXPECT_EQ(rows[1].at("h1_host_cpu"), "0");
  EXPECT_EQ(rows[1].at("db_stale_read_rate"), "0.1");  // 5 of 50 new reads
  EXPECT_EQ(rows[2].at("front_cpu"), "1.5");           // carried forward
  EXPECT_EQ(rows[2].at("front_mem"), "250");
}

TEST(MetricsRecorder, SnapshotOnTheBoundaryEndsTheWindowEvenAfterALaterSpan) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_span(server_span("front", 0.5, 1.0));  // window 1, comes before the snapshot
    recorder.on_snapshot(snapshot_at(1.0, 0.25, 0.0));
    recorder.on_run_end(2.0);
  }));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("front_cpu"), "0.25");
  EXPECT_EQ(rows[0].at("front_rps"), "0");
  EXPECT_EQ(rows[1].at("front_rps"), "1");
}

TEST(MetricsRecorder, StartSnapshotIsABaselineNotARow) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_snapshot(snapshot_at(0.0, 10.0, 0.0));
    recorder.on_snapshot(snapshot_at(1.0, 10.75, 0.0));
    recorder.on_run_end(1.0);
  }));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("front_cpu"), "0.75");
}

TEST(MetricsRecorder, SubSecondWindowsAndIdleLatencyAsZero) {
  MetricsOptions options;
  options.window_s = 0.1;
  options.epoch_unix_s = 0.0;
  options.idle_latency_as_zero = true;
  const auto rows = parse_csv(record(
      [](MetricsRecorder& recorder) {
        recorder.on_span(server_span("front", 0.25, 0.3));  // 0.3 = 3 * 0.1: window 3
        recorder.on_run_end(0.4);
      },
      options));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].at("time"), "0.1");
  EXPECT_EQ(rows[2].at("time"), "0.3");
  EXPECT_EQ(rows[2].at("front_lat_50"), "0");
  EXPECT_EQ(rows[3].at("front_rps"), "10");
  EXPECT_EQ(rows[3].at("front_lat_50"), "50");
}

TEST(MetricsRecorder, RecordsAtTheRunEndJoinTheLastWindow) {
  const auto rows = parse_csv(record([](MetricsRecorder& recorder) {
    recorder.on_span(server_span("front", 1.5, 2.0));
    recorder.on_run_end(2.0);
  }));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].at("front_rps"), "1");
}

TEST(MetricsRecorder, FinishWithoutRunEndWritesUpToTheLastRecord) {
  std::ostringstream out;
  MetricsRecorder recorder(small_topology(), out);
  recorder.on_span(server_span("front", 0.0, 2.5));
  recorder.finish();
  recorder.finish();
  EXPECT_EQ(recorder.rows_written(), 3);
  const auto rows = parse_csv(out.str());
  EXPECT_EQ(rows[2].at("front_rps"), "2");  // one request in the half window that ran
}

TEST(MetricsRecorder, SameStreamSameBytes) {
  auto feed = [](MetricsRecorder& recorder) {
    for (int i = 0; i < 5000; ++i) {
      const double t = i * 0.001;
      recorder.on_span(server_span(i % 2 ? "front" : "back", t, t + 0.0123 * (i % 7)));
      if (i % 500 == 0) recorder.on_snapshot(snapshot_at(t, t, t));
    }
    recorder.on_run_end(6.0);
  };
  EXPECT_EQ(record(feed), record(feed));
}

TEST(MetricsRecorder, RefusesCollidingColumnNames) {
  auto topology = small_topology();
  topology.services[1].name = "route_home";  // route_home_rps would be written twice
  std::ostringstream out;
  EXPECT_THROW(MetricsRecorder(topology, out), std::invalid_argument);
  EXPECT_THROW(MetricsRecorder(small_topology(), out, MetricsOptions{0.0}), std::invalid_argument);
}

}  // namespace
}  // namespace doppel::telemetry
