// doppel demo: the main job on the bundled default. The Online Boutique twin is checked,
// then the db-pool-exhaustion incident is replayed against it: a deploy makes a Redis query
// far slower, cartservice's connection pool runs dry, and the errors reach the gateway.
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "doppel/experiments/rehearse.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/service_graph.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/bundled_files.hpp"
#include "cli/command.hpp"

namespace doppel::cli {

void add_demo_command(CLI::App& app, Action& action) {
  struct Args {
    std::string out = "out/demo";
    std::uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  auto* demo = app.add_subcommand(
      "demo", "Replay the db-pool-exhaustion incident on the bundled Online Boutique twin");
  demo->add_option("--out,-o", args->out, "output directory")->capture_default_str();
  demo->add_option("--seed", args->seed, "random seed (default: the scenario's)");
  demo->callback([args, &action] {
    action = [args] {
      const auto topology_file = bundled_file("topologies/online-boutique.json");
      const auto scenario_file = bundled_file("scenarios/db-pool-exhaustion.json");
      const auto topology = model::load_topology(topology_file);
      const auto scenario = faults::load_scenario(scenario_file, &topology);
      const auto graph = model::build_service_graph(topology);
      fmt::print("Doppel demo: the {} twin ({})\n", topology.name, topology_file.string());
      fmt::print("  {} services, {} datastores, {} call edges, {} gateway routes, {} SLOs\n",
                 topology.services.size(), topology.datastores.size(),
                 model::edges_of(graph).size(), topology.gateway.routes.size(),
                 topology.slos.size());
      fmt::print("Replaying the incident \"{}\" ({}) on SimGrid...\n\n", scenario.name,
                 scenario_file.string());

      experiments::RunOptions options;
      options.twin.seed = args->seed != 0 ? args->seed : scenario.seed;
      options.telemetry.out_dir = args->out;
      const auto result = experiments::rehearse(scenario, topology, options);
      std::ofstream(std::filesystem::path(args->out) / "rehearsal.json") << [&] {
        std::ostringstream s;
        experiments::write_rehearsal_json(s, result);
        return s.str();
      }();
      experiments::print_rehearsal(std::cout, result);
      fmt::print(
          "\nTelemetry in {}/: rehearsal.json, metrics.csv, traces.otlp.jsonl, "
          "events.jsonl, summary.json\n",
          args->out);
      fmt::print(
          "Next: `doppel rehearse SCENARIO --out DIR` for the other scenarios in "
          "scenarios/, `doppel run TOPOLOGY --out DIR` for a fault-free run.\n");
      return 0;
    };
  });
}

}  // namespace doppel::cli
