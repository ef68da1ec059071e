// What Doppel may do with a fix verdict: never change production itself. An automation policy
// (format "doppel-automation-policy/v1", docs/diagnosis.md) sets, per kind of action, how far
// a recommendation may go, and interlocks that always call for a human. The output is a
// recommendation with its evidence and a staged rollout plan, as text for people to act on.
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/experiments/fix_verdict.hpp"

namespace doppel::experiments {

enum class AutomationLevel { report_only, recommend, automate_with_approval };
std::string_view to_string(AutomationLevel level);

struct AutomationPolicy {
  // Action kind ("pool_size", "rollback", "timeout", ...) -> level; "*" for the rest.
  std::map<std::string, AutomationLevel, std::less<>> levels{{"*", AutomationLevel::recommend}};
  // Interlocks: a fix touching more than this share of a component's instances, or any
  // datastore, always needs a human's approval.
  double max_instance_share_without_approval = 0.25;
  bool datastore_changes_need_approval = true;
  // Rollout: instance shares of each stage, ascending, the last one 1; and how long to watch
  // the SLOs at each stage before the next.
  std::vector<double> rollout_stages{0.1, 0.5, 1.0};
  double observe_each_stage_s = 600.0;

  AutomationLevel level_for(std::string_view action_kind) const;
};

AutomationPolicy load_automation_policy(const std::filesystem::path& file);
AutomationPolicy parse_automation_policy(std::string_view json_text, const std::string& file_label);

// What a fix changes, as the policy needs to know it.
struct FixAction {
  std::string name;         // the fix's name, as in its verdict
  std::string kind;         // "pool_size", "rollback", "index", "timeout"...
  std::string description;  // "orders -> orders-db pool 50 -> 150"
  struct Target {
    std::string component;
    bool datastore = false;
    int instances_touched = 1;
    int instances_total = 1;
  };
  std::vector<Target> targets;
};

struct RolloutStage {
  double share = 0.0;  // of instances
  std::string action;  // what a person does at this stage
  std::string check;   // what to watch before going on
};

struct Recommendation {
  std::string fix;
  VerdictKind verdict = VerdictKind::needs_review;
  AutomationLevel level = AutomationLevel::report_only;  // after verdict and interlocks
  bool needs_human_approval = true;
  std::vector<std::string> approval_reasons;  // the interlocks that fired
  std::vector<std::string> evidence;          // figure by figure, the three arms
  std::vector<RolloutStage> rollout;          // empty unless the verdict is recommend
};

// Only a `recommend` verdict earns a rollout plan; anything else is reported only.
Recommendation recommend(const FixVerdict& verdict, const FixAction& action,
                         const AutomationPolicy& policy);

// recommendations.md-style text: for people, never a script.
void print_recommendation(std::ostream& out, const Recommendation& recommendation);

}  // namespace doppel::experiments
