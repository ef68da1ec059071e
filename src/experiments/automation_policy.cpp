#include "doppel/experiments/automation_policy.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/model/input_error.hpp"

namespace doppel::experiments {
namespace {

using nlohmann::json;

InputLocation at(std::string pointer) {
  InputLocation where;
  where.json_pointer = std::move(pointer);
  return where;
}

AutomationLevel parse_level(const json& value, const std::string& pointer,
                            const std::string& label) {
  if (value.is_string()) {
    const auto text = value.get<std::string>();
    if (text == "report_only") return AutomationLevel::report_only;
    if (text == "recommend") return AutomationLevel::recommend;
    if (text == "automate_with_approval") return AutomationLevel::automate_with_approval;
  }
  throw InputError(label, at(pointer),
                   "expected \"report_only\", \"recommend\" or \"automate_with_approval\"");
}

void reject_unknown(const json& object, std::initializer_list<std::string_view> known,
                    const std::string& pointer, const std::string& label) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw InputError(label, at(pointer + "/" + key), fmt::format("unknown key '{}'", key));
    }
  }
}

std::string percent(double share) {
  return fmt::format("{:.3g}%", share * 100.0);
}

std::string describe_interval(const FigureInterval& interval, const std::string& unit) {
  if (interval.replications == 0) return "no data";
  if (!std::isfinite(interval.lower)) {
    return fmt::format("{:.4g} {} (n={})", interval.mean, unit, interval.replications);
  }
  return fmt::format("{:.4g} {} [{:.4g}, {:.4g}] (n={})", interval.mean, unit, interval.lower,
                     interval.upper, interval.replications);
}

}  // namespace

std::string_view to_string(AutomationLevel level) {
  switch (level) {
    case AutomationLevel::report_only:
      return "report_only";
    case AutomationLevel::recommend:
      return "recommend";
    case AutomationLevel::automate_with_approval:
      return "automate_with_approval";
  }
  return "?";
}

AutomationLevel AutomationPolicy::level_for(std::string_view action_kind) const {
  if (const auto found = levels.find(action_kind); found != levels.end()) return found->second;
  if (const auto fallback = levels.find("*"); fallback != levels.end()) return fallback->second;
  return AutomationLevel::report_only;
}

AutomationPolicy parse_automation_policy(std::string_view text, const std::string& label) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& error) {
    InputLocation where;
    where.byte_offset = static_cast<std::int64_t>(error.byte);
    throw InputError(label, where, "not valid JSON");
  }
  if (!doc.is_object()) throw InputError(label, at(""), "expected a JSON object");
  reject_unknown(doc, {"format", "levels", "interlocks", "rollout"}, "", label);
  if (const auto format = doc.find("format"); format != doc.end()) {
    if (!format->is_string() || *format != "doppel-automation-policy/v1") {
      throw InputError(label, at("/format"), "expected \"doppel-automation-policy/v1\"");
    }
  }
  AutomationPolicy policy;
  if (const auto levels = doc.find("levels"); levels != doc.end()) {
    if (!levels->is_object()) throw InputError(label, at("/levels"), "expected an object");
    policy.levels.clear();
    for (const auto& [kind, level] : levels->items()) {
      policy.levels[kind] = parse_level(level, "/levels/" + kind, label);
    }
    // Unlisted kinds are reported only: a policy that names kinds means the rest is not
    // cleared for anything.
    policy.levels.try_emplace("*", AutomationLevel::report_only);
  }
  if (const auto interlocks = doc.find("interlocks"); interlocks != doc.end()) {
    if (!interlocks->is_object()) throw InputError(label, at("/interlocks"), "expected an object");
    reject_unknown(*interlocks,
                   {"max_instance_share_without_approval", "datastore_changes_need_approval"},
                   "/interlocks", label);
    if (const auto share = interlocks->find("max_instance_share_without_approval");
        share != interlocks->end()) {
      if (!share->is_number() || *share < 0.0 || *share > 1.0) {
        throw InputError(label, at("/interlocks/max_instance_share_without_approval"),
                         "expected a share between 0 and 1");
      }
      policy.max_instance_share_without_approval = share->get<double>();
    }
    if (const auto datastore = interlocks->find("datastore_changes_need_approval");
        datastore != interlocks->end()) {
      if (!datastore->is_boolean()) {
        throw InputError(label, at("/interlocks/datastore_changes_need_approval"),
                         "expected true or false");
      }
      policy.datastore_changes_need_approval = datastore->get<bool>();
    }
  }
  if (const auto rollout = doc.find("rollout"); rollout != doc.end()) {
    if (!rollout->is_object()) throw InputError(label, at("/rollout"), "expected an object");
    reject_unknown(*rollout, {"stages", "observe_each_stage_s"}, "/rollout", label);
    if (const auto stages = rollout->find("stages"); stages != rollout->end()) {
      if (!stages->is_array() || stages->empty()) {
        throw InputError(label, at("/rollout/stages"), "expected a non-empty array of shares");
      }
      policy.rollout_stages.clear();
      for (std::size_t i = 0; i < stages->size(); ++i) {
        const json& share = (*stages)[i];
        const double previous = policy.rollout_stages.empty() ? 0.0 : policy.rollout_stages.back();
        if (!share.is_number() || share <= previous || share > 1.0) {
          throw InputError(label, at(fmt::format("/rollout/stages/{}", i)),
                           "stages must be shares that rise up to 1");
        }
        policy.rollout_stages.push_back(share.get<double>());
      }
      if (policy.rollout_stages.back() != 1.0) {
        throw InputError(label, at("/rollout/stages"), "the last stage must be 1 (every instance)");
      }
    }
    if (const auto observe = rollout->find("observe_each_stage_s"); observe != rollout->end()) {
      if (!observe->is_number() || *observe < 0.0) {
        throw InputError(label, at("/rollout/observe_each_stage_s"), "expected seconds >= 0");
      }
      policy.observe_each_stage_s = observe->get<double>();
    }
  }
  return policy;
}

AutomationPolicy load_automation_policy(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), {}, "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_automation_policy(text.str(), file.string());
}

Recommendation recommend(const FixVerdict& verdict, const FixAction& action,
                         const AutomationPolicy& policy) {
  Recommendation recommendation;
  recommendation.fix = verdict.fix;
  recommendation.verdict = verdict.kind;
  recommendation.evidence.push_back(
      fmt::format("verdict: {} - {}", to_string(verdict.kind), verdict.reason));
  for (const auto& figure : verdict.figures) {
    std::string line = fmt::format("{} (limit {:g} {}): ", figure.name, figure.limit, figure.unit);
    if (figure.no_cause)
      line += "no cause " + describe_interval(*figure.no_cause, figure.unit) + "; ";
    line += "cause " + describe_interval(figure.cause, figure.unit) + "; ";
    line += "with fix " + describe_interval(figure.fix, figure.unit) + " -> " + figure.outcome;
    recommendation.evidence.push_back(std::move(line));
  }

  for (const auto& target : action.targets) {
    if (target.datastore && policy.datastore_changes_need_approval) {
      recommendation.approval_reasons.push_back(
          fmt::format("changes datastore {}", target.component));
    }
    if (target.instances_total > 0) {
      const double share = static_cast<double>(target.instances_touched) /
                           static_cast<double>(target.instances_total);
      if (share > policy.max_instance_share_without_approval) {
        recommendation.approval_reasons.push_back(fmt::format(
            "touches {} of {} instances of {} ({}, above the {} allowed without approval)",
            target.instances_touched, target.instances_total, target.component, percent(share),
            percent(policy.max_instance_share_without_approval)));
      }
    }
  }

  // Automation always waits for an approval, and the interlocks demand one whatever the level.
  recommendation.needs_human_approval = !recommendation.approval_reasons.empty();
  if (verdict.kind != VerdictKind::recommend) {
    recommendation.level = AutomationLevel::report_only;
    return recommendation;
  }
  recommendation.level = policy.level_for(action.kind);
  if (recommendation.level == AutomationLevel::automate_with_approval) {
    recommendation.needs_human_approval = true;
  }
  if (recommendation.level == AutomationLevel::report_only) return recommendation;

  std::string watched;
  for (const auto& figure : verdict.figures) {
    watched += (watched.empty() ? "" : ", ") +
               fmt::format("{} <= {:g} {}", figure.name, figure.limit, figure.unit);
  }
  for (std::size_t i = 0; i < policy.rollout_stages.size(); ++i) {
    const double share = policy.rollout_stages[i];
    RolloutStage stage;
    stage.share = share;
    stage.action =
        fmt::format("{} {} on {} of the instances", i == 0 ? "apply" : "extend",
                    action.description.empty() ? action.name : action.description, percent(share));
    stage.check = fmt::format("watch for {:g} s: {}; roll back on any breach",
                              policy.observe_each_stage_s, watched.empty() ? "the SLOs" : watched);
    recommendation.rollout.push_back(std::move(stage));
  }
  return recommendation;
}

void print_recommendation(std::ostream& out, const Recommendation& recommendation) {
  out << fmt::format("fix: {}\nverdict: {}\nautomation level: {}\n", recommendation.fix,
                     to_string(recommendation.verdict), to_string(recommendation.level));
  out << "human approval: "
      << (!recommendation.needs_human_approval ? "not required by the policy"
          : recommendation.approval_reasons.empty()
              ? "required (automated actions always wait for one)"
              : "required, because ");
  for (std::size_t i = 0; i < recommendation.approval_reasons.size(); ++i) {
    out << (i > 0 ? "; " : "") << recommendation.approval_reasons[i];
  }
  out << "\nevidence:\n";
  for (const auto& line : recommendation.evidence) out << "  - " << line << '\n';
  if (!recommendation.rollout.empty()) {
    out << "rollout plan (Doppel applies nothing; a person runs each stage):\n";
    for (std::size_t i = 0; i < recommendation.rollout.size(); ++i) {
      out << fmt::format("  {}. {}; {}\n", i + 1, recommendation.rollout[i].action,
                         recommendation.rollout[i].check);
    }
  }
}

}  // namespace doppel::experiments
