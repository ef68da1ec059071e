// doppel generate: labelled synthetic failure datasets (docs/datasets.md), one process per
// case; `generate merge` joins shard outputs; the hidden `generate-case` is what each of those
// processes runs.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <unistd.h>

#include <fmt/format.h>

#include "doppel/experiments/generate.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/command.hpp"
#include "cli/mpi_job.hpp"
#include "cli/own_executable.hpp"
#include "cli/progress_bar.hpp"

namespace doppel::cli {

namespace {

experiments::Catalog catalog_for(const model::Topology& topology, const std::string& file) {
  return file.empty() ? experiments::default_catalog(topology)
                      : experiments::load_catalog(file, topology);
}

}  // namespace

void add_generate_command(CLI::App& app, Action& action) {
  struct Args {
    std::string topology;
    std::string catalog;
    std::string out;
    std::uint64_t cases = 0;
    std::uint64_t seed = 1;
    std::string shard;
    int jobs = 1;
    bool resume = false;
    bool otlp = false;
    double trace_sample = 0.01;
    std::uint64_t index = 0;
    std::vector<std::string> merge_dirs;
    bool print_catalog = false;
  };
  auto args = std::make_shared<Args>();

  auto* generate = app.add_subcommand(
      "generate", "Labelled synthetic failure cases for root-cause analysis (docs/datasets.md)");
  generate->add_option("TOPOLOGY", args->topology, "topology/v1 JSON file");
  generate->add_option("--cases", args->cases, "number of cases in the dataset");
  generate->add_option("--catalog", args->catalog, "catalog/v1 file (default: every fault kind)");
  generate->add_option("--seed", args->seed, "dataset seed")->capture_default_str();
  generate->add_option("--shard", args->shard,
                       "I/K: only cases i with i % K == I (default: SLURM_ARRAY_TASK_ID/COUNT "
                       "or JOB_COMPLETION_INDEX/DOPPEL_SHARD_COUNT, else all)");
  generate->add_option("--jobs,-j", args->jobs, "cases simulated at once, one process each")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  generate->add_flag("--resume", args->resume, "keep complete cases, redo partial ones");
  generate->add_flag("--otlp", args->otlp, "also write traces.otlp.jsonl per case");
  generate->add_option("--trace-sample", args->trace_sample, "share of traces written")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  generate->add_option("--out,-o", args->out, "dataset directory");
  generate->add_flag("--print-catalog", args->print_catalog,
                     "print the catalogue as catalog/v1 JSON and exit");
  generate->require_subcommand(0, 1);

  auto* merge = generate->add_subcommand("merge", "Join shard outputs into one dataset");
  merge->add_option("DIRS", args->merge_dirs, "shard output directories")->required();
  merge->add_option("--out,-o", args->out, "merged dataset directory")->required();
  merge->callback([args, &action] {
    action = [args] {
      std::vector<std::filesystem::path> dirs(args->merge_dirs.begin(), args->merge_dirs.end());
      const auto cases = experiments::merge_datasets(dirs, args->out);
      fmt::print("{} cases in {}/manifest.jsonl\n", cases, args->out);
      return 0;
    };
  });

  generate->final_callback([args, generate, merge, &action] {
    if (merge->parsed()) return;
    action = [args, generate] {
      if (args->topology.empty()) throw CLI::ValidationError("TOPOLOGY is required");
      const model::Topology topology = model::load_topology(args->topology);
      if (args->print_catalog) {
        std::cout << experiments::catalog_to_json(catalog_for(topology, args->catalog)).dump(2)
                  << '\n';
        return 0;
      }
      if (args->out.empty()) throw CLI::ValidationError("--out is required");
      if (generate->count("--cases") == 0) throw CLI::ValidationError("--cases is required");
      catalog_for(topology, args->catalog);  // bad catalogues fail here, not in every case

      experiments::GenerateOptions options;
      options.topology_file = std::filesystem::absolute(args->topology);
      if (!args->catalog.empty()) options.catalog_file = std::filesystem::absolute(args->catalog);
      options.out_dir = args->out;
      options.cases = args->cases;
      options.seed = args->seed;
      options.jobs = args->jobs;
      options.resume = args->resume;
      options.case_options.trace_sample_ratio = args->trace_sample;
      options.case_options.write_otlp = args->otlp;
      const auto environment = [](const char* name) { return std::getenv(name); };
      const auto environment_shard = experiments::shard_from_environment(environment);
      if (!args->shard.empty()) {
        options.shard = experiments::parse_shard(args->shard);
      } else if (environment_shard) {
        options.shard = *environment_shard;
      }
      // Under mpirun each rank takes shard rank/size of the one output directory, and rank 0
      // writes the manifest once every rank is done.
      std::unique_ptr<MpiJob> mpi;
      if (started_by_mpi_launcher(environment)) {
        if (!args->shard.empty() || environment_shard) {
          throw CLI::ValidationError(
              "both mpirun and --shard (or SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX) pick "
              "the shard: use one of them");
        }
        mpi = MpiJob::join();
        options.shard = {static_cast<std::uint64_t>(mpi->rank()),
                         static_cast<std::uint64_t>(mpi->size())};
        options.write_manifest = false;
      }
      const bool reports = !mpi || mpi->rank() == 0;
      ProgressBar bar("generating");
      // Wall time only for the display: it never reaches the dataset.
      const auto started = std::chrono::steady_clock::now();
      options.on_progress = [&bar, started](std::uint64_t done, std::uint64_t total) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
        const double eta = rate > 0 ? double(total - done) / rate : 0.0;
        bar.update(total == 0 ? 1.0 : double(done) / double(total),
                   fmt::format("{:.2f} cases/s, ETA {:.0f} s", rate, eta));
      };
      auto result = experiments::generate_dataset(options, own_executable());
      bar.finish();
      fmt::print("shard {}/{}: {} cases generated, {} already complete, {} failed\n",
                 options.shard.index, options.shard.count, result.generated, result.skipped,
                 result.failed.size());
      for (auto index : result.failed) {
        fmt::print(stderr, "case {} failed (its messages: {}); rerun with --resume to retry it\n",
                   index, experiments::case_log_file(options.out_dir, index).string());
      }
      long most_failed = static_cast<long>(result.failed.size());
      if (mpi) {
        mpi->wait_for_all_ranks();
        if (mpi->rank() == 0) result.manifest_cases = experiments::write_manifest(options.out_dir);
        most_failed = mpi->max_over_ranks(most_failed);
      }
      if (reports) {
        fmt::print("{} cases in {}/manifest.jsonl; by fault kind:\n", result.manifest_cases,
                   args->out);
        for (const auto& [kind, count] : experiments::class_balance(args->out)) {
          fmt::print("  {:<18} {:>7}\n", kind, count);
        }
      }
      return most_failed == 0 ? 0 : 1;
    };
  });

  // One case in this process: what `generate` runs per case. Hidden from --help.
  auto* one = app.add_subcommand("generate-case", "Simulate one case of a dataset (internal)");
  one->group("");
  one->add_option("TOPOLOGY", args->topology, "topology/v1 JSON file")->required();
  one->add_option("--index", args->index, "case index")->required();
  one->add_option("--seed", args->seed, "dataset seed");
  one->add_option("--catalog", args->catalog, "catalog/v1 file");
  one->add_option("--trace-sample", args->trace_sample, "share of traces written");
  one->add_flag("--otlp", args->otlp, "also write traces.otlp.jsonl");
  one->add_option("--out,-o", args->out, "dataset directory")->required();
  one->callback([args, &action] {
    action = [args] {
      const model::Topology topology = model::load_topology(args->topology);
      experiments::CaseOptions options;
      options.trace_sample_ratio = args->trace_sample;
      options.write_otlp = args->otlp;
      experiments::run_case(topology, catalog_for(topology, args->catalog), args->seed, args->index,
                            args->out, options);
      return 0;
    };
  });
}

}  // namespace doppel::cli
