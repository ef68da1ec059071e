// Requests carried out by kernel callbacks (TwinOptions::Requests::callbacks, the default)
// against the actor per caller they replace: the same records, whatever order events of the
// same instant run in.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "doppel/model/topology_loader.hpp"
#include "doppel/twin/runtime.hpp"

#include "twin/sim_harness.hpp"

namespace doppel::twin {
namespace {

using testing::Metrics;
using testing::Recorder;
using testing::run_isolated;

// FNV-1a over the sorted record lines: a run's records without their order and span ids
// (ids are handed out in the order spans start, which differs between the paths at ties).
std::uint64_t hash_lines(std::vector<std::string>& lines) {
  std::sort(lines.begin(), lines.end());
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto& line : lines) {
    for (unsigned char c : line) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= '\n';
    h *= 1099511628211ULL;
  }
  return h;
}

struct Scenario {
  std::string topology;  // under the source tree
  double rate_factor = 1.0;
  double duration_s = 5.0;
  bool faults = false;  // a crash, a slow service and a partition while it runs
  TwinOptions::NetworkModel network = TwinOptions::NetworkModel::latency;
};

Metrics run_paths_case(const Scenario& scenario, TwinOptions::Requests requests,
                       bool run_ahead = true) {
  return run_isolated([=] {
    auto topology = scenario.topology.find('/') == std::string::npos
                        ? testing::load_fixture(scenario.topology)
                        : model::load_topology(testing::source_path(scenario.topology));
    for (auto& client : topology.workload.clients) {
      for (auto& piece : client.rate) piece.rps *= scenario.rate_factor;
    }
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.seed = 5;
    options.duration_s = scenario.duration_s;
    options.requests = requests;
    options.network = scenario.network;
    options.run_ahead = run_ahead;
    if (scenario.faults) {
      options.on_start = [&topology](TwinRuntime& runtime) {
        const auto& first = topology.services.front().name;
        const auto& last = topology.services.back().name;
        runtime.at(1.0, [first](TwinRuntime& r) { r.set_extra_latency(first, 40.0); });
        runtime.at(1.5, [last](TwinRuntime& r) { r.set_instance_up(last, 0, false); });
        runtime.at(2.5, [last](TwinRuntime& r) { r.set_instance_up(last, 0, true); });
        runtime.at(3.0, [first, last](TwinRuntime& r) { r.add_partition({first}, {last}, true); });
      };
    }
    const auto stats = run_twin(topology, options, observers);
    std::vector<std::string> spans;
    for (const auto& s : recorder.spans) {
      spans.push_back(fmt::format("{:x}{:x} {} {} {} {} {} {} {:.9f} {:.9f} {:.9f} {} {} {}",
                                  s.trace_id.high, s.trace_id.low, static_cast<int>(s.kind),
                                  s.service, s.operation, s.peer, s.instance, s.host, s.start_s,
                                  s.end_s, s.queue_s, static_cast<int>(s.outcome), s.attempt,
                                  s.parent_span_id == 0));
    }
    std::vector<std::string> entries;
    for (const auto& e : recorder.entries) {
      entries.push_back(fmt::format("{:x}{:x} {} {} {:.9f} {:.9f} {}", e.trace_id.high,
                                    e.trace_id.low, e.client, e.route, e.start_s, e.end_s,
                                    e.status));
    }
    std::vector<std::string> events;
    for (const auto& e : recorder.events) {
      std::string line = fmt::format("{:.9f} {} {}", e.time_s, e.kind, e.component);
      for (const auto& [k, v] : e.attributes) line += fmt::format(" {}={}", k, v);
      events.push_back(line);
    }
    Metrics out;
    // Actor blocks that do not depend on the traffic: each worker's first wait, the sampler's.
    double workers = 0;
    for (const auto& service : topology.services) {
      workers += std::max(1, service.replicas) * std::max(1, service.workers);
    }
    for (const auto& store : topology.datastores) {
      workers += static_cast<double>(1 + store.replicas.size()) * std::max(1, store.workers);
    }
    out["fixed_blocks"] = workers + static_cast<double>(recorder.snapshots.size()) + 1;
    double latency_sum = 0;
    for (const auto& e : recorder.entries) latency_sum += e.end_s - e.start_s;
    out["mean_entry_latency_s"] =
        recorder.entries.empty() ? 0.0 : latency_sum / static_cast<double>(recorder.entries.size());
    out["spans"] = static_cast<double>(spans.size());
    out["entries"] = static_cast<double>(entries.size());
    out["events"] = static_cast<double>(events.size());
    out["hops"] = static_cast<double>(stats.hops);
    out["actor_blocks"] = static_cast<double>(stats.simgrid.actor_blocks);
    out["rounds"] = static_cast<double>(stats.simgrid.rounds);
    int failed = 0;
    for (const auto& e : recorder.entries) failed += e.outcome != Outcome::ok;
    out["failed_entries"] = failed;
    // Hashes as two exact halves: a double holds 53 bits.
    const std::uint64_t hashes[] = {hash_lines(spans), hash_lines(entries), hash_lines(events)};
    const char* names[] = {"spans_hash", "entries_hash", "events_hash"};
    for (int i = 0; i < 3; ++i) {
      out[std::string(names[i]) + "_hi"] = static_cast<double>(hashes[i] >> 32);
      out[std::string(names[i]) + "_lo"] = static_cast<double>(hashes[i] & 0xffffffffULL);
    }
    return out;
  });
}

// `exact`: the same records; otherwise only the same counts and the same mean latency within
// 1%, for topologies where calls of one parallel group reach a server at the same instant:
// the actor path starts the group's first call in the caller's actor and the others in runner
// actors, whose order at that instant depends on which runners were idle; the callback path
// starts them in the plan's order. The server then draws CPU times for them in another order.
void expect_same_records(const Scenario& scenario, bool exact = true) {
  SCOPED_TRACE(scenario.topology);
  const auto callbacks = run_paths_case(scenario, TwinOptions::Requests::callbacks);
  const auto actors = run_paths_case(scenario, TwinOptions::Requests::actors);
  EXPECT_GT(callbacks.at("entries"), 20) << "too short a run to compare";
  // The point of the callback path: no actor is woken per call.
  EXPECT_LE(callbacks.at("actor_blocks"), callbacks.at("fixed_blocks"));
  EXPECT_GT(actors.at("actor_blocks"), actors.at("fixed_blocks") + actors.at("hops") / 2);
  for (const char* key : {"spans", "entries", "events", "hops", "failed_entries"}) {
    EXPECT_EQ(callbacks.at(key), actors.at(key)) << key;
  }
  const double latency = actors.at("mean_entry_latency_s");
  EXPECT_NEAR(callbacks.at("mean_entry_latency_s"), latency, latency * 0.01);
  if (!exact) return;
  for (const char* key : {"spans_hash", "entries_hash", "events_hash"}) {
    const std::string k = key;
    EXPECT_TRUE(callbacks.at(k + "_hi") == actors.at(k + "_hi") &&
                callbacks.at(k + "_lo") == actors.at(k + "_lo"))
        << key << " differ";
  }
}

TEST(TwinRequestPaths, OnlineBoutiqueGivesTheSameRecords) {
  expect_same_records({"topologies/online-boutique.json", 1.0, 5.0, false});
}

TEST(TwinRequestPaths, OverloadedOnlineBoutiqueGivesTheSameRecords) {
  // Rejections, timeouts and retries in front of the single-worker services.
  expect_same_records({"topologies/online-boutique.json", 5.0, 3.0, false});
}

TEST(TwinRequestPaths, HotRodAndSockShopGiveTheSameStatistics) {
  expect_same_records({"topologies/hotrod.json", 30.0, 8.0, false}, false);
  expect_same_records({"topologies/sock-shop.json", 1.0, 5.0, false}, false);
}

TEST(TwinRequestPaths, PoolsRetriesBreakersAndStoresGiveTheSameRecords) {
  for (const char* fixture : {"pool.json", "retry.json", "breaker.json", "stale.json"}) {
    expect_same_records({fixture, 1.0, 10.0, false});
  }
}

TEST(TwinRequestPaths, FaultsGiveTheSameRecords) {
  expect_same_records({"topologies/online-boutique.json", 1.0, 5.0, true});
}

// The flow network: SimGrid comms whose ends are reported by SimGrid's network signal
// instead of an actor's Comm::wait.
constexpr auto kFlow = TwinOptions::NetworkModel::flow;

TEST(TwinRequestPaths, FlowNetworkGivesTheSameRecords) {
  expect_same_records({"topologies/online-boutique.json", 1.0, 5.0, false, kFlow});
  expect_same_records({"topologies/online-boutique.json", 5.0, 3.0, false, kFlow});
  expect_same_records({"topologies/online-boutique.json", 1.0, 5.0, true, kFlow});
}

TEST(TwinRequestPaths, FlowNetworkPoolsRetriesBreakersAndStoresGiveTheSameRecords) {
  for (const char* fixture : {"pool.json", "retry.json", "breaker.json", "stale.json"}) {
    expect_same_records({fixture, 1.0, 10.0, false, kFlow});
  }
}

}  // namespace
}  // namespace doppel::twin

namespace doppel::twin {
namespace {

// The same records running ahead of SimGrid's clock as with one SimGrid round per instant;
// returns both runs' SimGrid rounds (ahead, per instant).
std::pair<double, double> expect_same_records_ahead(const Scenario& scenario) {
  const auto ahead = run_paths_case(scenario, TwinOptions::Requests::callbacks, true);
  const auto rounds = run_paths_case(scenario, TwinOptions::Requests::callbacks, false);
  EXPECT_GT(ahead.at("entries"), 20) << "too short a run to compare";
  for (const char* key : {"spans", "entries", "events", "hops", "failed_entries"}) {
    EXPECT_EQ(ahead.at(key), rounds.at(key)) << key;
  }
  for (const char* key : {"spans_hash", "entries_hash", "events_hash"}) {
    const std::string k = key;
    EXPECT_TRUE(ahead.at(k + "_hi") == rounds.at(k + "_hi") &&
                ahead.at(k + "_lo") == rounds.at(k + "_lo"))
        << key << " differ";
  }
  // Without running ahead, every distinct instant costs SimGrid a round: more than one per hop.
  EXPECT_GT(rounds.at("rounds"), rounds.at("hops"));
  return {ahead.at("rounds"), rounds.at("rounds")};
}

// The timeline running ahead of SimGrid's clock (TwinOptions::run_ahead, the default with the
// latency network) against one SimGrid scheduling round per instant: the same records, with
// faults and in overload, for a small share of the rounds.
TEST(TwinTimeline, RunningAheadOfSimGridsClockChangesNoRecord) {
  for (const Scenario& scenario : {Scenario{"topologies/online-boutique.json", 1.0, 5.0, true},
                                   Scenario{"topologies/online-boutique.json", 5.0, 3.0, false}}) {
    const auto [ahead, rounds] = expect_same_records_ahead(scenario);
    EXPECT_LT(ahead, rounds / 100);
  }
}

// With the flow network the timeline runs ahead while no SimGrid comm is in flight
// (FlowTransfers): a transfer that must become a comm then waits, at its instant, for
// SimGrid's clock. The same records, with faults and in overload, in fewer rounds.
TEST(TwinTimeline, RunningAheadWithTheFlowNetworkChangesNoRecord) {
  for (const Scenario& scenario :
       {Scenario{"topologies/online-boutique.json", 1.0, 5.0, true, kFlow},
        Scenario{"topologies/online-boutique.json", 5.0, 3.0, false, kFlow}}) {
    const auto [ahead, rounds] = expect_same_records_ahead(scenario);
    EXPECT_LT(ahead, rounds * 0.8);
  }
}

}  // namespace
}  // namespace doppel::twin
