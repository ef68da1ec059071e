// OTLP JSON: TracesData / ExportTraceServiceRequest, optionally wrapped as {"result": ...}
// (Jaeger query API v3). Both the lowerCamelCase and the proto field names are accepted, as
// protobuf's JSON mapping requires; unknown fields are skipped.
#include <optional>

#include "read_context.hpp"

namespace doppel::ingest::detail {

namespace {

using simdjson::ondemand::array;
using simdjson::ondemand::object;
using simdjson::ondemand::value;

bool is_key(std::string_view key, std::string_view camel, std::string_view snake) {
  return key == camel || key == snake;
}

// The process a resource stands for.
struct Resource {
  std::string service = "unknown_service";  // the OpenTelemetry default
  std::string host;
  std::string instance;
};

// A field that may be absent: NO_SUCH_FIELD is normal, any other error is not.
std::optional<value> optional_field(object& parent, std::string_view camel,
                                    std::string_view snake) {
  value found;
  auto error = find_field_any_order(parent, camel).get(found);
  if (error == simdjson::NO_SUCH_FIELD && !snake.empty()) {
    error = find_field_any_order(parent, snake).get(found);
  }
  if (error == simdjson::NO_SUCH_FIELD) return std::nullopt;
  if (error) throw simdjson::simdjson_error(error);
  return found;
}

// Calls visit(key, value) for each KeyValue of an attribute list.
template <typename Visit>
void for_each_key_value(value list, Visit&& visit) {
  for (value entry : list.get_array()) {
    object key_value = entry.get_object();
    // The view points into the parser's string buffer, where each unescaped string keeps its
    // own place until the next document: reading the value does not overwrite it.
    std::string_view key;
    if (failed(find_field_any_order(key_value, "key").get_string().get(key))) continue;
    auto attribute_value = optional_field(key_value, "value", "");
    if (attribute_value) visit(key, *attribute_value);
  }
}

Resource read_resource(value resource_value) {
  Resource resource;
  object resource_object = resource_value.get_object();
  auto attributes = optional_field(resource_object, "attributes", "");
  if (!attributes) return resource;
  for_each_key_value(*attributes, [&resource](std::string_view key, value attribute) {
    if (key == "service.name") {
      resource.service = any_value_to_text(attribute);
    } else if (key == "host.name") {
      resource.host = any_value_to_text(attribute);
    } else if (key == "service.instance.id") {
      resource.instance = any_value_to_text(attribute);
    }
  });
  if (resource.instance.empty()) resource.instance = resource.host;
  return resource;
}

SpanKind kind_from_number(std::int64_t number) {
  if (number < 0 || number > 5) return SpanKind::unspecified;
  return static_cast<SpanKind>(number);
}

SpanKind kind_from_name(std::string_view name) {
  if (name == "SPAN_KIND_INTERNAL") return SpanKind::internal;
  if (name == "SPAN_KIND_SERVER") return SpanKind::server;
  if (name == "SPAN_KIND_CLIENT") return SpanKind::client;
  if (name == "SPAN_KIND_PRODUCER") return SpanKind::producer;
  if (name == "SPAN_KIND_CONSUMER") return SpanKind::consumer;
  return SpanKind::unspecified;
}

class OtlpSpanReader {
 public:
  OtlpSpanReader(ReadContext& context, const Resource& resource)
      : context_(context), resource_(resource) {}

  void read(value span_value) {
    Span span;
    span.source = context_.location_of(span_value.current_location().value());
    span.service = resource_.service;
    span.host = resource_.host;
    span.instance = resource_.instance;
    problem_.clear();
    bool has_trace_id = false;
    bool has_span_id = false;
    std::optional<std::int64_t> start;
    std::optional<std::int64_t> end;

    for (auto field : span_value.get_object()) {
      const std::string_view key = field.unescaped_key();
      value field_value = field.value();
      if (is_key(key, "traceId", "trace_id")) {
        has_trace_id = read_trace_id(field_value, span.trace_id, "traceId");
      } else if (is_key(key, "spanId", "span_id")) {
        has_span_id = read_span_id(field_value, span.span_id, "spanId");
      } else if (is_key(key, "parentSpanId", "parent_span_id")) {
        read_optional_span_id(field_value, span.parent_span_id);
      } else if (key == "name") {
        std::string_view name;
        if (failed(field_value.get_string().get(name))) {
          problem_ = "name is not a string";
        } else {
          span.operation = name;
        }
      } else if (key == "kind") {
        read_kind(field_value, span.kind);
      } else if (is_key(key, "startTimeUnixNano", "start_time_unix_nano")) {
        start = read_time(field_value, "startTimeUnixNano");
      } else if (is_key(key, "endTimeUnixNano", "end_time_unix_nano")) {
        end = read_time(field_value, "endTimeUnixNano");
      } else if (key == "attributes") {
        for_each_key_value(field_value,
                           [this, &span](std::string_view attribute_key, value attribute) {
                             if (context_.keeps_attribute(attribute_key)) {
                               span.set_attribute(attribute_key, any_value_to_text(attribute));
                             }
                           });
      } else if (key == "status") {
        read_status(field_value, span);
      } else if (key == "links") {
        read_links(field_value, span);
      }
    }

    if (problem_.empty() && !has_trace_id) problem_ = "no traceId";
    if (problem_.empty() && !has_span_id) problem_ = "no spanId";
    if (!problem_.empty()) {
      context_.malformed(span.source, problem_);
      return;
    }
    // Absent or zero means unset in protobuf.
    span.has_start = start.value_or(0) != 0;
    span.start_ns = start.value_or(0);
    span.has_duration = span.has_start && end.value_or(0) >= span.start_ns && end.value_or(0) != 0;
    span.end_ns = span.has_duration ? *end : span.start_ns;
    context_.emit(std::move(span));
  }

 private:
  bool read_trace_id(value id_value, TraceId& id, std::string_view what) {
    std::string_view hex;
    if (failed(id_value.get_string().get(hex)) || hex.size() != 32) {
      note(std::string(what) + " is not 32 hex digits");
      return false;
    }
    const auto parsed = parse_trace_id_hex(hex);
    if (!parsed || parsed->empty()) {
      note(std::string(what) + " is not 32 hex digits (or is all zeros)");
      return false;
    }
    id = *parsed;
    return true;
  }

  bool read_span_id(value id_value, std::uint64_t& id, std::string_view what) {
    std::string_view hex;
    if (failed(id_value.get_string().get(hex)) || hex.size() != 16) {
      note(std::string(what) + " is not 16 hex digits");
      return false;
    }
    const auto parsed = parse_span_id_hex(hex);
    if (!parsed || *parsed == 0) {
      note(std::string(what) + " is not 16 hex digits (or is all zeros)");
      return false;
    }
    id = *parsed;
    return true;
  }

  void read_optional_span_id(value id_value, std::uint64_t& id) {
    std::string_view hex;
    if (!failed(id_value.get_string().get(hex)) && hex.empty()) return;  // "" means no parent
    read_span_id(id_value, id, "parentSpanId");
  }

  void read_kind(value kind_value, SpanKind& kind) {
    if (kind_value.type() == simdjson::ondemand::json_type::string) {
      kind = kind_from_name(kind_value.get_string().value());
      return;
    }
    std::int64_t number = 0;
    if (failed(kind_value.get_int64().get(number))) {
      note("kind is neither an integer nor a SPAN_KIND_ name");
      return;
    }
    kind = kind_from_number(number);
  }

  std::optional<std::int64_t> read_time(value time_value, std::string_view what) {
    auto nanos = flexible_int64(time_value);
    if (!nanos || *nanos < 0) note(std::string(what) + " is not a non-negative int64");
    return nanos;
  }

  void read_status(value status_value, Span& span) {
    for (auto field : status_value.get_object()) {
      const std::string_view key = field.unescaped_key();
      value field_value = field.value();
      if (key == "code") {
        if (field_value.type() == simdjson::ondemand::json_type::string) {
          span.error = field_value.get_string().value() == "STATUS_CODE_ERROR";
        } else {
          std::int64_t code = 0;
          if (!failed(field_value.get_int64().get(code))) span.error = code == 2;
        }
      } else if (key == "message") {
        std::string_view message;
        if (!failed(field_value.get_string().get(message))) span.status_message = message;
      }
    }
  }

  void read_links(value links_value, Span& span) {
    for (value link_value : links_value.get_array()) {
      SpanLink link;
      link.type = LinkType::link;
      bool ok = true;
      for (auto field : link_value.get_object()) {
        const std::string_view key = field.unescaped_key();
        if (is_key(key, "traceId", "trace_id")) {
          ok = read_trace_id(field.value(), link.trace_id, "links[].traceId") && ok;
        } else if (is_key(key, "spanId", "span_id")) {
          ok = read_span_id(field.value(), link.span_id, "links[].spanId") && ok;
        }
      }
      if (ok && link.span_id != 0) span.links.push_back(link);
    }
  }

  void note(std::string message) {
    if (problem_.empty()) problem_ = std::move(message);
  }

  ReadContext& context_;
  const Resource& resource_;
  std::string problem_;
};

void read_scope_spans(value scope_spans_value, ReadContext& context, const Resource& resource) {
  OtlpSpanReader span_reader(context, resource);
  for (value scope_spans : scope_spans_value.get_array()) {
    object scope_object = scope_spans.get_object();
    auto spans = optional_field(scope_object, "spans", "");
    if (!spans) continue;
    for (value span : spans->get_array()) span_reader.read(span);
  }
}

void read_resource_spans(value resource_spans_value, ReadContext& context) {
  for (value resource_spans : resource_spans_value.get_array()) {
    object resource_spans_object = resource_spans.get_object();
    // The resource names the service, so it is read first wherever it stands.
    Resource resource;
    if (auto resource_value = optional_field(resource_spans_object, "resource", "")) {
      resource = read_resource(*resource_value);
    }
    if (auto scope = optional_field(resource_spans_object, "scopeSpans", "scope_spans")) {
      read_scope_spans(*scope, context, resource);
    } else if (auto library = optional_field(resource_spans_object, "instrumentationLibrarySpans",
                                             "instrumentation_library_spans")) {
      read_scope_spans(*library, context, resource);
    }
  }
}

void read_traces_data(object traces_data, ReadContext& context, bool allow_result_wrapper) {
  for (auto field : traces_data) {
    const std::string_view key = field.unescaped_key();
    if (is_key(key, "resourceSpans", "resource_spans")) {
      read_resource_spans(field.value(), context);
    } else if (allow_result_wrapper && key == "result") {
      read_traces_data(field.value().get_object(), context, false);
    }
  }
}

}  // namespace

void read_otlp_document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                        ReadContext& context) {
  context.parse_document(parser, json, [&](simdjson::ondemand::document& document) {
    object root;
    if (failed(document.get_object().get(root))) {
      context.fail(json.data(), "expected an OTLP JSON object ({\"resourceSpans\": [...]})");
    }
    read_traces_data(root, context, true);
  });
}

}  // namespace doppel::ingest::detail
