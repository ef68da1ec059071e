#include "doppel/experiments/fix_validation.hpp"

#include <gtest/gtest.h>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::experiments {
namespace {

const std::filesystem::path kSource = DOPPEL_SOURCE_DIR;

struct Bundled {
  model::Topology topology = model::load_topology(kSource / "topologies/online-boutique.json");
  nlohmann::json cause = cause_document(kSource / "scenarios/db-pool-exhaustion.json");
};

TEST(Fixes, TheBundledFixesLoadWithWhatTheyTouch) {
  const Bundled b;
  EXPECT_FALSE(b.cause.contains("topology"));
  EXPECT_FALSE(b.cause.contains("abort_conditions"));
  const auto fixes = load_fixes(kSource / "fixes/db-pool-exhaustion.json", b.cause, b.topology);
  ASSERT_EQ(fixes.size(), 4u);
  EXPECT_EQ(fixes[0].name, "rollback");
  EXPECT_EQ(fixes[0].kind, "rollback");
  EXPECT_EQ(fixes[0].rollback, std::vector<std::string>{"schema change: cart queries 40x slower"});
  // A rollback touches what the rolled-back deploy changed: the datastore.
  ASSERT_EQ(fixes[0].action.targets.size(), 1u);
  EXPECT_EQ(fixes[0].action.targets[0].component, "redis-cart");
  EXPECT_TRUE(fixes[0].action.targets[0].datastore);
  // The pool fix touches every cartservice instance.
  ASSERT_EQ(fixes[2].action.targets.size(), 1u);
  EXPECT_EQ(fixes[2].action.targets[0].component, "cartservice");
  EXPECT_EQ(fixes[2].action.targets[0].instances_touched, 2);
  EXPECT_EQ(fixes[2].arm_injections.size(), 1u);
  EXPECT_EQ(fixes[2].arm_injections[0]["kind"], "deploy");
  EXPECT_EQ(fixes[2].arm_injections[0]["start_s"], 30.0);
}

std::string error_of(const std::string& fixes) {
  const Bundled b;
  try {
    (void)parse_fixes(nlohmann::json::parse(fixes), "f.json", b.cause, b.topology);
  } catch (const InputError& error) {
    return error.what();
  }
  return "no error";
}

TEST(Fixes, ErrorsNameTheFileAndThePlace) {
  EXPECT_EQ(error_of(R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "at_s": 30}]})"),
            "f.json: /fixes/0: a fix needs a rollback, changes or injections");
  EXPECT_EQ(error_of(R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "rollback": ["a"]}]})"),
            "f.json: /fixes/0/at_s: expected the time the fix is applied, in seconds (>= 0)");
  EXPECT_EQ(
      error_of(
          R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "at_s": 30, "rollback": ["nope"]}]})"),
      "f.json: /fixes/0/rollback/0: the cause has no injection named \"nope\"");
  EXPECT_EQ(error_of(R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "at_s": 1, "colour": 1}]})"),
            "f.json: /fixes/0/colour: unknown member (expected name, description, kind, at_s, "
            "rollback, changes, injections, canary)");
  // A change the topology cannot take is reported at the change.
  const std::string bad_change =
      error_of(R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "at_s": 30,
      "changes": [{"set": "/edges/cartservice->redis-cart/connection_pool/size", "value": 8},
                  {"set": "/edges/cartservice->nowhere/timeout_ms", "value": 8}]}]})");
  EXPECT_EQ(bad_change.rfind("f.json: /fixes/0/changes/1", 0), 0u) << bad_change;
}

TEST(Fixes, ACanaryStagesTheChangesThenRollsThemOutEverywhere) {
  const Bundled b;
  const auto fixes = parse_fixes(nlohmann::json::parse(R"({"doppel": "fixes/v1", "fixes": [
      {"name": "bigger pool", "at_s": 30, "canary": {"instances": 1, "for_s": 10},
       "changes": [{"set": "/edges/cartservice->redis-cart/connection_pool/size", "value": 64}]}]})"),
                                 "f.json", b.cause, b.topology);
  ASSERT_EQ(fixes.size(), 1u);
  ASSERT_TRUE(fixes[0].canary.has_value());
  EXPECT_EQ(fixes[0].canary->instances, 1);
  EXPECT_DOUBLE_EQ(fixes[0].full_rollout_s(), 40.0);
  const auto& injections = fixes[0].arm_injections;
  ASSERT_EQ(injections.size(), 2u);
  EXPECT_EQ(injections[0]["start_s"], 30.0);
  EXPECT_EQ(injections[0]["end_s"], 40.0);
  EXPECT_EQ(injections[0]["parameters"]["canary"]["instances"], 1);
  EXPECT_EQ(injections[1]["start_s"], 40.0);
  EXPECT_FALSE(injections[1]["parameters"].contains("canary"));
}

TEST(Fixes, CanaryErrorsNameThePlace) {
  EXPECT_EQ(error_of(R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "at_s": 30,
      "rollback": ["schema change: cart queries 40x slower"],
      "canary": {"instances": 1, "for_s": 5}}]})"),
            "f.json: /fixes/0/canary: a canary stages a fix's changes; a rollback or injections "
            "reach every instance at once");
  EXPECT_EQ(error_of(R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "at_s": 30,
      "changes": [{"set": "/edges/cartservice->redis-cart/timeout_ms", "value": 900}],
      "canary": {"instances": 0, "for_s": 5}}]})"),
            "f.json: /fixes/0/canary/instances: expected how many instances of each service get "
            "the fix first (>= 1)");
  // A change every instance shares cannot be staged: the scenario loader's reason, placed at
  // the fix's canary.
  EXPECT_EQ(error_of(R"({"doppel": "fixes/v1", "fixes": [{"name": "index", "at_s": 30,
      "changes": [{"scale": "/datastores/redis-cart/queries/hget_cart/cost_ms/median_ms",
                   "by": 0.03125}],
      "canary": {"instances": 1, "for_s": 5}}]})"),
            "f.json: /fixes/0/canary: deploy at 30 s changes "
            "/datastores/0/queries/0/cost_ms/median_ms, which every instance shares: a canary "
            "can stage edge policies and operation CPU costs only");
}

}  // namespace
}  // namespace doppel::experiments

namespace doppel::experiments {
namespace {

ArmRuns arm_with(const std::vector<double>& err, const std::vector<double>& p99) {
  ArmRuns arm;
  for (std::size_t i = 0; i < err.size(); ++i) {
    arm.mean_series["all_routes_err"].push_back({double(i + 1), err[i]});
    arm.mean_series["all_routes_lat_99"].push_back({double(i + 1), p99[i]});
  }
  return arm;
}

TEST(RecoveryTime, FromTheFixToTheFirstRowThatStaysHealthy) {
  const ArmRuns healthy = arm_with({0, 0, 0, 0, 0, 0, 0, 0}, {10, 11, 10, 12, 10, 10, 11, 10});
  // Fixed at 3 s: still failing at 4, a healthy blip at 5, failing at 6, healthy from 7.
  const ArmRuns fix =
      arm_with({0.5, 0.5, 0.5, 0.4, 0.0, 0.2, 0.0, 0.0}, {900, 900, 900, 500, 15, 300, 12, 11});
  const auto recovery = recovery_time(healthy, fix, 3.0);
  ASSERT_TRUE(recovery.has_value());
  EXPECT_DOUBLE_EQ(*recovery, 4.0);
  // A p99 above twice the healthy median is not recovered, whatever the error rate.
  const ArmRuns slow = arm_with({0, 0, 0, 0, 0, 0, 0, 0}, {900, 900, 900, 900, 900, 900, 900, 25});
  EXPECT_FALSE(recovery_time(healthy, slow, 3.0).has_value());
}

TEST(LoadShifts, NamesTheServicesAFixLoadsBeyondBothOtherArms) {
  ArmRuns healthy;
  healthy.service_rps = {{"cart", 100.0}, {"db", 40.0},  {"email", 0.5},
                         {"idle", 0.0},   {"web", 50.0}, {"only-healthy", 3.0}};
  ArmRuns cause = healthy;
  cause.service_rps["db"] = 60.0;  // the cause's retries already load it
  ArmRuns fix;
  // cart +10% (under 25%); db 80 is x2 healthy but only +33% over the cause (listed); email
  // +0.9 req/s (under 1 req/s); idle starts taking traffic; web falls (not listed: failing
  // requests upstream); a service no other arm measured.
  fix.service_rps = {{"cart", 110.0}, {"db", 80.0}, {"email", 1.4},
                     {"idle", 2.0},   {"web", 5.0}, {"new", 9.0}};
  const auto shifts = load_shifts(healthy, cause, fix);
  ASSERT_EQ(shifts.size(), 2u);
  EXPECT_EQ(shifts[0].service, "db");
  EXPECT_DOUBLE_EQ(shifts[0].no_cause_rps, 40.0);
  EXPECT_DOUBLE_EQ(shifts[0].cause_rps, 60.0);
  EXPECT_DOUBLE_EQ(shifts[0].fix_rps, 80.0);
  EXPECT_EQ(shifts[1].service, "idle");
  // Judged against the busier of the two other arms: the cause at 70 leaves db's +14% unlisted.
  cause.service_rps["db"] = 70.0;
  EXPECT_EQ(load_shifts(healthy, cause, fix).size(), 1u);
  // Stricter thresholds keep only the large moves.
  EXPECT_TRUE(
      load_shifts(healthy, cause, fix, {.min_relative_increase = 1.5, .min_rps = 3.0}).empty());
}

TEST(MeanAfter, AveragesThePointsFromTheJudgedTimeOn) {
  MetricSeries series;
  series["x_workers_util"] = {{1.0, 1.0}, {2.0, 0.2}, {3.0, 0.4}, {4.0, 0.6}};
  EXPECT_DOUBLE_EQ(*mean_after(series, "x_workers_util", 2.0), 0.4);
  EXPECT_FALSE(mean_after(series, "x_workers_util", 5.0).has_value());
  EXPECT_FALSE(mean_after(series, "missing", 0.0).has_value());
}

}  // namespace
}  // namespace doppel::experiments
