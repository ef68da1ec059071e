// Reading scenario/v1 files: structure, references into the topology, and whether the twin
// can carry each injection out (the "not built yet" list of docs/scenario-format.md).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <re2/re2.h>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

#include "faults/target_units.hpp"
#include "faults/topology_patch.hpp"
#include "model/did_you_mean.hpp"
#include "model/json_reader.hpp"

namespace doppel::faults {

namespace {

using model::detail::JsonObject;
using model::detail::JsonValue;
using nlohmann::json;
using Type = TargetSelector::Type;

constexpr const char* kNotBuiltAnchor = "docs/scenario-format.md#not-built-yet";

struct KindInfo {
  InjectionKind kind;
  std::string_view name;
};

constexpr KindInfo kKinds[] = {
    {InjectionKind::instance_crash, "instance_crash"},
    {InjectionKind::host_crash, "host_crash"},
    {InjectionKind::zone_outage, "zone_outage"},
    {InjectionKind::latency, "latency"},
    {InjectionKind::packet_loss, "packet_loss"},
    {InjectionKind::bandwidth_limit, "bandwidth_limit"},
    {InjectionKind::partition, "partition"},
    {InjectionKind::dns_failure, "dns_failure"},
    {InjectionKind::cpu_stress, "cpu_stress"},
    {InjectionKind::memory_pressure, "memory_pressure"},
    {InjectionKind::disk_slowness, "disk_slowness"},
    {InjectionKind::replication_lag, "replication_lag"},
    {InjectionKind::datastore_slowdown, "datastore_slowdown"},
    {InjectionKind::deploy, "deploy"},
    {InjectionKind::traffic_surge, "traffic_surge"},
    {InjectionKind::traffic_shift, "traffic_shift"},
    {InjectionKind::error_rate, "error_rate"},
    {InjectionKind::route_change, "route_change"},
    {InjectionKind::clock_skew, "clock_skew"},
};

// The selector types each kind accepts; an empty list means the kind takes no target.
std::vector<Type> allowed_targets(InjectionKind kind) {
  switch (kind) {
    case InjectionKind::instance_crash:
      return {Type::service, Type::instance, Type::host, Type::zone};
    case InjectionKind::host_crash:
      return {Type::host, Type::zone, Type::service};
    case InjectionKind::zone_outage:
      return {Type::zone};
    case InjectionKind::latency:
      return {Type::service, Type::zone, Type::edge};
    case InjectionKind::packet_loss:
      return {Type::service, Type::host, Type::zone, Type::edge};
    case InjectionKind::bandwidth_limit:
      return {Type::host, Type::zone, Type::edge};
    case InjectionKind::dns_failure:
      return {Type::service};
    case InjectionKind::cpu_stress:
      return {Type::host, Type::zone, Type::service, Type::instance};
    case InjectionKind::memory_pressure:
      return {Type::service, Type::instance};
    case InjectionKind::disk_slowness:
    case InjectionKind::replication_lag:
    case InjectionKind::datastore_slowdown:
      return {Type::datastore};
    case InjectionKind::traffic_surge:
    case InjectionKind::traffic_shift:
      return {Type::client};
    case InjectionKind::error_rate:
      return {Type::service, Type::edge};
    case InjectionKind::clock_skew:
      return {Type::host, Type::zone};
    case InjectionKind::partition:
    case InjectionKind::deploy:
    case InjectionKind::route_change:
      return {};
  }
  return {};
}

std::vector<std::string> kind_names() {
  std::vector<std::string> names;
  for (const auto& info : kKinds) names.emplace_back(info.name);
  return names;
}

template <typename Items>
std::vector<std::string> names_of(const Items& items) {
  std::vector<std::string> names;
  for (const auto& item : items) names.push_back(item.name);
  return names;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out += ", ";
    out += word;
  }
  return out;
}

std::string not_built(std::string_view what) {
  return fmt::format("{} is not built yet ({})", what, kNotBuiltAnchor);
}

bool nearly_equal(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

// Rebuilds a piecewise-constant rate profile from a function of time sampled at breakpoints.
template <typename RateAt>
std::vector<model::RatePoint> resample(std::vector<double> breakpoints, RateAt rate_at) {
  std::sort(breakpoints.begin(), breakpoints.end());
  breakpoints.erase(std::unique(breakpoints.begin(), breakpoints.end()), breakpoints.end());
  std::vector<model::RatePoint> points;
  for (double t : breakpoints) {
    const double rps = rate_at(t);
    if (!points.empty() && nearly_equal(points.back().rps, rps)) continue;
    points.push_back({t, rps});
  }
  return points;
}

double rate_at(const std::vector<model::RatePoint>& rate, double t) {
  double rps = 0.0;
  for (const auto& point : rate) {
    if (point.at_s <= t) rps = point.rps;
  }
  return rps;
}

std::vector<double> breakpoints_of(const std::vector<model::RatePoint>& rate) {
  std::vector<double> out{0.0};
  for (const auto& point : rate) out.push_back(point.at_s);
  return out;
}

model::ClientClass* find_client(model::Topology& topology, std::string_view name) {
  for (auto& client : topology.workload.clients) {
    if (client.name == name) return &client;
  }
  return nullptr;
}

// The topology values TwinRuntime can change during a run (docs/scenario-format.md#deploy).
bool runtime_changeable(const std::string& path) {
  static const RE2 changeable(
      "/edges(/.*)?|/edge_defaults(/.*)?|/gateway/routes(/.*)?"
      "|/services/[0-9]+/(workers|queue_capacity|operations/[0-9]+/cpu_ms(/.*)?)"
      "|/datastores/[0-9]+/(max_connections|queries/[0-9]+/cost_ms(/.*)?)");
  return RE2::FullMatch(path, changeable);
}

// A change from t = 0 that never ends is applied to the topology before the run.
bool is_pre_run(const Injection& injection) {
  // A canary reaches some instances only, which a topology edited before the run cannot say.
  return injection.start_s == 0.0 && !injection.end_s && !injection.parameters.canary_instances;
}

void compile_traffic(model::Topology& topology, const Injection& injection) {
  const double start = injection.start_s;
  const double end = injection.end_s.value_or(std::numeric_limits<double>::infinity());
  const auto in_window = [&](double t) { return t >= start && t < end; };
  const auto& p = injection.parameters;
  std::vector<std::string> classes;
  if (injection.target.name.empty()) {
    for (const auto& client : topology.workload.clients) classes.push_back(client.name);
  } else {
    classes.push_back(injection.target.name);
  }
  for (const auto& name : classes) {
    model::ClientClass* from = find_client(topology, name);
    if (from == nullptr) continue;
    const std::vector<model::RatePoint> original = from->rate;
    auto breakpoints = breakpoints_of(original);
    breakpoints.push_back(start);
    if (injection.end_s) breakpoints.push_back(end);
    if (injection.kind == InjectionKind::traffic_surge) {
      from->rate = resample(breakpoints, [&](double t) {
        return rate_at(original, t) * (in_window(t) ? p.factor : 1.0);
      });
      continue;
    }
    model::ClientClass* to = find_client(topology, p.shift_to);
    if (to == nullptr) continue;
    const std::vector<model::RatePoint> gaining = to->rate;
    for (double t : breakpoints_of(gaining)) breakpoints.push_back(t);
    from->rate = resample(breakpoints, [&](double t) {
      return rate_at(original, t) * (in_window(t) ? 1.0 - p.share : 1.0);
    });
    to->rate = resample(breakpoints, [&](double t) {
      return rate_at(gaining, t) + (in_window(t) ? rate_at(original, t) * p.share : 0.0);
    });
  }
}

class ScenarioReader {
 public:
  ScenarioReader(const json& doc, std::string file, const model::Topology& topology,
                 std::filesystem::path base_dir)
      : file_(std::move(file)),
        doc_(doc),
        topology_(topology),
        topology_doc_(model::topology_to_json(topology)),
        base_dir_(std::move(base_dir)) {}

  Scenario read() {
    const JsonValue root(file_, doc_, "");
    const JsonObject top =
        root.as_object({"doppel", "name", "description", "topology", "duration_s", "seed",
                        "workload", "injections", "steady_state", "abort_conditions"});
    const JsonValue format = top.at("doppel");
    if (format.as_string() != kScenarioFormat) {
      format.fail(fmt::format("unsupported format \"{}\", expected \"{}\"", format.as_string(),
                              kScenarioFormat));
    }
    Scenario scenario;
    scenario.file = file_;
    scenario.name = top.at("name").as_string();
    if (scenario.name.empty()) top.at("name").fail("must not be empty");
    if (auto d = top.find("description")) scenario.description = d->as_string();
    if (auto t = top.find("topology")) scenario.topology_file = base_dir_ / t->as_string();
    if (auto d = top.find("duration_s")) scenario.duration_s = d->number_above(0.0);
    run_end_s_ = scenario.duration_s.value_or(topology_.workload.duration_s);
    if (auto s = top.find("seed")) {
      scenario.seed = static_cast<std::uint64_t>(s->integer_at_least(0));
    }
    seed_ = scenario.seed;
    if (auto w = top.find("workload")) read_workload(*w, scenario);
    if (auto list = top.find("injections")) {
      const auto items = list->as_array();
      for (std::size_t i = 0; i < items.size(); ++i) {
        scenario.injections.push_back(read_injection(items[i], i));
      }
    }
    if (auto s = top.find("steady_state")) scenario.steady_state = read_steady_state(*s);
    if (auto a = top.find("abort_conditions")) {
      for (const auto& item : a->as_array()) {
        scenario.abort_conditions.push_back(read_abort_condition(item));
      }
    }
    check_prepared_topology(scenario, top);
    return scenario;
  }

 private:
  [[noreturn]] void fail_at(const std::string& pointer, const std::string& message) const {
    throw InputError(file_, InputLocation{pointer, {}, {}, {}}, message);
  }

  void read_workload(const JsonValue& value, Scenario& scenario) {
    const JsonObject w = value.as_object({"clients", "add_clients"});
    if (auto add = w.find("add_clients")) {
      add->as_nonempty_array();
      scenario.added_clients = add->raw();
      for (const auto& item : add->raw()) {
        if (item.is_object() && item.contains("name") && item["name"].is_string()) {
          added_client_names_.push_back(item["name"].get<std::string>());
        }
      }
    }
    if (auto clients = w.find("clients")) {
      for (const auto& [name, override_value] : clients->as_map()) {
        if (topology_.workload.clients.end() ==
            std::find_if(topology_.workload.clients.begin(), topology_.workload.clients.end(),
                         [&](const model::ClientClass& c) { return c.name == name; })) {
          override_value.fail(
              fmt::format("unknown client class \"{}\"{}", name,
                          model::detail::did_you_mean(name, names_of(topology_.workload.clients))));
        }
        const JsonObject o = override_value.as_object({"rate_multiplier", "rate"});
        ClientOverride out;
        out.client = name;
        if (auto m = o.find("rate_multiplier")) out.rate_multiplier = m->number_at_least(0.0);
        if (auto r = o.find("rate")) {
          if (r->raw().is_number()) {
            out.rate.push_back({0.0, r->number_at_least(0.0)});
          } else {
            double previous = -1.0;
            for (const auto& point_value : r->as_nonempty_array()) {
              const JsonObject point = point_value.as_object({"at_s", "rps"});
              model::RatePoint p{point.at("at_s").number_at_least(0.0),
                                 point.at("rps").number_at_least(0.0)};
              if (p.at_s <= previous) point.at("at_s").fail("must increase from point to point");
              previous = p.at_s;
              out.rate.push_back(p);
            }
          }
        }
        scenario.client_overrides.push_back(std::move(out));
      }
    }
  }

  std::vector<std::string> client_names() const {
    auto names = names_of(topology_.workload.clients);
    names.insert(names.end(), added_client_names_.begin(), added_client_names_.end());
    return names;
  }

  Injection read_injection(const JsonValue& value, std::size_t index) {
    const JsonObject o =
        value.as_object({"kind", "start_s", "end_s", "target", "parameters", "name"});
    Injection injection;
    injection.pointer = value.pointer();
    const JsonValue kind_value = o.at("kind");
    const std::string kind_name = kind_value.as_string();
    const auto* info = std::find_if(std::begin(kKinds), std::end(kKinds),
                                    [&](const KindInfo& k) { return k.name == kind_name; });
    if (info == std::end(kKinds)) {
      kind_value.fail(fmt::format("unknown injection kind \"{}\"{}", kind_name,
                                  model::detail::did_you_mean(kind_name, kind_names())));
    }
    injection.kind = info->kind;
    injection.label = fmt::format("injections/{} ({})", index, kind_name);
    if (auto n = o.find("name")) injection.label = n->as_string();
    injection.start_s = o.at("start_s").number_at_least(0.0);
    if (auto e = o.find("end_s")) {
      injection.end_s = e->as_number();
      if (!(*injection.end_s > injection.start_s)) {
        e->fail(fmt::format("end_s ({}) must be after start_s ({})", e->raw().dump(),
                            o.at("start_s").raw().dump()));
      }
    }
    if (injection.start_s >= run_end_s_) {
      o.at("start_s").fail(fmt::format("starts at {} s, at or after the end of the run ({} s)",
                                       injection.start_s, run_end_s_));
    }

    const auto targets = allowed_targets(injection.kind);
    if (auto t = o.find("target")) {
      if (targets.empty()) t->fail(fmt::format("\"{}\" takes no target", kind_name));
      injection.target = read_target(*t, targets, kind_name);
    } else if (injection.kind == InjectionKind::traffic_surge) {
      injection.target.type = Type::client;  // every client class
    } else if (!targets.empty()) {
      o.fail(fmt::format("missing required field \"target\" (\"{}\" takes {})", kind_name,
                         describe_types(targets)));
    }
    read_parameters(o, injection);
    check_buildable(injection, o);
    if ((injection.kind == InjectionKind::deploy ||
         injection.kind == InjectionKind::route_change) &&
        is_pre_run(injection)) {
      // Later injections see the topology as this change leaves it (a service it adds...).
      for (const auto& change : injection.parameters.changes) {
        detail::apply_topology_change(topology_doc_, change);
      }
    }
    return injection;
  }

  static std::string describe_types(const std::vector<Type>& types) {
    std::vector<std::string> words;
    for (Type t : types) words.emplace_back(to_string(t));
    return "a target of " + join(words);
  }

  TargetSelector read_target(const JsonValue& value, const std::vector<Type>& allowed,
                             const std::string& kind_name) {
    const JsonObject o =
        value.as_object({"service", "instance", "host", "zone", "edge", "datastore", "node",
                         "route", "client", "mode", "count", "percent"});
    TargetSelector target;
    std::vector<std::string> given;
    for (std::string_view key :
         {"service", "host", "zone", "edge", "datastore", "route", "client"}) {
      if (o.has(key)) given.emplace_back(key);
    }
    if (given.size() != 1) {
      o.fail(given.empty() ? "names nothing: give one of service, host, zone, edge, datastore, "
                             "route or client"
                           : fmt::format("names {} at once: give exactly one", join(given)));
    }
    const std::string& key = given.front();
    if (key == "service") {
      target.type = o.has("instance") ? Type::instance : Type::service;
      target.name = o.at("service").as_string();
      check_name(o.at("service"), target.name, names_of(topology_.services), "service");
      if (auto i = o.find("instance")) {
        const model::Service* service = topology_.find_service(target.name);
        target.index = i->int_at_least(0);
        if (*target.index >= service->replicas) {
          i->fail(fmt::format("service \"{}\" has {} instance(s), 0 to {}", target.name,
                              service->replicas, service->replicas - 1));
        }
      }
    } else if (key == "host") {
      target.type = Type::host;
      target.name = o.at("host").as_string();
      check_name(o.at("host"), target.name, detail::all_host_names(topology_), "host");
    } else if (key == "zone") {
      target.type = Type::zone;
      target.name = o.at("zone").as_string();
      check_name(o.at("zone"), target.name, names_of(topology_.zones), "zone");
    } else if (key == "edge") {
      target.type = Type::edge;
      const JsonObject edge = o.at("edge").as_object({"from", "to"});
      target.from = edge.at("from").as_string();
      target.to = edge.at("to").as_string();
      check_name(edge.at("from"), target.from, names_of(topology_.services), "service");
      std::vector<std::string> callees = names_of(topology_.services);
      for (const auto& store : topology_.datastores) callees.push_back(store.name);
      check_name(edge.at("to"), target.to, callees, "service or datastore");
      if (!calls(target.from, target.to)) {
        o.at("edge").fail(
            fmt::format("\"{}\" never calls \"{}\" in this topology", target.from, target.to));
      }
    } else if (key == "datastore") {
      target.type = Type::datastore;
      target.name = o.at("datastore").as_string();
      check_name(o.at("datastore"), target.name, names_of(topology_.datastores), "datastore");
      if (auto n = o.find("node")) {
        const model::Datastore* store = topology_.find_datastore(target.name);
        target.index = n->int_at_least(0);
        const int nodes = 1 + static_cast<int>(store->replicas.size());
        if (*target.index >= nodes) {
          n->fail(fmt::format("datastore \"{}\" has {} node(s), 0 (primary) to {}", target.name,
                              nodes, nodes - 1));
        }
      }
    } else if (key == "route") {
      target.type = Type::route;
      target.name = o.at("route").as_string();
      check_name(o.at("route"), target.name, names_of(topology_.gateway.routes), "route");
    } else {
      target.type = Type::client;
      target.name = o.at("client").as_string();
      check_name(o.at("client"), target.name, client_names(), "client class");
    }
    if (o.has("instance") && key != "service") o.at("instance").fail("goes with \"service\"");
    if (o.has("node") && key != "datastore") o.at("node").fail("goes with \"datastore\"");
    if (std::find(allowed.begin(), allowed.end(), target.type) == allowed.end()) {
      value.fail(fmt::format("\"{}\" cannot target a {}: it takes {}", kind_name,
                             to_string(target.type), describe_types(allowed)));
    }

    if (auto m = o.find("mode")) {
      target.mode = m->as_enum<TargetSelector::Mode>({{"all", TargetSelector::Mode::all},
                                                      {"one", TargetSelector::Mode::one},
                                                      {"count", TargetSelector::Mode::count},
                                                      {"percent", TargetSelector::Mode::percent}});
    }
    if (auto c = o.find("count")) {
      if (target.mode != TargetSelector::Mode::count) c->fail("goes with \"mode\": \"count\"");
      target.count = c->int_at_least(1);
    } else if (target.mode == TargetSelector::Mode::count) {
      o.fail("missing required field \"count\" (mode \"count\")");
    }
    if (auto p = o.find("percent")) {
      if (target.mode != TargetSelector::Mode::percent) p->fail("goes with \"mode\": \"percent\"");
      target.percent = p->as_number();
      if (!(target.percent > 0.0 && target.percent <= 100.0)) {
        p->fail(fmt::format("must be in (0, 100], got {}", p->raw().dump()));
      }
    } else if (target.mode == TargetSelector::Mode::percent) {
      o.fail("missing required field \"percent\" (mode \"percent\")");
    }
    return target;
  }

  bool calls(std::string_view from, std::string_view to) const {
    const model::Service* caller = topology_.find_service(from);
    if (caller == nullptr) return false;
    for (const auto& op : caller->operations) {
      for (const auto& step : op.steps) {
        for (const auto& call : step.calls) {
          if (call.to == to) return true;
        }
      }
    }
    return false;
  }

  static void check_name(const JsonValue& at, const std::string& name,
                         const std::vector<std::string>& known, std::string_view what) {
    if (std::find(known.begin(), known.end(), name) != known.end()) return;
    at.fail(
        fmt::format("unknown {} \"{}\"{}", what, name, model::detail::did_you_mean(name, known)));
  }

  void read_parameters(const JsonObject& injection_object, Injection& injection) {
    auto& p = injection.parameters;
    const std::optional<JsonValue> given = injection_object.find("parameters");
    const json empty = json::object();
    const JsonValue value =
        given ? *given : JsonValue(file_, empty, injection.pointer + "/parameters");
    switch (injection.kind) {
      case InjectionKind::instance_crash:
      case InjectionKind::host_crash:
      case InjectionKind::zone_outage: {
        const JsonObject o = value.as_object({"restart_after_s"});
        if (auto r = o.find("restart_after_s")) {
          p.restart_after_s = r->number_above(0.0);
          if (injection.end_s) {
            r->fail("give restart_after_s or the injection's end_s, not both");
          }
        }
        break;
      }
      case InjectionKind::latency: {
        const JsonObject o = value.as_object({"ms", "jitter_ms"});
        p.latency_ms = o.at("ms").number_above(0.0);
        if (auto j = o.find("jitter_ms")) p.jitter_ms = j->number_at_least(0.0);
        break;
      }
      case InjectionKind::packet_loss: {
        const JsonObject o = value.as_object({"rate"});
        p.loss_rate = o.at("rate").probability();
        if (p.loss_rate == 0.0) o.at("rate").fail("must be > 0, got 0");
        break;
      }
      case InjectionKind::bandwidth_limit: {
        const JsonObject o = value.as_object({"mbps"});
        p.bandwidth_mbps = o.at("mbps").number_above(0.0);
        break;
      }
      case InjectionKind::partition:
        read_partition(value, p);
        break;
      case InjectionKind::dns_failure:
        value.as_object({});
        break;
      case InjectionKind::cpu_stress: {
        const JsonObject o = value.as_object({"share"});
        p.cpu_share = o.at("share").as_number();
        if (!(p.cpu_share > 0.0 && p.cpu_share < 1.0)) {
          o.at("share").fail(fmt::format("must be in (0, 1), got {}", o.at("share").raw().dump()));
        }
        break;
      }
      case InjectionKind::memory_pressure: {
        const JsonObject o = value.as_object({"slowdown", "crash_after_s", "restart_after_s"});
        if (auto s = o.find("slowdown")) p.slowdown_factor = s->number_at_least(1.0);
        if (auto c = o.find("crash_after_s")) p.crash_after_s = c->number_at_least(0.0);
        if (auto r = o.find("restart_after_s")) {
          if (!p.crash_after_s) r->fail("goes with crash_after_s");
          p.restart_after_s = r->number_above(0.0);
        }
        if (p.slowdown_factor == 1.0 && !p.crash_after_s) {
          value.fail("does nothing: give a slowdown above 1 or crash_after_s");
        }
        break;
      }
      case InjectionKind::disk_slowness: {
        const JsonObject o = value.as_object({"factor"});
        p.factor = o.at("factor").number_at_least(1.0);
        break;
      }
      case InjectionKind::replication_lag: {
        const JsonObject o = value.as_object({"lag_ms", "stop"});
        if (auto l = o.find("lag_ms")) p.lag_ms = l->number_above(0.0);
        if (auto s = o.find("stop")) {
          if (!s->raw().is_boolean()) s->fail("expected true or false");
          p.stop_replication = s->raw().get<bool>();
        }
        if ((p.lag_ms > 0.0) == p.stop_replication) {
          value.fail("give either lag_ms (added lag) or \"stop\": true (replication stopped)");
        }
        break;
      }
      case InjectionKind::datastore_slowdown: {
        const JsonObject o = value.as_object({"factor", "query"});
        p.factor = o.at("factor").number_above(0.0);
        if (auto q = o.find("query")) {
          p.query = q->as_string();
          check_name(*q, *p.query,
                     names_of(topology_.find_datastore(injection.target.name)->queries), "query");
        }
        break;
      }
      case InjectionKind::deploy:
        read_deploy(value, p);
        break;
      case InjectionKind::traffic_surge: {
        const JsonObject o = value.as_object({"factor"});
        p.factor = o.at("factor").number_at_least(0.0);
        break;
      }
      case InjectionKind::traffic_shift: {
        const JsonObject o = value.as_object({"to", "share"});
        p.shift_to = o.at("to").as_string();
        check_name(o.at("to"), p.shift_to, client_names(), "client class");
        if (p.shift_to == injection.target.name) o.at("to").fail("shifts a class to itself");
        p.share = o.at("share").probability();
        break;
      }
      case InjectionKind::error_rate: {
        const JsonObject o = value.as_object({"rate"});
        p.error_rate = o.at("rate").probability();
        break;
      }
      case InjectionKind::route_change:
        read_route_change(value, p);
        break;
      case InjectionKind::clock_skew: {
        const JsonObject o = value.as_object({"ms"});
        p.skew_ms = o.at("ms").as_number();
        break;
      }
    }
  }

  void read_partition(const JsonValue& value, InjectionParameters& p) {
    const JsonObject o = value.as_object({"of", "a", "b", "one_way"});
    p.partition_of = o.at("of").as_string();
    std::vector<std::string> known;
    if (p.partition_of == "zone") {
      known = names_of(topology_.zones);
    } else if (p.partition_of == "host") {
      known = detail::all_host_names(topology_);
    } else if (p.partition_of == "service") {
      known = names_of(topology_.services);
    } else {
      o.at("of").as_enum<int>({{"zone", 0}, {"host", 1}, {"service", 2}});
    }
    const auto read_side = [&](std::string_view key, std::vector<std::string>& side) {
      for (const auto& item : o.at(key).as_nonempty_array()) {
        side.push_back(item.as_string());
        check_name(item, side.back(), known, p.partition_of);
      }
    };
    read_side("a", p.side_a);
    read_side("b", p.side_b);
    for (const auto& name : p.side_a) {
      if (std::find(p.side_b.begin(), p.side_b.end(), name) != p.side_b.end()) {
        o.at("b").fail(fmt::format("\"{}\" is on both sides", name));
      }
    }
    if (auto w = o.find("one_way")) {
      if (!w->raw().is_boolean()) w->fail("expected true or false");
      p.two_way = !w->raw().get<bool>();
    }
  }

  void read_deploy(const JsonValue& value, InjectionParameters& p) {
    const JsonObject o = value.as_object({"changes", "canary"});
    if (auto canary = o.find("canary")) {
      const JsonObject c = canary->as_object({"instances"});
      p.canary_instances = static_cast<int>(c.at("instances").integer_at_least(1));
    }
    json patched = topology_doc_;
    for (const auto& item : o.at("changes").as_nonempty_array()) {
      const JsonObject change_object = item.as_object({"set", "value", "scale", "by", "remove"});
      TopologyChange change;
      std::optional<JsonValue> path_value;
      int ops = 0;
      if (auto s = change_object.find("set")) {
        change.op = TopologyChange::Op::set;
        path_value = s;
        ++ops;
        change.value = change_object.at("value").raw();
      }
      if (auto s = change_object.find("scale")) {
        change.op = TopologyChange::Op::scale;
        path_value = s;
        ++ops;
        change.factor = change_object.at("by").number_above(0.0);
      }
      if (auto r = change_object.find("remove")) {
        change.op = TopologyChange::Op::remove;
        path_value = r;
        ++ops;
      }
      if (ops != 1)
        item.fail(
            "a change is one of {\"set\": POINTER, \"value\": V}, "
            "{\"scale\": POINTER, \"by\": F} or {\"remove\": POINTER}");
      if (change.op != TopologyChange::Op::set && change_object.has("value")) {
        change_object.at("value").fail("goes with \"set\"");
      }
      if (change.op != TopologyChange::Op::scale && change_object.has("by")) {
        change_object.at("by").fail("goes with \"scale\"");
      }
      change.path = path_value->as_string();
      const auto resolved = detail::resolve_topology_pointer(patched, change.path,
                                                             change.op == TopologyChange::Op::set);
      if (resolved.pointer.empty()) path_value->fail(resolved.error);
      change.resolved_path = resolved.pointer;
      if (change.op == TopologyChange::Op::scale &&
          !patched[json::json_pointer(resolved.pointer)].is_number()) {
        path_value->fail(fmt::format(
            "scale needs a number at {}, found {}", resolved.pointer,
            model::detail::describe_json_value(patched[json::json_pointer(resolved.pointer)])));
      }
      detail::apply_topology_change(patched, change);
      p.changes.push_back(std::move(change));
    }
  }

  void read_route_change(const JsonValue& value, InjectionParameters& p) {
    const JsonObject o = value.as_object({"insert", "before", "replace", "with", "remove"});
    json routes = topology_doc_["gateway"]["routes"];
    std::vector<std::string> route_names;
    for (const auto& route : routes) route_names.push_back(route.value("name", ""));
    const auto index_of = [&](const JsonValue& name_value) {
      const std::string name = name_value.as_string();
      check_name(name_value, name, route_names, "route");
      return static_cast<std::size_t>(std::find(route_names.begin(), route_names.end(), name) -
                                      route_names.begin());
    };
    const int ops = int{o.has("insert")} + int{o.has("replace")} + int{o.has("remove")};
    if (ops != 1) {
      value.fail(
          "a route change is one of {\"insert\": ROUTE, \"before\": NAME}, "
          "{\"replace\": NAME, \"with\": ROUTE} or {\"remove\": NAME}");
    }
    if (auto insert = o.find("insert")) {
      insert->as_object({"name", "method", "path_prefix", "path_regex", "headers", "to"});
      std::size_t at = 0;  // first match wins: a new rule goes first unless placed
      if (auto before = o.find("before")) at = index_of(*before);
      routes.insert(routes.begin() + static_cast<std::ptrdiff_t>(at), insert->raw());
    } else if (auto replace = o.find("replace")) {
      const std::size_t at = index_of(*replace);
      const JsonValue with = o.at("with");
      with.as_object({"name", "method", "path_prefix", "path_regex", "headers", "to"});
      routes[at] = with.raw();
    } else {
      routes.erase(routes.begin() + static_cast<std::ptrdiff_t>(index_of(o.at("remove"))));
    }
    if (o.has("before") && !o.has("insert")) o.at("before").fail("goes with \"insert\"");
    if (o.has("with") && !o.has("replace")) o.at("with").fail("goes with \"replace\"");
    TopologyChange change;
    change.op = TopologyChange::Op::set;
    change.path = "/gateway/routes";
    change.resolved_path = "/gateway/routes";
    change.value = std::move(routes);
    p.changes.push_back(std::move(change));
  }

  // Which runtime hook would carry the injection out; throws when the twin has none yet.
  void check_buildable(const Injection& injection, const JsonObject& at) const {
    const std::string kind(to_string(injection.kind));
    switch (injection.kind) {
      case InjectionKind::instance_crash:
      case InjectionKind::host_crash:
      case InjectionKind::zone_outage:
      case InjectionKind::cpu_stress:
      case InjectionKind::traffic_surge:
      case InjectionKind::traffic_shift:
        return;
      case InjectionKind::latency:
        if (injection.parameters.jitter_ms > 0.0 && injection.target.type == Type::zone) {
          at.at("parameters").fail(not_built("latency jitter_ms between zones"));
        }
        return;
      case InjectionKind::memory_pressure:
      case InjectionKind::dns_failure:
      case InjectionKind::disk_slowness:
      case InjectionKind::replication_lag:
      case InjectionKind::datastore_slowdown:
      case InjectionKind::clock_skew:
        return;
      case InjectionKind::deploy:
      case InjectionKind::route_change:
        if (!is_pre_run(injection)) check_runtime_changes(injection, at);
        return;
      case InjectionKind::packet_loss:
        if (injection.target.type == Type::edge) {
          at.at("target").fail(not_built("packet_loss on one edge (caller -> callee)"));
        }
        return;
      case InjectionKind::bandwidth_limit:
        if (injection.target.type != Type::zone) {
          at.at("target").fail(
              not_built(fmt::format("bandwidth_limit on a {}", to_string(injection.target.type))));
        }
        return;
      case InjectionKind::partition:
        return;
      case InjectionKind::error_rate:
        if (injection.target.type == Type::edge) {
          at.at("target").fail(not_built("error_rate on one edge (caller -> callee)"));
        }
        return;
    }
  }

  // A change during the run may only touch edge policies and uniform CPU cost factors.
  void check_runtime_changes(const Injection& injection, const JsonObject& at) const {
    json patched = topology_doc_;
    for (const auto& change : injection.parameters.changes) {
      detail::apply_topology_change(patched, change);
    }
    const std::string when =
        fmt::format("{} at {} s", to_string(injection.kind), injection.start_s);
    const json difference = json::diff(topology_doc_, patched);
    for (const auto& op : difference) {
      const std::string path = op["path"].get<std::string>();
      if (runtime_changeable(path)) continue;
      at.at("parameters")
          .fail(fmt::format(
              "{} changes {}, which the twin cannot change during a run yet ({}); a change from "
              "t = 0 with no end is applied before the run instead",
              when, path, kNotBuiltAnchor));
    }
    if (injection.parameters.canary_instances) {
      // A canary reaches single instances: caller-side edge policies and operation CPU costs
      // have per-instance hooks in the twin; the rest is shared by every instance.
      static const RE2 per_instance(
          "/edges(/.*)?|/edge_defaults(/.*)?"
          "|/services/[0-9]+/operations/[0-9]+/cpu_ms(/.*)?");
      for (const auto& op : difference) {
        const std::string path = op["path"].get<std::string>();
        if (RE2::FullMatch(path, per_instance)) continue;
        at.at("parameters")
            .as_object({"changes", "canary"})
            .at("canary")
            .fail(fmt::format("{} changes {}, which every instance shares: a canary can stage "
                              "edge policies and operation CPU costs only",
                              when, path));
      }
    }
    // CPU costs can only change by one factor per service (TwinRuntime::set_cpu_cost_factor).
    model::Topology after;
    try {
      after = model::parse_topology(patched, "topology");
    } catch (const InputError& e) {
      at.at("parameters")
          .fail(fmt::format("{} leaves the topology invalid: {}: {}", to_string(injection.kind),
                            e.where().json_pointer, e.message()));
    }
    for (const auto& before_service : topology_.services) {
      const model::Service* changed = after.find_service(before_service.name);
      if (changed == nullptr || changed->operations.size() != before_service.operations.size()) {
        continue;
      }
      std::optional<double> factor;
      for (std::size_t i = 0; i < before_service.operations.size(); ++i) {
        const auto& old_cost = before_service.operations[i].cpu_ms;
        const auto& new_cost = changed->operations[i].cpu_ms;
        if (old_cost == new_cost && !factor) continue;
        const double f = old_cost.mean() > 0.0 ? new_cost.mean() / old_cost.mean() : 1.0;
        const bool same_shape = nearly_equal(new_cost.quantile(0.5), old_cost.quantile(0.5) * f) &&
                                nearly_equal(new_cost.quantile(0.99), old_cost.quantile(0.99) * f);
        if (!same_shape || (factor && !nearly_equal(*factor, f))) {
          at.at("parameters")
              .fail(not_built(
                  fmt::format("{} changing the CPU cost of {}'s operations by different factors",
                              when, before_service.name)));
        }
        factor = f;
      }
    }
  }

  SteadyState read_steady_state(const JsonValue& value) {
    const JsonObject o = value.as_object({"slos", "before", "during", "after"});
    SteadyState state;
    const auto flag = [&](std::string_view key, bool& out) {
      if (auto v = o.find(key)) {
        if (!v->raw().is_boolean()) v->fail("expected true or false");
        out = v->raw().get<bool>();
      }
    };
    flag("before", state.check_before);
    flag("during", state.check_during);
    flag("after", state.check_after);
    if (auto s = o.find("slos")) {
      if (s->raw().is_string()) {
        if (s->as_string() != "topology") {
          s->fail(fmt::format("expected \"topology\" or a list of SLOs, got {}", s->raw().dump()));
        }
      } else {
        s->as_array();
        state.slos_from_topology = false;
        json doc = topology_doc_;
        doc["slos"] = s->raw();
        try {
          state.slos = model::parse_topology(doc, file_).slos;
        } catch (const InputError& e) {
          std::string pointer = e.where().json_pointer;
          if (pointer.rfind("/slos", 0) == 0) pointer = s->pointer() + pointer.substr(5);
          fail_at(pointer, e.message());
        }
      }
    }
    return state;
  }

  AbortCondition read_abort_condition(const JsonValue& value) {
    const JsonObject o = value.as_object({"metric", "route", "client", "above", "window_s"});
    AbortCondition condition;
    condition.metric = o.at("metric").as_enum<AbortCondition::Metric>(
        {{"error_rate", AbortCondition::Metric::error_rate},
         {"latency_p50_ms", AbortCondition::Metric::latency_p50_ms},
         {"latency_p90_ms", AbortCondition::Metric::latency_p90_ms},
         {"latency_p99_ms", AbortCondition::Metric::latency_p99_ms}});
    if (auto r = o.find("route")) {
      condition.route = r->as_string();
      check_name(*r, condition.route, names_of(topology_.gateway.routes), "route");
    }
    if (auto c = o.find("client")) {
      condition.client = c->as_string();
      check_name(*c, condition.client, client_names(), "client class");
    }
    condition.above = o.at("above").number_at_least(0.0);
    if (condition.metric == AbortCondition::Metric::error_rate) o.at("above").probability();
    if (auto w = o.find("window_s")) condition.window_s = w->number_above(0.0);
    return condition;
  }

  // Re-runs the topology loader on the topology the run will simulate, so a deploy or an added
  // client class that breaks it is reported here, at the scenario's own place.
  void check_prepared_topology(const Scenario& scenario, const JsonObject& top) const {
    try {
      (void)prepare_topology(scenario, topology_);
    } catch (const InputError& e) {
      const std::string inner = e.where().json_pointer;
      if (inner.rfind("/workload/clients", 0) == 0 && top.has("workload")) {
        fail_at(top.at("workload").pointer(),
                fmt::format("the workload override leaves the topology invalid: {}: {}", inner,
                            e.message()));
      }
      for (const auto& injection : scenario.injections) {
        if (injection.kind == InjectionKind::deploy ||
            injection.kind == InjectionKind::route_change) {
          // Which deploy broke it: the first whose own changes do not load.
          json patched = topology_doc_;
          for (const auto& change : injection.parameters.changes) {
            detail::apply_topology_change(patched, change);
          }
          try {
            (void)model::parse_topology(patched, "topology");
          } catch (const InputError& own) {
            fail_at(injection.pointer + "/parameters",
                    fmt::format("{} leaves the topology invalid: {}: {}", to_string(injection.kind),
                                own.where().json_pointer, own.message()));
          }
        }
      }
      fail_at("",
              fmt::format("the scenario leaves the topology invalid: {}: {}", inner, e.message()));
    }
  }

  std::string file_;
  const json& doc_;
  const model::Topology& topology_;
  json topology_doc_;
  std::filesystem::path base_dir_;
  std::vector<std::string> added_client_names_;
  double run_end_s_ = 0.0;
  std::uint64_t seed_ = 1;
};

}  // namespace

std::string_view to_string(InjectionKind kind) {
  for (const auto& info : kKinds) {
    if (info.kind == kind) return info.name;
  }
  return "unknown";
}

const std::vector<InjectionKind>& all_injection_kinds() {
  static const std::vector<InjectionKind> kinds = [] {
    std::vector<InjectionKind> out;
    for (const auto& info : kKinds) out.push_back(info.kind);
    return out;
  }();
  return kinds;
}

std::string_view to_string(TargetSelector::Type type) {
  switch (type) {
    case Type::service:
      return "service";
    case Type::instance:
      return "instance";
    case Type::host:
      return "host";
    case Type::zone:
      return "zone";
    case Type::edge:
      return "edge";
    case Type::datastore:
      return "datastore";
    case Type::route:
      return "route";
    case Type::client:
      return "client";
  }
  return "unknown";
}

std::string_view to_string(AbortCondition::Metric metric) {
  switch (metric) {
    case AbortCondition::Metric::error_rate:
      return "error_rate";
    case AbortCondition::Metric::latency_p50_ms:
      return "latency_p50_ms";
    case AbortCondition::Metric::latency_p90_ms:
      return "latency_p90_ms";
    case AbortCondition::Metric::latency_p99_ms:
      return "latency_p99_ms";
  }
  return "unknown";
}

Scenario parse_scenario(const json& doc, const std::string& file_label,
                        const model::Topology& topology, const std::filesystem::path& base_dir) {
  return ScenarioReader(doc, file_label, topology, base_dir).read();
}

Scenario load_scenario(const std::filesystem::path& file, const model::Topology* topology) {
  const std::string label = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(label, {}, "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  const json doc = model::detail::parse_json_text(text.str(), label);
  const std::filesystem::path base_dir = file.parent_path();
  if (topology != nullptr) return parse_scenario(doc, label, *topology, base_dir);
  if (!doc.is_object() || !doc.contains("topology")) {
    throw InputError(label, InputLocation{"", {}, {}, {}},
                     "names no topology (field \"topology\") and none was given");
  }
  const JsonValue path_value(label, doc["topology"], "/topology");
  const std::filesystem::path topology_file = base_dir / path_value.as_string();
  if (!std::filesystem::exists(topology_file)) {
    path_value.fail(fmt::format("no topology file at {}", topology_file.string()));
  }
  const model::Topology named = model::load_topology(topology_file);
  return parse_scenario(doc, label, named, base_dir);
}

model::Topology load_scenario_topology(const Scenario& scenario) {
  if (!scenario.topology_file) {
    throw InputError(scenario.file, InputLocation{"", {}, {}, {}},
                     "names no topology (field \"topology\")");
  }
  return model::load_topology(*scenario.topology_file);
}

model::Topology prepare_topology(const Scenario& scenario, const model::Topology& topology) {
  model::Topology base = topology;
  if (scenario.duration_s) base.workload.duration_s = *scenario.duration_s;
  for (const auto& override_entry : scenario.client_overrides) {
    model::ClientClass* client = find_client(base, override_entry.client);
    if (client == nullptr) continue;
    if (!override_entry.rate.empty()) client->rate = override_entry.rate;
    for (auto& point : client->rate) point.rps *= override_entry.rate_multiplier;
  }
  json doc = model::topology_to_json(base);
  for (const auto& client : scenario.added_clients) doc["workload"]["clients"].push_back(client);
  for (const auto& injection : scenario.injections) {
    const bool changes_topology =
        injection.kind == InjectionKind::deploy || injection.kind == InjectionKind::route_change;
    if (!changes_topology || !is_pre_run(injection)) continue;
    for (const auto& change : injection.parameters.changes) {
      detail::apply_topology_change(doc, change);
    }
  }
  const std::string label = scenario.file.empty() ? scenario.name : scenario.file;
  model::Topology prepared = model::parse_topology(doc, label);
  for (const auto& injection : scenario.injections) {
    if (injection.kind == InjectionKind::traffic_surge ||
        injection.kind == InjectionKind::traffic_shift) {
      compile_traffic(prepared, injection);
    }
  }
  return model::parse_topology(model::topology_to_json(prepared), label);
}

Phases scenario_phases(const Scenario& scenario, const model::Topology& prepared) {
  Phases phases;
  phases.run_end_s = prepared.workload.duration_s;
  if (scenario.injections.empty()) {
    phases.first_start_s = phases.run_end_s;
    phases.last_end_s = phases.run_end_s;
    return phases;
  }
  phases.first_start_s = phases.run_end_s;
  for (const auto& injection : scenario.injections) {
    phases.first_start_s = std::min(phases.first_start_s, injection.start_s);
    double end = injection.end_s.value_or(phases.run_end_s);
    if (injection.parameters.restart_after_s && !injection.parameters.crash_after_s) {
      end = injection.start_s + *injection.parameters.restart_after_s;
    }
    phases.last_end_s = std::max(phases.last_end_s, std::min(end, phases.run_end_s));
  }
  return phases;
}

std::vector<model::Slo> steady_state_slos(const Scenario& scenario,
                                          const model::Topology& topology) {
  return scenario.steady_state.slos_from_topology ? topology.slos : scenario.steady_state.slos;
}

}  // namespace doppel::faults
