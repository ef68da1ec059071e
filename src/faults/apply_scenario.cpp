// apply_scenario: schedules plan_scenario()'s commands on a running twin.
#include "doppel/faults/apply_scenario.hpp"

#include <map>
#include <memory>

#include "doppel/twin/runtime.hpp"

namespace doppel::faults {

namespace {

// What the runtime calls need beyond one command: partition ids by the plan's key, and each
// edge's latency and jitter (one runtime call sets both).
struct ApplyState {
  std::map<int, int> partitions;
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> edge_latency;
};

void run_command(const RuntimeCommand& command, twin::TwinRuntime& runtime, ApplyState& state) {
  auto& partitions = state.partitions;
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
    case Op::instance_edge_policy:
      runtime.set_instance_edge_policy(command.policy, command.index);
      break;
    case Op::latency_jitter:
      runtime.set_latency_jitter(command.target, command.value);
      break;
    case Op::edge_latency:
    case Op::edge_jitter: {
      auto& [ms, jitter] = state.edge_latency[{command.target, command.other}];
      (command.op == Op::edge_latency ? ms : jitter) = command.value;
      runtime.set_edge_extra_latency(command.target, command.other, ms, jitter);
      break;
    }
    case Op::instance_slowdown:
      runtime.set_instance_slowdown(command.target, command.index, command.value);
      break;
    case Op::query_slowdown:
      runtime.set_query_slowdown(command.target, command.other, command.value);
      break;
    case Op::service_resolvable:
      runtime.set_service_resolvable(command.target, command.up);
      break;
    case Op::error_rate:
      runtime.set_error_rate(command.target, command.other, command.value);
      break;
    case Op::clock_skew:
      runtime.set_clock_skew(command.target, command.value);
      break;
    case Op::replication_lag:
      runtime.set_replication_lag(command.target, 1.0, command.value);
      break;
    case Op::replication_stopped:
      runtime.set_replication_stopped(command.target, !command.up);
      break;
    case Op::host_packet_loss:
      runtime.set_host_packet_loss(command.target, command.value);
      break;
    case Op::service_packet_loss:
      runtime.set_service_packet_loss(command.target, command.value);
      break;
    case Op::zone_bandwidth:
      runtime.set_zone_bandwidth(command.target, command.other, command.value);
      break;
    case Op::gateway_routes:
      runtime.set_gateway_routes(command.routes);
      break;
    case Op::workers:
      runtime.set_workers(command.target, command.index);
      break;
    case Op::queue_capacity:
      runtime.set_queue_capacity(command.target, command.index);
      break;
    case Op::max_connections:
      runtime.set_max_connections(command.target, command.index);
      break;
    case Op::partition_add:
      partitions[command.index] = runtime.add_partition(command.side_a, command.side_b, command.up);
      break;
    case Op::partition_heal:
      if (auto it = partitions.find(command.index); it != partitions.end()) {
        runtime.heal_partition(it->second);
        partitions.erase(it);
      }
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
  auto state = std::make_shared<ApplyState>();
  std::size_t first = 0;
  while (first < commands->size()) {
    std::size_t last = first;
    while (last < commands->size() && (*commands)[last].at_s == (*commands)[first].at_s) ++last;
    runtime.at((*commands)[first].at_s, [commands, state, first, last](twin::TwinRuntime& rt) {
      for (std::size_t i = first; i < last; ++i) run_command((*commands)[i], rt, *state);
    });
    first = last;
  }
}

}  // namespace doppel::faults
