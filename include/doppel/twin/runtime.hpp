// The state of a running twin, as later layers (faults, deploys) may change it at a simulated
// time. Get it from TwinOptions::on_start; schedule changes with at(). Every change takes
// effect at once for new work; see docs/twin.md for what each one does to work in flight.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::twin {

namespace detail {
class Engine;
}

class TwinRuntime {
 public:
  explicit TwinRuntime(detail::Engine& engine) : engine_(&engine) {}

  double now() const;
  // Runs `action` at simulated time at_s (now if earlier). Actions run outside any request,
  // so they must not block; they may call every method below and at() again.
  void at(double at_s, std::function<void(TwinRuntime&)> action);
  // Ends the run now, as a halted experiment ends: no more arrivals, changes scheduled with
  // at() and not yet due are dropped, requests in flight are abandoned without records. The
  // last snapshot is taken at this time, TwinObserver::on_run_end gets it, and RunStats says
  // `stopped` with simulated_s = now. Records already being delivered still reach every
  // observer; nothing emitted after the call does. A second call does nothing.
  void stop();

  // A crash (up=false): the instance takes no new requests, those queued or in service fail
  // at once as `unavailable` to their callers, and load balancers skip it; up=true restarts
  // it empty. Throws std::out_of_range for an unknown service or instance.
  void set_instance_up(std::string_view service, int instance, bool up);
  // The same for a datastore node (0: primary, 1..: replicas).
  void set_datastore_node_up(std::string_view datastore, int node, bool up);
  // Latency added to every request sent to the service's instances (a slow network path or
  // a sidecar problem), in milliseconds; 0 removes it.
  void set_extra_latency(std::string_view service, double ms);
  // The extra latency to the service varies per request, uniformly within +- jitter_ms (the
  // total extra never below 0); 0 removes the jitter.
  void set_latency_jitter(std::string_view service, double jitter_ms);
  // Latency (and jitter) added to requests from one caller service to one callee only.
  // Throws std::out_of_range when the caller never calls the callee.
  void set_edge_extra_latency(std::string_view from, std::string_view to, double ms,
                              double jitter_ms = 0.0);
  // One-way latency between two zones (the same zone: between its hosts), in microseconds.
  void set_zone_latency(std::string_view zone_a, std::string_view zone_b, double latency_us);
  // CPU work on the host takes `factor` times longer (1: normal), as when a noisy neighbour
  // or a stress tool takes part of its cores.
  void set_cpu_stress(std::string_view host, double factor);
  // Replaces the caller -> callee policy (timeouts, retries, breaker, pool size, balancing)
  // for calls starting from now; breakers and pools keep their state.
  void set_edge_policy(const model::EdgePolicy& policy);
  // The same for one caller instance only (a canary: the change reaches some instances
  // first). Throws std::out_of_range for an unknown caller service or instance.
  void set_instance_edge_policy(const model::EdgePolicy& policy, int instance);
  // Scales the CPU cost of every operation of a service (a deploy that made it slower).
  void set_cpu_cost_factor(std::string_view service, double factor);
  // Reports an event through the run's observers (a fault says what it did).
  void emit_event(const TwinEvent& event);

  // --- Network faults -----------------------------------------------------------------
  // Cuts the network between two groups of hosts; each name is a zone (all its hosts), a
  // host, or a service (the hosts of its instances), looked up in that order. Transfers from side_a
  // to side_b (and, two_way, back) starting from now are lost: the caller hears nothing and times
  // out, as behind a real partition. Replication from a primary to a replica across it stops and
  // resumes when it heals. Overlapping partitions add up. Returns an id for heal_partition. Throws
  // std::out_of_range for an unknown name.
  int add_partition(const std::vector<std::string>& side_a, const std::vector<std::string>& side_b,
                    bool two_way);
  void heal_partition(int partition_id);
  // Packet loss on every transfer to or from a host, or to and from a service's instances:
  // each transmission is lost with probability `rate` (0: none) and resent after a
  // retransmission timeout (200 ms, doubling); a transfer lost 6 times in a row fails.
  void set_host_packet_loss(std::string_view host, double rate);
  void set_service_packet_loss(std::string_view service, double rate);
  // Bandwidth between two zones (the same zone: each of its hosts' NICs), in Mb/s.
  void set_zone_bandwidth(std::string_view zone_a, std::string_view zone_b, double mbps);
  // A service's name stops resolving (false): calls to it fail at once as `unavailable`.
  void set_service_resolvable(std::string_view service, bool resolvable);

  // --- Datastores -----------------------------------------------------------------------
  // Replication lag of writes committed from now: the sampled lag times factor plus extra_ms.
  void set_replication_lag(std::string_view datastore, double factor, double extra_ms);
  // Stops (true) or resumes (false) replication to every replica; writes not yet applied are
  // held, and on resume each is applied its own lag after the resume, in commit order.
  void set_replication_stopped(std::string_view datastore, bool stopped);
  // Every query named `query` (empty: all queries) costs `factor` times longer, from queries
  // starting now (a schema change, a slow disk).
  void set_query_slowdown(std::string_view datastore, std::string_view query, double factor);
  // Most requests a node holds (queued or in service); more are rejected.
  void set_max_connections(std::string_view datastore, int max_connections);

  // --- Services and traffic -----------------------------------------------------------------
  // The error rate of one operation (empty: every operation) of a service; a negative rate
  // restores the topology's.
  void set_error_rate(std::string_view service, std::string_view operation, double rate);
  // Scales a client class's arrival rate (1: the workload's profile).
  void set_client_rate_factor(std::string_view client, double factor);
  // Replaces the gateway's routes (first match wins) for entries arriving from now. Throws
  // std::out_of_range for a route to an unknown service or operation, std::invalid_argument
  // for a regex that does not compile.
  void set_gateway_routes(const std::vector<model::Route>& routes);
  // CPU work of one instance takes `factor` times longer (1: normal), on top of the host's
  // stress and the service's cost factor (memory pressure, a sick instance).
  void set_instance_slowdown(std::string_view service, int instance, double factor);
  // Memory the instance holds beyond its gauge model (a leak, pressure), in MB.
  void set_instance_extra_memory(std::string_view service, int instance, double mb);
  // The instance crashes (as set_instance_up(false), with an `instance_oom_killed` event) the
  // moment its memory_mb gauge goes over limit_mb; <= 0 removes the limit.
  void set_instance_memory_limit(std::string_view service, int instance, double limit_mb);
  // Spans recorded by instances on the host carry timestamps shifted by skew_ms.
  void set_clock_skew(std::string_view host, double skew_ms);
  // Worker actors per instance of a service: more start at once; fewer stop taking work
  // once their request is done.
  void set_workers(std::string_view service, int workers);
  // Waiting requests each instance of a service holds; more are rejected (none are dropped).
  void set_queue_capacity(std::string_view service, int capacity);
  // Instances of a service taking new requests: the first `replicas` (at most the
  // topology's); the others stop taking new work and finish what they hold.
  void set_active_replicas(std::string_view service, int replicas);

 private:
  detail::Engine* engine_;
};

}  // namespace doppel::twin
