// Bundled scenarios replayed on the real engine. SimGrid allows one simulation per process,
// so each run happens in a forked child that writes what the test needs to a file.
#include <fstream>
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
    snapshots.push_back({{"t", s.time_s}, {"down", down}});
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
  EXPECT_LT(before, 0.01);
  EXPECT_GT(after, 0.05) << "before " << before << ", without " << without;
  EXPECT_LT(without, 0.01);
}

}  // namespace
}  // namespace doppel::faults
