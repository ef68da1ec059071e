// Carrying a scenario out in a running twin.
//
// A run of a scenario simulates prepare_topology(scenario, topology) (workload overrides,
// traffic surges and shifts, changes from t = 0) and passes this to TwinOptions::on_start:
//   options.on_start = [&](twin::TwinRuntime& rt) { apply_scenario(scenario, prepared, rt); };
// Everything else happens at its time through TwinRuntime::at().
#pragma once

#include <string>
#include <vector>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::twin {
class TwinRuntime;
}

namespace doppel::faults {

// One change to make to the runtime at a simulated time: the scenario compiled down to the
// TwinRuntime's vocabulary. Overlapping injections on one component are already combined
// (a component is down while any crash covers it; latencies add up; CPU factors multiply).
struct RuntimeCommand {
  enum class Op {
    instance_up,           // target service, index, up
    datastore_node_up,     // target datastore, index, up
    extra_latency,         // target service, value ms (total)
    latency_jitter,        // target service, value jitter ms (total)
    edge_latency,          // target caller, other callee, value ms (total)
    edge_jitter,           // target caller, other callee, value jitter ms (total)
    zone_latency,          // target zone, other zone, value us (absolute one-way latency)
    cpu_stress,            // target host, value factor (total)
    cpu_cost_factor,       // target service, value factor (total)
    edge_policy,           // policy
    instance_edge_policy,  // policy, index (caller instance): a canary stage
    instance_slowdown,     // target service, index, value factor (total)
    query_slowdown,        // target datastore, other query ("" all), value factor (total)
    service_resolvable,    // target service, up (false: does not resolve)
    error_rate,            // target service, other operation ("" all), value (< 0: topology's)
    clock_skew,            // target host, value ms (total)
    replication_lag,       // target datastore, value extra ms (total)
    replication_stopped,   // target datastore, up (false: stopped)
    host_packet_loss,      // target host, value rate (combined)
    service_packet_loss,   // target service, value rate (combined)
    zone_bandwidth,        // target zone, other zone, value Mb/s
    gateway_routes,        // routes
    workers,               // target service, index workers
    queue_capacity,        // target service, index capacity
    max_connections,       // target datastore, index connections
    partition_add,         // index id, side_a, side_b, up (two-way)
    partition_heal,        // index id
    event,                 // event (fault_start / fault_end)
  };
  double at_s = 0.0;
  Op op = Op::event;
  std::string target;
  std::string other;
  int index = 0;
  bool up = true;
  double value = 0.0;
  model::EdgePolicy policy;
  std::vector<model::Route> routes;
  std::vector<std::string> side_a;
  std::vector<std::string> side_b;
  twin::TwinEvent event;
};

// The commands a scenario makes, in time order (stable: at one instant, changes come before
// the events that report them). `prepared` is the topology the run simulates.
std::vector<RuntimeCommand> plan_scenario(const Scenario& scenario,
                                          const model::Topology& prepared);

// Schedules plan_scenario()'s commands on the runtime; call it from TwinOptions::on_start.
void apply_scenario(const Scenario& scenario, const model::Topology& prepared,
                    twin::TwinRuntime& runtime);

}  // namespace doppel::faults
