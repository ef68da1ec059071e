#include "twin/platform_plan.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "doppel/model/input_error.hpp"
#include "doppel/twin/twin.hpp"

namespace doppel::twin::detail {

namespace {
double bytes_per_s(double mbps) {
  return mbps * 1e6 / 8.0;
}

int zone_index(const model::Topology& topology, std::string_view name, const std::string& where) {
  for (std::size_t i = 0; i < topology.zones.size(); ++i) {
    if (topology.zones[i].name == name) return static_cast<int>(i);
  }
  throw InputError(topology.name, InputLocation{where, {}, {}, {}},
                   fmt::format("unknown zone '{}'", name));
}

// XML attribute values: names come from users' files.
std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string link_xml(const PlatformPlan::Link& link, std::string_view indent) {
  return fmt::format(
      "{}<link id=\"{}\" bandwidth=\"{}Bps\" latency=\"{}s\" "
      "sharing_policy=\"SPLITDUPLEX\"/>\n",
      indent, escape(link.name), link.bandwidth_bytes_per_s, link.latency_s);
}
}  // namespace

PlatformPlan make_platform_plan(const model::Topology& topology) {
  PlatformPlan plan;
  for (std::size_t z = 0; z < topology.zones.size(); ++z) {
    const auto& zone = topology.zones[z];
    PlatformPlan::Zone planned{zone.name, {}};
    for (const auto& host : zone.hosts) {
      planned.hosts.push_back(static_cast<int>(plan.hosts.size()));
      plan.hosts.push_back({host.name,
                            static_cast<int>(z),
                            host.speed * PlatformPlan::kReferenceFlops,
                            std::max(1, host.cores),
                            {host.name + "_nic", bytes_per_s(zone.network.bandwidth_mbps),
                             zone.network.latency_us / 2e6}});
    }
    plan.zones.push_back(std::move(planned));
  }
  for (std::size_t a = 0; a < topology.zones.size(); ++a) {
    for (std::size_t b = a + 1; b < topology.zones.size(); ++b) {
      plan.zone_routes.push_back(
          {static_cast<int>(a),
           static_cast<int>(b),
           {fmt::format("{}--{}", topology.zones[a].name, topology.zones[b].name),
            bytes_per_s(topology.default_zone_link.bandwidth_mbps),
            topology.default_zone_link.latency_us / 1e6}});
    }
  }
  for (std::size_t i = 0; i < topology.zone_links.size(); ++i) {
    const auto& zl = topology.zone_links[i];
    const auto where = fmt::format("/network/zone_links/{}", i);
    const int a = zone_index(topology, zl.from, where + "/from");
    const int b = zone_index(topology, zl.to, where + "/to");
    if (a == b) continue;
    auto& route = plan.zone_route(a, b);
    route.link.bandwidth_bytes_per_s = bytes_per_s(zl.network.bandwidth_mbps);
    route.link.latency_s = zl.network.latency_us / 1e6;
  }
  // The NICs at both ends already carry half their zone's latency.
  for (auto& route : plan.zone_routes) {
    const double half_nics = (topology.zones[route.from].network.latency_us +
                              topology.zones[route.to].network.latency_us) *
                             1e-6 / 2;
    route.link.latency_s = std::max(0.0, route.link.latency_s - half_nics);
  }
  return plan;
}

int PlatformPlan::host_index(std::string_view name) const {
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

const PlatformPlan::ZoneRoute& PlatformPlan::zone_route(int zone_a, int zone_b) const {
  const int lo = std::min(zone_a, zone_b);
  const int hi = std::max(zone_a, zone_b);
  for (const auto& r : zone_routes) {
    if (r.from == lo && r.to == hi) return r;
  }
  throw std::out_of_range("no route between zones");
}

PlatformPlan::ZoneRoute& PlatformPlan::zone_route(int zone_a, int zone_b) {
  return const_cast<ZoneRoute&>(std::as_const(*this).zone_route(zone_a, zone_b));
}

std::vector<PlatformPlan::RouteLink> PlatformPlan::route(int from_host, int to_host) const {
  using Kind = RouteLink::Kind;
  const int from_zone = hosts[from_host].zone;
  const int to_zone = hosts[to_host].zone;
  std::vector<RouteLink> links{{Kind::nic, from_host, true}};
  if (from_zone != to_zone) {
    const auto& link = zone_route(from_zone, to_zone);
    links.push_back(
        {Kind::zone_link, static_cast<int>(&link - zone_routes.data()), from_zone < to_zone});
  }
  links.push_back({Kind::nic, to_host, false});
  return links;
}

double PlatformPlan::path_latency_s(int from_host, int to_host) const {
  if (from_host == to_host) return 0.0;
  const auto& a = hosts[from_host];
  const auto& b = hosts[to_host];
  const double nics = a.nic.latency_s + b.nic.latency_s;
  if (a.zone == b.zone) return nics;
  return nics + zone_route(a.zone, b.zone).link.latency_s;
}

double PlatformPlan::path_bandwidth(int from_host, int to_host) const {
  if (from_host == to_host) return std::numeric_limits<double>::infinity();
  const auto& a = hosts[from_host];
  const auto& b = hosts[to_host];
  double bw = std::min(a.nic.bandwidth_bytes_per_s, b.nic.bandwidth_bytes_per_s);
  if (a.zone != b.zone) bw = std::min(bw, zone_route(a.zone, b.zone).link.bandwidth_bytes_per_s);
  return bw;
}

std::string to_platform_xml(const PlatformPlan& plan) {
  std::string xml =
      "<?xml version='1.0'?>\n"
      "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
      "<platform version=\"4.1\">\n"
      "  <!-- Doppel runs it with network/model:CM02 (no latency or bandwidth factors). -->\n"
      "  <!-- One zone with a route per host pair; each host's topology zone is its \"zone\"\n"
      "       property, and routes between zones cross the zones' link. -->\n";
  xml += fmt::format("  <zone id=\"{}\" routing=\"Full\">\n", PlatformPlan::kRootZone);
  for (const auto& zone : plan.zones) {
    for (int h : zone.hosts) {
      const auto& host = plan.hosts[h];
      xml += fmt::format(
          "    <host id=\"{}\" speed=\"{}f\" core=\"{}\"><prop id=\"zone\" "
          "value=\"{}\"/></host>\n",
          escape(host.name), host.speed_flops, host.cores, escape(zone.name));
    }
  }
  for (const auto& host : plan.hosts) xml += link_xml(host.nic, "    ");
  for (const auto& route : plan.zone_routes) xml += link_xml(route.link, "    ");
  for (std::size_t a = 0; a < plan.hosts.size(); ++a) {
    for (std::size_t b = a + 1; b < plan.hosts.size(); ++b) {
      xml += fmt::format("    <route src=\"{}\" dst=\"{}\">", escape(plan.hosts[a].name),
                         escape(plan.hosts[b].name));
      for (const auto& hop : plan.route(static_cast<int>(a), static_cast<int>(b))) {
        const auto& link = hop.kind == PlatformPlan::RouteLink::Kind::nic
                               ? plan.hosts[hop.index].nic
                               : plan.zone_routes[hop.index].link;
        xml += fmt::format("<link_ctn id=\"{}\" direction=\"{}\"/>", escape(link.name),
                           hop.up ? "UP" : "DOWN");
      }
      xml += "</route>\n";
    }
  }
  xml += "  </zone>\n</platform>\n";
  return xml;
}

}  // namespace doppel::twin::detail

namespace doppel::twin {
std::string platform_xml(const model::Topology& topology) {
  return detail::to_platform_xml(detail::make_platform_plan(topology));
}
}  // namespace doppel::twin
