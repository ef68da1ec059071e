// The SimGrid platform a PlatformPlan describes, built in code: the engine and the bare-s4u
// benchmark run on the same one. Private to src/twin (and tools/bench): it includes SimGrid.
#pragma once

#include <vector>

#include <simgrid/s4u/Host.hpp>
#include <simgrid/s4u/Link.hpp>

#include "twin/platform_plan.hpp"

namespace doppel::twin::detail {

struct SimGridPlatform {
  std::vector<simgrid::s4u::Host*> hosts;       // by plan host index
  std::vector<simgrid::s4u::Link*> nics;        // by plan host index
  std::vector<simgrid::s4u::Link*> zone_links;  // by plan zone route index
};

// Needs a SimGrid engine and `network/model` already set; seals the platform.
SimGridPlatform build_simgrid_platform(const PlatformPlan& plan);

}  // namespace doppel::twin::detail
