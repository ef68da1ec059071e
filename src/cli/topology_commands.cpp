// doppel topology validate | show | dot: look at a topology/v1 file without simulating it.
#include <iostream>
#include <numeric>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/model/service_graph.hpp"
#include "doppel/model/topology_loader.hpp"
#include "doppel/twin/twin.hpp"

#include "cli/command.hpp"

namespace doppel::cli {
namespace {

using model::Topology;

int instance_count(const Topology& t) {
  return std::accumulate(t.services.begin(), t.services.end(), 0,
                         [](int n, const model::Service& s) { return n + s.replicas; });
}

int host_count(const Topology& t) {
  return std::accumulate(t.zones.begin(), t.zones.end(), 0, [](int n, const model::Zone& z) {
    return n + static_cast<int>(z.hosts.size());
  });
}

int operation_count(const Topology& t) {
  return std::accumulate(
      t.services.begin(), t.services.end(), 0,
      [](int n, const model::Service& s) { return n + static_cast<int>(s.operations.size()); });
}

nlohmann::json summary_json(const std::string& file, const Topology& t) {
  return {{"file", file},
          {"valid", true},
          {"name", t.name},
          {"zones", t.zones.size()},
          {"hosts", host_count(t)},
          {"services", t.services.size()},
          {"instances", instance_count(t)},
          {"operations", operation_count(t)},
          {"datastores", t.datastores.size()},
          {"routes", t.gateway.routes.size()},
          {"client_classes", t.workload.clients.size()},
          {"slos", t.slos.size()}};
}

void print_summary(const std::string& file, const Topology& t) {
  fmt::print("{}: valid topology/v1 \"{}\"\n", file, t.name);
  if (!t.description.empty()) fmt::print("  {}\n", t.description);
  fmt::print("  {} zones, {} hosts; {} services ({} instances, {} operations); {} datastores\n",
             t.zones.size(), host_count(t), t.services.size(), instance_count(t),
             operation_count(t), t.datastores.size());
  double total_rps = 0.0;
  for (const auto& c : t.workload.clients) {
    if (!c.rate.empty()) total_rps += c.rate.front().rps;
  }
  fmt::print("  gateway: {} routes; workload: {} client classes, {:.0f} req/s at start, {:g} s\n",
             t.gateway.routes.size(), t.workload.clients.size(), total_rps, t.workload.duration_s);
  fmt::print("  {} SLOs\n", t.slos.size());
}

std::string describe(const model::Distribution& d) {
  switch (d.kind) {
    case model::Distribution::Kind::constant:
      return fmt::format("{:g} ms", d.value_ms);
    case model::Distribution::Kind::exponential:
      return fmt::format("exp(mean {:g} ms)", d.mean_ms);
    case model::Distribution::Kind::lognormal:
      return fmt::format("lognormal(median {:g} ms, sigma {:g})", d.median_ms, d.sigma);
    case model::Distribution::Kind::empirical:
      return fmt::format("empirical({} buckets, mean {:.3g} ms)", d.buckets.size(), d.mean());
  }
  return "?";
}

std::string_view name_of(model::LoadBalancing lb) {
  switch (lb) {
    case model::LoadBalancing::round_robin:
      return "round_robin";
    case model::LoadBalancing::least_request:
      return "least_request";
    case model::LoadBalancing::power_of_two:
      return "power_of_two";
  }
  return "?";
}

void print_show(const Topology& t) {
  fmt::print("Topology \"{}\"\n\n", t.name);
  fmt::print("Zones and hosts\n");
  for (const auto& z : t.zones) {
    fmt::print("  {:<16} latency {:g} us, {:g} Mbit/s\n", z.name, z.network.latency_us,
               z.network.bandwidth_mbps);
    for (const auto& h : z.hosts) {
      fmt::print("    {:<20} {:>3} cores  speed {:g}\n", h.name, h.cores, h.speed);
    }
  }
  fmt::print("\nServices\n  {:<24} {:>8} {:>8} {:>6}  operations\n", "name", "replicas", "workers",
             "queue");
  for (const auto& s : t.services) {
    fmt::print("  {:<24} {:>8} {:>8} {:>6}  {}\n", s.name, s.replicas, s.workers, s.queue_capacity,
               s.operations.size());
  }
  fmt::print("\nOperations\n");
  for (const auto& s : t.services) {
    for (const auto& op : s.operations) {
      fmt::print("  {}.{}  cpu {}  errors {:g}\n", s.name, op.name, describe(op.cpu_ms),
                 op.error_rate);
      for (std::size_t i = 0; i < op.steps.size(); ++i) {
        const auto& step = op.steps[i];
        for (const auto& c : step.calls) {
          fmt::print("      {}{} -> {}.{}  x{:g}{}\n", step.parallel ? "|| " : "", i + 1, c.to,
                     c.operation, c.count,
                     c.probability < 1.0 ? fmt::format(" p={:g}", c.probability) : "");
        }
      }
    }
  }
  fmt::print("\nEdges (caller -> callee)\n  {:<34} {:>9} {:>7} {:>8} {:>6}  {}\n", "edge",
             "timeout", "retries", "breaker", "pool", "balancing");
  model::ServiceGraph graph = model::build_service_graph(t);
  for (const auto& e : model::edges_of(graph)) {
    const auto& p = t.policy(e.from, e.to);
    fmt::print("  {:<34} {:>7g}ms {:>7} {:>8} {:>6}  {}\n", fmt::format("{} -> {}", e.from, e.to),
               p.timeout_ms, p.retry.max_retries, p.breaker.enabled ? "on" : "off",
               p.pool.size > 0 ? std::to_string(p.pool.size) : std::string("-"),
               name_of(p.load_balancing));
  }
  if (!t.datastores.empty()) {
    fmt::print("\nDatastores\n");
    for (const auto& d : t.datastores) {
      fmt::print("  {:<20} {} replicas, max {} connections, {} queries\n", d.name,
                 d.replicas.size(), d.max_connections, d.queries.size());
      for (const auto& q : d.queries) {
        fmt::print("      {:<24} {:<5} {}\n", q.name,
                   q.type == model::QueryType::read ? "read" : "write", describe(q.cost_ms));
      }
    }
  }
  fmt::print("\nGateway routes (first match wins)\n");
  for (const auto& r : t.gateway.routes) {
    std::string match = r.method.value_or("*") + " ";
    if (r.path_regex)
      match += "~" + *r.path_regex;
    else
      match += r.path_prefix.value_or("") + "*";
    for (const auto& h : r.headers) match += fmt::format(" [{}~{}]", h.name, h.regex);
    fmt::print("  {:<20} {:<40} -> {}.{}\n", r.name, match, r.service, r.operation);
  }
  if (!t.slos.empty()) {
    fmt::print("\nSLOs\n");
    for (const auto& s : t.slos) {
      std::string bounds;
      for (const auto& l : s.latency)
        bounds += fmt::format(" p{:g}<={:g}ms", l.percentile, l.max_ms);
      if (s.max_error_rate) bounds += fmt::format(" errors<={:g}%", *s.max_error_rate * 100);
      fmt::print("  {:<20}{}\n", s.route, bounds);
    }
  }
}

}  // namespace

void add_topology_commands(CLI::App& app, Action& action) {
  auto* topo = app.add_subcommand("topology", "Inspect a topology/v1 file");
  topo->require_subcommand(1);

  struct Args {
    std::string file;
    bool json = false;
  };
  auto args = std::make_shared<Args>();

  auto* validate =
      topo->add_subcommand("validate", "Check a topology; print a summary or the errors");
  validate->add_option("FILE", args->file, "topology/v1 JSON file")->required();
  validate->add_flag("--json", args->json, "machine-readable summary");
  validate->callback([args, &action] {
    action = [args] {
      const Topology t = model::load_topology(args->file);
      if (args->json) {
        std::cout << summary_json(args->file, t).dump(2) << '\n';
      } else {
        print_summary(args->file, t);
      }
      return 0;
    };
  });

  auto* show =
      topo->add_subcommand("show", "Services, operations, edges, datastores, SLOs as tables");
  show->add_option("FILE", args->file, "topology/v1 JSON file")->required();
  show->add_flag("--json", args->json, "print the canonical topology/v1 JSON instead");
  show->callback([args, &action] {
    action = [args] {
      const Topology t = model::load_topology(args->file);
      if (args->json) {
        std::cout << model::topology_to_json(t).dump(2) << '\n';
      } else {
        print_show(t);
      }
      return 0;
    };
  });

  auto* dot = topo->add_subcommand("dot", "Graphviz DOT of the service graph");
  dot->add_option("FILE", args->file, "topology/v1 JSON file")->required();
  dot->callback([args, &action] {
    action = [args] {
      const Topology t = model::load_topology(args->file);
      model::write_dot(std::cout, model::build_service_graph(t));
      return 0;
    };
  });

  auto* platform = topo->add_subcommand(
      "platform", "The SimGrid platform XML equivalent to the one the twin builds in code");
  platform->add_option("FILE", args->file, "topology/v1 JSON file")->required();
  platform->callback([args, &action] {
    action = [args] {
      std::cout << twin::platform_xml(model::load_topology(args->file));
      return 0;
    };
  });
}

}  // namespace doppel::cli
