// doppel rehearse: replay a failure scenario against the twin; did the steady state hold,
// what broke, in what order.
#include <fstream>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "doppel/experiments/rehearse.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/command.hpp"
#include "cli/progress_bar.hpp"

namespace doppel::cli {

void add_rehearse_command(CLI::App& app, Action& action) {
  struct Args {
    std::vector<std::string> files;  // [TOPOLOGY] SCENARIO
    std::string out;
    std::uint64_t seed = 0;
    std::string network = "latency";
    double trace_sample = 0.01;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "rehearse", "Replay a failure scenario against the twin and judge its steady state");
  cmd->add_option("FILES", args->files,
                  "[TOPOLOGY] SCENARIO: the topology may be left out when the scenario names it")
      ->required()
      ->expected(1, 2);
  cmd->add_option("--out,-o", args->out, "output directory")->required();
  cmd->add_option("--seed", args->seed, "random seed (default: the scenario's)");
  cmd->add_option("--network", args->network, "network fidelity: flow or latency")
      ->check(CLI::IsMember({"flow", "latency"}))
      ->capture_default_str();
  cmd->add_option("--trace-sample", args->trace_sample, "share of traces written")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print rehearsal.json instead of tables");
  cmd->callback([args, &action] {
    action = [args] {
      faults::Scenario scenario;
      model::Topology topology;
      if (args->files.size() == 2) {
        topology = model::load_topology(args->files[0]);
        scenario = faults::load_scenario(args->files[1], &topology);
      } else {
        scenario = faults::load_scenario(args->files[0]);
        topology = faults::load_scenario_topology(scenario);
      }
      experiments::RunOptions options;
      options.twin.seed = args->seed != 0 ? args->seed : scenario.seed;
      options.twin.network = args->network == "flow" ? twin::TwinOptions::NetworkModel::flow
                                                     : twin::TwinOptions::NetworkModel::latency;
      options.telemetry.out_dir = args->out;
      options.telemetry.trace_sample_ratio = args->trace_sample;
      const auto result = experiments::rehearse(scenario, topology, options);
      {
        std::ofstream file(std::filesystem::path(args->out) / "rehearsal.json");
        experiments::write_rehearsal_json(file, result);
        if (!file) throw std::runtime_error("cannot write rehearsal.json in " + args->out);
      }
      if (args->json) {
        experiments::write_rehearsal_json(std::cout, result);
      } else {
        experiments::print_rehearsal(std::cout, result);
        fmt::print(
            "\nOutputs in {}/ (rehearsal.json, metrics.csv, traces.otlp.jsonl, "
            "events.jsonl, summary.json)\n",
            args->out);
      }
      return 0;
    };
  });
}

}  // namespace doppel::cli
