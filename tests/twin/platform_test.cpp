// The platform plan and its XML: pure data, no SimGrid run needed.
#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"
#include "doppel/twin/twin.hpp"

#include "twin/platform_plan.hpp"
#include "twin/sim_harness.hpp"

namespace doppel::twin::detail {
namespace {

model::Topology all_features() {
  return model::load_topology(testing::source_path("tests/data/topologies/all-features.json"));
}

TEST(PlatformPlan, PathLatenciesMatchTheTopology) {
  const auto topology = all_features();
  const auto plan = make_platform_plan(topology);
  const int a1 = plan.host_index("a1");
  const int a2 = plan.host_index("a2");
  const int b1 = plan.host_index("b1");
  ASSERT_GE(a1, 0);
  ASSERT_GE(b1, 0);
  EXPECT_DOUBLE_EQ(plan.path_latency_s(a1, a1), 0.0);
  EXPECT_NEAR(plan.path_latency_s(a1, a2), 50e-6, 1e-12);    // zone-a latency
  EXPECT_NEAR(plan.path_latency_s(a2, b1), 2000e-6, 1e-12);  // the explicit zone link
  EXPECT_NEAR(plan.path_latency_s(b1, a1), 2000e-6, 1e-12);
  EXPECT_DOUBLE_EQ(plan.path_bandwidth(a1, a2), 10000e6 / 8);
  EXPECT_DOUBLE_EQ(plan.path_bandwidth(a1, b1), 500e6 / 8);  // the zone link is the bottleneck
  EXPECT_DOUBLE_EQ(plan.hosts[a2].speed_flops, 1.5e9);
  EXPECT_EQ(plan.hosts[a2].cores, 8);
}

TEST(PlatformPlan, UnknownZoneInAZoneLinkIsAnInputError) {
  auto topology = all_features();
  topology.zone_links[0].to = "zone-z";
  EXPECT_THROW(make_platform_plan(topology), InputError);
}

TEST(PlatformXml, DescribesHostsLinksAndRoutes) {
  const auto xml = platform_xml(all_features());
  EXPECT_NE(xml.find("<platform version=\"4.1\">"), std::string::npos);
  EXPECT_NE(xml.find("<zone id=\"doppel-root\" routing=\"Full\">"), std::string::npos);
  EXPECT_NE(xml.find("<host id=\"a2\" speed=\"1500000000f\" core=\"8\"><prop id=\"zone\" "
                     "value=\"zone-a\"/></host>"),
            std::string::npos);
  EXPECT_NE(xml.find("<link id=\"a1_nic\" bandwidth=\"1250000000Bps\" latency=\"2.5e-05s\""),
            std::string::npos);
  // Within a zone: the two NICs; across zones: the zones' link between them.
  EXPECT_NE(xml.find("<route src=\"a1\" dst=\"a2\"><link_ctn id=\"a1_nic\" direction=\"UP\"/>"
                     "<link_ctn id=\"a2_nic\" direction=\"DOWN\"/></route>"),
            std::string::npos);
  EXPECT_NE(xml.find("<route src=\"a2\" dst=\"b1\"><link_ctn id=\"a2_nic\" direction=\"UP\"/>"
                     "<link_ctn id=\"zone-a--zone-b\" direction=\"UP\"/>"
                     "<link_ctn id=\"b1_nic\" direction=\"DOWN\"/></route>"),
            std::string::npos);
  EXPECT_EQ(xml.find("<host id=\"b1\"", xml.find("<host id=\"b1\"") + 1),
            std::string::npos);  // b1 is declared once
  EXPECT_TRUE(xml.ends_with("</platform>\n"));
}

TEST(PlatformPlan, ARouteCrossesTheSendersNicTheZonesLinkAndTheReceiversNic) {
  const auto plan = make_platform_plan(all_features());
  using Kind = PlatformPlan::RouteLink::Kind;
  const int a1 = plan.host_index("a1");
  const int b1 = plan.host_index("b1");
  const auto there = plan.route(a1, b1);
  ASSERT_EQ(there.size(), 3u);
  EXPECT_TRUE(there[0].kind == Kind::nic && there[0].index == a1 && there[0].up);
  EXPECT_TRUE(there[1].kind == Kind::zone_link && there[1].up);
  EXPECT_TRUE(there[2].kind == Kind::nic && there[2].index == b1 && !there[2].up);
  const auto back = plan.route(b1, a1);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_TRUE(back[1].kind == Kind::zone_link && !back[1].up);
  EXPECT_EQ(plan.route(a1, plan.host_index("a2")).size(), 2u);
}

}  // namespace
}  // namespace doppel::twin::detail
