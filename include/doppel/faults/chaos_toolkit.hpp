// Chaos Toolkit experiments (docs/chaos-toolkit.md): reading an experiment, mapping its
// actions and probes onto the twin, and judging it in Chaos Toolkit's own terms.
//
// An experiment becomes a scenario/v1 timeline (its actions as injections, its pauses as
// simulated time) plus probe measurements taken from the simulated requests; tolerances are
// judged exactly as chaostoolkit-lib's `within_tolerance` does.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::faults::chaos {

// --- Tolerances --------------------------------------------------------------------------

// Whether a probe's output is within a tolerance, with chaostoolkit-lib's semantics:
//  - bool, string: exact equality; int: equality, or against the "status" of a dict output;
//  - list: membership of the output's "status" when the output is a dict with one (an HTTP
//    or process probe); otherwise a 2-element list is an inclusive [lo, hi] range and any
//    other list is membership;
//  - dict: {"type": "regex", "pattern", "target"?} (search, RE2 syntax),
//    {"type": "jsonpath", "path", "expect"?, "count"?, "target"?} (the subset of
//    json_path_values), {"type": "range", "range": [lo, hi], "target"?};
//  - anything else (a float, null) is never met, as in chaostoolkit-lib.
// A {"type": "probe"} tolerance runs a user's Python function and cannot be judged here: the
// experiment loader rejects it.
bool within_tolerance(const nlohmann::json& tolerance, const nlohmann::json& value);

// The JSONPath subset tolerances may use: "$", ".name", "['name']", "[index]", "[*]", ".*".
// Returns the matched values in document order; nullopt when the path is outside the subset.
std::optional<std::vector<nlohmann::json>> json_path_values(std::string_view path,
                                                            const nlohmann::json& document);

// --- Experiments ---------------------------------------------------------------------------

struct Activity {
  enum class Type { probe, action };
  Type type = Type::action;
  std::string name;
  std::string provider;  // python | http | process
  std::string url;       // http provider
  double pause_before_s = 0.0;
  double pause_after_s = 0.0;
  bool background = false;
  std::optional<nlohmann::json> tolerance;  // hypothesis probes
  std::string pointer;                      // where it is defined in the experiment file
};

enum class RollbackStrategy { default_strategy, always, never, deviated };
enum class HypothesisStrategy {
  default_strategy,  // before and after the method
  before_method_only,
  after_method_only,
  during_method_only,
  continuously,  // before, during (every frequency_s) and after
};

struct Experiment {
  std::string title;
  std::string description;
  std::string hypothesis_title;
  std::vector<Activity> hypothesis_probes;
  std::vector<Activity> method;  // {"ref": name} resolved
  std::vector<Activity> rollbacks;
  RollbackStrategy rollback_strategy = RollbackStrategy::default_strategy;
  HypothesisStrategy hypothesis_strategy = HypothesisStrategy::default_strategy;
  double hypothesis_frequency_s = 1.0;
  bool fail_fast = false;
  nlohmann::json configuration = nlohmann::json::object();
  nlohmann::json extensions = nlohmann::json::array();
  std::string file;
};

// Reads an experiment (JSON); InputError with a JSON pointer for every mistake: missing
// title/description/method, unknown activity type or provider, a ref to no activity, a
// hypothesis probe without a tolerance, an invalid tolerance.
Experiment parse_experiment(const nlohmann::json& doc, const std::string& file_label);
Experiment load_experiment(const std::filesystem::path& file);

// --- Mapping onto the twin ---------------------------------------------------------------

// What a probe measures in the twin: requests of a gateway route (optionally one client
// class) over a window starting at the probe's time.
struct ProbeMeasure {
  enum class Measure { status, latency_p50_ms, latency_p90_ms, latency_p99_ms, error_rate };
  std::string route;
  std::string client;
  Measure measure = Measure::status;
  double window_s = 5.0;
};

struct Mapping {
  // Action name -> a scenario/v1 injection without start_s (it starts when the action runs),
  // optionally with "duration_s"; or {"ends": "<action name>"} for a rollback that undoes it.
  std::map<std::string, nlohmann::json> actions;
  std::map<std::string, ProbeMeasure> probes;
  // Abort conditions in scenario/v1 form (a JSON array; null: none), the experiment's halt
  // conditions; checked when the experiment is planned.
  nlohmann::json abort_conditions;
  std::string abort_conditions_file;            // where they were written, for errors
  std::map<std::string, std::string> pointers;  // name -> where it was mapped, for errors
  std::string file;
};

// The {"name": "doppel", "actions": {...}, "probes": {...}, "abort_conditions": [...]} block
// of the experiment's extensions, or an empty mapping.
Mapping mapping_from_extensions(const Experiment& experiment, const model::Topology& topology);
// A mapping file {"doppel": "chaos-mapping/v1", "actions": {...}, "probes": {...}}.
Mapping load_mapping(const std::filesystem::path& file, const model::Topology& topology);
// The extensions' block, then the file's entries over it.
Mapping merge_mappings(Mapping base, const Mapping& over);

struct PlanOptions {
  double warmup_s = 10.0;  // steady load before the hypothesis is first probed
  double settle_s = 5.0;   // simulated after the rollbacks
  std::uint64_t seed = 1;
};

// A probe measurement the run must take.
struct ProbePoint {
  enum class Phase { before, during, after, method };
  std::string name;
  ProbeMeasure measure;
  bool http = false;  // an http provider: a status is reported as {"status": N, ...}
  std::optional<nlohmann::json> tolerance;
  double at_s = 0.0;
  Phase phase = Phase::before;
};

struct ChaosPlan {
  Scenario scenario;  // the method's actions and the rollbacks as injections
  std::vector<ProbePoint> probes;
  double method_start_s = 0.0;
  double method_end_s = 0.0;
  double rollbacks_at_s = 0.0;
  RollbackStrategy rollback_strategy = RollbackStrategy::default_strategy;
};

// Lays the experiment out in simulated time. InputError when an action or probe has no
// mapping, or a mapped injection is invalid (reported at the mapping's place).
ChaosPlan plan_experiment(const Experiment& experiment, const Mapping& mapping,
                          const model::Topology& topology, const PlanOptions& options = {});

// --- Measuring and judging -------------------------------------------------------------------

// Keeps what probes need of each entry request (an observer: add it to the run).
class ProbeRecorder : public twin::TwinObserver {
 public:
  struct Entry {
    std::string route;
    std::string client;
    double end_s = 0.0;
    double latency_ms = 0.0;
    int status = 200;
    bool failed = false;
  };
  void on_entry(const twin::EntryRecord& entry) override;
  const std::vector<Entry>& entries() const { return entries_; }
  void add(Entry entry) { entries_.push_back(std::move(entry)); }

 private:
  std::vector<Entry> entries_;
};

// The probe's output from the requests that ended in [at_s, at_s + window_s): the most
// frequent status (ties to the lower), a latency percentile, or the share of failed requests.
// nullopt when no request matched (the probe fails, as a probe that cannot run).
std::optional<nlohmann::json> measure_probe(const ProbePoint& probe,
                                            const std::vector<ProbeRecorder::Entry>& entries);

struct ProbeResult {
  std::string name;
  ProbePoint::Phase phase = ProbePoint::Phase::before;
  double at_s = 0.0;
  std::optional<nlohmann::json> output;
  bool tolerance_met = true;
};

// The journal's vocabulary: status completed | failed | aborted | interrupted, deviated.
struct ChaosVerdict {
  std::string status = "completed";
  bool deviated = false;
  bool steady_state_before = true;
  bool steady_state_after = true;
  bool rollbacks_played = false;
  std::vector<ProbeResult> probes;
  std::string reason;  // why it failed / was aborted / was interrupted
};

// Judges a run: `aborted_at_s` is when an abort condition fired (if one did),
// `simulated_until_s` how far the simulation got.
ChaosVerdict judge_experiment(const ChaosPlan& plan,
                              const std::vector<ProbeRecorder::Entry>& entries,
                              std::optional<double> aborted_at_s, double simulated_until_s);

std::string_view to_string(ProbePoint::Phase phase);
nlohmann::json to_json(const ChaosVerdict& verdict);

}  // namespace doppel::faults::chaos
