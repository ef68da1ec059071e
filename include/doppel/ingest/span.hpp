// The format-neutral span every trace reader produces (docs/trace-formats.md).
//
// OTLP JSON, Jaeger UI JSON and Zipkin v2 all map onto this one value type, so topology
// reconstruction never needs to know where a span came from. It keeps what reconstruction
// needs (who called whom, kind, timing, outcome, the peer/database/messaging attributes)
// and where the span stood in its file, for error messages.
//
// Times are int64 nanoseconds since the Unix epoch: OTLP's own unit, and Jaeger's and
// Zipkin's microseconds convert exactly (until the year 2262).
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace doppel::ingest {

// 128-bit trace id. A 64-bit id (Zipkin's and Jaeger's 16 hex digits) has high == 0, so the
// same trace printed with 16 or with 32 digits gets the same id.
struct TraceId {
  std::uint64_t high = 0;
  std::uint64_t low = 0;

  bool empty() const { return high == 0 && low == 0; }
  std::string to_hex() const;  // always 32 lowercase hex digits
  friend auto operator<=>(const TraceId&, const TraceId&) = default;
};

// "0a1b..." (1 to 32 hex digits, either case) -> id; nullopt if not hex or too long.
std::optional<TraceId> parse_trace_id_hex(std::string_view hex);
// 1 to 16 hex digits -> id; nullopt if not hex or too long.
std::optional<std::uint64_t> parse_span_id_hex(std::string_view hex);
std::string span_id_to_hex(std::uint64_t span_id);  // 16 lowercase hex digits

// OTLP's SpanKind; Jaeger's span.kind tag and Zipkin's kind map onto the same values.
enum class SpanKind : std::uint8_t { unspecified, internal, server, client, producer, consumer };
std::string_view to_string(SpanKind kind);

// A reference to another span that is not (or not only) the parent.
enum class LinkType : std::uint8_t {
  child_of,      // Jaeger CHILD_OF beyond the first one (the first is the parent)
  follows_from,  // Jaeger FOLLOWS_FROM (also kept here when it became the parent)
  link,          // an OTLP span link
};
struct SpanLink {
  TraceId trace_id;
  std::uint64_t span_id = 0;
  LinkType type = LinkType::link;
  friend bool operator==(const SpanLink&, const SpanLink&) = default;
};

// Where the span's JSON object starts. The file name is shared by all spans of a file.
struct SourceLocation {
  std::shared_ptr<const std::string> file;
  std::uint64_t byte_offset = 0;  // of the span object, in the decompressed stream
  std::uint64_t line = 0;         // 1-based line of a JSON Lines document; 0 for single documents

  std::string to_string() const;  // "FILE: line 3" / "FILE: byte 1234"
};

struct Span {
  TraceId trace_id;
  std::uint64_t span_id = 0;
  std::uint64_t parent_span_id = 0;  // 0: a root span
  std::vector<SpanLink> links;

  std::string service;    // OTLP resource service.name, Jaeger process, Zipkin localEndpoint
  std::string operation;  // OTLP name, Jaeger operationName, Zipkin name
  SpanKind kind = SpanKind::unspecified;

  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;   // == start_ns when the duration is unknown
  bool has_start = true;     // false: the format allowed the timestamp to be absent
  bool has_duration = true;  // false: Zipkin span without "duration" (still in flight)

  bool error = false;
  std::string status_message;  // OTLP status.message, Jaeger error.message, Zipkin error tag

  // Which process ran it: the host name (or IP when that is all there is), and an instance
  // id unique per process when the format says (OTLP service.instance.id, ip:port).
  std::string host;
  std::string instance;

  // String forms of the attributes reconstruction uses (see kReconstructionAttributes), or of
  // all attributes when ReaderOptions::keep_all_attributes. Sorted by key, keys unique.
  std::vector<std::pair<std::string, std::string>> attributes;

  SourceLocation source;

  std::int64_t duration_ns() const { return end_ns - start_ns; }
  // The value of an attribute, or nullptr.
  const std::string* attribute(std::string_view key) const;
  // Sets (or replaces) an attribute, keeping the vector sorted.
  void set_attribute(std::string_view key, std::string value);
};

// The attribute keys kept by default: enough to tell a call to a service from one to a
// database or a broker, and to name the peer and the endpoint. Sorted.
inline constexpr std::string_view kReconstructionAttributes[] = {
    "component",
    "db.instance",
    "db.name",
    "db.operation",
    "db.statement",
    "db.system",
    "db.type",
    "http.method",
    "http.request.body.size",
    "http.request.method",
    "http.request_content_length",
    "http.response.body.size",
    "http.response.status_code",
    "http.response_content_length",
    "http.route",
    "http.status_code",
    "http.target",
    "http.url",
    "messaging.destination",
    "messaging.destination.name",
    "messaging.message.body.size",
    "messaging.operation",
    "messaging.system",
    "net.peer.name",
    "net.peer.port",
    "network.peer.address",
    "peer.address",
    "peer.hostname",
    "peer.service",
    "rpc.grpc.status_code",
    "rpc.method",
    "rpc.request.size",
    "rpc.response.size",
    "rpc.service",
    "rpc.system",
    "server.address",
    "server.port",
    "service.peer.name",
    "url.full",
    "url.path",
};
bool is_reconstruction_attribute(std::string_view key);

// Where readers deliver spans, one at a time, in file order. Readers never hold a file's
// spans: a sink that needs them all keeps them itself.
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void on_span(Span&& span) = 0;
};

}  // namespace doppel::ingest
