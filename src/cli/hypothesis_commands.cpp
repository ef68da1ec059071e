// doppel diagnose / validate: hypotheses tested against the twin. Both run many simulations,
// each one a `doppel simulate` child process (hidden: it is the unit of work, not a command
// users call).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/experiments/automation_policy.hpp"
#include "doppel/experiments/candidates.hpp"
#include "doppel/experiments/fix_validation.hpp"
#include "doppel/experiments/process_pool.hpp"
#include "doppel/experiments/simulated_diagnosis.hpp"
#include "doppel/experiments/simulation_batch.hpp"
#include "doppel/experiments/symptoms.hpp"
#include "doppel/experiments/trace_metrics.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"
#include "doppel/report/html_report.hpp"

#include "cli/command.hpp"
#include "cli/hypothesis_output.hpp"
#include "cli/own_executable.hpp"
#include "cli/progress_bar.hpp"

namespace doppel::cli {

namespace {

twin::TwinOptions::NetworkModel network_model(const std::string& name) {
  return name == "flow" ? twin::TwinOptions::NetworkModel::flow
                        : twin::TwinOptions::NetworkModel::latency;
}

// "300:600" -> {300, 600}; either side may be empty ("300:").
std::pair<std::optional<double>, std::optional<double>> parse_window(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    throw InputError("--window", {}, fmt::format("\"{}\": expected START:END in seconds", text));
  }
  const auto number = [&](const std::string& part) -> std::optional<double> {
    if (part.empty()) return std::nullopt;
    std::size_t used = 0;
    double value = 0.0;
    try {
      value = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || !std::isfinite(value) || value < 0) {
      throw InputError("--window", {}, fmt::format("\"{}\" is not a time in seconds", part));
    }
    return value;
  };
  auto start = number(text.substr(0, colon));
  auto end = number(text.substr(colon + 1));
  if (start && end && *end <= *start) {
    throw InputError("--window", {},
                     fmt::format("\"{}\": the end must come after the start", text));
  }
  return {start, end};
}

// A metrics CSV, a symptom spec (a JSON object with "symptoms"), or a trace file (OTLP,
// Jaeger or Zipkin JSON, maybe .zst) turned into per-service metrics.
experiments::ObservedSymptoms read_observed(const std::string& path, const std::string& columns,
                                            double trace_sample) {
  experiments::ObservedSymptoms observed;
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw InputError(path, {}, "cannot open the file");
  std::string head(4096, '\0');
  probe.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(probe.gcount()));
  const auto first = head.find_first_not_of(" \t\r\n");
  const bool json = first != std::string::npos && (head[first] == '{' || head[first] == '[');
  const bool zstd = head.size() >= 4 && head.compare(0, 4, "\x28\xb5\x2f\xfd") == 0;
  if (json && head[first] == '{' && head.find("\"symptoms\"") != std::string::npos) {
    observed.spec = experiments::load_symptom_spec(path);
    return observed;
  }
  if (json || zstd) {
    experiments::TraceMetricsOptions options;
    options.sample_ratio = trace_sample;
    observed.series = experiments::metrics_from_traces({path}, options);
    if (observed.series.empty()) {
      throw InputError(path, {}, "no server span with a start and a duration in these traces");
    }
    return observed;
  }
  experiments::ReadMetricsOptions options;
  if (columns == "rca") {
    options.mapping = experiments::ColumnMapping::rca_default();
  } else if (!columns.empty() && columns != "doppel") {
    options.mapping = experiments::load_column_mapping(columns);
  }
  observed.series = experiments::read_metrics_csv(path, options).series;
  if (observed.series.empty()) throw InputError(path, {}, "no metric column with a value");
  return observed;
}

struct CommonArgs {
  std::string topology;
  std::string out;
  std::uint64_t seed = 1;
  int jobs = experiments::default_jobs();
  std::string network = "latency";
};

void add_common(CLI::App* cmd, CommonArgs& args) {
  cmd->add_option("TOPOLOGY", args.topology, "topology/v1 JSON file")->required();
  cmd->add_option("--out,-o", args.out, "output directory")->required();
  cmd->add_option("--seed", args.seed, "seed of the simulations (same seed, same bytes)")
      ->capture_default_str();
  cmd->add_option("--jobs,-j", args.jobs, "simulations at once, one process each")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--network", args.network, "network fidelity: flow or latency")
      ->check(CLI::IsMember({"flow", "latency"}))
      ->capture_default_str();
}

experiments::BatchOptions batch_options(const CommonArgs& args) {
  experiments::BatchOptions batch;
  batch.executable = own_executable();
  batch.topology_file = std::filesystem::absolute(args.topology);
  batch.jobs = args.jobs;
  batch.network = args.network;
  return batch;
}

void add_simulate(CLI::App& app, Action& action) {
  struct Args {
    std::string topology;
    std::string scenario;
    std::string out;
    std::uint64_t seed = 1;
    double duration_s = 0.0;
    double judge_from_s = 0.0;
    std::string network = "latency";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("simulate", "one what-if simulation (run by diagnose/validate)");
  cmd->group("");  // hidden: the unit of work of the experiments
  cmd->add_option("TOPOLOGY", args->topology)->required();
  cmd->add_option("SCENARIO", args->scenario)->required();
  cmd->add_option("--out,-o", args->out)->required();
  cmd->add_option("--seed", args->seed);
  cmd->add_option("--duration", args->duration_s);
  cmd->add_option("--judge-from", args->judge_from_s);
  cmd->add_option("--network", args->network)->check(CLI::IsMember({"flow", "latency"}));
  cmd->callback([args, &action] {
    action = [args] {
      const auto topology = model::load_topology(args->topology);
      const auto scenario = faults::load_scenario(args->scenario, &topology);
      experiments::SimulateOptions options;
      options.seed = args->seed;
      options.duration_s = args->duration_s;
      options.judge_from_s = args->judge_from_s;
      options.network = network_model(args->network);
      options.out_dir = args->out;
      experiments::simulate_job(scenario, topology, options);
      return 0;
    };
  });
}

void add_diagnose(CLI::App& app, Action& action) {
  struct Args {
    CommonArgs common;
    std::string observed;
    std::string columns;
    double trace_sample = 1.0;
    std::string window;
    std::string candidates;
    bool auto_candidates = false;
    int replications = 4;
    int screening_replications = 1;
    double duration_s = 0.0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "diagnose",
      "Rank candidate root causes by how well each, simulated, reproduces what was observed");
  add_common(cmd, args->common);
  cmd->add_option("--observed", args->observed,
                  "what production showed: a metrics CSV (time,<service>_<metric>), a symptom "
                  "spec (JSON), or traces (OTLP, Jaeger or Zipkin JSON, maybe .zst)")
      ->required();
  cmd->add_option("--columns", args->columns,
                  "how the CSV's columns map to Doppel metrics: doppel (default), rca (RCAEval/RCD "
                  "names) or a doppel-column-mapping/v1 file");
  cmd->add_option("--trace-sample", args->trace_sample,
                  "share of traces the --observed trace file holds: rates are divided by it")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  cmd->add_option("--window", args->window,
                  "START:END seconds to compare (default: from the detected onset to the end)");
  auto* candidates = cmd->add_option("--candidates", args->candidates, "candidates/v1 file");
  auto* automatic = cmd->add_flag("--auto", args->auto_candidates,
                                  "every fault kind of the catalogue on every component");
  candidates->excludes(automatic);
  cmd->add_option("--replications", args->replications,
                  "replications per leading candidate, in total")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--screening-replications", args->screening_replications,
                  "replications per candidate in the screening pass")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--duration", args->duration_s,
                  "simulated seconds per run (default: the end of the observed data)");
  cmd->add_flag("--json", args->json, "print diagnosis.json instead of tables");
  cmd->callback([args, &action] {
    action = [args] {
      if (args->candidates.empty() && !args->auto_candidates) {
        throw CLI::ValidationError("give --candidates FILE or --auto");
      }
      const auto topology = model::load_topology(args->common.topology);
      const auto observed = read_observed(args->observed, args->columns, args->trace_sample);
      experiments::SimulatedDiagnosisOptions options;
      options.candidates = args->auto_candidates
                               ? experiments::auto_candidates(topology)
                               : experiments::load_candidates(args->candidates, topology);
      if (!args->window.empty()) {
        std::tie(options.window_start_s, options.window_end_s) = parse_window(args->window);
      }
      const std::filesystem::path out = args->common.out;
      std::filesystem::create_directories(out);
      options.batch = batch_options(args->common);
      options.work_dir = out / "runs";
      options.seed = args->common.seed;
      options.duration_s = args->duration_s;
      options.replications = args->replications;
      options.screening_replications = args->screening_replications;
      ProgressBar bar("simulating");
      options.batch.on_progress = simulation_progress(bar);
      const auto result = experiments::diagnose_by_simulation(observed, options);
      bar.finish();

      write_diagnosis(out, result);
      report::ReportInput report;
      report.title = fmt::format("Doppel diagnosis: {}", topology.name);
      report.notes.push_back(fmt::format(
          "Observed: {}. {} candidates, {} simulated with {} screening replication(s), {} kept "
          "for up to {} replications; {} simulations in all, seed {}. Candidate faults start "
          "at the onset, {:g} s; compared over {:g}-{:g} s.",
          args->observed, options.candidates.size(), result.screening.ranking.size(),
          options.screening_replications, result.leaders.size(), options.replications,
          result.simulations, args->common.seed, result.onset_s, result.window_start_s,
          result.window_end_s));
      report.topology = &topology;
      report.diagnosis = result.result;
      report::write_html_report(out / "report.html", report);
      if (args->json) {
        std::cout << std::ifstream(out / "diagnosis.json").rdbuf();
        return 0;
      }
      print_diagnosis(result, options.candidates.size());
      fmt::print("\nWritten: {0}/diagnosis.json, {0}/report.html, runs in {0}/runs/\n",
                 out.string());
      return 0;
    };
  });
}

void add_validate(CLI::App& app, Action& action) {
  struct Args {
    CommonArgs common;
    std::string cause;
    std::string fixes;
    std::string policy;
    int replications = 5;
    double settle_s = 10.0;
    double duration_s = 0.0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "validate", "Simulate candidate fixes against a cause: recommend, reject, or ask for review");
  add_common(cmd, args->common);
  cmd->add_option("--cause", args->cause, "scenario/v1 file: the cause to fix")->required();
  cmd->add_option("--fixes", args->fixes, "fixes/v1 file: the candidate fixes")->required();
  cmd->add_option("--policy", args->policy, "automation policy file (docs/diagnosis.md)");
  cmd->add_option("--replications", args->replications, "replications per arm")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  cmd->add_option("--settle", args->settle_s,
                  "seconds after the latest fix before the figures start counting")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--duration", args->duration_s, "simulated seconds (default: the cause's)");
  cmd->add_flag("--json", args->json, "print validation.json instead of tables");
  cmd->callback([args, &action] {
    action = [args] {
      const auto topology = model::load_topology(args->common.topology);
      (void)faults::load_scenario(args->cause, &topology);  // errors with their place, first
      const auto cause = experiments::cause_document(args->cause);
      const auto fixes = experiments::load_fixes(args->fixes, cause, topology);
      const std::filesystem::path out = args->common.out;
      std::filesystem::create_directories(out);
      experiments::FixValidationOptions options;
      options.batch = batch_options(args->common);
      options.work_dir = out / "runs";
      options.replications = args->replications;
      options.seed = args->common.seed;
      options.settle_s = args->settle_s;
      options.duration_s = args->duration_s;
      if (!args->policy.empty()) options.policy = experiments::load_automation_policy(args->policy);
      ProgressBar bar("simulating");
      options.batch.on_progress = simulation_progress(bar);
      const auto validation = experiments::validate_fixes(cause, fixes, topology, options);
      bar.finish();

      write_validation(out, validation);
      report::ReportInput report;
      report.title = fmt::format("Doppel fix validation: {}", topology.name);
      report.notes.push_back(fmt::format(
          "Cause: {}. {} fixes, {} replications per arm (no cause, cause, each fix), {} "
          "simulations, seed {}. Figures count the requests that started from {:g} s to {:g} s.",
          args->cause, fixes.size(), validation.replications, validation.simulations,
          args->common.seed, validation.judge_from_s, validation.duration_s));
      report.topology = &topology;
      add_fix_sections(report, fixes, validation);
      report::write_html_report(out / "report.html", report);
      if (args->json) {
        std::cout << std::ifstream(out / "validation.json").rdbuf();
        return 0;
      }
      fmt::print("{} fixes against {}, {} replications per arm; figures from {:g} s to {:g} s\n\n",
                 fixes.size(), args->cause, validation.replications, validation.judge_from_s,
                 validation.duration_s);
      print_validation(validation);
      fmt::print("Written: {0}/validation.json, {0}/report.html, runs in {0}/runs/\n",
                 out.string());
      return 0;
    };
  });
}

}  // namespace

void add_hypothesis_commands(CLI::App& app, Action& action) {
  add_diagnose(app, action);
  add_validate(app, action);
  add_simulate(app, action);
}

}  // namespace doppel::cli
