#include "doppel/telemetry/telemetry_suite.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "doppel/model/input_error.hpp"

#include "synthetic_stream.hpp"

namespace doppel::telemetry {
namespace {

using testing::client_span;
using testing::entry;
using testing::server_span;
using testing::small_topology;

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::path(DOPPEL_BINARY_DIR) / "telemetry-test-output" / name;
  std::filesystem::remove_all(dir);
  return dir;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  EXPECT_TRUE(stream) << path;
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

// A few seconds of a small system: traces of front -> back, snapshots each second, an event.
void feed_run(twin::TwinObserver& observer) {
  std::uint64_t next_span = 1;
  for (int n = 0; n < 300; ++n) {
    const double t = n * 0.01;
    const twin::TraceId trace{0, static_cast<std::uint64_t>(n + 1)};
    auto root = server_span("front", t, t + 0.02 + 0.0001 * (n % 13));
    root.trace_id = trace;
    root.span_id = next_span++;
    auto call = client_span("front", "back", t + 0.001, t + 0.015, 0,
                            n % 50 == 0 ? twin::Outcome::timeout : twin::Outcome::ok);
    call.trace_id = trace;
    call.span_id = next_span++;
    call.parent_span_id = root.span_id;
    auto served = server_span("back", t + 0.002, t + 0.014);
    served.trace_id = trace;
    served.span_id = next_span++;
    served.parent_span_id = call.span_id;
    observer.on_span(served);
    observer.on_span(call);
    observer.on_span(root);
    auto done = entry("home", t, root.end_s);
    done.trace_id = trace;
    observer.on_entry(done);
    if (n == 150) observer.on_event(twin::TwinEvent{t, "breaker_open", "front->back", {}});
    if (n % 100 == 99) {
      twin::Snapshot snapshot;
      snapshot.time_s = (n + 1) * 0.01;
      snapshot.instances = {{"front", 0, "h1", true, 16, 2, 0, 80.0, 0.1 * (n + 1) / 100.0}};
      observer.on_snapshot(snapshot);
    }
  }
  observer.on_run_end(3.0);
}

TelemetryOptions options_for(const std::filesystem::path& dir) {
  TelemetryOptions options;
  options.out_dir = dir;
  options.trace_sample_ratio = 0.5;
  return options;
}

TEST(TelemetrySuite, WritesEveryFile) {
  const auto dir = fresh_dir("every-file");
  TelemetrySuite suite(small_topology(), options_for(dir));
  feed_run(suite.observer());
  const Summary& summary = suite.finish();
  EXPECT_EQ(summary.total.requests, 300u);
  EXPECT_EQ(&suite.finish(), &summary);  // once only

  const std::string metrics = read_file(dir / kMetricsFileName);
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4);  // header + 3 windows
  EXPECT_EQ(metrics.rfind("time,front_rps,", 0), 0u);
  const std::string traces = read_file(dir / kTracesFileName);
  const auto lines = std::count(traces.begin(), traces.end(), '\n');
  EXPECT_GT(lines, 100);  // about half of 300 traces
  EXPECT_LT(lines, 200);
  EXPECT_EQ(read_file(dir / kEventsFileName).find("\"kind\":\"breaker_open\""), 14u);
  const auto json = nlohmann::json::parse(read_file(dir / kSummaryFileName));
  EXPECT_EQ(json.at("total").at("requests"), 300);
  EXPECT_EQ(json.at("events").at("breaker_open"), 1);
  EXPECT_NE(read_file(dir / kSummaryTableFileName).find("front"), std::string::npos);
}

TEST(TelemetrySuite, SameStreamSameBytes) {
  const auto first = fresh_dir("determinism-1");
  const auto second = fresh_dir("determinism-2");
  for (const auto& dir : {first, second}) {
    TelemetrySuite suite(small_topology(), options_for(dir));
    // Through the list of observers this time, as a twin taking several would use it.
    struct ListFanOut final : twin::TwinObserver {
      std::vector<twin::TwinObserver*> targets;
      void on_span(const twin::SpanRecord& s) override {
        for (auto* t : targets) t->on_span(s);
      }
      void on_entry(const twin::EntryRecord& e) override {
        for (auto* t : targets) t->on_entry(e);
      }
      void on_event(const twin::TwinEvent& e) override {
        for (auto* t : targets) t->on_event(e);
      }
      void on_snapshot(const twin::Snapshot& s) override {
        for (auto* t : targets) t->on_snapshot(s);
      }
      void on_run_end(double end) override {
        for (auto* t : targets) t->on_run_end(end);
      }
    } fan_out;
    fan_out.targets = suite.observers();
    EXPECT_EQ(fan_out.targets.size(), 4u);
    feed_run(fan_out);
    suite.finish();
  }
  for (const auto name : {kMetricsFileName, kTracesFileName, kEventsFileName, kSummaryFileName,
                          kSummaryTableFileName}) {
    const std::string bytes = read_file(first / name);
    EXPECT_FALSE(bytes.empty()) << name;
    EXPECT_EQ(bytes, read_file(second / name)) << name;
  }
}

TEST(TelemetrySuite, LeavesOutFilesItWasToldToSkip) {
  const auto dir = fresh_dir("skip");
  auto options = options_for(dir);
  options.write_traces = false;
  options.write_summary = false;
  TelemetrySuite suite(small_topology(), options);
  feed_run(suite.observer());
  EXPECT_EQ(suite.finish().total.requests, 300u);  // computed anyway
  EXPECT_TRUE(std::filesystem::exists(dir / kMetricsFileName));
  EXPECT_FALSE(std::filesystem::exists(dir / kTracesFileName));
  EXPECT_FALSE(std::filesystem::exists(dir / kSummaryFileName));
}

TEST(TelemetrySuite, ASummaryNobodyReadsIsNotComputed) {
  const auto dir = fresh_dir("no-summary");
  auto options = options_for(dir);
  options.write_summary = false;
  options.compute_summary = false;
  TelemetrySuite suite(small_topology(), options);
  feed_run(suite.observer());
  EXPECT_EQ(suite.finish().total.requests, 0u);
  EXPECT_EQ(suite.finish().server_spans, 0u);
  EXPECT_FALSE(std::filesystem::exists(dir / kSummaryFileName));
  // The files still come out whole.
  EXPECT_FALSE(read_file(dir / kMetricsFileName).empty());

  // Asked to write it, the suite computes it whatever compute_summary says.
  const auto written = fresh_dir("summary-written");
  auto writing = options_for(written);
  writing.compute_summary = false;
  TelemetrySuite writing_suite(small_topology(), writing);
  feed_run(writing_suite.observer());
  EXPECT_EQ(writing_suite.finish().total.requests, 300u);
  EXPECT_TRUE(std::filesystem::exists(written / kSummaryFileName));
}

TEST(TelemetrySuite, UnwritableDirectoryIsAnInputErrorNamingIt) {
  const auto dir = fresh_dir("blocked");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "file") << "x";
  try {
    TelemetrySuite suite(small_topology(), options_for(dir / "file" / "out"));
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_EQ(error.file(), (dir / "file" / "out").string());
  }
}

}  // namespace
}  // namespace doppel::telemetry
