// Where a topology's instances and datastore nodes run, and the deterministic choice of the
// units an injection hits. Shared by the scenario loader (which checks that a selector hits
// something) and apply_scenario (which acts on what it hits), so the two always agree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/topology.hpp"

namespace doppel::faults::detail {

struct InstanceUnit {
  std::string service;
  int index = 0;
  std::string zone;
  std::string host;
};

struct DatastoreNodeUnit {
  std::string datastore;
  int node = 0;  // 0: primary, 1..: replicas
  std::string zone;
  std::string host;
};

// Instance i of a service runs at placement[i % size]; without a host, the instances that
// share a zone take its hosts round-robin in instance order (docs/twin.md). Datastore nodes
// without a host take their zone's hosts round-robin in node order.
std::vector<InstanceUnit> all_instances(const model::Topology& topology);
std::vector<DatastoreNodeUnit> all_datastore_nodes(const model::Topology& topology);

// The hosts of a zone, in file order.
std::vector<std::string> hosts_of_zone(const model::Topology& topology, std::string_view zone);
std::vector<std::string> all_host_names(const model::Topology& topology);
std::string zone_of_host(const model::Topology& topology, std::string_view host);

// Keeps the units the selector's mode asks for: all, or a seeded choice of one, N or P% of
// them (at least one), returned in their original order. `label` keys the random stream so
// each injection draws independently of the others.
template <typename Unit>
std::vector<Unit> choose_units(std::vector<Unit> units, const TargetSelector& target,
                               std::uint64_t seed, std::string_view label);

// The number of units a mode keeps out of n (n > 0).
std::size_t chosen_count(std::size_t n, const TargetSelector& target);
// Indices [0, n) chosen by the mode, ascending.
std::vector<std::size_t> choose_indices(std::size_t n, const TargetSelector& target,
                                        std::uint64_t seed, std::string_view label);

template <typename Unit>
std::vector<Unit> choose_units(std::vector<Unit> units, const TargetSelector& target,
                               std::uint64_t seed, std::string_view label) {
  std::vector<Unit> chosen;
  for (std::size_t i : choose_indices(units.size(), target, seed, label)) {
    chosen.push_back(std::move(units[i]));
  }
  return chosen;
}

// The instances a selector covers before the mode is applied: a service's, one instance,
// those on a host or in a zone.
std::vector<InstanceUnit> instances_in_scope(const model::Topology& topology,
                                             const TargetSelector& target);
// The hosts a selector covers: one host, a zone's, or those running a service's instances.
std::vector<std::string> hosts_in_scope(const model::Topology& topology,
                                        const TargetSelector& target);

}  // namespace doppel::faults::detail
