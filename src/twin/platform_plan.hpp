// The network and hosts a topology becomes, as plain data: the engine builds its SimGrid
// platform from this plan, platform_xml() prints it, and the latency network model reads
// its path latencies from it, so the three can not drift apart.
//
// Every host has one split-duplex link (its NIC) of half its zone's latency, so two hosts of
// a zone are one zone latency apart. Every pair of zones has one link, whose latency is the
// zones' latency minus the two half-NICs, so host-to-host latency between zones is exactly
// the topology's zone-link latency. All hosts sit in one SimGrid zone with an explicit route
// per host pair (route()): SimGrid 3.32 looks a comm's route up at every transfer, and a
// lookup across nested zones cost 2.6 times a lookup in one (docs/performance.md).
#pragma once

#include <string>
#include <vector>

#include "doppel/model/topology.hpp"

namespace doppel::twin::detail {

struct PlatformPlan {
  struct Link {
    std::string name;
    double bandwidth_bytes_per_s = 0.0;
    double latency_s = 0.0;
  };
  struct Host {
    std::string name;
    int zone = 0;
    double speed_flops = 1e9;
    int cores = 1;
    Link nic;
  };
  struct Zone {
    std::string name;
    std::vector<int> hosts;
  };
  struct ZoneRoute {
    int from = 0;
    int to = 0;
    Link link;
  };
  // One link of a host-to-host route: a host's NIC or a zone route's link, crossed in its
  // up (from the lower-numbered host or zone) or down direction.
  struct RouteLink {
    enum class Kind { nic, zone_link };
    Kind kind = Kind::nic;
    int index = 0;  // host index (nic) or zone_routes index (zone_link)
    bool up = true;
  };

  static constexpr double kReferenceFlops = 1e9;  // speed 1.0
  static constexpr const char* kRootZone = "doppel-root";

  std::vector<Zone> zones;
  std::vector<Host> hosts;
  std::vector<ZoneRoute> zone_routes;  // one per unordered pair, from < to

  int host_index(std::string_view name) const;  // -1 if unknown
  // End-to-end latency and bottleneck bandwidth between two hosts; same host: 0 and +inf
  // (a local call never touches the network).
  double path_latency_s(int from_host, int to_host) const;
  double path_bandwidth(int from_host, int to_host) const;
  // The links from one host to another (different hosts), in order: the sender's NIC up, the
  // zones' link if they differ, the receiver's NIC down.
  std::vector<RouteLink> route(int from_host, int to_host) const;
  const ZoneRoute& zone_route(int zone_a, int zone_b) const;
  ZoneRoute& zone_route(int zone_a, int zone_b);
};

// Throws InputError (labelled with the topology's name) for a zone link naming no zone.
PlatformPlan make_platform_plan(const model::Topology& topology);

std::string to_platform_xml(const PlatformPlan& plan);

}  // namespace doppel::twin::detail
