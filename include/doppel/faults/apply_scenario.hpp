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
    instance_up,        // target service, index, up
    datastore_node_up,  // target datastore, index, up
    extra_latency,      // target service, value ms (total)
    zone_latency,       // target zone, other zone, value us (absolute one-way latency)
    cpu_stress,         // target host, value factor (total)
    cpu_cost_factor,    // target service, value factor (total)
    edge_policy,        // policy
    event,              // event (fault_start / fault_end)
  };
  double at_s = 0.0;
  Op op = Op::event;
  std::string target;
  std::string other;
  int index = 0;
  bool up = true;
  double value = 0.0;
  model::EdgePolicy policy;
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
