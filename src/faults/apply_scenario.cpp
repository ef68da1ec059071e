// apply_scenario: schedules plan_scenario()'s commands on a running twin.
#include "doppel/faults/apply_scenario.hpp"

#include <memory>

#include "doppel/twin/runtime.hpp"

namespace doppel::faults {

namespace {

void run_command(const RuntimeCommand& command, twin::TwinRuntime& runtime) {
  using Op = RuntimeCommand::Op;
  switch (command.op) {
    case Op::instance_up:
      runtime.set_instance_up(command.target, command.index, command.up);
      break;
    case Op::datastore_node_up:
      runtime.set_datastore_node_up(command.target, command.index, command.up);
      break;
    case Op::extra_latency:
      runtime.set_extra_latency(command.target, command.value);
      break;
    case Op::zone_latency:
      runtime.set_zone_latency(command.target, command.other, command.value);
      break;
    case Op::cpu_stress:
      runtime.set_cpu_stress(command.target, command.value);
      break;
    case Op::cpu_cost_factor:
      runtime.set_cpu_cost_factor(command.target, command.value);
      break;
    case Op::edge_policy:
      runtime.set_edge_policy(command.policy);
      break;
    case Op::event: {
      twin::TwinEvent event = command.event;
      event.time_s = runtime.now();
      runtime.emit_event(event);
      break;
    }
  }
}

}  // namespace

void apply_scenario(const Scenario& scenario, const model::Topology& prepared,
                    twin::TwinRuntime& runtime) {
  // Shared by the scheduled actions, which outlive this call. One action per instant keeps
  // the plan's order among simultaneous commands whatever order at() gives equal times.
  auto commands =
      std::make_shared<const std::vector<RuntimeCommand>>(plan_scenario(scenario, prepared));
  std::size_t first = 0;
  while (first < commands->size()) {
    std::size_t last = first;
    while (last < commands->size() && (*commands)[last].at_s == (*commands)[first].at_s) ++last;
    runtime.at((*commands)[first].at_s, [commands, first, last](twin::TwinRuntime& rt) {
      for (std::size_t i = first; i < last; ++i) run_command((*commands)[i], rt);
    });
    first = last;
  }
}

}  // namespace doppel::faults
