// platform_xml() must describe the platform run_twin builds: SimGrid loads it, and its routes
// have the latencies the plan (and so the latency network model) uses.
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Host.hpp>
#include <simgrid/s4u/Link.hpp>

#include "doppel/model/topology_loader.hpp"
#include "doppel/twin/twin.hpp"

#include "twin/platform_plan.hpp"
#include "twin/sim_harness.hpp"

namespace doppel::twin::detail {
namespace {

TEST(PlatformXml, SimGridLoadsItWithThePlannedRouteLatencies) {
  const auto metrics = testing::run_isolated([] {
    const auto topology =
        model::load_topology(testing::source_path("tests/data/topologies/all-features.json"));
    const auto plan = make_platform_plan(topology);
    const std::string file = ::testing::TempDir() + "doppel-all-features-platform.xml";
    std::ofstream(file) << platform_xml(topology);
    int argc = 2;
    char arg0[] = "platform-test";
    char arg1[] = "--log=root.thresh:critical";
    char* argv[] = {arg0, arg1, nullptr};
    simgrid::s4u::Engine engine(&argc, argv);
    engine.load_platform(file);
    std::remove(file.c_str());
    testing::Metrics m;
    m["hosts"] = static_cast<double>(engine.get_host_count());
    double worst = 0;
    for (const auto& a : plan.hosts) {
      for (const auto& b : plan.hosts) {
        if (a.name == b.name) continue;
        std::vector<simgrid::s4u::Link*> links;
        double latency = 0;
        simgrid::s4u::Host::by_name(a.name)->route_to(simgrid::s4u::Host::by_name(b.name), links,
                                                      &latency);
        const double expected =
            plan.path_latency_s(plan.host_index(a.name), plan.host_index(b.name));
        worst = std::max(worst, std::abs(latency - expected));
      }
    }
    m["worst_latency_error_s"] = worst;
    m["a2_speed"] = simgrid::s4u::Host::by_name("a2")->get_speed();
    m["a2_cores"] = simgrid::s4u::Host::by_name("a2")->get_core_count();
    return m;
  });
  EXPECT_EQ(metrics.at("hosts"), 3);
  EXPECT_LT(metrics.at("worst_latency_error_s"), 1e-12);
  EXPECT_EQ(metrics.at("a2_speed"), 1.5e9);
  EXPECT_EQ(metrics.at("a2_cores"), 8);
}

}  // namespace
}  // namespace doppel::twin::detail
