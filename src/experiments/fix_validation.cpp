#include "doppel/experiments/fix_validation.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"

namespace doppel::experiments {

namespace {

using Json = nlohmann::json;

constexpr std::string_view kHostCpu = "_host_cpu";

// The <host>_host_cpu columns of a run's metrics (the hosts are the platform's, which the
// topology leaves to the twin's placement), in column-name order.
std::vector<std::string> host_columns(const std::vector<MetricSeries>& series) {
  std::vector<std::string> columns;
  if (series.empty()) return columns;
  for (const auto& [name, points] : series.front()) {
    if (name.size() > kHostCpu.size() && name.ends_with(kHostCpu)) columns.push_back(name);
  }
  return columns;
}

[[noreturn]] void fail(const std::string& file, const std::string& pointer,
                       const std::string& message) {
  throw InputError(file, InputLocation{pointer, {}, {}, {}}, message);
}

Json read_json(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), {}, "cannot open the file");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return Json::parse(text.str());
  } catch (const Json::parse_error& error) {
    throw InputError(file.string(),
                     InputLocation{"", {}, {}, static_cast<std::int64_t>(error.byte)},
                     "not valid JSON");
  }
}

// The cause with the fix applied: rolled-back injections end at the fix's time, the fix's own
// injections are added.
Json fix_arm_scenario(const Json& cause, const Fix& fix) {
  Json scenario = cause;
  scenario["name"] = fix.name;
  for (auto& injection : scenario["injections"]) {
    const std::string name = injection.value("name", "");
    if (std::find(fix.rollback.begin(), fix.rollback.end(), name) == fix.rollback.end()) continue;
    const double end = injection.contains("end_s") ? injection["end_s"].get<double>() : fix.at_s;
    injection["end_s"] = std::min(end, fix.at_s);
  }
  for (const auto& injection : fix.arm_injections) scenario["injections"].push_back(injection);
  return scenario;
}

// What a change pointer touches, for the automation policy's interlocks.
void add_targets(const Json& changes, const model::Topology& topology, FixAction& action) {
  const auto add = [&](const std::string& component, bool datastore) {
    for (const auto& target : action.targets) {
      if (target.component == component) return;
    }
    FixAction::Target target;
    target.component = component;
    target.datastore = datastore;
    if (const auto* service = topology.find_service(component)) {
      target.instances_touched = target.instances_total = std::max(1, service->replicas);
    }
    action.targets.push_back(std::move(target));
  };
  for (const auto& change : changes) {
    std::string pointer;
    for (const char* op : {"set", "scale", "remove"}) {
      if (change.contains(op) && change[op].is_string()) pointer = change[op].get<std::string>();
    }
    std::vector<std::string> parts;
    std::stringstream split(pointer);
    for (std::string part; std::getline(split, part, '/');) {
      if (!part.empty()) parts.push_back(part);
    }
    if (parts.size() < 2) {
      if (!parts.empty()) add(parts[0], false);
      continue;
    }
    if (parts[0] == "edges") {
      const auto arrow = parts[1].find("->");
      add(arrow == std::string::npos ? parts[1] : parts[1].substr(0, arrow), false);
    } else if (parts[0] == "datastores") {
      add(parts[1], true);
    } else if (parts[0] == "services") {
      add(parts[1], false);
    } else {
      add(parts[0], false);  // gateway, edge_defaults...
    }
  }
}

// The points of one metrics column in [from_s, to_s): their count, sum and largest value.
struct WindowPoints {
  int count = 0;
  double sum = 0.0;
  double peak = 0.0;  // 0 when there is none, as a peak of counts
};

WindowPoints window_points(const MetricSeries& series, const std::string& column, double from_s,
                           double to_s) {
  WindowPoints window;
  const auto found = series.find(column);
  if (found == series.end()) return window;
  for (const auto& point : found->second) {
    if (point.t_s < from_s || point.t_s >= to_s) continue;
    ++window.count;
    window.sum += point.value;
    window.peak = std::max(window.peak, point.value);
  }
  return window;
}

// The components a fix changes, for judge_fix.
FixVerdictOptions judging_options(const Fix& fix) {
  FixVerdictOptions options;
  for (const auto& target : fix.action.targets)
    options.touched_components.push_back(target.component);
  return options;
}

// Saturation figures over [from_s, to_s) of each replication's metrics: a datastore's refused
// connections (peak: one refusal is a failed request), each service's busy workers and each
// host's busy CPU (means: one busy second is a burst, not saturation).
void append_saturation(ArmResults& results, const std::vector<MetricSeries>& series,
                       const model::Topology& topology, double from_s, double to_s,
                       double busy_limit) {
  const auto over_window = [&](const MetricSeries& s, const std::string& column, bool peak) {
    const WindowPoints window = window_points(s, column, from_s, to_s);
    if (peak) return window.peak;
    return window.count == 0 ? std::numeric_limits<double>::quiet_NaN() : window.sum / window.count;
  };
  const auto figure = [&](std::string name, std::string unit, double limit,
                          const std::string& column, bool peak, std::string component) {
    std::vector<double> values;
    for (const auto& s : series) values.push_back(over_window(s, column, peak));
    results.figures.push_back(
        saturation_figure(std::move(name), std::move(unit), limit, values, std::move(component)));
  };
  for (const auto& datastore : topology.datastores) {
    figure(fmt::format("datastore {} refused connections (max_connections {})", datastore.name,
                       datastore.max_connections),
           "per s", 0.0, datastore.name + "_refused", true, datastore.name);
  }
  for (const auto& service : topology.services) {
    figure(fmt::format("service {} workers busy", service.name), "share", busy_limit,
           service.name + "_workers_util", false, service.name);
  }
  for (const auto& column : host_columns(series)) {
    const std::string host = column.substr(0, column.size() - kHostCpu.size());
    figure(fmt::format("host {} CPU busy", host), "share", busy_limit, column, false, host);
  }
}

MetricSeries mean_of(const std::vector<MetricSeries>& replications,
                     const std::vector<std::string>& metrics) {
  MetricSeries mean;
  for (const auto& metric : metrics) {
    TimeSeries sum;
    std::vector<int> counts;
    for (const auto& replication : replications) {
      const auto found = replication.find(metric);
      if (found == replication.end()) continue;
      for (std::size_t i = 0; i < found->second.size(); ++i) {
        if (sum.size() <= i) {
          sum.push_back({found->second[i].t_s, 0.0});
          counts.push_back(0);
        }
        sum[i].value += found->second[i].value;
        ++counts[i];
      }
    }
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i].value /= std::max(1, counts[i]);
    if (!sum.empty()) mean.emplace(metric, std::move(sum));
  }
  return mean;
}

}  // namespace

Json cause_document(const std::filesystem::path& scenario_file) {
  Json cause = read_json(scenario_file);
  if (!cause.is_object()) fail(scenario_file.string(), "", "expected a scenario/v1 object");
  cause.erase("topology");
  cause.erase("abort_conditions");
  if (!cause.contains("injections")) cause["injections"] = Json::array();
  return cause;
}

std::vector<Fix> parse_fixes(const Json& document, const std::string& file_label, const Json& cause,
                             const model::Topology& topology) {
  if (!document.is_object())
    fail(file_label, "", "expected an object with \"doppel\": \"fixes/v1\"");
  if (document.value("doppel", "") != kFixesFormat) {
    fail(file_label, "/doppel", fmt::format("expected \"{}\"", kFixesFormat));
  }
  const auto list = document.find("fixes");
  if (list == document.end() || !list->is_array() || list->empty()) {
    fail(file_label, "/fixes", "expected a non-empty array of fixes");
  }
  std::set<std::string> cause_injections;
  for (const auto& injection : cause.value("injections", Json::array())) {
    cause_injections.insert(injection.value("name", ""));
  }
  std::vector<Fix> fixes;
  std::set<std::string> names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string at = fmt::format("/fixes/{}", i);
    const Json& entry = (*list)[i];
    if (!entry.is_object()) fail(file_label, at, "expected an object");
    static const std::set<std::string> known = {"name",     "description", "kind",       "at_s",
                                                "rollback", "changes",     "injections", "canary"};
    for (const auto& [key, value] : entry.items()) {
      if (!known.contains(key)) {
        fail(file_label, at + "/" + key,
             "unknown member (expected name, description, kind, at_s, rollback, changes, "
             "injections, canary)");
      }
    }
    Fix fix;
    if (!entry.contains("name") || !entry["name"].is_string() ||
        entry["name"].get<std::string>().empty()) {
      fail(file_label, at + "/name", "expected a non-empty string");
    }
    fix.name = entry["name"].get<std::string>();
    if (!names.insert(fix.name).second) {
      fail(file_label, at + "/name", fmt::format("\"{}\" names an earlier fix too", fix.name));
    }
    if (entry.contains("description")) {
      if (!entry["description"].is_string())
        fail(file_label, at + "/description", "expected a string");
      fix.description = entry["description"].get<std::string>();
    }
    if (!entry.contains("at_s") || !entry["at_s"].is_number() || entry["at_s"].get<double>() < 0) {
      fail(file_label, at + "/at_s", "expected the time the fix is applied, in seconds (>= 0)");
    }
    fix.at_s = entry["at_s"].get<double>();
    if (entry.contains("rollback")) {
      const Json& rollback = entry["rollback"];
      if (!rollback.is_array())
        fail(file_label, at + "/rollback", "expected an array of injection names");
      for (std::size_t r = 0; r < rollback.size(); ++r) {
        const std::string place = fmt::format("{}/rollback/{}", at, r);
        if (!rollback[r].is_string()) fail(file_label, place, "expected an injection name");
        const std::string name = rollback[r].get<std::string>();
        if (!cause_injections.contains(name)) {
          fail(file_label, place, fmt::format("the cause has no injection named \"{}\"", name));
        }
        fix.rollback.push_back(name);
      }
    }
    if (entry.contains("changes")) {
      if (!entry["changes"].is_array())
        fail(file_label, at + "/changes", "expected an array of changes");
      fix.changes = entry["changes"];
    }
    if (entry.contains("injections")) {
      if (!entry["injections"].is_array())
        fail(file_label, at + "/injections", "expected an array");
      fix.injections = entry["injections"];
    }
    if (fix.rollback.empty() && fix.changes.empty() && fix.injections.empty()) {
      fail(file_label, at, "a fix needs a rollback, changes or injections");
    }
    if (entry.contains("canary")) {
      const Json& canary = entry["canary"];
      const std::string place = at + "/canary";
      if (!canary.is_object()) fail(file_label, place, "expected {\"instances\": N, \"for_s\": S}");
      for (const auto& [key, value] : canary.items()) {
        if (key != "instances" && key != "for_s") {
          fail(file_label, place + "/" + key, "unknown member (expected instances, for_s)");
        }
      }
      if (!canary.contains("instances") || !canary["instances"].is_number_integer() ||
          canary["instances"].get<std::int64_t>() < 1) {
        fail(file_label, place + "/instances",
             "expected how many instances of each service get the fix first (>= 1)");
      }
      if (!canary.contains("for_s") || !canary["for_s"].is_number() ||
          !(canary["for_s"].get<double>() > 0.0)) {
        fail(file_label, place + "/for_s",
             "expected how long the canary stage lasts, in seconds (> 0)");
      }
      if (!fix.rollback.empty() || !fix.injections.empty() || fix.changes.empty()) {
        fail(file_label, place,
             "a canary stages a fix's changes; a rollback or injections reach every instance "
             "at once");
      }
      fix.canary = FixCanary{static_cast<int>(canary["instances"].get<std::int64_t>()),
                             canary["for_s"].get<double>()};
    }
    fix.kind = entry.value("kind", fix.rollback.empty() ? "change" : "rollback");
    std::size_t own_deploy = 0;
    const std::size_t cause_count = cause.value("injections", Json::array()).size();
    if (!fix.changes.empty()) {
      own_deploy = cause_count + fix.arm_injections.size();
      if (fix.canary) {
        // The canary stage, then the same changes on every instance (docs/scenario-format.md).
        fix.arm_injections.push_back(
            Json{{"name", fix.name + " (canary)"},
                 {"kind", "deploy"},
                 {"start_s", fix.at_s},
                 {"end_s", fix.full_rollout_s()},
                 {"parameters",
                  {{"changes", fix.changes}, {"canary", {{"instances", fix.canary->instances}}}}}});
      }
      fix.arm_injections.push_back(Json{{"name", fix.name},
                                        {"kind", "deploy"},
                                        {"start_s", fix.full_rollout_s()},
                                        {"parameters", {{"changes", fix.changes}}}});
    }
    const std::size_t first_own = cause_count + fix.arm_injections.size();
    for (const auto& injection : fix.injections) fix.arm_injections.push_back(injection);

    // Checked as the scenario the fix arm runs; errors pointed back into the fixes file.
    try {
      (void)faults::parse_scenario(fix_arm_scenario(cause, fix), "fix", topology);
    } catch (const InputError& error) {
      const std::string& pointer = error.where().json_pointer;
      std::string place = at;
      const std::string deploy_prefix =
          fmt::format("/injections/{}/parameters/changes", own_deploy);
      if (!fix.changes.empty() && pointer.starts_with(deploy_prefix)) {
        place = at + "/changes" + pointer.substr(deploy_prefix.size());
      } else if (fix.canary &&
                 pointer == fmt::format("/injections/{}/parameters/canary", own_deploy)) {
        place = at + "/canary";
      } else {
        for (std::size_t j = 0; j < fix.injections.size(); ++j) {
          const std::string prefix = fmt::format("/injections/{}", first_own + j);
          if (pointer == prefix || pointer.starts_with(prefix + "/")) {
            place = fmt::format("{}/injections/{}{}", at, j, pointer.substr(prefix.size()));
          }
        }
      }
      fail(file_label, place, error.message());
    }

    fix.action.name = fix.name;
    fix.action.kind = fix.kind;
    fix.action.description = fix.description.empty() ? fix.name : fix.description;
    add_targets(fix.changes, topology, fix.action);
    for (const auto& injection : cause.value("injections", Json::array())) {
      if (std::find(fix.rollback.begin(), fix.rollback.end(), injection.value("name", "")) ==
          fix.rollback.end()) {
        continue;
      }
      add_targets(injection.value("parameters", Json::object()).value("changes", Json::array()),
                  topology, fix.action);
    }
    fixes.push_back(std::move(fix));
  }
  return fixes;
}

std::vector<Fix> load_fixes(const std::filesystem::path& file, const Json& cause,
                            const model::Topology& topology) {
  return parse_fixes(read_json(file), file.string(), cause, topology);
}

namespace {

// The canary stage's window, judged as the full rollout is but over per-second metrics.
CanaryCheck check_canary(const Fix& fix, const std::vector<MetricSeries>& no_cause,
                         const std::vector<MetricSeries>& cause,
                         const std::vector<MetricSeries>& with_fix, const model::Topology& topology,
                         const FixValidationOptions& options) {
  CanaryCheck check;
  check.instances = fix.canary->instances;
  check.from_s = fix.at_s + std::min(options.settle_s, fix.canary->for_s / 2.0);
  check.to_s = fix.full_rollout_s();
  const auto mean_over = [&](const std::vector<MetricSeries>& arm, const std::string& column) {
    WindowPoints all;
    for (const auto& s : arm) {
      const WindowPoints window = window_points(s, column, check.from_s, check.to_s);
      all.count += window.count;
      all.sum += window.sum;
    }
    return all.count == 0 ? 0.0 : all.sum / all.count;
  };
  check.err_no_cause = mean_over(no_cause, "all_routes_err");
  check.err_cause = mean_over(cause, "all_routes_err");
  check.err_fix = mean_over(with_fix, "all_routes_err");
  check.p99_no_cause = mean_over(no_cause, "all_routes_lat_99");
  check.p99_cause = mean_over(cause, "all_routes_lat_99");
  check.p99_fix = mean_over(with_fix, "all_routes_lat_99");

  ArmResults no_cause_figures;
  ArmResults cause_figures;
  ArmResults fix_figures;
  append_saturation(no_cause_figures, no_cause, topology, check.from_s, check.to_s,
                    options.busy_limit);
  append_saturation(cause_figures, cause, topology, check.from_s, check.to_s, options.busy_limit);
  append_saturation(fix_figures, with_fix, topology, check.from_s, check.to_s, options.busy_limit);
  check.breaks =
      judge_fix(fix.name, &no_cause_figures, cause_figures, fix_figures, judging_options(fix))
          .breaks;

  // Better or worse by a clear margin: a point of errors, or a fifth of the p99 the cause
  // added.
  const double p99_margin = 0.2 * std::max(0.0, check.p99_cause - check.p99_no_cause);
  const bool fewer_errors = check.err_fix < check.err_cause - 0.01;
  const bool more_errors = check.err_fix > check.err_cause + 0.01;
  const bool faster = p99_margin > 0.0 && check.p99_fix < check.p99_cause - p99_margin;
  const bool slower = p99_margin > 0.0 && check.p99_fix > check.p99_cause + p99_margin;
  const std::string figures = fmt::format(
      "errors over every route {:.3f} (cause alone {:.3f}), p99 {:.0f} ms (cause alone "
      "{:.0f} ms)",
      check.err_fix, check.err_cause, check.p99_fix, check.p99_cause);
  if (!check.breaks.empty()) {
    check.finding = fmt::format("stop at the canary: on {} instance(s) it already breaks {}",
                                check.instances, check.breaks.front());
  } else if (more_errors) {
    check.finding = fmt::format("stop at the canary: {}", figures);
  } else if (fewer_errors && slower) {
    check.finding = fmt::format("mixed: {}; hold at the canary and look closer", figures);
  } else if (fewer_errors || faster) {
    check.finding = fmt::format("the canary helps: {}", figures);
  } else {
    check.finding = fmt::format(
        "no clear signal from the canary: {}; its share of instances may be too small to show "
        "the fix at the routes, so watch the canary instances' own metrics",
        figures);
  }
  return check;
}

}  // namespace

FixValidation validate_fixes(const Json& cause, const std::vector<Fix>& fixes,
                             const model::Topology& topology, const FixValidationOptions& options) {
  FixValidation validation;
  validation.replications = std::max(1, options.replications);
  validation.duration_s = options.duration_s > 0.0
                              ? options.duration_s
                              : cause.value("duration_s", topology.workload.duration_s);
  double latest_fix = 0.0;
  for (const auto& fix : fixes) latest_fix = std::max(latest_fix, fix.full_rollout_s());
  validation.judge_from_s = latest_fix + options.settle_s;
  if (validation.judge_from_s >= validation.duration_s) {
    throw InputError(
        "--settle", {},
        fmt::format("the figures would start at {:g} s (latest fix {:g} s + settle "
                    "{:g} s), not before the end of the run ({:g} s)",
                    validation.judge_from_s, latest_fix, options.settle_s, validation.duration_s));
  }

  validation.no_cause.name = "no cause";
  validation.no_cause.scenario = cause;
  validation.no_cause.scenario["injections"] = Json::array();
  validation.cause.name = "cause";
  validation.cause.scenario = cause;
  for (const auto& fix : fixes) {
    ArmRuns arm;
    arm.name = fix.name;
    arm.scenario = fix_arm_scenario(cause, fix);
    validation.fixes.push_back(std::move(arm));
  }
  std::vector<ArmRuns*> arms = {&validation.no_cause, &validation.cause};
  for (auto& arm : validation.fixes) arms.push_back(&arm);

  std::vector<SimulationJob> jobs;
  for (std::size_t a = 0; a < arms.size(); ++a) {
    for (int r = 0; r < validation.replications; ++r) {
      SimulationJob job;
      job.scenario = arms[a]->scenario;
      job.seed = options.seed + static_cast<std::uint64_t>(r);
      job.duration_s = validation.duration_s;
      job.judge_from_s = validation.judge_from_s;
      job.dir = options.work_dir / fmt::format("{:02}-{}", a, directory_name(arms[a]->name)) /
                fmt::format("rep-{:03}", r);
      arms[a]->replication_dirs.push_back(job.dir);
      jobs.push_back(std::move(job));
    }
  }
  run_batch(jobs, options.batch);
  validation.simulations = static_cast<int>(jobs.size());

  std::vector<std::string> curve_metrics = {"all_routes_err", "all_routes_lat_99"};
  for (const auto& route : topology.gateway.routes) {
    curve_metrics.push_back("route_" + route.name + "_err");
    curve_metrics.push_back("route_" + route.name + "_lat_99");
  }
  std::vector<std::vector<MetricSeries>> arm_series;
  for (ArmRuns* arm : arms) {
    std::vector<telemetry::Summary> summaries;
    std::vector<MetricSeries>& series = arm_series.emplace_back();
    for (const auto& dir : arm->replication_dirs) {
      summaries.push_back(read_judged_slos(dir));
      series.push_back(read_job_metrics(dir));
    }
    arm->figures = figures_from_summaries(summaries);
    append_saturation(arm->figures, series, topology, validation.judge_from_s,
                      std::numeric_limits<double>::infinity(), options.busy_limit);
    for (const auto& service : topology.services) {
      double sum = 0.0;
      int replications = 0;
      for (const auto& s : series) {
        if (const auto rps = mean_after(s, service.name + "_rps", validation.judge_from_s)) {
          sum += *rps;
          ++replications;
        }
      }
      if (replications > 0) arm->service_rps[service.name] = sum / replications;
    }
    arm->mean_series = mean_of(series, curve_metrics);
  }
  for (std::size_t f = 0; f < fixes.size(); ++f) {
    validation.verdicts.push_back(judge_fix(fixes[f].name, &validation.no_cause.figures,
                                            validation.cause.figures, validation.fixes[f].figures,
                                            judging_options(fixes[f])));
    validation.recommendations.push_back(
        recommend(validation.verdicts.back(), fixes[f].action, options.policy));
    validation.recovery_s.push_back(
        recovery_time(validation.no_cause, validation.fixes[f], fixes[f].at_s));
    validation.load_shifts.push_back(
        load_shifts(validation.no_cause, validation.cause, validation.fixes[f]));
    validation.canary_checks.push_back(
        fixes[f].canary ? std::optional(check_canary(fixes[f], arm_series[0], arm_series[1],
                                                     arm_series[2 + f], topology, options))
                        : std::nullopt);
    auto& canary = validation.canary_checks.back();
    const auto& verdict = validation.verdicts.back();
    if (canary && canary->breaks.empty() && verdict.kind == VerdictKind::reject_harmful &&
        !verdict.breaks.empty()) {
      // The point of simulating the whole rollout: harm that needs every instance (a pool
      // total past a database's limit) never shows on the canary's share.
      canary->finding +=
          fmt::format("; but the full rollout breaks {}, which this canary stage does not show",
                      verdict.breaks.front());
    }
  }
  return validation;
}

std::vector<LoadShift> load_shifts(const ArmRuns& no_cause, const ArmRuns& cause,
                                   const ArmRuns& fix, const LoadShiftOptions& options) {
  const auto rate = [](const ArmRuns& arm, const std::string& service) -> std::optional<double> {
    const auto found = arm.service_rps.find(service);
    if (found == arm.service_rps.end()) return std::nullopt;
    return found->second;
  };
  std::vector<LoadShift> shifts;
  for (const auto& [service, fix_rps] : fix.service_rps) {
    const auto healthy = rate(no_cause, service);
    const auto with_cause = rate(cause, service);
    if (!healthy || !with_cause) continue;
    const double before = std::max(*healthy, *with_cause);
    if (fix_rps - before < options.min_rps) continue;
    if (before > 0.0 && fix_rps / before - 1.0 < options.min_relative_increase) continue;
    shifts.push_back({service, *healthy, *with_cause, fix_rps});
  }
  return shifts;
}

std::optional<double> recovery_time(const ArmRuns& no_cause, const ArmRuns& fix, double fix_at_s) {
  const auto series = [](const ArmRuns& arm, const char* metric) -> const TimeSeries* {
    const auto found = arm.mean_series.find(metric);
    return found == arm.mean_series.end() ? nullptr : &found->second;
  };
  const TimeSeries* healthy_err = series(no_cause, "all_routes_err");
  const TimeSeries* healthy_p99 = series(no_cause, "all_routes_lat_99");
  const TimeSeries* err = series(fix, "all_routes_err");
  const TimeSeries* p99 = series(fix, "all_routes_lat_99");
  if (!healthy_err || !healthy_p99 || !err || !p99 || err->empty()) return std::nullopt;
  double worst_err = 0.0;
  for (const auto& point : *healthy_err) worst_err = std::max(worst_err, point.value);
  std::vector<double> p99s;
  for (const auto& point : *healthy_p99) p99s.push_back(point.value);
  if (p99s.empty()) return std::nullopt;
  std::nth_element(p99s.begin(), p99s.begin() + static_cast<std::ptrdiff_t>(p99s.size() / 2),
                   p99s.end());
  const double p99_limit = 2.0 * p99s[p99s.size() / 2];
  const double err_limit = worst_err + 0.01;
  // Walking back from the end: the earliest row after which every row is healthy.
  std::optional<double> recovered;
  std::size_t j = p99->size();
  for (std::size_t i = err->size(); i-- > 0;) {
    const double t = (*err)[i].t_s;
    if (t < fix_at_s) break;
    while (j > 0 && (*p99)[j - 1].t_s > t) --j;
    const bool p99_ok = j == 0 || (*p99)[j - 1].t_s != t || (*p99)[j - 1].value <= p99_limit;
    if ((*err)[i].value > err_limit || !p99_ok) break;
    recovered = t;
  }
  // A row stamped t covers (t - 1 row, t]: the recovery happened within the row.
  if (recovered) return std::max(0.0, *recovered - fix_at_s);
  return std::nullopt;
}

namespace {

Json canary_json(const std::optional<CanaryCheck>& check) {
  if (!check) return Json();
  return Json{
      {"instances", check->instances},
      {"from_s", check->from_s},
      {"to_s", check->to_s},
      {"all_routes_err",
       {{"no_cause", check->err_no_cause}, {"cause", check->err_cause}, {"fix", check->err_fix}}},
      {"all_routes_lat_99_ms",
       {{"no_cause", check->p99_no_cause}, {"cause", check->p99_cause}, {"fix", check->p99_fix}}},
      {"breaks", check->breaks},
      {"finding", check->finding}};
}

}  // namespace

void write_validation_json(std::ostream& out, const FixValidation& validation) {
  const auto interval_json = [](const FigureInterval& interval) {
    const auto finite = [](double v) { return std::isfinite(v) ? Json(v) : Json(); };
    return Json{{"replications", interval.replications},
                {"mean", finite(interval.mean)},
                {"lower", finite(interval.lower)},
                {"upper", finite(interval.upper)}};
  };
  Json fixes = Json::array();
  for (std::size_t f = 0; f < validation.verdicts.size(); ++f) {
    const auto& verdict = validation.verdicts[f];
    const auto& recommendation = validation.recommendations[f];
    Json figures = Json::array();
    for (const auto& figure : verdict.figures) {
      Json json{{"name", figure.name},
                {"kind", figure.kind == Figure::Kind::slo ? "slo" : "saturation"},
                {"unit", figure.unit},
                {"limit", figure.limit},
                {"cause", interval_json(figure.cause)},
                {"fix", interval_json(figure.fix)},
                {"broken_by_cause", figure.broken_by_cause},
                {"outcome", figure.outcome}};
      if (figure.no_cause) json["no_cause"] = interval_json(*figure.no_cause);
      figures.push_back(std::move(json));
    }
    Json rollout = Json::array();
    for (const auto& stage : recommendation.rollout) {
      rollout.push_back({{"share", stage.share}, {"action", stage.action}, {"check", stage.check}});
    }
    const auto& recovery = validation.recovery_s[f];
    Json shifts = Json::array();
    for (const auto& shift : validation.load_shifts[f]) {
      shifts.push_back({{"service", shift.service},
                        {"no_cause_rps", shift.no_cause_rps},
                        {"cause_rps", shift.cause_rps},
                        {"fix_rps", shift.fix_rps}});
    }
    fixes.push_back({{"fix", verdict.fix},
                     {"verdict", to_string(verdict.kind)},
                     {"recovery_s", recovery ? Json(*recovery) : Json()},
                     {"reason", verdict.reason},
                     {"breaks", verdict.breaks},
                     {"uncertain_figure", verdict.uncertain_figure},
                     {"suggested_replications", verdict.suggested_replications},
                     {"automation",
                      {{"level", to_string(recommendation.level)},
                       {"needs_human_approval", recommendation.needs_human_approval},
                       {"approval_reasons", recommendation.approval_reasons},
                       {"rollout", std::move(rollout)}}},
                     {"load_shifts", std::move(shifts)},
                     {"canary", canary_json(validation.canary_checks[f])},
                     {"figures", std::move(figures)}});
  }
  const Json doc{{"format", "doppel-validation/v1"},      {"judge_from_s", validation.judge_from_s},
                 {"duration_s", validation.duration_s},   {"replications", validation.replications},
                 {"simulations", validation.simulations}, {"fixes", std::move(fixes)}};
  out << doc.dump(2) << '\n';
}

}  // namespace doppel::experiments
