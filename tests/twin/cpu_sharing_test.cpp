// The engine's own processor sharing of a host's cores (src/twin/host_cpu.hpp) against what
// it replaces: SimGrid's executions, request by request, and queueing theory.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "twin/sim_harness.hpp"

namespace doppel::twin {
namespace {

using testing::Metrics;
using testing::Recorder;
using testing::run_isolated;

// The M/M/4 fixture with `workers` workers on its 4 cores: more than 4 share the cores.
Metrics run_shared_cores(TwinOptions::CpuModel cpu, int workers, double rate, double duration_s,
                         bool per_span) {
  return run_isolated([=] {
    auto topology = testing::load_fixture("mmc.json");
    topology.services.at(0).workers = workers;
    topology.workload.clients.at(0).rate.at(0).rps = rate;
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.seed = 11;
    options.duration_s = duration_s;
    options.cpu_model = cpu;
    const auto stats = run_twin(topology, options, observers);
    Metrics out;
    out["executions"] = static_cast<double>(stats.simgrid.executions);
    const double warmup = 20.0;
    double latency_sum = 0;
    int n = 0;
    for (const auto& e : recorder.entries) {
      if (e.start_s < warmup) continue;
      latency_sum += e.end_s - e.start_s;
      ++n;
    }
    out["entries"] = static_cast<double>(recorder.entries.size());
    out["mean_latency_s"] = n > 0 ? latency_sum / n : 0.0;
    int server_spans = 0;
    int max_concurrent = 0;
    for (const auto& s : recorder.snapshots) {
      max_concurrent = std::max(max_concurrent, s.instances.at(0).busy_workers);
    }
    out["max_busy_workers"] = max_concurrent;
    for (const auto& s : recorder.spans) {
      if (s.kind != SpanKind::server) continue;
      ++server_spans;
      if (per_span) out["end." + std::to_string(s.span_id)] = s.end_s;
    }
    out["server_spans"] = server_spans;
    return out;
  });
}

TEST(TwinCpuSharing, MatchesSimGridExecutionsRequestByRequest) {
  // 16 workers on 4 cores at 90% load: up to 16 requests share the cores at once.
  const auto ours = run_shared_cores(TwinOptions::CpuModel::processor_sharing, 16, 360, 25.0, true);
  const auto simgrid =
      run_shared_cores(TwinOptions::CpuModel::simgrid_executions, 16, 360, 25.0, true);
  EXPECT_EQ(ours.at("executions"), 0);
  EXPECT_GT(simgrid.at("executions"), 5000);
  EXPECT_GT(ours.at("max_busy_workers"), 8) << "the cores were never shared: no test";
  ASSERT_EQ(ours.at("server_spans"), simgrid.at("server_spans"));
  int compared = 0;
  double worst = 0;
  for (const auto& [key, value] : ours) {
    if (key.rfind("end.", 0) != 0) continue;
    ASSERT_TRUE(simgrid.contains(key)) << key << " ends in one model only";
    worst = std::max(worst, std::abs(value - simgrid.at(key)));
    ++compared;
  }
  EXPECT_EQ(compared, ours.at("server_spans"));
  RecordProperty("worst_end_difference_s", std::to_string(worst));
  // SimGrid rounds its clock to 1e-9 s steps of work; the end times agree far below the
  // microseconds a trace shows.
  EXPECT_LT(worst, 1e-6) << "worst difference in a span's end, s";
}

// Exponential work shared by any number of workers on c cores (each of n jobs at min(1, c/n)
// of a core) is the birth-death process of M/M/c: the same mean response time, Erlang C.
TEST(TwinCpuSharing, SharedCoresGiveTheMMcResponseTime) {
  const auto m = run_shared_cores(TwinOptions::CpuModel::processor_sharing, 64, 280, 300.0, false);
  const double c = 4, lambda = 280, mu = 100, a = lambda / mu;
  double sum = 0, term = 1;
  for (int k = 0; k < 4; ++k) {
    sum += term;
    term *= a / (k + 1);
  }
  const double top = term * c / (c - a);
  const double expected = 1.0 / mu + top / (sum + top) / (c * mu - lambda);  // ~18.2 ms
  EXPECT_GT(m.at("max_busy_workers"), 4);
  EXPECT_NEAR(m.at("mean_latency_s"), expected, expected * 0.05);
}

}  // namespace
}  // namespace doppel::twin
