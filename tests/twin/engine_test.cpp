// End-to-end runs of the engine on fixtures: each simulation in its own process.
#include <algorithm>
#include <array>
#include <set>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"

#include "twin/sim_harness.hpp"

namespace doppel::twin {
namespace {

using testing::Metrics;
using testing::Recorder;
using testing::run_isolated;

Metrics run_chain(TwinOptions::NetworkModel network, std::uint64_t seed) {
  return run_isolated([=] {
    const auto topology = testing::load_fixture("chain.json");
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.seed = seed;
    options.network = network;
    const auto stats = run_twin(topology, options, observers);

    Metrics m;
    m["stats.entries"] = static_cast<double>(stats.entries);
    m["stats.spans"] = static_cast<double>(stats.spans);
    m["stats.hops"] = static_cast<double>(stats.hops);
    m["stats.simulated_s"] = stats.simulated_s;
    m["entries"] = static_cast<double>(recorder.entries.size());
    m["spans"] = static_cast<double>(recorder.spans.size());
    m["snapshots"] = static_cast<double>(recorder.snapshots.size());
    m["end_time"] = recorder.end_time;
    m["fingerprint_hi"] = static_cast<double>(testing::fingerprint(recorder) >> 32);
    m["fingerprint_lo"] = static_cast<double>(testing::fingerprint(recorder) & 0xffffffffu);

    double last = 0;
    bool ordered = true;
    std::set<std::uint64_t> span_ids;
    std::set<std::string_view> services;
    int bad_intervals = 0;
    int server_spans = 0;
    for (const auto& s : recorder.spans) {
      ordered = ordered && s.end_s >= last;
      last = s.end_s;
      span_ids.insert(s.span_id);
      if (s.end_s < s.start_s || s.queue_s < 0 || s.queue_s > s.end_s - s.start_s + 1e-12) {
        ++bad_intervals;
      }
      if (s.kind == SpanKind::server) {
        services.insert(s.service);
        ++server_spans;
      }
    }
    m["spans_ordered"] = ordered;
    m["unique_span_ids"] = static_cast<double>(span_ids.size());
    m["bad_intervals"] = bad_intervals;
    m["server_spans"] = server_spans;
    for (auto name : {"gateway", "frontend", "catalog", "cart", "products", "carts-db"}) {
      m[std::string("has_server_span.") + name] = services.count(name);
    }
    int ok = 0, not_found = 0, checkout = 0, home = 0;
    double latency_sum = 0;
    for (const auto& e : recorder.entries) {
      ok += e.status == 200;
      not_found += e.status == 404;
      checkout += e.route == "checkout";
      home += e.route == "home";
      if (e.status == 200) latency_sum += e.end_s - e.start_s;
    }
    m["entries.ok"] = ok;
    m["entries.not_found"] = not_found;
    m["entries.checkout"] = checkout;
    m["entries.home"] = home;
    m["entries.mean_ok_latency_s"] = ok ? latency_sum / ok : 0;
    const auto& final_snapshot = recorder.snapshots.back();
    m["final.time"] = final_snapshot.time_s;
    m["final.instances"] = static_cast<double>(final_snapshot.instances.size());
    m["final.hosts"] = static_cast<double>(final_snapshot.hosts.size());
    m["final.datastore_nodes"] = static_cast<double>(final_snapshot.datastores.size());
    m["final.pools"] = static_cast<double>(final_snapshot.pools.size());
    double cpu = 0, busy = 0;
    for (const auto& i : final_snapshot.instances) cpu += i.cpu_seconds_total;
    for (const auto& h : final_snapshot.hosts) busy += h.busy_core_seconds_total;
    m["final.cpu_s"] = cpu;
    m["final.busy_core_s"] = busy;
    std::uint64_t writes = 0, reads = 0;
    for (const auto& d : final_snapshot.datastores) {
      writes += d.writes_total;
      reads += d.reads_total;
    }
    m["final.writes"] = static_cast<double>(writes);
    m["final.reads"] = static_cast<double>(reads);
    return m;
  });
}

void expect_sane_chain_run(const Metrics& m) {
  // 100 rps for 5 s then 200 rps for 5 s: 1500 arrivals expected (sd ~ 39).
  EXPECT_NEAR(m.at("entries"), 1500, 200);
  EXPECT_EQ(m.at("entries"), m.at("stats.entries"));
  EXPECT_EQ(m.at("spans"), m.at("stats.spans"));
  EXPECT_EQ(m.at("unique_span_ids"), m.at("spans"));
  EXPECT_EQ(m.at("spans_ordered"), 1);
  EXPECT_EQ(m.at("bad_intervals"), 0);
  for (auto name : {"gateway", "frontend", "catalog", "cart", "products", "carts-db"}) {
    EXPECT_EQ(m.at(std::string("has_server_span.") + name), 1) << name;
  }
  // DELETE /cart matches no route and there is no default: 404 for ~1/6.2 of the entries.
  EXPECT_NEAR(m.at("entries.not_found") / m.at("entries"), 0.2 / 5.2, 0.02);
  EXPECT_GT(m.at("entries.checkout"), 0);
  EXPECT_GT(m.at("entries.home"), 3 * m.at("entries.checkout"));
  // Lightly loaded: nearly all of the routed requests succeed (checkout has a 1% error rate).
  const double routed = m.at("entries") - m.at("entries.not_found");
  EXPECT_GT(m.at("entries.ok") / routed, 0.98);
  // A home request crosses zones twice (0.5 ms each way) and does ~6 ms of work in series.
  EXPECT_GT(m.at("entries.mean_ok_latency_s"), 0.002);
  EXPECT_LT(m.at("entries.mean_ok_latency_s"), 0.05);
  EXPECT_EQ(m.at("end_time"), 10.0);
  EXPECT_EQ(m.at("snapshots"), 10);
  EXPECT_EQ(m.at("final.time"), 10.0);
  EXPECT_EQ(m.at("final.instances"), 6);
  EXPECT_EQ(m.at("final.hosts"), 3);
  EXPECT_EQ(m.at("final.datastore_nodes"), 3);
  EXPECT_EQ(m.at("final.pools"), 1);
  EXPECT_GT(m.at("final.cpu_s"), 1.0);
  // c2 runs at speed 2: busy core-seconds are below reference CPU seconds.
  EXPECT_LT(m.at("final.busy_core_s"), m.at("final.cpu_s"));
  EXPECT_GT(m.at("final.writes"), 0);
  EXPECT_GT(m.at("final.reads"), m.at("final.writes"));
  EXPECT_GT(m.at("stats.hops"), 4 * m.at("entries.home") * 0.9);
}

TEST(TwinEngine, ChainRunsEndToEndWithLatencyNetwork) {
  expect_sane_chain_run(run_chain(TwinOptions::NetworkModel::latency, 1));
}

TEST(TwinEngine, ChainRunsEndToEndWithFlowNetwork) {
  expect_sane_chain_run(run_chain(TwinOptions::NetworkModel::flow, 1));
}

TEST(TwinEngine, SameSeedGivesIdenticalRecordsAcrossProcesses) {
  for (auto network : {TwinOptions::NetworkModel::latency, TwinOptions::NetworkModel::flow}) {
    const auto a = run_chain(network, 7);
    const auto b = run_chain(network, 7);
    const auto c = run_chain(network, 8);
    EXPECT_EQ(a.at("fingerprint_hi"), b.at("fingerprint_hi"));
    EXPECT_EQ(a.at("fingerprint_lo"), b.at("fingerprint_lo"));
    EXPECT_EQ(a.at("spans"), b.at("spans"));
    EXPECT_NE(a.at("fingerprint_lo"), c.at("fingerprint_lo"));
  }
}

TEST(TwinEngine, SecondRunInOneProcessIsRefused) {
  const auto m = run_isolated([] {
    const auto topology = testing::load_fixture("chain.json");
    TwinOptions options;
    options.duration_s = 0.5;
    run_twin(topology, options, {});
    Metrics result;
    try {
      run_twin(topology, options, {});
      result["refused"] = 0;
    } catch (const std::logic_error&) {
      result["refused"] = 1;
    }
    return result;
  });
  EXPECT_EQ(m.at("refused"), 1);
}

}  // namespace
}  // namespace doppel::twin

namespace doppel::twin {
namespace {

TEST(TwinEngine, TooManyWorkersIsAnInputErrorNotACrash) {
  const auto m = testing::run_isolated([] {
    auto topology = testing::load_fixture("chain.json");
    topology.services.at(0).workers = 20000;  // two replicas: 40k actors
    testing::Metrics result{{"input_error", 0}};
    try {
      run_twin(topology, TwinOptions{}, {});
    } catch (const InputError& e) {
      result["input_error"] = std::string(e.what()).find("/services") != std::string::npos;
    }
    return result;
  });
  EXPECT_EQ(m.at("input_error"), 1);
}

}  // namespace
}  // namespace doppel::twin
