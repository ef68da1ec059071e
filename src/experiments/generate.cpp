// Catalogue, drawing and simulating one case, and its label.
#include "doppel/experiments/generate.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <fmt/format.h>

#include "doppel/faults/apply_scenario.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/distribution.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/service_graph.hpp"
#include "doppel/telemetry/name_ids.hpp"
#include "doppel/telemetry/rca_dataset.hpp"
#include "doppel/telemetry/telemetry_suite.hpp"
#include "doppel/twin/runtime.hpp"
#include "doppel/twin/twin.hpp"

namespace doppel::experiments {

namespace {

// An exhausted pool refuses at once rather than queueing: the caller sees the refusals.
constexpr double kPoolAcquireTimeoutMs = 1.0;

InputLocation pointer_at(std::string pointer) {
  InputLocation location;
  location.json_pointer = std::move(pointer);
  return location;
}

// Every caller -> callee pair of the topology's call plans, in topology order.
std::vector<std::pair<std::string, std::string>> call_edges(const model::Topology& topology) {
  std::vector<std::pair<std::string, std::string>> edges;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& service : topology.services) {
    for (const auto& operation : service.operations) {
      for (const auto& step : operation.steps) {
        for (const auto& call : step.calls) {
          if (seen.emplace(service.name, call.to).second) edges.emplace_back(service.name, call.to);
        }
      }
    }
  }
  return edges;
}

// Every edge whose caller keeps a connection pool to its callee.
std::vector<std::pair<std::string, std::string>> pooled_edges(const model::Topology& topology) {
  std::vector<std::pair<std::string, std::string>> edges;
  for (const auto& [from, to] : call_edges(topology)) {
    if (topology.policy(from, to).pool.size > 0) edges.emplace_back(from, to);
  }
  return edges;
}

// The components a client request reaches (model::reached_by_requests), for lookups.
std::set<std::string, std::less<>> reached_components(const model::Topology& topology) {
  const auto names = model::reached_by_requests(topology, model::ServiceGraph(topology));
  return {names.begin(), names.end()};
}

// Whether a kind acts only on the requests to its target (not on its resources).
bool acts_on_requests(FaultKind kind) {
  return kind == FaultKind::packet_loss || kind == FaultKind::dns_failure ||
         kind == FaultKind::error_rate || kind == FaultKind::latency ||
         kind == FaultKind::datastore_slowdown || kind == FaultKind::disk_slowness;
}

std::vector<std::string> applicable_targets(const model::Topology& topology, FaultKind kind) {
  std::vector<std::string> targets;
  // A fault on the requests to a component no client request reaches (Sock Shop's
  // queue-master, an asynchronous consumer) changes no record: its label would name a cause
  // with no symptom. Crashes, memory and CPU show in the component's own resources all the
  // same.
  const auto reached = reached_components(topology);
  const bool on_requests = acts_on_requests(kind);
  const auto applies = [&](const std::string& component) {
    return !on_requests || reached.contains(component);
  };
  auto add_services = [&] {
    for (const auto& service : topology.services) {
      if (applies(service.name)) targets.push_back(service.name);
    }
  };
  auto add_datastores = [&] {
    for (const auto& datastore : topology.datastores) {
      if (applies(datastore.name)) targets.push_back(datastore.name);
    }
  };
  switch (kind) {
    case FaultKind::instance_crash:
    case FaultKind::packet_loss:
    case FaultKind::cpu_stress:
    case FaultKind::memory_pressure:
    case FaultKind::dns_failure:
    case FaultKind::error_rate:
      add_services();
      break;
    case FaultKind::latency:
      add_services();
      for (const auto& [from, to] : call_edges(topology)) {
        if (applies(from)) targets.push_back(from + "->" + to);
      }
      break;
    case FaultKind::partition:
      for (std::size_t a = 0; a < topology.zones.size(); ++a) {
        for (std::size_t b = a + 1; b < topology.zones.size(); ++b) {
          targets.push_back(topology.zones[a].name + "|" + topology.zones[b].name);
        }
      }
      break;
    case FaultKind::zone_outage:
      // With one zone an outage is the whole system down: nothing to rank.
      if (topology.zones.size() > 1) {
        for (const auto& zone : topology.zones) targets.push_back(zone.name);
      }
      break;
    case FaultKind::replication_lag:
      for (const auto& datastore : topology.datastores) {
        if (!datastore.replicas.empty()) targets.push_back(datastore.name);
      }
      break;
    case FaultKind::datastore_slowdown:
    case FaultKind::disk_slowness:
    case FaultKind::datastore_crash:
      add_datastores();
      break;
    case FaultKind::pool_exhaustion:
      for (const auto& [from, to] : pooled_edges(topology)) targets.push_back(from + "->" + to);
      break;
  }
  return targets;
}

// The ranges docs/datasets.md documents.
CatalogEntry default_entry(FaultKind kind) {
  CatalogEntry entry;
  entry.kind = kind;
  entry.duration_s = {10.0, 30.0};
  switch (kind) {
    case FaultKind::instance_crash:
      entry.magnitude = {1.0, 3.0};  // instances, clamped to the replicas
      break;
    case FaultKind::latency:
      entry.magnitude = {50.0, 500.0};  // ms
      break;
    case FaultKind::packet_loss:
      entry.magnitude = {0.05, 0.3};  // loss rate
      break;
    case FaultKind::cpu_stress:
      entry.magnitude = {0.6, 0.95};  // share of the host's cores taken
      break;
    case FaultKind::memory_pressure:
      entry.magnitude = {3.0, 10.0};  // slowdown factor
      break;
    case FaultKind::error_rate:
      entry.magnitude = {0.2, 0.8};  // share failing
      break;
    case FaultKind::replication_lag:
      entry.magnitude = {500.0, 3000.0};  // ms
      break;
    case FaultKind::datastore_slowdown:
      entry.magnitude = {5.0, 50.0};  // cost factor
      break;
    case FaultKind::disk_slowness:
      entry.magnitude = {3.0, 20.0};  // cost factor
      break;
    case FaultKind::pool_exhaustion:
      entry.magnitude = {1.0, 2.0};  // connections left
      break;
    case FaultKind::partition:
    case FaultKind::zone_outage:
    case FaultKind::dns_failure:
    case FaultKind::datastore_crash:
      entry.magnitude = {1.0, 1.0};  // all or nothing
      break;
  }
  return entry;
}

// Kinds whose magnitude counts something.
bool whole_magnitude(FaultKind kind) {
  switch (kind) {
    case FaultKind::instance_crash:
    case FaultKind::pool_exhaustion:
    case FaultKind::partition:
    case FaultKind::zone_outage:
    case FaultKind::dns_failure:
    case FaultKind::datastore_crash:
      return true;
    default:
      return false;
  }
}

std::optional<FaultKind> fault_kind_named(std::string_view name) {
  for (FaultKind kind : all_fault_kinds()) {
    if (to_string(kind) == name) return kind;
  }
  return std::nullopt;
}

Range read_range(const nlohmann::json& value, const std::string& file, const std::string& where) {
  if (!value.is_array() || value.size() != 2 || !value[0].is_number() || !value[1].is_number()) {
    throw InputError(file, pointer_at(where), "expected [lo, hi], two numbers");
  }
  Range range{value[0].get<double>(), value[1].get<double>()};
  if (!(range.lo <= range.hi) || range.lo < 0) {
    throw InputError(file, pointer_at(where), "need 0 <= lo <= hi");
  }
  return range;
}

double read_number(const nlohmann::json& object, const char* key, double fallback,
                   const std::string& file, const std::string& where) {
  if (!object.contains(key)) return fallback;
  const auto& value = object.at(key);
  if (!value.is_number())
    throw InputError(file, pointer_at(where + "/" + key), "expected a number");
  return value.get<double>();
}

// --- The label: how the fault spread, from the simulation's own records -------------------

// Per component (service, datastore) and per caller->callee edge: the durations seen before
// the fault, then per one-second window after it how many spans were anomalous (failed, or
// slower than the baseline's mean + 3 standard deviations).
class PropagationRecorder final : public twin::TwinObserver {
 public:
  // `faulted_edge`: "caller->callee" when the fault sits on that edge itself; its calls'
  // deviation is then the root cause's (the caller's), not evidence about the callee.
  PropagationRecorder(double fault_start_s, std::string faulted_edge)
      : start_s_(fault_start_s), faulted_edge_(std::move(faulted_edge)) {}

  // Every span of the run comes here (~1M in a 10-minute case): names become ids, streams
  // are found by them; a stream's name is built once, when its first span comes.
  void on_span(const twin::SpanRecord& span) override {
    const std::size_t service = names_.id(span.service);
    if (service >= by_service_.size()) by_service_.resize(service + 1);
    ByService& of_service = by_service_[service];
    if (span.kind == twin::SpanKind::server) {
      if (!of_service.instance_hosts) {
        of_service.instance_hosts = &instance_hosts_[std::string(span.service)];
      }
      auto& hosts = *of_service.instance_hosts;
      if (!span.host.empty() && !hosts.count(span.instance)) {
        hosts.emplace(span.instance, std::string(span.host));
      }
      if (!of_service.server) of_service.server = &streams_[std::string(span.service)];
      observe(*of_service.server, span);
      return;
    }
    const std::size_t peer = names_.id(span.peer);
    if (peer >= of_service.edges.size()) of_service.edges.resize(peer + 1, nullptr);
    Stream*& edge = of_service.edges[peer];
    if (!edge) edge = &streams_[fmt::format("{}->{}", span.service, span.peer)];
    observe(*edge, span);
  }

  // Replication shows in the datastores' gauges, not in spans: a replica whose measured lag
  // leaves its baseline (the largest before the fault, plus half and 100 ms) deviates there.
  void on_snapshot(const twin::Snapshot& snapshot) override {
    for (const auto& node : snapshot.datastores) {
      auto& lag = replication_[{std::string(node.datastore), node.node}];
      if (snapshot.time_s <= start_s_) {
        lag.baseline_ms = std::max(lag.baseline_ms, node.replication_lag_ms);
      } else if (!lag.deviated_at_s && node.replication_lag_ms > 1.5 * lag.baseline_ms + 100.0) {
        lag.deviated_at_s = snapshot.time_s;
      }
    }
  }

  // The services other than `service` with an instance on one of `hosts`, by name.
  std::vector<std::string> sharing_hosts(const std::string& service,
                                         const std::set<std::string>& hosts) const {
    std::set<std::string> sharing;
    for (const auto& [name, instances] : instance_hosts_) {
      for (const auto& [instance, host] : instances) {
        if (name != service && hosts.count(host)) sharing.insert(name);
      }
    }
    return {sharing.begin(), sharing.end()};
  }

  // {"affected": [...], "edges": [...]} for label.json.
  nlohmann::json propagation(const std::string& root_cause) const {
    std::map<std::string, double> first_deviation;
    auto note = [&](const std::string& component, double time) {
      auto [it, inserted] = first_deviation.emplace(component, time);
      if (!inserted) it->second = std::min(it->second, time);
    };
    for (const auto& [node, lag] : replication_) {
      if (lag.deviated_at_s) note(node.first, *lag.deviated_at_s);
    }
    nlohmann::json edges = nlohmann::json::array();
    std::vector<std::pair<double, nlohmann::json>> edge_rows;
    for (const auto& [name, stream] : streams_) {
      const auto deviation = stream.first_deviation();
      if (!deviation) continue;
      const auto arrow = name.find("->");
      if (arrow == std::string::npos) {
        note(name, deviation->time_s);
        continue;
      }
      const std::string caller = name.substr(0, arrow);
      const std::string callee = name.substr(arrow + 2);
      // The caller saw its callee deviate: evidence about the callee, unless the calls
      // failed in the caller itself (its pool or its breaker).
      const bool caller_side = deviation->caller_side || name == faulted_edge_;
      note(caller_side ? caller : callee, deviation->time_s);
      edge_rows.emplace_back(deviation->time_s,
                             nlohmann::json{{"caller", caller},
                                            {"callee", callee},
                                            {"first_deviation_s", deviation->time_s},
                                            {"failed_spans", deviation->failed},
                                            {"slow_spans", deviation->slow}});
    }
    std::stable_sort(edge_rows.begin(), edge_rows.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [time, row] : edge_rows) edges.push_back(std::move(row));

    std::vector<std::pair<double, std::string>> order;
    for (const auto& [component, time] : first_deviation) order.emplace_back(time, component);
    // At one instant the root cause comes first, then names: the record cannot order them.
    std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      if ((a.second == root_cause) != (b.second == root_cause)) return a.second == root_cause;
      return a.second < b.second;
    });
    nlohmann::json affected = nlohmann::json::array();
    for (const auto& [time, component] : order) {
      affected.push_back({{"component", component}, {"first_deviation_s", time}});
    }
    return {{"affected", std::move(affected)}, {"edges", std::move(edges)}};
  }

 private:
  struct Window {
    std::uint64_t spans = 0;
    std::uint64_t failed = 0;
    std::uint64_t slow = 0;
    std::uint64_t caller_side = 0;  // failures the caller made itself: no pooled connection,
                                    // breaker open
    double first_anomaly_s = 0.0;
  };
  struct Deviation {
    double time_s = 0.0;
    std::uint64_t failed = 0;
    std::uint64_t slow = 0;
    bool caller_side = false;  // most anomalies of the first window were the caller's own
  };
  struct Stream {
    std::vector<float> baseline_ms;
    std::uint64_t baseline_failed = 0;
    bool thresholds_set = false;
    double slow_ms = 0.0;
    double baseline_anomaly_share = 0.0;
    std::map<std::int64_t, Window> windows;
    Window* last_window = nullptr;  // windows[last_second]
    std::int64_t last_second = 0;
    std::uint64_t failed_total = 0;
    std::uint64_t slow_total = 0;

    void set_thresholds() {
      thresholds_set = true;
      if (baseline_ms.empty()) {
        slow_ms = 0.0;  // nothing to compare with: only failures count
        return;
      }
      double sum = 0.0;
      double sum_sq = 0.0;
      for (float ms : baseline_ms) {
        sum += ms;
        sum_sq += double(ms) * ms;
      }
      const double n = double(baseline_ms.size());
      const double mean = sum / n;
      const double sd = std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
      slow_ms = std::max(mean + 3.0 * sd, mean * 1.2 + 1.0);
      const auto slow = std::count_if(baseline_ms.begin(), baseline_ms.end(),
                                      [&](float ms) { return ms > slow_ms; });
      baseline_anomaly_share =
          (double(slow) + double(baseline_failed)) / (n + double(baseline_failed));
      baseline_ms.clear();
      baseline_ms.shrink_to_fit();
    }

    std::optional<Deviation> first_deviation() const {
      const double threshold = std::max(0.05, 3.0 * baseline_anomaly_share);
      auto anomalous_share_above = [&](const Window& window) {
        const std::uint64_t anomalous = window.failed + window.slow;
        return anomalous >= 1 && double(anomalous) / double(window.spans) > threshold;
      };
      for (auto it = windows.begin(); it != windows.end(); ++it) {
        const auto& [second, window] = *it;
        if (!anomalous_share_above(window)) continue;
        // Two anomalies in a second, or one in each of two consecutive seconds: at low
        // rates a single slow span is no deviation, a run of them is.
        const auto next = windows.find(second + 1);
        const bool sustained = next != windows.end() && anomalous_share_above(next->second);
        if (window.failed + window.slow >= 2 || sustained) {
          const std::uint64_t anomalous = window.failed + window.slow;
          return Deviation{window.first_anomaly_s, failed_total, slow_total,
                           2 * window.caller_side > anomalous};
        }
      }
      return std::nullopt;
    }
  };

  void observe(Stream& stream, const twin::SpanRecord& span) {
    const bool failed = span.outcome != twin::Outcome::ok;
    const double ms = (span.end_s - span.start_s) * 1000.0;
    if (span.end_s < start_s_) {
      if (failed) {
        ++stream.baseline_failed;
      } else {
        stream.baseline_ms.push_back(static_cast<float>(ms));
      }
      return;
    }
    if (!stream.thresholds_set) stream.set_thresholds();
    const bool slow = !failed && stream.slow_ms > 0.0 && ms > stream.slow_ms;
    // Spans end in time order, so nearly all of them fall in the window the last one did.
    const auto second = static_cast<std::int64_t>(std::floor(span.end_s));
    if (!stream.last_window || stream.last_second != second) {
      stream.last_window = &stream.windows[second];
      stream.last_second = second;
    }
    auto& window = *stream.last_window;
    if ((failed || slow) && window.failed + window.slow == 0) window.first_anomaly_s = span.end_s;
    ++window.spans;
    window.failed += failed ? 1 : 0;
    window.caller_side +=
        (span.outcome == twin::Outcome::pool_timeout || span.outcome == twin::Outcome::circuit_open)
            ? 1
            : 0;
    window.slow += slow ? 1 : 0;
    stream.failed_total += failed ? 1 : 0;
    stream.slow_total += slow ? 1 : 0;
  }

  double start_s_;
  std::string faulted_edge_;

  std::map<std::string, std::map<int, std::string>, std::less<>> instance_hosts_;
  // What a service's name id leads to; pointers into the std::maps, whose nodes do not move.
  struct ByService {
    std::map<int, std::string>* instance_hosts = nullptr;
    Stream* server = nullptr;
    std::vector<Stream*> edges;  // by the callee's name id; null until its first call
  };
  telemetry::NameIds names_;
  std::vector<ByService> by_service_;
  struct ReplicationLag {
    double baseline_ms = 0.0;
    std::optional<double> deviated_at_s;
  };
  std::map<std::pair<std::string, int>, ReplicationLag> replication_;
  std::map<std::string, Stream, std::less<>> streams_;
};

// --- The two kinds the faults module has no kind for: generate's own runtime hooks --------

struct HookState {
  model::EdgePolicy original_policy;  // pool_exhaustion: restored at the end
};

twin::TwinEvent hook_event(const CaseSpec& spec, std::string_view kind, double time) {
  twin::TwinEvent event{time, std::string(kind), spec.target, {}};
  event.attributes.emplace_back("fault", std::string(to_string(spec.kind)));
  event.attributes.emplace_back("magnitude", fmt::format("{}", spec.magnitude));
  return event;
}

void apply_hook(const model::Topology& topology, const CaseSpec& spec, bool on, HookState& state,
                twin::TwinRuntime& runtime) {
  if (spec.kind == FaultKind::datastore_crash) {
    runtime.set_datastore_node_up(spec.target, 0, !on);
    return;
  }
  const auto arrow = spec.target.find("->");
  const std::string from = spec.target.substr(0, arrow);
  const std::string to = spec.target.substr(arrow + 2);
  if (on) {
    state.original_policy = topology.policy(from, to);
    state.original_policy.from = from;
    state.original_policy.to = to;
    model::EdgePolicy squeezed = state.original_policy;
    squeezed.pool.size = std::max(1, static_cast<int>(spec.magnitude));
    squeezed.pool.acquire_timeout_ms = kPoolAcquireTimeoutMs;
    runtime.set_edge_policy(squeezed);
  } else {
    runtime.set_edge_policy(state.original_policy);
  }
}

bool applied_by_hook(FaultKind kind) {
  return kind == FaultKind::pool_exhaustion || kind == FaultKind::datastore_crash;
}

// What the injection hit at its start, from the faults module's own plan: the instances,
// hosts or nodes its selector chose ("cartservice/1", "a2"), for the label.
nlohmann::json units_hit(const faults::Scenario& scenario, const model::Topology& prepared) {
  std::set<std::string> units;
  for (const auto& command : faults::plan_scenario(scenario, prepared)) {
    if (command.op == faults::RuntimeCommand::Op::event) continue;
    if (command.at_s != scenario.injections.at(0).start_s) continue;
    const bool indexed = command.op == faults::RuntimeCommand::Op::instance_up ||
                         command.op == faults::RuntimeCommand::Op::datastore_node_up ||
                         command.op == faults::RuntimeCommand::Op::instance_slowdown;
    if (command.target.empty()) continue;
    units.insert(indexed ? fmt::format("{}/{}", command.target, command.index) : command.target);
  }
  return nlohmann::json(std::vector<std::string>(units.begin(), units.end()));
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

std::string_view to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::instance_crash:
      return "instance_crash";
    case FaultKind::latency:
      return "latency";
    case FaultKind::packet_loss:
      return "packet_loss";
    case FaultKind::partition:
      return "partition";
    case FaultKind::zone_outage:
      return "zone_outage";
    case FaultKind::cpu_stress:
      return "cpu_stress";
    case FaultKind::memory_pressure:
      return "memory_pressure";
    case FaultKind::dns_failure:
      return "dns_failure";
    case FaultKind::error_rate:
      return "error_rate";
    case FaultKind::replication_lag:
      return "replication_lag";
    case FaultKind::datastore_slowdown:
      return "datastore_slowdown";
    case FaultKind::disk_slowness:
      return "disk_slowness";
    case FaultKind::pool_exhaustion:
      return "pool_exhaustion";
    case FaultKind::datastore_crash:
      return "datastore_crash";
  }
  return "unknown";
}

const std::vector<FaultKind>& all_fault_kinds() {
  static const std::vector<FaultKind> kinds = {
      FaultKind::instance_crash,     FaultKind::latency,
      FaultKind::packet_loss,        FaultKind::partition,
      FaultKind::zone_outage,        FaultKind::cpu_stress,
      FaultKind::memory_pressure,    FaultKind::dns_failure,
      FaultKind::error_rate,         FaultKind::replication_lag,
      FaultKind::datastore_slowdown, FaultKind::disk_slowness,
      FaultKind::pool_exhaustion,    FaultKind::datastore_crash};
  return kinds;
}

std::optional<nlohmann::json> case_scenario(const CaseSpec& spec, const Catalog& catalog) {
  if (applied_by_hook(spec.kind)) return std::nullopt;
  nlohmann::json injection = {{"name", "fault"},
                              {"kind", to_string(spec.kind)},
                              {"start_s", spec.start_s},
                              {"parameters", nlohmann::json::object()}};
  if (spec.end_s < catalog.duration_s) injection["end_s"] = spec.end_s;
  auto& parameters = injection["parameters"];
  const auto arrow = spec.target.find("->");
  const nlohmann::json service = {{"service", spec.target}};
  const nlohmann::json datastore = {{"datastore", spec.target}};
  switch (spec.kind) {
    case FaultKind::instance_crash:
      injection["target"] = {
          {"service", spec.target}, {"mode", "count"}, {"count", int(spec.magnitude)}};
      break;
    case FaultKind::latency:
      injection["target"] = arrow == std::string::npos
                                ? service
                                : nlohmann::json{{"edge",
                                                  {{"from", spec.target.substr(0, arrow)},
                                                   {"to", spec.target.substr(arrow + 2)}}}};
      parameters["ms"] = spec.magnitude;
      break;
    case FaultKind::packet_loss:
      injection["target"] = service;
      parameters["rate"] = spec.magnitude;
      break;
    case FaultKind::partition: {
      const auto bar = spec.target.find('|');
      parameters["of"] = "zone";
      parameters["a"] = {spec.target.substr(0, bar)};
      parameters["b"] = {spec.target.substr(bar + 1)};
      break;
    }
    case FaultKind::zone_outage:
      injection["target"] = {{"zone", spec.target}};
      break;
    case FaultKind::cpu_stress:
      // One of the service's hosts: the others on it suffer too, as they would.
      injection["target"] = {{"service", spec.target}, {"mode", "one"}};
      parameters["share"] = spec.magnitude;
      break;
    case FaultKind::memory_pressure:
      injection["target"] = service;
      parameters["slowdown"] = spec.magnitude;
      break;
    case FaultKind::dns_failure:
      injection["target"] = service;
      break;
    case FaultKind::error_rate:
      injection["target"] = service;
      parameters["rate"] = spec.magnitude;
      break;
    case FaultKind::replication_lag:
      injection["target"] = datastore;
      parameters["lag_ms"] = spec.magnitude;
      break;
    case FaultKind::datastore_slowdown:
    case FaultKind::disk_slowness:
      injection["target"] = datastore;
      parameters["factor"] = spec.magnitude;
      break;
    case FaultKind::pool_exhaustion:
    case FaultKind::datastore_crash:
      break;
  }
  return nlohmann::json{{"doppel", faults::kScenarioFormat},
                        {"name", case_dir_name(spec.index)},
                        {"duration_s", catalog.duration_s},
                        {"seed", spec.scenario_seed},
                        {"injections", {std::move(injection)}}};
}

Catalog default_catalog(const model::Topology& topology) {
  Catalog catalog;
  catalog.duration_s = 60.0;
  for (FaultKind kind : all_fault_kinds()) {
    CatalogEntry entry = default_entry(kind);
    entry.targets = applicable_targets(topology, kind);
    if (!entry.targets.empty()) catalog.entries.push_back(std::move(entry));
  }
  return catalog;
}

Catalog load_catalog(const std::filesystem::path& file, const model::Topology& topology) {
  const std::string label = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(label, pointer_at(""), "cannot read the catalogue");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    InputLocation where;
    where.byte_offset = static_cast<std::int64_t>(e.byte);
    throw InputError(label, where, "not valid JSON");
  }
  if (!doc.is_object()) throw InputError(label, pointer_at(""), "expected an object");
  if (doc.value("format", std::string()) != kCatalogFormat) {
    throw InputError(label, pointer_at("/format"), fmt::format("expected \"{}\"", kCatalogFormat));
  }
  Catalog catalog;
  catalog.duration_s = read_number(doc, "duration_s", catalog.duration_s, label, "");
  if (!(catalog.duration_s > 0))
    throw InputError(label, pointer_at("/duration_s"), "must be positive");
  catalog.rate_multiplier = read_number(doc, "rate_multiplier", 1.0, label, "");
  if (!(catalog.rate_multiplier > 0)) {
    throw InputError(label, pointer_at("/rate_multiplier"), "must be positive");
  }
  if (doc.contains("start_fraction")) {
    catalog.start_fraction = read_range(doc["start_fraction"], label, "/start_fraction");
    if (catalog.start_fraction.hi >= 1.0) {
      throw InputError(label, pointer_at("/start_fraction"), "the fault must start before the end");
    }
  }
  if (doc.contains("noise")) {
    const auto& noise = doc["noise"];
    if (!noise.is_object()) throw InputError(label, pointer_at("/noise"), "expected an object");
    catalog.traffic_variation = read_number(noise, "traffic_variation", 0.0, label, "/noise");
    catalog.benign_deploy_probability =
        read_number(noise, "benign_deploy_probability", 0.0, label, "/noise");
    if (catalog.traffic_variation < 0 || catalog.traffic_variation >= 1) {
      throw InputError(label, pointer_at("/noise/traffic_variation"), "must be in [0, 1)");
    }
    if (catalog.benign_deploy_probability < 0 || catalog.benign_deploy_probability > 1) {
      throw InputError(label, pointer_at("/noise/benign_deploy_probability"), "must be in [0, 1]");
    }
  }
  if (!doc.contains("faults") || !doc["faults"].is_array() || doc["faults"].empty()) {
    throw InputError(label, pointer_at("/faults"), "expected a non-empty array of faults");
  }
  for (std::size_t i = 0; i < doc["faults"].size(); ++i) {
    const auto& fault = doc["faults"][i];
    const std::string where = fmt::format("/faults/{}", i);
    if (!fault.is_object() || !fault.contains("kind") || !fault["kind"].is_string()) {
      throw InputError(label, pointer_at(where + "/kind"), "expected a fault kind");
    }
    const auto kind = fault_kind_named(fault["kind"].get<std::string>());
    if (!kind) {
      std::string known;
      for (FaultKind k : all_fault_kinds()) known += fmt::format(" {}", to_string(k));
      throw InputError(label, pointer_at(where + "/kind"),
                       fmt::format("unknown fault kind \"{}\"; known:{}",
                                   fault["kind"].get<std::string>(), known));
    }
    CatalogEntry entry = default_entry(*kind);
    const auto applicable = applicable_targets(topology, *kind);
    if (fault.contains("targets")) {
      const auto& targets = fault["targets"];
      if (!targets.is_array())
        throw InputError(label, pointer_at(where + "/targets"), "expected an array");
      for (std::size_t t = 0; t < targets.size(); ++t) {
        const std::string target = targets[t].is_string() ? targets[t].get<std::string>() : "";
        if (std::find(applicable.begin(), applicable.end(), target) == applicable.end()) {
          if (acts_on_requests(*kind) &&
              (topology.find_service(target) || topology.find_datastore(target)) &&
              !reached_components(topology).contains(target)) {
            throw InputError(label, pointer_at(fmt::format("{}/targets/{}", where, t)),
                             fmt::format("no client request reaches \"{}\" (no route and no "
                                         "call leads to it): {} there would change nothing",
                                         target, to_string(*kind)));
          }
          throw InputError(
              label, pointer_at(fmt::format("{}/targets/{}", where, t)),
              fmt::format("\"{}\" is no component {} applies to", target, to_string(*kind)));
        }
        entry.targets.push_back(target);
      }
    } else {
      entry.targets = applicable;
    }
    if (entry.targets.empty()) {
      throw InputError(label, pointer_at(where),
                       "no component of the topology to inject this into");
    }
    if (fault.contains("magnitude")) {
      entry.magnitude = read_range(fault["magnitude"], label, where + "/magnitude");
    }
    if (fault.contains("duration_s")) {
      entry.duration_s = read_range(fault["duration_s"], label, where + "/duration_s");
    }
    catalog.entries.push_back(std::move(entry));
  }
  return catalog;
}

nlohmann::json catalog_to_json(const Catalog& catalog) {
  nlohmann::json faults = nlohmann::json::array();
  for (const auto& entry : catalog.entries) {
    faults.push_back({{"kind", to_string(entry.kind)},
                      {"targets", entry.targets},
                      {"magnitude", {entry.magnitude.lo, entry.magnitude.hi}},
                      {"duration_s", {entry.duration_s.lo, entry.duration_s.hi}}});
  }
  return {{"format", kCatalogFormat},
          {"duration_s", catalog.duration_s},
          {"rate_multiplier", catalog.rate_multiplier},
          {"start_fraction", {catalog.start_fraction.lo, catalog.start_fraction.hi}},
          {"noise",
           {{"traffic_variation", catalog.traffic_variation},
            {"benign_deploy_probability", catalog.benign_deploy_probability}}},
          {"faults", std::move(faults)}};
}

CaseSpec draw_case(const model::Topology& topology, const Catalog& catalog, std::uint64_t seed,
                   std::uint64_t index) {
  // Every (kind, target) pair equally likely, so small kinds are not drowned by large ones
  // only through their number of targets: kind first, then its target.
  if (catalog.entries.empty()) throw std::invalid_argument("the catalogue has no faults");
  auto rng = model::RandomStream::for_component(seed, index, "case");
  const auto& entry = catalog.entries[rng.below(catalog.entries.size())];
  CaseSpec spec;
  spec.index = index;
  spec.seed = seed;
  spec.kind = entry.kind;
  spec.target = entry.targets[rng.below(entry.targets.size())];
  // An edge's fault shows first in its caller: the calls it makes get slow or fail.
  const auto arrow = spec.target.find("->");
  spec.root_cause = arrow == std::string::npos ? spec.target : spec.target.substr(0, arrow);
  spec.magnitude = rng.uniform(entry.magnitude.lo, entry.magnitude.hi);
  if (whole_magnitude(entry.kind)) spec.magnitude = std::floor(spec.magnitude + 0.5);
  if (entry.kind == FaultKind::instance_crash) {
    const int replicas = topology.find_service(spec.target)->replicas;
    spec.magnitude = std::clamp(spec.magnitude, 1.0, double(replicas));
  }
  const double duration = catalog.duration_s;
  // Whole seconds: inject_time.txt is exact, and the fault falls on a metrics window's
  // boundary instead of smearing over two rows.
  spec.start_s =
      std::round(rng.uniform(catalog.start_fraction.lo, catalog.start_fraction.hi) * duration);
  const double length = rng.uniform(entry.duration_s.lo, entry.duration_s.hi);
  spec.end_s = std::min(duration, std::round((spec.start_s + length) * 1000.0) / 1000.0);
  spec.scenario_seed = rng.below(std::uint64_t{1} << 31);
  // Noise draws come after the fault's, so turning noise on keeps the faults of every case.
  const double variation = rng.uniform(-1.0, 1.0) * catalog.traffic_variation;
  spec.traffic_factor = 1.0 + variation;
  const bool deploy = rng.bernoulli(catalog.benign_deploy_probability);
  const std::uint64_t deploy_pick = rng.next_u64();
  const double deploy_factor = rng.uniform(0.85, 1.15);
  const double deploy_at = rng.uniform(0.1, 0.9) * duration;
  if (deploy && topology.services.size() > 1) {
    std::vector<std::string> others;
    for (const auto& service : topology.services) {
      if (service.name != spec.root_cause) others.push_back(service.name);
    }
    spec.deploy_service = others[deploy_pick % others.size()];
    spec.deploy_factor = deploy_factor;
    spec.deploy_at_s = std::round(deploy_at * 1000.0) / 1000.0;
  }
  return spec;
}

std::string case_dir_name(std::uint64_t index) {
  return fmt::format("case-{:06d}", index);
}

void run_case(const model::Topology& topology, const Catalog& catalog, std::uint64_t seed,
              std::uint64_t index, const std::filesystem::path& out_dir,
              const CaseOptions& options) {
  const CaseSpec spec = draw_case(topology, catalog, seed, index);
  model::Topology scaled = topology;
  scaled.workload.duration_s = catalog.duration_s;
  for (auto& client : scaled.workload.clients) {
    for (auto& point : client.rate) point.rps *= catalog.rate_multiplier * spec.traffic_factor;
  }
  // The fault as a scenario the faults module checks and carries out, unless it is one of
  // generate's own hooks.
  const auto scenario_json = case_scenario(spec, catalog);
  std::optional<faults::Scenario> scenario;
  if (scenario_json) {
    scenario = faults::parse_scenario(*scenario_json, case_dir_name(index) + " scenario", scaled);
  }
  const model::Topology prepared = scenario ? faults::prepare_topology(*scenario, scaled) : scaled;

  const auto tmp_dir = out_dir / (".tmp-" + case_dir_name(index));
  const auto final_dir = out_dir / case_dir_name(index);
  std::filesystem::remove_all(tmp_dir);
  std::filesystem::create_directories(tmp_dir);

  telemetry::TelemetryOptions telemetry_options;
  telemetry_options.out_dir = tmp_dir;
  telemetry_options.trace_sample_ratio = options.trace_sample_ratio;
  telemetry_options.epoch_unix_s = options.epoch_unix_s;
  telemetry_options.write_traces = options.write_otlp;
  telemetry_options.write_events = false;  // events.jsonl is the vector-clock one
  telemetry_options.write_summary = false;
  telemetry_options.compute_summary = false;  // a case has no summary: its label says more
  telemetry::TelemetrySuite suite(prepared, telemetry_options);

  telemetry::RcaDatasetOptions dataset_options;
  dataset_options.out_dir = tmp_dir;
  dataset_options.trace_sample_ratio = options.trace_sample_ratio;
  dataset_options.epoch_unix_s = options.epoch_unix_s;
  telemetry::RcaDatasetWriters writers(prepared, dataset_options);

  PropagationRecorder propagation(
      spec.start_s, spec.target.find("->") != std::string::npos ? spec.target : std::string());
  std::vector<twin::TwinObserver*> observers = suite.observers();
  for (auto* observer : writers.observers()) observers.push_back(observer);
  observers.push_back(&propagation);

  HookState state;
  twin::TwinOptions twin_options;
  twin_options.seed = seed;
  twin_options.run = index;
  twin_options.duration_s = catalog.duration_s;
  twin_options.snapshot_interval_s = telemetry_options.window_s;
  twin_options.on_start = [&](twin::TwinRuntime& runtime) {
    if (scenario) {
      faults::apply_scenario(*scenario, prepared, runtime);
    } else {
      runtime.at(spec.start_s, [&](twin::TwinRuntime& rt) {
        apply_hook(prepared, spec, true, state, rt);
        rt.emit_event(hook_event(spec, "fault_start", rt.now()));
      });
      if (spec.end_s < catalog.duration_s) {
        runtime.at(spec.end_s, [&](twin::TwinRuntime& rt) {
          apply_hook(prepared, spec, false, state, rt);
          rt.emit_event(hook_event(spec, "fault_end", rt.now()));
        });
      }
    }
    if (spec.deploy_service) {
      runtime.at(spec.deploy_at_s, [&](twin::TwinRuntime& rt) {
        rt.set_cpu_cost_factor(*spec.deploy_service, spec.deploy_factor);
        rt.emit_event({rt.now(), "deploy", *spec.deploy_service, {{"benign", "true"}}});
      });
    }
  };
  twin::run_twin(prepared, twin_options, observers);
  suite.finish();
  writers.finish();

  nlohmann::json label = {
      {"index", index},
      {"seed", seed},
      {"topology", topology.name},
      {"root_cause", spec.root_cause},
      {"fault", to_string(spec.kind)},
      {"target", spec.target},
      {"magnitude", spec.magnitude},
      {"start_s", spec.start_s},
      {"end_s", spec.end_s},
      {"start_unix_s", options.epoch_unix_s + static_cast<std::int64_t>(std::floor(spec.start_s))},
      {"duration_s", catalog.duration_s},
  };
  if (scenario) {
    label["units"] = units_hit(*scenario, prepared);
    if (spec.kind == FaultKind::cpu_stress) {
      // The stress takes a host's cores: whatever else runs there slows at the same moment.
      const auto hosts = label["units"].get<std::set<std::string>>();
      label["co_located"] = propagation.sharing_hosts(spec.root_cause, hosts);
    }
    label["scenario"] = *scenario_json;
  }
  nlohmann::json noise = {{"traffic_factor", spec.traffic_factor}};
  if (spec.deploy_service) {
    noise["deploy"] = {{"service", *spec.deploy_service},
                       {"cpu_factor", spec.deploy_factor},
                       {"at_s", spec.deploy_at_s}};
  }
  label["noise"] = std::move(noise);
  label["propagation"] = propagation.propagation(spec.root_cause);
  write_text(tmp_dir / "label.json", label.dump(2) + "\n");
  write_text(tmp_dir / "inject_time.txt",
             fmt::format("{}\n", label["start_unix_s"].get<std::int64_t>()));

  std::filesystem::remove_all(final_dir);
  std::filesystem::rename(tmp_dir, final_dir);
}

}  // namespace doppel::experiments
