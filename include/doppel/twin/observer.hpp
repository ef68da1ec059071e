// What the twin shows of itself: the records a running simulation emits, and the observer
// interface that telemetry subscribes with. This header has no SimGrid in it, so telemetry
// and its tests never need the engine.
//
// Strings are views into the Topology the twin was built from (or into storage the twin
// keeps for the whole run): they stay valid until the run ends, not after. Copy what you keep.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace doppel::twin {

enum class SpanKind { server, client };

// How one request (a span) ended.
enum class Outcome {
  ok,
  error,         // the operation (or a dependency it could not do without) failed
  timeout,       // the caller's timeout fired first
  rejected,      // the callee's queue was full
  circuit_open,  // the caller's breaker refused to call
  pool_timeout,  // no connection from the caller's pool within the acquire timeout
  unavailable,   // no live instance to call (crashed, partitioned, unresolvable)
  not_found,     // the gateway matched no route and has no default
};
inline std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::ok:
      return "ok";
    case Outcome::error:
      return "error";
    case Outcome::timeout:
      return "timeout";
    case Outcome::rejected:
      return "rejected";
    case Outcome::circuit_open:
      return "circuit_open";
    case Outcome::pool_timeout:
      return "pool_timeout";
    case Outcome::unavailable:
      return "unavailable";
    case Outcome::not_found:
      return "not_found";
  }
  return "unknown";
}

struct TraceId {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

// One span, as a tracer would record it. A server span is a request handled by an instance
// (queueing included); a client span is one attempt of a call, so a retried call gives one
// client span per attempt.
struct SpanRecord {
  TraceId trace_id;
  std::uint64_t span_id = 0;
  std::uint64_t parent_span_id = 0;  // 0: a root span
  SpanKind kind = SpanKind::server;
  std::string_view service;    // for a client span: the caller
  std::string_view operation;  // for a client span: the callee's operation or query
  std::string_view peer;       // for a client span: the callee service or datastore
  int instance = 0;            // index of the instance that handled (server) or called (client)
  std::string_view host;
  double start_s = 0.0;
  double end_s = 0.0;
  double queue_s = 0.0;  // server spans: time waiting for a worker
  Outcome outcome = Outcome::ok;
  int attempt = 0;  // client spans: 0 for the first try, 1.. for retries
};

// One request from a client through the gateway, start to end.
struct EntryRecord {
  TraceId trace_id;
  std::string_view client;  // client class
  std::string_view route;   // "" when no route matched
  std::string_view method;
  std::string_view path;
  double start_s = 0.0;
  double end_s = 0.0;
  int status = 200;  // HTTP-like: 200, 404, 500, 503, 504
  Outcome outcome = Outcome::ok;
};

// Something that happened to the system rather than to one request: a breaker transition,
// the onset or end of pool exhaustion, a fault, a config change.
struct TwinEvent {
  double time_s = 0.0;
  std::string kind;       // "breaker_open", "pool_exhausted", ...; documented in docs/
  std::string component;  // "checkout", "checkout->payment", "redis-cart/replica-0"
  std::vector<std::pair<std::string, std::string>> attributes;
};

enum class BreakerState { closed, open, half_open };
inline std::string_view to_string(BreakerState state) {
  switch (state) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::open:
      return "open";
    case BreakerState::half_open:
      return "half_open";
  }
  return "unknown";
}

// Gauges and running totals at one instant, taken at every telemetry window's end. Totals
// only grow; a recorder turns them into rates by difference.
struct InstanceGauge {
  std::string_view service;
  int instance = 0;
  std::string_view host;
  bool up = true;
  int workers = 0;
  int busy_workers = 0;
  int queued = 0;
  double memory_mb = 0.0;
  double cpu_seconds_total = 0.0;  // CPU time consumed since the start, in reference-core seconds
};

struct HostGauge {
  std::string_view host;
  std::string_view zone;
  int cores = 0;
  double busy_core_seconds_total = 0.0;
};

struct PoolGauge {
  std::string_view from;  // caller service
  std::string_view to;    // callee service or datastore
  int size = 0;           // summed over the caller's instances
  int in_use = 0;
  int waiters = 0;
  std::uint64_t acquire_timeouts_total = 0;
};

struct BreakerGauge {
  std::string_view from;
  std::string_view to;
  int instance = 0;  // the caller's instance (breakers are per caller instance)
  BreakerState state = BreakerState::closed;
};

struct DatastoreGauge {
  std::string_view datastore;
  int node = 0;  // 0: primary, 1..: replicas
  bool up = true;
  double replication_lag_ms = 0.0;  // measured: age of the oldest write not yet applied here
  int connections_in_use = 0;
  std::uint64_t reads_total = 0;
  std::uint64_t stale_reads_total = 0;
  std::uint64_t writes_total = 0;
};

struct Snapshot {
  double time_s = 0.0;
  std::vector<InstanceGauge> instances;
  std::vector<HostGauge> hosts;
  std::vector<PoolGauge> pools;
  std::vector<BreakerGauge> breakers;
  std::vector<DatastoreGauge> datastores;
};

// Subscribe to a run. Every callback comes in simulated-time order; the default does nothing.
class TwinObserver {
 public:
  virtual ~TwinObserver() = default;
  virtual void on_span(const SpanRecord&) {}
  virtual void on_entry(const EntryRecord&) {}
  virtual void on_event(const TwinEvent&) {}
  virtual void on_snapshot(const Snapshot&) {}
  virtual void on_run_end(double /*end_time_s*/) {}
};

}  // namespace doppel::twin
