// The topology: Doppel's central data model (format "topology/v1", docs/topology-format.md).
//
// Plain value types, no behaviour beyond lookups: the loader fills and checks them, the
// service graph indexes them, the twin simulates them. Units are in the field names
// (_s seconds, _ms milliseconds, _us microseconds, _bytes, _mbps megabits per second).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "doppel/model/distribution.hpp"

namespace doppel::model {

inline constexpr const char* kTopologyFormat = "topology/v1";

struct Host {
  std::string name;
  int cores = 1;
  double speed = 1.0;  // relative to the reference core on which CPU costs are expressed

  bool operator==(const Host&) const = default;
};

struct NetworkLink {
  double latency_us = 100.0;
  double bandwidth_mbps = 10000.0;

  bool operator==(const NetworkLink&) const = default;
};

struct Zone {
  std::string name;
  NetworkLink network;  // between two hosts of this zone
  std::vector<Host> hosts;

  bool operator==(const Zone&) const = default;
};

// Latency and bandwidth between two zones (symmetric).
struct ZoneLink {
  std::string from;
  std::string to;
  NetworkLink network;

  bool operator==(const ZoneLink&) const = default;
};

// Where a replica (or a datastore node) runs: a zone, and optionally one host in it.
// Without a host, instances are spread over the zone's hosts round-robin.
struct Placement {
  std::string zone;
  std::optional<std::string> host;

  bool operator==(const Placement&) const = default;
};

// One call to another service's operation or a datastore's query.
struct Call {
  std::string to;            // a service or a datastore
  std::string operation;     // the service's operation, or the datastore's query
  double count = 1.0;        // mean calls per request: integer part always, fraction as probability
  double probability = 1.0;  // the whole call happens with this probability
  std::int64_t request_bytes = 512;
  std::int64_t response_bytes = 2048;

  bool operator==(const Call&) const = default;
};

// A step of a call plan: a single call, or a group of calls issued concurrently.
struct Step {
  bool parallel = false;
  std::vector<Call> calls;  // one call when !parallel

  bool operator==(const Step&) const = default;
};

struct Operation {
  std::string name;
  Distribution cpu_ms;      // CPU time on the reference core
  double error_rate = 0.0;  // probability the operation itself fails
  std::vector<Step> steps;  // executed in order after the CPU work

  bool operator==(const Operation&) const = default;
};

struct MemoryModel {
  double base_mb = 64.0;
  double per_request_kb = 64.0;  // per request in flight or queued

  bool operator==(const MemoryModel&) const = default;
};

struct Service {
  std::string name;
  int replicas = 1;
  std::vector<Placement> placement;  // instance i goes to placement[i % size]
  int workers = 16;                  // concurrent requests per instance
  int queue_capacity = 128;          // waiting requests per instance; beyond: rejected
  MemoryModel memory;
  std::vector<Operation> operations;

  bool operator==(const Service&) const = default;
};

enum class JitterKind { none, full, equal };
enum class LoadBalancing { round_robin, least_request, power_of_two };

struct RetryPolicy {
  int max_retries = 0;
  double backoff_base_ms = 25.0;
  double backoff_cap_ms = 1000.0;
  JitterKind jitter = JitterKind::full;
  // Retries may not exceed this share of requests over the budget window (Envoy/Finagle
  // style); 0 disables the budget.
  double budget_ratio = 0.0;

  bool operator==(const RetryPolicy&) const = default;
};

struct CircuitBreakerPolicy {
  bool enabled = false;
  double error_threshold = 0.5;  // share of failed calls in the window that opens it
  int min_requests = 20;         // calls in the window before it may open
  double window_s = 10.0;
  double open_s = 5.0;  // time open before half-open
  int half_open_probes = 1;

  bool operator==(const CircuitBreakerPolicy&) const = default;
};

struct ConnectionPoolPolicy {
  int size = 0;  // 0: unlimited
  double acquire_timeout_ms = 1000.0;

  bool operator==(const ConnectionPoolPolicy&) const = default;
};

// What a caller does when it calls a callee: one per caller -> callee pair, falling back to
// the topology's defaults.
struct EdgePolicy {
  std::string from;  // caller service, or "*" for the defaults
  std::string to;    // callee service or datastore
  double timeout_ms = 1000.0;
  RetryPolicy retry;
  CircuitBreakerPolicy breaker;
  LoadBalancing load_balancing = LoadBalancing::round_robin;
  ConnectionPoolPolicy pool;

  bool operator==(const EdgePolicy&) const = default;
};

// The topology-wide policy ("*" -> "*") with every field at its default. A function rather
// than EdgePolicy{"*", "*"}: GCC's -Wmissing-field-initializers rejects the partial braces.
inline EdgePolicy wildcard_edge_policy() {
  EdgePolicy policy;
  policy.from = "*";
  policy.to = "*";
  return policy;
}

enum class DatastoreKind { sql, kv, cache, queue };
enum class Consistency { strong, eventual, quorum, read_your_writes };
enum class QueryType { read, write };

struct Query {
  std::string name;
  QueryType type = QueryType::read;
  Distribution cost_ms;  // service time at the node

  bool operator==(const Query&) const = default;
};

struct Datastore {
  std::string name;
  DatastoreKind kind = DatastoreKind::kv;
  Consistency consistency = Consistency::strong;
  Placement primary;
  std::vector<Placement> replicas;
  Distribution replication_lag_ms;  // delay before a committed write is applied at a replica
  int max_connections = 100;        // per node; beyond, connection attempts fail
  int workers = 8;                  // queries served concurrently per node
  std::int64_t key_space = 1000;    // keys, for version tracking and stale-read detection
  std::vector<Query> queries;

  bool operator==(const Datastore&) const = default;
};

struct HeaderMatch {
  std::string name;   // header name, matched case-insensitively
  std::string regex;  // RE2, full match

  bool operator==(const HeaderMatch&) const = default;
};

struct Route {
  std::string name;
  std::optional<std::string> method;  // exact, case-sensitive; absent: any
  std::optional<std::string> path_prefix;
  std::optional<std::string> path_regex;  // RE2, full match
  std::vector<HeaderMatch> headers;
  std::string service;  // where matching requests go
  std::string operation;

  bool operator==(const Route&) const = default;
};

struct Gateway {
  std::vector<Route> routes;  // first match wins
  // Where unmatched requests go; absent: they get a 404 at the gateway.
  std::optional<std::string> default_service;
  std::optional<std::string> default_operation;
  double latency_ms = 0.0;

  bool operator==(const Gateway&) const = default;
};

struct RatePoint {
  double at_s = 0.0;
  double rps = 0.0;

  bool operator==(const RatePoint&) const = default;
};

struct RequestKind {
  std::string method = "GET";
  std::string path = "/";
  double weight = 1.0;

  bool operator==(const RequestKind&) const = default;
};

struct ClientClass {
  std::string name;
  std::map<std::string, std::string> headers;
  std::vector<RequestKind> mix;
  // Piecewise-constant rate: rps from each point's at_s until the next one. A constant-rate
  // Poisson process is a single point at 0.
  std::vector<RatePoint> rate;
  std::string zone;  // where the clients' traffic enters; empty: the first zone

  bool operator==(const ClientClass&) const = default;
};

struct Workload {
  double duration_s = 60.0;
  std::vector<ClientClass> clients;

  bool operator==(const Workload&) const = default;
};

struct LatencyBound {
  double percentile = 99.0;
  double max_ms = 1000.0;

  bool operator==(const LatencyBound&) const = default;
};

struct Slo {
  std::string route;  // a gateway route name
  std::vector<LatencyBound> latency;
  std::optional<double> max_error_rate;

  bool operator==(const Slo&) const = default;
};

struct Topology {
  std::string name;
  std::string description;
  std::vector<Zone> zones;
  std::vector<ZoneLink> zone_links;
  NetworkLink default_zone_link{1000.0, 1000.0};
  std::vector<Service> services;
  EdgePolicy edge_defaults = wildcard_edge_policy();
  std::vector<EdgePolicy> edges;
  std::vector<Datastore> datastores;
  Gateway gateway;
  Workload workload;
  std::vector<Slo> slos;

  const Service* find_service(std::string_view name) const;
  const Datastore* find_datastore(std::string_view name) const;
  const Zone* find_zone(std::string_view name) const;
  const Route* find_route(std::string_view name) const;
  // The policy for caller -> callee: the explicit edge, else the defaults.
  const EdgePolicy& policy(std::string_view from, std::string_view to) const;

  bool operator==(const Topology&) const = default;
};

}  // namespace doppel::model
