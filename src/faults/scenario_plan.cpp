// plan_scenario: a scenario's injections compiled into TwinRuntime commands. Pure (no engine),
// so what a scenario does to the twin is testable on its own.
#include <algorithm>
#include <limits>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "doppel/faults/apply_scenario.hpp"
#include "doppel/model/topology_loader.hpp"

#include "faults/target_units.hpp"
#include "faults/topology_patch.hpp"

namespace doppel::faults {

namespace {

using Op = RuntimeCommand::Op;
constexpr double kForever = std::numeric_limits<double>::infinity();

// One injection's share in a component's state over [start, end).
struct Contribution {
  Op op = Op::instance_up;
  std::string target;
  std::string other;
  int index = 0;
  double start = 0.0;
  double end = kForever;
  double value = 0.0;
};

using GroupKey = std::tuple<int, std::string, std::string, int>;

std::string format_number(double value) {
  return fmt::format("{:g}", value);
}

double base_zone_latency_us(const model::Topology& topology, const std::string& a,
                            const std::string& b) {
  if (a == b) {
    const model::Zone* zone = topology.find_zone(a);
    return zone != nullptr ? zone->network.latency_us : 0.0;
  }
  for (const auto& link : topology.zone_links) {
    if ((link.from == a && link.to == b) || (link.from == b && link.to == a)) {
      return link.network.latency_us;
    }
  }
  return topology.default_zone_link.latency_us;
}

double base_zone_bandwidth_mbps(const model::Topology& topology, const std::string& a,
                                const std::string& b) {
  if (a == b) {
    const model::Zone* zone = topology.find_zone(a);
    return zone != nullptr ? zone->network.bandwidth_mbps : 0.0;
  }
  for (const auto& link : topology.zone_links) {
    if ((link.from == a && link.to == b) || (link.from == b && link.to == a)) {
      return link.network.bandwidth_mbps;
    }
  }
  return topology.default_zone_link.bandwidth_mbps;
}

// Every caller -> callee pair the topology's call plans use, in file order, each once.
std::vector<std::pair<std::string, std::string>> call_pairs(const model::Topology& topology) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& service : topology.services) {
    for (const auto& op : service.operations) {
      for (const auto& step : op.steps) {
        for (const auto& call : step.calls) {
          std::pair<std::string, std::string> pair{service.name, call.to};
          if (std::find(pairs.begin(), pairs.end(), pair) == pairs.end()) pairs.push_back(pair);
        }
      }
    }
  }
  return pairs;
}

class Planner {
 public:
  Planner(const Scenario& scenario, const model::Topology& topology)
      : scenario_(scenario),
        topology_(topology),
        run_end_(topology.workload.duration_s),
        instances_(detail::all_instances(topology)),
        nodes_(detail::all_datastore_nodes(topology)) {}

  std::vector<RuntimeCommand> plan() {
    for (const auto& injection : scenario_.injections) plan_injection(injection);
    combine_contributions();
    std::stable_sort(commands_.begin(), commands_.end(),
                     [](const RuntimeCommand& a, const RuntimeCommand& b) {
                       const int a_event = a.op == Op::event ? 1 : 0;
                       const int b_event = b.op == Op::event ? 1 : 0;
                       return std::tie(a.at_s, a_event) < std::tie(b.at_s, b_event);
                     });
    return std::move(commands_);
  }

 private:
  double end_of(const Injection& injection) const {
    if (injection.end_s) return *injection.end_s;
    if (injection.parameters.restart_after_s && !injection.parameters.crash_after_s) {
      return injection.start_s + *injection.parameters.restart_after_s;
    }
    return kForever;
  }

  template <typename Unit>
  std::vector<Unit> choose(std::vector<Unit> units, const Injection& injection) const {
    return detail::choose_units(std::move(units), injection.target, scenario_.seed,
                                injection.pointer);
  }

  void contribute(Op op, std::string target, std::string other, int index, double start, double end,
                  double value) {
    contributions_.push_back({op, std::move(target), std::move(other), index, start, end, value});
  }

  void crash_instance(const detail::InstanceUnit& unit, double start, double end) {
    contribute(Op::instance_up, unit.service, "", unit.index, start, end, 0.0);
  }

  void crash_node(const detail::DatastoreNodeUnit& unit, double start, double end) {
    contribute(Op::datastore_node_up, unit.datastore, "", unit.node, start, end, 0.0);
  }

  void report(const Injection& injection, const std::string& component, double start, double end,
              std::vector<std::pair<std::string, std::string>> attributes = {}) {
    std::vector<std::pair<std::string, std::string>> base{
        {"injection", injection.label}, {"fault", std::string(to_string(injection.kind))}};
    base.insert(base.end(), attributes.begin(), attributes.end());
    RuntimeCommand start_event;
    start_event.at_s = start;
    start_event.event = {start, "fault_start", component, base};
    commands_.push_back(start_event);
    if (end < run_end_) {
      RuntimeCommand end_event;
      end_event.at_s = end;
      end_event.event = {end, "fault_end", component, base};
      commands_.push_back(std::move(end_event));
    }
  }

  void plan_injection(const Injection& injection) {
    const double start = injection.start_s;
    const double end = end_of(injection);
    const auto& p = injection.parameters;
    switch (injection.kind) {
      case InjectionKind::instance_crash:
        for (const auto& unit :
             choose(detail::instances_in_scope(topology_, injection.target), injection)) {
          crash_instance(unit, start, end);
          report(injection, fmt::format("{}/{}", unit.service, unit.index), start, end,
                 {{"host", unit.host}});
        }
        break;
      case InjectionKind::host_crash:
        for (const auto& host :
             choose(detail::hosts_in_scope(topology_, injection.target), injection)) {
          crash_where(start, end,
                      [&](const std::string& h, const std::string&) { return h == host; });
          report(injection, host, start, end);
        }
        break;
      case InjectionKind::zone_outage:
        crash_where(start, end, [&](const std::string&, const std::string& zone) {
          return zone == injection.target.name;
        });
        report(injection, injection.target.name, start, end);
        break;
      case InjectionKind::latency:
        if (injection.target.type == TargetSelector::Type::service) {
          contribute(Op::extra_latency, injection.target.name, "", 0, start, end, p.latency_ms);
          if (p.jitter_ms > 0.0) {
            contribute(Op::latency_jitter, injection.target.name, "", 0, start, end, p.jitter_ms);
          }
        } else if (injection.target.type == TargetSelector::Type::edge) {
          contribute(Op::edge_latency, injection.target.from, injection.target.to, 0, start, end,
                     p.latency_ms);
          if (p.jitter_ms > 0.0) {
            contribute(Op::edge_jitter, injection.target.from, injection.target.to, 0, start, end,
                       p.jitter_ms);
          }
        } else {
          for (const auto& zone : topology_.zones) {
            contribute(Op::zone_latency, std::min(injection.target.name, zone.name),
                       std::max(injection.target.name, zone.name), 0, start, end,
                       p.latency_ms * 1000.0);
          }
        }
        report(injection,
               injection.target.type == TargetSelector::Type::edge
                   ? injection.target.from + "->" + injection.target.to
                   : injection.target.name,
               start, end,
               {{"ms", format_number(p.latency_ms)}, {"jitter_ms", format_number(p.jitter_ms)}});
        break;
      case InjectionKind::cpu_stress:
        for (const auto& host :
             choose(detail::hosts_in_scope(topology_, injection.target), injection)) {
          contribute(Op::cpu_stress, host, "", 0, start, end, 1.0 / (1.0 - p.cpu_share));
          report(injection, host, start, end, {{"share", format_number(p.cpu_share)}});
        }
        break;
      case InjectionKind::memory_pressure:
        plan_memory_pressure(injection, start, end);
        break;
      case InjectionKind::deploy:
      case InjectionKind::route_change:
        plan_change(injection, start, end);
        break;
      case InjectionKind::traffic_surge:
      case InjectionKind::traffic_shift: {
        // Compiled into the workload by prepare_topology(); only reported here.
        std::vector<std::pair<std::string, std::string>> attributes;
        if (injection.kind == InjectionKind::traffic_surge) {
          attributes.emplace_back("factor", format_number(p.factor));
        } else {
          attributes.emplace_back("to", p.shift_to);
          attributes.emplace_back("share", format_number(p.share));
        }
        report(injection, injection.target.name.empty() ? "workload" : injection.target.name, start,
               end, attributes);
        break;
      }
      case InjectionKind::packet_loss:
        for (const auto& [op, name] : loss_targets(injection)) {
          contribute(op, name, "", 0, start, end, p.loss_rate);
          report(injection, name, start, end, {{"rate", format_number(p.loss_rate)}});
        }
        break;
      case InjectionKind::bandwidth_limit:
        for (const auto& zone : topology_.zones) {
          contribute(Op::zone_bandwidth, std::min(injection.target.name, zone.name),
                     std::max(injection.target.name, zone.name), 0, start, end, p.bandwidth_mbps);
        }
        report(injection, injection.target.name, start, end,
               {{"mbps", format_number(p.bandwidth_mbps)}});
        break;
      case InjectionKind::partition: {
        RuntimeCommand add;
        add.at_s = start;
        add.op = Op::partition_add;
        add.index = next_partition_;
        add.side_a = p.side_a;
        add.side_b = p.side_b;
        add.up = p.two_way;
        commands_.push_back(add);
        if (end < run_end_) {
          RuntimeCommand heal;
          heal.at_s = end;
          heal.op = Op::partition_heal;
          heal.index = next_partition_;
          commands_.push_back(heal);
        }
        ++next_partition_;
        std::string sides;
        for (const auto& name : p.side_a) sides += (sides.empty() ? "" : ",") + name;
        sides += p.two_way ? " <-> " : " -> ";
        for (std::size_t i = 0; i < p.side_b.size(); ++i) sides += (i ? "," : "") + p.side_b[i];
        report(injection, sides, start, end, {{"of", p.partition_of}});
        break;
      }
      case InjectionKind::dns_failure:
        contribute(Op::service_resolvable, injection.target.name, "", 0, start, end, 0.0);
        report(injection, injection.target.name, start, end);
        break;
      case InjectionKind::disk_slowness:
      case InjectionKind::datastore_slowdown:
        contribute(Op::query_slowdown, injection.target.name, p.query.value_or(""), 0, start, end,
                   p.factor);
        report(injection, injection.target.name, start, end,
               {{"factor", format_number(p.factor)}, {"query", p.query.value_or("*")}});
        break;
      case InjectionKind::replication_lag:
        if (p.stop_replication) {
          contribute(Op::replication_stopped, injection.target.name, "", 0, start, end, 0.0);
        } else {
          contribute(Op::replication_lag, injection.target.name, "", 0, start, end, p.lag_ms);
        }
        report(injection, injection.target.name, start, end,
               {{"lag_ms", format_number(p.lag_ms)},
                {"stopped", p.stop_replication ? "true" : "false"}});
        break;
      case InjectionKind::error_rate:
        contribute(Op::error_rate, injection.target.name, "", 0, start, end, p.error_rate);
        report(injection, injection.target.name, start, end,
               {{"rate", format_number(p.error_rate)}});
        break;
      case InjectionKind::clock_skew:
        for (const auto& host : detail::hosts_in_scope(topology_, injection.target)) {
          contribute(Op::clock_skew, host, "", 0, start, end, p.skew_ms);
          report(injection, host, start, end, {{"ms", format_number(p.skew_ms)}});
        }
        break;
    }
  }

  std::vector<std::pair<Op, std::string>> loss_targets(const Injection& injection) const {
    std::vector<std::pair<Op, std::string>> out;
    if (injection.target.type == TargetSelector::Type::service) {
      out.emplace_back(Op::service_packet_loss, injection.target.name);
    } else {
      for (const auto& host :
           choose(detail::hosts_in_scope(topology_, injection.target), injection)) {
        out.emplace_back(Op::host_packet_loss, host);
      }
    }
    return out;
  }

  template <typename Matches>
  void crash_where(double start, double end, Matches matches) {
    for (const auto& unit : instances_) {
      if (matches(unit.host, unit.zone)) crash_instance(unit, start, end);
    }
    for (const auto& unit : nodes_) {
      if (matches(unit.host, unit.zone)) crash_node(unit, start, end);
    }
  }

  void plan_memory_pressure(const Injection& injection, double start, double end) {
    const auto& p = injection.parameters;
    const auto chosen = choose(detail::instances_in_scope(topology_, injection.target), injection);
    for (const auto& unit : chosen) {
      if (p.slowdown_factor > 1.0) {
        contribute(Op::instance_slowdown, unit.service, "", unit.index, start, end,
                   p.slowdown_factor);
      }
      std::vector<std::pair<std::string, std::string>> attributes{
          {"slowdown", format_number(p.slowdown_factor)}};
      if (p.crash_after_s) {
        const double crash_at = start + *p.crash_after_s;
        const double back_at = p.restart_after_s ? crash_at + *p.restart_after_s : end;
        if (crash_at < std::min(end, run_end_)) {
          crash_instance(unit, crash_at, std::min(back_at, end));
          attributes.emplace_back("crash_at_s", format_number(crash_at));
        }
      }
      report(injection, fmt::format("{}/{}", unit.service, unit.index), start, end, attributes);
    }
  }

  void plan_change(const Injection& injection, double start, double end) {
    std::string paths;
    for (const auto& change : injection.parameters.changes) {
      if (!paths.empty()) paths += " ";
      paths += change.resolved_path;
    }
    const std::string component =
        injection.kind == InjectionKind::route_change ? "gateway" : "topology";
    report(injection, component, start, end, {{"changes", paths}});
    if (start == 0.0 && !injection.end_s) return;  // applied before the run (prepare_topology)

    nlohmann::json doc = model::topology_to_json(topology_);
    for (const auto& change : injection.parameters.changes) {
      detail::apply_topology_change(doc, change);
    }
    const model::Topology after = model::parse_topology(doc, scenario_.file);
    if (const auto canary = injection.parameters.canary_instances) {
      // The loader allows only edge policies and operation CPU costs in a canary.
      plan_canary(after, *canary, start, end);
      return;
    }
    for (const auto& [from, to] : call_pairs(topology_)) {
      const model::EdgePolicy& old_policy = topology_.policy(from, to);
      const model::EdgePolicy& new_policy = after.policy(from, to);
      if (old_policy == new_policy) continue;
      set_policy(start, new_policy, from, to);
      if (end < run_end_) set_policy(end, old_policy, from, to);
    }
    if (after.gateway.routes != topology_.gateway.routes) {
      set_routes(start, after.gateway.routes);
      if (end < run_end_) set_routes(end, topology_.gateway.routes);
    }
    for (const auto& store : topology_.datastores) {
      const model::Datastore* changed = after.find_datastore(store.name);
      if (changed == nullptr) continue;
      for (std::size_t q = 0; q < store.queries.size() && q < changed->queries.size(); ++q) {
        const auto& before = store.queries[q].cost_ms;
        if (before == changed->queries[q].cost_ms || before.mean() <= 0.0) continue;
        contribute(Op::query_slowdown, store.name, store.queries[q].name, 0, start, end,
                   changed->queries[q].cost_ms.mean() / before.mean());
      }
      set_count(Op::max_connections, store.name, store.max_connections, changed->max_connections,
                start, end);
    }
    for (const auto& service : topology_.services) {
      const model::Service* changed = after.find_service(service.name);
      if (changed == nullptr) continue;
      set_count(Op::workers, service.name, service.workers, changed->workers, start, end);
      set_count(Op::queue_capacity, service.name, service.queue_capacity, changed->queue_capacity,
                start, end);
      for (std::size_t i = 0; i < service.operations.size(); ++i) {
        const auto& before = service.operations[i].cpu_ms;
        if (before == changed->operations[i].cpu_ms || before.mean() <= 0.0) continue;
        // The loader has checked that every operation scales by this same factor.
        contribute(Op::cpu_cost_factor, service.name, "", 0, start, end,
                   changed->operations[i].cpu_ms.mean() / before.mean());
        break;
      }
    }
  }

  // A deploy's changes on the first `instances` instances of each service they touch: the
  // callers' edge policies per caller instance, CPU costs as a slowdown of those instances.
  void plan_canary(const model::Topology& after, int instances, double start, double end) {
    const auto replicas = [&](const std::string& service) {
      const model::Service* s = topology_.find_service(service);
      return s == nullptr ? 0 : std::min(instances, std::max(1, s->replicas));
    };
    for (const auto& [from, to] : call_pairs(topology_)) {
      const model::EdgePolicy& old_policy = topology_.policy(from, to);
      const model::EdgePolicy& new_policy = after.policy(from, to);
      if (old_policy == new_policy) continue;
      for (int i = 0; i < replicas(from); ++i) {
        set_instance_policy(start, new_policy, from, to, i);
        if (end < run_end_) set_instance_policy(end, old_policy, from, to, i);
      }
    }
    for (const auto& service : topology_.services) {
      const model::Service* changed = after.find_service(service.name);
      if (changed == nullptr) continue;
      for (std::size_t o = 0; o < service.operations.size(); ++o) {
        const auto& before = service.operations[o].cpu_ms;
        if (before == changed->operations[o].cpu_ms || before.mean() <= 0.0) continue;
        for (int i = 0; i < replicas(service.name); ++i) {
          contribute(Op::instance_slowdown, service.name, "", i, start, end,
                     changed->operations[o].cpu_ms.mean() / before.mean());
        }
        break;
      }
    }
  }

  void set_instance_policy(double at, const model::EdgePolicy& policy, const std::string& from,
                           const std::string& to, int instance) {
    set_policy(at, policy, from, to);
    commands_.back().op = Op::instance_edge_policy;
    commands_.back().index = instance;
  }

  void set_routes(double at, const std::vector<model::Route>& routes) {
    RuntimeCommand command;
    command.at_s = at;
    command.op = Op::gateway_routes;
    command.routes = routes;
    commands_.push_back(std::move(command));
  }

  void set_count(Op op, const std::string& target, int before, int after, double start,
                 double end) {
    if (before == after) return;
    RuntimeCommand command;
    command.op = op;
    command.target = target;
    command.at_s = start;
    command.index = after;
    commands_.push_back(command);
    if (end < run_end_) {
      command.at_s = end;
      command.index = before;
      commands_.push_back(command);
    }
  }

  void set_policy(double at, model::EdgePolicy policy, const std::string& from,
                  const std::string& to) {
    RuntimeCommand command;
    command.at_s = at;
    command.op = Op::edge_policy;
    policy.from = from;
    policy.to = to;
    command.policy = std::move(policy);
    command.target = from;
    command.other = to;
    commands_.push_back(std::move(command));
  }

  // Turns the overlapping contributions of each component into the runtime's settings at each
  // instant its combined state changes.
  void combine_contributions() {
    std::map<GroupKey, std::vector<const Contribution*>> groups;
    for (const auto& c : contributions_) {
      groups[{static_cast<int>(c.op), c.target, c.other, c.index}].push_back(&c);
    }
    for (const auto& [key, members] : groups) {
      const Op op = static_cast<Op>(std::get<0>(key));
      std::vector<double> times;
      for (const Contribution* c : members) {
        times.push_back(c->start);
        if (c->end < run_end_) times.push_back(c->end);
      }
      std::sort(times.begin(), times.end());
      times.erase(std::unique(times.begin(), times.end()), times.end());
      const double base = base_value(op, std::get<1>(key), std::get<2>(key));
      double previous = base;
      for (double t : times) {
        double value = base;
        int active = 0;
        double strongest = -1.0;
        double delivered = 1.0;
        for (const Contribution* c : members) {
          if (c->start <= t && t < c->end) {
            ++active;
            strongest = std::max(strongest, c->value);
            delivered *= 1.0 - c->value;
            if (multiplies(op)) {
              value *= c->value;
            } else if (op == Op::zone_bandwidth) {
              value = std::min(value, c->value);
            } else {
              value += c->value;
            }
          }
        }
        if (is_switch(op)) value = active > 0 ? 1.0 : 0.0;
        if (op == Op::error_rate) value = strongest;  // the worst injected rate; -1 restores
        if (op == Op::host_packet_loss || op == Op::service_packet_loss) value = 1.0 - delivered;
        if (value == previous) continue;
        previous = value;
        RuntimeCommand command;
        command.at_s = t;
        command.op = op;
        command.target = std::get<1>(key);
        command.other = std::get<2>(key);
        command.index = std::get<3>(key);
        command.up = value == 0.0;  // for the up/down ops: no crash active
        command.value = value;
        commands_.push_back(std::move(command));
      }
    }
  }

  static bool multiplies(Op op) {
    return op == Op::cpu_stress || op == Op::cpu_cost_factor || op == Op::instance_slowdown ||
           op == Op::query_slowdown;
  }

  // On/off states: the command's `up` is true when no injection holds the component.
  static bool is_switch(Op op) {
    return op == Op::instance_up || op == Op::datastore_node_up || op == Op::service_resolvable ||
           op == Op::replication_stopped;
  }

  double base_value(Op op, const std::string& target, const std::string& other) const {
    switch (op) {
      case Op::cpu_stress:
      case Op::cpu_cost_factor:
      case Op::instance_slowdown:
      case Op::query_slowdown:
        return 1.0;
      case Op::error_rate:
        return -1.0;
      case Op::zone_bandwidth:
        return base_zone_bandwidth_mbps(topology_, target, other);
      case Op::zone_latency:
        return base_zone_latency_us(topology_, target, other);
      default:
        return 0.0;
    }
  }

  const Scenario& scenario_;
  const model::Topology& topology_;
  double run_end_;
  std::vector<detail::InstanceUnit> instances_;
  std::vector<detail::DatastoreNodeUnit> nodes_;
  std::vector<Contribution> contributions_;
  std::vector<RuntimeCommand> commands_;
  int next_partition_ = 0;
};

}  // namespace

std::vector<RuntimeCommand> plan_scenario(const Scenario& scenario,
                                          const model::Topology& prepared) {
  return Planner(scenario, prepared).plan();
}

}  // namespace doppel::faults
