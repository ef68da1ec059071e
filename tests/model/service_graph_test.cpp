#include "doppel/model/service_graph.hpp"

#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "doppel/model/topology_loader.hpp"

namespace doppel::model {
namespace {

using Names = std::vector<std::string>;

Topology all_features() {
  return load_topology(std::filesystem::path(DOPPEL_SOURCE_DIR) /
                       "tests/data/topologies/all-features.json");
}

// a.x calls b.y and b.z calls a.w: no operation-level cycle, but a service-level one.
Topology mutual_services() {
  return parse_topology_text(R"({
    "doppel": "topology/v1", "name": "mutual",
    "zones": [{"name": "z", "hosts": [{"name": "h"}]}],
    "services": [
      {"name": "a", "placement": [{"zone": "z"}], "operations": [
        {"name": "x", "steps": [{"call": {"to": "b", "operation": "y"}}]},
        {"name": "w"}]},
      {"name": "b", "placement": [{"zone": "z"}], "operations": [
        {"name": "y"},
        {"name": "z", "steps": [{"call": {"to": "a", "operation": "w"}}]}]},
      {"name": "c", "placement": [{"zone": "z"}], "operations": [
        {"name": "v", "steps": [{"call": {"to": "a", "operation": "x"}}]}]}
    ]
  })",
                             "mutual.json");
}

TEST(ServiceGraph, VerticesAreServicesThenDatastores) {
  const ServiceGraph graph = build_service_graph(all_features());
  const auto& g = graph.graph();
  ASSERT_EQ(boost::num_vertices(g), 4u);
  EXPECT_EQ(g[0].name, "web");
  EXPECT_EQ(g[0].kind, ComponentKind::service);
  EXPECT_EQ(g[1].name, "api");
  EXPECT_EQ(g[2].name, "db");
  EXPECT_EQ(g[2].kind, ComponentKind::datastore);
  EXPECT_EQ(g[3].name, "sessions");
  EXPECT_EQ(graph.find("db"), 2u);
  EXPECT_FALSE(graph.find("nope").has_value());
  EXPECT_THROW(graph.vertex("nope"), std::invalid_argument);
}

TEST(ServiceGraph, EdgesAggregateCallsAndCarryPolicies) {
  const Topology topology = all_features();
  const auto edges = edges_of(build_service_graph(topology));
  ASSERT_EQ(edges.size(), 3u);

  EXPECT_EQ(edges[0].from, "web");
  EXPECT_EQ(edges[0].to, "api");
  // home calls api.list once and api.get 2.5 times on average.
  ASSERT_EQ(edges[0].callers.size(), 1u);
  EXPECT_EQ(edges[0].callers[0].operation, "home");
  EXPECT_DOUBLE_EQ(edges[0].callers[0].mean_calls, 3.5);
  EXPECT_DOUBLE_EQ(edges[0].mean_calls, 3.5);
  EXPECT_EQ(edges[0].policy, topology.edges[0]);

  EXPECT_EQ(edges[1].from, "web");
  EXPECT_EQ(edges[1].to, "sessions");
  EXPECT_DOUBLE_EQ(edges[1].mean_calls, 0.8);  // probability 0.8
  EXPECT_EQ(edges[1].policy, topology.edge_defaults);

  EXPECT_EQ(edges[2].from, "api");
  EXPECT_EQ(edges[2].to, "db");
  ASSERT_EQ(edges[2].callers.size(), 2u);
  EXPECT_EQ(edges[2].callers[0].operation, "list");
  EXPECT_DOUBLE_EQ(edges[2].callers[0].mean_calls, 1.0);
  EXPECT_EQ(edges[2].callers[1].operation, "get");
  EXPECT_DOUBLE_EQ(edges[2].callers[1].mean_calls, 0.1);
  EXPECT_DOUBLE_EQ(edges[2].mean_calls, 1.1);
  EXPECT_EQ(edges[2].policy, topology.edges[1]);
}

TEST(ServiceGraph, TopologicalOrderPutsCallersFirst) {
  const ServiceGraph graph = build_service_graph(all_features());
  const auto order = topological_order(graph);
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(*order, (Names{"web", "sessions", "api", "db"}));
  auto position = [&](const std::string& name) {
    return std::find(order->begin(), order->end(), name) - order->begin();
  };
  for (const auto& edge : edges_of(graph)) {
    EXPECT_LT(position(edge.from), position(edge.to)) << edge.from << " -> " << edge.to;
  }
  EXPECT_TRUE(find_cycle(graph).empty());
}

TEST(ServiceGraph, ServiceLevelCyclesAreFoundNotRejected) {
  const ServiceGraph graph = build_service_graph(mutual_services());
  EXPECT_FALSE(topological_order(graph).has_value());
  EXPECT_EQ(find_cycle(graph), (Names{"a", "b", "a"}));
}

TEST(ServiceGraph, ReachabilityGivesTheBlastRadius) {
  const ServiceGraph graph = build_service_graph(all_features());
  EXPECT_EQ(upstream_of(graph, "db"), (Names{"web", "api"}));
  EXPECT_EQ(upstream_of(graph, "sessions"), (Names{"web"}));
  EXPECT_EQ(upstream_of(graph, "web"), Names{});
  EXPECT_EQ(downstream_of(graph, "web"), (Names{"api", "db", "sessions"}));
  EXPECT_EQ(downstream_of(graph, "api"), (Names{"db"}));
  EXPECT_EQ(downstream_of(graph, "db"), Names{});
  EXPECT_THROW(upstream_of(graph, "dbb"), std::invalid_argument);
}

TEST(ServiceGraph, ReachabilityThroughACycleExcludesTheStart) {
  const ServiceGraph graph = build_service_graph(mutual_services());
  EXPECT_EQ(upstream_of(graph, "a"), (Names{"b", "c"}));
  EXPECT_EQ(downstream_of(graph, "a"), (Names{"b"}));
  EXPECT_EQ(downstream_of(graph, "c"), (Names{"a", "b"}));
}

TEST(ServiceGraph, RequestsReachTheRoutesAndWhatTheyCall) {
  EXPECT_EQ(reached_by_requests(all_features(), build_service_graph(all_features())),
            (Names{"web", "api", "db", "sessions"}));
  // No gateway: no client request reaches anything.
  const Topology mutual = mutual_services();
  EXPECT_EQ(reached_by_requests(mutual, build_service_graph(mutual)), Names{});
  // A route to a: b through a's call, never c, which only calls a.
  const Topology routed = parse_topology_text(R"({
    "doppel": "topology/v1", "name": "routed",
    "zones": [{"name": "z", "hosts": [{"name": "h"}]}],
    "services": [
      {"name": "c", "placement": [{"zone": "z"}], "operations": [
        {"name": "v", "steps": [{"call": {"to": "a", "operation": "x"}}]}]},
      {"name": "a", "placement": [{"zone": "z"}], "operations": [
        {"name": "x", "steps": [{"call": {"to": "b", "operation": "y"}}]}]},
      {"name": "b", "placement": [{"zone": "z"}], "operations": [{"name": "y"}]}
    ],
    "gateway": {"routes": [{"name": "r", "path_prefix": "/", "to": {"service": "a", "operation": "x"}}]}
  })",
                                              "routed.json");
  EXPECT_EQ(reached_by_requests(routed, build_service_graph(routed)), (Names{"a", "b"}));
}

TEST(ServiceGraph, DotOutputGolden) {
  std::ostringstream dot;
  write_dot(dot, build_service_graph(all_features()));
  EXPECT_EQ(dot.str(), R"(digraph G {
rankdir=LR;
node [fontname="Helvetica"];
edge [fontname="Helvetica", fontsize=10];
0[label="web", shape=box];
1[label="api", shape=box];
2[label="db", shape=cylinder];
3[label="sessions", shape=cylinder];
0->1 [label="home x3.5\ntimeout 300 ms, 2 retries, breaker, pool 64"];
0->3 [label="home x0.8\ntimeout 1000 ms, 1 retry"];
1->2 [label="list x1, get x0.1\ntimeout 500 ms, 1 retry, pool 10"];
}
)");
}

TEST(ServiceGraph, DotEscapesQuotesInNames) {
  Topology topology;
  topology.services.push_back(Service{});
  topology.services[0].name = "say \"hi\"";
  std::ostringstream dot;
  write_dot(dot, build_service_graph(topology));
  EXPECT_NE(dot.str().find(R"(0[label="say \"hi\"", shape=box];)"), std::string::npos) << dot.str();
}

}  // namespace
}  // namespace doppel::model
