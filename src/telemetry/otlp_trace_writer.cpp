#include "doppel/telemetry/otlp_trace_writer.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "telemetry/json_string.hpp"

namespace doppel::telemetry {
namespace {

using detail::append_json_string;

using TraceKey = std::pair<std::uint64_t, std::uint64_t>;

// SplitMix64's finalizer: a bijection that spreads every input bit over the output, so the
// sampling verdict does not depend on how the twin happens to number traces.
std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

struct OwnedSpan {
  twin::TraceId trace_id;
  std::uint64_t span_id = 0;
  std::uint64_t parent_span_id = 0;
  twin::SpanKind kind = twin::SpanKind::server;
  std::string service;
  std::string operation;
  std::string peer;
  int instance = 0;
  std::string host;
  double start_s = 0.0;
  double end_s = 0.0;
  double queue_s = 0.0;
  twin::Outcome outcome = twin::Outcome::ok;
  int attempt = 0;

  explicit OwnedSpan(const twin::SpanRecord& span)
      : trace_id(span.trace_id),
        span_id(span.span_id),
        parent_span_id(span.parent_span_id),
        kind(span.kind),
        service(span.service),
        operation(span.operation),
        peer(span.peer),
        instance(span.instance),
        host(span.host),
        start_s(span.start_s),
        end_s(span.end_s),
        queue_s(span.queue_s),
        outcome(span.outcome),
        attempt(span.attempt) {}
};

struct OpenTrace {
  std::uint64_t age = 0;  // order of the trace's first span, for eviction
  std::vector<OwnedSpan> spans;
};

// JSON text is appended by hand (detail::append_json_string): building an nlohmann DOM per
// span (and freeing it) was most of the writer's CPU time when profiled.

class AttributeList {
 public:
  explicit AttributeList(std::string& out) : out_(out) { out_ += '['; }
  ~AttributeList() { out_ += ']'; }
  AttributeList(const AttributeList&) = delete;
  AttributeList& operator=(const AttributeList&) = delete;

  void add_string(std::string_view key, std::string_view value) {
    open(key, "stringValue");
    append_json_string(out_, value);
    out_ += "}}";
  }
  // OTLP/JSON writes 64-bit integers as decimal strings.
  void add_int(std::string_view key, std::int64_t value) {
    open(key, "intValue");
    fmt::format_to(std::back_inserter(out_), "\"{}\"}}}}", value);
  }
  void add_double(std::string_view key, double value) {
    open(key, "doubleValue");
    fmt::format_to(std::back_inserter(out_), "{}}}}}", std::isfinite(value) ? value : 0.0);
  }

 private:
  void open(std::string_view key, std::string_view type) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += "{\"key\":";
    append_json_string(out_, key);
    out_ += ",\"value\":{\"";
    out_ += type;
    out_ += "\":";
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace

TraceSampler::TraceSampler(double sample_ratio) {
  if (sample_ratio >= 1.0) {
    all_ = true;
  } else if (sample_ratio > 0.0) {
    // 2^64 * ratio is exact in long double (a 53-bit mantissa times a power of two) and below
    // 2^64; an integer is below it exactly when it is below its ceiling, which fits 64 bits.
    const long double threshold = std::ldexp(static_cast<long double>(sample_ratio), 64);
    below_ = static_cast<std::uint64_t>(std::ceil(threshold));
  }
}

bool TraceSampler::sampled(const twin::TraceId& trace_id) const {
  return all_ || mix64(trace_id.high ^ mix64(trace_id.low)) < below_;
}

bool trace_sampled(const twin::TraceId& trace_id, double sample_ratio) {
  return TraceSampler(sample_ratio).sampled(trace_id);
}

struct OtlpTraceWriter::Impl {
  Impl(std::ostream& out_stream, OtlpOptions opts)
      : out(out_stream), options(opts), sampler(opts.sample_ratio) {
    if (!(options.sample_ratio >= 0.0 && options.sample_ratio <= 1.0)) {
      throw std::invalid_argument(
          fmt::format("trace sample ratio must be in [0, 1], got {}", options.sample_ratio));
    }
    if (options.max_open_traces == 0) options.max_open_traces = 1;
  }

  void append_unix_nanos(double simulated_s) {
    const auto nanos = static_cast<std::uint64_t>(std::llround(std::max(0.0, simulated_s) * 1e9));
    fmt::format_to(std::back_inserter(line), "\"{}\"",
                   static_cast<std::uint64_t>(options.epoch_unix_s) * 1000000000ULL + nanos);
  }

  void append_span(const OwnedSpan& span, const twin::EntryRecord* entry) {
    fmt::format_to(std::back_inserter(line),
                   "{{\"traceId\":\"{:016x}{:016x}\",\"spanId\":\"{:016x}\"", span.trace_id.high,
                   span.trace_id.low, span.span_id);
    if (span.parent_span_id != 0) {
      fmt::format_to(std::back_inserter(line), ",\"parentSpanId\":\"{:016x}\"",
                     span.parent_span_id);
    }
    line += ",\"name\":";
    append_json_string(line, span.operation);
    line += span.kind == twin::SpanKind::server ? ",\"kind\":2" : ",\"kind\":3";
    line += ",\"startTimeUnixNano\":";
    append_unix_nanos(span.start_s);
    line += ",\"endTimeUnixNano\":";
    append_unix_nanos(span.end_s);
    line += ",\"attributes\":";
    {
      AttributeList attributes(line);
      if (span.kind == twin::SpanKind::client) attributes.add_string("peer.service", span.peer);
      attributes.add_int("doppel.instance", span.instance);
      attributes.add_string("doppel.outcome", twin::to_string(span.outcome));
      if (span.kind == twin::SpanKind::client) {
        attributes.add_int("doppel.attempt", span.attempt);
      } else {
        attributes.add_double("doppel.queue_ms", span.queue_s * 1000.0);
      }
      if (entry != nullptr && span.parent_span_id == 0) {
        attributes.add_string("http.request.method", entry->method);
        attributes.add_string("url.path", entry->path);
        if (!entry->route.empty()) attributes.add_string("http.route", entry->route);
        attributes.add_int("http.response.status_code", entry->status);
        attributes.add_string("doppel.client", entry->client);
      }
    }
    if (span.outcome != twin::Outcome::ok) {
      line += ",\"status\":{\"code\":2,\"message\":";
      append_json_string(line, twin::to_string(span.outcome));
      line += '}';
    }
    line += '}';
  }

  // One ExportTraceServiceRequest: a resourceSpans per service instance (what one process's
  // SDK would export), in order of first appearance.
  void write_line(const std::vector<OwnedSpan>& spans, const twin::EntryRecord* entry) {
    if (spans.empty()) return;
    std::vector<std::vector<const OwnedSpan*>> by_process;
    for (const auto& span : spans) {
      auto group = std::find_if(by_process.begin(), by_process.end(), [&](const auto& g) {
        return g.front()->service == span.service && g.front()->instance == span.instance &&
               g.front()->host == span.host;
      });
      if (group == by_process.end()) {
        by_process.emplace_back();
        group = std::prev(by_process.end());
      }
      group->push_back(&span);
    }
    line.clear();
    line += "{\"resourceSpans\":[";
    for (std::size_t g = 0; g < by_process.size(); ++g) {
      const OwnedSpan& first = *by_process[g].front();
      if (g > 0) line += ',';
      line += "{\"resource\":{\"attributes\":";
      {
        AttributeList attributes(line);
        attributes.add_string("service.name", first.service);
        attributes.add_string("service.instance.id",
                              fmt::format("{}-{}", first.service, first.instance));
        if (!first.host.empty()) attributes.add_string("host.name", first.host);
      }
      line += "},\"scopeSpans\":[{\"scope\":{\"name\":\"doppel\"},\"spans\":[";
      for (std::size_t i = 0; i < by_process[g].size(); ++i) {
        if (i > 0) line += ',';
        append_span(*by_process[g][i], entry);
      }
      line += "]}]}";
    }
    line += "]}\n";
    out << line;
    ++lines;
    spans_written += spans.size();
  }

  void close_trace(std::map<TraceKey, OpenTrace>::iterator trace, const twin::EntryRecord* entry) {
    write_line(trace->second.spans, entry);
    by_age.erase(trace->second.age);
    open.erase(trace);
  }

  void remember_completed(const TraceKey& key) {
    if (!recently_completed.insert(key).second) return;
    completed_order.push_back(key);
    if (completed_order.size() > options.max_open_traces) {
      recently_completed.erase(completed_order.front());
      completed_order.pop_front();
    }
  }

  std::ostream& out;
  OtlpOptions options;
  TraceSampler sampler;
  std::map<TraceKey, OpenTrace> open;
  std::map<std::uint64_t, TraceKey> by_age;
  std::uint64_t next_age = 0;
  // Traces whose entry came, so that a span ending after its trace (a callee still working
  // when its caller gave up) is written at once instead of waiting for an entry that came.
  std::set<TraceKey> recently_completed;
  std::deque<TraceKey> completed_order;
  std::string line;  // reused: one allocation for the run, not one per trace
  std::uint64_t lines = 0;
  std::uint64_t spans_written = 0;
  bool finished = false;
};

OtlpTraceWriter::OtlpTraceWriter(std::ostream& out, OtlpOptions options)
    : impl_(std::make_unique<Impl>(out, options)) {}

OtlpTraceWriter::~OtlpTraceWriter() = default;

void OtlpTraceWriter::on_span(const twin::SpanRecord& span) {
  if (impl_->finished || !impl_->sampler.sampled(span.trace_id)) return;
  const TraceKey key{span.trace_id.high, span.trace_id.low};
  if (impl_->recently_completed.contains(key)) {
    impl_->write_line({OwnedSpan(span)}, nullptr);
    return;
  }
  auto [trace, inserted] = impl_->open.try_emplace(key);
  if (inserted) {
    trace->second.age = impl_->next_age++;
    impl_->by_age.emplace(trace->second.age, key);
  }
  trace->second.spans.emplace_back(span);
  if (impl_->open.size() > impl_->options.max_open_traces) {
    impl_->close_trace(impl_->open.find(impl_->by_age.begin()->second), nullptr);
  }
}

void OtlpTraceWriter::on_entry(const twin::EntryRecord& entry) {
  if (impl_->finished || !impl_->sampler.sampled(entry.trace_id)) return;
  const TraceKey key{entry.trace_id.high, entry.trace_id.low};
  if (auto trace = impl_->open.find(key); trace != impl_->open.end()) {
    impl_->close_trace(trace, &entry);
  }
  impl_->remember_completed(key);
}

void OtlpTraceWriter::on_run_end(double /*end_time_s*/) {
  finish();
}

void OtlpTraceWriter::finish() {
  if (impl_->finished) return;
  while (!impl_->by_age.empty()) {
    impl_->close_trace(impl_->open.find(impl_->by_age.begin()->second), nullptr);
  }
  impl_->finished = true;
  impl_->out.flush();
}

std::uint64_t OtlpTraceWriter::lines_written() const {
  return impl_->lines;
}
std::uint64_t OtlpTraceWriter::spans_written() const {
  return impl_->spans_written;
}
std::size_t OtlpTraceWriter::open_traces() const {
  return impl_->open.size();
}

}  // namespace doppel::telemetry
