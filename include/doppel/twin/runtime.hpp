// The state of a running twin, as later layers (faults, deploys) may change it at a simulated
// time. Get it from TwinOptions::on_start; schedule changes with at(). Every change takes
// effect at once for new work; see docs/twin.md for what each one does to work in flight.
#pragma once

#include <functional>
#include <string_view>

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

  // A crash (up=false): the instance takes no new requests, those queued or in service fail
  // at once as `unavailable` to their callers, and load balancers skip it; up=true restarts
  // it empty. Throws std::out_of_range for an unknown service or instance.
  void set_instance_up(std::string_view service, int instance, bool up);
  // The same for a datastore node (0: primary, 1..: replicas).
  void set_datastore_node_up(std::string_view datastore, int node, bool up);
  // Latency added to every request sent to the service's instances (a slow network path or
  // a sidecar problem), in milliseconds; 0 removes it.
  void set_extra_latency(std::string_view service, double ms);
  // One-way latency between two zones (the same zone: between its hosts), in microseconds.
  void set_zone_latency(std::string_view zone_a, std::string_view zone_b, double latency_us);
  // CPU work on the host takes `factor` times longer (1: normal), as when a noisy neighbour
  // or a stress tool takes part of its cores.
  void set_cpu_stress(std::string_view host, double factor);
  // Replaces the caller -> callee policy (timeouts, retries, breaker, pool size, balancing)
  // for calls starting from now; breakers and pools keep their state.
  void set_edge_policy(const model::EdgePolicy& policy);
  // Scales the CPU cost of every operation of a service (a deploy that made it slower).
  void set_cpu_cost_factor(std::string_view service, double factor);
  // Reports an event through the run's observers (a fault says what it did).
  void emit_event(const TwinEvent& event);

 private:
  detail::Engine* engine_;
};

}  // namespace doppel::twin
