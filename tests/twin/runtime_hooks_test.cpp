// The TwinRuntime hooks that faults and deploys drive: partitions, packet loss, bandwidth,
// name resolution, replication, query slowdown, error rates, traffic, routes, memory, clock
// skew and capacity changes. Each TEST runs one simulation of tests/data/twin/hooks.json in a
// process of its own (sim_harness.hpp) and checks what the hook does to the requests before,
// during and after it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "doppel/twin/runtime.hpp"

#include "twin/sim_harness.hpp"

namespace doppel::twin {
namespace {

using testing::Metrics;
using testing::Recorder;

using Measure = std::function<Metrics(const Recorder&)>;

// `adapt`, if given, changes the fixture first (moves a service, say).
Metrics run_hooks(TwinOptions::NetworkModel network, std::function<void(TwinRuntime&)> on_start,
                  Measure measure, std::function<void(model::Topology&)> adapt = {}) {
  return testing::run_isolated([&] {
    auto topology = testing::load_fixture("hooks.json");
    if (adapt) adapt(topology);
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.seed = 11;
    options.network = network;
    options.snapshot_interval_s = 0.5;
    options.on_start = on_start;
    run_twin(topology, options, observers);
    return measure(recorder);
  });
}

// Client spans front -> back started in [from, to).
struct Calls {
  int total = 0;
  int ok = 0;
  int timeout = 0;
  int unavailable = 0;
  double duration_sum = 0;
  double mean_duration() const { return total ? duration_sum / total : 0.0; }
  double share_ok() const { return total ? static_cast<double>(ok) / total : 0.0; }
};
Calls front_calls(const Recorder& r, double from, double to) {
  Calls c;
  for (const auto& s : r.spans) {
    if (s.kind != SpanKind::client || s.service != "front" || s.start_s < from || s.start_s >= to)
      continue;
    ++c.total;
    c.ok += s.outcome == Outcome::ok;
    c.timeout += s.outcome == Outcome::timeout;
    c.unavailable += s.outcome == Outcome::unavailable;
    c.duration_sum += s.end_s - s.start_s;
  }
  return c;
}
void put_calls(Metrics& m, const std::string& name, const Calls& c) {
  m[name + ".other"] = c.total - c.ok - c.timeout - c.unavailable;
  m[name + ".total"] = c.total;
  m[name + ".ok_share"] = c.share_ok();
  m[name + ".timeout"] = c.timeout;
  m[name + ".unavailable"] = c.unavailable;
  m[name + ".mean_s"] = c.mean_duration();
}
double first_event(const Recorder& r, const std::string& kind) {
  for (const auto& e : r.events) {
    if (e.kind == kind) return e.time_s;
  }
  return -1;
}
// Stale share of the replica's reads between two snapshots.
double stale_share(const Recorder& r, double from, double to) {
  double reads0 = 0, stale0 = 0, reads1 = 0, stale1 = 0;
  for (const auto& s : r.snapshots) {
    for (const auto& d : s.datastores) {
      if (d.node != 1) continue;
      if (std::abs(s.time_s - from) < 1e-9) reads0 = d.reads_total, stale0 = d.stale_reads_total;
      if (std::abs(s.time_s - to) < 1e-9) reads1 = d.reads_total, stale1 = d.stale_reads_total;
    }
  }
  return reads1 > reads0 ? (stale1 - stale0) / (reads1 - reads0) : -1;
}
double replica_lag_ms(const Recorder& r, double at) {
  for (const auto& s : r.snapshots) {
    if (std::abs(s.time_s - at) > 1e-9) continue;
    for (const auto& d : s.datastores) {
      if (d.node == 1) return d.replication_lag_ms;
    }
  }
  return -1;
}

TEST(TwinPartition, TwoWayZonePartitionTimesCallsOutUntilItHeals) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) {
          const int id = r.add_partition({"a"}, {"b"}, true);
          r.at(4.0, [id](TwinRuntime& r2) { r2.heal_partition(id); });
        });
      },
      [](const Recorder& r) {
        Metrics m;
        // Calls that start just before 2 s lose their replies: the window ends earlier.
        put_calls(m, "before", front_calls(r, 0.5, 1.95));
        put_calls(m, "during", front_calls(r, 2.0, 4.0));
        put_calls(m, "after", front_calls(r, 4.0, 5.0));
        m["applied_at"] = first_event(r, "partition_applied");
        m["healed_at"] = first_event(r, "partition_healed");
        // Replication p -> r does not cross a <-> b: it must keep running.
        m["replication_stopped"] = first_event(r, "replication_stopped");
        return m;
      });
  EXPECT_EQ(m.at("before.ok_share"), 1.0);
  // front's 64 workers each wait 1 s per call: about 64 calls a second get through to try.
  EXPECT_GT(m.at("during.total"), 100);
  // A partition drops packets: every call waits its whole 1 s timeout.
  EXPECT_EQ(m.at("during.timeout"), m.at("during.total"));
  EXPECT_NEAR(m.at("during.mean_s"), 1.0, 1e-6);
  EXPECT_EQ(m.at("after.ok_share"), 1.0);
  EXPECT_EQ(m.at("applied_at"), 2.0);
  EXPECT_EQ(m.at("healed_at"), 4.0);
  EXPECT_EQ(m.at("replication_stopped"), -1);
}

TEST(TwinPartition, OneWayPartitionLosesRepliesInTheFlowModel) {
  // back's hosts cannot send to front's: requests arrive and are served, replies are lost.
  const auto m = run_hooks(
      TwinOptions::NetworkModel::flow,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.add_partition({"back"}, {"front"}, false); });
      },
      [](const Recorder& r) {
        Metrics m;
        // Calls that start just before 2 s lose their replies: the window ends earlier.
        put_calls(m, "before", front_calls(r, 0.5, 1.95));
        put_calls(m, "during", front_calls(r, 2.05, 4.0));
        int served_ok = 0;
        for (const auto& s : r.spans) {
          served_ok += s.kind == SpanKind::server && s.service == "back" && s.start_s > 2.05 &&
                       s.start_s < 4.0 && s.outcome == Outcome::ok;
        }
        m["back_served_ok"] = served_ok;
        return m;
      });
  EXPECT_EQ(m.at("before.ok_share"), 1.0);
  EXPECT_GT(m.at("during.total"), 100);
  EXPECT_EQ(m.at("during.timeout"), m.at("during.total"));
  EXPECT_GT(m.at("back_served_ok"), 0.9 * m.at("during.total"));
}

TEST(TwinPartition, PartitionBetweenPrimaryAndReplicaStopsReplicationThenDrains) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) {
          const int id = r.add_partition({"p"}, {"r"}, true);
          r.at(4.0, [id](TwinRuntime& r2) { r2.heal_partition(id); });
        });
      },
      [](const Recorder& r) {
        Metrics m;
        put_calls(m, "during", front_calls(r, 2.0, 4.0));
        m["stale_before"] = stale_share(r, 1.0, 2.0);
        m["stale_during"] = stale_share(r, 3.0, 4.0);
        m["stale_after"] = stale_share(r, 4.5, 5.5);
        m["lag_during_ms"] = replica_lag_ms(r, 4.0);
        m["lag_after_ms"] = replica_lag_ms(r, 5.0);
        m["stopped_at"] = first_event(r, "replication_stopped");
        m["resumed_at"] = first_event(r, "replication_resumed");
        return m;
      });
  EXPECT_EQ(m.at("during.ok_share"), 1.0);  // nobody else's traffic crosses p <-> r
  EXPECT_LT(m.at("stale_before"), 0.2);
  EXPECT_GT(m.at("stale_during"), 0.8);  // 20 keys, 100 writes/s: all of them move on
  EXPECT_LT(m.at("stale_after"), 0.2);
  EXPECT_NEAR(m.at("lag_during_ms"), 2000, 20);  // the oldest held write is from t = 2
  EXPECT_LT(m.at("lag_after_ms"), 20);
  EXPECT_EQ(m.at("stopped_at"), 2.0);
  EXPECT_EQ(m.at("resumed_at"), 4.0);
}

TEST(TwinPacketLoss, LossAddsRetransmissionDelaysToTheServicesTransfers) {
  // p = 0.1 on each of the two transfers of a call to back: P(at least one loss) =
  // 1 - 0.9^2 = 0.19, and each transfer waits on average sum_k p^k 0.2 * 2^(k-1) s.
  const double p = 0.1;
  double per_transfer = 0;
  for (int k = 1; k <= 5; ++k) per_transfer += std::pow(p, k) * 0.2 * std::pow(2, k - 1);
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [p](TwinRuntime& rt) {
        rt.at(1.0, [p](TwinRuntime& r) { r.set_service_packet_loss("back", p); });
        rt.at(5.0, [](TwinRuntime& r) { r.set_service_packet_loss("back", 0); });
      },
      [](const Recorder& r) {
        Metrics m;
        const auto before = front_calls(r, 0.2, 1.0);
        const auto during = front_calls(r, 1.0, 5.0);
        int delayed = 0;
        for (const auto& s : r.spans) {
          delayed += s.kind == SpanKind::client && s.service == "front" && s.start_s >= 1.0 &&
                     s.start_s < 5.0 && s.end_s - s.start_s >= 0.2;
        }
        m["extra_s"] = during.mean_duration() - before.mean_duration();
        m["delayed_share"] = static_cast<double>(delayed) / during.total;
        put_calls(m, "after", front_calls(r, 5.0, 6.0));
        return m;
      });
  EXPECT_NEAR(m.at("delayed_share"), 0.19, 0.035);
  EXPECT_NEAR(m.at("extra_s"), 2 * per_transfer, 0.012);
  EXPECT_LT(m.at("after.mean_s"), 0.02);
}

// back moved onto front's host: its calls never cross a NIC. A service's packet loss is on
// its instances' own interfaces (chaos tools' tc netem in the container), so it still delays
// them; a host's packet loss is its NIC's, which they never cross. Both networks.
TEST(TwinPacketLoss, AServicesLossReachesCallsFromItsOwnHostAHostsDoesNot) {
  const double p = 0.1;
  for (auto network : {TwinOptions::NetworkModel::latency, TwinOptions::NetworkModel::flow}) {
    SCOPED_TRACE(network == TwinOptions::NetworkModel::latency ? "latency" : "flow");
    const auto m = run_hooks(
        network,
        [p](TwinRuntime& rt) {
          rt.at(1.0, [p](TwinRuntime& r) { r.set_service_packet_loss("back", p); });
          rt.at(5.0, [](TwinRuntime& r) { r.set_service_packet_loss("back", 0); });
          rt.at(5.0, [](TwinRuntime& r) { r.set_host_packet_loss("a1", 0.5); });
        },
        [](const Recorder& recorder) {
          // The time a call spends on the wire: its client span less back's server span
          // (back's own calls to db do cross a1's NIC after 5 s).
          std::map<std::uint64_t, double> served;
          for (const auto& s : recorder.spans) {
            if (s.kind == SpanKind::server && s.service == "back")
              served[s.parent_span_id] = s.end_s - s.start_s;
          }
          int during = 0, delayed = 0, after = 0, host_loss_delayed = 0;
          for (const auto& s : recorder.spans) {
            if (s.kind != SpanKind::client || s.service != "front" || s.start_s < 1.0) continue;
            const auto server = served.find(s.span_id);
            if (server == served.end()) continue;  // lost on the way, or still running
            // A retransmission waits 0.2 s; nothing else on this host takes a tenth of that.
            const bool slow = s.end_s - s.start_s - server->second >= 0.15;
            if (s.start_s < 5.0) {
              ++during;
              delayed += slow;
            } else {
              ++after;
              host_loss_delayed += slow;
            }
          }
          Metrics m;
          m["delayed_share"] = static_cast<double>(delayed) / during;
          m["host_loss_delayed"] = host_loss_delayed;
          m["after.total"] = after;
          return m;
        },
        [](model::Topology& topology) {
          for (auto& service : topology.services) {
            if (service.name == "back") service.placement = {{"a", "a1"}};
          }
        });
    EXPECT_NEAR(m.at("delayed_share"), 0.19, 0.035);
    EXPECT_GT(m.at("after.total"), 0);
    EXPECT_EQ(m.at("host_loss_delayed"), 0);
  }
}

TEST(TwinLatency, EdgeLatencyWithJitterSlowsOnlyThatEdge) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_edge_extra_latency("front", "back", 20, 10); });
      },
      [](const Recorder& r) {
        Metrics m;
        const double base = front_calls(r, 0.5, 2.0).mean_duration();
        double low = 1e9, high = 0;
        for (const auto& s : r.spans) {
          if (s.kind != SpanKind::client || s.service != "front" || s.start_s < 2.0) continue;
          low = std::min(low, s.end_s - s.start_s - base);
          high = std::max(high, s.end_s - s.start_s - base);
        }
        m["extra_mean_s"] = front_calls(r, 2.0, 6.0).mean_duration() - base;
        m["extra_low_s"] = low;
        m["extra_high_s"] = high;
        double db_before = 0, db_after = 0;
        int n_before = 0, n_after = 0;
        for (const auto& s : r.spans) {
          if (s.kind != SpanKind::client || s.service != "back") continue;
          if (s.start_s < 2.0) db_before += s.end_s - s.start_s, ++n_before;
          if (s.start_s >= 2.0) db_after += s.end_s - s.start_s, ++n_after;
        }
        m["db_change_s"] = db_after / n_after - db_before / n_before;
        return m;
      });
  EXPECT_NEAR(m.at("extra_mean_s"), 0.020, 0.001);
  EXPECT_GT(m.at("extra_low_s"), 0.0075);   // 20 - 10 ms, less the spread of the base (~2 ms)
  EXPECT_LT(m.at("extra_high_s"), 0.0325);  // 20 + 10 ms, plus the spread of the base
  EXPECT_GT(m.at("extra_high_s") - m.at("extra_low_s"), 0.018);
  EXPECT_NEAR(m.at("db_change_s"), 0.0, 0.0005);  // back -> db is another edge
}

TEST(TwinBandwidth, ZoneBandwidthLimitAddsBytesOverBandwidthToEachTransfer) {
  // 0.1 Mb/s between a and b: 512 B there and 2048 B back take 2560 / 12500 s more.
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_zone_bandwidth("a", "b", 0.1); });
      },
      [](const Recorder& r) {
        Metrics m;
        m["before_s"] = front_calls(r, 0.5, 2.0).mean_duration();
        m["after_s"] = front_calls(r, 2.0, 3.0).mean_duration();
        return m;
      });
  const double expected = 2560.0 / 12500.0 - 2560.0 / 125e6;
  EXPECT_NEAR(m.at("after_s") - m.at("before_s"), expected, 0.002);
}

TEST(TwinDns, UnresolvableServiceFailsCallsAtOnceAsUnavailable) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_service_resolvable("back", false); });
        rt.at(4.0, [](TwinRuntime& r) { r.set_service_resolvable("back", true); });
      },
      [](const Recorder& r) {
        Metrics m;
        put_calls(m, "during", front_calls(r, 2.0, 4.0));
        put_calls(m, "after", front_calls(r, 4.0, 6.0));
        int status_500 = 0, entries = 0;
        for (const auto& e : r.entries) {
          if (e.start_s < 2.0 || e.start_s >= 3.99) continue;
          ++entries;
          status_500 += e.status == 500;
        }
        m["entries_500_share"] = static_cast<double>(status_500) / entries;
        return m;
      });
  EXPECT_GT(m.at("during.total"), 300);
  EXPECT_EQ(m.at("during.unavailable"), m.at("during.total"));
  EXPECT_EQ(m.at("during.mean_s"), 0.0);
  // front cannot do without back: its operation fails, so the gateway answers 500.
  EXPECT_EQ(m.at("entries_500_share"), 1.0);
  EXPECT_EQ(m.at("after.ok_share"), 1.0);
}

TEST(TwinReplication, StoppedReplicationHoldsWritesAndTheBacklogDrainsOnResume) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_replication_stopped("db", true); });
        rt.at(4.0, [](TwinRuntime& r) { r.set_replication_stopped("db", false); });
      },
      [](const Recorder& r) {
        Metrics m;
        m["lag_at_3_ms"] = replica_lag_ms(r, 3.0);
        m["lag_at_4_ms"] = replica_lag_ms(r, 4.0);
        m["lag_at_4.5_ms"] = replica_lag_ms(r, 4.5);
        m["stale_during"] = stale_share(r, 2.5, 4.0);
        m["stale_after"] = stale_share(r, 4.5, 6.0);
        m["stopped_at"] = first_event(r, "replication_stopped");
        m["resumed_at"] = first_event(r, "replication_resumed");
        return m;
      });
  EXPECT_NEAR(m.at("lag_at_3_ms"), 1000, 20);
  EXPECT_NEAR(m.at("lag_at_4_ms"), 2000, 20);
  EXPECT_LT(m.at("lag_at_4.5_ms"), 20);
  EXPECT_GT(m.at("stale_during"), 0.8);
  EXPECT_LT(m.at("stale_after"), 0.2);
  EXPECT_EQ(m.at("stopped_at"), 2.0);
  EXPECT_EQ(m.at("resumed_at"), 4.0);
}

TEST(TwinReplication, ExtraLagAndQuerySlowdownChangeTheStoresTimes) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_replication_lag("db", 1.0, 300); });
        rt.at(4.0, [](TwinRuntime& r) { r.set_query_slowdown("db", "get", 10); });
      },
      [](const Recorder& r) {
        Metrics m;
        double lag_max = 0;
        for (const auto& s : r.snapshots) {
          for (const auto& d : s.datastores) {
            if (d.node == 1 && s.time_s > 2.5 && s.time_s < 4.0)
              lag_max = std::max(lag_max, d.replication_lag_ms);
          }
        }
        m["lag_max_ms"] = lag_max;
        double get_before = 0, get_after = 0, put_after = 0;
        int n_before = 0, n_after = 0, n_put = 0;
        for (const auto& s : r.spans) {
          if (s.kind != SpanKind::server || s.service != "db") continue;
          const double d = s.end_s - s.start_s;
          if (s.operation == "get" && s.start_s < 4.0) get_before += d, ++n_before;
          if (s.operation == "get" && s.start_s >= 4.0) get_after += d, ++n_after;
          if (s.operation == "put" && s.start_s >= 4.0) put_after += d, ++n_put;
        }
        m["get_before_ms"] = get_before / n_before * 1000;
        m["get_after_ms"] = get_after / n_after * 1000;
        m["put_after_ms"] = put_after / n_put * 1000;
        return m;
      });
  // Lag = 5 ms sampled + 300 ms extra + 1 ms of network: the oldest pending write's age.
  EXPECT_GT(m.at("lag_max_ms"), 280);
  EXPECT_LT(m.at("lag_max_ms"), 310);
  EXPECT_NEAR(m.at("get_before_ms"), 0.2, 0.01);
  EXPECT_NEAR(m.at("get_after_ms"), 2.0, 0.05);
  EXPECT_NEAR(m.at("put_after_ms"), 0.5, 0.01);  // only the named query slows down
}

TEST(TwinErrorRate, OperationErrorRateFailsThatShareOfRequests) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_error_rate("back", "work", 0.5); });
        rt.at(4.0, [](TwinRuntime& r) { r.set_error_rate("back", "", -1); });
      },
      [](const Recorder& r) {
        Metrics m;
        int page = 0, page_500 = 0, save = 0, save_500 = 0, after_500 = 0;
        for (const auto& e : r.entries) {
          if (e.start_s >= 4.1) after_500 += e.status == 500;
          if (e.start_s < 2.0 || e.start_s >= 4.0) continue;
          if (e.route == "page") ++page, page_500 += e.status == 500;
          if (e.route == "save") ++save, save_500 += e.status == 500;
        }
        m["page_500_share"] = static_cast<double>(page_500) / page;
        m["save_500"] = save_500;
        m["after_500"] = after_500;
        return m;
      });
  EXPECT_NEAR(m.at("page_500_share"), 0.5, 0.07);
  EXPECT_EQ(m.at("save_500"), 0);
  EXPECT_EQ(m.at("after_500"), 0);
}

TEST(TwinTraffic, ClientRateFactorScalesArrivalsOfThatClassOnly) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_client_rate_factor("web", 3.0); });
        rt.at(4.0, [](TwinRuntime& r) { r.set_client_rate_factor("web", 1.0); });
      },
      [](const Recorder& r) {
        Metrics m;
        auto rate = [&](const std::string& client, double from, double to) {
          int n = 0;
          for (const auto& e : r.entries)
            n += e.client == client && e.start_s >= from && e.start_s < to;
          return n / (to - from);
        };
        m["web_before"] = rate("web", 0, 2);
        m["web_during"] = rate("web", 2, 4);
        m["web_after"] = rate("web", 4, 6);
        m["mobile_during"] = rate("mobile", 2, 4);
        return m;
      });
  EXPECT_NEAR(m.at("web_before"), 200, 30);
  EXPECT_NEAR(m.at("web_during"), 600, 50);
  EXPECT_NEAR(m.at("web_after"), 200, 30);
  EXPECT_NEAR(m.at("mobile_during"), 50, 15);
}

TEST(TwinRoutes, RouteChangeCapturesOneClientClassByHeader) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) {
          model::Route mobile;
          mobile.name = "mobile-save";
          mobile.headers.push_back({"user-agent", ".*Mobile.*"});
          mobile.service = "front";
          mobile.operation = "save";
          model::Route save;
          save.name = "save";
          save.method = "PUT";
          save.path_prefix = "/";
          save.service = "front";
          save.operation = "save";
          model::Route page;
          page.name = "page";
          page.method = "GET";
          page.path_prefix = "/";
          page.service = "front";
          page.operation = "page";
          r.set_gateway_routes({mobile, save, page});
        });
      },
      [](const Recorder& r) {
        Metrics m;
        int mobile_before = 0, mobile_after = 0, web_misrouted = 0;
        for (const auto& e : r.entries) {
          if (e.client == "mobile" && e.start_s < 2.0) mobile_before += e.route == "mobile-save";
          if (e.client == "mobile" && e.start_s >= 2.0) mobile_after += e.route == "mobile-save";
          if (e.client == "web") web_misrouted += e.route == "mobile-save";
        }
        m["mobile_before"] = mobile_before;
        m["mobile_after"] = mobile_after;
        m["web_misrouted"] = web_misrouted;
        m["changed_at"] = first_event(r, "routes_changed");
        return m;
      });
  EXPECT_EQ(m.at("mobile_before"), 0);
  EXPECT_GT(m.at("mobile_after"), 150);
  EXPECT_EQ(m.at("web_misrouted"), 0);
  EXPECT_EQ(m.at("changed_at"), 2.0);
}

TEST(TwinMemory, SlowdownFillsTheInstanceUntilItsMemoryLimitKillsIt) {
  // back/0 holds 100 MB + 1 MB per request: a 200x slowdown piles requests up past 150 MB.
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(0.0, [](TwinRuntime& r) { r.set_instance_memory_limit("back", 0, 150); });
        rt.at(2.0, [](TwinRuntime& r) { r.set_instance_slowdown("back", 0, 200); });
      },
      [](const Recorder& r) {
        Metrics m;
        m["oom_at"] = first_event(r, "instance_oom_killed");
        m["down_at"] = first_event(r, "instance_down");
        double peak = 0;
        for (const auto& s : r.snapshots) {
          for (const auto& i : s.instances) {
            if (i.service == "back" && i.instance == 0) peak = std::max(peak, i.memory_mb);
          }
        }
        m["peak_memory_mb"] = peak;
        m["up_at_end"] = r.snapshots.back().instances.at(1).up;
        put_calls(m, "late", front_calls(r, 4.5, 6.0));
        return m;
      });
  EXPECT_GT(m.at("oom_at"), 2.0);
  EXPECT_LT(m.at("oom_at"), 3.0);
  EXPECT_EQ(m.at("down_at"), m.at("oom_at"));
  EXPECT_LE(m.at("peak_memory_mb"), 150);
  EXPECT_EQ(m.at("up_at_end"), 0);  // snapshot instances: front/0, back/0, back/1
  // back/1 takes everything afterwards.
  EXPECT_EQ(m.at("late.ok_share"), 1.0);
}

TEST(TwinClockSkew, SkewShiftsTheHostsSpansButNotTheSimulation) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) { rt.at(0.0, [](TwinRuntime& r) { r.set_clock_skew("b1", 500); }); },
      [](const Recorder& r) {
        Metrics m;
        std::map<std::uint64_t, const SpanRecord*> by_id;
        for (const auto& s : r.spans) by_id[s.span_id] = &s;
        double skewed = 1e9, unskewed = -1e9;
        for (const auto& s : r.spans) {
          if (s.kind != SpanKind::server || s.service != "back") continue;
          auto parent = by_id.find(s.parent_span_id);
          if (parent == by_id.end()) continue;
          const double offset = s.start_s - parent->second->start_s;
          if (s.host == "b1") skewed = std::min(skewed, offset);
          if (s.host == "b2") unskewed = std::max(unskewed, offset);
        }
        m["b1_min_offset"] = skewed;
        m["b2_max_offset"] = unskewed;
        put_calls(m, "all", front_calls(r, 0, 6));
        return m;
      });
  EXPECT_GT(m.at("b1_min_offset"), 0.5);
  EXPECT_LT(m.at("b1_min_offset"), 0.51);
  EXPECT_LT(m.at("b2_max_offset"), 0.01);
  EXPECT_LT(m.at("all.mean_s"), 0.02);  // the simulation itself is unaffected
}

TEST(TwinDeploy, FewerWorkersQueueRequestsAndMoreDrainThem) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_workers("back", 1); });
        rt.at(2.0, [](TwinRuntime& r) { r.set_queue_capacity("back", 20); });
        rt.at(4.0, [](TwinRuntime& r) { r.set_workers("back", 12); });
      },
      [](const Recorder& r) {
        Metrics m;
        int max_busy_during = 0, max_queued_during = 0, workers_during = 0, workers_after = 0;
        int max_busy_after = 0;
        for (const auto& s : r.snapshots) {
          for (const auto& i : s.instances) {
            if (i.service != "back") continue;
            if (s.time_s > 2.2 && s.time_s < 4.0) {
              max_busy_during = std::max(max_busy_during, i.busy_workers);
              max_queued_during = std::max(max_queued_during, i.queued);
              workers_during = i.workers;
            }
            if (s.time_s > 4.0) {
              workers_after = i.workers;
              max_busy_after = std::max(max_busy_after, i.busy_workers);
            }
          }
        }
        int rejected = 0;
        for (const auto& s : r.spans) {
          rejected += s.kind == SpanKind::server && s.service == "back" &&
                      s.outcome == Outcome::rejected && s.start_s > 2 && s.start_s < 4;
        }
        m["max_busy_during"] = max_busy_during;
        m["max_queued_during"] = max_queued_during;
        m["workers_during"] = workers_during;
        m["workers_after"] = workers_after;
        m["rejected_during"] = rejected;
        put_calls(m, "late", front_calls(r, 4.5, 6.0));
        return m;
      });
  // ~125 requests/s per instance; one worker at ~2-3 ms a request keeps up, with a queue
  // at times, bounded at 20 now.
  EXPECT_EQ(m.at("max_busy_during"), 1);
  EXPECT_EQ(m.at("workers_during"), 1);
  EXPECT_LE(m.at("max_queued_during"), 20);
  EXPECT_EQ(m.at("workers_after"), 12);
  EXPECT_EQ(m.at("late.ok_share"), 1.0);
}

TEST(TwinDeploy, ScalingInStopsNewWorkOnRetiredInstances) {
  const auto m = run_hooks(
      TwinOptions::NetworkModel::latency,
      [](TwinRuntime& rt) {
        rt.at(2.0, [](TwinRuntime& r) { r.set_active_replicas("back", 1); });
        rt.at(4.0, [](TwinRuntime& r) { r.set_active_replicas("back", 2); });
        rt.at(2.0, [](TwinRuntime& r) { r.set_max_connections("db", 1); });
      },
      [](const Recorder& r) {
        Metrics m;
        int on_1_before = 0, on_1_during = 0, on_1_after = 0, db_rejected = 0;
        for (const auto& s : r.spans) {
          if (s.kind != SpanKind::server) continue;
          if (s.service == "back" && s.instance == 1) {
            on_1_before += s.start_s < 2.0;
            on_1_during += s.start_s >= 2.01 && s.start_s < 4.0;
            on_1_after += s.start_s >= 4.01;
          }
          db_rejected += s.service == "db" && s.outcome == Outcome::rejected;
        }
        m["on_1_before"] = on_1_before;
        m["on_1_during"] = on_1_during;
        m["on_1_after"] = on_1_after;
        m["db_rejected"] = db_rejected;
        return m;
      });
  EXPECT_GT(m.at("on_1_before"), 100);
  EXPECT_EQ(m.at("on_1_during"), 0);
  EXPECT_GT(m.at("on_1_after"), 100);
  EXPECT_GT(m.at("db_rejected"), 0);  // one connection per node cannot hold 250 queries/s
}

// stop() ends the run at that instant whoever calls it: a timer (maestro) or an observer
// inside a request's actor, as a rehearsal's abort condition does.
Metrics stopped_run(TwinOptions::NetworkModel network, bool from_observer) {
  return testing::run_isolated([&] {
    const auto topology = testing::load_fixture("hooks.json");
    struct StopAfter : TwinObserver {
      TwinRuntime* runtime = nullptr;
      int countdown = 0;
      void on_entry(const EntryRecord&) override {
        if (runtime != nullptr && --countdown == 0) runtime->stop();
      }
    } stopper;
    Recorder recorder;
    TwinObserver* observers[] = {&stopper, &recorder};
    TwinOptions options;
    options.seed = 11;
    options.network = network;
    options.snapshot_interval_s = 0.5;
    options.on_start = [&](TwinRuntime& rt) {
      if (from_observer) {
        stopper.runtime = &rt;
        stopper.countdown = 300;  // about 1.2 s into the run at 250 entries/s
      } else {
        rt.at(2.25, [](TwinRuntime& r) { r.stop(); });
      }
      // Due after the stop: must not happen.
      rt.at(4.0, [](TwinRuntime& r) { r.set_instance_up("back", 0, false); });
    };
    const RunStats stats = run_twin(topology, options, observers);
    double last_entry = 0;
    for (const auto& e : recorder.entries) last_entry = std::max(last_entry, e.end_s);
    double last_span = 0;
    for (const auto& s : recorder.spans) last_span = std::max(last_span, s.end_s);
    return Metrics{{"stopped", stats.stopped ? 1.0 : 0.0},
                   {"simulated_s", stats.simulated_s},
                   {"run_end", recorder.end_time},
                   {"entries", static_cast<double>(recorder.entries.size())},
                   {"last_entry", last_entry},
                   {"last_span", last_span},
                   {"last_snapshot", recorder.snapshots.back().time_s},
                   {"snapshots", static_cast<double>(recorder.snapshots.size())},
                   {"instance_down_events", first_event(recorder, "instance_down")}};
  });
}

TEST(TwinStop, StopFromATimerEndsTheRunThere) {
  for (auto network : {TwinOptions::NetworkModel::latency, TwinOptions::NetworkModel::flow}) {
    const auto m = stopped_run(network, false);
    EXPECT_EQ(m.at("stopped"), 1.0);
    EXPECT_DOUBLE_EQ(m.at("simulated_s"), 2.25);
    EXPECT_DOUBLE_EQ(m.at("run_end"), 2.25);
    EXPECT_LE(m.at("last_entry"), 2.25);
    EXPECT_GT(m.at("last_entry"), 2.0);
    EXPECT_LE(m.at("last_span"), 2.25);
    // Snapshots at 0.5 .. 2.0, then the last one at the stop.
    EXPECT_DOUBLE_EQ(m.at("last_snapshot"), 2.25);
    EXPECT_EQ(m.at("snapshots"), 5);
    EXPECT_EQ(m.at("instance_down_events"), -1) << "a change due after the stop happened";
  }
}

TEST(TwinStop, StopFromAnObserverEndsTheRunAtThatEntry) {
  const auto m = stopped_run(TwinOptions::NetworkModel::latency, true);
  EXPECT_EQ(m.at("stopped"), 1.0);
  EXPECT_EQ(m.at("entries"), 300) << "entries after the stop were reported";
  EXPECT_DOUBLE_EQ(m.at("simulated_s"), m.at("last_entry"));
  EXPECT_DOUBLE_EQ(m.at("run_end"), m.at("simulated_s"));
  EXPECT_DOUBLE_EQ(m.at("last_snapshot"), m.at("simulated_s"));
  EXPECT_LT(m.at("simulated_s"), 3.0);
  EXPECT_EQ(m.at("instance_down_events"), -1);
}

TEST(TwinFaultDeterminism, SameSeedGivesIdenticalRecordsWithEveryRandomFaultActive) {
  // Loss and jitter draw from streams of their own; with partitions, OOM kills and route
  // changes, two processes must still write the same records.
  auto faults = [](TwinRuntime& rt) {
    rt.at(1.0, [](TwinRuntime& r) {
      r.set_service_packet_loss("back", 0.2);
      r.set_host_packet_loss("r", 0.1);
      r.set_latency_jitter("back", 5);
      r.set_edge_extra_latency("back", "db", 2, 1);
      r.set_instance_memory_limit("back", 1, 130);
      r.set_clock_skew("b2", -3);
    });
    rt.at(2.0, [](TwinRuntime& r) { r.add_partition({"p"}, {"r"}, true); });
    rt.at(3.0, [](TwinRuntime& r) { r.set_client_rate_factor("mobile", 4); });
  };
  auto fingerprint = [](const Recorder& r) {
    const std::uint64_t f = testing::fingerprint(r);
    return Metrics{{"hi", static_cast<double>(f >> 32)},
                   {"lo", static_cast<double>(f & 0xffffffffU)},
                   {"spans", static_cast<double>(r.spans.size())}};
  };
  for (auto network : {TwinOptions::NetworkModel::latency, TwinOptions::NetworkModel::flow}) {
    const auto a = run_hooks(network, faults, fingerprint);
    const auto b = run_hooks(network, faults, fingerprint);
    EXPECT_EQ(a.at("hi"), b.at("hi"));
    EXPECT_EQ(a.at("lo"), b.at("lo"));
    EXPECT_EQ(a.at("spans"), b.at("spans"));
    EXPECT_GT(a.at("spans"), 1000);
  }
}

}  // namespace
}  // namespace doppel::twin
