// doppel build: reconstruct a topology/v1 document from trace files (and a config overlay),
// with a provenance sidecar saying which values were inferred, configured or defaulted.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/ingest/config_overlay.hpp"
#include "doppel/ingest/fidelity.hpp"
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

std::string relative_error(const ingest::QuantilePair& pair) {
  const double error = pair.relative_error();
  return std::isfinite(error) ? fmt::format("{:+.1f}%", 100.0 * error) : "-";
}

// Runs `simulator run TOPOLOGY --out DIR ...` in a child process: SimGrid allows one engine
// per process, and a crash of the replay must not take the build down with it.
int run_child(const std::string& simulator, const std::vector<std::string>& arguments,
              const fs::path& log) {
  std::vector<char*> argv;
  std::vector<std::string> storage;
  storage.push_back(simulator);
  storage.insert(storage.end(), arguments.begin(), arguments.end());
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error(fmt::format("fork failed: {}", std::strerror(errno)));
  if (child == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(simulator.c_str(), argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", simulator.c_str(), std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waitpid failed");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int check_replay(const std::string& simulator, const fs::path& topology_file,
                 const ingest::Reconstruction& observed, std::uint64_t seed) {
  fs::path dir = topology_file;
  dir.replace_extension();
  dir += ".check";
  fs::create_directories(dir);
  const fs::path log = dir / "run.log";
  fmt::print("\nReplaying {} (all traces sampled, seed {}) in {}\n", topology_file.string(), seed,
             dir.string());
  const int code = run_child(simulator,
                             {"run", topology_file.string(), "--out", dir.string(),
                              "--trace-sample", "1", "--seed", std::to_string(seed)},
                             log);
  if (code != 0) {
    fmt::print(stderr, "the replay failed (exit {}); its output is in {}\n", code, log.string());
    return 1;
  }
  const fs::path replay_traces = dir / "traces.otlp.jsonl";
  if (!fs::exists(replay_traces) || fs::file_size(replay_traces) == 0) {
    // A Poisson workload fitted to a handful of requests can draw none in the replay.
    fmt::print(stderr,
               "the replay made no request: the workload inferred from {} entry requests drew "
               "no arrival; set a longer workload in a --config overlay (workload.duration_s, "
               "clients' rate) to compare\n",
               observed.stats.entry_requests);
    return 1;
  }
  ingest::TopologyReconstructor rebuild;
  ingest::read_trace_file(replay_traces, rebuild);
  const ingest::Reconstruction simulated = rebuild.finish();

  const ingest::FidelityReport report = ingest::compare_fidelity(observed, simulated);
  const fs::path fidelity_file = dir / "fidelity.json";
  write_file(fidelity_file, ingest::fidelity_to_json_text(report));

  fmt::print("\n{:<48} {:>6} {:>6}  {:>21}  {:>21}  {:>21}  {:>5}\n", "operation (latency ms)",
             "n obs", "n sim", "p50 obs/sim (err)", "p90 obs/sim (err)", "p99 obs/sim (err)", "KS");
  for (const auto& op : report.operations) {
    if (op.simulated_spans == 0) {
      fmt::print("{:<48} {:>6} {:>6}  not reached in the replay\n", op.operation, op.observed_spans,
                 0);
      continue;
    }
    auto cell = [](const ingest::QuantilePair& pair) {
      return fmt::format("{:.2f}/{:.2f} ({})", pair.observed, pair.simulated, relative_error(pair));
    };
    fmt::print("{:<48} {:>6} {:>6}  {:>21}  {:>21}  {:>21}  {:>5.2f}\n", op.operation,
               op.observed_spans, op.simulated_spans, cell(op.p50), cell(op.p90), cell(op.p99),
               op.ks_distance);
  }
  fmt::print("\n{:<72} {:>9} {:>9}  {}\n", "calls per span (caller -> callee)", "observed",
             "simulated", "error");
  for (const auto& call : report.calls) {
    fmt::print("{:<72} {:>9.3f} {:>9.3f}  {}\n", call.caller + " -> " + call.callee, call.observed,
               call.simulated, relative_error({call.observed, call.simulated}));
  }
  fmt::print("\nper-operation figures: {}\n", fidelity_file.string());
  return 0;
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
    std::string gateway = "gateway";
    bool check = false;
    std::uint64_t seed = 1;
    std::string simulator = "/proc/self/exe";
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
  build
      ->add_option("--gateway", args->gateway,
                   "service whose entry spans only forward to one operation: read as the "
                   "gateway, not a service (\"\" for none)")
      ->capture_default_str();
  build->add_flag("--check", args->check,
                  "replay the result (doppel run, child process) and compare per-operation "
                  "latency and call counts with the traces");
  build->add_option("--seed", args->seed, "seed of the --check replay")->capture_default_str();
  build
      ->add_option("--simulator", args->simulator,
                   "doppel executable that runs the --check replay (default: this one)")
      ->group("");
  build->callback([args, &action] {
    action = [args] {
      ingest::ReconstructOptions options;
      options.topology_name = args->name;
      options.fit =
          args->lognormal ? ingest::SelfTimeFit::lognormal : ingest::SelfTimeFit::empirical;
      options.histogram_buckets = args->buckets;
      options.rate_window_s = args->window_s;
      options.gateway_service = args->gateway;
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
      if (args->check) return check_replay(args->simulator, args->out, result, args->seed);
      return 0;
    };
  });
}

}  // namespace doppel::cli
