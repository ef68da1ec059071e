// Bundled scenarios replayed on the real engine. SimGrid allows one simulation per process,
// so each run happens in a forked child that writes what the test needs to a file.
#include <fstream>
#include <iostream>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "doppel/faults/apply_scenario.hpp"
#include "doppel/faults/chaos_toolkit.hpp"
#include "doppel/faults/scenario.hpp"
#include "doppel/twin/runtime.hpp"
#include "doppel/twin/twin.hpp"

namespace doppel::faults {
namespace {

using nlohmann::json;

const std::filesystem::path kScenarios = std::filesystem::path(DOPPEL_SOURCE_DIR) / "scenarios";

// What a child keeps of a run: entries (route, client, end, failed), events, and for each
// snapshot the instances that were down.
class RunLog : public twin::TwinObserver {
 public:
  void on_entry(const twin::EntryRecord& e) override {
    entries.push_back(
        {std::string(e.route), std::string(e.client), e.end_s, e.outcome != twin::Outcome::ok});
  }
  void on_event(const twin::TwinEvent& e) override {
    events.push_back({{"t", e.time_s}, {"kind", e.kind}, {"component", e.component}});
  }
  void on_snapshot(const twin::Snapshot& s) override {
    json down = json::array();
    for (const auto& g : s.instances) {
      if (!g.up) down.push_back(fmt_instance(g));
    }
    std::uint64_t stale = 0;
    std::uint64_t reads = 0;
    double lag_ms = 0.0;
    for (const auto& d : s.datastores) {
      stale += d.stale_reads_total;
      reads += d.reads_total;
      lag_ms = std::max(lag_ms, d.replication_lag_ms);
    }
    snapshots.push_back(
        {{"t", s.time_s}, {"down", down}, {"stale", stale}, {"reads", reads}, {"lag_ms", lag_ms}});
    if (hosts.empty()) {
      for (const auto& g : s.instances) hosts[fmt_instance(g)] = std::string(g.host);
    }
  }
  static std::string fmt_instance(const twin::InstanceGauge& g) {
    return std::string(g.service) + "/" + std::to_string(g.instance);
  }
  json entries = json::array();
  json events = json::array();
  json snapshots = json::array();
  json hosts = json::object();
};

// Runs the scenario (or, with_injections = false, its topology and workload alone) in a child.
json rehearse(const std::string& name, bool with_injections) {
  const auto out = std::filesystem::temp_directory_path() /
                   ("doppel-rehearsal-" + name + (with_injections ? "-on" : "-off") + ".json");
  std::filesystem::remove(out);
  const pid_t child = fork();
  if (child == 0) {
    int code = 0;
    try {
      auto scenario = load_scenario(kScenarios / (name + ".json"));
      if (!with_injections) {
        // Keep the pre-run changes that set the stage (an added backend, a workload), drop
        // the rest: "without the injection".
        std::erase_if(scenario.injections,
                      [](const Injection& i) { return !(i.start_s == 0.0 && !i.end_s); });
      }
      const auto prepared = prepare_topology(scenario, load_scenario_topology(scenario));
      twin::TwinOptions options;
      options.seed = scenario.seed;
      options.on_start = [&](twin::TwinRuntime& rt) { apply_scenario(scenario, prepared, rt); };
      RunLog log;
      twin::TwinObserver* observers[] = {&log};
      (void)twin::run_twin(prepared, options, observers);
      std::ofstream(out) << json{
          {"entries", log.entries},
          {"events", log.events},
          {"snapshots", log.snapshots},
          {"hosts", log.hosts}}.dump();
    } catch (const std::exception& e) {
      std::ofstream(out) << json{{"error", e.what()}}.dump();
      code = 1;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  std::ifstream in(out);
  if (!in) return json{{"error", "the child wrote nothing"}};
  return json::parse(in);
}

// Share of failed entries of a route/client ending in [from, to).
double error_rate(const json& run, const std::string& route, const std::string& client, double from,
                  double to) {
  int all = 0;
  int failed = 0;
  for (const auto& e : run["entries"]) {
    if (!route.empty() && e[0] != route) continue;
    if (!client.empty() && e[1] != client) continue;
    const double t = e[2].get<double>();
    if (t < from || t >= to) continue;
    ++all;
    failed += e[3].get<bool>() ? 1 : 0;
  }
  return all == 0 ? -1.0 : static_cast<double>(failed) / all;
}

TEST(Rehearsal, ZoneOutageTakesZoneBDownAndBack) {
  const json run = rehearse("zone-outage", true);
  ASSERT_FALSE(run.contains("error")) << run["error"];
  // Where the engine placed each instance is where a host crash of the faults module hits.
  const auto topology = load_scenario_topology(load_scenario(kScenarios / "zone-outage.json"));
  for (const auto& zone : topology.zones) {
    for (const auto& host : zone.hosts) {
      auto doc = json::parse(R"({"doppel": "scenario/v1", "name": "h", "injections": [
          {"kind": "host_crash", "start_s": 1}]})");
      doc["injections"][0]["target"] = {{"host", host.name}};
      const auto scenario = parse_scenario(doc, "h.json", topology);
      for (const auto& c : plan_scenario(scenario, topology)) {
        if (c.op != RuntimeCommand::Op::instance_up) continue;
        const std::string key = c.target + "/" + std::to_string(c.index);
        EXPECT_EQ(run["hosts"].value(key, ""), host.name) << key;
      }
    }
  }
  int starts = 0;
  int ends = 0;
  for (const auto& e : run["events"]) {
    if (e["kind"] == "fault_start" && e["component"] == "zone-b") {
      ++starts;
      EXPECT_NEAR(e["t"].get<double>(), 20.0, 1e-9);
    }
    if (e["kind"] == "fault_end" && e["component"] == "zone-b") {
      ++ends;
      EXPECT_NEAR(e["t"].get<double>(), 40.0, 1e-9);
    }
  }
  EXPECT_EQ(starts, 1);
  EXPECT_EQ(ends, 1);
  for (const auto& s : run["snapshots"]) {
    const double t = s["t"].get<double>();
    if (t > 20.5 && t < 39.5) {
      EXPECT_FALSE(s["down"].empty()) << "at " << t;
    }
    if (t < 19.5 || t > 40.5) {
      EXPECT_TRUE(s["down"].empty()) << "at " << t << ": " << s["down"];
    }
  }
}

TEST(Rehearsal, GatewayMisrouteBreaksTheMobileClassOnly) {
  const json on = rehearse("gateway-misroute", true);
  ASSERT_FALSE(on.contains("error")) << on["error"];
  const json off = rehearse("gateway-misroute", false);
  ASSERT_FALSE(off.contains("error")) << off["error"];
  std::cout << "gateway-misroute: mobile errors before " << error_rate(on, "", "mobile", 0.0, 20.0)
            << ", after " << error_rate(on, "", "mobile", 21.0, 60.0) << ", shoppers after "
            << error_rate(on, "", "shoppers", 21.0, 60.0) << ", mobile without "
            << error_rate(off, "", "mobile", 21.0, 60.0) << "\n";
  EXPECT_LT(error_rate(on, "", "mobile", 0.0, 20.0), 0.02);
  EXPECT_GT(error_rate(on, "", "mobile", 21.0, 60.0), 0.9);
  EXPECT_LT(error_rate(on, "", "shoppers", 21.0, 60.0), 0.02);
  EXPECT_LT(error_rate(off, "", "mobile", 21.0, 60.0), 0.02) << "absent without the injection";
}

TEST(Rehearsal, DbPoolExhaustionRaisesCartErrorsAfterTheDeploy) {
  const json on = rehearse("db-pool-exhaustion", true);
  ASSERT_FALSE(on.contains("error")) << on["error"];
  const json off = rehearse("db-pool-exhaustion", false);
  ASSERT_FALSE(off.contains("error")) << off["error"];
  const double before = error_rate(on, "view-cart", "", 0.0, 20.0);
  const double after = error_rate(on, "view-cart", "", 30.0, 60.0);
  const double without = error_rate(off, "view-cart", "", 30.0, 60.0);
  std::cout << "db-pool-exhaustion: view-cart errors before " << before << ", after " << after
            << ", without " << without << "\n";
  EXPECT_LT(before, 0.01);
  EXPECT_GT(after, 0.05) << "before " << before << ", without " << without;
  EXPECT_LT(without, 0.01);
}

// Stale reads over [from, to) from the cumulative datastore totals of the snapshots.
double stale_share(const json& run, double from, double to) {
  double stale_from = 0, stale_to = 0, reads_from = 0, reads_to = 0;
  for (const auto& s : run["snapshots"]) {
    const double t = s["t"].get<double>();
    if (t <= from) {
      stale_from = s["stale"].get<double>();
      reads_from = s["reads"].get<double>();
    }
    if (t <= to) {
      stale_to = s["stale"].get<double>();
      reads_to = s["reads"].get<double>();
    }
  }
  return reads_to > reads_from ? (stale_to - stale_from) / (reads_to - reads_from) : -1.0;
}

TEST(Rehearsal, StaleReadsRiseWhileLatencyHolds) {
  const json on = rehearse("stale-reads", true);
  ASSERT_FALSE(on.contains("error")) << on["error"];
  const json off = rehearse("stale-reads", false);
  ASSERT_FALSE(off.contains("error")) << off["error"];
  const double before = stale_share(on, 0.0, 20.0);
  const double during = stale_share(on, 22.0, 40.0);
  const double without = stale_share(off, 22.0, 40.0);
  std::cout << "stale-reads: stale share before " << before << ", during " << during << ", without "
            << without << ", read errors during " << error_rate(on, "read-profile", "", 22.0, 40.0)
            << "\n";
  EXPECT_GT(during, 2.0 * std::max(before, 0.001));
  EXPECT_GT(during, 2.0 * std::max(without, 0.001));
  EXPECT_LT(error_rate(on, "read-profile", "", 22.0, 40.0), 0.01);
}

// Metastable: the 5 s CPU trigger (10-15 s) tips currencyservice's queue into a state the
// retries sustain: every request served is one its caller gave up on (a full queue holds
// ~200 ms of work, the timeout is 100 ms) and each failed call comes back as up to 6
// attempts, more than the service can do. So the errors last to the end, 25 s after the
// trigger; without the trigger the same vulnerable system never tips.
TEST(Rehearsal, RetryStormOutlivesItsTrigger) {
  const json on = rehearse("retry-storm", true);
  ASSERT_FALSE(on.contains("error")) << on["error"];
  const json off = rehearse("retry-storm", false);
  ASSERT_FALSE(off.contains("error")) << off["error"];
  const double before = error_rate(on, "", "", 0.0, 10.0);
  const double during = error_rate(on, "", "", 10.0, 15.0);
  const double without = error_rate(off, "", "", 15.0, 40.0);
  std::cout << "retry-storm: errors before " << before << ", during the trigger " << during
            << ", after it:";
  for (double from = 15.0; from < 40.0; from += 5.0) {
    std::cout << " " << from << "-" << from + 5 << " s " << error_rate(on, "", "", from, from + 5);
  }
  std::cout << ", without the trigger " << without << "\n";
  EXPECT_LT(before, 0.01);
  EXPECT_GT(during, 0.5);
  // Every 5 s from 5 s after the trigger's end to the end of the run: still failing.
  for (double from = 20.0; from < 40.0; from += 5.0) {
    EXPECT_GT(error_rate(on, "", "", from, from + 5), 0.5) << "metastable: failing at " << from;
  }
  EXPECT_LT(without, 0.01) << "the vulnerable state alone does not tip";
}

TEST(Rehearsal, ChaosToolkitExperimentRunsEndToEnd) {
  const auto file =
      std::filesystem::path(DOPPEL_SOURCE_DIR) / "tests/data/chaos/cart-pod-failure.json";
  const auto out = std::filesystem::temp_directory_path() / "doppel-rehearsal-chaos.json";
  std::filesystem::remove(out);
  const pid_t child = fork();
  if (child == 0) {
    int code = 0;
    try {
      const auto topology = load_scenario_topology(load_scenario(kScenarios / "zone-outage.json"));
      const auto experiment = chaos::load_experiment(file);
      const auto plan = chaos::plan_experiment(
          experiment, chaos::mapping_from_extensions(experiment, topology), topology);
      const auto prepared = prepare_topology(plan.scenario, topology);
      twin::TwinOptions options;
      options.seed = plan.scenario.seed;
      options.on_start = [&](twin::TwinRuntime& rt) {
        apply_scenario(plan.scenario, prepared, rt);
      };
      chaos::ProbeRecorder recorder;
      twin::TwinObserver* observers[] = {&recorder};
      const auto stats = twin::run_twin(prepared, options, observers);
      const auto verdict =
          chaos::judge_experiment(plan, recorder.entries(), std::nullopt, stats.simulated_s);
      std::ofstream(out) << chaos::to_json(verdict).dump();
    } catch (const std::exception& e) {
      std::ofstream(out) << json{{"error", e.what()}}.dump();
      code = 1;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  std::ifstream in(out);
  ASSERT_TRUE(in.good());
  const json verdict = json::parse(in);
  ASSERT_FALSE(verdict.contains("error")) << verdict["error"];
  std::cout << "cart-pod-failure verdict: " << verdict.dump() << "\n";
  EXPECT_NE(verdict["status"], "interrupted");
  EXPECT_TRUE(verdict["steady_states"]["before"]["steady_state_met"].get<bool>());
  for (const auto& probe : verdict["probes"]) {
    EXPECT_FALSE(probe["output"].is_null()) << probe["name"] << " measured nothing";
  }
  if (verdict["status"] == "completed") {
    EXPECT_FALSE(verdict["deviated"].get<bool>());
  }
}

}  // namespace
}  // namespace doppel::faults
