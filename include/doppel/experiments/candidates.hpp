// Candidate root causes for `doppel diagnose`: each one a timeline of scenario/v1 injections
// that the twin can simulate, from a file (format "candidates/v1") or drawn from the fault
// catalogue for every component of a topology (--auto). Documented in docs/diagnosis.md.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/model/topology.hpp"

namespace doppel::experiments {

inline constexpr const char* kCandidatesFormat = "candidates/v1";

struct Candidate {
  std::string name;  // "datastore_slowdown@redis-cart x20", "no fault"
  // The cause it stands for, without the magnitude: the variants of one cause (x5, x20, x60)
  // share it, and rankings by cause add their probabilities up.
  std::string cause;        // "datastore_slowdown@redis-cart", "no fault"
  std::string description;  // one line for tables
  std::string kind;         // the injection kind of its (first) injection, "" for no fault
  std::string component;    // what it blames: a service, datastore, edge, zone, client or host
  // The services or datastores it blames: the component, or for stress on a host every
  // service placed there (their simulations are one and the same, so they are one cause).
  std::vector<std::string> components;
  // Metric-name prefixes outside the components where its symptoms show first: a callee that
  // is slow, lossy, down or unresolvable shows at its callers ("frontend_lat_",
  // "frontend_err", "frontend_to_cart_") and, for an entry service, at the gateway routes to
  // it ("route_checkout_err"); CPU stress shows in its hosts' own metrics ("a2_host_").
  // Pruning keeps the candidate when one of them departs.
  std::vector<std::string> witnesses;
  bool null_hypothesis = false;
  // scenario/v1 injection objects; their start_s / end_s are relative to the symptom onset
  // (0 = onset), so one candidate fits any incident window.
  nlohmann::json injections = nlohmann::json::array();
};

// Each kind is tried at a few magnitudes, since how hard a fault hits decides which symptoms
// it makes (a query 5x slower leaves a pool alone; 60x drains it).
struct AutoCandidateOptions {
  std::vector<double> latency_ms{50.0, 250.0, 1000.0};
  std::vector<double> cpu_stress_share{0.5, 0.8, 0.95};
  std::vector<double> error_rate{0.05, 0.25, 0.75};
  std::vector<double> packet_loss_rate{0.02, 0.1, 0.3};
  std::vector<double> datastore_slowdown_factor{5.0, 20.0, 60.0};
  std::vector<double> replication_lag_ms{200.0, 2000.0, 20000.0};
  std::vector<int> shrunk_pool_size{1, 4};
  std::vector<double> traffic_surge_factor{1.5, 2.5, 4.0};
};

// Every applicable kind on every component, plus "no fault" first:
//   services: latency, cpu_stress (all of its hosts; and one of them when it has several),
//             error_rate, packet_loss, instance_crash (one instance), dns_failure;
//   datastores: datastore_slowdown; replication_lag when it has replicas;
//   edges with a connection pool: the pool shrunk by a deploy (pool_exhaustion);
//   client classes: traffic_surge; zones (two or more): zone_outage and a partition from the
//   first zone.
// Causes are "<kind>@<component>", names add the magnitude ("latency@cartservice 250ms") and
// are unique. Services whose every instance is known to run on one and the same host (a host
// named in the placement, or a zone with a single host) share one cpu_stress cause named after
// the host ("cpu_stress@hotrod-host", components: every service there). Every candidate loads as a
// scenario against the topology (a test checks it).
std::vector<Candidate> auto_candidates(const model::Topology& topology,
                                       const AutoCandidateOptions& options = {});

// A candidates/v1 file: {"doppel": "candidates/v1", "candidates": [{"name", "cause",
// "description", "injections": [...]}]} ("cause" groups variants; default: the name) (a "no fault"
// candidate is added when none has empty injections). Each candidate is checked as a scenario
// against the topology; errors are InputError with the file and the JSON pointer into it.
std::vector<Candidate> load_candidates(const std::filesystem::path& file,
                                       const model::Topology& topology);
std::vector<Candidate> parse_candidates(const nlohmann::json& document,
                                        const std::string& file_label,
                                        const model::Topology& topology);

// Where a service's faults show outside it (Candidate::witnesses): its callers' latency, errors
// and pool metrics, from the model's service graph, and the gateway routes that send to it.
std::vector<std::string> witness_prefixes(const model::Topology& topology,
                                          const std::string& service);

// Magnitudes between the grid's: a fault's symptoms grow with its magnitude, and the truth
// rarely sits on the grid (a 66% CPU stress is neither the 50% nor the 80% variant). For the
// best variant `best` of a cause, the siblings in `candidates` (same cause, same injection but
// for the value of one magnitude parameter: ms, lag_ms, factor, share, rate) make the grid;
// the variants returned sit halfway to each neighbour of best's value (arithmetic for shares
// and rates, geometric for times and factors), named and described like best with the value
// changed. Empty when best has no magnitude or no sibling.
std::vector<Candidate> magnitude_refinements(const Candidate& best,
                                             const std::vector<Candidate>& candidates);

// The scenario/v1 document that simulates a candidate: its injections shifted to start at
// onset_s, for duration_s, with `seed` choosing the units a selector picks.
nlohmann::json candidate_scenario(const Candidate& candidate, double onset_s, double duration_s,
                                  std::uint64_t seed);

}  // namespace doppel::experiments
