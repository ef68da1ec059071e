#include "twin/simgrid_platform.hpp"

#include <simgrid/s4u/NetZone.hpp>

namespace doppel::twin::detail {

namespace sg = simgrid::s4u;

SimGridPlatform build_simgrid_platform(const PlatformPlan& plan) {
  // One zone with every host and a route per host pair, not a zone per topology zone: SimGrid
  // 3.32 looks a comm's route (and, for the reverse path's share, its way back) up at every
  // transfer; across nested zones those lookups took 19% of a flow run's instructions, in
  // one zone 8% (docs/performance.md). The routes hold the same links in the same order.
  SimGridPlatform built;
  auto* root = sg::create_full_zone(PlatformPlan::kRootZone);
  built.hosts.resize(plan.hosts.size());
  for (const auto& zone : plan.zones) {
    for (int h : zone.hosts) {
      const auto& planned = plan.hosts[static_cast<std::size_t>(h)];
      auto* host = root->create_host(planned.name, planned.speed_flops);
      host->set_core_count(planned.cores);
      host->set_property("zone", zone.name);
      built.hosts[static_cast<std::size_t>(h)] = host;
    }
  }
  for (const auto& host : plan.hosts) {
    auto* nic = root->create_split_duplex_link(host.nic.name, host.nic.bandwidth_bytes_per_s);
    nic->set_latency(host.nic.latency_s);
    built.nics.push_back(nic);
  }
  for (const auto& route : plan.zone_routes) {
    auto* link = root->create_split_duplex_link(route.link.name, route.link.bandwidth_bytes_per_s);
    link->set_latency(route.link.latency_s);
    built.zone_links.push_back(link);
  }
  for (std::size_t a = 0; a < plan.hosts.size(); ++a) {
    for (std::size_t b = a + 1; b < plan.hosts.size(); ++b) {
      std::vector<sg::LinkInRoute> links;
      for (const auto& hop : plan.route(static_cast<int>(a), static_cast<int>(b))) {
        const auto i = static_cast<std::size_t>(hop.index);
        sg::Link* link =
            hop.kind == PlatformPlan::RouteLink::Kind::nic ? built.nics[i] : built.zone_links[i];
        links.emplace_back(
            link, hop.up ? sg::LinkInRoute::Direction::UP : sg::LinkInRoute::Direction::DOWN);
      }
      root->add_route(built.hosts[a]->get_netpoint(), built.hosts[b]->get_netpoint(), nullptr,
                      nullptr, links, true);
    }
  }
  root->seal();
  return built;
}

}  // namespace doppel::twin::detail
