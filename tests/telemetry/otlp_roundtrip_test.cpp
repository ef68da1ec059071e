// What the twin writes, Doppel's own OTLP reader must read back unchanged: ids, parent
// links, kinds, times, services, hosts, instances, errors and the peer.
#include <cmath>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "doppel/ingest/trace_reader.hpp"
#include "doppel/telemetry/otlp_trace_writer.hpp"

#include "synthetic_stream.hpp"

namespace doppel::telemetry {
namespace {

class CollectingSink final : public ingest::SpanSink {
 public:
  void on_span(ingest::Span&& span) override { spans.push_back(std::move(span)); }
  std::vector<ingest::Span> spans;
};

TEST(OtlpRoundTrip, IngestReadsBackWhatTheWriterWrote) {
  std::vector<twin::SpanRecord> written;
  auto root = testing::server_span("front", 0.25, 0.5);
  root.trace_id = twin::TraceId{0x0123456789abcdef, 0xfedcba9876543210};
  root.span_id = 0x1111;
  root.instance = 1;
  root.host = "h2";
  auto call = testing::client_span("front", "back", 0.3, 0.45, 1, twin::Outcome::timeout);
  call.trace_id = root.trace_id;
  call.span_id = 0x2222;
  call.parent_span_id = root.span_id;
  call.instance = 1;
  call.host = "h2";
  auto served = testing::server_span("back", 0.31, 0.44);
  served.trace_id = root.trace_id;
  served.span_id = 0x3333;
  served.parent_span_id = call.span_id;
  written = {served, call, root};

  std::ostringstream out;
  OtlpTraceWriter writer(out, OtlpOptions{1.0, 1700000000});
  for (const auto& span : written) writer.on_span(span);
  auto done = testing::entry("home", 0.25, 0.5);
  done.trace_id = root.trace_id;
  writer.on_entry(done);
  writer.finish();

  CollectingSink sink;
  const auto result = ingest::read_trace_bytes(out.str(), "traces.otlp.jsonl", sink);
  EXPECT_EQ(result.format, ingest::TraceFormat::otlp_json);
  ASSERT_EQ(sink.spans.size(), written.size());
  std::map<std::uint64_t, const ingest::Span*> read;
  for (const auto& span : sink.spans) read[span.span_id] = &span;
  for (const auto& original : written) {
    SCOPED_TRACE(original.span_id);
    ASSERT_TRUE(read.contains(original.span_id));
    const ingest::Span& span = *read.at(original.span_id);
    EXPECT_EQ(span.trace_id.high, original.trace_id.high);
    EXPECT_EQ(span.trace_id.low, original.trace_id.low);
    EXPECT_EQ(span.parent_span_id, original.parent_span_id);
    EXPECT_EQ(span.service, original.service);
    EXPECT_EQ(span.operation, original.operation);
    EXPECT_EQ(span.kind, original.kind == twin::SpanKind::server ? ingest::SpanKind::server
                                                                 : ingest::SpanKind::client);
    EXPECT_EQ(span.start_ns, 1700000000000000000LL + std::llround(original.start_s * 1e9));
    EXPECT_EQ(span.end_ns, 1700000000000000000LL + std::llround(original.end_s * 1e9));
    EXPECT_EQ(span.error, original.outcome != twin::Outcome::ok);
    EXPECT_EQ(span.host, original.host);
    EXPECT_EQ(span.instance, fmt::format("{}-{}", original.service, original.instance));
  }
  const ingest::Span& client = *read.at(call.span_id);
  ASSERT_NE(client.attribute("peer.service"), nullptr);
  EXPECT_EQ(*client.attribute("peer.service"), "back");
  EXPECT_EQ(client.status_message, "timeout");
  ASSERT_NE(read.at(root.span_id)->attribute("http.route"), nullptr);
  EXPECT_EQ(*read.at(root.span_id)->attribute("http.route"), "home");
}

}  // namespace
}  // namespace doppel::telemetry
