#include "doppel/experiments/automation_policy.hpp"

#include <sstream>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"

namespace doppel::experiments {
namespace {

FixVerdict verdict_of(VerdictKind kind) {
  FixVerdict verdict;
  verdict.fix = "bigger pool";
  verdict.kind = kind;
  verdict.reason = "because";
  FigureComparison figure;
  figure.name = "route checkout p99 latency";
  figure.unit = "ms";
  figure.limit = 500;
  figure.cause = {5, 2500, 2400, 2600};
  figure.fix = {5, 230, 220, 240};
  figure.outcome = "recovers";
  verdict.figures.push_back(figure);
  return verdict;
}

FixAction pool_change(int touched, int total, bool datastore = false) {
  FixAction action;
  action.name = "bigger pool";
  action.kind = "pool_size";
  action.description = "orders -> orders-db pool 50 -> 80";
  action.targets.push_back({datastore ? "orders-db" : "orders", datastore, touched, total});
  return action;
}

const char* kPolicy = R"({
  "format": "doppel-automation-policy/v1",
  "levels": {"pool_size": "automate_with_approval", "rollback": "recommend"},
  "interlocks": {"max_instance_share_without_approval": 0.25,
                 "datastore_changes_need_approval": true},
  "rollout": {"stages": [0.05, 0.25, 1], "observe_each_stage_s": 900}
})";

TEST(AutomationPolicy, ParsesLevelsInterlocksAndStages) {
  const auto policy = parse_automation_policy(kPolicy, "policy.json");
  EXPECT_EQ(policy.level_for("pool_size"), AutomationLevel::automate_with_approval);
  EXPECT_EQ(policy.level_for("rollback"), AutomationLevel::recommend);
  EXPECT_EQ(policy.level_for("route_change"), AutomationLevel::report_only);  // unlisted
  EXPECT_EQ(policy.rollout_stages, (std::vector<double>{0.05, 0.25, 1.0}));
  EXPECT_DOUBLE_EQ(policy.observe_each_stage_s, 900.0);
}

TEST(AutomationPolicy, BadPoliciesNameThePlace) {
  const auto error = [](const std::string& text) {
    try {
      parse_automation_policy(text, "policy.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(R"({"levels":{"pool_size":"yolo"}})"),
            "policy.json: /levels/pool_size: expected \"report_only\", \"recommend\" or "
            "\"automate_with_approval\"");
  EXPECT_EQ(error(R"({"rollout":{"stages":[0.5,0.2,1]}})"),
            "policy.json: /rollout/stages/1: stages must be shares that rise up to 1");
  EXPECT_EQ(error(R"({"rollout":{"stages":[0.5]}})"),
            "policy.json: /rollout/stages: the last stage must be 1 (every instance)");
  EXPECT_EQ(error(R"({"interlocks":{"max_share":1}})"),
            "policy.json: /interlocks/max_share: unknown key 'max_share'");
}

TEST(AutomationPolicy, RecommendedFixGetsAStagedPlanCanaryFirst) {
  const auto policy = parse_automation_policy(kPolicy, "policy.json");
  const auto recommendation =
      recommend(verdict_of(VerdictKind::recommend), pool_change(1, 10), policy);
  EXPECT_EQ(recommendation.level, AutomationLevel::automate_with_approval);
  EXPECT_TRUE(recommendation.needs_human_approval);  // automation always waits for a person
  EXPECT_TRUE(recommendation.approval_reasons.empty());
  ASSERT_EQ(recommendation.rollout.size(), 3U);
  EXPECT_DOUBLE_EQ(recommendation.rollout[0].share, 0.05);
  EXPECT_EQ(recommendation.rollout[0].action,
            "apply orders -> orders-db pool 50 -> 80 on 5% of the instances");
  EXPECT_NE(recommendation.rollout[0].check.find("route checkout p99 latency <= 500 ms"),
            std::string::npos);
  ASSERT_EQ(recommendation.evidence.size(), 2U);
  EXPECT_NE(recommendation.evidence[1].find("cause 2500 ms [2400, 2600] (n=5)"), std::string::npos)
      << recommendation.evidence[1];
}

TEST(AutomationPolicy, InterlocksDemandApproval) {
  const auto policy = parse_automation_policy(kPolicy, "policy.json");
  auto rollback = pool_change(6, 10, true);
  rollback.kind = "rollback";
  const auto recommendation = recommend(verdict_of(VerdictKind::recommend), rollback, policy);
  EXPECT_EQ(recommendation.level, AutomationLevel::recommend);
  EXPECT_TRUE(recommendation.needs_human_approval);
  ASSERT_EQ(recommendation.approval_reasons.size(), 2U);
  EXPECT_EQ(recommendation.approval_reasons[0], "changes datastore orders-db");
  EXPECT_EQ(recommendation.approval_reasons[1],
            "touches 6 of 10 instances of orders-db (60%, above the 25% allowed without approval)");

  auto small_rollback = pool_change(1, 10);
  small_rollback.kind = "rollback";
  EXPECT_FALSE(
      recommend(verdict_of(VerdictKind::recommend), small_rollback, policy).needs_human_approval);
}

TEST(AutomationPolicy, RejectedOrUncertainFixesAreReportOnlyWithoutPlan) {
  const auto policy = parse_automation_policy(kPolicy, "policy.json");
  for (auto kind :
       {VerdictKind::reject_harmful, VerdictKind::reject_ineffective, VerdictKind::needs_review}) {
    const auto recommendation = recommend(verdict_of(kind), pool_change(1, 10), policy);
    EXPECT_EQ(recommendation.level, AutomationLevel::report_only);
    EXPECT_TRUE(recommendation.rollout.empty());
  }
}

TEST(AutomationPolicy, PrintedPlanIsTextForPeople) {
  const auto policy = parse_automation_policy(kPolicy, "policy.json");
  std::ostringstream out;
  print_recommendation(out,
                       recommend(verdict_of(VerdictKind::recommend), pool_change(1, 10), policy));
  const std::string text = out.str();
  EXPECT_NE(text.find("rollout plan (Doppel applies nothing; a person runs each stage)"),
            std::string::npos);
  EXPECT_NE(text.find("1. apply"), std::string::npos);
  EXPECT_NE(text.find("3. extend"), std::string::npos);
}

}  // namespace
}  // namespace doppel::experiments
