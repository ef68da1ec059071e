// Zipkin v2 JSON: an array of spans in any order; times in microseconds, possibly absent.
//
// RPC client and server may report one span id between them, the server half marked
// "shared": true. Doppel gives each shared server half its own id (derived from the shared
// id, its local endpoint and its timestamp, see derive_server_span_id) and makes the client
// half (the shared id) its parent. Spans that name the shared id as parent and run in the
// server's service are moved under the matching server half, as Zipkin's UI does.
// That needs the shared halves of a whole document before its spans are emitted: a first
// pass collects them, but only when the text contains "shared" at all.
#include <algorithm>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "read_context.hpp"

namespace doppel::ingest::detail {

namespace {

using simdjson::ondemand::object;
using simdjson::ondemand::value;

struct Endpoint {
  std::string service;
  std::string address;  // ipv4 (or ipv6), ":port" when there is a port
};

Endpoint read_endpoint(value endpoint_value) {
  Endpoint endpoint;
  std::string ip;
  std::string port;
  for (auto field : endpoint_value.get_object()) {
    const std::string_view key = field.unescaped_key();
    if (key == "serviceName") {
      endpoint.service = value_to_text(field.value());
    } else if (key == "ipv4" || (key == "ipv6" && ip.empty())) {
      ip = value_to_text(field.value());
    } else if (key == "port") {
      port = value_to_text(field.value());
    }
  }
  endpoint.address = port.empty() || ip.empty() ? ip : ip + ":" + port;
  return endpoint;
}

std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 0xcbf29ce484222325ULL) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A stable id for one shared server half: the same input gives the same id, run after run.
std::uint64_t derive_server_span_id(std::uint64_t shared_id, const Endpoint& local,
                                    std::int64_t timestamp_us) {
  std::uint64_t hash = fnv1a(local.service);
  hash = fnv1a("\x1f", hash);
  hash = fnv1a(local.address, hash);
  hash ^= static_cast<std::uint64_t>(timestamp_us) * 0x9e3779b97f4a7c15ULL;
  std::uint64_t derived = splitmix64(shared_id ^ hash);
  if (derived == 0 || derived == shared_id) derived = splitmix64(derived + 1);
  return derived;
}

struct ServerHalf {
  std::uint64_t derived_id = 0;
  Endpoint local;
  std::int64_t timestamp_us = 0;
};
using SharedKey = std::pair<TraceId, std::uint64_t>;
using SharedHalves = std::map<SharedKey, std::vector<ServerHalf>>;

SpanKind kind_from_name(std::string_view name) {
  if (name == "CLIENT") return SpanKind::client;
  if (name == "SERVER") return SpanKind::server;
  if (name == "PRODUCER") return SpanKind::producer;
  if (name == "CONSUMER") return SpanKind::consumer;
  return SpanKind::unspecified;
}

// The fields of one Zipkin span, before ids are rewritten.
struct RawSpan {
  Span span;
  bool has_trace_id = false;
  bool has_id = false;
  bool shared = false;
  std::optional<std::int64_t> timestamp_us;
  std::optional<std::int64_t> duration_us;
  Endpoint local;
  std::string problem;

  void note(std::string message) {
    if (problem.empty()) problem = std::move(message);
  }
};

std::optional<std::uint64_t> span_id_from(value id_value) {
  std::string_view hex;
  if (failed(id_value.get_string().get(hex))) return std::nullopt;
  auto id = parse_span_id_hex(hex);
  if (id && *id == 0) return std::nullopt;
  return id;
}

// Reads a span's fields; the first pass (ids_only) skips what it does not need.
RawSpan read_raw_span(value span_value, ReadContext& context, bool ids_only) {
  RawSpan raw;
  raw.span.source = context.location_of(span_value.current_location().value());
  Span& span = raw.span;
  std::optional<Endpoint> remote;
  for (auto field : span_value.get_object()) {
    const std::string_view key = field.unescaped_key();
    value field_value = field.value();
    if (key == "traceId") {
      std::string_view hex;
      std::optional<TraceId> id;
      if (!failed(field_value.get_string().get(hex))) id = parse_trace_id_hex(hex);
      if (id && !id->empty()) {
        span.trace_id = *id;
        raw.has_trace_id = true;
      } else {
        raw.note("traceId is not 1 to 32 hex digits");
      }
    } else if (key == "id") {
      if (auto id = span_id_from(field_value)) {
        span.span_id = *id;
        raw.has_id = true;
      } else {
        raw.note("id is not 1 to 16 hex digits");
      }
    } else if (key == "parentId") {
      if (field_value.type() == simdjson::ondemand::json_type::null) continue;
      if (auto id = span_id_from(field_value)) {
        span.parent_span_id = *id;
      } else {
        raw.note("parentId is not 1 to 16 hex digits");
      }
    } else if (key == "shared") {
      bool shared = false;
      if (!failed(field_value.get_bool().get(shared))) raw.shared = shared;
    } else if (key == "timestamp") {
      raw.timestamp_us = flexible_int64(field_value);
      if (!raw.timestamp_us) raw.note("timestamp is not an integer number of microseconds");
    } else if (key == "localEndpoint") {
      if (field_value.type() == simdjson::ondemand::json_type::object) {
        raw.local = read_endpoint(field_value);
      }
    } else if (ids_only) {
      continue;
    } else if (key == "duration") {
      raw.duration_us = flexible_int64(field_value);
      if (!raw.duration_us) raw.note("duration is not an integer number of microseconds");
    } else if (key == "name") {
      span.operation = value_to_text(field_value);
    } else if (key == "kind") {
      span.kind = kind_from_name(value_to_text(field_value));
    } else if (key == "remoteEndpoint") {
      if (field_value.type() == simdjson::ondemand::json_type::object) {
        remote = read_endpoint(field_value);
      }
    } else if (key == "tags") {
      if (field_value.type() != simdjson::ondemand::json_type::object) continue;
      for (auto tag : field_value.get_object()) {
        const std::string_view tag_key = tag.unescaped_key();
        if (tag_key == "error") {
          // Zipkin marks failure by the tag's presence; its value is the message.
          span.error = true;
          span.status_message = value_to_text(tag.value());
        } else if (context.keeps_attribute(tag_key)) {
          span.set_attribute(tag_key, value_to_text(tag.value()));
        }
      }
    }
  }
  if (raw.problem.empty() && !raw.has_trace_id) raw.problem = "no traceId";
  if (raw.problem.empty() && !raw.has_id) raw.problem = "no id";
  span.service = raw.local.service.empty() ? "unknown_service" : raw.local.service;
  span.host = raw.local.address.substr(0, raw.local.address.rfind(':'));
  span.instance = raw.local.address;
  if (remote) {
    if (!remote->service.empty() && !span.attribute("peer.service")) {
      span.set_attribute("peer.service", remote->service);
    }
    if (!remote->address.empty() && !span.attribute("peer.address")) {
      span.set_attribute("peer.address", remote->address);
    }
  }
  return raw;
}

simdjson::ondemand::array span_array(simdjson::ondemand::document& document,
                                     simdjson::padded_string_view json, ReadContext& context) {
  simdjson::ondemand::array spans;
  if (failed(document.get_array().get(spans))) {
    context.fail(json.data(), "expected a Zipkin v2 JSON array of spans");
  }
  return spans;
}

SharedHalves collect_shared_halves(simdjson::ondemand::parser& parser,
                                   simdjson::padded_string_view json, ReadContext& context) {
  SharedHalves halves;
  context.parse_document(parser, json, [&](simdjson::ondemand::document& document) {
    for (value span_value : span_array(document, json, context)) {
      RawSpan raw = read_raw_span(span_value, context, true);
      if (!raw.shared || !raw.problem.empty()) continue;
      const std::int64_t timestamp = raw.timestamp_us.value_or(0);
      halves[{raw.span.trace_id, raw.span.span_id}].push_back(ServerHalf{
          derive_server_span_id(raw.span.span_id, raw.local, timestamp), raw.local, timestamp});
    }
  });
  return halves;
}

// The server half a child of the shared id belongs under: one in the child's service, with
// the child's endpoint preferred, then the latest that started no later than the child (the
// earliest when none did).
std::optional<std::uint64_t> server_half_for_child(const SharedHalves& halves,
                                                   const RawSpan& child) {
  const auto it = halves.find({child.span.trace_id, child.span.parent_span_id});
  if (it == halves.end()) return std::nullopt;
  const std::int64_t child_start = child.timestamp_us.value_or(0);
  const auto preference = [&](const ServerHalf& half) {
    const bool started_before = half.timestamp_us <= child_start;
    return std::tuple{half.local.address == child.local.address, started_before,
                      started_before ? half.timestamp_us : -half.timestamp_us};
  };
  const ServerHalf* best = nullptr;
  for (const ServerHalf& half : it->second) {
    if (half.local.service != child.local.service) continue;
    if (!best || preference(half) > preference(*best)) best = &half;
  }
  if (!best) return std::nullopt;
  return best->derived_id;
}

void emit_span(RawSpan&& raw, const SharedHalves& halves, ReadContext& context) {
  if (!raw.problem.empty()) {
    context.malformed(raw.span.source, raw.problem);
    return;
  }
  Span& span = raw.span;
  if (raw.shared) {
    const std::uint64_t shared_id = span.span_id;
    span.parent_span_id = shared_id;  // the client half
    span.span_id = derive_server_span_id(shared_id, raw.local, raw.timestamp_us.value_or(0));
    span.set_attribute("zipkin.shared_id", span_id_to_hex(shared_id));
    context.quality().note_zipkin_shared_span();
  } else if (span.parent_span_id != 0 && !halves.empty()) {
    if (auto server_half = server_half_for_child(halves, raw)) span.parent_span_id = *server_half;
  }
  span.has_start = raw.timestamp_us.has_value();
  span.has_duration = span.has_start && raw.duration_us.has_value() && *raw.duration_us >= 0;
  const auto start_ns = micros_to_nanos(raw.timestamp_us.value_or(0));
  const auto duration_ns = micros_to_nanos(span.has_duration ? *raw.duration_us : 0);
  if (!start_ns || !duration_ns) {
    context.malformed(span.source, "timestamp or duration out of range");
    return;
  }
  span.start_ns = *start_ns;
  span.end_ns = *start_ns + *duration_ns;
  context.emit(std::move(span));
}

}  // namespace

void read_zipkin_document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                          ReadContext& context) {
  const bool may_share = std::string_view(json).find("\"shared\"") != std::string_view::npos;
  const SharedHalves halves =
      may_share ? collect_shared_halves(parser, json, context) : SharedHalves{};
  context.parse_document(parser, json, [&](simdjson::ondemand::document& document) {
    for (value span_value : span_array(document, json, context)) {
      emit_span(read_raw_span(span_value, context, false), halves, context);
    }
  });
}

}  // namespace doppel::ingest::detail
