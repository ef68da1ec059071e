#include "doppel/experiments/candidates.hpp"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::experiments {
namespace {

model::Topology bundled(const std::string& name) {
  return model::load_topology(std::filesystem::path(DOPPEL_SOURCE_DIR) / "topologies" /
                              (name + ".json"));
}

TEST(AutoCandidates, EveryCandidateOfEveryBundledTopologyRunsAsAScenario) {
  for (const char* name : {"online-boutique", "hotrod", "sock-shop", "stale-reads"}) {
    SCOPED_TRACE(name);
    const auto topology = bundled(name);
    const auto candidates = auto_candidates(topology);
    ASSERT_GT(candidates.size(), topology.services.size());
    EXPECT_TRUE(candidates.front().null_hypothesis);
    std::set<std::string> names;
    for (const auto& candidate : candidates) {
      SCOPED_TRACE(candidate.name);
      EXPECT_TRUE(names.insert(candidate.name).second) << "duplicate name";
      const auto doc = candidate_scenario(candidate, 20.0, 60.0, 7);
      const auto scenario = faults::parse_scenario(doc, candidate.name, topology);
      ASSERT_EQ(scenario.injections.size(), candidate.injections.size());
      for (const auto& injection : scenario.injections) EXPECT_DOUBLE_EQ(injection.start_s, 20.0);
    }
  }
}

TEST(AutoCandidates, CoverTheComponentsOfTheTopology) {
  const auto topology = bundled("online-boutique");
  std::set<std::string> names;
  for (const auto& candidate : auto_candidates(topology)) names.insert(candidate.cause);
  EXPECT_TRUE(names.contains("latency@frontend"));
  EXPECT_TRUE(names.contains("cpu_stress@frontend"));
  EXPECT_TRUE(names.contains("instance_crash@paymentservice"));
  EXPECT_TRUE(names.contains("datastore_slowdown@redis-cart"));
  EXPECT_TRUE(names.contains("pool_exhaustion@cartservice->redis-cart"));
  EXPECT_TRUE(names.contains("zone_outage@zone-b"));
  EXPECT_FALSE(names.contains("replication_lag@redis-cart"));  // it has no replica
}

TEST(AutoCandidates, TryEachKindAtSeveralMagnitudes) {
  const auto topology = bundled("online-boutique");
  int slowdowns = 0;
  for (const auto& candidate : auto_candidates(topology)) {
    if (candidate.cause != "datastore_slowdown@redis-cart") continue;
    ++slowdowns;
    EXPECT_EQ(candidate.kind, "datastore_slowdown");
    EXPECT_EQ(candidate.component, "redis-cart");
  }
  EXPECT_EQ(slowdowns, 3);
}

const char* kCandidates = R"({
  "doppel": "candidates/v1",
  "candidates": [
    {"name": "slow redis", "description": "queries 10x",
     "injections": [{"kind": "datastore_slowdown", "start_s": 0, "target": {"datastore": "redis-cart"},
                     "parameters": {"factor": 10}}]},
    {"name": "cart crash", "injections": [{"kind": "instance_crash", "start_s": 5, "end_s": 10,
                                          "target": {"service": "cartservice"}}]}
  ]
})";

TEST(LoadCandidates, ReadsTheFileAndAddsTheNullHypothesis) {
  const auto topology = bundled("online-boutique");
  const auto candidates = parse_candidates(nlohmann::json::parse(kCandidates), "c.json", topology);
  ASSERT_EQ(candidates.size(), 3u);
  EXPECT_TRUE(candidates[0].null_hypothesis);
  EXPECT_EQ(candidates[1].name, "slow redis");
  EXPECT_EQ(candidates[1].kind, "datastore_slowdown");
  EXPECT_EQ(candidates[1].component, "redis-cart");
  // Times are relative to the onset.
  const auto doc = candidate_scenario(candidates[2], 30.0, 60.0, 1);
  EXPECT_EQ(doc["injections"][0]["start_s"], 35.0);
  EXPECT_EQ(doc["injections"][0]["end_s"], 40.0);
}

std::string error_of(const char* text) {
  const auto topology = bundled("online-boutique");
  try {
    (void)parse_candidates(nlohmann::json::parse(text), "c.json", topology);
  } catch (const InputError& error) {
    return error.what();
  }
  return "no error";
}

TEST(LoadCandidates, ErrorsNameTheFileAndThePlace) {
  EXPECT_EQ(error_of(R"({"doppel": "candidates/v2", "candidates": []})"),
            "c.json: /doppel: expected \"candidates/v1\"");
  EXPECT_EQ(error_of(R"({"doppel": "candidates/v1", "candidates": []})"),
            "c.json: /candidates: expected a non-empty array of candidates");
  EXPECT_EQ(
      error_of(R"({"doppel": "candidates/v1", "candidates": [{"name": "a"}, {"name": "a"}]})"),
      "c.json: /candidates/1/name: \"a\" names an earlier candidate too");
  // A mistake inside an injection is pointed at in the candidates file.
  const std::string bad_target = error_of(R"({"doppel": "candidates/v1", "candidates": [
      {"name": "x", "injections": [{"kind": "latency", "start_s": 0, "target": {"service": "cartsrvice"},
                                    "parameters": {"ms": 5}}]}]})");
  EXPECT_EQ(bad_target.rfind("c.json: /candidates/0/injections/0/target", 0), 0u) << bad_target;
  EXPECT_NE(bad_target.find("cartservice"), std::string::npos) << bad_target;  // did you mean
}

}  // namespace
}  // namespace doppel::experiments

namespace doppel::experiments {
namespace {

const Candidate* find_cause(const std::vector<Candidate>& candidates, const std::string& cause) {
  for (const auto& candidate : candidates) {
    if (candidate.cause == cause) return &candidate;
  }
  return nullptr;
}

TEST(AutoCandidates, StressOnAHostSharedByServicesIsOneCauseNamingThemAll) {
  // HotROD runs its four services on its one host: stress there is one simulation, whichever
  // service is named, so it is one cause and not four copies splitting the probability.
  const auto candidates = auto_candidates(bundled("hotrod"));
  const Candidate* host = find_cause(candidates, "cpu_stress@hotrod-host");
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->components,
            (std::vector<std::string>{"frontend", "customer", "driver", "route"}));
  EXPECT_EQ(host->injections[0]["target"], (nlohmann::json{{"host", "hotrod-host"}}));
  EXPECT_EQ(find_cause(candidates, "cpu_stress@frontend"), nullptr);
  EXPECT_EQ(find_cause(candidates, "cpu_stress@customer"), nullptr);

  // Sock Shop pins its services on three nodes, two or three each.
  const auto sock_shop = auto_candidates(bundled("sock-shop"));
  const Candidate* node = find_cause(sock_shop, "cpu_stress@node-1");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->components, (std::vector<std::string>{"front-end", "payment"}));
}

// Sock Shop's queue-master consumes a queue that nothing in the twin fills: faults on its
// requests would be "no fault" again, sharing its probability. Its crash and its host's CPU
// are its own metrics' business and stay.
TEST(AutoCandidates, NoRequestFaultsOnWhatNoRequestReaches) {
  const auto candidates = auto_candidates(bundled("sock-shop"));
  std::set<std::string> kinds_on_queue_master;
  for (const auto& candidate : candidates) {
    if (candidate.component == "queue-master") kinds_on_queue_master.insert(candidate.kind);
  }
  EXPECT_EQ(kinds_on_queue_master, (std::set<std::string>{"instance_crash"}));
  EXPECT_NE(find_cause(candidates, "latency@shipping"), nullptr);
  EXPECT_NE(find_cause(candidates, "dns_failure@shipping"), nullptr);
  EXPECT_NE(find_cause(candidates, "datastore_slowdown@rabbitmq"), nullptr);
  const Candidate* node = find_cause(candidates, "cpu_stress@node-3");
  ASSERT_NE(node, nullptr);
  EXPECT_NE(std::find(node->components.begin(), node->components.end(), "queue-master"),
            node->components.end());
}

TEST(AutoCandidates, AReplicatedServiceIsAlsoStressedOnEachInstancesHost) {
  // stale-reads lets the twin place profile's four instances in two zones: the host of each
  // instance in turn, at each share, besides all of its hosts at once.
  const auto candidates = auto_candidates(bundled("stale-reads"));
  int all_hosts = 0;
  std::set<int> instances;
  int one_host = 0;
  for (const auto& candidate : candidates) {
    if (candidate.cause != "cpu_stress@profile") continue;
    const auto& target = candidate.injections[0]["target"];
    EXPECT_EQ(target["service"], "profile");
    if (!target.contains("instance")) {
      ++all_hosts;
      continue;
    }
    ++one_host;
    instances.insert(target["instance"].get<int>());
  }
  EXPECT_EQ(all_hosts, 3);
  EXPECT_EQ(one_host, 4 * 3);
  EXPECT_EQ(instances, (std::set<int>{0, 1, 2, 3}));
  // Stress on one of its four hosts shows in that host's CPU before the service's own
  // metrics move much: any of the hosts it may run on is a witness.
  const Candidate* stress = find_cause(candidates, "cpu_stress@profile");
  ASSERT_NE(stress, nullptr);
  EXPECT_EQ(stress->witnesses,
            (std::vector<std::string>{"a1_host_", "a2_host_", "b1_host_", "b2_host_"}));
  // A service on one host has no separate one-host variant (it would be the same run).
  for (const auto& candidate : auto_candidates(bundled("sock-shop"))) {
    if (candidate.kind == "cpu_stress") {
      EXPECT_FALSE(candidate.injections[0]["target"].contains("mode")) << candidate.name;
    }
  }
}

TEST(AutoCandidates, AReplicatedServicePinnedToHostsIsStressedHostByHost) {
  // Online Boutique pins each replica to a named host, five or six services a host. A noisy
  // neighbour on a2 slows every one of them: one cause per host, not one "one of my hosts"
  // variant per service (four such variants once drew a2 alike and split the probability).
  const auto candidates = auto_candidates(bundled("online-boutique"));
  for (const auto& candidate : candidates) {
    if (candidate.kind == "cpu_stress") {
      EXPECT_FALSE(candidate.injections[0]["target"].contains("mode")) << candidate.name;
    }
  }
  const Candidate* a2 = find_cause(candidates, "cpu_stress@a2");
  ASSERT_NE(a2, nullptr);
  EXPECT_EQ(a2->injections[0]["target"], (nlohmann::json{{"host", "a2"}}));
  EXPECT_EQ(a2->witnesses, (std::vector<std::string>{"a2_host_"}));
  const auto& on_a2 = a2->components;
  for (const char* service : {"cartservice", "shippingservice", "paymentservice"}) {
    EXPECT_NE(std::find(on_a2.begin(), on_a2.end(), service), on_a2.end()) << service;
  }
  // Each host appears once per share, whichever service brought it up first.
  int a2_candidates = 0;
  for (const auto& candidate : candidates) a2_candidates += candidate.cause == "cpu_stress@a2";
  EXPECT_EQ(a2_candidates, static_cast<int>(AutoCandidateOptions{}.cpu_stress_share.size()));
  // Stress on all of a replicated service's hosts stays a cause of its own...
  EXPECT_NE(find_cause(candidates, "cpu_stress@productcatalogservice"), nullptr);
  // ... but services pinned to the same hosts share it: cartservice, shippingservice and
  // paymentservice all run on a2 and b1.
  const Candidate* both = find_cause(candidates, "cpu_stress@a2+b1");
  ASSERT_NE(both, nullptr);
  EXPECT_EQ(both->components,
            (std::vector<std::string>{"cartservice", "shippingservice", "paymentservice"}));
  EXPECT_EQ(both->witnesses, (std::vector<std::string>{"a2_host_", "b1_host_"}));
  EXPECT_EQ(find_cause(candidates, "cpu_stress@cartservice"), nullptr);
  EXPECT_EQ(find_cause(candidates, "cpu_stress@paymentservice"), nullptr);
}

TEST(AutoCandidates, AnInstanceCrashShowsOnItsHosts) {
  // A crashed replica of four hardly moves its callers (they retry on the others), but its
  // host's CPU falls: the hosts are witnesses, so pruning keeps the crash.
  const auto candidates = auto_candidates(bundled("stale-reads"));
  const Candidate* crash = find_cause(candidates, "instance_crash@profile");
  ASSERT_NE(crash, nullptr);
  const auto& seen = crash->witnesses;
  for (const char* host : {"a1_host_", "a2_host_", "b1_host_", "b2_host_"}) {
    EXPECT_NE(std::find(seen.begin(), seen.end(), host), seen.end()) << host;
  }
  // One variant per instance: the host whose metrics fall says which one crashed.
  std::set<int> crashed;
  for (const auto& candidate : candidates) {
    if (candidate.cause != "instance_crash@profile") continue;
    const auto& target = candidate.injections[0]["target"];
    if (target.contains("instance")) crashed.insert(target["instance"].get<int>());
  }
  EXPECT_EQ(crashed, (std::set<int>{0, 1, 2, 3}));
  const Candidate* dns = find_cause(candidates, "dns_failure@profile");
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(std::find(dns->witnesses.begin(), dns->witnesses.end(), "a1_host_"),
            dns->witnesses.end());
}

TEST(AutoCandidates, AServicesFaultsKnowWhereTheyShowFirst) {
  const auto topology = bundled("hotrod");
  const auto candidates = auto_candidates(topology);
  const Candidate* customer = find_cause(candidates, "dns_failure@customer");
  ASSERT_NE(customer, nullptr);
  // frontend calls customer; frontend itself is behind the gateway's dispatch route.
  const auto& seen = customer->witnesses;
  EXPECT_NE(std::find(seen.begin(), seen.end(), "frontend_err"), seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), "frontend_lat_"), seen.end());
  EXPECT_EQ(std::find(seen.begin(), seen.end(), "route_dispatch_err"), seen.end());
  const auto entry = witness_prefixes(topology, "frontend");
  EXPECT_NE(std::find(entry.begin(), entry.end(), "route_dispatch_err"), entry.end());
  EXPECT_NE(std::find(entry.begin(), entry.end(), "route_dispatch_lat_"), entry.end());
}

TEST(MagnitudeRefinements, SitHalfwayToTheGridNeighboursOfTheBestVariant) {
  const auto candidates = auto_candidates(bundled("online-boutique"));
  const auto named = [&](const std::string& name) -> const Candidate& {
    const auto found = std::find_if(candidates.begin(), candidates.end(),
                                    [&](const Candidate& c) { return c.name == name; });
    EXPECT_NE(found, candidates.end()) << name;
    return *found;
  };
  // Shares step arithmetically: 50% has one neighbour (80%), 80% two.
  const auto stress = magnitude_refinements(named("cpu_stress@a2 80%"), candidates);
  ASSERT_EQ(stress.size(), 2u);
  EXPECT_EQ(stress[0].name, "cpu_stress@a2 65%");
  EXPECT_EQ(stress[1].name, "cpu_stress@a2 88%");  // 87.5, to the nearest percent
  EXPECT_DOUBLE_EQ(stress[0].injections[0]["parameters"]["share"].get<double>(), 0.65);
  EXPECT_EQ(stress[0].injections[0]["target"], (nlohmann::json{{"host", "a2"}}));
  EXPECT_EQ(stress[0].injections[0]["name"], "cpu_stress@a2 65%");
  EXPECT_EQ(stress[0].cause, "cpu_stress@a2");
  EXPECT_NE(stress[0].description.find("65%"), std::string::npos) << stress[0].description;
  // Times step geometrically: halfway from 50 to 250 ms is 112 ms, not 150.
  const auto slow = magnitude_refinements(named("latency@cartservice 50ms"), candidates);
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_EQ(slow[0].name, "latency@cartservice 112ms");
  EXPECT_NE(slow[0].description.find("112 ms"), std::string::npos) << slow[0].description;
  // Siblings are the same cause *and* target: the all-hosts stress of cartservice is not on
  // a2's grid, and a crash has no magnitude at all.
  const auto all_hosts =
      magnitude_refinements(named("cpu_stress@productcatalogservice 50%"), candidates);
  ASSERT_EQ(all_hosts.size(), 1u);
  EXPECT_EQ(all_hosts[0].injections[0]["target"],
            (nlohmann::json{{"service", "productcatalogservice"}}));
  EXPECT_TRUE(magnitude_refinements(named("dns_failure@cartservice"), candidates).empty());
}

TEST(LoadCandidates, TheComponentIsTheTargetsNamedUnitNotItsMode) {
  const auto topology = bundled("online-boutique");
  const auto candidates = parse_candidates(nlohmann::json::parse(R"({
    "doppel": "candidates/v1", "candidates": [
      {"name": "one cart down", "injections": [{"kind": "instance_crash", "start_s": 0,
        "target": {"service": "cartservice", "mode": "one"}}]}]})"),
                                           "c.json", topology);
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_EQ(candidates[1].component, "cartservice");
  EXPECT_EQ(candidates[1].components, (std::vector<std::string>{"cartservice"}));
  EXPECT_FALSE(candidates[1].witnesses.empty());  // frontend and checkoutservice call it
}

}  // namespace
}  // namespace doppel::experiments
