#include "doppel/model/topology_loader.hpp"

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"

namespace doppel::model {
namespace {

const std::filesystem::path kAllFeatures =
    std::filesystem::path(DOPPEL_SOURCE_DIR) / "tests/data/topologies/all-features.json";

TEST(TopologyLoader, AllFeaturesZonesAndNetwork) {
  const Topology t = load_topology(kAllFeatures);
  EXPECT_EQ(t.name, "all-features");
  EXPECT_EQ(t.description,
            "A small topology that uses every field of topology/v1 once; the format's reference "
            "example.");
  ASSERT_EQ(t.zones.size(), 2u);
  EXPECT_EQ(t.zones[0].name, "zone-a");
  EXPECT_DOUBLE_EQ(t.zones[0].network.latency_us, 50.0);
  EXPECT_DOUBLE_EQ(t.zones[0].network.bandwidth_mbps, 10000.0);
  ASSERT_EQ(t.zones[0].hosts.size(), 2u);
  EXPECT_EQ(t.zones[0].hosts[1].name, "a2");
  EXPECT_EQ(t.zones[0].hosts[1].cores, 8);
  EXPECT_DOUBLE_EQ(t.zones[0].hosts[1].speed, 1.5);
  EXPECT_EQ(t.zones[1].name, "zone-b");
  EXPECT_DOUBLE_EQ(t.zones[1].network.latency_us, 60.0);
  ASSERT_EQ(t.zones[1].hosts.size(), 1u);
  EXPECT_EQ(t.zones[1].hosts[0].name, "b1");
  EXPECT_EQ(t.zones[1].hosts[0].cores, 4);
  EXPECT_DOUBLE_EQ(t.default_zone_link.latency_us, 1000.0);
  EXPECT_DOUBLE_EQ(t.default_zone_link.bandwidth_mbps, 1000.0);
  ASSERT_EQ(t.zone_links.size(), 1u);
  EXPECT_EQ(t.zone_links[0].from, "zone-a");
  EXPECT_EQ(t.zone_links[0].to, "zone-b");
  EXPECT_DOUBLE_EQ(t.zone_links[0].network.latency_us, 2000.0);
  EXPECT_DOUBLE_EQ(t.zone_links[0].network.bandwidth_mbps, 500.0);
}

TEST(TopologyLoader, AllFeaturesServices) {
  const Topology t = load_topology(kAllFeatures);
  ASSERT_EQ(t.services.size(), 2u);
  const Service& web = t.services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.replicas, 2);
  ASSERT_EQ(web.placement.size(), 2u);
  EXPECT_EQ(web.placement[0].zone, "zone-a");
  EXPECT_FALSE(web.placement[0].host.has_value());
  EXPECT_EQ(web.placement[1].zone, "zone-b");
  EXPECT_EQ(web.placement[1].host, "b1");
  EXPECT_EQ(web.workers, 32);
  EXPECT_EQ(web.queue_capacity, 128);
  EXPECT_DOUBLE_EQ(web.memory.base_mb, 128.0);
  EXPECT_DOUBLE_EQ(web.memory.per_request_kb, 64.0);
  ASSERT_EQ(web.operations.size(), 1u);
  const Operation& home = web.operations[0];
  EXPECT_EQ(home.name, "home");
  EXPECT_EQ(home.cpu_ms, Distribution::lognormal(2.0, 0.4));
  EXPECT_DOUBLE_EQ(home.error_rate, 0.001);
  ASSERT_EQ(home.steps.size(), 2u);
  EXPECT_FALSE(home.steps[0].parallel);
  ASSERT_EQ(home.steps[0].calls.size(), 1u);
  const Call& list = home.steps[0].calls[0];
  EXPECT_EQ(list.to, "api");
  EXPECT_EQ(list.operation, "list");
  EXPECT_DOUBLE_EQ(list.count, 1.0);  // defaults
  EXPECT_DOUBLE_EQ(list.probability, 1.0);
  EXPECT_EQ(list.request_bytes, 512);
  EXPECT_EQ(list.response_bytes, 2048);
  EXPECT_TRUE(home.steps[1].parallel);
  ASSERT_EQ(home.steps[1].calls.size(), 2u);
  const Call& get = home.steps[1].calls[0];
  EXPECT_EQ(get.to, "api");
  EXPECT_EQ(get.operation, "get");
  EXPECT_DOUBLE_EQ(get.count, 2.5);
  EXPECT_EQ(get.request_bytes, 200);
  EXPECT_EQ(get.response_bytes, 4000);
  const Call& session = home.steps[1].calls[1];
  EXPECT_EQ(session.to, "sessions");
  EXPECT_EQ(session.operation, "get");
  EXPECT_DOUBLE_EQ(session.probability, 0.8);

  const Service& api = t.services[1];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.replicas, 3);
  EXPECT_EQ(api.workers, 16);
  EXPECT_EQ(api.queue_capacity, 64);
  EXPECT_EQ(api.memory, MemoryModel{});  // omitted: defaults 64 MB + 64 KB per request
  ASSERT_EQ(api.operations.size(), 2u);
  EXPECT_EQ(api.operations[0].cpu_ms, Distribution::exponential(1.5));
  EXPECT_DOUBLE_EQ(api.operations[0].error_rate, 0.0);
  EXPECT_EQ(api.operations[1].cpu_ms,
            Distribution::empirical({{0.5, 10.0}, {1.0, 60.0}, {4.0, 30.0}}));
  ASSERT_EQ(api.operations[1].steps.size(), 1u);
  EXPECT_EQ(api.operations[1].steps[0].calls[0].to, "db");
  EXPECT_EQ(api.operations[1].steps[0].calls[0].operation, "update_item");
  EXPECT_DOUBLE_EQ(api.operations[1].steps[0].calls[0].probability, 0.1);
}

TEST(TopologyLoader, AllFeaturesEdgesInheritDefaults) {
  const Topology t = load_topology(kAllFeatures);
  const EdgePolicy& d = t.edge_defaults;
  EXPECT_EQ(d.from, "*");
  EXPECT_EQ(d.to, "*");
  EXPECT_DOUBLE_EQ(d.timeout_ms, 1000.0);
  EXPECT_EQ(d.retry.max_retries, 1);
  EXPECT_DOUBLE_EQ(d.retry.backoff_base_ms, 25.0);
  EXPECT_DOUBLE_EQ(d.retry.backoff_cap_ms, 250.0);
  EXPECT_EQ(d.retry.jitter, JitterKind::full);
  EXPECT_DOUBLE_EQ(d.retry.budget_ratio, 0.0);
  EXPECT_FALSE(d.breaker.enabled);
  EXPECT_EQ(d.load_balancing, LoadBalancing::round_robin);
  EXPECT_EQ(d.pool.size, 0);

  ASSERT_EQ(t.edges.size(), 2u);
  const EdgePolicy& web_api = t.edges[0];
  EXPECT_EQ(web_api.from, "web");
  EXPECT_EQ(web_api.to, "api");
  EXPECT_DOUBLE_EQ(web_api.timeout_ms, 300.0);
  EXPECT_EQ(web_api.retry.max_retries, 2);
  EXPECT_DOUBLE_EQ(web_api.retry.backoff_cap_ms, 200.0);
  EXPECT_EQ(web_api.retry.jitter, JitterKind::equal);
  EXPECT_DOUBLE_EQ(web_api.retry.budget_ratio, 0.2);
  EXPECT_TRUE(web_api.breaker.enabled);
  EXPECT_DOUBLE_EQ(web_api.breaker.error_threshold, 0.5);
  EXPECT_EQ(web_api.breaker.min_requests, 20);
  EXPECT_DOUBLE_EQ(web_api.breaker.window_s, 10.0);
  EXPECT_DOUBLE_EQ(web_api.breaker.open_s, 5.0);
  EXPECT_EQ(web_api.breaker.half_open_probes, 1);
  EXPECT_EQ(web_api.load_balancing, LoadBalancing::least_request);
  EXPECT_EQ(web_api.pool.size, 64);
  EXPECT_DOUBLE_EQ(web_api.pool.acquire_timeout_ms, 100.0);

  // api -> db sets no retries: it inherits edge_defaults' retry policy, field by field.
  const EdgePolicy& api_db = t.edges[1];
  EXPECT_DOUBLE_EQ(api_db.timeout_ms, 500.0);
  EXPECT_EQ(api_db.retry, d.retry);
  EXPECT_FALSE(api_db.breaker.enabled);
  EXPECT_EQ(api_db.load_balancing, LoadBalancing::power_of_two);
  EXPECT_EQ(api_db.pool.size, 10);
  EXPECT_DOUBLE_EQ(api_db.pool.acquire_timeout_ms, 250.0);

  EXPECT_EQ(&t.policy("web", "api"), &t.edges[0]);
  EXPECT_EQ(&t.policy("web", "sessions"), &t.edge_defaults);
}

TEST(TopologyLoader, AllFeaturesDatastores) {
  const Topology t = load_topology(kAllFeatures);
  ASSERT_EQ(t.datastores.size(), 2u);
  const Datastore& db = t.datastores[0];
  EXPECT_EQ(db.name, "db");
  EXPECT_EQ(db.kind, DatastoreKind::sql);
  EXPECT_EQ(db.consistency, Consistency::read_your_writes);
  EXPECT_EQ(db.primary.zone, "zone-a");
  EXPECT_EQ(db.primary.host, "a2");
  ASSERT_EQ(db.replicas.size(), 1u);
  EXPECT_EQ(db.replicas[0].zone, "zone-b");
  EXPECT_FALSE(db.replicas[0].host.has_value());
  EXPECT_EQ(db.replication_lag_ms, Distribution::exponential(5.0));
  EXPECT_EQ(db.max_connections, 100);
  EXPECT_EQ(db.workers, 8);
  EXPECT_EQ(db.key_space, 1000);
  ASSERT_EQ(db.queries.size(), 2u);
  EXPECT_EQ(db.queries[0].name, "select_items");
  EXPECT_EQ(db.queries[0].type, QueryType::read);
  EXPECT_EQ(db.queries[0].cost_ms, Distribution::lognormal(1.2, 0.3));
  EXPECT_EQ(db.queries[1].name, "update_item");
  EXPECT_EQ(db.queries[1].type, QueryType::write);
  EXPECT_EQ(db.queries[1].cost_ms, Distribution::constant(2.0));

  const Datastore& sessions = t.datastores[1];
  EXPECT_EQ(sessions.kind, DatastoreKind::cache);
  EXPECT_EQ(sessions.consistency, Consistency::strong);
  EXPECT_TRUE(sessions.replicas.empty());
  EXPECT_EQ(sessions.replication_lag_ms, Distribution::constant(0.0));
  ASSERT_EQ(sessions.queries.size(), 1u);
  EXPECT_EQ(sessions.queries[0].cost_ms, Distribution::constant(0.2));
}

TEST(TopologyLoader, AllFeaturesGatewayWorkloadSlos) {
  const Topology t = load_topology(kAllFeatures);
  const Gateway& g = t.gateway;
  EXPECT_DOUBLE_EQ(g.latency_ms, 0.5);
  ASSERT_EQ(g.routes.size(), 2u);
  EXPECT_EQ(g.routes[0].name, "home-mobile");
  EXPECT_EQ(g.routes[0].method, "GET");
  EXPECT_EQ(g.routes[0].path_regex, "/(index\\.html)?");
  EXPECT_FALSE(g.routes[0].path_prefix.has_value());
  ASSERT_EQ(g.routes[0].headers.size(), 1u);
  EXPECT_EQ(g.routes[0].headers[0].name, "user-agent");
  EXPECT_EQ(g.routes[0].headers[0].regex, ".*(Android|iPhone).*");
  EXPECT_EQ(g.routes[0].service, "web");
  EXPECT_EQ(g.routes[0].operation, "home");
  EXPECT_EQ(g.routes[1].name, "home");
  EXPECT_EQ(g.routes[1].path_prefix, "/");
  EXPECT_TRUE(g.routes[1].headers.empty());
  EXPECT_EQ(g.default_service, "web");
  EXPECT_EQ(g.default_operation, "home");

  const Workload& w = t.workload;
  EXPECT_DOUBLE_EQ(w.duration_s, 60.0);
  ASSERT_EQ(w.clients.size(), 2u);
  const ClientClass& browser = w.clients[0];
  EXPECT_EQ(browser.name, "browser");
  EXPECT_EQ(browser.zone, "zone-a");
  EXPECT_EQ(browser.headers.at("user-agent"), "Mozilla/5.0 (X11; Linux x86_64)");
  ASSERT_EQ(browser.rate.size(), 2u);
  EXPECT_DOUBLE_EQ(browser.rate[1].at_s, 30.0);
  EXPECT_DOUBLE_EQ(browser.rate[1].rps, 100.0);
  ASSERT_EQ(browser.mix.size(), 1u);
  EXPECT_EQ(browser.mix[0].method, "GET");
  EXPECT_EQ(browser.mix[0].path, "/");
  const ClientClass& mobile = w.clients[1];
  EXPECT_EQ(mobile.zone, "");         // enters at the first zone
  ASSERT_EQ(mobile.rate.size(), 1u);  // a number is a constant rate from time 0
  EXPECT_DOUBLE_EQ(mobile.rate[0].at_s, 0.0);
  EXPECT_DOUBLE_EQ(mobile.rate[0].rps, 20.0);
  ASSERT_EQ(mobile.mix.size(), 2u);
  EXPECT_EQ(mobile.mix[0].path, "/index.html");
  EXPECT_DOUBLE_EQ(mobile.mix[0].weight, 3.0);

  ASSERT_EQ(t.slos.size(), 2u);
  EXPECT_EQ(t.slos[0].route, "home");
  ASSERT_EQ(t.slos[0].latency.size(), 2u);
  EXPECT_DOUBLE_EQ(t.slos[0].latency[0].percentile, 50.0);
  EXPECT_DOUBLE_EQ(t.slos[0].latency[0].max_ms, 50.0);
  EXPECT_EQ(t.slos[0].max_error_rate, 0.01);
  EXPECT_EQ(t.slos[1].route, "home-mobile");
  EXPECT_FALSE(t.slos[1].max_error_rate.has_value());
}

TEST(TopologyLoader, AllFeaturesHasNoWarnings) {
  std::vector<std::string> warnings;
  load_topology(kAllFeatures, &warnings);
  EXPECT_EQ(warnings, std::vector<std::string>{});
}

TEST(TopologyLoader, RoundTripGivesAnEqualModel) {
  const Topology original = load_topology(kAllFeatures);
  const nlohmann::json canonical = topology_to_json(original);
  const Topology reloaded = parse_topology(canonical, "canonical");
  EXPECT_EQ(reloaded, original);
  // Canonical means a fixed point: writing the reloaded model gives the same document.
  EXPECT_EQ(topology_to_json(reloaded), canonical);
  // And through text, as the CLI prints it.
  EXPECT_EQ(parse_topology_text(canonical.dump(2), "canonical.json"), original);
}

TEST(TopologyLoader, RoundTripKeepsABreakerSwitchedOffAgainstItsDefaults) {
  const Topology original = parse_topology_text(R"({
    "doppel": "topology/v1", "name": "breakers",
    "zones": [{"name": "z", "hosts": [{"name": "h"}]}],
    "services": [
      {"name": "a", "placement": [{"zone": "z"}],
       "operations": [{"name": "op", "steps": [{"call": {"to": "b", "operation": "op"}}]}]},
      {"name": "b", "placement": [{"zone": "z"}], "operations": [{"name": "op"}]}
    ],
    "edge_defaults": {"circuit_breaker": {"min_requests": 5}},
    "edges": [{"from": "a", "to": "b", "circuit_breaker": null}]
  })",
                                                "breakers.json");
  EXPECT_TRUE(original.edge_defaults.breaker.enabled);
  EXPECT_EQ(original.edge_defaults.breaker.min_requests, 5);
  EXPECT_FALSE(original.edges[0].breaker.enabled);
  EXPECT_EQ(parse_topology(topology_to_json(original), "canonical"), original);
}

TEST(TopologyLoader, MinimalFileGetsDocumentedDefaults) {
  std::vector<std::string> warnings;
  const Topology t = parse_topology_text(R"({
    "doppel": "topology/v1", "name": "tiny",
    "zones": [{"name": "z", "hosts": [{"name": "h"}]}],
    "services": [{"name": "s", "placement": [{"zone": "z"}], "operations": [{"name": "op"}]}]
  })",
                                         "tiny.json", &warnings);
  EXPECT_EQ(t.description, "");
  EXPECT_EQ(t.zones[0].network, NetworkLink{});
  EXPECT_EQ(t.zones[0].hosts[0].cores, 1);
  EXPECT_DOUBLE_EQ(t.zones[0].hosts[0].speed, 1.0);
  EXPECT_EQ(t.default_zone_link, (NetworkLink{1000.0, 1000.0}));
  const Service& s = t.services[0];
  EXPECT_EQ(s.replicas, 1);
  EXPECT_EQ(s.workers, 16);
  EXPECT_EQ(s.queue_capacity, 128);
  EXPECT_EQ(s.operations[0].cpu_ms, Distribution::constant(0.0));
  EXPECT_TRUE(s.operations[0].steps.empty());
  EXPECT_EQ(t.edge_defaults, wildcard_edge_policy());
  EXPECT_TRUE(t.gateway.routes.empty());
  EXPECT_FALSE(t.gateway.default_service.has_value());
  EXPECT_DOUBLE_EQ(t.workload.duration_s, 60.0);
  EXPECT_TRUE(t.workload.clients.empty());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "/services/0: service \"s\" is never called: no route and no operation leads to it");
}

TEST(TopologyLoader, MissingFileIsAnInputError) {
  try {
    load_topology("/nonexistent/dir/topology.json");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/dir/topology.json: cannot open the file");
  }
}

TEST(TopologyLoader, MalformedJsonReportsLineAndColumn) {
  try {
    parse_topology_text("{\n  \"doppel\": \"topology/v1\",\n  \"name\": ]\n}", "broken.json");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where().line, 3);
    EXPECT_EQ(e.where().column, 11);
    EXPECT_EQ(e.file(), "broken.json");
  }
}

}  // namespace
}  // namespace doppel::model
