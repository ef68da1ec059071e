// Every bundled scenario loads against the topology it names and compiles to runtime
// commands. Whether the twin reproduces each story's symptoms is a rehearsal's test.
#include <algorithm>

#include <gtest/gtest.h>

#include "doppel/faults/apply_scenario.hpp"
#include "doppel/faults/scenario.hpp"

namespace doppel::faults {
namespace {

const std::filesystem::path kScenarios = std::filesystem::path(DOPPEL_SOURCE_DIR) / "scenarios";

struct Loaded {
  Scenario scenario;
  model::Topology prepared;
  std::vector<RuntimeCommand> commands;
};

Loaded load(const std::string& name) {
  Loaded out;
  out.scenario = load_scenario(kScenarios / (name + ".json"));
  const auto topology = load_scenario_topology(out.scenario);
  out.prepared = prepare_topology(out.scenario, topology);
  out.commands = plan_scenario(out.scenario, out.prepared);
  return out;
}

std::size_t count(const Loaded& loaded, RuntimeCommand::Op op) {
  std::size_t n = 0;
  for (const auto& c : loaded.commands) n += c.op == op;
  return n;
}

TEST(BundledScenarios, EveryFileLoads) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kScenarios)) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().filename().string());
    ++files;
    const auto loaded = load(entry.path().stem().string());
    EXPECT_EQ(loaded.scenario.name, entry.path().stem().string());
    EXPECT_FALSE(loaded.commands.empty());
  }
  EXPECT_GE(files, 5);
}

TEST(BundledScenarios, DbPoolExhaustionSlowsCartQueriesAtTwentySeconds) {
  const auto loaded = load("db-pool-exhaustion");
  std::vector<std::string> slowed;
  for (const auto& c : loaded.commands) {
    if (c.op == RuntimeCommand::Op::query_slowdown) {
      EXPECT_DOUBLE_EQ(c.at_s, 20.0);
      EXPECT_EQ(c.target, "redis-cart");
      EXPECT_NEAR(c.value, 40.0, 1e-9);
      slowed.push_back(c.other);
    }
  }
  EXPECT_EQ(slowed, (std::vector<std::string>{"hget_cart", "hset_cart"}));
}

TEST(BundledScenarios, GatewayMisrouteAddsTheMobileClassAndTheOldBackend) {
  const auto loaded = load("gateway-misroute");
  ASSERT_EQ(loaded.prepared.workload.clients.size(), 2u);
  EXPECT_EQ(loaded.prepared.workload.clients[1].name, "mobile");
  ASSERT_NE(loaded.prepared.find_service("mobile-bff-v1"), nullptr);
  EXPECT_EQ(loaded.prepared.gateway.routes.front().name, "home") << "the rule comes at 20 s";
  EXPECT_EQ(count(loaded, RuntimeCommand::Op::gateway_routes), 1u);
}

TEST(BundledScenarios, ZoneOutageStopsEverythingInZoneBForTwentySeconds) {
  const auto loaded = load("zone-outage");
  std::size_t down = 0;
  for (const auto& c : loaded.commands) {
    if (c.op == RuntimeCommand::Op::instance_up && !c.up) {
      EXPECT_DOUBLE_EQ(c.at_s, 20.0);
      ++down;
    }
  }
  EXPECT_GT(down, 5u);
  EXPECT_EQ(count(loaded, RuntimeCommand::Op::instance_up), 2 * down);
}

TEST(BundledScenarios, RetryStormSetsUpTheVulnerableStateBeforeTheRun) {
  const auto loaded = load("retry-storm");
  for (const char* caller : {"frontend", "checkoutservice"}) {
    const auto& policy = loaded.prepared.policy(caller, "currencyservice");
    EXPECT_EQ(policy.retry.max_retries, 5) << caller;
    EXPECT_EQ(policy.retry.budget_ratio, 0.0) << caller;
    EXPECT_DOUBLE_EQ(policy.timeout_ms, 100.0) << caller;
  }
  const auto& currency =
      *std::find_if(loaded.prepared.services.begin(), loaded.prepared.services.end(),
                    [](const auto& s) { return s.name == "currencyservice"; });
  EXPECT_EQ(currency.replicas, 1);
  EXPECT_DOUBLE_EQ(loaded.prepared.workload.clients[0].rate[0].rps, 400.0);
  EXPECT_EQ(count(loaded, RuntimeCommand::Op::cpu_stress), 8u);  // 4 hosts stressed, restored
}

TEST(BundledScenarios, StaleReadsLagsReplication) {
  const auto loaded = load("stale-reads");
  EXPECT_EQ(count(loaded, RuntimeCommand::Op::replication_lag), 2u);
}

}  // namespace
}  // namespace doppel::faults
