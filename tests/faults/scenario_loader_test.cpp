#include <fstream>

#include <gtest/gtest.h>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::faults {
namespace {

const std::filesystem::path kSource = DOPPEL_SOURCE_DIR;

model::Topology boutique() {
  return model::load_topology(kSource / "topologies/online-boutique.json");
}

Scenario parse(const nlohmann::json& doc, const model::Topology& topology) {
  return parse_scenario(doc, "s.json", topology);
}

TEST(ScenarioLoader, ReadsACrashWithItsSelector) {
  const auto topology = boutique();
  const auto scenario = parse(nlohmann::json::parse(R"({
    "doppel": "scenario/v1", "name": "crash", "seed": 7,
    "injections": [{"kind": "instance_crash", "start_s": 10, "end_s": 20,
                    "target": {"service": "cartservice", "mode": "one"}}]})"),
                              topology);
  ASSERT_EQ(scenario.injections.size(), 1u);
  EXPECT_EQ(scenario.injections[0].kind, InjectionKind::instance_crash);
  EXPECT_EQ(scenario.injections[0].target.name, "cartservice");
  EXPECT_EQ(scenario.injections[0].target.mode, TargetSelector::Mode::one);
  EXPECT_EQ(scenario.seed, 7u);
}

}  // namespace
}  // namespace doppel::faults

namespace doppel::faults {
namespace {

nlohmann::json with_injections(const char* injections_json) {
  auto doc = nlohmann::json::parse(R"({"doppel": "scenario/v1", "name": "t"})");
  doc["injections"] = nlohmann::json::parse(injections_json);
  return doc;
}

TEST(ScenarioLoader, NamesATopologyRelativeToItsFile) {
  const auto file = kSource / "tests/data/scenarios/bad/unknown-kind.json";
  try {
    (void)load_scenario(file);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    // The error is about the injection, so the named topology was found and loaded.
    EXPECT_EQ(e.where().json_pointer, "/injections/0/kind");
  }
}

TEST(ScenarioLoader, WithoutATopologyFails) {
  const auto doc = with_injections("[]");
  const auto dir = std::filesystem::temp_directory_path() / "doppel-faults-test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "no-topology.json";
  std::ofstream(file) << doc.dump();
  EXPECT_THROW((void)load_scenario(file), InputError);
}

TEST(ScenarioLoader, TrafficSurgeIsCompiledIntoTheRateProfile) {
  const auto topology = boutique();
  const auto scenario = parse(with_injections(R"([
      {"kind": "traffic_surge", "start_s": 20, "end_s": 40, "target": {"client": "shoppers"},
       "parameters": {"factor": 3}}])"),
                              topology);
  const auto prepared = prepare_topology(scenario, topology);
  const auto& rate = prepared.workload.clients.at(0).rate;
  ASSERT_EQ(rate.size(), 3u);
  EXPECT_DOUBLE_EQ(rate[0].rps, 200.0);
  EXPECT_DOUBLE_EQ(rate[1].at_s, 20.0);
  EXPECT_DOUBLE_EQ(rate[1].rps, 600.0);
  EXPECT_DOUBLE_EQ(rate[2].at_s, 40.0);
  EXPECT_DOUBLE_EQ(rate[2].rps, 200.0);
}

TEST(ScenarioLoader, TrafficShiftMovesRateToAnAddedClass) {
  const auto topology = boutique();
  auto doc = with_injections(R"([
      {"kind": "traffic_shift", "start_s": 10, "target": {"client": "shoppers"},
       "parameters": {"to": "mobile", "share": 0.25}}])");
  doc["workload"] = nlohmann::json::parse(R"({"add_clients": [
      {"name": "mobile", "zone": "zone-b", "headers": {"user-agent": "iPhone"}, "rate": 10,
       "mix": [{"method": "GET", "path": "/", "weight": 1}]}]})");
  const auto prepared = prepare_topology(parse(doc, topology), topology);
  ASSERT_EQ(prepared.workload.clients.size(), 2u);
  const auto& shoppers = prepared.workload.clients[0].rate;
  const auto& mobile = prepared.workload.clients[1].rate;
  EXPECT_DOUBLE_EQ(shoppers.back().rps, 150.0);
  EXPECT_DOUBLE_EQ(mobile.front().rps, 10.0);
  EXPECT_DOUBLE_EQ(mobile.back().at_s, 10.0);
  EXPECT_DOUBLE_EQ(mobile.back().rps, 60.0);
}

TEST(ScenarioLoader, WorkloadOverrideMultipliesAndReplacesRates) {
  const auto topology = boutique();
  auto doc = with_injections("[]");
  doc["workload"] = nlohmann::json::parse(R"({"clients": {"shoppers": {"rate_multiplier": 0.5}}})");
  doc["duration_s"] = 30;
  const auto prepared = prepare_topology(parse(doc, topology), topology);
  EXPECT_DOUBLE_EQ(prepared.workload.clients[0].rate[0].rps, 100.0);
  EXPECT_DOUBLE_EQ(prepared.workload.duration_s, 30.0);
}

TEST(ScenarioLoader, DeployFromTheStartIsAppliedBeforeTheRun) {
  const auto topology = boutique();
  const auto scenario = parse(with_injections(R"([
      {"kind": "deploy", "start_s": 0, "parameters": {"changes": [
        {"scale": "/datastores/redis-cart/queries/hget_cart/cost_ms/median_ms", "by": 8},
        {"set": "/edges/cartservice->redis-cart/connection_pool/size", "value": 4}]}}])"),
                              topology);
  const auto prepared = prepare_topology(scenario, topology);
  EXPECT_DOUBLE_EQ(prepared.find_datastore("redis-cart")->queries[0].cost_ms.median_ms, 1.2);
  EXPECT_EQ(prepared.policy("cartservice", "redis-cart").pool.size, 4);
  EXPECT_EQ(scenario.injections[0].parameters.changes[0].resolved_path,
            "/datastores/0/queries/0/cost_ms/median_ms");
}

TEST(ScenarioLoader, RouteChangeInsertsARuleFirst) {
  const auto topology = boutique();
  const auto scenario = parse(with_injections(R"([
      {"kind": "route_change", "start_s": 0, "parameters": {"insert":
        {"name": "mobile-home", "path_regex": "/.*", "headers": [{"name": "user-agent", "regex": ".*iPhone.*"}],
         "to": {"service": "adservice", "operation": "GetAds"}}}}])"),
                              topology);
  const auto prepared = prepare_topology(scenario, topology);
  ASSERT_EQ(prepared.gateway.routes.size(), topology.gateway.routes.size() + 1);
  EXPECT_EQ(prepared.gateway.routes[0].name, "mobile-home");
  EXPECT_EQ(prepared.gateway.routes[1].name, "home");
}

TEST(ScenarioLoader, ReplicaCountChangeDuringTheRunIsNotBuiltYet) {
  const auto topology = boutique();
  try {
    (void)parse(with_injections(R"([{"kind": "deploy", "start_s": 10, "parameters": {"changes": [
        {"set": "/services/frontend/placement/0/zone", "value": "zone-b"}]}}])"),
                topology);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where().json_pointer, "/injections/0/parameters");
    EXPECT_NE(e.message().find("/services/0/placement/0/zone"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("not-built-yet"), std::string::npos) << e.message();
  }
}

TEST(ScenarioLoader, CanaryOfASharedValueNamesTheChangeAndTheCanary) {
  const auto topology = boutique();
  try {
    (void)parse(with_injections(R"([{"kind": "deploy", "start_s": 10, "parameters": {
        "canary": {"instances": 1},
        "changes": [{"scale": "/datastores/redis-cart/queries/hget_cart/cost_ms/median_ms",
                     "by": 0.5}]}}])"),
                topology);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where().json_pointer, "/injections/0/parameters/canary");
    EXPECT_EQ(e.message(),
              "deploy at 10 s changes /datastores/0/queries/0/cost_ms/median_ms, which every "
              "instance shares: a canary can stage edge policies and operation CPU costs only");
  }
}

TEST(ScenarioLoader, LatencyJitterBetweenZonesIsNotBuiltYet) {
  const auto topology = boutique();
  try {
    (void)parse(with_injections(R"([{"kind": "latency", "start_s": 1, "target": {"zone": "zone-a"},
                                     "parameters": {"ms": 50, "jitter_ms": 10}}])"),
                topology);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_EQ(
        e.message(),
        "latency jitter_ms between zones is not built yet (docs/scenario-format.md#not-built-yet)");
  }
}

TEST(ScenarioLoader, EveryKindHasAName) {
  EXPECT_EQ(all_injection_kinds().size(), 19u);
  for (InjectionKind kind : all_injection_kinds()) EXPECT_NE(to_string(kind), "unknown");
}

TEST(ScenarioLoader, OwnSlosReplaceTheTopologys) {
  const auto topology = boutique();
  auto doc = with_injections("[]");
  doc["steady_state"] = nlohmann::json::parse(
      R"({"slos": [{"route": "checkout", "max_error_rate": 0.05}], "before": false})");
  const auto scenario = parse(doc, topology);
  const auto slos = steady_state_slos(scenario, topology);
  ASSERT_EQ(slos.size(), 1u);
  EXPECT_EQ(slos[0].route, "checkout");
  EXPECT_FALSE(scenario.steady_state.check_before);
}

}  // namespace
}  // namespace doppel::faults
