// doppel-bench-twin: how fast the twin simulates (docs/performance.md, "Twin engine").
//
//   doppel-bench-twin                 the whole matrix, one child process per run, as Markdown
//   doppel-bench-twin --one ...       one run in this process, one JSON line
//   doppel-bench-twin --floor         SimGrid's own cost per primitive (simgrid_floor.cpp)
//   doppel-bench-twin --primitive P   one primitive in this process, one JSON line
//
// Every figure is the median of --repeat runs (3 by default), by CPU seconds.
//
// A hop is a request delivered to a server (a service instance or a datastore node).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/model/topology_loader.hpp"
#include "doppel/twin/runtime.hpp"
#include "doppel/twin/twin.hpp"

#include "bare_s4u.hpp"
#include "simgrid_floor.hpp"

namespace {

using doppel::model::Topology;
using doppel::twin::EntryRecord;
using doppel::twin::Outcome;
using doppel::twin::TwinObserver;
using doppel::twin::TwinOptions;

// User + system CPU seconds of this process: on a shared machine, wall time measures the
// neighbours as much as the engine.
double cpu_s() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

double rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1e6;
}

// Counts without keeping records, so the figures are the engine's cost. With `digest`, it also
// keeps every record as a line, to compare two builds' outputs (--digest).
class CountingObserver : public TwinObserver {
 public:
  explicit CountingObserver(bool digest) : digest_(digest) {}
  void on_entry(const EntryRecord& e) override {
    ++entries;
    ok += e.outcome == Outcome::ok;
    intervals.emplace_back(e.start_s, e.end_s);
    if (digest_) {
      lines.push_back(fmt::format("entry {:x}{:x} {} {} {:.9f} {:.9f} {} {}", e.trace_id.high,
                                  e.trace_id.low, e.client, e.route, e.start_s, e.end_s, e.status,
                                  to_string(e.outcome)));
    }
  }
  void on_span(const doppel::twin::SpanRecord& s) override {
    ++spans;
    if (digest_) {
      lines.push_back(fmt::format(
          "span {:x}{:x} {} {} {} {} {} {} {} {} {:.9f} {:.9f} {:.9f} {} {}", s.trace_id.high,
          s.trace_id.low, s.span_id, s.parent_span_id, s.kind == doppel::twin::SpanKind::server,
          s.service, s.operation, s.peer, s.instance, s.host, s.start_s, s.end_s, s.queue_s,
          to_string(s.outcome), s.attempt));
    }
  }
  void on_event(const doppel::twin::TwinEvent& e) override {
    if (!digest_) return;
    auto line = fmt::format("event {:.9f} {} {}", e.time_s, e.kind, e.component);
    for (const auto& [key, value] : e.attributes) line += fmt::format(" {}={}", key, value);
    lines.push_back(std::move(line));
  }
  void on_snapshot(const doppel::twin::Snapshot&) override {
    peak_rss_mb = std::max(peak_rss_mb, rss_mb());
  }

  // Most entry requests in flight at once (a sweep over their intervals).
  std::size_t peak_in_flight() const {
    std::vector<std::pair<double, int>> edges;
    for (const auto& [start, end] : intervals) {
      edges.emplace_back(start, +1);
      edges.emplace_back(end, -1);
    }
    std::sort(edges.begin(), edges.end());
    long current = 0, peak = 0;
    for (const auto& e : edges) peak = std::max(peak, current += e.second);
    return static_cast<std::size_t>(peak);
  }

  // FNV-1a over the records sorted: equal for equal outputs, whatever order they came in.
  std::string digest() {
    std::sort(lines.begin(), lines.end());
    std::uint64_t hash = 1469598103934665603ULL;
    for (const auto& line : lines) {
      for (unsigned char c : line) hash = (hash ^ c) * 1099511628211ULL;
      hash = (hash ^ '\n') * 1099511628211ULL;
    }
    return fmt::format("{:016x}", hash);
  }

  std::uint64_t entries = 0, ok = 0, spans = 0;
  double peak_rss_mb = 0;
  std::vector<std::pair<double, double>> intervals;
  std::vector<std::string> lines;

 private:
  bool digest_ = false;
};

// Scales every client's rate so the workload starts at `rps` requests per second in total.
void set_total_rate(Topology& topology, double rps) {
  double base = 0;
  for (const auto& c : topology.workload.clients) base += c.rate.empty() ? 0 : c.rate.front().rps;
  if (base <= 0) return;
  for (auto& c : topology.workload.clients) {
    for (auto& p : c.rate) p.rps *= rps / base;
  }
}

// Provisions the topology for `factor` times its load: every service instance and datastore
// node gets `factor` times the workers, every host `factor` times the cores. Applied to the
// loaded topology, so the bundled file stays the one the targets refer to.
void provision(Topology& topology, int factor) {
  if (factor <= 1) return;
  for (auto& zone : topology.zones) {
    for (auto& host : zone.hosts) host.cores *= factor;
  }
  for (auto& service : topology.services) service.workers *= factor;
  for (auto& datastore : topology.datastores) datastore.workers *= factor;
}

int run_one(const std::string& file, const std::string& engine, const std::string& network,
            const std::string& requests, double rps, double duration, int provision_factor,
            bool digest, bool run_ahead, bool flow_shortcut, std::uint64_t seed) {
  auto topology = doppel::model::load_topology(file);
  set_total_rate(topology, rps);
  provision(topology, provision_factor);
  nlohmann::json out{{"engine", engine},
                     {"network", network},
                     {"rps", rps},
                     {"duration_s", duration},
                     {"provision", provision_factor}};
  const double cpu_before = cpu_s();
  if (engine == "bare") {
    const auto stats = doppel::bench::run_bare(topology, network == "flow", duration);
    out["hops"] = stats.hops;
    out["wall_s"] = stats.wall_s;
  } else {
    CountingObserver counter(digest);
    TwinObserver* observers[] = {&counter};
    TwinOptions options;
    options.duration_s = duration;
    options.network =
        network == "flow" ? TwinOptions::NetworkModel::flow : TwinOptions::NetworkModel::latency;
    options.requests =
        requests == "actors" ? TwinOptions::Requests::actors : TwinOptions::Requests::callbacks;
    out["requests"] = requests;
    options.run_ahead = run_ahead;
    out["run_ahead"] = run_ahead;
    options.flow_shortcut = flow_shortcut;
    options.seed = seed;
    if (options.network == TwinOptions::NetworkModel::flow) out["flow_shortcut"] = flow_shortcut;
    double start_rss = 0;
    options.on_start = [&](doppel::twin::TwinRuntime&) { start_rss = rss_mb(); };
    const auto stats = doppel::twin::run_twin(topology, options, observers);
    out["hops"] = stats.hops;
    out["wall_s"] = stats.wall_s;
    out["entries"] = stats.entries;
    out["spans"] = stats.spans;
    out["ok_share"] = stats.entries ? static_cast<double>(counter.ok) / stats.entries : 0.0;
    out["start_rss_mb"] = start_rss;
    out["peak_rss_mb"] = counter.peak_rss_mb;
    out["peak_in_flight"] = counter.peak_in_flight();
    out["simgrid_ops"] = {{"executions", stats.simgrid.executions},
                          {"actor_blocks", stats.simgrid.actor_blocks},
                          {"timed_blocks", stats.simgrid.timed_blocks},
                          {"timers", stats.simgrid.timers},
                          {"comms", stats.simgrid.comms},
                          {"computed_transfers", stats.simgrid.computed_transfers},
                          {"scheduled", stats.simgrid.scheduled},
                          {"instants_ahead", stats.simgrid.instants_ahead},
                          {"rounds", stats.simgrid.rounds}};
    if (digest) {
      out["digest"] = counter.digest();
      if (const char* path = std::getenv("DOPPEL_BENCH_RECORDS")) {
        std::ofstream records(path);
        for (const auto& line : counter.lines) records << line << '\n';
      }
    }
  }
  out["cpu_s"] = cpu_s() - cpu_before;  // loading the topology included: milliseconds
  out["hops_per_cpu_s"] = out["hops"].get<double>() / out["cpu_s"].get<double>();
  out["hops_per_s"] = out["hops"].get<double>() / out["wall_s"].get<double>();
  out["speedup"] = duration / out["wall_s"].get<double>();
  std::cout << out.dump() << std::endl;
  return 0;
}

nlohmann::json run_child(const std::string& self, const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    std::vector<char*> argv{const_cast<char*>(self.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(self.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("benchmark child failed: " + fmt::format("{}", fmt::join(args, " ")));
  }
  return nlohmann::json::parse(text);
}

// The run with the median CPU time of `repeat` runs: the machine is shared, so one run can be
// several times slower than the next.
nlohmann::json run_median(const std::string& self, const std::vector<std::string>& args,
                          int repeat) {
  std::vector<nlohmann::json> runs;
  for (int r = 0; r < repeat; ++r) runs.push_back(run_child(self, args));
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return a["cpu_s"].template get<double>() < b["cpu_s"].template get<double>();
  });
  return runs[runs.size() / 2];
}

int run_primitive(const std::string& name, std::uint64_t count) {
  const double cpu_before = cpu_s();
  const auto ops = doppel::bench::run_floor_primitive(name, count);
  const double cpu = cpu_s() - cpu_before;
  nlohmann::json out{{"primitive", name},
                     {"ops", ops},
                     {"cpu_s", cpu},
                     {"ops_per_cpu_s", static_cast<double>(ops) / cpu}};
  std::cout << out.dump() << std::endl;
  return 0;
}

int run_floor(const std::string& self, std::uint64_t count, int repeat) {
  std::cout << "| SimGrid 3.32 primitive | operations | CPU s | per CPU s | ns each |\n"
               "|---|---|---|---|---|\n";
  for (const auto& name : doppel::bench::floor_primitives()) {
    const auto r =
        run_median(self, {"--primitive", name, "--count", std::to_string(count)}, repeat);
    const double rate = r["ops_per_cpu_s"].get<double>();
    std::cout << fmt::format("| {} | {} | {:.2f} | {:.0f} | {:.0f} |\n", name,
                             r["ops"].get<std::uint64_t>(), r["cpu_s"].get<double>(), rate,
                             1e9 / rate);
    std::cout.flush();
  }
  return 0;
}

int run_matrix(const std::string& self, const std::string& file, int repeat) {
  struct Level {
    double rps;
    double duration;
    int provision;  // > 1: the extra rows, the topology provisioned for the rate (provision())
    // The bare baseline has no timeouts or rejections: at 5000 rps its queues grow without
    // bound, and past ~4 s its actors pass SimGrid's ~32k ceiling. Per hop it is comparable.
    double bare_duration;
  };
  // Long enough that the process's start (~0.03 CPU s: the dynamic loader, the topology) is
  // at most a few percent of a run.
  const std::vector<Level> levels{
      {200, 60, 1, 60}, {1000, 20, 1, 20}, {5000, 20, 1, 4}, {5000, 8, 5, 8}};
  std::cout << "| rps | network | sim s | hops | Doppel CPU s | hops per CPU s | sim s per CPU s "
               "| ok share | bare s4u hops per CPU s | Doppel / bare (CPU per hop) | peak RSS MB "
               "| peak entries in flight |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& level : levels) {
    for (const std::string network : {"latency", "flow"}) {
      const auto common = std::vector<std::string>{"--one",
                                                   "--topology",
                                                   file,
                                                   "--network",
                                                   network,
                                                   "--rps",
                                                   fmt::format("{}", level.rps),
                                                   "--duration",
                                                   fmt::format("{}", level.duration),
                                                   "--provision",
                                                   fmt::format("{}", level.provision)};
      auto doppel_args = common;
      doppel_args.insert(doppel_args.end(), {"--engine", "doppel"});
      auto bare_args = common;
      bare_args.insert(bare_args.end(), {"--engine", "bare"});
      bare_args[8] = fmt::format("{}", level.bare_duration);  // the value after --duration
      const auto d = run_median(self, doppel_args, repeat);
      const auto b = run_median(self, bare_args, repeat);
      const double per_hop_doppel = d["cpu_s"].get<double>() / d["hops"].get<double>();
      const double per_hop_bare = b["cpu_s"].get<double>() / b["hops"].get<double>();
      std::cout << fmt::format(
          "| {} | {} | {} | {} | {:.2f} | {:.0f} | {:.2f} | {:.3f} | {:.0f} | {:.2f} | {:.0f} | {} "
          "|\n",
          level.provision > 1 ? fmt::format("{} (provisioned x{})", level.rps, level.provision)
                              : fmt::format("{}", level.rps),
          network, level.duration, d["hops"].get<std::uint64_t>(), d["cpu_s"].get<double>(),
          d["hops_per_cpu_s"].get<double>(), level.duration / d["cpu_s"].get<double>(),
          d["ok_share"].get<double>(), b["hops_per_cpu_s"].get<double>(),
          per_hop_doppel / per_hop_bare, d["peak_rss_mb"].get<double>(),
          d["peak_in_flight"].get<std::size_t>());
      std::cout.flush();
    }
  }
  // Memory must not grow with simulated time at a steady load.
  std::cout
      << "\n| duration s (latency, 200 rps) | peak RSS MB | RSS at start MB |\n|---|---|---|\n";
  for (double duration : {10.0, 40.0, 160.0}) {
    const auto d = run_median(self,
                              {"--one", "--topology", file, "--network", "latency", "--rps", "200",
                               "--duration", fmt::format("{}", duration), "--engine", "doppel"},
                              repeat);
    std::cout << fmt::format("| {} | {:.1f} | {:.1f} |\n", duration, d["peak_rss_mb"].get<double>(),
                             d["start_rss_mb"].get<double>());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Benchmark of Doppel's simulation engine"};
  bool one = false;
  std::string file = std::string(DOPPEL_SOURCE_DIR) + "/topologies/online-boutique.json";
  std::string engine = "doppel";
  std::string network = "latency";
  double rps = 200;
  double duration = 10;
  app.add_flag("--one", one, "Run one simulation in this process and print a JSON line");
  app.add_option("--topology", file, "Topology file");
  app.add_option("--engine", engine, "doppel or bare (the bare-s4u baseline)")
      ->check(CLI::IsMember({"doppel", "bare"}));
  app.add_option("--network", network, "latency or flow")
      ->check(CLI::IsMember({"latency", "flow"}));
  std::string requests = "callbacks";
  app.add_option("--requests", requests,
                 "callbacks (the default) or actors: how the engine carries out calls")
      ->check(CLI::IsMember({"callbacks", "actors"}));
  app.add_option("--rps", rps, "Total request rate");
  app.add_option("--duration", duration, "Simulated seconds");
  int provision_factor = 1;
  app.add_option("--provision", provision_factor,
                 "With --one: give every instance this many times its workers and every host "
                 "this many times its cores (the bundled topology is sized for ~1000 rps)")
      ->check(CLI::PositiveNumber);
  bool digest = false;
  app.add_flag("--digest", digest,
               "With --one: also print a hash of every span, entry and event (sorted), to "
               "compare the outputs of two builds");
  bool no_run_ahead = false;
  app.add_flag("--no-run-ahead", no_run_ahead,
               "With --one: every instant of the engine's timeline a SimGrid round "
               "(TwinOptions::run_ahead = false), the reference clock");
  bool no_flow_shortcut = false;
  app.add_flag("--no-flow-shortcut", no_flow_shortcut,
               "With --one: every flow transfer a SimGrid comm, also those alone on their "
               "links (TwinOptions::flow_shortcut = false), the reference");
  std::uint64_t seed = 1;
  app.add_option("--seed", seed, "With --one: the run's seed (TwinOptions::seed)");
  bool floor = false;
  std::string primitive;
  std::uint64_t count = 1000000;
  int repeat = 3;
  app.add_flag("--floor", floor, "Measure SimGrid's primitives, one child process each");
  app.add_option("--primitive", primitive, "Run one SimGrid primitive in this process")
      ->check(CLI::IsMember(doppel::bench::floor_primitives()));
  app.add_option("--count", count, "Operations per primitive");
  app.add_option("--repeat", repeat, "Runs per figure (the median is shown)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    if (one)
      return run_one(file, engine, network, requests, rps, duration, provision_factor, digest,
                     !no_run_ahead, !no_flow_shortcut, seed);
    if (!primitive.empty()) return run_primitive(primitive, count);
    char self[4096] = {};
    const auto n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) throw std::runtime_error("cannot find my own executable");
    const std::string executable(self, static_cast<std::size_t>(n));
    if (floor) return run_floor(executable, count, repeat);
    return run_matrix(executable, file, repeat);
  } catch (const std::exception& e) {
    std::cerr << "doppel-bench-twin: " << e.what() << "\n";
    return 1;
  }
}
