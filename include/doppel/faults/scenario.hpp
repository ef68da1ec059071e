// Failure scenarios (format "scenario/v1", docs/scenario-format.md): a timeline of injections
// against a topology, with the steady state that should hold and the bounds that stop a
// rehearsal.
//
// Plain value types plus the loader. The loader checks every reference against the topology
// (selectors, routes, JSON pointers of deploys) and rejects what the twin cannot carry out
// yet, so a scenario that loads is a scenario that runs as written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/model/topology.hpp"

namespace doppel::faults {

inline constexpr const char* kScenarioFormat = "scenario/v1";

enum class InjectionKind {
  instance_crash,
  host_crash,
  zone_outage,
  latency,
  packet_loss,
  bandwidth_limit,
  partition,
  dns_failure,
  cpu_stress,
  memory_pressure,
  disk_slowness,
  replication_lag,
  datastore_slowdown,
  deploy,
  traffic_surge,
  traffic_shift,
  error_rate,
  route_change,
  clock_skew,
};
std::string_view to_string(InjectionKind kind);
// Every kind, in declaration order (for did-you-mean and the docs).
const std::vector<InjectionKind>& all_injection_kinds();

// What an injection acts on. Exactly one of the naming fields is set, per `type`.
struct TargetSelector {
  enum class Type { service, instance, host, zone, edge, datastore, route, client };
  // How many of the matching units (instances, hosts, nodes...) are hit. Choices among
  // them are drawn from the scenario seed, so the same scenario always hits the same ones.
  enum class Mode { all, one, count, percent };

  Type type = Type::service;
  std::string name;          // service / host / zone / datastore / route / client class
  std::optional<int> index;  // instance: the instance index; datastore: the node (0 primary)
  std::string from;          // edge: caller service
  std::string to;            // edge: callee service or datastore
  Mode mode = Mode::all;
  int count = 1;           // mode count
  double percent = 100.0;  // mode percent, in (0, 100]

  bool operator==(const TargetSelector&) const = default;
};
std::string_view to_string(TargetSelector::Type type);

// One change of a deploy, addressed by a JSON pointer into the canonical topology/v1
// document (model::topology_to_json). Array elements may be addressed by index or by their
// "name" ("/services/cartservice/replicas"), edges by "from->to".
struct TopologyChange {
  enum class Op { set, scale, remove };
  Op op = Op::set;
  std::string path;           // as written
  std::string resolved_path;  // with names replaced by indices
  nlohmann::json value;       // set
  double factor = 1.0;        // scale: the number at path is multiplied by it

  bool operator==(const TopologyChange&) const = default;
};

// The kinds' parameters; each kind reads its own (docs/scenario-format.md lists them).
struct InjectionParameters {
  std::optional<double> restart_after_s;  // instance_crash, host_crash, zone_outage
  double latency_ms = 0.0;                // latency
  double jitter_ms = 0.0;                 // latency
  double loss_rate = 0.0;                 // packet_loss
  double bandwidth_mbps = 0.0;            // bandwidth_limit
  std::string partition_of;               // partition: "zone", "host" or "service"
  std::vector<std::string> side_a;        // partition: names of that kind
  std::vector<std::string> side_b;
  bool two_way = true;                  // partition
  double cpu_share = 0.0;               // cpu_stress: share of each host's cores taken
  double slowdown_factor = 1.0;         // memory_pressure: CPU work takes this much longer
  std::optional<double> crash_after_s;  // memory_pressure: then the instance dies
  double factor = 1.0;                  // disk_slowness, datastore_slowdown, traffic_surge
  std::optional<std::string> query;     // datastore_slowdown: one query, else all
  double lag_ms = 0.0;                  // replication_lag: added lag
  bool stop_replication = false;        // replication_lag: replication stops
  std::vector<TopologyChange> changes;  // deploy, route_change (built from its fields)
  // deploy: the changes reach only the first N instances of each service they change (a
  // canary stage); nullopt: every instance at once.
  std::optional<int> canary_instances;
  std::string shift_to;     // traffic_shift: the client class that gains
  double share = 0.0;       // traffic_shift: share of the rate moved
  double error_rate = 0.0;  // error_rate
  double skew_ms = 0.0;     // clock_skew

  bool operator==(const InjectionParameters&) const = default;
};

struct Injection {
  InjectionKind kind = InjectionKind::instance_crash;
  double start_s = 0.0;
  std::optional<double> end_s;  // absent: lasts to the end of the run
  TargetSelector target;
  InjectionParameters parameters;
  std::string label;    // "injections/3 (instance_crash)": names it in events and reports
  std::string pointer;  // where it is in the scenario file

  bool operator==(const Injection&) const = default;
};

// A bound on a measured figure that stops a rehearsal when crossed (a halt condition).
struct AbortCondition {
  enum class Metric { error_rate, latency_p50_ms, latency_p90_ms, latency_p99_ms };
  Metric metric = Metric::error_rate;
  std::string route;   // empty: every request
  std::string client;  // empty: every client class
  double above = 0.0;  // fires when the figure over the window exceeds it
  double window_s = 5.0;

  bool operator==(const AbortCondition&) const = default;
};
std::string_view to_string(AbortCondition::Metric metric);

struct SteadyState {
  bool slos_from_topology = true;
  std::vector<model::Slo> slos;  // the scenario's own, when !slos_from_topology
  bool check_before = true;
  bool check_during = true;
  bool check_after = true;

  bool operator==(const SteadyState&) const = default;
};

// Workload changes for the whole run, applied before it starts.
struct ClientOverride {
  std::string client;
  double rate_multiplier = 1.0;
  std::vector<model::RatePoint> rate;  // replaces the class's rate profile when not empty

  bool operator==(const ClientOverride&) const = default;
};

struct Scenario {
  std::string name;
  std::string description;
  std::optional<std::filesystem::path> topology_file;  // resolved against the scenario's dir
  std::optional<double> duration_s;                    // absent: the workload's
  std::uint64_t seed = 1;
  std::vector<ClientOverride> client_overrides;
  nlohmann::json added_clients = nlohmann::json::array();  // topology/v1 client objects
  std::vector<Injection> injections;
  SteadyState steady_state;
  std::vector<AbortCondition> abort_conditions;
  std::string file;  // label used in errors

  bool operator==(const Scenario&) const = default;
};

// Reads and checks a scenario file. References are checked against `topology` when given,
// else against the topology the scenario names (loaded relative to the scenario file); a
// scenario that names none and is given none is an error. Throws doppel::InputError
// "FILE: /json/pointer: message" for the first mistake.
Scenario load_scenario(const std::filesystem::path& file,
                       const model::Topology* topology = nullptr);

// Checks an already-parsed document against `topology`; `file_label` names it in errors and
// `base_dir` resolves its topology path.
Scenario parse_scenario(const nlohmann::json& doc, const std::string& file_label,
                        const model::Topology& topology,
                        const std::filesystem::path& base_dir = {});

// Loads the topology a scenario names; InputError when it names none.
model::Topology load_scenario_topology(const Scenario& scenario);

// The topology a run of the scenario simulates: workload overrides, added client classes,
// the duration, traffic surges and shifts (compiled into the rate profiles) and changes in
// effect from t = 0 applied. apply_scenario() schedules the rest at run time.
model::Topology prepare_topology(const Scenario& scenario, const model::Topology& topology);

// The phases a steady state is judged over: before the first injection, while any is active,
// after the last one ends (empty when an injection lasts to the end).
struct Phases {
  double first_start_s = 0.0;
  double last_end_s = 0.0;
  double run_end_s = 0.0;
};
Phases scenario_phases(const Scenario& scenario, const model::Topology& prepared);

// The SLOs the steady state holds the run to.
std::vector<model::Slo> steady_state_slos(const Scenario& scenario,
                                          const model::Topology& topology);

}  // namespace doppel::faults
