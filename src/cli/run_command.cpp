// doppel run: simulate a topology under its workload and write what production telemetry
// would show (metrics.csv, traces.otlp.jsonl, events.jsonl, summary.json).
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "doppel/experiments/run.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/command.hpp"
#include "cli/progress_bar.hpp"

namespace doppel::cli {

void add_run_command(CLI::App& app, Action& action) {
  struct Args {
    std::string topology;
    std::string out;
    std::uint64_t seed = 1;
    double duration_s = 0.0;
    std::string network = "latency";
    double trace_sample = 0.01;
    double window_s = 1.0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* run = app.add_subcommand("run", "Simulate a topology under its workload; write telemetry");
  run->add_option("TOPOLOGY", args->topology, "topology/v1 JSON file")->required();
  run->add_option("--out,-o", args->out, "output directory")->required();
  run->add_option("--seed", args->seed, "random seed (same seed, same bytes)")
      ->capture_default_str();
  run->add_option("--duration", args->duration_s, "simulated seconds (default: the workload's)");
  run->add_option("--network", args->network, "network fidelity: flow or latency")
      ->check(CLI::IsMember({"flow", "latency"}))
      ->capture_default_str();
  run->add_option("--trace-sample", args->trace_sample, "share of traces written")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  run->add_option("--window", args->window_s, "metrics window, simulated seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run->add_flag("--json", args->json, "print summary.json instead of tables");
  run->callback([args, &action] {
    action = [args] {
      const model::Topology topology = model::load_topology(args->topology);
      experiments::RunOptions options;
      options.twin.seed = args->seed;
      options.twin.duration_s = args->duration_s;
      options.twin.network = args->network == "flow" ? twin::TwinOptions::NetworkModel::flow
                                                     : twin::TwinOptions::NetworkModel::latency;
      options.telemetry.out_dir = args->out;
      options.telemetry.trace_sample_ratio = args->trace_sample;
      options.telemetry.window_s = args->window_s;
      ProgressBar bar("simulating");
      options.on_progress = [&bar](double done) { bar.update(done); };
      const auto result = experiments::run_simulation(topology, options);
      bar.finish();
      if (args->json) {
        telemetry::write_summary_json(std::cout, result.summary);
      } else {
        telemetry::print_summary_table(std::cout, result.summary);
        fmt::print("\n{} entry requests; outputs in {}\n", result.stats.entries, args->out);
        // Wall time goes to stderr: stdout stays byte-identical for the same seed.
        fmt::print(stderr, "{} request hops in {:.2f} s wall ({:.0f} hops/s)\n", result.stats.hops,
                   result.stats.wall_s,
                   result.stats.wall_s > 0 ? result.stats.hops / result.stats.wall_s : 0.0);
      }
      return 0;
    };
  });
}

}  // namespace doppel::cli
