// The engine against theory and against the behaviours it exists to show: queueing (Erlang C
// and Little's law), stale reads, pool exhaustion, breakers, retries after timeouts, routing.
// Each simulation runs in its own process (sim_harness.hpp).
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "doppel/model/topology_loader.hpp"
#include "doppel/twin/runtime.hpp"

#include "twin/sim_harness.hpp"

namespace doppel::twin {
namespace {

using testing::Metrics;
using testing::Recorder;
using testing::run_isolated;

// Mean response time of an M/M/c queue (Erlang C).
double erlang_c_response_time(int c, double lambda, double mu) {
  const double a = lambda / mu;
  double sum = 0;
  double term = 1;  // a^k / k!
  for (int k = 0; k < c; ++k) {
    sum += term;
    term *= a / (k + 1);
  }
  const double top = term * c / (c - a);  // a^c / c! * c / (c - a)
  const double wait_probability = top / (sum + top);
  return 1.0 / mu + wait_probability / (c * mu - lambda);
}

TEST(TwinQueueing, MMcMatchesErlangCAndLittlesLaw) {
  const auto m = run_isolated([] {
    const auto topology = testing::load_fixture("mmc.json");
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.seed = 3;
    options.snapshot_interval_s = 0.05;
    run_twin(topology, options, observers);
    Metrics out;
    const double warmup = 20.0;
    double latency_sum = 0;
    int n = 0;
    for (const auto& e : recorder.entries) {
      if (e.start_s < warmup) continue;
      latency_sum += e.end_s - e.start_s;
      ++n;
    }
    const double horizon = recorder.end_time - warmup;
    out["n"] = n;
    out["mean_latency_s"] = latency_sum / n;
    out["throughput"] = n / horizon;
    double in_system = 0;
    int samples = 0;
    double busy_start = -1, busy_end = 0;
    for (const auto& s : recorder.snapshots) {
      if (s.time_s < warmup) continue;
      in_system += s.instances.at(0).busy_workers + s.instances.at(0).queued;
      ++samples;
      if (busy_start < 0) busy_start = s.hosts.at(0).busy_core_seconds_total;
      busy_end = s.hosts.at(0).busy_core_seconds_total;
    }
    out["mean_in_system"] = in_system / samples;
    out["utilisation"] = (busy_end - busy_start) / (4 * (recorder.end_time - warmup - 0.05));
    return out;
  });
  const double expected_w = erlang_c_response_time(4, 280.0, 100.0);  // ~18.2 ms
  EXPECT_NEAR(m.at("throughput"), 280.0, 280.0 * 0.02);
  EXPECT_NEAR(m.at("mean_latency_s"), expected_w, expected_w * 0.04)
      << "Erlang C predicts " << expected_w;
  EXPECT_NEAR(m.at("utilisation"), 0.7, 0.7 * 0.03);
  // Little's law: time-average number in the system = arrival rate x mean time in it.
  const double little = m.at("throughput") * m.at("mean_latency_s");
  EXPECT_NEAR(m.at("mean_in_system"), little, little * 0.04);
}

struct StaleRun {
  double reads = 0, stale = 0, max_lag_ms = 0;
};

StaleRun run_stale(const std::function<void(model::Topology&)>& change) {
  const auto m = run_isolated([&] {
    auto topology = testing::load_fixture("stale.json");
    change(topology);
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    run_twin(topology, TwinOptions{}, observers);
    Metrics out;
    double reads = 0, stale = 0, max_lag = 0;
    for (const auto& d : recorder.snapshots.back().datastores) {
      reads += static_cast<double>(d.reads_total);
      stale += static_cast<double>(d.stale_reads_total);
    }
    for (const auto& s : recorder.snapshots) {
      for (const auto& d : s.datastores) max_lag = std::max(max_lag, d.replication_lag_ms);
    }
    out["reads"] = reads;
    out["stale"] = stale;
    out["max_lag_ms"] = max_lag;
    return out;
  });
  return {m.at("reads"), m.at("stale"), m.at("max_lag_ms")};
}

TEST(TwinDatastores, StaleReadsAppearWithReplicationLagAndNotWithout) {
  const auto lagging = run_stale([](model::Topology&) {});
  ASSERT_GT(lagging.reads, 1500);
  // A key is rewritten every 0.1 s on average; reads within 50 ms of a write are stale:
  // 1 - exp(-0.5) ~ 39% of reads.
  EXPECT_NEAR(lagging.stale / lagging.reads, 0.39, 0.06);
  EXPECT_GT(lagging.max_lag_ms, 40.0);
  EXPECT_LT(lagging.max_lag_ms, 60.0);

  const auto immediate = run_stale([](model::Topology& t) {
    auto& db = t.datastores.at(0);
    db.replication_lag_ms = model::Distribution::constant(0);
    db.replicas.at(0) = db.primary;  // same host: no network delay either
  });
  ASSERT_GT(immediate.reads, 1500);
  EXPECT_EQ(immediate.stale, 0);
  EXPECT_EQ(immediate.max_lag_ms, 0);

  // One caller reading its own writes through read_your_writes sees every write it has had
  // acknowledged; what stays stale is a read racing a write of the same key still in flight
  // (a session guarantee covers acknowledged writes only).
  const auto session = run_stale([](model::Topology& t) {
    t.datastores.at(0).consistency = model::Consistency::read_your_writes;
  });
  ASSERT_GT(session.reads, 1500);
  EXPECT_LT(session.stale, 0.01 * session.reads);

  const auto strong = run_stale(
      [](model::Topology& t) { t.datastores.at(0).consistency = model::Consistency::strong; });
  EXPECT_EQ(strong.stale, 0);

  // Two nodes: a majority is both, the primary among them, so a quorum read is never stale
  // although half of them are served by the lagging replica.
  const auto quorum = run_stale(
      [](model::Topology& t) { t.datastores.at(0).consistency = model::Consistency::quorum; });
  ASSERT_GT(quorum.reads, 1500);
  EXPECT_EQ(quorum.stale, 0);
}

TEST(TwinPools, ExhaustionPropagatesUpstreamAndRecovers) {
  const auto m = run_isolated([] {
    const auto topology = testing::load_fixture("pool.json");
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    run_twin(topology, TwinOptions{}, observers);
    Metrics out;
    std::map<Outcome, int> api_to_db;
    for (const auto& s : recorder.spans) {
      if (s.kind == SpanKind::client && s.service == "api") ++api_to_db[s.outcome];
    }
    out["client.pool_timeout"] = api_to_db[Outcome::pool_timeout];
    out["client.ok"] = api_to_db[Outcome::ok];
    int early_500 = 0, early = 0, late_ok = 0, late = 0;
    for (const auto& e : recorder.entries) {
      if (e.start_s > 1 && e.start_s < 3.5) {
        ++early;
        early_500 += e.status == 500;
      }
      if (e.start_s > 7) {
        ++late;
        late_ok += e.status == 200;
      }
    }
    out["early_500_share"] = static_cast<double>(early_500) / early;
    out["late_ok_share"] = late ? static_cast<double>(late_ok) / late : 0;
    double exhausted_at = -1, recovered_at = -1;
    for (const auto& e : recorder.events) {
      if (e.kind == "pool_exhausted" && e.component == "api->slowdb" && exhausted_at < 0) {
        exhausted_at = e.time_s;
      }
      if (e.kind == "pool_recovered" && e.component == "api->slowdb") recovered_at = e.time_s;
    }
    out["exhausted_at"] = exhausted_at;
    out["recovered_at"] = recovered_at;
    const auto& mid = recorder.snapshots.at(2);  // t = 3 s
    out["mid.pool_size"] = mid.pools.at(0).size;
    out["mid.pool_in_use"] = mid.pools.at(0).in_use;
    out["final.acquire_timeouts"] =
        static_cast<double>(recorder.snapshots.back().pools.at(0).acquire_timeouts_total);
    return out;
  });
  EXPECT_GT(m.at("client.pool_timeout"), 100);
  EXPECT_EQ(m.at("final.acquire_timeouts"), m.at("client.pool_timeout"));
  // The db serves 40 queries/s: most of the 200 rps fail at api with a 500.
  EXPECT_GT(m.at("early_500_share"), 0.6);
  EXPECT_GT(m.at("late_ok_share"), 0.95);
  EXPECT_GE(m.at("exhausted_at"), 0.0);
  EXPECT_LT(m.at("exhausted_at"), 1.0);
  EXPECT_GT(m.at("recovered_at"), 4.0);
  EXPECT_EQ(m.at("mid.pool_size"), 4);
  EXPECT_EQ(m.at("mid.pool_in_use"), 4);
}

TEST(TwinBreakers, OpenOnACrashedDependencyProbeAndCloseAfterRestart) {
  const auto m = run_isolated([] {
    const auto topology = testing::load_fixture("breaker.json");
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.on_start = [](TwinRuntime& runtime) {
      runtime.at(2.0, [](TwinRuntime& r) { r.set_instance_up("back", 0, false); });
      runtime.at(5.0, [](TwinRuntime& r) { r.set_instance_up("back", 0, true); });
    };
    run_twin(topology, options, observers);
    Metrics out;
    std::map<std::string, std::vector<double>> events;
    for (const auto& e : recorder.events) events[e.kind].push_back(e.time_s);
    auto first = [&](const std::string& kind) {
      return events[kind].empty() ? -1.0 : events[kind].front();
    };
    out["instance_down_at"] = first("instance_down");
    out["first_open_at"] = first("breaker_open");
    out["opens"] = static_cast<double>(events["breaker_open"].size());
    out["half_opens"] = static_cast<double>(events["breaker_half_open"].size());
    out["closed_at"] = events["breaker_closed"].empty() ? -1 : events["breaker_closed"].back();
    int circuit_open = 0, unavailable = 0, ok_after = 0;
    for (const auto& s : recorder.spans) {
      if (s.kind != SpanKind::client || s.service != "front") continue;
      circuit_open += s.outcome == Outcome::circuit_open;
      unavailable += s.outcome == Outcome::unavailable;
      ok_after += s.outcome == Outcome::ok && s.start_s > 6.0;
    }
    out["circuit_open"] = circuit_open;
    out["unavailable"] = unavailable;
    out["ok_after"] = ok_after;
    out["final_state"] = static_cast<double>(recorder.snapshots.back().breakers.at(0).state);
    return out;
  });
  EXPECT_EQ(m.at("instance_down_at"), 2.0);
  // The 2 s window still holds the successes from before the crash: failures reach half of
  // it after about 1 s (earlier by up to a 0.2 s bucket).
  EXPECT_GE(m.at("first_open_at"), 2.6);
  EXPECT_LT(m.at("first_open_at"), 3.05);
  EXPECT_GE(m.at("unavailable"), 10);
  EXPECT_GT(m.at("circuit_open"), 200);  // most of 3 s x 100 rps is refused at once
  // Every 0.5 s a probe fails and reopens it, until back returns at 5 s.
  EXPECT_GE(m.at("half_opens"), 5);
  EXPECT_EQ(m.at("opens"), m.at("half_opens"));
  EXPECT_GE(m.at("closed_at"), 5.0);
  EXPECT_LT(m.at("closed_at"), 5.6);
  EXPECT_GT(m.at("ok_after"), 150);
  EXPECT_EQ(m.at("final_state"), static_cast<double>(BreakerState::closed));
}

TEST(TwinRetries, TimedOutAttemptsAreRetriedWhileTheCalleeKeepsWorking) {
  const auto m = run_isolated([] {
    const auto topology = testing::load_fixture("retry.json");
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    run_twin(topology, TwinOptions{}, observers);
    Metrics out;
    std::map<int, int> attempts;
    int client_ok = 0, server_ok = 0, late_server = 0;
    std::map<std::uint64_t, double> client_end;  // client span id -> its end
    for (const auto& s : recorder.spans) {
      if (s.kind == SpanKind::client && s.service == "front") {
        ++attempts[s.attempt];
        client_ok += s.outcome == Outcome::ok;
        client_end[s.span_id] = s.end_s;
        EXPECT_EQ(s.outcome, Outcome::timeout);
        EXPECT_NEAR(s.end_s - s.start_s, 0.010, 1e-9);
      }
    }
    for (const auto& s : recorder.spans) {
      if (s.kind == SpanKind::server && s.service == "slow") {
        server_ok += s.outcome == Outcome::ok;
        auto it = client_end.find(s.parent_span_id);
        if (it != client_end.end() && s.end_s > it->second) ++late_server;
      }
    }
    int entries_504 = 0;
    for (const auto& e : recorder.entries) entries_504 += e.status == 500;
    out["attempt0"] = attempts[0];
    out["attempt1"] = attempts[1];
    out["attempt2"] = attempts[2];
    out["attempt3"] = attempts[3];
    out["client_ok"] = client_ok;
    out["server_ok"] = server_ok;
    out["late_server"] = late_server;
    out["entries"] = static_cast<double>(recorder.entries.size());
    out["entries_500"] = entries_504;
    return out;
  });
  EXPECT_GT(m.at("attempt0"), 30);
  EXPECT_EQ(m.at("attempt1"), m.at("attempt0"));
  EXPECT_EQ(m.at("attempt2"), m.at("attempt0"));
  EXPECT_EQ(m.at("attempt3"), 0);
  EXPECT_EQ(m.at("client_ok"), 0);
  // slow finishes (nearly) every attempt, each after its caller gave up.
  EXPECT_GE(m.at("server_ok"), 3 * m.at("attempt0") - 3);
  EXPECT_EQ(m.at("late_server"), m.at("server_ok"));
  // front's operation fails when its dependency does.
  EXPECT_EQ(m.at("entries_500"), m.at("entries"));
}

TEST(TwinGateway, ClientHeadersPickTheRoute) {
  const auto m = run_isolated([] {
    const auto topology =
        model::load_topology(testing::source_path("tests/data/topologies/all-features.json"));
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.duration_s = 5;
    run_twin(topology, options, observers);
    Metrics out;
    for (const auto& e : recorder.entries) {
      out[std::string(e.client) + "/" + std::string(e.route)] += 1;
    }
    return out;
  });
  // The iPhone user agent matches home-mobile; the desktop browser falls through to home.
  EXPECT_GT(m.count("mobile/home-mobile") ? m.at("mobile/home-mobile") : 0, 50);
  EXPECT_EQ(m.count("mobile/home"), 0u);
  EXPECT_GT(m.count("browser/home") ? m.at("browser/home") : 0, 150);
  EXPECT_EQ(m.count("browser/home-mobile"), 0u);
}

TEST(TwinBundledTopologies, EachRunsTenSecondsWithBothNetworkModels) {
  const auto dir = std::filesystem::path(testing::source_path("topologies"));
  std::vector<std::filesystem::path> files;
  if (std::filesystem::exists(dir)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) GTEST_SKIP() << "no bundled topologies yet in " << dir;
  for (const auto& file : files) {
    for (auto network : {TwinOptions::NetworkModel::latency, TwinOptions::NetworkModel::flow}) {
      SCOPED_TRACE(file.string() +
                   (network == TwinOptions::NetworkModel::flow ? " flow" : " latency"));
      const auto m = run_isolated([&] {
        const auto topology = model::load_topology(file);
        Recorder recorder;
        TwinObserver* observers[] = {&recorder};
        TwinOptions options;
        options.duration_s = 10;
        options.network = network;
        const auto stats = run_twin(topology, options, observers);
        Metrics out;
        out["entries"] = static_cast<double>(stats.entries);
        out["snapshots"] = static_cast<double>(recorder.snapshots.size());
        int ok = 0, routed = 0, bad = 0;
        for (const auto& e : recorder.entries) {
          routed += e.outcome != Outcome::not_found;
          ok += e.status == 200;
        }
        for (const auto& s : recorder.spans) bad += s.end_s < s.start_s || s.end_s > 10.0 + 1e-9;
        out["ok_share"] = routed ? static_cast<double>(ok) / routed : 0;
        out["bad_spans"] = bad;
        out["server_services"] = 0;
        std::set<std::string_view> services;
        for (const auto& s : recorder.spans) {
          if (s.kind == SpanKind::server) services.insert(s.service);
        }
        out["server_services"] = static_cast<double>(services.size());
        return out;
      });
      EXPECT_GT(m.at("entries"), 0);
      EXPECT_EQ(m.at("snapshots"), 10);
      EXPECT_EQ(m.at("bad_spans"), 0);
      EXPECT_GT(m.at("ok_share"), 0.5);
      EXPECT_GE(m.at("server_services"), 2);
    }
  }
}

}  // namespace
}  // namespace doppel::twin

namespace doppel::twin {
namespace {

// Mean latency of successful "home" entries started in [from, to).
double mean_home_latency(const testing::Recorder& recorder, double from, double to) {
  double sum = 0;
  int n = 0;
  for (const auto& e : recorder.entries) {
    if (e.route != "home" || e.status != 200 || e.start_s < from || e.start_s >= to) continue;
    sum += e.end_s - e.start_s;
    ++n;
  }
  return n ? sum / n : 0;
}

testing::Metrics run_chain_with(TwinOptions::NetworkModel network,
                                std::function<void(TwinRuntime&)> at_five) {
  return testing::run_isolated([&] {
    const auto topology = testing::load_fixture("chain.json");
    testing::Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.network = network;
    options.on_start = [&](TwinRuntime& runtime) { runtime.at(5.0, at_five); };
    run_twin(topology, options, observers);
    return testing::Metrics{{"before", mean_home_latency(recorder, 1, 5)},
                            {"after", mean_home_latency(recorder, 5.5, 10)}};
  });
}

TEST(TwinRuntimeHooks, ExtraLatencyAndZoneLatencySlowRequestsDown) {
  // home calls catalog twice in series (list, then items in parallel with cart): +2 x 20 ms.
  const auto extra = run_chain_with(TwinOptions::NetworkModel::latency,
                                    [](TwinRuntime& r) { r.set_extra_latency("catalog", 20); });
  EXPECT_NEAR(extra.at("after") - extra.at("before"), 0.040, 0.004);

  // Frontend (zone edge) to catalog and cart (zone core): each of the two call layers crosses
  // the zones there and back, so 2 x 2 x (10 - 0.5) ms more, in the flow model's links.
  const auto zones = run_chain_with(TwinOptions::NetworkModel::flow, [](TwinRuntime& r) {
    r.set_zone_latency("edge", "core", 10000);
  });
  EXPECT_NEAR(zones.at("after") - zones.at("before"), 0.038, 0.004);
}

}  // namespace
}  // namespace doppel::twin
