// The doppel binary as a user meets it: exit codes, messages, and byte-identical outputs for
// the same seed across separate processes.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/doppel_cli.hpp"

namespace {

namespace fs = std::filesystem;

using Result = doppel::testing::CliResult;

Result doppel(const std::string& args) {
  return doppel::testing::run_doppel(args);
}

std::string source(const std::string& relative) {
  return std::string(DOPPEL_SOURCE_DIR) + "/" + relative;
}

using doppel::testing::slurp;

fs::path fresh_dir(const std::string& name) {
  return doppel::testing::fresh_test_dir(name);
}

TEST(Cli, VersionAndHelpExitZero) {
  EXPECT_EQ(doppel("--version").exit_code, 0);
  const Result help = doppel("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("topology"), std::string::npos);
  EXPECT_NE(help.out.find("run"), std::string::npos);
}

TEST(Cli, BadUsageExitsTwo) {
  EXPECT_EQ(doppel("").exit_code, 2);
  EXPECT_EQ(doppel("topology validate").exit_code, 2);
  EXPECT_EQ(doppel("run --no-such-flag x").exit_code, 2);
}

TEST(Cli, ValidatesEveryBundledTopology) {
  for (const auto& entry : fs::directory_iterator(source("topologies"))) {
    if (entry.path().extension() != ".json") continue;
    const Result r = doppel("topology validate " + entry.path().string());
    EXPECT_EQ(r.exit_code, 0) << entry.path() << "\n" << r.out;
    EXPECT_NE(r.out.find("valid topology/v1"), std::string::npos) << r.out;
  }
}

TEST(Cli, RejectsEveryBrokenTopologyWithItsPlace) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(source("tests/data/bad"))) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    const Result r = doppel("topology validate " + entry.path().string());
    EXPECT_EQ(r.exit_code, 2) << entry.path();
    // "error: FILE: PLACE: message" — the file is always named.
    EXPECT_NE(r.out.find("error: " + entry.path().string() + ": "), std::string::npos) << r.out;
  }
  EXPECT_GE(files, 15);
}

TEST(Cli, MissingFileExitsTwoAndNamesIt) {
  const Result r = doppel("topology validate /nonexistent/topology.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("/nonexistent/topology.json"), std::string::npos) << r.out;
}

TEST(Cli, DotAndPlatformOutputs) {
  const Result dot = doppel("topology dot " + source("topologies/online-boutique.json"));
  EXPECT_EQ(dot.exit_code, 0);
  EXPECT_EQ(dot.out.rfind("digraph", 0), 0u) << dot.out.substr(0, 200);
  EXPECT_NE(dot.out.find("checkoutservice"), std::string::npos);
  const Result xml = doppel("topology platform " + source("topologies/online-boutique.json"));
  EXPECT_EQ(xml.exit_code, 0);
  EXPECT_NE(xml.out.find("<platform version=\"4.1\">"), std::string::npos)
      << xml.out.substr(0, 300);
}

TEST(Cli, ShowJsonIsCanonicalAndReloads) {
  const fs::path dir = fresh_dir("show-json");
  const Result shown = doppel("topology show --json " + source("topologies/hotrod.json"));
  ASSERT_EQ(shown.exit_code, 0) << shown.out;
  std::ofstream(dir / "hotrod.json") << shown.out;
  EXPECT_EQ(doppel("topology validate " + (dir / "hotrod.json").string()).exit_code, 0);
}

// Two processes, same seed: every output file byte-identical; another seed: different.
TEST(Cli, RunIsDeterministicForASeed) {
  const fs::path a = fresh_dir("run-a");
  const fs::path b = fresh_dir("run-b");
  const fs::path c = fresh_dir("run-c");
  const std::string topo = source("topologies/online-boutique.json");
  const std::string common = " --duration 5 --trace-sample 0.05 --seed 7 ";
  const Result ra = doppel("run " + topo + common + "--out " + a.string());
  const Result rb = doppel("run " + topo + common + "--out " + b.string());
  ASSERT_EQ(ra.exit_code, 0) << ra.out;
  ASSERT_EQ(rb.exit_code, 0) << rb.out;
  for (const char* file :
       {"metrics.csv", "traces.otlp.jsonl", "events.jsonl", "summary.json", "summary.txt"}) {
    ASSERT_TRUE(fs::exists(a / file)) << file;
    EXPECT_EQ(slurp(a / file), slurp(b / file)) << file << " differs between identical runs";
  }
  EXPECT_FALSE(slurp(a / "metrics.csv").empty());
  EXPECT_FALSE(slurp(a / "traces.otlp.jsonl").empty());
  ASSERT_EQ(doppel("run " + topo + " --duration 5 --trace-sample 0.05 --seed 8 --out " + c.string())
                .exit_code,
            0);
  EXPECT_NE(slurp(a / "metrics.csv"), slurp(c / "metrics.csv"));
}

TEST(Cli, RunWithFlowNetwork) {
  const fs::path dir = fresh_dir("run-flow");
  const Result r = doppel("run " + source("topologies/hotrod.json") +
                          " --duration 5 --network flow --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(slurp(dir / "summary.json").find("\"routes\""), std::string::npos);
}

}  // namespace

namespace {

TEST(Cli, RehearseDbPoolExhaustionShowsTheIncident) {
  const fs::path dir = fresh_dir("rehearse-pool");
  const Result r =
      doppel("rehearse " + source("scenarios/db-pool-exhaustion.json") + " --out " + dir.string());
  // Its abort condition (checkout errors above 50% over 5 s) halts it a few seconds in.
  ASSERT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("steady state BROKEN, ABORTED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pool_exhausted"), std::string::npos) << r.out;
  EXPECT_LT(r.out.find("pool_exhausted"), r.out.find("abort_condition_fired")) << r.out;
  const std::string json = slurp(dir / "rehearsal.json");
  EXPECT_NE(json.find("\"doppel-rehearsal/v1\""), std::string::npos);
  EXPECT_NE(json.find("cartservice->redis-cart"), std::string::npos);
}

TEST(Cli, RehearseWithTopologyArgumentAndBadScenario) {
  const fs::path dir = fresh_dir("rehearse-bad");
  const Result ok = doppel("rehearse " + source("topologies/online-boutique.json") + " " +
                           source("scenarios/zone-outage.json") + " --out " + dir.string());
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  const Result bad = doppel("rehearse " + source("tests/data/topologies/all-features.json") + " " +
                            source("scenarios/db-pool-exhaustion.json") + " --out " + dir.string());
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("db-pool-exhaustion.json: /"), std::string::npos) << bad.out;
}

}  // namespace

namespace {

TEST(Cli, RehearseRunsAChaosToolkitExperiment) {
  const fs::path dir = fresh_dir("rehearse-chaos");
  const Result r =
      doppel("rehearse " + source("topologies/online-boutique.json") + " " +
             source("tests/data/chaos/cart-pod-failure.json") + " --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(": completed"), std::string::npos) << r.out;
  const std::string journal = slurp(dir / "journal.json");
  EXPECT_NE(journal.find("\"status\": \"completed\""), std::string::npos) << journal;
  EXPECT_NE(journal.find("frontend-home"), std::string::npos) << journal;
}

TEST(Cli, RehearseChaosExperimentWithMappingFileAndWithoutTopology) {
  const fs::path dir = fresh_dir("rehearse-chaos-mapping");
  const std::string experiment = source("tests/data/chaos/payment-latency.json");
  const Result r = doppel(
      "rehearse " + source("topologies/online-boutique.json") + " " + experiment + " --mapping " +
      source("tests/data/chaos/payment-latency.mapping.json") + " --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("checkout-errors"), std::string::npos) << r.out;
  const Result missing = doppel("rehearse " + experiment + " --out " + dir.string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.out.find("needs the TOPOLOGY argument"), std::string::npos) << missing.out;
}

}  // namespace

namespace {

// A rehearsal whose abort condition fires stops there, says which condition fired, and exits 1.
TEST(Cli, RehearseStopsWhenAnAbortConditionFires) {
  const fs::path dir = fresh_dir("rehearse-abort");
  const Result r = doppel("rehearse " + source("tests/data/scenarios/abort-on-errors.json") +
                          " --out " + dir.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("ABORTED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error_rate of route product over 2 s"), std::string::npos) << r.out;
  const auto doc = nlohmann::json::parse(slurp(dir / "rehearsal.json"));
  EXPECT_TRUE(doc["aborted"].get<bool>());
  EXPECT_EQ(doc["abort"]["condition"], 1);
  const double stop = doc["simulated_until_s"].get<double>();
  EXPECT_GT(stop, 20.0);
  EXPECT_LT(stop, 23.0) << "the error rate passes 50% within a couple of seconds";
  EXPECT_DOUBLE_EQ(doc["abort"]["time_s"].get<double>(), stop);
  EXPECT_GT(doc["abort"]["measured"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(doc["scenario_end_s"].get<double>(), 60.0);
  // The phases and the telemetry end at the stop.
  EXPECT_EQ(doc["phases"].back()["name"], "during");
  EXPECT_DOUBLE_EQ(doc["phases"].back()["end_s"].get<double>(), stop);
  EXPECT_NE(slurp(dir / "events.jsonl").find("\"abort_condition_fired\""), std::string::npos);
  std::istringstream metrics(slurp(dir / "metrics.csv"));
  std::string line, last;
  while (std::getline(metrics, line)) {
    if (!line.empty()) last = line;
  }
  // metrics.csv times are Unix seconds from the telemetry's default epoch, 1700000000.
  EXPECT_NEAR(std::stod(last.substr(0, last.find(','))) - 1700000000.0, stop, 1e-3) << last;
}

TEST(Cli, RehearseWithNoAbortRunsTheWholeTimelineAndReportsTheCrossing) {
  const fs::path dir = fresh_dir("rehearse-no-abort");
  const Result r = doppel("rehearse " + source("tests/data/scenarios/abort-on-errors.json") +
                          " --no-abort --out " + dir.string());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("would have fired"), std::string::npos) << r.out;
  const auto doc = nlohmann::json::parse(slurp(dir / "rehearsal.json"));
  EXPECT_FALSE(doc["aborted"].get<bool>());
  EXPECT_FALSE(doc["abort"]["stopped_run"].get<bool>());
  EXPECT_LT(doc["abort"]["time_s"].get<double>(), 23.0);
  EXPECT_DOUBLE_EQ(doc["simulated_until_s"].get<double>(), 60.0);
  EXPECT_EQ(doc["phases"].back()["name"], "after");
}

// N replications in child processes: N directories, an aggregate that says N, the same bytes
// for the same seed; one replication is the plain rehearsal.
TEST(Cli, RehearseReplicationsAggregateWithSpreads) {
  const std::string scenario = source("tests/data/scenarios/abort-on-errors.json");
  const fs::path a = fresh_dir("rehearse-replications-a");
  const fs::path b = fresh_dir("rehearse-replications-b");
  const Result ra = doppel("rehearse " + scenario +
                           " --trace-sample 0 --replications 2 --jobs 2 --out " + a.string());
  // Every replication stops at its abort condition: exit 1, as a single aborted run.
  ASSERT_EQ(ra.exit_code, 1) << ra.out;
  EXPECT_NE(ra.out.find("over 2 replications"), std::string::npos) << ra.out;
  for (const char* sub : {"replication-000", "replication-001"}) {
    EXPECT_TRUE(fs::exists(a / sub / "rehearsal.json")) << sub;
    EXPECT_TRUE(fs::exists(a / sub / "metrics.csv")) << sub;
  }
  EXPECT_FALSE(fs::exists(a / "replication-002"));
  const std::string aggregate = slurp(a / "rehearsal.json");
  const auto doc = nlohmann::json::parse(aggregate);
  EXPECT_EQ(doc["format"], "doppel-rehearsal-replications/v1");
  EXPECT_EQ(doc["replications"], 2);
  EXPECT_EQ(doc["aborted"]["count"], 2);
  EXPECT_LT(doc["abort_time_s"]["max"].get<double>(), 23.0);
  // The replications differ (their own substreams) but all see the product route break.
  EXPECT_NE(slurp(a / "replication-000/rehearsal.json"),
            slurp(a / "replication-001/rehearsal.json"));
  bool product_broke_everywhere = false;
  for (const auto& route : doc["blast_radius"]["routes"]) {
    if (route["route"] == "product") product_broke_everywhere = route["count"] == 2;
  }
  EXPECT_TRUE(product_broke_everywhere) << doc["blast_radius"].dump();
  const Result rb = doppel("rehearse " + scenario +
                           " --trace-sample 0 --replications 2 --jobs 1 --out " + b.string());
  ASSERT_EQ(rb.exit_code, 1) << rb.out;
  EXPECT_EQ(slurp(b / "rehearsal.json"), aggregate) << "same seed, same aggregate";
  // Replication 0 is the single run.
  const fs::path single = fresh_dir("rehearse-replications-single");
  const Result rs = doppel("rehearse " + scenario + " --trace-sample 0 --replications 1 --out " +
                           single.string());
  ASSERT_EQ(rs.exit_code, 1) << rs.out;
  EXPECT_EQ(slurp(single / "rehearsal.json"), slurp(a / "replication-000/rehearsal.json"));
  EXPECT_FALSE(fs::exists(single / "replication-000"));
}

}  // namespace

namespace {

// A Chaos Toolkit experiment halted by its abort condition: journal.json says "aborted".
TEST(Cli, RehearseChaosExperimentAbortedByItsHaltCondition) {
  const fs::path dir = fresh_dir("rehearse-chaos-abort");
  const std::string experiment = source("tests/data/chaos/catalog-outage-abort.json");
  const Result r = doppel("rehearse " + source("topologies/online-boutique.json") + " " +
                          experiment + " --out " + dir.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(": aborted"), std::string::npos) << r.out;
  const auto journal = nlohmann::json::parse(slurp(dir / "journal.json"));
  EXPECT_EQ(journal["status"], "aborted") << journal.dump();
  EXPECT_NE(journal["reason"].get<std::string>().find("abort condition fired"), std::string::npos);
  const auto rehearsal = nlohmann::json::parse(slurp(dir / "rehearsal.json"));
  EXPECT_TRUE(rehearsal["aborted"].get<bool>());
  // A mistake in the halt condition is reported where it was written.
  const fs::path bad = dir / "bad.mapping.json";
  std::ofstream(bad) << R"({"doppel": "chaos-mapping/v1",
      "abort_conditions": [{"metric": "error_rate", "route": "nowhere", "above": 0.5}]})";
  const Result wrong = doppel("rehearse " + source("topologies/online-boutique.json") + " " +
                              experiment + " --mapping " + bad.string() + " --out " + dir.string());
  EXPECT_EQ(wrong.exit_code, 2) << wrong.out;
  EXPECT_NE(wrong.out.find("bad.mapping.json: /abort_conditions/0/route"), std::string::npos)
      << wrong.out;
}

}  // namespace
