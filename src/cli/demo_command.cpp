// doppel demo: the main job on the bundled default, the whole story. The db-pool-exhaustion
// incident is replayed on the Online Boutique twin as "production" (a deploy makes a Redis
// query far slower, cartservice's connection pool runs dry, errors reach the gateway); Doppel
// then diagnoses it from production's metrics alone with every candidate cause of its fault
// catalogue, and validates four fixes before recommending any.
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "doppel/experiments/candidates.hpp"
#include "doppel/experiments/fix_validation.hpp"
#include "doppel/experiments/process_pool.hpp"
#include "doppel/experiments/rehearse.hpp"
#include "doppel/experiments/simulated_diagnosis.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/service_graph.hpp"
#include "doppel/model/topology_loader.hpp"
#include "doppel/report/html_report.hpp"

#include "cli/bundled_files.hpp"
#include "cli/command.hpp"
#include "cli/hypothesis_output.hpp"
#include "cli/own_executable.hpp"
#include "cli/progress_bar.hpp"

namespace doppel::cli {

namespace {

void heading(const std::string& text) {
  fmt::print("\n{}\n{}\n\n", text, std::string(text.size(), '='));
}

}  // namespace

void add_demo_command(CLI::App& app, Action& action) {
  struct Args {
    std::string out = "out/demo";
    std::uint64_t seed = 0;
    int jobs = experiments::default_jobs();
  };
  auto args = std::make_shared<Args>();
  auto* demo = app.add_subcommand(
      "demo",
      "Replay the db-pool-exhaustion incident on the bundled Online Boutique twin, diagnose it "
      "and validate four fixes");
  demo->add_option("--out,-o", args->out, "output directory")->capture_default_str();
  demo->add_option("--seed", args->seed, "seed of the production run (default: the scenario's)");
  demo->add_option("--jobs,-j", args->jobs, "simulations at once, one process each")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  demo->callback([args, &action] {
    action = [args] {
      const auto topology_file =
          std::filesystem::absolute(bundled_file("topologies/online-boutique.json"));
      const auto scenario_file = bundled_file("scenarios/db-pool-exhaustion.json");
      const auto fixes_file = bundled_file("fixes/db-pool-exhaustion.json");
      const auto topology = model::load_topology(topology_file);
      const auto scenario = faults::load_scenario(scenario_file, &topology);
      const auto graph = model::build_service_graph(topology);
      const std::filesystem::path out = args->out;
      fmt::print("Doppel demo: the {} twin ({})\n", topology.name, topology_file.string());
      fmt::print("  {} services, {} datastores, {} call edges, {} gateway routes, {} SLOs\n",
                 topology.services.size(), topology.datastores.size(),
                 model::edges_of(graph).size(), topology.gateway.routes.size(),
                 topology.slos.size());

      heading("1. Production: the incident happens");
      fmt::print("Replaying \"{}\" ({}) on SimGrid as if it were production...\n\n", scenario.name,
                 scenario_file.string());
      experiments::RunOptions run;
      run.twin.seed = args->seed != 0 ? args->seed : scenario.seed;
      run.telemetry.out_dir = out / "production";
      // Production does not stop at the scenario's abort condition: it is only reported.
      experiments::RehearseOptions production;
      production.stop_on_abort = false;
      const auto rehearsal = experiments::rehearse(scenario, topology, run, production);
      {
        std::ofstream file(out / "production" / "rehearsal.json");
        experiments::write_rehearsal_json(file, rehearsal);
      }
      experiments::print_rehearsal(std::cout, rehearsal);

      experiments::BatchOptions batch;
      batch.executable = own_executable();
      batch.topology_file = topology_file;
      batch.jobs = args->jobs;
      ProgressBar bar("simulating");
      batch.on_progress = simulation_progress(bar);

      heading("2. Diagnosis: which cause explains production's metrics?");
      fmt::print(
          "Only production's metrics.csv is given; every candidate of the fault catalogue "
          "(--auto) is simulated, seeds unseen by production...\n\n");
      experiments::ObservedSymptoms observed;
      observed.series = experiments::read_metrics_csv(out / "production" / "metrics.csv").series;
      experiments::SimulatedDiagnosisOptions diagnose;
      diagnose.candidates = experiments::auto_candidates(topology);
      diagnose.batch = batch;
      diagnose.work_dir = out / "diagnosis" / "runs";
      diagnose.seed = 1;
      const auto diagnosis = experiments::diagnose_by_simulation(observed, diagnose);
      bar.finish();
      std::filesystem::create_directories(out / "diagnosis");
      write_diagnosis(out / "diagnosis", diagnosis);
      print_diagnosis(diagnosis, diagnose.candidates.size());

      heading("3. Validation: which fix works, and does it break anything?");
      const auto cause = experiments::cause_document(scenario_file);
      const auto fixes = experiments::load_fixes(fixes_file, cause, topology);
      fmt::print(
          "{} fixes from {}, each simulated against the cause ({}), next to the cause "
          "alone and to no cause at all...\n\n",
          fixes.size(), fixes_file.string(), scenario_file.string());
      experiments::FixValidationOptions validate;
      validate.batch = batch;
      validate.work_dir = out / "validation" / "runs";
      validate.replications = 3;
      validate.seed = 1;
      ProgressBar validate_bar("simulating");
      validate.batch.on_progress = simulation_progress(validate_bar);
      const auto validation = experiments::validate_fixes(cause, fixes, topology, validate);
      validate_bar.finish();
      write_validation(out / "validation", validation);
      print_validation(validation);

      report::ReportInput report;
      report.title = "Doppel demo: db-pool-exhaustion on Online Boutique";
      report.notes.push_back(fmt::format(
          "Production: {} (seed {}). Diagnosis: {} candidates, {} simulations. Validation: {} "
          "fixes x {} replications per arm, figures from {:g} s.",
          scenario_file.string(), run.twin.seed, diagnose.candidates.size(), diagnosis.simulations,
          fixes.size(), validation.replications, validation.judge_from_s));
      report.topology = &topology;
      report.diagnosis = diagnosis.result;
      add_fix_sections(report, fixes, validation);
      report::write_html_report(out / "report.html", report);

      fmt::print(
          "\nWritten under {0}/: production/ (metrics.csv, traces.otlp.jsonl, events.jsonl, "
          "summary.json, rehearsal.json), diagnosis/diagnosis.json, "
          "validation/validation.json, report.html\n",
          out.string());
      fmt::print(
          "Next: `doppel diagnose TOPOLOGY --observed metrics.csv --auto --out DIR`, `doppel "
          "validate TOPOLOGY --cause SCENARIO --fixes FILE --out DIR`, `doppel rehearse "
          "SCENARIO --out DIR` for the other scenarios in scenarios/.\n");
      return 0;
    };
  });
}

}  // namespace doppel::cli
