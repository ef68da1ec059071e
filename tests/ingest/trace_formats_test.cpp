// Each supported format, on the real files of ../shared/data/traces (copied to
// tests/data/traces when small) and on small handwritten files, one feature each.
#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"

#include "collecting_sink.hpp"

namespace doppel::ingest {
namespace {

using testing::CollectingSink;
using testing::read_bytes;
using testing::test_data;

std::filesystem::path shared_trace(const std::string& name) {
  return std::filesystem::path(DOPPEL_SOURCE_DIR) / ".." / "shared" / "data" / "traces" / name;
}

// The figures of MANIFEST.md, checked on the shared original and on the copy in the repo.
struct RealFile {
  std::string shared_name;
  std::string copy_name;  // in tests/data/traces; empty when too large to copy
  TraceFormat format;
  std::size_t spans;
  std::size_t services;
  std::size_t errors;
  std::uint64_t traces;
  std::size_t unnamed_spans;  // Zipkin allows spans without a name
};

class RealFileTest : public ::testing::TestWithParam<RealFile> {
 protected:
  void check(const std::filesystem::path& path) {
    const RealFile& expected = GetParam();
    CollectingSink sink;
    const ReadResult result = read_trace_file(path, sink);
    EXPECT_EQ(result.format, expected.format);
    EXPECT_EQ(sink.spans.size(), expected.spans);
    EXPECT_EQ(sink.services().size(), expected.services);
    EXPECT_EQ(sink.errors(), expected.errors);
    EXPECT_EQ(result.quality.spans, expected.spans);
    EXPECT_EQ(result.quality.traces, expected.traces);
    EXPECT_EQ(result.quality.malformed_spans, 0u);
    EXPECT_EQ(result.quality.duplicate_spans, 0u);
    EXPECT_EQ(result.quality.missing_parents, 0u);
    EXPECT_EQ(result.quality.parent_cycles, 0u);
    std::size_t unnamed = 0;
    for (const Span& span : sink.spans) {
      EXPECT_FALSE(span.trace_id.empty());
      EXPECT_NE(span.span_id, 0u);
      EXPECT_FALSE(span.service.empty());
      unnamed += span.operation.empty() ? 1 : 0;
      EXPECT_GE(span.end_ns, span.start_ns);
      ASSERT_TRUE(span.source.file);
    }
    EXPECT_EQ(unnamed, expected.unnamed_spans);
  }
};

TEST_P(RealFileTest, SharedOriginalParsesWithManifestCounts) {
  const auto path = shared_trace(GetParam().shared_name);
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  check(path);
}

TEST_P(RealFileTest, RepositoryCopyParsesWithManifestCounts) {
  if (GetParam().copy_name.empty()) GTEST_SKIP() << "no copy in the repository";
  check(test_data(GetParam().copy_name));
}

INSTANTIATE_TEST_SUITE_P(
    Manifest, RealFileTest,
    ::testing::Values(RealFile{"otlpjson_hotrod_jaeger_apiv3_getTrace.json",
                               "otlpjson_hotrod_jaeger_apiv3_getTrace.json", TraceFormat::otlp_json,
                               40, 6, 3, 1, 0},
                      RealFile{"jaegerui_deathstarbench_socialnetwork_compose_20traces.json",
                               "jaegerui_deathstarbench_socialnetwork_compose_20traces.json.zst",
                               TraceFormat::jaeger_ui_json, 660, 12, 0, 20, 0},
                      RealFile{"zipkin2_smartthings-oauth-authorization.json",
                               "zipkin2_smartthings-oauth-authorization.json",
                               TraceFormat::zipkin_v2_json, 175, 8, 2, 1, 6}),
    [](const ::testing::TestParamInfo<RealFile>& info) {
      return std::string(info.param.format == TraceFormat::otlp_json        ? "otlp"
                         : info.param.format == TraceFormat::jaeger_ui_json ? "jaeger_ui"
                                                                            : "zipkin");
    });

TEST(OtlpRealFileTest, HotRodErrorsKindsAndAttributes) {
  CollectingSink sink;
  read_trace_file(test_data("otlpjson_hotrod_jaeger_apiv3_getTrace.json"), sink);
  std::size_t clients = 0;
  std::size_t servers = 0;
  for (const Span& span : sink.spans) {
    clients += span.kind == SpanKind::client ? 1 : 0;
    servers += span.kind == SpanKind::server ? 1 : 0;
    if (span.error) {
      EXPECT_EQ(span.status_message, "An error occurred");
    }
  }
  EXPECT_EQ(clients, 27u);
  EXPECT_EQ(servers, 13u);
  const Span& first = sink.spans.front();
  EXPECT_EQ(first.trace_id.to_hex(), "2ea75461946a7dd10f2c15ab36a076cb");
  EXPECT_EQ(first.span_id, 0x9082d67808fc8870ULL);
  EXPECT_EQ(first.parent_span_id, 0xc8d93156b47cd010ULL);
  EXPECT_EQ(first.service, "frontend");
  EXPECT_EQ(first.host, "2fd43f7d79c6");
  EXPECT_EQ(first.start_ns, 1782036644636668325);
  EXPECT_EQ(first.end_ns, 1782036644898226779);
  ASSERT_NE(first.attribute("url.full"), nullptr);
  EXPECT_EQ(*first.attribute("url.full"), "http://0.0.0.0:8081/customer?customer=123");
  ASSERT_NE(first.attribute("http.response.status_code"), nullptr);
  EXPECT_EQ(*first.attribute("http.response.status_code"), "200");
  EXPECT_EQ(first.attribute("network.protocol.version"), nullptr);  // not for reconstruction
  EXPECT_EQ(first.source.line, 0u);
  EXPECT_GT(first.source.byte_offset, 0u);
}

TEST(JaegerRealFileTest, NestedReferenceCopiesAreNotSpans) {
  CollectingSink sink;
  const ReadResult result = read_trace_file(
      test_data("jaegerui_deathstarbench_socialnetwork_compose_20traces.json.zst"), sink);
  EXPECT_TRUE(result.zstd_compressed);
  EXPECT_EQ(result.bytes, 3590524u);
  std::size_t roots = 0;
  for (const Span& span : sink.spans) roots += span.parent_span_id == 0 ? 1 : 0;
  EXPECT_EQ(roots, 20u);  // one per trace: 640 CHILD_OF references, no more
  EXPECT_TRUE(result.quality.clean()) << result.quality.clock_skew;
}

TEST(ZipkinRealFileTest, SharedServerHalvesGetTheirOwnIds) {
  CollectingSink sink;
  const ReadResult result =
      read_trace_file(test_data("zipkin2_smartthings-oauth-authorization.json"), sink);
  EXPECT_EQ(result.quality.zipkin_shared_spans, 45u);
  EXPECT_EQ(result.quality.missing_durations, 19u);
  EXPECT_EQ(result.quality.missing_timestamps, 0u);
  std::size_t shared = 0;
  for (const Span& span : sink.spans) {
    const std::string* shared_id = span.attribute("zipkin.shared_id");
    if (!shared_id) continue;
    ++shared;
    // The server half's parent is the client half, which kept the shared id.
    EXPECT_EQ(span_id_to_hex(span.parent_span_id), *shared_id);
    const Span* client = sink.find(span.parent_span_id);
    ASSERT_NE(client, nullptr) << *shared_id;
    EXPECT_EQ(client->kind, SpanKind::client);
  }
  EXPECT_EQ(shared, 45u);
}

TEST(OtlpFeatureTest, EveryAnyValueFormAndUnknownFields) {
  CollectingSink sink;
  const ReadResult result = read_trace_file(test_data("features/otlp_any_values.json"), sink);
  ASSERT_EQ(sink.spans.size(), 1u);
  EXPECT_FALSE(result.json_lines);
  const Span& span = sink.spans[0];
  EXPECT_EQ(span.trace_id.to_hex(), "0af7651916cd43dd8448eb211c80319c");  // hex in any case
  EXPECT_EQ(span.service, "cart");  // resource after scopeSpans
  EXPECT_EQ(span.host, "node-7");
  EXPECT_EQ(span.instance, "cart-7f9c");
  EXPECT_EQ(span.kind, SpanKind::server);         // enum by name
  EXPECT_EQ(span.start_ns, 1544712660000000000);  // number
  EXPECT_EQ(span.end_ns, 1544712661000000000);    // string
  EXPECT_TRUE(span.error);
  EXPECT_EQ(span.status_message, "out of stock");
  const auto attribute = [&span](const char* key) {
    const std::string* value = span.attribute(key);
    return value ? *value : std::string("<absent>");
  };
  EXPECT_EQ(attribute("http.route"), "/api/cart");
  EXPECT_EQ(attribute("http.status_code"), "200");
  EXPECT_EQ(attribute("server.port"), "8080");
  EXPECT_EQ(attribute("net.peer.port"), "0.25");
  EXPECT_EQ(attribute("db.instance"), "true");
  EXPECT_EQ(attribute("rpc.method"), R"({"values": [{"stringValue": "a"}, {"intValue": "1"}]})");
  EXPECT_EQ(attribute("rpc.service"),
            R"({"values": [{"key": "k", "value": {"stringValue": "v"}}]})");
  EXPECT_EQ(attribute("peer.address"), "AQID");
  EXPECT_EQ(attribute("component"), "");
  EXPECT_EQ(attribute("not.kept"), "<absent>");
  ASSERT_EQ(span.links.size(), 1u);
  EXPECT_EQ(span.links[0].type, LinkType::link);
  EXPECT_EQ(span.links[0].span_id, 0x2222222222222222ULL);
}

TEST(OtlpFeatureTest, KeepAllAttributesKeepsTheOthersToo) {
  CollectingSink sink;
  ReaderOptions options;
  options.keep_all_attributes = true;
  read_trace_file(test_data("features/otlp_any_values.json"), sink, options);
  ASSERT_EQ(sink.spans.size(), 1u);
  ASSERT_NE(sink.spans[0].attribute("not.kept"), nullptr);
  EXPECT_EQ(*sink.spans[0].attribute("not.kept"), "dropped unless keep_all_attributes");
}

TEST(OtlpFeatureTest, CollectorJsonLinesWithBlankLines) {
  CollectingSink sink;
  const ReadResult result =
      read_trace_file(test_data("features/otlp_collector_file_exporter.jsonl"), sink);
  EXPECT_TRUE(result.json_lines);
  EXPECT_EQ(result.documents, 2u);
  ASSERT_EQ(sink.spans.size(), 3u);
  EXPECT_EQ(sink.spans[1].service, "frontend");
  EXPECT_EQ(*sink.spans[1].attribute("db.system"), "postgresql");
  EXPECT_EQ(*sink.spans[1].attribute("peer.service"), "orders-db");
  EXPECT_EQ(sink.spans[2].service, "orders");
  EXPECT_EQ(sink.spans[2].kind, SpanKind::producer);
  EXPECT_EQ(sink.spans[2].source.line, 3u);
  EXPECT_TRUE(result.quality.clean());
}

TEST(OtlpFeatureTest, OldInstrumentationLibrarySpansAndProtoFieldNames) {
  CollectingSink sink;
  read_trace_file(test_data("features/otlp_instrumentation_library_spans.json"), sink);
  ASSERT_EQ(sink.spans.size(), 1u);
  EXPECT_EQ(sink.spans[0].service, "legacy");
  EXPECT_EQ(sink.spans[0].parent_span_id, 0u);
  EXPECT_EQ(sink.spans[0].kind, SpanKind::internal);
  EXPECT_EQ(sink.spans[0].duration_ns(), 2);
}

TEST(JaegerFeatureTest, ProcessesAfterSpansInlineProcessAndReferences) {
  CollectingSink sink;
  const ReadResult result =
      read_trace_file(test_data("features/jaeger_ui_processes_after_spans.json"), sink);
  EXPECT_EQ(result.format, TraceFormat::jaeger_ui_json);
  ASSERT_EQ(sink.spans.size(), 3u);  // the nested copy in references[].span is not a span
  const Span& root = sink.spans[0];
  EXPECT_EQ(root.service, "frontend");
  EXPECT_EQ(root.host, "box-1");
  EXPECT_EQ(root.instance, "10.0.0.1");
  EXPECT_EQ(root.kind, SpanKind::server);
  EXPECT_EQ(root.start_ns, 1000000);
  EXPECT_EQ(root.end_ns, 1500000);
  EXPECT_EQ(*root.attribute("http.method"), "GET");
  const Span& query = sink.spans[1];
  EXPECT_EQ(query.service, "mysql");
  EXPECT_EQ(query.host, "10.0.0.2");
  EXPECT_EQ(query.parent_span_id, root.span_id);
  EXPECT_TRUE(query.error);
  EXPECT_EQ(*query.attribute("db.system"), "mysql");
  const Span& async = sink.spans[2];
  EXPECT_EQ(async.service, "notifier");           // inline process
  EXPECT_EQ(async.parent_span_id, root.span_id);  // FOLLOWS_FROM when there is no CHILD_OF
  ASSERT_EQ(async.links.size(), 2u);
  EXPECT_EQ(async.links[0].type, LinkType::follows_from);
  EXPECT_EQ(async.links[1].trace_id.low, 0xffu);
  EXPECT_EQ(result.quality.clock_skew, 0u);  // the producer outlives its parent, legitimately
}

TEST(ZipkinFeatureTest, SharedServerHalfUntimedSpanAndRemoteEndpoint) {
  CollectingSink sink;
  const ReadResult result =
      read_trace_file(test_data("features/zipkin_shared_and_untimed.json"), sink);
  ASSERT_EQ(sink.spans.size(), 5u);
  const Span& server = sink.spans[0];
  EXPECT_NE(server.span_id, 0xa2fb4a1d1a96d312ULL);
  EXPECT_EQ(server.parent_span_id, 0xa2fb4a1d1a96d312ULL);
  EXPECT_EQ(server.kind, SpanKind::server);
  EXPECT_EQ(server.instance, "10.0.0.2:8080");
  EXPECT_EQ(server.host, "10.0.0.2");
  // The query ran in the server half, so it is moved under it.
  const Span& query = sink.spans[2];
  EXPECT_EQ(query.parent_span_id, server.span_id);
  EXPECT_EQ(*query.attribute("peer.service"), "postgres");
  EXPECT_EQ(*query.attribute("peer.address"), "10.0.0.9:5432");
  const Span& client = sink.spans[3];
  EXPECT_EQ(client.span_id, 0xa2fb4a1d1a96d312ULL);
  EXPECT_TRUE(client.error);
  EXPECT_EQ(client.status_message, "503 Service Unavailable");
  const Span& untimed = sink.spans[4];
  EXPECT_FALSE(untimed.has_start);
  EXPECT_FALSE(untimed.has_duration);
  EXPECT_EQ(result.quality.missing_timestamps, 1u);
  EXPECT_EQ(result.quality.missing_durations, 1u);
  EXPECT_EQ(result.quality.zipkin_shared_spans, 1u);
  EXPECT_EQ(result.quality.missing_parents, 0u);
  EXPECT_EQ(result.quality.clock_skew, 0u);
  EXPECT_EQ(result.quality.traces, 1u);
}

TEST(ZipkinFeatureTest, DerivedIdsAreStableAcrossRuns) {
  CollectingSink first;
  CollectingSink second;
  read_trace_file(test_data("features/zipkin_shared_and_untimed.json"), first);
  read_trace_file(test_data("features/zipkin_shared_and_untimed.json"), second);
  ASSERT_EQ(first.spans.size(), second.spans.size());
  for (std::size_t i = 0; i < first.spans.size(); ++i) {
    EXPECT_EQ(first.spans[i].span_id, second.spans[i].span_id);
  }
}

TEST(DetectionTest, ForcedFormatOverridesDetection) {
  CollectingSink sink;
  ReaderOptions options;
  options.format = TraceFormat::jaeger_ui_json;
  EXPECT_THROW(read_trace_file(test_data("features/zipkin_shared_and_untimed.json"), sink, options),
               InputError);
}

TEST(DetectionTest, ZstdAndPlainReadTheSame) {
  const std::string plain = read_bytes(test_data("features/otlp_collector_file_exporter.jsonl"));
  CollectingSink from_plain;
  read_trace_bytes(plain, "plain", from_plain);
  CollectingSink from_zstd;
  const ReadResult result = read_trace_bytes(
      read_bytes(test_data("features/otlp_collector_file_exporter.jsonl.zst")), "zstd", from_zstd);
  EXPECT_TRUE(result.zstd_compressed);
  EXPECT_EQ(result.bytes, plain.size());
  ASSERT_EQ(from_zstd.spans.size(), from_plain.spans.size());
  EXPECT_EQ(from_zstd.spans[2].operation, from_plain.spans[2].operation);
}

TEST(DetectionTest, ByteOrderMarkIsSkipped) {
  const std::string with_bom =
      "\xEF\xBB\xBF" + read_bytes(test_data("features/otlp_any_values.json"));
  CollectingSink sink;
  read_trace_bytes(with_bom, "bom.json", sink);
  EXPECT_EQ(sink.spans.size(), 1u);
}

TEST(DetectionTest, EmptyZipkinArrayIsNoSpans) {
  CollectingSink sink;
  const ReadResult result = read_trace_bytes("[ ]\n", "empty-array.json", sink);
  EXPECT_EQ(result.format, TraceFormat::zipkin_v2_json);
  EXPECT_TRUE(sink.spans.empty());
}

}  // namespace
}  // namespace doppel::ingest
