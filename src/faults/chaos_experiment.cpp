// Chaos Toolkit experiments: reading them, laying them out on the twin's clock, judging them.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <re2/re2.h>

#include "doppel/faults/chaos_toolkit.hpp"
#include "doppel/model/input_error.hpp"

#include "model/did_you_mean.hpp"
#include "model/json_reader.hpp"

namespace doppel::faults::chaos {

namespace {

using model::detail::JsonObject;
using model::detail::JsonValue;
using nlohmann::json;

json read_json_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), {}, "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return model::detail::parse_json_text(text.str(), file.string());
}

// ensure_hypothesis_tolerance_is_valid, with the jsonpath subset and RE2 of Doppel.
void check_tolerance(const JsonValue& value) {
  const json& t = value.raw();
  if (t.is_boolean() || t.is_number_integer() || t.is_number_unsigned() || t.is_string() ||
      t.is_array()) {
    return;
  }
  if (!t.is_object()) {
    value.fail(
        fmt::format("a tolerance is a bool, an integer, a string, a list or an object, "
                    "got {}",
                    model::detail::describe_json_value(t)));
  }
  const JsonObject o(value, {"type", "pattern", "path", "expect", "count", "range", "target",
                             "name", "provider", "arguments"});
  const std::string type = o.at("type").as_string();
  if (type == "probe") {
    o.at("type").fail(
        "a \"probe\" tolerance runs the user's Python code, which Doppel cannot "
        "run; use a regex, jsonpath or range tolerance");
  } else if (type == "regex") {
    const JsonValue pattern = o.at("pattern");
    const RE2 regex(pattern.as_string(), RE2::Quiet);
    if (!regex.ok()) {
      pattern.fail(fmt::format("invalid regular expression (RE2 syntax): {}", regex.error()));
    }
  } else if (type == "jsonpath") {
    const JsonValue path = o.at("path");
    if (!json_path_values(path.as_string(), json::object())) {
      path.fail(
          fmt::format("\"{}\" is outside the JSONPath subset Doppel reads ($, .name, "
                      "['name'], [index], [*], .*)",
                      path.as_string()));
    }
  } else if (type == "range") {
    const JsonValue range = o.at("range");
    const auto bounds = range.as_array();
    if (bounds.size() != 2) range.fail("a range is made of two values");
    bounds[0].as_number();
    bounds[1].as_number();
  } else {
    o.at("type").as_enum<int>({{"probe", 0}, {"regex", 1}, {"jsonpath", 2}, {"range", 3}});
  }
}

Activity read_activity(const JsonValue& value, bool needs_tolerance) {
  const JsonObject o(value, {"type", "name", "provider", "pauses", "background", "tolerance",
                             "controls", "configuration", "secrets", "ref"});
  Activity activity;
  activity.pointer = value.pointer();
  activity.type = o.at("type").as_enum<Activity::Type>(
      {{"probe", Activity::Type::probe}, {"action", Activity::Type::action}});
  activity.name = o.at("name").as_string();
  if (activity.name.empty()) o.at("name").fail("must not be empty");
  const JsonObject provider(
      o.at("provider"),
      {"type", "module", "func", "arguments", "url", "method", "headers", "timeout", "path",
       "expected_status", "verify_tls", "secrets", "max_retries"});
  activity.provider = provider.at("type").as_string();
  provider.at("type").as_enum<int>({{"python", 0}, {"http", 1}, {"process", 2}});
  if (activity.provider == "python") {
    provider.at("module").as_string();
    provider.at("func").as_string();
  } else if (activity.provider == "http") {
    activity.url = provider.at("url").as_string();
  } else {
    provider.at("path").as_string();
  }
  if (auto pauses = o.find("pauses")) {
    const JsonObject p = pauses->as_object({"before", "after"});
    if (auto b = p.find("before")) activity.pause_before_s = b->number_at_least(0.0);
    if (auto a = p.find("after")) activity.pause_after_s = a->number_at_least(0.0);
  }
  if (auto b = o.find("background")) {
    if (!b->raw().is_boolean()) b->fail("expected true or false");
    activity.background = b->raw().get<bool>();
  }
  if (auto t = o.find("tolerance")) {
    check_tolerance(*t);
    activity.tolerance = t->raw();
  } else if (needs_tolerance) {
    o.fail("a hypothesis probe must have a tolerance");
  }
  if (needs_tolerance && activity.type != Activity::Type::probe) {
    o.at("type").fail("the steady-state hypothesis holds probes only");
  }
  return activity;
}

// An activity or a {"ref": name} to one declared elsewhere in the experiment.
struct ActivitySlot {
  std::optional<Activity> activity;
  std::string ref;
  JsonValue where;
};

std::vector<ActivitySlot> read_slots(const JsonValue& list, bool needs_tolerance) {
  std::vector<ActivitySlot> slots;
  for (const auto& item : list.as_array()) {
    if (item.raw().is_object() && item.raw().contains("ref") && item.raw().size() == 1) {
      slots.push_back({std::nullopt, item.as_object({"ref"}).at("ref").as_string(), item});
    } else {
      slots.push_back({read_activity(item, needs_tolerance), "", item});
    }
  }
  return slots;
}

ProbeMeasure read_probe_measure(const JsonValue& value, const model::Topology& topology) {
  const JsonObject o = value.as_object({"route", "client", "measure", "window_s"});
  ProbeMeasure measure;
  measure.route = o.at("route").as_string();
  std::vector<std::string> routes;
  for (const auto& route : topology.gateway.routes) routes.push_back(route.name);
  if (std::find(routes.begin(), routes.end(), measure.route) == routes.end()) {
    o.at("route").fail(fmt::format("unknown route \"{}\"{}", measure.route,
                                   model::detail::did_you_mean(measure.route, routes)));
  }
  if (auto c = o.find("client")) measure.client = c->as_string();
  if (auto m = o.find("measure")) {
    measure.measure = m->as_enum<ProbeMeasure::Measure>(
        {{"status", ProbeMeasure::Measure::status},
         {"latency_p50_ms", ProbeMeasure::Measure::latency_p50_ms},
         {"latency_p90_ms", ProbeMeasure::Measure::latency_p90_ms},
         {"latency_p99_ms", ProbeMeasure::Measure::latency_p99_ms},
         {"error_rate", ProbeMeasure::Measure::error_rate}});
  }
  if (auto w = o.find("window_s")) measure.window_s = w->number_above(0.0);
  return measure;
}

Mapping read_mapping_block(const JsonObject& block, const std::string& file,
                           const model::Topology& topology) {
  Mapping mapping;
  mapping.file = file;
  if (auto actions = block.find("actions")) {
    for (const auto& [name, value] : actions->as_map()) {
      value.as_object({"kind", "end_s", "duration_s", "target", "parameters", "name", "ends"});
      mapping.actions[name] = value.raw();
      mapping.pointers["action:" + name] = value.pointer();
    }
  }
  if (auto probes = block.find("probes")) {
    for (const auto& [name, value] : probes->as_map()) {
      mapping.probes[name] = read_probe_measure(value, topology);
      mapping.pointers["probe:" + name] = value.pointer();
    }
  }
  if (auto conditions = block.find("abort_conditions")) {
    conditions->as_array();  // each one is checked with the scenario the plan builds
    mapping.abort_conditions = conditions->raw();
    mapping.abort_conditions_file = file;
    mapping.pointers["abort_conditions"] = conditions->pointer();
  }
  return mapping;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const auto index = static_cast<std::size_t>(std::max(1.0, rank)) - 1;
  return values[std::min(index, values.size() - 1)];
}

}  // namespace

Experiment parse_experiment(const json& doc, const std::string& file_label) {
  const JsonValue root(file_label, doc, "");
  if (!doc.is_object()) root.fail("an experiment is a JSON object");
  // Chaos Toolkit ignores keys it does not know (tags, contributions, version...): so do we.
  Experiment experiment;
  experiment.file = file_label;
  const auto member = [&](std::string_view key) -> std::optional<JsonValue> {
    auto it = doc.find(key);
    if (it == doc.end()) return std::nullopt;
    return JsonValue(file_label, *it, "/" + model::detail::escape_pointer_token(key));
  };
  const auto required = [&](std::string_view key) {
    auto found = member(key);
    if (!found) root.fail(fmt::format("missing required field \"{}\"", key));
    return *found;
  };
  experiment.title = required("title").as_string();
  experiment.description = required("description").as_string();

  std::vector<ActivitySlot> hypothesis_slots;
  if (auto hypothesis = member("steady-state-hypothesis")) {
    const JsonObject h = hypothesis->as_object({"title", "probes", "controls"});
    experiment.hypothesis_title = h.at("title").as_string();
    if (experiment.hypothesis_title.empty()) h.at("title").fail("must not be empty");
    if (auto probes = h.find("probes")) hypothesis_slots = read_slots(*probes, true);
  }
  const JsonValue method = required("method");
  std::vector<ActivitySlot> method_slots = read_slots(method, false);
  if (method_slots.empty()) method.fail("the method needs at least one activity");
  std::vector<ActivitySlot> rollback_slots;
  if (auto rollbacks = member("rollbacks")) rollback_slots = read_slots(*rollbacks, false);

  // Refs name activities declared anywhere in the experiment.
  std::map<std::string, Activity> declared;
  for (const auto* slots : {&hypothesis_slots, &method_slots, &rollback_slots}) {
    for (const auto& slot : *slots) {
      if (slot.activity) declared.emplace(slot.activity->name, *slot.activity);
    }
  }
  std::vector<std::string> declared_names;
  for (const auto& [name, activity] : declared) declared_names.push_back(name);
  const auto resolve = [&](const std::vector<ActivitySlot>& slots, bool needs_tolerance) {
    std::vector<Activity> out;
    for (const auto& slot : slots) {
      if (slot.activity) {
        out.push_back(*slot.activity);
        continue;
      }
      auto it = declared.find(slot.ref);
      if (it == declared.end()) {
        slot.where.fail(fmt::format("ref \"{}\" names no activity of the experiment{}", slot.ref,
                                    model::detail::did_you_mean(slot.ref, declared_names)));
      }
      if (needs_tolerance && !it->second.tolerance) {
        slot.where.fail(
            fmt::format("ref \"{}\" in the hypothesis names a probe without a "
                        "tolerance",
                        slot.ref));
      }
      out.push_back(it->second);
    }
    return out;
  };
  experiment.hypothesis_probes = resolve(hypothesis_slots, true);
  experiment.method = resolve(method_slots, false);
  experiment.rollbacks = resolve(rollback_slots, false);

  if (auto runtime = member("runtime")) {
    const JsonObject r = runtime->as_object({"rollbacks", "hypothesis"});
    if (auto rollbacks = r.find("rollbacks")) {
      experiment.rollback_strategy =
          rollbacks->as_object({"strategy"})
              .at("strategy")
              .as_enum<RollbackStrategy>({{"default", RollbackStrategy::default_strategy},
                                          {"always", RollbackStrategy::always},
                                          {"never", RollbackStrategy::never},
                                          {"deviated", RollbackStrategy::deviated}});
    }
    if (auto hypothesis = r.find("hypothesis")) {
      const JsonObject h = hypothesis->as_object({"strategy", "frequency", "fail_fast"});
      if (auto s = h.find("strategy")) {
        experiment.hypothesis_strategy = s->as_enum<HypothesisStrategy>(
            {{"default", HypothesisStrategy::default_strategy},
             {"before-method-only", HypothesisStrategy::before_method_only},
             {"after-method-only", HypothesisStrategy::after_method_only},
             {"during-method-only", HypothesisStrategy::during_method_only},
             {"continuously", HypothesisStrategy::continuously}});
      }
      if (auto f = h.find("frequency")) experiment.hypothesis_frequency_s = f->number_above(0.0);
      if (auto f = h.find("fail_fast")) {
        if (!f->raw().is_boolean()) f->fail("expected true or false");
        experiment.fail_fast = f->raw().get<bool>();
      }
    }
  }
  if (auto configuration = member("configuration")) {
    configuration->as_map();
    experiment.configuration = configuration->raw();
  }
  for (std::string_view key : {"secrets", "controls"}) {
    if (auto value = member(key)) {
      if (!value->raw().is_object() && !value->raw().is_array()) {
        value->fail(fmt::format("expected an object or an array, got {}",
                                model::detail::describe_json_value(value->raw())));
      }
    }
  }
  if (auto extensions = member("extensions")) {
    for (const auto& extension : extensions->as_array()) {
      const JsonValue name = [&] {
        if (!extension.raw().is_object() || !extension.raw().contains("name")) {
          extension.fail("an extension needs a \"name\"");
        }
        return JsonValue(file_label, extension.raw()["name"], extension.pointer() + "/name");
      }();
      name.as_string();
    }
    experiment.extensions = extensions->raw();
  }
  return experiment;
}

Experiment load_experiment(const std::filesystem::path& file) {
  return parse_experiment(read_json_file(file), file.string());
}

Mapping mapping_from_extensions(const Experiment& experiment, const model::Topology& topology) {
  for (std::size_t i = 0; i < experiment.extensions.size(); ++i) {
    const json& extension = experiment.extensions[i];
    if (extension.value("name", "") != "doppel") continue;
    const JsonValue value(experiment.file, extension, fmt::format("/extensions/{}", i));
    return read_mapping_block(value.as_object({"name", "actions", "probes", "abort_conditions"}),
                              experiment.file, topology);
  }
  Mapping empty;
  empty.file = experiment.file;
  return empty;
}

Mapping load_mapping(const std::filesystem::path& file, const model::Topology& topology) {
  const json doc = read_json_file(file);
  const JsonValue root(file.string(), doc, "");
  const JsonObject o = root.as_object({"doppel", "actions", "probes", "abort_conditions"});
  if (o.at("doppel").as_string() != "chaos-mapping/v1") {
    o.at("doppel").fail(fmt::format("unsupported format \"{}\", expected \"chaos-mapping/v1\"",
                                    o.at("doppel").as_string()));
  }
  return read_mapping_block(o, file.string(), topology);
}

Mapping merge_mappings(Mapping base, const Mapping& over) {
  for (const auto& [name, value] : over.actions) {
    base.actions[name] = value;
    base.pointers["action:" + name] = over.file + ":" + over.pointers.at("action:" + name);
  }
  for (const auto& [name, value] : over.probes) {
    base.probes[name] = value;
    base.pointers["probe:" + name] = over.file + ":" + over.pointers.at("probe:" + name);
  }
  if (!over.abort_conditions.is_null()) {
    // A file's conditions replace the extension's: they are one list, not named entries.
    base.abort_conditions = over.abort_conditions;
    base.abort_conditions_file = over.abort_conditions_file;
    base.pointers["abort_conditions"] = over.pointers.at("abort_conditions");
  }
  return base;
}

ChaosPlan plan_experiment(const Experiment& experiment, const Mapping& mapping,
                          const model::Topology& topology, const PlanOptions& options) {
  ChaosPlan plan;
  plan.rollback_strategy = experiment.rollback_strategy;
  const auto fail_at = [&](const Activity& activity, const std::string& message) {
    throw InputError(experiment.file, InputLocation{activity.pointer, {}, {}, {}}, message);
  };
  const auto measure_of = [&](const Activity& probe) {
    auto it = mapping.probes.find(probe.name);
    if (it == mapping.probes.end()) {
      fail_at(probe, fmt::format("probe \"{}\" has no mapping: say what it measures under the "
                                 "\"doppel\" extension's \"probes\" or in a mapping file",
                                 probe.name));
    }
    return it->second;
  };
  const auto add_probe = [&](const Activity& probe, double at, ProbePoint::Phase phase) {
    ProbePoint point;
    point.name = probe.name;
    point.measure = measure_of(probe);
    point.http = probe.provider == "http";
    point.tolerance = probe.tolerance;
    point.at_s = at;
    point.phase = phase;
    plan.probes.push_back(point);
    return point.measure.window_s;
  };

  json injections = json::array();
  std::vector<std::string> injection_sources;  // action name per injection
  std::map<std::string, std::size_t> last_injection_of;
  const auto run_action = [&](const Activity& action, double at) {
    auto it = mapping.actions.find(action.name);
    if (it == mapping.actions.end()) {
      fail_at(action, fmt::format("action \"{}\" has no mapping: say what it does to the twin "
                                  "under the \"doppel\" extension's \"actions\" or in a mapping "
                                  "file",
                                  action.name));
    }
    json injection = it->second;
    if (injection.contains("ends")) {
      const std::string ended =
          injection["ends"].is_string() ? injection["ends"].get<std::string>() : std::string();
      auto started = last_injection_of.find(ended);
      if (started == last_injection_of.end()) {
        fail_at(action, fmt::format("rollback \"{}\" ends action \"{}\", which has not run before "
                                    "it",
                                    action.name, ended));
      }
      json& target = injections[started->second];
      if (!target.contains("end_s") && target["start_s"].get<double>() < at) target["end_s"] = at;
      return;
    }
    injection["start_s"] = at;
    if (injection.contains("duration_s")) {
      injection["end_s"] = at + injection["duration_s"].get<double>();
      injection.erase("duration_s");
    }
    if (!injection.contains("name")) injection["name"] = action.name;
    last_injection_of[action.name] = injections.size();
    injections.push_back(std::move(injection));
    injection_sources.push_back(action.name);
  };

  const auto strategy = experiment.hypothesis_strategy;
  const bool before = strategy == HypothesisStrategy::default_strategy ||
                      strategy == HypothesisStrategy::before_method_only ||
                      strategy == HypothesisStrategy::continuously;
  const bool during = strategy == HypothesisStrategy::during_method_only ||
                      strategy == HypothesisStrategy::continuously;
  const bool after = strategy == HypothesisStrategy::default_strategy ||
                     strategy == HypothesisStrategy::after_method_only ||
                     strategy == HypothesisStrategy::continuously;

  double t = options.warmup_s;
  if (before) {
    for (const auto& probe : experiment.hypothesis_probes) {
      t += add_probe(probe, t, ProbePoint::Phase::before);
    }
  }
  plan.method_start_s = t;
  for (const auto& activity : experiment.method) {
    double at = t + activity.pause_before_s;
    double took = 0.0;
    if (activity.type == Activity::Type::action) {
      run_action(activity, at);
    } else {
      took = add_probe(activity, at, ProbePoint::Phase::method);
    }
    if (!activity.background) t = at + took + activity.pause_after_s;
  }
  plan.method_end_s = t;
  if (during) {
    for (double at = plan.method_start_s; at < plan.method_end_s;
         at += experiment.hypothesis_frequency_s) {
      for (const auto& probe : experiment.hypothesis_probes) {
        add_probe(probe, at, ProbePoint::Phase::during);
      }
    }
  }
  if (after) {
    for (const auto& probe : experiment.hypothesis_probes) {
      t += add_probe(probe, t, ProbePoint::Phase::after);
    }
  }
  plan.rollbacks_at_s = t;
  for (const auto& rollback : experiment.rollbacks) {
    t += rollback.pause_before_s;
    if (rollback.type == Activity::Type::action) run_action(rollback, t);
    t += rollback.pause_after_s;
  }

  json doc = {{"doppel", kScenarioFormat},
              {"name", experiment.title},
              {"description", experiment.description},
              {"duration_s", t + options.settle_s},
              {"seed", options.seed},
              {"injections", injections}};
  if (!mapping.abort_conditions.is_null()) doc["abort_conditions"] = mapping.abort_conditions;
  try {
    plan.scenario = parse_scenario(doc, experiment.file, topology);
  } catch (const InputError& e) {
    // Report the mistake where the user wrote it: in the action's mapping.
    const std::string& pointer = e.where().json_pointer;
    const std::string conditions = "/abort_conditions";
    if (pointer.rfind(conditions, 0) == 0) {
      throw InputError(
          mapping.abort_conditions_file,
          InputLocation{mapping.pointers.at("abort_conditions") + pointer.substr(conditions.size()),
                        {},
                        {},
                        {}},
          e.message());
    }
    const std::string prefix = "/injections/";
    if (pointer.rfind(prefix, 0) == 0) {
      const std::size_t slash = pointer.find('/', prefix.size());
      const std::size_t index = std::stoul(pointer.substr(prefix.size(), slash - prefix.size()));
      const std::string rest = slash == std::string::npos ? "" : pointer.substr(slash);
      const std::string& action = injection_sources.at(index);
      const std::string mapped = mapping.pointers.at("action:" + action);
      throw InputError(mapping.file, InputLocation{mapped + rest, {}, {}, {}},
                       fmt::format("action \"{}\": {}", action, e.message()));
    }
    throw;
  }
  return plan;
}

void ProbeRecorder::on_entry(const twin::EntryRecord& entry) {
  entries_.push_back({std::string(entry.route), std::string(entry.client), entry.end_s,
                      (entry.end_s - entry.start_s) * 1000.0, entry.status,
                      entry.outcome != twin::Outcome::ok});
}

std::optional<json> measure_probe(const ProbePoint& probe,
                                  const std::vector<ProbeRecorder::Entry>& entries) {
  const auto& m = probe.measure;
  std::vector<const ProbeRecorder::Entry*> seen;
  for (const auto& entry : entries) {
    if (entry.route != m.route || (!m.client.empty() && entry.client != m.client)) continue;
    if (entry.end_s >= probe.at_s && entry.end_s < probe.at_s + m.window_s) seen.push_back(&entry);
  }
  if (seen.empty()) return std::nullopt;
  switch (m.measure) {
    case ProbeMeasure::Measure::status: {
      std::map<int, int> counts;
      for (const auto* entry : seen) ++counts[entry->status];
      const auto modal = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) {
        return a.second < b.second;  // first maximum: ties go to the lower status
      });
      if (!probe.http) return json(modal->first);
      return json{{"status", modal->first}, {"headers", json::object()}, {"body", ""}};
    }
    case ProbeMeasure::Measure::error_rate: {
      const auto failed =
          std::count_if(seen.begin(), seen.end(), [](auto* e) { return e->failed; });
      return json(static_cast<double>(failed) / static_cast<double>(seen.size()));
    }
    default: {
      std::vector<double> latencies;
      for (const auto* entry : seen) latencies.push_back(entry->latency_ms);
      const double p = m.measure == ProbeMeasure::Measure::latency_p50_ms   ? 50.0
                       : m.measure == ProbeMeasure::Measure::latency_p90_ms ? 90.0
                                                                            : 99.0;
      return json(percentile(std::move(latencies), p));
    }
  }
}

ChaosVerdict judge_experiment(const ChaosPlan& plan,
                              const std::vector<ProbeRecorder::Entry>& entries,
                              std::optional<double> aborted_at_s, double simulated_until_s) {
  ChaosVerdict verdict;
  for (const auto& probe : plan.probes) {
    ProbeResult result;
    result.name = probe.name;
    result.phase = probe.phase;
    result.at_s = probe.at_s;
    result.output = measure_probe(probe, entries);
    if (probe.tolerance && probe.phase != ProbePoint::Phase::method) {
      result.tolerance_met = result.output && within_tolerance(*probe.tolerance, *result.output);
    }
    if (!result.tolerance_met) {
      const std::string why =
          result.output
              ? fmt::format("probe \"{}\" at {:g} s returned {}, outside its tolerance", probe.name,
                            probe.at_s, result.output->dump())
              : fmt::format("probe \"{}\" at {:g} s saw no request", probe.name, probe.at_s);
      if (probe.phase == ProbePoint::Phase::before) {
        verdict.steady_state_before = false;
        if (verdict.status == "completed") {
          verdict.status = "failed";
          verdict.reason = "steady state not met before the method: " + why;
        }
      } else {
        if (probe.phase == ProbePoint::Phase::after) verdict.steady_state_after = false;
        if (verdict.steady_state_before) {
          verdict.deviated = true;
          if (verdict.status == "completed") {
            verdict.status = "failed";
            verdict.reason = "deviated: " + why;
          }
        }
      }
    }
    verdict.probes.push_back(std::move(result));
  }
  if (aborted_at_s && *aborted_at_s < plan.rollbacks_at_s) {
    verdict.status = "aborted";
    verdict.reason = fmt::format("an abort condition fired at {:g} s", *aborted_at_s);
  } else if (simulated_until_s < plan.rollbacks_at_s) {
    verdict.status = "interrupted";
    verdict.reason = fmt::format(
        "the simulation stopped at {:g} s, before the experiment ended "
        "at {:g} s",
        simulated_until_s, plan.rollbacks_at_s);
  }
  switch (plan.rollback_strategy) {
    case RollbackStrategy::always:
      verdict.rollbacks_played = true;
      break;
    case RollbackStrategy::never:
      verdict.rollbacks_played = false;
      break;
    case RollbackStrategy::deviated:
      verdict.rollbacks_played = verdict.deviated;
      break;
    case RollbackStrategy::default_strategy:
      verdict.rollbacks_played = verdict.status != "failed" && verdict.status != "interrupted";
      break;
  }
  return verdict;
}

std::string_view to_string(ProbePoint::Phase phase) {
  switch (phase) {
    case ProbePoint::Phase::before:
      return "before";
    case ProbePoint::Phase::during:
      return "during";
    case ProbePoint::Phase::after:
      return "after";
    case ProbePoint::Phase::method:
      return "method";
  }
  return "unknown";
}

json to_json(const ChaosVerdict& verdict) {
  json probes = json::array();
  for (const auto& probe : verdict.probes) {
    probes.push_back({{"name", probe.name},
                      {"phase", to_string(probe.phase)},
                      {"at_s", probe.at_s},
                      {"output", probe.output ? *probe.output : json()},
                      {"tolerance_met", probe.tolerance_met}});
  }
  return {{"status", verdict.status},
          {"deviated", verdict.deviated},
          {"steady_states",
           {{"before", {{"steady_state_met", verdict.steady_state_before}}},
            {"after", {{"steady_state_met", verdict.steady_state_after}}}}},
          {"rollbacks_played", verdict.rollbacks_played},
          {"probes", probes},
          {"reason", verdict.reason}};
}

}  // namespace doppel::faults::chaos
