// The baseline the twin's speed is compared with (bare_s4u.cpp).
#pragma once

#include <cstdint>

#include "doppel/model/topology.hpp"

namespace doppel::bench {

struct BareStats {
  std::uint64_t hops = 0;
  double wall_s = 0.0;
};

// Runs in this process's SimGrid engine: once per process, like run_twin.
BareStats run_bare(const model::Topology& topology, bool flow_network, double duration_s);

}  // namespace doppel::bench
