// The flow network's shortcut (TwinOptions::flow_shortcut, src/twin/flow_transfers.hpp): a
// transfer alone on its links is computed, one that shares a link goes to SimGrid with those
// it shares with. Each TEST runs tests/data/twin/hooks.json twice, each run in a process of
// its own, with the shortcut and without it (every transfer a SimGrid comm), and compares
// every span: the shortcut must change how fast the run goes, not what it records.
#include <cmath>
#include <functional>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "doppel/twin/runtime.hpp"

#include "twin/sim_harness.hpp"

namespace doppel::twin {
namespace {

using testing::Metrics;

struct FlowScenario {
  double rate_scale = 1.0;                      // of the fixture's client rates
  std::function<void(model::Topology&)> adapt;  // before the run
  std::function<void(TwinRuntime&)> on_start;   // hooks, as faults use them
};

// Every span's start and end by span id, and how the transfers went.
Metrics run_flow(const FlowScenario& scenario, bool shortcut) {
  return testing::run_isolated([&] {
    auto topology = testing::load_fixture("hooks.json");
    for (auto& client : topology.workload.clients) {
      for (auto& point : client.rate) point.rps *= scenario.rate_scale;
    }
    if (scenario.adapt) scenario.adapt(topology);
    testing::Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.seed = 5;
    options.network = TwinOptions::NetworkModel::flow;
    options.flow_shortcut = shortcut;
    options.on_start = scenario.on_start;
    const auto stats = run_twin(topology, options, observers);
    Metrics m;
    m["comms"] = static_cast<double>(stats.simgrid.comms);
    m["computed"] = static_cast<double>(stats.simgrid.computed_transfers);
    m["spans"] = static_cast<double>(recorder.spans.size());
    for (const auto& s : recorder.spans) {
      m[fmt::format("span {} start", s.span_id)] = s.start_s;
      m[fmt::format("span {} end", s.span_id)] = s.end_s;
      m[fmt::format("span {} outcome", s.span_id)] = static_cast<double>(s.outcome);
    }
    return m;
  });
}

// The two runs recorded the same spans, at the same times to `tolerance_s`; returns how many
// transfers the shortcut computed and how many it left to SimGrid. (A transfer moved into
// SimGrid midway differs by SimGrid's 1e-9 latency factor and the rounding of its remaining
// bytes: a few 1e-9 s that can add up along a request.)
std::pair<double, double> expect_same_spans(const FlowScenario& scenario, double tolerance_s) {
  const Metrics with = run_flow(scenario, true);
  const Metrics without = run_flow(scenario, false);
  EXPECT_EQ(without.at("computed"), 0.0);
  EXPECT_GT(without.at("comms"), 0.0);
  EXPECT_GT(with.at("spans"), 100.0);
  EXPECT_EQ(with.size(), without.size());
  double worst = 0.0;
  std::string worst_key;
  for (const auto& [key, value] : without) {
    if (!key.starts_with("span ")) continue;
    const auto it = with.find(key);
    if (it == with.end()) {
      ADD_FAILURE() << "only without the shortcut: " << key;
      continue;
    }
    if (std::abs(it->second - value) > worst) {
      worst = std::abs(it->second - value);
      worst_key = key;
    }
  }
  EXPECT_LE(worst, tolerance_s) << worst_key;
  return {with.at("computed"), with.at("comms")};
}

TEST(FlowShortcut, TransfersAloneOnTheirLinksTakeWhatSimGridGivesThem) {
  // 4 requests/s, 1 MB from front to back across a 20 ms zone link: the TCP window bounds
  // that transfer (4 MiB / 40 ms, below the link's 1 Gb/s), the NICs bound the others.
  FlowScenario scenario;
  scenario.rate_scale = 4.0 / 250.0;
  scenario.adapt = [](model::Topology& t) {
    t.default_zone_link.latency_us = 20000;
    for (auto& op : t.services[0].operations) op.steps[0].calls[0].request_bytes = 1'000'000;
  };
  const auto [computed, comms] = expect_same_spans(scenario, 1e-7);
  EXPECT_GT(computed, 50.0);
  EXPECT_LT(comms, computed / 10);
}

TEST(FlowShortcut, TransfersThatShareALinkAreSharedBySimGridFromThatMomentOn) {
  // 250 requests/s with 200 kB from front to back (1.6 ms on the 1 Gb/s zone link): many
  // overlap, so computed transfers are moved into SimGrid midway when another one starts.
  FlowScenario scenario;
  scenario.adapt = [](model::Topology& t) {
    for (auto& op : t.services[0].operations) op.steps[0].calls[0].request_bytes = 200'000;
  };
  const auto [computed, comms] = expect_same_spans(scenario, 1e-7);
  EXPECT_GT(computed, 100.0);
  EXPECT_GT(comms, 100.0);
}

TEST(FlowShortcut, ALinkChangeMovesComputedTransfersIntoSimGridFirst) {
  // 20 MB transfers (0.16 s each) at 5 requests/s, while the zones' link switches between
  // 500 Mb/s and 1 Gb/s every 0.25 s: many a change finds a computed transfer in flight.
  FlowScenario scenario;
  scenario.rate_scale = 5.0 / 250.0;
  scenario.adapt = [](model::Topology& t) {
    for (auto& op : t.services[0].operations) op.steps[0].calls[0].request_bytes = 20'000'000;
  };
  scenario.on_start = [](TwinRuntime& rt) {
    for (int k = 0; k < 20; ++k) {
      const double mbps = k % 2 == 0 ? 500.0 : 1000.0;
      rt.at(0.5 + 0.25 * k, [mbps](TwinRuntime& r) { r.set_zone_bandwidth("a", "b", mbps); });
    }
  };
  const auto [computed, comms] = expect_same_spans(scenario, 1e-7);
  EXPECT_GT(computed, 10.0);
  EXPECT_GT(comms, 10.0);
}

}  // namespace
}  // namespace doppel::twin
