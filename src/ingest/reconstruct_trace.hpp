// Internals of topology reconstruction shared by its two halves: the per-trace analysis
// (reconstruct_trace.cpp) that folds each trace into statistics, and the assembly
// (reconstruct.cpp) that turns the statistics into a Topology.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "doppel/ingest/reconstruct.hpp"
#include "doppel/ingest/span.hpp"
#include "doppel/model/distribution.hpp"

namespace doppel::ingest::detail {

// Who a call goes to: a service's operation, a datastore's query, or a queue's publish.
struct CalleeKey {
  std::string component;
  std::string operation;
  ComponentKind kind = ComponentKind::service;

  friend auto operator<=>(const CalleeKey&, const CalleeKey&) = default;
};

// Keeps at most `capacity` samples: all of them until full, then a uniform reservoir driven
// by a fixed-seed stream, so the same input always keeps the same samples.
class SampleReservoir {
 public:
  void add(double value, std::size_t capacity, model::RandomStream& rng);
  const std::vector<double>& samples() const { return samples_; }
  std::uint64_t seen() const { return seen_; }

 private:
  std::vector<double> samples_;
  std::uint64_t seen_ = 0;
};

struct CallStats {
  std::uint64_t total_calls = 0;
  std::uint64_t instances_with_call = 0;
  double relative_start_sum = 0.0;           // first call's start within the parent, 0..1, summed
  std::uint64_t instances_with_repeats = 0;  // two or more calls in one parent span
  std::uint64_t instances_with_overlapping_repeats = 0;
  // Parent spans where fewer of the repeated calls were being served at once than were
  // waiting on the caller's side (a connection pool or a client-side limit), and the most
  // served at once in any parent span.
  std::uint64_t instances_with_limited_concurrency = 0;
  int max_served_concurrently = 0;
  std::uint64_t failed_calls = 0;
  double request_bytes_sum = 0.0;
  std::uint64_t request_bytes_seen = 0;
  double response_bytes_sum = 0.0;
  std::uint64_t response_bytes_seen = 0;
  std::uint64_t messaging_consumers = 0;  // producer calls whose consumer span was seen
};

struct PairStats {
  std::uint64_t together = 0;     // parent spans calling both
  std::uint64_t overlapping = 0;  // ... where a call of one overlaps a call of the other
};

struct OperationStats {
  SampleReservoir self_ms;  // waits for a connection count as the operation's own time
  SampleReservoir self_ms_waits_in_calls;  // ... or as part of the call (a pool replays them)
  SampleReservoir latency_ms;              // whole span durations
  std::uint64_t instances = 0;
  std::uint64_t own_errors = 0;  // failed without a failed call to explain it
  std::map<CalleeKey, CallStats> calls;
  std::map<std::pair<CalleeKey, CalleeKey>, PairStats> pairs;  // first < second
};

struct QueryStats {
  SampleReservoir cost_ms;         // client spans: the round trip included
  SampleReservoir server_cost_ms;  // the datastore's own spans, when it traced itself
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
};

struct StoreStats {
  ComponentKind kind = ComponentKind::datastore;
  model::DatastoreKind datastore_kind = model::DatastoreKind::kv;
  std::string evidence;  // what told us it is a datastore, for provenance
  std::map<std::string, QueryStats> queries;
  std::set<std::string> consumers;  // services consuming from a queue
};

struct ServiceStats {
  std::map<std::string, OperationStats> operations;
  std::set<std::string> instances;
  std::uint64_t spans = 0;
};

struct EntryStats {
  std::map<std::int64_t, std::uint64_t> arrivals_per_window;  // absolute window index
  std::string method;
  std::string path;
  std::string route;  // the route name a gateway span gave (http.route without a '/')
};

// Calls from one service to one component seen from both sides, for connection pools that
// limit them across requests (a one-connection pool queues requests that never meet in one
// trace).
struct EdgeUsage {
  std::uint64_t calls = 0;
  std::uint64_t waited = 0;  // the caller waited before the callee started
  // [start, end] of the callee's spans per caller instance, at most kMaxServedIntervals in
  // all (the peak of a prefix is a lower bound of the peak).
  std::map<std::string, std::vector<std::pair<std::int64_t, std::int64_t>>> served;
  std::size_t intervals = 0;
  static constexpr std::size_t kMaxServedIntervals = 1'000'000;
};

// The most intervals open at once (an interval ending where another starts does not
// overlap it).
int peak_concurrency(std::vector<std::pair<std::int64_t, std::int64_t>> intervals);

struct ObservedStats {
  std::map<std::string, ServiceStats> services;
  std::map<std::string, StoreStats> stores;
  std::map<std::pair<std::string, std::string>, EntryStats> entries;  // (service, operation)
  double max_call_ms = 0.0;
  // Half of (client span - server span) for calls seen from both sides: one-way network
  // and stack time, in ms.
  SampleReservoir one_way_network_ms;
  // Own time of the gateway's entry spans (ReconstructOptions::gateway_service), in ms.
  SampleReservoir gateway_ms;
  std::map<std::pair<std::string, std::string>, EdgeUsage> edges;  // (caller, callee)
  ReconstructionStats counters;
};

// Folds one complete trace (its spans in any order, duplicates allowed) into `stats`.
void analyse_trace(std::vector<Span>& spans, const ReconstructOptions& options,
                   model::RandomStream& rng, ObservedStats& stats);

// Datastore recognition, exposed for tests: the datastore kind the attributes and names
// point to, or nullopt when nothing says "database".
std::optional<model::DatastoreKind> datastore_kind_evidence(const Span& span);
// "SELECT", "insert", "get": the query a datastore client span runs.
std::string query_name(const Span& span);
model::QueryType query_type(const std::string& query);

}  // namespace doppel::ingest::detail
