#include "doppel/telemetry/otlp_trace_writer.hpp"

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "synthetic_stream.hpp"

namespace doppel::telemetry {
namespace {

using nlohmann::json;
using testing::client_span;
using testing::entry;
using testing::server_span;

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) lines.push_back(json::parse(line));
  return lines;
}

// All spans of one ExportTraceServiceRequest, each with its resource's service.name added
// as "_service" and host.name as "_host".
std::vector<json> spans_of(const json& request) {
  std::vector<json> spans;
  for (const auto& resource : request.at("resourceSpans")) {
    std::string service;
    std::string host;
    for (const auto& attribute : resource.at("resource").at("attributes")) {
      if (attribute.at("key") == "service.name") service = attribute["value"]["stringValue"];
      if (attribute.at("key") == "host.name") host = attribute["value"]["stringValue"];
    }
    for (const auto& scope : resource.at("scopeSpans")) {
      for (auto span : scope.at("spans")) {
        span["_service"] = service;
        span["_host"] = host;
        spans.push_back(span);
      }
    }
  }
  return spans;
}

const json* attribute(const json& span, const std::string& key) {
  for (const auto& attribute : span.at("attributes")) {
    if (attribute.at("key") == key) return &attribute.at("value");
  }
  return nullptr;
}

twin::TraceId trace(std::uint64_t n) {
  return twin::TraceId{0x1234, n};
}

// front (instance 0 on h1) handles a request, calls back twice (the first attempt times
// out), back (on h2) serves the retry.
void feed_one_trace(OtlpTraceWriter& writer, twin::TraceId id, double t0) {
  auto root = server_span("front", t0, t0 + 0.1);
  root.trace_id = id;
  root.span_id = 1;
  auto first_try = client_span("front", "back", t0 + 0.01, t0 + 0.03, 0, twin::Outcome::timeout);
  first_try.trace_id = id;
  first_try.span_id = 2;
  first_try.parent_span_id = 1;
  auto retry = client_span("front", "back", t0 + 0.04, t0 + 0.08, 1);
  retry.trace_id = id;
  retry.span_id = 3;
  retry.parent_span_id = 1;
  auto served = server_span("back", t0 + 0.045, t0 + 0.075);
  served.trace_id = id;
  served.span_id = 4;
  served.parent_span_id = 3;
  served.host = "h2";
  served.queue_s = 0.002;
  writer.on_span(first_try);
  writer.on_span(served);
  writer.on_span(retry);
  writer.on_span(root);
  auto done = entry("home", t0, t0 + 0.1);
  done.trace_id = id;
  writer.on_entry(done);
}

TEST(OtlpTraceWriter, WritesOneRequestPerTraceWithOtlpShapes) {
  std::ostringstream out;
  OtlpTraceWriter writer(out, OtlpOptions{1.0});
  feed_one_trace(writer, twin::TraceId{0xabcdef, 0x42}, 0.1);
  writer.finish();
  const auto lines = parse_lines(out.str());
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0].at("resourceSpans").size(), 2u);  // front-0 on h1, back-0 on h2
  const auto spans = spans_of(lines[0]);
  ASSERT_EQ(spans.size(), 4u);
  std::map<std::string, json> by_id;
  for (const auto& span : spans) {
    EXPECT_EQ(span.at("traceId"), "0000000000abcdef0000000000000042");
    by_id[span.at("spanId")] = span;
  }
  const json& root = by_id.at("0000000000000001");
  EXPECT_FALSE(root.contains("parentSpanId"));
  EXPECT_EQ(root.at("kind"), 2);
  EXPECT_EQ(root.at("_service"), "front");
  EXPECT_EQ(root.at("_host"), "h1");
  EXPECT_EQ(root.at("startTimeUnixNano"), "1700000000100000000");
  EXPECT_EQ(root.at("endTimeUnixNano"), "1700000000200000000");
  EXPECT_FALSE(root.contains("status"));
  EXPECT_EQ(*attribute(root, "http.route"), json({{"stringValue", "home"}}));
  EXPECT_EQ(*attribute(root, "http.response.status_code"), json({{"intValue", "200"}}));
  EXPECT_EQ(*attribute(root, "doppel.outcome"), json({{"stringValue", "ok"}}));

  const json& first_try = by_id.at("0000000000000002");
  EXPECT_EQ(first_try.at("parentSpanId"), "0000000000000001");
  EXPECT_EQ(first_try.at("kind"), 3);
  EXPECT_EQ(first_try.at("status"), json({{"code", 2}, {"message", "timeout"}}));
  EXPECT_EQ(*attribute(first_try, "peer.service"), json({{"stringValue", "back"}}));
  EXPECT_EQ(*attribute(first_try, "doppel.attempt"), json({{"intValue", "0"}}));
  EXPECT_EQ(attribute(first_try, "http.route"), nullptr);  // only the root gets HTTP attributes

  EXPECT_EQ(*attribute(by_id.at("0000000000000003"), "doppel.attempt"), json({{"intValue", "1"}}));
  const json& served = by_id.at("0000000000000004");
  EXPECT_EQ(served.at("parentSpanId"), "0000000000000003");
  EXPECT_EQ(served.at("_service"), "back");
  EXPECT_EQ(served.at("_host"), "h2");
  EXPECT_EQ(served.at("endTimeUnixNano"), "1700000000175000000");
  EXPECT_DOUBLE_EQ(attribute(served, "doppel.queue_ms")->at("doubleValue").get<double>(), 2.0);
  EXPECT_EQ(*attribute(served, "doppel.instance"), json({{"intValue", "0"}}));
}

TEST(OtlpTraceWriter, EscapesNamesIntoValidJson) {
  std::ostringstream out;
  OtlpTraceWriter writer(out, OtlpOptions{1.0});
  const std::string service = "we\"ird\\svc\n\x01é";
  const std::string operation = "GET /a\tb";
  auto span = server_span(service, 0.0, 0.001);
  span.operation = operation;
  span.trace_id = trace(1);
  span.span_id = 1;
  writer.on_span(span);
  writer.finish();
  const auto lines = parse_lines(out.str());
  ASSERT_EQ(lines.size(), 1u);
  const auto spans = spans_of(lines[0]);
  EXPECT_EQ(spans.at(0).at("_service"), service);
  EXPECT_EQ(spans.at(0).at("name"), operation);
}

TEST(OtlpTraceWriter, FlushesATraceWhenItsEntryCompletes) {
  std::ostringstream out;
  OtlpTraceWriter writer(out, OtlpOptions{1.0});
  auto span = server_span("front", 0.0, 0.1);
  span.trace_id = trace(1);
  span.span_id = 1;
  writer.on_span(span);
  span.trace_id = trace(2);
  writer.on_span(span);
  EXPECT_EQ(writer.lines_written(), 0u);
  EXPECT_EQ(writer.open_traces(), 2u);
  auto done = entry("home", 0.0, 0.1);
  done.trace_id = trace(2);
  writer.on_entry(done);
  EXPECT_EQ(writer.lines_written(), 1u);
  EXPECT_EQ(writer.open_traces(), 1u);
  writer.finish();  // the trace without an entry is written at the end
  EXPECT_EQ(writer.lines_written(), 2u);
  EXPECT_EQ(writer.open_traces(), 0u);
}

TEST(OtlpTraceWriter, SpanEndingAfterItsTraceIsWrittenAtOnce) {
  std::ostringstream out;
  OtlpTraceWriter writer(out, OtlpOptions{1.0});
  feed_one_trace(writer, trace(7), 0.0);
  auto late = server_span("back", 0.05, 0.5);  // kept working after its caller gave up
  late.trace_id = trace(7);
  late.span_id = 9;
  late.parent_span_id = 2;
  writer.on_span(late);
  EXPECT_EQ(writer.lines_written(), 2u);
  EXPECT_EQ(writer.open_traces(), 0u);
  const auto lines = parse_lines(out.str());
  EXPECT_EQ(spans_of(lines[1]).at(0).at("spanId"), "0000000000000009");
}

TEST(OtlpTraceWriter, OpenTracesAreBounded) {
  std::ostringstream out;
  OtlpOptions options{1.0};
  options.max_open_traces = 2;
  OtlpTraceWriter writer(out, options);
  for (std::uint64_t n = 1; n <= 3; ++n) {
    auto span = server_span("front", 0.0, 0.1);
    span.trace_id = trace(n);
    span.span_id = n;
    writer.on_span(span);
  }
  EXPECT_EQ(writer.open_traces(), 2u);
  ASSERT_EQ(writer.lines_written(), 1u);
  EXPECT_EQ(spans_of(parse_lines(out.str()).at(0)).at(0).at("spanId"), "0000000000000001");
}

TEST(OtlpTraceWriter, SamplingKeepsWholeTracesAndHonoursTheRatio) {
  std::ostringstream out;
  OtlpTraceWriter writer(out, OtlpOptions{0.1});
  constexpr int kTraces = 10000;
  int expected_kept = 0;
  for (int n = 1; n <= kTraces; ++n) {
    feed_one_trace(writer, trace(static_cast<std::uint64_t>(n)), n * 0.001);
    if (trace_sampled(trace(static_cast<std::uint64_t>(n)), 0.1)) ++expected_kept;
  }
  writer.finish();
  const auto lines = parse_lines(out.str());
  ASSERT_EQ(static_cast<int>(lines.size()), expected_kept);
  // Binomial(10000, 0.1): sd 30, so +-150 is five standard deviations.
  EXPECT_NEAR(expected_kept, 1000, 150);
  std::set<std::string> traces;
  for (const auto& line : lines) {
    const auto spans = spans_of(line);
    EXPECT_EQ(spans.size(), 4u);  // every span of a kept trace
    for (const auto& span : spans) EXPECT_EQ(span.at("traceId"), spans[0].at("traceId"));
    EXPECT_TRUE(traces.insert(spans[0].at("traceId")).second);
  }
}

TEST(OtlpTraceWriter, SamplingIsAPureFunctionOfTheTraceId) {
  int kept_at_1_percent = 0;
  for (std::uint64_t n = 0; n < 100000; ++n) {
    const twin::TraceId id{n * 7919, n};
    EXPECT_EQ(trace_sampled(id, 0.3), trace_sampled(id, 0.3));
    if (trace_sampled(id, 0.01)) {
      ++kept_at_1_percent;
      EXPECT_TRUE(trace_sampled(id, 0.5));  // thresholds nest: a bigger ratio keeps a superset
    }
    EXPECT_TRUE(trace_sampled(id, 1.0));
    EXPECT_FALSE(trace_sampled(id, 0.0));
  }
  EXPECT_NEAR(kept_at_1_percent, 1000, 160);  // sd ~31.5
}

TEST(OtlpTraceWriter, RatioZeroWritesNothing) {
  std::ostringstream out;
  OtlpTraceWriter writer(out, OtlpOptions{0.0});
  feed_one_trace(writer, trace(1), 0.0);
  writer.finish();
  EXPECT_EQ(out.str(), "");
  EXPECT_THROW(OtlpTraceWriter(out, OtlpOptions{1.5}), std::invalid_argument);
}

TEST(OtlpTraceWriter, SameStreamSameBytes) {
  auto run = [] {
    std::ostringstream out;
    OtlpTraceWriter writer(out, OtlpOptions{0.5});
    for (std::uint64_t n = 1; n <= 200; ++n) feed_one_trace(writer, trace(n), n * 0.01);
    writer.finish();
    return out.str();
  };
  const std::string first = run();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first, run());
}

}  // namespace
}  // namespace doppel::telemetry
