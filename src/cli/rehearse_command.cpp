// doppel rehearse: replay a failure scenario against the twin; did the steady state hold,
// what broke, in what order.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/experiments/process_pool.hpp"
#include "doppel/experiments/rehearse.hpp"
#include "doppel/faults/chaos_toolkit.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/command.hpp"
#include "cli/own_executable.hpp"
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
    bool no_abort = false;
    std::size_t replications = 1;
    int jobs = 0;
    std::uint64_t run = 0;  // a replication's twin run number (set by the parent process)
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
    options.twin.run = a.run;
    options.twin.network = a.network == "flow" ? twin::TwinOptions::NetworkModel::flow
                                               : twin::TwinOptions::NetworkModel::latency;
    options.telemetry.out_dir = a.out;
    options.telemetry.trace_sample_ratio = a.trace_sample;
    options.extra_observers.push_back(&recorder);
    experiments::RehearseOptions rehearse_options;
    rehearse_options.stop_on_abort = !a.no_abort;
    const auto result = experiments::rehearse(plan.scenario, topology, options, rehearse_options);
    const auto verdict = faults::chaos::judge_experiment(
        plan, recorder.entries(),
        result.aborted() ? std::optional<double>(result.abort->time_s) : std::nullopt,
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
  // N replications, each a child process (one SimGrid engine per process) with its own run
  // number, then the aggregate. Exit 1 when any replication aborted or its experiment
  // failed, as a single run would.
  static const auto run_replications = [](const Args& a, std::uint64_t seed) {
    const std::filesystem::path out(a.out);
    std::filesystem::create_directories(out);
    std::vector<experiments::ChildProcess> children;
    for (std::size_t i = 0; i < a.replications; ++i) {
      const auto dir = out / experiments::replication_dir_name(i);
      std::filesystem::create_directories(dir);
      experiments::ChildProcess child;
      child.arguments = {"rehearse"};
      for (const auto& file : a.files) child.arguments.push_back(file);
      child.arguments.insert(
          child.arguments.end(),
          {"--out", dir.string(), "--seed", std::to_string(seed), "--run", std::to_string(i),
           "--network", a.network, "--trace-sample", fmt::format("{}", a.trace_sample)});
      if (a.no_abort) child.arguments.push_back("--no-abort");
      if (!a.mapping.empty()) {
        child.arguments.push_back("--mapping");
        child.arguments.push_back(a.mapping);
      }
      child.output_file = dir / "terminal.txt";
      children.push_back(std::move(child));
    }
    const int jobs = a.jobs > 0 ? a.jobs : experiments::default_jobs();
    std::size_t done = 0;
    const auto exits = experiments::run_children(
        own_executable(), children, jobs,
        [&](std::size_t index, const experiments::ChildExit& exit) {
          fmt::print(stderr, "replication {} of {} ({}): {}\n", ++done, a.replications,
                     experiments::replication_dir_name(index), exit.describe());
        });
    std::vector<nlohmann::json> documents;
    bool any_failed = false;
    for (std::size_t i = 0; i < exits.size(); ++i) {
      // 0: ran its course; 1: aborted or the experiment failed, its outputs are there.
      if (exits[i].signal != 0 || exits[i].exit_code < 0 || exits[i].exit_code > 1) {
        throw std::runtime_error(fmt::format("replication {} failed ({}): see {}", i,
                                             exits[i].describe(),
                                             children[i].output_file.string()));
      }
      any_failed = any_failed || exits[i].exit_code == 1;
      std::ifstream in(out / experiments::replication_dir_name(i) / "rehearsal.json");
      documents.push_back(nlohmann::json::parse(in));
    }
    const auto aggregate = experiments::aggregate_rehearsals(documents);
    write_file(out / "rehearsal.json", aggregate.dump(2) + "\n");
    if (a.json) {
      std::cout << aggregate.dump(2) << '\n';
    } else {
      experiments::print_rehearsal_aggregate(std::cout, aggregate);
      fmt::print("\nOutputs in {}/ (rehearsal.json, and each replication in replication-NNN/)\n",
                 a.out);
    }
    return any_failed ? 1 : 0;
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
  cmd->add_flag("--no-abort", args->no_abort,
                "run the whole timeline even when an abort condition fires; only report when "
                "it would have fired");
  cmd->add_option("--replications", args->replications,
                  "run N seeded replications, each in its own process, into "
                  "OUT/replication-NNN/, and aggregate them")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--jobs,-j", args->jobs,
                  "replications run at once (default: the machine's hardware threads)")
      ->check(CLI::Range(1, 1024));
  // Set by the parent of replications: the twin's run number (a substream of the seed).
  cmd->add_option("--run", args->run, "twin run number (replication index)")->group("");
  cmd->add_option("--mapping", args->mapping,
                  "Chaos Toolkit experiments: a chaos-mapping/v1 file over the experiment's "
                  "own `doppel` extension");
  cmd->callback([args, &action] {
    action = [args] {
      if (is_chaos_experiment(args->files.back())) {
        if (args->replications > 1) {
          if (args->files.size() != 2) {
            throw CLI::ValidationError(
                "rehearse", "a Chaos Toolkit experiment needs the TOPOLOGY argument too");
          }
          // The plan's seed: --seed, else PlanOptions' default, as a single run takes it.
          return run_replications(*args,
                                  args->seed != 0 ? args->seed : faults::chaos::PlanOptions{}.seed);
        }
        return run_chaos_experiment(*args);
      }
      faults::Scenario scenario;
      model::Topology topology;
      if (args->files.size() == 2) {
        topology = model::load_topology(args->files[0]);
        scenario = faults::load_scenario(args->files[1], &topology);
      } else {
        scenario = faults::load_scenario(args->files[0]);
        topology = faults::load_scenario_topology(scenario);
      }
      if (args->replications > 1) {
        return run_replications(*args, args->seed != 0 ? args->seed : scenario.seed);
      }
      experiments::RunOptions options;
      options.twin.seed = args->seed != 0 ? args->seed : scenario.seed;
      options.twin.run = args->run;
      options.twin.network = args->network == "flow" ? twin::TwinOptions::NetworkModel::flow
                                                     : twin::TwinOptions::NetworkModel::latency;
      options.telemetry.out_dir = args->out;
      options.telemetry.trace_sample_ratio = args->trace_sample;
      experiments::RehearseOptions rehearse_options;
      rehearse_options.stop_on_abort = !args->no_abort;
      const auto result = experiments::rehearse(scenario, topology, options, rehearse_options);
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
      // Aborted: the rehearsal did not run its course, as a failed steady state (exit 1).
      return result.aborted() ? 1 : 0;
    };
  });
}

}  // namespace doppel::cli
