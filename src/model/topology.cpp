#include "doppel/model/topology.hpp"

#include <algorithm>

namespace doppel::model {

namespace {
template <typename T>
const T* find_named(const std::vector<T>& items, std::string_view name) {
  auto it = std::find_if(items.begin(), items.end(), [&](const T& x) { return x.name == name; });
  return it == items.end() ? nullptr : &*it;
}
}  // namespace

const Service* Topology::find_service(std::string_view name) const {
  return find_named(services, name);
}
const Datastore* Topology::find_datastore(std::string_view name) const {
  return find_named(datastores, name);
}
const Zone* Topology::find_zone(std::string_view name) const {
  return find_named(zones, name);
}
const Route* Topology::find_route(std::string_view name) const {
  return find_named(gateway.routes, name);
}

const EdgePolicy& Topology::policy(std::string_view from, std::string_view to) const {
  auto it = std::find_if(edges.begin(), edges.end(),
                         [&](const EdgePolicy& e) { return e.from == from && e.to == to; });
  return it == edges.end() ? edge_defaults : *it;
}

}  // namespace doppel::model
