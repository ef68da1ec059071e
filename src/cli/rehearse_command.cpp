// doppel rehearse: replay a failure scenario against the twin; did the steady state hold,
// what broke, in what order.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/experiments/rehearse.hpp"
#include "doppel/faults/chaos_toolkit.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/command.hpp"
#include "cli/progress_bar.hpp"

namespace doppel::cli {

namespace {

// A Chaos Toolkit experiment has a "method" and is not a Doppel document.
bool is_chaos_experiment(const std::string& file) {
  std::ifstream in(file);
  const auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() && doc.contains("method") && !doc.contains("doppel");
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  if (!file) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

void add_rehearse_command(CLI::App& app, Action& action) {
  struct Args {
    std::vector<std::string> files;  // [TOPOLOGY] SCENARIO
    std::string out;
    std::uint64_t seed = 0;
    std::string network = "latency";
    double trace_sample = 0.01;
    bool json = false;
    std::string mapping;
  };
  // A Chaos Toolkit experiment: planned onto the twin, run, judged in its own vocabulary.
  static const auto run_chaos_experiment = [](const Args& a) {
    if (a.files.size() != 2) {
      throw CLI::ValidationError("rehearse",
                                 "a Chaos Toolkit experiment needs the TOPOLOGY argument too");
    }
    const model::Topology topology = model::load_topology(a.files[0]);
    const auto experiment = faults::chaos::load_experiment(a.files[1]);
    auto mapping = faults::chaos::mapping_from_extensions(experiment, topology);
    if (!a.mapping.empty()) {
      mapping =
          faults::chaos::merge_mappings(mapping, faults::chaos::load_mapping(a.mapping, topology));
    }
    faults::chaos::PlanOptions plan_options;
    if (a.seed != 0) plan_options.seed = a.seed;
    const auto plan = faults::chaos::plan_experiment(experiment, mapping, topology, plan_options);
    faults::chaos::ProbeRecorder recorder;
    experiments::RunOptions options;
    options.twin.seed = plan.scenario.seed;
    options.twin.network = a.network == "flow" ? twin::TwinOptions::NetworkModel::flow
                                               : twin::TwinOptions::NetworkModel::latency;
    options.telemetry.out_dir = a.out;
    options.telemetry.trace_sample_ratio = a.trace_sample;
    options.extra_observers.push_back(&recorder);
    const auto result = experiments::rehearse(plan.scenario, topology, options);
    const auto verdict = faults::chaos::judge_experiment(plan, recorder.entries(), std::nullopt,
                                                         result.run.stats.simulated_s);
    std::ostringstream rehearsal;
    experiments::write_rehearsal_json(rehearsal, result);
    write_file(std::filesystem::path(a.out) / "rehearsal.json", rehearsal.str());
    write_file(std::filesystem::path(a.out) / "journal.json",
               faults::chaos::to_json(verdict).dump(2) + "\n");
    if (a.json) {
      std::cout << faults::chaos::to_json(verdict).dump(2) << '\n';
    } else {
      experiments::print_rehearsal(std::cout, result);
      fmt::print("\nChaos Toolkit experiment \"{}\": {}{}\n", experiment.title, verdict.status,
                 verdict.deviated ? ", deviated" : "");
      for (const auto& probe : verdict.probes) {
        fmt::print("  {:<8} t={:>7.1f}s  {:<32} {:<24} {}\n", faults::chaos::to_string(probe.phase),
                   probe.at_s, probe.name, probe.output ? probe.output->dump() : "(no data)",
                   probe.tolerance_met ? "within tolerance" : "OUT OF TOLERANCE");
      }
      if (!verdict.reason.empty()) fmt::print("  {}\n", verdict.reason);
      fmt::print("\nOutputs in {}/ (journal.json, rehearsal.json, metrics.csv, ...)\n", a.out);
    }
    return verdict.status == "completed" && !verdict.deviated ? 0 : 1;
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
  cmd->add_option("--mapping", args->mapping,
                  "Chaos Toolkit experiments: a chaos-mapping/v1 file over the experiment's "
                  "own `doppel` extension");
  cmd->callback([args, &action] {
    action = [args] {
      if (is_chaos_experiment(args->files.back())) return run_chaos_experiment(*args);
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
