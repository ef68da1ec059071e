#include "doppel/telemetry/rca_dataset.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/model/input_error.hpp"
#include "doppel/telemetry/name_ids.hpp"
#include "doppel/telemetry/otlp_trace_writer.hpp"
#include "doppel/telemetry/span_id_map.hpp"

#include "telemetry/json_string.hpp"

namespace doppel::telemetry {

using detail::append_json_string;

namespace {

std::string trace_hex(const twin::TraceId& id) {
  return fmt::format("{:016x}{:016x}", id.high, id.low);
}

std::int64_t unix_us(double time_s, std::int64_t epoch_unix_s) {
  return epoch_unix_s * 1000000 + std::llround(time_s * 1e6);
}

std::string unix_seconds_text(double time_s, std::int64_t epoch_unix_s) {
  const std::int64_t us = unix_us(time_s, epoch_unix_s);
  return fmt::format("{}.{:06d}", us / 1000000, us % 1000000);
}

// CSV field: quoted when it holds a separator, a quote or a line break.
std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

// --- JSON as nlohmann::json::dump() writes it (events.jsonl must not change bytes) ------------

// A double: nlohmann's own Grisu2 formatting ("354.0", "0.0999"), null when not finite.
void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  std::array<char, 64> buffer{};
  char* end = nlohmann::detail::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), end);
}

// A vector clock as the object nlohmann wrote: process names in sorted order, zeros left
// out; a name two processes share shows the later one's non-zero value.
class ClockKeys {
 public:
  explicit ClockKeys(const std::vector<std::string>& processes) {
    std::vector<std::size_t> order(processes.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return processes[a] < processes[b]; });
    for (const std::size_t i : order) {
      if (keys_.empty() || processes[keys_.back().processes.front()] != processes[i]) {
        keys_.push_back(Key{{}, {}});
        append_json_string(keys_.back().quoted, processes[i]);
        keys_.back().quoted += ':';
      }
      keys_.back().processes.push_back(i);
    }
  }

  void append(std::string& out, const std::vector<std::uint32_t>& clock) const {
    out += '{';
    bool first = true;
    for (const auto& key : keys_) {
      std::uint32_t value = 0;
      for (const std::size_t process : key.processes) {
        if (clock[process] != 0) value = clock[process];
      }
      if (value == 0) continue;
      if (!first) out += ',';
      first = false;
      out += key.quoted;
      fmt::format_to(std::back_inserter(out), "{}", value);
    }
    out += '}';
  }

 private:
  struct Key {
    std::string quoted;                  // "name":
    std::vector<std::size_t> processes;  // ascending
  };
  std::vector<Key> keys_;
};

std::string_view attribute(const twin::TwinEvent& event, std::string_view key) {
  for (const auto& [name, value] : event.attributes) {
    if (name == key) return value;
  }
  return {};
}

std::ofstream open_file(const std::filesystem::path& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    throw InputError(path.string(), {}, fmt::format("cannot write: {}", std::strerror(errno)));
  }
  return out;
}

}  // namespace

int status_code(twin::Outcome outcome) {
  switch (outcome) {
    case twin::Outcome::ok:
      return 200;
    case twin::Outcome::error:
      return 500;
    case twin::Outcome::timeout:
      return 504;
    case twin::Outcome::not_found:
      return 404;
    case twin::Outcome::rejected:
    case twin::Outcome::circuit_open:
    case twin::Outcome::pool_timeout:
    case twin::Outcome::unavailable:
      return 503;
  }
  return 500;
}

// --- traces.csv ------------------------------------------------------------------------------

SpanCsvWriter::SpanCsvWriter(std::ostream& out, double sample_ratio, std::int64_t epoch_unix_s)
    : out_(out), sampler_(sample_ratio), epoch_unix_s_(epoch_unix_s) {
  if (!(sample_ratio >= 0.0 && sample_ratio <= 1.0)) {
    throw std::invalid_argument(
        fmt::format("trace sample ratio must be in [0, 1], got {}", sample_ratio));
  }
  out_ << "traceID,spanID,parentSpanID,serviceName,operationName,startTime,duration,statusCode\n";
}

void SpanCsvWriter::on_span(const twin::SpanRecord& span) {
  if (!sampler_.sampled(span.trace_id)) return;
  const std::int64_t start = unix_us(span.start_s, epoch_unix_s_);
  const std::int64_t end = unix_us(span.end_s, epoch_unix_s_);
  const std::string parent =
      span.parent_span_id == 0 ? std::string() : fmt::format("{:016x}", span.parent_span_id);
  out_ << fmt::format("{},{:016x},{},{},{},{},{},{}\n", trace_hex(span.trace_id), span.span_id,
                      parent, csv_field(span.service), csv_field(span.operation), start,
                      std::max<std::int64_t>(0, end - start), status_code(span.outcome));
  ++rows_;
}

// --- logs.csv --------------------------------------------------------------------------------

struct ServiceLogWriter::Impl {
  std::ostream& out;
  std::int64_t epoch_unix_s;
  int max_lines_per_second;
  // Per service (by name id): the simulated second last written in and the lines written in
  // it.
  NameIds services;
  std::vector<std::pair<std::int64_t, int>> budget;
  std::uint64_t written = 0;
  std::uint64_t suppressed = 0;

  void write(double time_s, std::string_view service, std::string_view level,
             const std::string& message) {
    const auto second = static_cast<std::int64_t>(std::floor(time_s));
    const std::size_t id = services.id(service);
    if (id == budget.size()) budget.emplace_back(second, 0);
    auto& [current, lines] = budget[id];
    if (current != second) {
      current = second;
      lines = 0;
    }
    if (lines >= max_lines_per_second) {
      ++suppressed;
      return;
    }
    ++lines;
    ++written;
    out << unix_seconds_text(time_s, epoch_unix_s) << ',' << csv_field(service) << ',' << level
        << ',' << csv_field(message) << '\n';
  }
};

ServiceLogWriter::ServiceLogWriter(std::ostream& out, std::int64_t epoch_unix_s,
                                   int max_lines_per_second)
    : impl_(std::make_unique<Impl>(Impl{out, epoch_unix_s, max_lines_per_second, {}, {}, 0, 0})) {
  if (max_lines_per_second < 1) {
    throw std::invalid_argument("log lines per service per second must be at least 1");
  }
  out << "time,service,level,message\n";
}
ServiceLogWriter::~ServiceLogWriter() = default;
std::uint64_t ServiceLogWriter::lines_written() const {
  return impl_->written;
}
std::uint64_t ServiceLogWriter::lines_suppressed() const {
  return impl_->suppressed;
}

void ServiceLogWriter::on_span(const twin::SpanRecord& span) {
  if (span.outcome == twin::Outcome::ok) return;
  const std::string trace = trace_hex(span.trace_id);
  const double ms = (span.end_s - span.start_s) * 1000.0;
  if (span.kind == twin::SpanKind::server) {
    // What the callee itself notices: it turned a request away or failed it.
    switch (span.outcome) {
      case twin::Outcome::rejected:
        impl_->write(
            span.end_s, span.service, "WARN",
            fmt::format("rejected {}: request queue full trace_id={}", span.operation, trace));
        break;
      case twin::Outcome::error:
        impl_->write(
            span.end_s, span.service, "ERROR",
            fmt::format("{} failed after {:.1f} ms trace_id={}", span.operation, ms, trace));
        break;
      default:
        break;  // the instance was gone or the caller gave up: nothing to log here
    }
    return;
  }
  std::string message;
  std::string_view level = "ERROR";
  switch (span.outcome) {
    case twin::Outcome::timeout:
      level = "WARN";
      message =
          fmt::format("call to {} {} timed out after {:.1f} ms", span.peer, span.operation, ms);
      break;
    case twin::Outcome::rejected:
      message = fmt::format("call to {} {} rejected: 503 service busy", span.peer, span.operation);
      break;
    case twin::Outcome::circuit_open:
      level = "WARN";
      message =
          fmt::format("circuit breaker to {} is open: {} not attempted", span.peer, span.operation);
      break;
    case twin::Outcome::pool_timeout:
      message = fmt::format("connection pool to {} exhausted: no connection for {} after {:.1f} ms",
                            span.peer, span.operation, ms);
      break;
    case twin::Outcome::unavailable:
      message = fmt::format("no available instance of {} for {}", span.peer, span.operation);
      break;
    default:
      message = fmt::format("call to {} {} failed: 500 internal error", span.peer, span.operation);
      break;
  }
  if (span.attempt > 0) message += fmt::format(" (retry {})", span.attempt);
  message += fmt::format(" trace_id={}", trace);
  impl_->write(span.end_s, span.service, level, message);
}

void ServiceLogWriter::on_event(const twin::TwinEvent& event) {
  // Breakers and pools live in the caller: "caller->callee" components only.
  const auto arrow = event.component.find("->");
  if (arrow == std::string::npos) return;
  const std::string_view caller = std::string_view(event.component).substr(0, arrow);
  const std::string_view callee = std::string_view(event.component).substr(arrow + 2);
  const std::string_view instance = attribute(event, "instance");
  const std::string suffix =
      instance.empty() ? std::string() : fmt::format(" instance={}", instance);
  if (event.kind == "breaker_open") {
    impl_->write(event.time_s, caller, "WARN",
                 fmt::format("circuit breaker to {} opened{}", callee, suffix));
  } else if (event.kind == "breaker_half_open") {
    impl_->write(event.time_s, caller, "INFO",
                 fmt::format("circuit breaker to {} half-open: probing{}", callee, suffix));
  } else if (event.kind == "breaker_closed") {
    impl_->write(event.time_s, caller, "INFO",
                 fmt::format("circuit breaker to {} closed{}", callee, suffix));
  } else if (event.kind == "pool_exhausted") {
    impl_->write(event.time_s, caller, "ERROR",
                 fmt::format("connection pool to {} exhausted (size {}){}", callee,
                             attribute(event, "size"), suffix));
  } else if (event.kind == "pool_recovered") {
    impl_->write(event.time_s, caller, "INFO",
                 fmt::format("connection pool to {} recovered after {} acquire timeouts", callee,
                             attribute(event, "acquire_timeouts")));
  }
}

// --- events.jsonl with vector clocks ---------------------------------------------------------

struct CausalEventLog::Impl {
  enum class Phase : std::uint8_t {
    request_sent,
    request_received,
    response_sent,
    response_received,
    call_refused,
    system,
  };
  struct Pending {
    double time_s = 0.0;
    Phase phase = Phase::system;
    std::uint64_t sequence = 0;  // arrival order: ties keep the order the twin reported
    std::size_t process = 0;
    std::size_t peer = 0;
    std::uint64_t message = 0;  // the client span id the request / response belongs to
    std::uint64_t span_id = 0;
    twin::TraceId trace;
    std::string_view operation;
    twin::Outcome outcome = twin::Outcome::ok;
    std::size_t system_event = 0;  // index into system_events
  };

  std::ostream& out;
  TraceSampler sampler;
  std::int64_t epoch_unix_s;
  std::vector<std::string> processes;
  std::map<std::string, std::size_t, std::less<>> process_index;
  std::vector<Pending> pending;
  std::vector<twin::TwinEvent> system_events;
  std::uint64_t sequence = 0;

  std::size_t environment() const { return processes.size() - 1; }
  std::size_t process_of(std::string_view component) const {
    std::string_view name = component;
    if (auto arrow = name.find("->"); arrow != std::string_view::npos) name = name.substr(0, arrow);
    if (auto slash = name.find('/'); slash != std::string_view::npos) name = name.substr(0, slash);
    auto it = process_index.find(name);
    return it == process_index.end() ? environment() : it->second;
  }
  void add(Pending event) {
    event.sequence = sequence++;
    pending.push_back(event);
  }

  nlohmann::json clock_json(const std::vector<std::uint32_t>& clock) const {
    nlohmann::json json = nlohmann::json::object();
    for (std::size_t i = 0; i < clock.size(); ++i) {
      if (clock[i] != 0) json[processes[i]] = clock[i];
    }
    return json;
  }

  // A fault, breaker or pool event: rare, so written through nlohmann::json.
  void append_system_line(std::string& text, const Pending& event,
                          const std::vector<std::uint32_t>& clock) const {
    const auto& system = system_events[event.system_event];
    nlohmann::json line;
    line["time_s"] = event.time_s;
    line["time_unix_us"] = unix_us(event.time_s, epoch_unix_s);
    line["process"] = processes[event.process];
    line["kind"] = system.kind;
    line["component"] = system.component;
    nlohmann::json attributes = nlohmann::json::object();
    for (const auto& [key, value] : system.attributes) attributes[key] = value;
    line["attributes"] = std::move(attributes);
    line["clock"] = clock_json(clock);
    text += line.dump();
    text += '\n';
  }

  // A message event, ~99% of the lines: written directly, byte for byte what
  // nlohmann::json's dump() gave for the same object (keys in its sorted order, its number
  // and string formats), without building one.
  void append_message_line(std::string& text, const Pending& event, std::string_view kind,
                           const std::vector<std::uint32_t>& clock,
                           const ClockKeys& clock_keys) const {
    auto hex16 = [&](std::uint64_t value) {
      fmt::format_to(std::back_inserter(text), "\"{:016x}\"", value);
    };
    text += "{\"clock\":";
    clock_keys.append(text, clock);
    text += ",\"kind\":";
    append_json_string(text, kind);
    text += ",\"message_id\":";
    hex16(event.message);
    text += ",\"operation\":";
    append_json_string(text, event.operation);
    if (event.phase == Phase::response_received || event.phase == Phase::response_sent ||
        event.phase == Phase::call_refused) {
      text += ",\"outcome\":";
      append_json_string(text, to_string(event.outcome));
    }
    text += ",\"peer\":";
    append_json_string(text, processes[event.peer]);
    text += ",\"process\":";
    append_json_string(text, processes[event.process]);
    text += ",\"span_id\":";
    hex16(event.span_id);
    text += ",\"time_s\":";
    append_json_number(text, event.time_s);
    fmt::format_to(std::back_inserter(text),
                   ",\"time_unix_us\":{},\"trace_id\":\"{:016x}{:016x}\"}}\n",
                   unix_us(event.time_s, epoch_unix_s), event.trace.high, event.trace.low);
  }

  void write_all() {
    // Phase order breaks ties at one instant so a send comes before its receive.
    std::stable_sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) {
      return std::tie(a.time_s, a.phase, a.sequence) < std::tie(b.time_s, b.phase, b.sequence);
    });
    std::vector<std::vector<std::uint32_t>> clocks(processes.size(),
                                                   std::vector<std::uint32_t>(processes.size()));
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> requests_in_flight;
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> responses_in_flight;
    auto merge = [](std::vector<std::uint32_t>& into, const std::vector<std::uint32_t>& from) {
      for (std::size_t i = 0; i < into.size(); ++i) into[i] = std::max(into[i], from[i]);
    };
    const ClockKeys clock_keys(processes);
    std::string text;
    for (const auto& event : pending) {
      auto& clock = clocks[event.process];
      std::string_view kind;
      switch (event.phase) {
        case Phase::request_sent:
          ++clock[event.process];
          requests_in_flight[event.message] = clock;
          kind = "request_sent";
          break;
        case Phase::request_received:
          if (auto it = requests_in_flight.find(event.message); it != requests_in_flight.end()) {
            merge(clock, it->second);
            requests_in_flight.erase(it);
          }
          ++clock[event.process];
          kind = "request_received";
          break;
        case Phase::response_sent:
          ++clock[event.process];
          responses_in_flight[event.message] = clock;
          kind = "response_sent";
          break;
        case Phase::response_received:
          // A response that arrives after the caller gave up is no cause of its timeout.
          if (auto it = responses_in_flight.find(event.message); it != responses_in_flight.end()) {
            merge(clock, it->second);
            responses_in_flight.erase(it);
          }
          requests_in_flight.erase(event.message);
          ++clock[event.process];
          kind = "response_received";
          break;
        case Phase::call_refused:
          ++clock[event.process];
          kind = "call_refused";
          break;
        case Phase::system:
          ++clock[event.process];
          break;
      }
      text.clear();
      if (event.phase == Phase::system) {
        append_system_line(text, event, clock);
      } else {
        append_message_line(text, event, kind, clock, clock_keys);
      }
      out << text;
    }
    pending.clear();
    pending.shrink_to_fit();
  }
};

CausalEventLog::CausalEventLog(const model::Topology& topology, std::ostream& out,
                               double sample_ratio, std::int64_t epoch_unix_s)
    : impl_(std::make_unique<Impl>(
          Impl{out, TraceSampler(sample_ratio), epoch_unix_s, {}, {}, {}, {}, 0})) {
  for (const auto& service : topology.services) impl_->processes.push_back(service.name);
  for (const auto& datastore : topology.datastores) impl_->processes.push_back(datastore.name);
  impl_->processes.push_back("environment");
  for (std::size_t i = 0; i < impl_->processes.size(); ++i) {
    impl_->process_index.emplace(impl_->processes[i], i);
  }
}
CausalEventLog::~CausalEventLog() = default;

void CausalEventLog::on_span(const twin::SpanRecord& span) {
  if (!impl_->sampler.sampled(span.trace_id)) return;
  Impl::Pending event;
  event.trace = span.trace_id;
  event.span_id = span.span_id;
  event.operation = span.operation;
  event.outcome = span.outcome;
  if (span.kind == twin::SpanKind::client) {
    event.process = impl_->process_of(span.service);
    event.peer = impl_->process_of(span.peer);
    event.message = span.span_id;
    const bool never_sent = span.outcome == twin::Outcome::circuit_open ||
                            span.outcome == twin::Outcome::pool_timeout ||
                            span.outcome == twin::Outcome::unavailable;
    if (never_sent) {
      event.time_s = span.end_s;
      event.phase = Impl::Phase::call_refused;
      impl_->add(event);
      return;
    }
    event.time_s = span.start_s;
    event.phase = Impl::Phase::request_sent;
    impl_->add(event);
    event.time_s = span.end_s;
    event.phase = Impl::Phase::response_received;
    impl_->add(event);
    return;
  }
  if (span.parent_span_id == 0) return;  // an entry request: its client is outside the system
  event.process = impl_->process_of(span.service);
  event.peer = impl_->environment();
  event.message = span.parent_span_id;
  event.time_s = span.start_s;
  event.phase = Impl::Phase::request_received;
  impl_->add(event);
  event.time_s = span.end_s;
  event.phase = Impl::Phase::response_sent;
  impl_->add(event);
}

void CausalEventLog::on_event(const twin::TwinEvent& event) {
  Impl::Pending pending;
  pending.time_s = event.time_s;
  pending.phase = Impl::Phase::system;
  pending.process = impl_->process_of(event.component);
  pending.system_event = impl_->system_events.size();
  impl_->system_events.push_back(event);
  impl_->add(pending);
}

void CausalEventLog::on_run_end(double /*end_time_s*/) {
  // A server span names its caller only through the parent client span: fill the peers in.
  std::unordered_map<std::uint64_t, std::size_t> caller_of_message;
  for (const auto& event : impl_->pending) {
    if (event.phase == Impl::Phase::request_sent) caller_of_message[event.message] = event.process;
  }
  for (auto& event : impl_->pending) {
    if (event.phase == Impl::Phase::request_received || event.phase == Impl::Phase::response_sent) {
      if (auto it = caller_of_message.find(event.message); it != caller_of_message.end()) {
        event.peer = it->second;
      }
    }
  }
  impl_->write_all();
}

// --- profiles/<service>.folded ---------------------------------------------------------------

struct CpuProfileRecorder::Impl {
  // Every span comes here: services and operations are name ids (NameIds) and their
  // stacks are found by indexing; names come back, sorted, only when the files are written.
  struct Call {
    double start_s = 0.0;
    double end_s = 0.0;
    std::size_t callee_operation = 0;
    double callee_own_us = 0.0;
  };
  // The stacks under one (service, operation), in microseconds: `svc;op` (own_us) and
  // `svc;op;callee_op` (a few callees: a linear search). A callee operation with the empty
  // name adds to own_us, as it did when stacks were keyed by their names.
  struct Frame {
    std::size_t service = 0;
    std::size_t operation = 0;
    double own_us = 0.0;
    std::vector<std::pair<std::size_t, double>> callees;
  };
  static constexpr std::size_t kNoFrame = static_cast<std::size_t>(-1);

  std::filesystem::path dir;
  NameIds names;
  std::size_t no_callee = names.id({});
  // Client span id -> the callee's operation and own time serving it (set when the callee's
  // span ends).
  detail::SpanIdMap<std::pair<std::size_t, double>> served;
  // Server span id -> the calls it made, as their client spans end.
  detail::SpanIdMap<std::vector<Call>> calls_of;
  std::vector<std::vector<Call>> spare_call_lists;  // emptied, their storage kept
  std::vector<Frame> frames;
  std::vector<std::vector<std::size_t>> frame_by_ids;  // [service id][operation id]

  Frame& frame(std::size_t service, std::size_t operation) {
    if (service >= frame_by_ids.size()) frame_by_ids.resize(service + 1);
    auto& by_operation = frame_by_ids[service];
    if (operation >= by_operation.size()) by_operation.resize(operation + 1, kNoFrame);
    if (by_operation[operation] == kNoFrame) {
      by_operation[operation] = frames.size();
      frames.push_back(Frame{service, operation, 0.0, {}});
    }
    return frames[by_operation[operation]];
  }

  void add(Frame& frame, std::size_t callee, double us) {
    if (callee == no_callee) {
      frame.own_us += us;
      return;
    }
    for (auto& [id, total] : frame.callees) {
      if (id == callee) {
        total += us;
        return;
      }
    }
    frame.callees.emplace_back(callee, us);
  }

  static double union_length(std::vector<Call>& calls) {
    std::sort(calls.begin(), calls.end(),
              [](const Call& a, const Call& b) { return a.start_s < b.start_s; });
    double total = 0.0;
    double covered_until = -1e300;
    for (const auto& call : calls) {
      const double from = std::max(call.start_s, covered_until);
      if (call.end_s > from) total += call.end_s - from;
      covered_until = std::max(covered_until, call.end_s);
    }
    return total;
  }
};

CpuProfileRecorder::CpuProfileRecorder(std::filesystem::path profiles_dir)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = std::move(profiles_dir);
}
CpuProfileRecorder::~CpuProfileRecorder() = default;

void CpuProfileRecorder::on_span(const twin::SpanRecord& span) {
  if (span.kind == twin::SpanKind::client) {
    Impl::Call call{span.start_s, span.end_s, impl_->no_callee, 0.0};
    if (const auto* served = impl_->served.find(span.span_id)) {
      call.callee_operation = served->first;
      call.callee_own_us = served->second;
      impl_->served.erase(span.span_id);
    }
    if (span.parent_span_id != 0) {
      bool inserted = false;
      auto& calls = impl_->calls_of.get(span.parent_span_id, inserted);
      if (inserted && !impl_->spare_call_lists.empty()) {
        calls = std::move(impl_->spare_call_lists.back());
        impl_->spare_call_lists.pop_back();
      }
      calls.push_back(call);
    }
    return;
  }
  std::vector<Impl::Call> calls;
  if (auto* made = impl_->calls_of.find(span.span_id)) {
    calls = std::move(*made);
    impl_->calls_of.erase(span.span_id);
  }
  const double busy_s = span.end_s - span.start_s - span.queue_s;
  const double own_us = std::max(0.0, busy_s - Impl::union_length(calls)) * 1e6;
  const std::size_t operation = impl_->names.id(span.operation);
  Impl::Frame& frame = impl_->frame(impl_->names.id(span.service), operation);
  frame.own_us += own_us;
  for (const auto& call : calls) {
    if (call.callee_own_us > 0.0) impl_->add(frame, call.callee_operation, call.callee_own_us);
  }
  if (span.parent_span_id != 0) impl_->served[span.parent_span_id] = {operation, own_us};
  if (calls.capacity() > 0) {
    calls.clear();
    impl_->spare_call_lists.push_back(std::move(calls));
  }
}

void CpuProfileRecorder::on_run_end(double /*end_time_s*/) {
  std::filesystem::create_directories(impl_->dir);
  // (service, operation, callee operation or "") in name order, as the files list them.
  using NamedStack = std::tuple<std::string_view, std::string_view, std::string_view>;
  std::vector<std::pair<NamedStack, double>> named;
  for (const auto& frame : impl_->frames) {
    const std::string_view service = impl_->names.name(frame.service);
    const std::string_view operation = impl_->names.name(frame.operation);
    named.emplace_back(NamedStack{service, operation, {}}, frame.own_us);
    for (const auto& [callee, us] : frame.callees) {
      named.emplace_back(NamedStack{service, operation, impl_->names.name(callee)}, us);
    }
  }
  std::sort(named.begin(), named.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string_view current;
  std::ofstream out;
  for (const auto& [stack, us] : named) {
    const auto& [service, operation, callee] = stack;
    if (!out.is_open() || service != current) {
      if (out.is_open()) out.close();
      current = service;
      out = open_file(impl_->dir / (std::string(service) + ".folded"));
    }
    const auto micros = std::llround(us);
    if (micros <= 0) continue;
    if (callee.empty()) {
      out << service << ';' << operation << ' ' << micros << '\n';
    } else {
      out << service << ';' << operation << ';' << callee << ' ' << micros << '\n';
    }
  }
  if (out.is_open()) out.close();
  impl_->frames.clear();
  impl_->frame_by_ids.clear();
  impl_->served.clear();
  impl_->calls_of.clear();
  impl_->spare_call_lists.clear();
}

// --- all of them -------------------------------------------------------------------------------

struct RcaDatasetWriters::Impl {
  std::filesystem::path dir;
  std::ofstream traces;
  std::ofstream logs;
  std::ofstream events;
  std::unique_ptr<SpanCsvWriter> span_writer;
  std::unique_ptr<ServiceLogWriter> log_writer;
  std::unique_ptr<CausalEventLog> event_log;
  std::unique_ptr<CpuProfileRecorder> profiles;
};

RcaDatasetWriters::RcaDatasetWriters(const model::Topology& topology, RcaDatasetOptions options)
    : impl_(std::make_unique<Impl>()) {
  std::error_code error;
  std::filesystem::create_directories(options.out_dir, error);
  if (error) throw InputError(options.out_dir.string(), {}, "cannot create: " + error.message());
  impl_->dir = options.out_dir;
  impl_->traces = open_file(options.out_dir / kTracesCsvFileName);
  impl_->logs = open_file(options.out_dir / kLogsCsvFileName);
  impl_->events = open_file(options.out_dir / kCausalEventsFileName);
  impl_->span_writer = std::make_unique<SpanCsvWriter>(impl_->traces, options.trace_sample_ratio,
                                                       options.epoch_unix_s);
  impl_->log_writer = std::make_unique<ServiceLogWriter>(
      impl_->logs, options.epoch_unix_s, options.max_log_lines_per_service_per_second);
  impl_->event_log = std::make_unique<CausalEventLog>(
      topology, impl_->events, options.trace_sample_ratio, options.epoch_unix_s);
  impl_->profiles = std::make_unique<CpuProfileRecorder>(options.out_dir / kProfilesDirName);
}
RcaDatasetWriters::~RcaDatasetWriters() = default;

std::vector<twin::TwinObserver*> RcaDatasetWriters::observers() {
  return {impl_->span_writer.get(), impl_->log_writer.get(), impl_->event_log.get(),
          impl_->profiles.get()};
}

void RcaDatasetWriters::finish() {
  for (auto* file : {&impl_->traces, &impl_->logs, &impl_->events}) {
    file->flush();
    if (!*file)
      throw std::runtime_error("cannot write the dataset files in " + impl_->dir.string());
    file->close();
  }
}

}  // namespace doppel::telemetry
