// Which trace format a file holds, from its first bytes (docs/trace-formats.md, "Detection").
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "doppel/ingest/trace_reader.hpp"
#include "doppel/model/input_error.hpp"

namespace doppel::ingest {

namespace {

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool contains(std::string_view text, std::string_view token) {
  return text.find(token) != std::string_view::npos;
}

// The first key of the top-level object, if the prefix shows it.
std::string_view first_key(std::string_view text) {
  std::size_t at = 1;  // after '{'
  while (at < text.size() && is_json_space(text[at])) ++at;
  if (at >= text.size() || text[at] != '"') return {};
  const std::size_t end = text.find('"', at + 1);
  if (end == std::string_view::npos) return {};
  return text.substr(at + 1, end - at - 1);
}

bool looks_binary(std::string_view text) {
  const std::string_view sample = text.substr(0, 512);
  return std::any_of(sample.begin(), sample.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 && !is_json_space(c);
  });
}

bool has_otlp_keys(std::string_view text) {
  return contains(text, "\"resourceSpans\"") || contains(text, "\"resource_spans\"") ||
         contains(text, "\"scopeSpans\"") || contains(text, "\"instrumentationLibrarySpans\"");
}

constexpr std::string_view kSupported =
    "supported: OTLP JSON ({\"resourceSpans\": ...}, also as JSON Lines or wrapped in "
    "{\"result\": ...}), Jaeger UI JSON ({\"data\": [...]}), Zipkin v2 JSON ([{\"traceId\": ...}])";

}  // namespace

std::string_view to_string(TraceFormat format) {
  switch (format) {
    case TraceFormat::automatic:
      return "automatic";
    case TraceFormat::otlp_json:
      return "OTLP JSON";
    case TraceFormat::jaeger_ui_json:
      return "Jaeger UI JSON";
    case TraceFormat::zipkin_v2_json:
      return "Zipkin v2 JSON";
  }
  return "unknown";
}

TraceFormat detect_trace_format(std::string_view prefix, const std::string& name) {
  std::size_t start = 0;
  while (start < prefix.size() && is_json_space(prefix[start])) ++start;
  InputLocation where;
  where.byte_offset = static_cast<std::int64_t>(start);
  const auto refuse = [&](const std::string& message) -> TraceFormat {
    throw InputError(name, where, message);
  };
  if (start == prefix.size()) refuse("empty input: no trace data");
  const std::string_view text = prefix.substr(start);

  if (text.size() >= 2 && static_cast<unsigned char>(text[0]) == 0x1f &&
      static_cast<unsigned char>(text[1]) == 0x8b) {
    refuse("gzip-compressed input is not supported: decompress it, or compress with zstd (.zst)");
  }
  if (text[0] == '[') {
    std::size_t next = 1;
    while (next < text.size() && is_json_space(text[next])) ++next;
    if (next < text.size() && text[next] == ']') return TraceFormat::zipkin_v2_json;
    if (contains(text, "\"binaryAnnotations\"") ||
        (contains(text, "\"annotations\"") && contains(text, "\"endpoint\"") &&
         !contains(text, "\"localEndpoint\""))) {
      refuse(
          "this looks like Zipkin v1 JSON (annotations with endpoints); only Zipkin v2 is "
          "supported");
    }
    if (contains(text, "\"traceId\"")) return TraceFormat::zipkin_v2_json;
    refuse(
        fmt::format("a JSON array, but not of Zipkin v2 spans (no \"traceId\"); {}", kSupported));
  }
  if (text[0] != '{') {
    if (looks_binary(text)) refuse(fmt::format("binary data, not a trace file; {}", kSupported));
    refuse(fmt::format("not JSON (starts with '{}'); {}", text[0], kSupported));
  }

  const std::string_view key = first_key(text);
  const bool snake_case_jaeger = contains(text, "\"trace_id\"") && contains(text, "\"span_id\"") &&
                                 contains(text, "\"operation_name\"");
  if (key == "batch" || key == "batches" || snake_case_jaeger) {
    refuse(
        "this is a Jaeger internal model batch (jaeger.api_v2 Batch as protobuf JSON: "
        "snake_case keys, base64 ids), which Doppel does not read; export the traces as "
        "Jaeger UI JSON (the UI's \"Download JSON\" or /api/traces) or as OTLP JSON (query "
        "API v3) instead");
  }
  // Jaeger's query API v3 wraps OTLP in {"result": ...}.
  if (key == "resourceSpans" || key == "resource_spans" || key == "result" || has_otlp_keys(text)) {
    return TraceFormat::otlp_json;
  }
  if (contains(text, "\"operationName\"") && contains(text, "\"spanId\"") &&
      !contains(text, "\"spanID\"")) {
    refuse(
        "this is Jaeger api_v2 model JSON (camelCase keys, base64 ids, as gRPC-gateway "
        "writes it), which Doppel does not read; use Jaeger UI JSON or OTLP JSON");
  }
  if (key == "data" || (contains(text, "\"traceID\"") && contains(text, "\"spanID\""))) {
    return TraceFormat::jaeger_ui_json;
  }
  if (contains(text, "\"traceId\"") && contains(text, "\"localEndpoint\"")) {
    refuse("a single Zipkin span object: Zipkin v2 files are JSON arrays of spans");
  }
  return refuse(fmt::format("unrecognised JSON; {}", kSupported));
}

}  // namespace doppel::ingest
