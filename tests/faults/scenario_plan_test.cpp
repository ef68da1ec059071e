// What a scenario does to the twin's runtime, checked on the plan (no engine needed).
#include <set>

#include <gtest/gtest.h>

#include "doppel/faults/apply_scenario.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::faults {
namespace {

using Op = RuntimeCommand::Op;

const model::Topology& boutique() {
  static const model::Topology topology = model::load_topology(
      std::filesystem::path(DOPPEL_SOURCE_DIR) / "topologies/online-boutique.json");
  return topology;
}

std::vector<RuntimeCommand> plan(const char* injections, std::uint64_t seed = 1) {
  auto doc = nlohmann::json::parse(R"({"doppel": "scenario/v1", "name": "t"})");
  doc["seed"] = seed;
  doc["injections"] = nlohmann::json::parse(injections);
  const auto scenario = parse_scenario(doc, "t.json", boutique());
  return plan_scenario(scenario, prepare_topology(scenario, boutique()));
}

std::vector<RuntimeCommand> only(const std::vector<RuntimeCommand>& commands, Op op) {
  std::vector<RuntimeCommand> out;
  for (const auto& c : commands) {
    if (c.op == op) out.push_back(c);
  }
  return out;
}

TEST(ScenarioPlan, CrashOneInstanceThenRestartIt) {
  const auto commands = plan(R"([{"kind": "instance_crash", "start_s": 10,
      "target": {"service": "cartservice", "mode": "one"}, "parameters": {"restart_after_s": 5}}])");
  const auto changes = only(commands, Op::instance_up);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].target, "cartservice");
  EXPECT_DOUBLE_EQ(changes[0].at_s, 10.0);
  EXPECT_FALSE(changes[0].up);
  EXPECT_DOUBLE_EQ(changes[1].at_s, 15.0);
  EXPECT_TRUE(changes[1].up);
  EXPECT_EQ(changes[0].index, changes[1].index);
  const auto events = only(commands, Op::event);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event.kind, "fault_start");
  EXPECT_EQ(events[0].event.component, "cartservice/" + std::to_string(changes[0].index));
  EXPECT_EQ(events[1].event.kind, "fault_end");
  EXPECT_DOUBLE_EQ(events[1].at_s, 15.0);
}

TEST(ScenarioPlan, ChoiceFollowsTheSeedAndOnlyTheSeed) {
  const char* crash = R"([{"kind": "instance_crash", "start_s": 1,
      "target": {"service": "frontend", "mode": "one"}}])";
  EXPECT_EQ(only(plan(crash, 3), Op::instance_up)[0].index,
            only(plan(crash, 3), Op::instance_up)[0].index);
  std::set<int> chosen;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    chosen.insert(only(plan(crash, seed), Op::instance_up)[0].index);
  }
  EXPECT_GT(chosen.size(), 1u) << "different seeds should not always hit the same instance";
}

TEST(ScenarioPlan, PercentRoundsUpToAtLeastOne) {
  const auto changes = only(plan(R"([{"kind": "instance_crash", "start_s": 1,
      "target": {"service": "frontend", "mode": "percent", "percent": 50}}])"),
                            Op::instance_up);
  EXPECT_EQ(changes.size(), 2u);  // ceil(3 * 0.5)
}

TEST(ScenarioPlan, OverlappingOutagesKeepAnInstanceDownUntilTheLastEnds) {
  // cartservice/0 runs in zone-a: down from the outage at 10 until its own crash ends at 40.
  const auto changes = only(plan(R"([
      {"kind": "zone_outage", "start_s": 10, "end_s": 30, "target": {"zone": "zone-a"}},
      {"kind": "instance_crash", "start_s": 20, "end_s": 40,
       "target": {"service": "cartservice", "instance": 0}}])"),
                            Op::instance_up);
  std::vector<std::pair<double, bool>> cart0;
  for (const auto& c : changes) {
    if (c.target == "cartservice" && c.index == 0) cart0.emplace_back(c.at_s, c.up);
  }
  EXPECT_EQ(cart0, (std::vector<std::pair<double, bool>>{{10.0, false}, {40.0, true}}));
}

TEST(ScenarioPlan, ZoneOutageTakesDatastoreNodesDownToo) {
  const auto nodes = only(plan(R"([{"kind": "zone_outage", "start_s": 10, "end_s": 30,
      "target": {"zone": "zone-a"}}])"),
                          Op::datastore_node_up);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].target, "redis-cart");
  EXPECT_FALSE(nodes[0].up);
  EXPECT_TRUE(nodes[1].up);
}

TEST(ScenarioPlan, HostCrashHitsWhatRunsOnTheHost) {
  // redis-cart's primary is pinned to a2.
  const auto commands = plan(R"([{"kind": "host_crash", "start_s": 5, "target": {"host": "a2"}}])");
  EXPECT_EQ(only(commands, Op::datastore_node_up).size(), 1u);
  EXPECT_FALSE(only(commands, Op::instance_up).empty());
}

TEST(ScenarioPlan, ZoneLatencyAddsToTheBaseAndIsRestored) {
  const auto changes = only(plan(R"([{"kind": "latency", "start_s": 10, "end_s": 20,
      "target": {"zone": "zone-b"}, "parameters": {"ms": 2}}])"),
                            Op::zone_latency);
  // zone-a <-> zone-b (600 us) and inside zone-b (150 us), each set then restored.
  ASSERT_EQ(changes.size(), 4u);
  for (const auto& c : changes) {
    const double base = c.target == c.other ? 150.0 : 600.0;
    EXPECT_DOUBLE_EQ(c.value, c.at_s == 10.0 ? base + 2000.0 : base) << c.target << c.other;
  }
}

TEST(ScenarioPlan, CpuStressFactorsMultiply) {
  const auto changes = only(plan(R"([
      {"kind": "cpu_stress", "start_s": 10, "end_s": 30, "target": {"host": "b1"}, "parameters": {"share": 0.5}},
      {"kind": "cpu_stress", "start_s": 20, "end_s": 30, "target": {"host": "b1"}, "parameters": {"share": 0.75}}])"),
                            Op::cpu_stress);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_DOUBLE_EQ(changes[0].value, 2.0);
  EXPECT_DOUBLE_EQ(changes[1].value, 8.0);
  EXPECT_DOUBLE_EQ(changes[2].value, 1.0);
  EXPECT_DOUBLE_EQ(changes[2].at_s, 30.0);
}

TEST(ScenarioPlan, CanaryDeploySetsThePolicyOfTheFirstCallerInstancesOnly) {
  // cartservice has two instances: a one-instance canary changes instance 0's pool, then
  // the full rollout (a second deploy from the canary's end) changes every instance.
  const auto commands = plan(R"([
      {"kind": "deploy", "start_s": 20, "end_s": 30, "parameters": {"canary": {"instances": 1},
       "changes": [{"set": "/edges/cartservice->redis-cart/connection_pool/size", "value": 64}]}},
      {"kind": "deploy", "start_s": 30, "parameters":
       {"changes": [{"set": "/edges/cartservice->redis-cart/connection_pool/size", "value": 64}]}}])");
  const auto canary = only(commands, Op::instance_edge_policy);
  ASSERT_EQ(canary.size(), 2u);
  EXPECT_EQ(canary[0].index, 0);
  EXPECT_DOUBLE_EQ(canary[0].at_s, 20.0);
  EXPECT_EQ(canary[0].policy.from, "cartservice");
  EXPECT_EQ(canary[0].policy.pool.size, 64);
  EXPECT_DOUBLE_EQ(canary[1].at_s, 30.0);  // the canary's own end restores instance 0...
  EXPECT_EQ(canary[1].policy.pool.size, 16);
  const auto full = only(commands, Op::edge_policy);
  ASSERT_EQ(full.size(), 1u);  // ...before the full rollout sets every instance at 30 s
  EXPECT_DOUBLE_EQ(full[0].at_s, 30.0);
  EXPECT_EQ(full[0].policy.pool.size, 64);
  const auto position = [&](const RuntimeCommand& wanted) {
    for (std::size_t i = 0; i < commands.size(); ++i) {
      if (commands[i].op == wanted.op && commands[i].at_s == wanted.at_s &&
          commands[i].policy.pool.size == wanted.policy.pool.size) {
        return i;
      }
    }
    return commands.size();
  };
  EXPECT_LT(position(canary[1]), position(full[0]));
}

TEST(ScenarioPlan, CanaryCpuCostSlowsTheCanaryInstancesOnly) {
  const auto commands = plan(R"([{"kind": "deploy", "start_s": 20, "parameters":
      {"canary": {"instances": 2}, "changes": [
        {"scale": "/services/currencyservice/operations/Convert/cpu_ms/median_ms", "by": 3},
        {"scale": "/services/currencyservice/operations/GetSupportedCurrencies/cpu_ms/median_ms",
         "by": 3}]}}])");
  EXPECT_TRUE(only(commands, Op::cpu_cost_factor).empty());
  const auto slowed = only(commands, Op::instance_slowdown);
  ASSERT_EQ(slowed.size(), 2u);  // currencyservice has three instances; two get the new build
  std::set<int> instances;
  for (const auto& c : slowed) {
    EXPECT_EQ(c.target, "currencyservice");
    EXPECT_DOUBLE_EQ(c.at_s, 20.0);
    EXPECT_NEAR(c.value, 3.0, 1e-9);
    instances.insert(c.index);
  }
  EXPECT_EQ(instances, (std::set<int>{0, 1}));
}

TEST(ScenarioPlan, DeployDuringTheRunSetsEdgePoliciesAndRevertsThem) {
  const auto changes = only(plan(R"([{"kind": "deploy", "start_s": 20, "end_s": 40, "parameters":
      {"changes": [{"set": "/edges/cartservice->redis-cart/connection_pool/size", "value": 2}]}}])"),
                            Op::edge_policy);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].policy.from, "cartservice");
  EXPECT_EQ(changes[0].policy.to, "redis-cart");
  EXPECT_EQ(changes[0].policy.pool.size, 2);
  EXPECT_DOUBLE_EQ(changes[1].at_s, 40.0);
  EXPECT_EQ(changes[1].policy.pool.size, 16);
}

TEST(ScenarioPlan, DeployScalingCpuCostsSetsTheServiceFactor) {
  const auto changes = only(plan(R"([{"kind": "deploy", "start_s": 20, "parameters": {"changes": [
      {"scale": "/services/paymentservice/operations/Charge/cpu_ms/median_ms", "by": 3}]}}])"),
                            Op::cpu_cost_factor);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].target, "paymentservice");
  EXPECT_NEAR(changes[0].value, 3.0, 1e-9);
}

TEST(ScenarioPlan, MemoryPressureSlowsThenCrashes) {
  const auto commands = plan(R"([{"kind": "memory_pressure", "start_s": 10, "end_s": 50,
      "target": {"service": "emailservice"}, "parameters": {"slowdown": 2, "crash_after_s": 15}}])");
  const auto factors = only(commands, Op::instance_slowdown);
  ASSERT_EQ(factors.size(), 4u);  // each of the two instances slowed at 10, restored at 50
  EXPECT_DOUBLE_EQ(factors[0].value, 2.0);
  EXPECT_DOUBLE_EQ(factors[3].at_s, 50.0);
  const auto crashes = only(commands, Op::instance_up);
  ASSERT_EQ(crashes.size(), 4u);  // two instances down at 25, up at 50
  EXPECT_DOUBLE_EQ(crashes[0].at_s, 25.0);
  EXPECT_FALSE(crashes[0].up);
  EXPECT_DOUBLE_EQ(crashes[3].at_s, 50.0);
}

TEST(ScenarioPlan, ChangesComeBeforeTheirEventsAtOneInstant) {
  const auto commands =
      plan(R"([{"kind": "instance_crash", "start_s": 10, "target": {"service": "adservice"}}])");
  ASSERT_FALSE(commands.empty());
  EXPECT_EQ(commands.front().op, Op::instance_up);
  EXPECT_EQ(commands.back().op, Op::event);
}

TEST(ScenarioPlan, RouteChangeDuringTheRunSwapsTheGatewayRoutesAndBack) {
  const auto changes = only(plan(R"([{"kind": "route_change", "start_s": 20, "end_s": 40,
      "parameters": {"insert": {"name": "mobile", "path_prefix": "/",
        "headers": [{"name": "user-agent", "regex": ".*iPhone.*"}],
        "to": {"service": "frontend", "operation": "setCurrency"}}}}])"),
                            Op::gateway_routes);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_DOUBLE_EQ(changes[0].at_s, 20.0);
  EXPECT_EQ(changes[0].routes.front().name, "mobile");
  EXPECT_EQ(changes[1].routes, boutique().gateway.routes);
}

TEST(ScenarioPlan, DeploySlowingAQueryUsesTheQuerySlowdown) {
  const auto changes = only(plan(R"([{"kind": "deploy", "start_s": 20, "parameters": {"changes": [
      {"scale": "/datastores/redis-cart/queries/hget_cart/cost_ms/median_ms", "by": 8}]}}])"),
                            Op::query_slowdown);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].target, "redis-cart");
  EXPECT_EQ(changes[0].other, "hget_cart");
  EXPECT_NEAR(changes[0].value, 8.0, 1e-9);
}

TEST(ScenarioPlan, DnsFailureAndErrorRateAndRestores) {
  const auto commands = plan(R"([
      {"kind": "dns_failure", "start_s": 10, "end_s": 20, "target": {"service": "adservice"}},
      {"kind": "error_rate", "start_s": 10, "end_s": 30, "target": {"service": "paymentservice"},
       "parameters": {"rate": 0.3}}])");
  const auto dns = only(commands, Op::service_resolvable);
  ASSERT_EQ(dns.size(), 2u);
  EXPECT_FALSE(dns[0].up);
  EXPECT_TRUE(dns[1].up);
  const auto errors = only(commands, Op::error_rate);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_DOUBLE_EQ(errors[0].value, 0.3);
  EXPECT_DOUBLE_EQ(errors[1].value, -1.0) << "restores the topology's rate";
}

TEST(ScenarioPlan, PartitionIsAddedAndHealed) {
  const auto commands = plan(R"([{"kind": "partition", "start_s": 10, "end_s": 25,
      "parameters": {"of": "zone", "a": ["zone-a"], "b": ["zone-b"], "one_way": true}}])");
  const auto added = only(commands, Op::partition_add);
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0].side_a, std::vector<std::string>{"zone-a"});
  EXPECT_FALSE(added[0].up) << "one way";
  const auto healed = only(commands, Op::partition_heal);
  ASSERT_EQ(healed.size(), 1u);
  EXPECT_EQ(healed[0].index, added[0].index);
  EXPECT_DOUBLE_EQ(healed[0].at_s, 25.0);
}

TEST(ScenarioPlan, PacketLossCombinesAsIndependentLosses) {
  const auto changes = only(plan(R"([
      {"kind": "packet_loss", "start_s": 10, "end_s": 30, "target": {"host": "a1"}, "parameters": {"rate": 0.5}},
      {"kind": "packet_loss", "start_s": 20, "end_s": 30, "target": {"zone": "zone-a"}, "parameters": {"rate": 0.5}}])"),
                            Op::host_packet_loss);
  std::vector<double> a1;
  for (const auto& c : changes) {
    if (c.target == "a1") a1.push_back(c.value);
  }
  EXPECT_EQ(a1, (std::vector<double>{0.5, 0.75, 0.0}));
}

TEST(ScenarioPlan, EdgeLatencyWithJitter) {
  const auto commands = plan(R"([{"kind": "latency", "start_s": 10, "end_s": 20,
      "target": {"edge": {"from": "checkoutservice", "to": "paymentservice"}},
      "parameters": {"ms": 100, "jitter_ms": 20}}])");
  const auto ms = only(commands, Op::edge_latency);
  const auto jitter = only(commands, Op::edge_jitter);
  ASSERT_EQ(ms.size(), 2u);
  ASSERT_EQ(jitter.size(), 2u);
  EXPECT_EQ(ms[0].target, "checkoutservice");
  EXPECT_EQ(ms[0].other, "paymentservice");
  EXPECT_DOUBLE_EQ(ms[0].value, 100.0);
  EXPECT_DOUBLE_EQ(jitter[0].value, 20.0);
  EXPECT_DOUBLE_EQ(ms[1].value, 0.0);
}

}  // namespace
}  // namespace doppel::faults
