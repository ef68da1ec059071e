// doppel build: reconstruct a topology/v1 document from trace files (and a config overlay),
// with a provenance sidecar saying which values were inferred, configured or defaulted.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/ingest/config_overlay.hpp"
#include "doppel/ingest/reconstruct.hpp"
#include "doppel/ingest/trace_reader.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

#include "cli/command.hpp"

namespace doppel::cli {

namespace {

namespace fs = std::filesystem;

// "out/topology.json" -> "out/topology.provenance.json"
fs::path provenance_path(const fs::path& topology) {
  fs::path sidecar = topology;
  sidecar.replace_extension();
  sidecar += ".provenance.json";
  return sidecar;
}

void write_file(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
}

std::size_t operation_count(const model::Topology& t) {
  std::size_t n = 0;
  for (const auto& s : t.services) n += s.operations.size();
  return n;
}

void print_report(const std::vector<std::pair<std::string, ingest::ReadResult>>& reads,
                  const ingest::Reconstruction& r, const std::vector<std::string>& warnings) {
  fmt::print("\nData quality\n");
  for (const auto& [file, read] : reads) {
    fmt::print("  {} ({}{}, {} bytes)\n", file, ingest::to_string(read.format),
               read.zstd_compressed ? ", zstd" : "", read.bytes);
    std::ostringstream summary;
    ingest::print_summary(summary, read.quality);
    std::istringstream lines(summary.str());
    for (std::string line; std::getline(lines, line);) fmt::print("    {}\n", line);
  }
  const auto& s = r.stats;
  fmt::print("\nReconstruction\n");
  fmt::print("  {} traces, {} spans; {} entry requests\n", s.traces, s.spans, s.entry_requests);
  if (s.fragment_roots > 0) {
    fmt::print("  {} trace fragments whose root's parent never came (analysed, not workload)\n",
               s.fragment_roots);
  }
  if (s.early_flushed_traces > 0) {
    fmt::print("  {} traces analysed before the input ended (span buffer full)\n",
               s.early_flushed_traces);
  }
  if (s.transparent_client_spans > 0) {
    fmt::print(
        "  {} client spans with no callee and no peer name: their time stays with the "
        "caller\n",
        s.transparent_client_spans);
  }
  for (const auto& note : s.notes) fmt::print("  note: {}\n", note);
  for (const auto& warning : warnings) fmt::print("  topology warning: {}\n", warning);
  std::size_t inferred = 0;
  std::size_t configured = 0;
  std::size_t defaulted = 0;
  for (const auto& e : r.provenance) {
    if (e.source == "traces") ++inferred;
    if (e.source == "overlay") ++configured;
    if (e.source == "default") ++defaulted;
  }
  fmt::print("  provenance: {} values inferred from traces, {} configured, {} defaults\n", inferred,
             configured, defaulted);
}

}  // namespace

void add_build_command(CLI::App& app, Action& action) {
  struct Args {
    std::vector<std::string> traces;
    std::string config;
    std::string out;
    bool report = false;
    bool lognormal = false;
    int buckets = 24;
    double window_s = 10.0;
    std::string name = "reconstructed";
  };
  auto args = std::make_shared<Args>();
  auto* build = app.add_subcommand(
      "build", "Reconstruct a topology/v1 file from traces (OTLP JSON, Jaeger UI, Zipkin v2)");
  build->add_option("--traces", args->traces, "trace files (plain or .zst)")
      ->required()
      ->expected(1, -1);
  build->add_option("--config", args->config,
                    "config overlay (JSON, docs/reconstruction.md) merged on top");
  build->add_option("--out,-o", args->out, "topology/v1 file to write")->required();
  build->add_flag("--report", args->report, "print the data-quality and reconstruction report");
  build->add_flag("--lognormal", args->lognormal,
                  "fit self times to lognormals instead of empirical histograms");
  build->add_option("--buckets", args->buckets, "quantile buckets per empirical fit")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  build->add_option("--window", args->window_s, "arrival-rate window, seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  build->add_option("--name", args->name, "topology name")->capture_default_str();
  build->callback([args, &action] {
    action = [args] {
      ingest::ReconstructOptions options;
      options.topology_name = args->name;
      options.fit =
          args->lognormal ? ingest::SelfTimeFit::lognormal : ingest::SelfTimeFit::empirical;
      options.histogram_buckets = args->buckets;
      options.rate_window_s = args->window_s;
      ingest::TopologyReconstructor reconstructor(options);
      std::vector<std::pair<std::string, ingest::ReadResult>> reads;
      for (const auto& file : args->traces) {
        reads.emplace_back(file, ingest::read_trace_file(file, reconstructor));
      }
      ingest::Reconstruction result = reconstructor.finish();
      if (!args->config.empty()) ingest::apply_config_overlay_file(result, args->config);

      // What is written must load: check it as `doppel topology validate` would.
      const nlohmann::json doc = model::topology_to_json(result.topology);
      std::vector<std::string> warnings;
      model::parse_topology(doc, args->out, &warnings);
      write_file(args->out, doc.dump(2) + "\n");
      const fs::path sidecar = provenance_path(args->out);
      write_file(sidecar, ingest::provenance_to_json_text(result.provenance));

      const auto& t = result.topology;
      fmt::print(
          "{}: {} services ({} operations), {} datastores, {} entry routes from {} traces "
          "({} spans)\n",
          args->out, t.services.size(), operation_count(t), t.datastores.size(),
          t.gateway.routes.size(), result.stats.traces, result.stats.spans);
      fmt::print("provenance: {}\n", sidecar.string());
      std::uint64_t problems = 0;
      for (const auto& [file, read] : reads) problems += read.quality.clean() ? 0 : 1;
      if (args->report) {
        print_report(reads, result, warnings);
      } else if (problems > 0 || !result.stats.notes.empty()) {
        fmt::print("data-quality problems or notes: rerun with --report to see them\n");
      }
      return 0;
    };
  });
}

}  // namespace doppel::cli
