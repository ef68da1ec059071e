// doppel demo: the main job on the bundled default: the Online Boutique twin, checked, then
// simulated under its workload with every telemetry file written to out/demo.
#include <iostream>

#include <fmt/format.h>

#include "doppel/experiments/run.hpp"
#include "doppel/model/service_graph.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/bundled_files.hpp"
#include "cli/command.hpp"
#include "cli/progress_bar.hpp"

namespace doppel::cli {

void add_demo_command(CLI::App& app, Action& action) {
  struct Args {
    std::string out = "out/demo";
    double duration_s = 30.0;
    std::uint64_t seed = 1;
  };
  auto args = std::make_shared<Args>();
  auto* demo = app.add_subcommand("demo", "Run the main job on the bundled Online Boutique twin");
  demo->add_option("--out,-o", args->out, "output directory")->capture_default_str();
  demo->add_option("--duration", args->duration_s, "simulated seconds")->capture_default_str();
  demo->add_option("--seed", args->seed, "random seed")->capture_default_str();
  demo->callback([args, &action] {
    action = [args] {
      const auto file = bundled_file("topologies/online-boutique.json");
      const auto topology = model::load_topology(file);
      const auto graph = model::build_service_graph(topology);
      fmt::print("Doppel demo: the {} twin ({})\n", topology.name, file.string());
      fmt::print("  {} services, {} datastores, {} call edges, {} gateway routes, {} SLOs\n",
                 topology.services.size(), topology.datastores.size(),
                 model::edges_of(graph).size(), topology.gateway.routes.size(),
                 topology.slos.size());
      fmt::print("  simulating {:g} s of its workload on SimGrid (seed {})...\n\n",
                 args->duration_s, args->seed);

      experiments::RunOptions options;
      options.twin.seed = args->seed;
      options.twin.duration_s = args->duration_s;
      options.telemetry.out_dir = args->out;
      ProgressBar bar("simulating");
      options.on_progress = [&bar](double done) { bar.update(done); };
      const auto result = experiments::run_simulation(topology, options);
      bar.finish();
      telemetry::print_summary_table(std::cout, result.summary);
      fmt::print(
          "\nTelemetry written to {}/: metrics.csv, traces.otlp.jsonl, events.jsonl, "
          "summary.json\n",
          args->out);
      fmt::print("Next: `doppel run TOPOLOGY --out DIR` on any topology in topologies/.\n");
      return result.summary.slo_verdict == telemetry::Verdict::fail ? 1 : 0;
    };
  });
}

}  // namespace doppel::cli
