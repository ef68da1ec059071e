// Jaeger UI JSON: {"data": [{"traceID", "spans": [...], "processes": {...}}]}, as the UI's
// "Download JSON" and the query service's /api/traces write it. Times are microseconds.
// UI-augmented exports add keys (depth, childSpanIds, ...) and nest copies of parent spans in
// references[].span: those are skipped, never descended into.
#include <map>
#include <optional>

#include "read_context.hpp"

namespace doppel::ingest::detail {

namespace {

using simdjson::ondemand::object;
using simdjson::ondemand::value;

struct Process {
  std::string service;
  std::string host;
  std::string instance;
};

std::optional<value> optional_field(object& parent, std::string_view key) {
  value found;
  const auto error = find_field_any_order(parent, key).get(found);
  if (error == simdjson::NO_SUCH_FIELD) return std::nullopt;
  if (error) throw simdjson::simdjson_error(error);
  return found;
}

// Calls visit(key, value) for each {"key", "type", "value"} tag.
template <typename Visit>
void for_each_tag(value tags, Visit&& visit) {
  for (value tag : tags.get_array()) {
    object tag_object = tag.get_object();
    std::string_view key;
    if (failed(find_field_any_order(tag_object, "key").get_string().get(key))) continue;
    if (auto tag_value = optional_field(tag_object, "value")) visit(key, *tag_value);
  }
}

Process read_process(value process_value) {
  Process process;
  std::string ip;
  for (auto field : process_value.get_object()) {
    const std::string_view key = field.unescaped_key();
    if (key == "serviceName") {
      process.service = value_to_text(field.value());
    } else if (key == "tags") {
      for_each_tag(field.value(), [&](std::string_view tag, value tag_value) {
        if (tag == "hostname" || tag == "host.name") {
          process.host = value_to_text(tag_value);
        } else if (tag == "ip") {
          ip = value_to_text(tag_value);
        } else if (tag == "service.instance.id") {
          process.instance = value_to_text(tag_value);
        }
      });
    }
  }
  if (process.host.empty()) process.host = ip;
  if (process.instance.empty()) process.instance = ip.empty() ? process.host : ip;
  if (process.service.empty()) process.service = "unknown_service";
  return process;
}

SpanKind kind_from_tag(std::string_view text) {
  if (text == "server") return SpanKind::server;
  if (text == "client") return SpanKind::client;
  if (text == "producer") return SpanKind::producer;
  if (text == "consumer") return SpanKind::consumer;
  if (text == "internal") return SpanKind::internal;
  return SpanKind::unspecified;
}

class JaegerSpanReader {
 public:
  JaegerSpanReader(ReadContext& context,
                   const std::map<std::string, Process, std::less<>>& processes)
      : context_(context), processes_(processes) {}

  void read(value span_value) {
    Span span;
    span.source = context_.location_of(span_value.current_location().value());
    problem_.clear();
    bool has_trace_id = false;
    bool has_span_id = false;
    std::optional<std::int64_t> start_us;
    std::optional<std::int64_t> duration_us;
    std::string process_id;
    std::optional<Process> inline_process;
    std::optional<std::uint64_t> legacy_parent;

    for (auto field : span_value.get_object()) {
      const std::string_view key = field.unescaped_key();
      value field_value = field.value();
      if (key == "traceID") {
        has_trace_id = read_trace_id(field_value, span.trace_id);
      } else if (key == "spanID") {
        has_span_id = read_span_id(field_value, span.span_id, "spanID");
      } else if (key == "parentSpanID") {
        std::uint64_t parent = 0;
        std::string_view hex;
        if (!failed(field_value.get_string().get(hex)) && !hex.empty() && parse_span_id_hex(hex)) {
          parent = *parse_span_id_hex(hex);
          legacy_parent = parent;
        }
      } else if (key == "operationName") {
        span.operation = value_to_text(field_value);
      } else if (key == "references") {
        read_references(field_value, span);
      } else if (key == "startTime") {
        start_us = read_micros(field_value, "startTime");
      } else if (key == "duration") {
        duration_us = read_micros(field_value, "duration");
      } else if (key == "tags") {
        for_each_tag(field_value, [&](std::string_view tag, value tag_value) {
          read_tag(tag, tag_value, span);
        });
      } else if (key == "processID") {
        process_id = value_to_text(field_value);
      } else if (key == "process") {
        if (field_value.type() == simdjson::ondemand::json_type::object) {
          inline_process = read_process(field_value);
        }
      }
    }

    if (problem_.empty() && !has_trace_id) problem_ = "no traceID";
    if (problem_.empty() && !has_span_id) problem_ = "no spanID";
    const Process* process = inline_process ? &*inline_process : nullptr;
    if (!process) {
      const auto it = processes_.find(process_id);
      if (it != processes_.end()) process = &it->second;
    }
    if (problem_.empty() && !process) {
      problem_ = "processID \"" + process_id + "\" is not in the trace's processes";
    }
    if (!problem_.empty()) {
      context_.malformed(span.source, problem_);
      return;
    }
    span.service = process->service;
    span.host = process->host;
    span.instance = process->instance;
    if (span.parent_span_id == 0 && legacy_parent) span.parent_span_id = *legacy_parent;

    span.has_start = start_us.has_value();
    span.has_duration = span.has_start && duration_us.has_value() && *duration_us >= 0;
    const auto start_ns = micros_to_nanos(start_us.value_or(0));
    const auto duration_ns = micros_to_nanos(span.has_duration ? *duration_us : 0);
    if (!start_ns || !duration_ns) {
      context_.malformed(span.source, "startTime or duration out of range");
      return;
    }
    span.start_ns = *start_ns;
    span.end_ns = *start_ns + *duration_ns;
    context_.emit(std::move(span));
  }

 private:
  bool read_trace_id(value id_value, TraceId& id) {
    std::string_view hex;
    std::optional<TraceId> parsed;
    if (!failed(id_value.get_string().get(hex))) parsed = parse_trace_id_hex(hex);
    if (!parsed || parsed->empty()) {
      note("traceID is not 1 to 32 hex digits");
      return false;
    }
    id = *parsed;
    return true;
  }

  bool read_span_id(value id_value, std::uint64_t& id, std::string_view what) {
    std::string_view hex;
    std::optional<std::uint64_t> parsed;
    if (!failed(id_value.get_string().get(hex))) parsed = parse_span_id_hex(hex);
    if (!parsed || *parsed == 0) {
      note(std::string(what) + " is not 1 to 16 hex digits");
      return false;
    }
    id = *parsed;
    return true;
  }

  std::optional<std::int64_t> read_micros(value micros_value, std::string_view what) {
    auto micros = flexible_int64(micros_value);
    if (!micros) note(std::string(what) + " is not an integer number of microseconds");
    return micros;
  }

  // The first CHILD_OF reference in the same trace is the parent (FOLLOWS_FROM when there is
  // no CHILD_OF, as Jaeger's UI does); every other reference becomes a link.
  void read_references(value references, Span& span) {
    std::optional<SpanLink> follows_from_parent;
    for (value reference : references.get_array()) {
      SpanLink link;
      link.type = LinkType::child_of;
      bool ok = true;
      for (auto field : reference.get_object()) {
        const std::string_view key = field.unescaped_key();
        if (key == "refType") {
          std::string_view type;
          if (!failed(field.value().get_string().get(type)) && type == "FOLLOWS_FROM") {
            link.type = LinkType::follows_from;
          }
        } else if (key == "traceID") {
          ok = read_trace_id(field.value(), link.trace_id) && ok;
        } else if (key == "spanID") {
          ok = read_span_id(field.value(), link.span_id, "references[].spanID") && ok;
        }
        // "span" (a UI copy of the referenced span) is skipped unread.
      }
      if (!ok) continue;
      const bool same_trace = link.trace_id == span.trace_id || link.trace_id.empty();
      if (same_trace && link.type == LinkType::child_of && span.parent_span_id == 0) {
        span.parent_span_id = link.span_id;
        continue;
      }
      if (same_trace && link.type == LinkType::follows_from && !follows_from_parent) {
        follows_from_parent = link;
      }
      span.links.push_back(link);
    }
    if (span.parent_span_id == 0 && follows_from_parent) {
      span.parent_span_id = follows_from_parent->span_id;
    }
  }

  void read_tag(std::string_view tag, value tag_value, Span& span) {
    if (tag == "span.kind") {
      span.kind = kind_from_tag(value_to_text(tag_value));
    } else if (tag == "error") {
      const std::string text = value_to_text(tag_value);
      span.error = text == "true";
    } else if (tag == "otel.status_code") {
      if (value_to_text(tag_value) == "ERROR") span.error = true;
    } else if (tag == "error.message" || tag == "otel.status_description") {
      span.status_message = value_to_text(tag_value);
    } else if (context_.keeps_attribute(tag)) {
      span.set_attribute(tag, value_to_text(tag_value));
    }
  }

  void note(std::string message) {
    if (problem_.empty()) problem_ = std::move(message);
  }

  ReadContext& context_;
  const std::map<std::string, Process, std::less<>>& processes_;
  std::string problem_;
};

void read_trace(value trace_value, ReadContext& context) {
  object trace = trace_value.get_object();
  // Processes may come after the spans that refer to them: read them first.
  std::map<std::string, Process, std::less<>> processes;
  if (auto processes_value = optional_field(trace, "processes")) {
    if (processes_value->type() == simdjson::ondemand::json_type::object) {
      for (auto field : processes_value->get_object()) {
        std::string id(field.unescaped_key().value());
        processes.insert_or_assign(std::move(id), read_process(field.value()));
      }
    }
  }
  auto spans = optional_field(trace, "spans");
  if (!spans) return;
  JaegerSpanReader span_reader(context, processes);
  for (value span : spans->get_array()) span_reader.read(span);
}

}  // namespace

void read_jaeger_ui_document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                             ReadContext& context) {
  context.parse_document(parser, json, [&](simdjson::ondemand::document& document) {
    object root;
    if (failed(document.get_object().get(root))) {
      context.fail(json.data(), "expected a Jaeger UI JSON object ({\"data\": [...]})");
    }
    for (auto field : root) {
      if (field.unescaped_key().value() != "data") continue;
      value data = field.value();
      if (data.type() == simdjson::ondemand::json_type::null) continue;
      for (value trace : data.get_array()) read_trace(trace, context);
    }
  });
}

}  // namespace doppel::ingest::detail
