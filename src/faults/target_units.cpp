#include "faults/target_units.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "doppel/model/distribution.hpp"

namespace doppel::faults::detail {

std::vector<std::string> hosts_of_zone(const model::Topology& topology, std::string_view zone) {
  std::vector<std::string> hosts;
  if (const model::Zone* found = topology.find_zone(zone)) {
    for (const auto& host : found->hosts) hosts.push_back(host.name);
  }
  return hosts;
}

std::vector<std::string> all_host_names(const model::Topology& topology) {
  std::vector<std::string> hosts;
  for (const auto& zone : topology.zones) {
    for (const auto& host : zone.hosts) hosts.push_back(host.name);
  }
  return hosts;
}

std::string zone_of_host(const model::Topology& topology, std::string_view host) {
  for (const auto& zone : topology.zones) {
    for (const auto& candidate : zone.hosts) {
      if (candidate.name == host) return zone.name;
    }
  }
  return {};
}

namespace {

// Picks the host of a placement; `next_in_zone` counts the hostless placements already made
// in each zone by the same owner, for the round-robin.
std::string place(const model::Topology& topology, const model::Placement& placement,
                  std::map<std::string, int>& next_in_zone) {
  if (placement.host) return *placement.host;
  const auto hosts = hosts_of_zone(topology, placement.zone);
  if (hosts.empty()) return {};
  const int turn = next_in_zone[placement.zone]++;
  return hosts[static_cast<std::size_t>(turn) % hosts.size()];
}

}  // namespace

std::vector<InstanceUnit> all_instances(const model::Topology& topology) {
  std::vector<InstanceUnit> units;
  for (const auto& service : topology.services) {
    std::map<std::string, int> next_in_zone;
    for (int i = 0; i < service.replicas; ++i) {
      model::Placement placement;
      if (service.placement.empty()) {
        placement.zone = topology.zones.empty() ? std::string() : topology.zones.front().name;
      } else {
        placement = service.placement[static_cast<std::size_t>(i) % service.placement.size()];
      }
      units.push_back({service.name, i, placement.zone, place(topology, placement, next_in_zone)});
    }
  }
  return units;
}

std::vector<DatastoreNodeUnit> all_datastore_nodes(const model::Topology& topology) {
  std::vector<DatastoreNodeUnit> units;
  for (const auto& store : topology.datastores) {
    std::map<std::string, int> next_in_zone;
    units.push_back(
        {store.name, 0, store.primary.zone, place(topology, store.primary, next_in_zone)});
    for (std::size_t r = 0; r < store.replicas.size(); ++r) {
      units.push_back({store.name, static_cast<int>(r + 1), store.replicas[r].zone,
                       place(topology, store.replicas[r], next_in_zone)});
    }
  }
  return units;
}

std::size_t chosen_count(std::size_t n, const TargetSelector& target) {
  if (n == 0) return 0;
  switch (target.mode) {
    case TargetSelector::Mode::all:
      return n;
    case TargetSelector::Mode::one:
      return 1;
    case TargetSelector::Mode::count:
      return std::min(n, static_cast<std::size_t>(std::max(target.count, 1)));
    case TargetSelector::Mode::percent: {
      // Round up: "10% of 3 instances" means one, never none.
      const auto wanted = static_cast<std::size_t>(
          std::ceil(static_cast<double>(n) * target.percent / 100.0 - 1e-9));
      return std::clamp<std::size_t>(wanted, 1, n);
    }
  }
  return n;
}

std::vector<std::size_t> choose_indices(std::size_t n, const TargetSelector& target,
                                        std::uint64_t seed, std::string_view label) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  const std::size_t keep = chosen_count(n, target);
  if (keep < n) {
    // A partial Fisher-Yates shuffle on our own stream: the standard library's shuffle is not
    // the same on every implementation.
    auto rng = model::RandomStream::for_component(seed, 0, label);
    for (std::size_t i = 0; i < keep; ++i) {
      const std::size_t j = i + static_cast<std::size_t>(rng.below(n - i));
      std::swap(order[i], order[j]);
    }
    order.resize(keep);
    std::sort(order.begin(), order.end());
  }
  return order;
}

std::vector<InstanceUnit> instances_in_scope(const model::Topology& topology,
                                             const TargetSelector& target) {
  std::vector<InstanceUnit> scope;
  for (auto& unit : all_instances(topology)) {
    bool in_scope = false;
    switch (target.type) {
      case TargetSelector::Type::service:
        in_scope = unit.service == target.name;
        break;
      case TargetSelector::Type::instance:
        in_scope = unit.service == target.name && target.index && unit.index == *target.index;
        break;
      case TargetSelector::Type::host:
        in_scope = unit.host == target.name;
        break;
      case TargetSelector::Type::zone:
        in_scope = unit.zone == target.name;
        break;
      default:
        break;
    }
    if (in_scope) scope.push_back(std::move(unit));
  }
  return scope;
}

std::vector<std::string> hosts_in_scope(const model::Topology& topology,
                                        const TargetSelector& target) {
  switch (target.type) {
    case TargetSelector::Type::host:
      return {target.name};
    case TargetSelector::Type::zone:
      return hosts_of_zone(topology, target.name);
    case TargetSelector::Type::service:
    case TargetSelector::Type::instance: {
      // In file order of hosts, each once.
      std::vector<std::string> used;
      for (const auto& unit : instances_in_scope(topology, target)) used.push_back(unit.host);
      std::vector<std::string> hosts;
      for (const auto& host : all_host_names(topology)) {
        if (std::find(used.begin(), used.end(), host) != used.end()) hosts.push_back(host);
      }
      return hosts;
    }
    default:
      return {};
  }
}

}  // namespace doppel::faults::detail
