// doppel diagnose and validate as a user runs them: the bundled db-pool-exhaustion incident
// replayed as "production" with its own seed, then diagnosed and fixed against the twin.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/doppel_cli.hpp"

namespace {

namespace fs = std::filesystem;

using doppel::testing::fresh_test_dir;
using doppel::testing::run_doppel;
using doppel::testing::slurp;
using doppel::testing::source_path;
using Result = doppel::testing::CliResult;

const std::string kTopology = source_path("topologies/online-boutique.json");

// Production: the incident with a seed the diagnosis never uses, 40 s (the deploy is at 20 s).
fs::path production(const fs::path& dir) {
  const Result r =
      run_doppel("simulate " + kTopology + " " + source_path("scenarios/db-pool-exhaustion.json") +
                 " --seed 99 --duration 40 --out " + (dir / "production").string());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return dir / "production" / "metrics.csv";
}

TEST(Diagnose, RanksTheTrueCauseFirstAndSameSeedSameBytes) {
  const fs::path dir = fresh_test_dir("diagnose-candidates");
  const fs::path observed = production(dir);
  const std::string args = "diagnose " + kTopology + " --observed " + observed.string() +
                           " --candidates " + source_path("tests/data/diagnose/candidates.json") +
                           " --replications 2 --jobs 2 --out ";
  const Result first = run_doppel(args + (dir / "a").string());
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const auto diagnosis = nlohmann::json::parse(slurp(dir / "a" / "diagnosis.json"));
  EXPECT_EQ(diagnosis["causes"][0]["cause"], "slow redis") << diagnosis["causes"].dump();
  EXPECT_EQ(diagnosis["ranking"][0]["name"], "slow redis");
  // The deploy is at 20 s; the row stamped t covers (t - 1, t].
  EXPECT_NEAR(diagnosis["simulation"]["onset_s"].get<double>(), 20.0, 1.0);
  EXPECT_TRUE(fs::exists(dir / "a" / "report.html"));
  EXPECT_NE(first.out.find("slow redis"), std::string::npos) << first.out;

  const Result second = run_doppel(args + (dir / "b").string());
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_EQ(slurp(dir / "a" / "diagnosis.json"), slurp(dir / "b" / "diagnosis.json"));
}

// Traces instead of metrics: production's OTLP export (a fifth of the traces), turned into
// per-service rates, errors and latencies.
TEST(Diagnose, TakesTracesAsObservedInput) {
  const fs::path dir = fresh_test_dir("diagnose-traces");
  const Result rehearsal =
      run_doppel("rehearse " + source_path("scenarios/db-pool-exhaustion.json") +
                 " --no-abort --seed 99 --trace-sample 0.2 --out " + (dir / "production").string());
  ASSERT_EQ(rehearsal.exit_code, 0) << rehearsal.out;
  const Result r = run_doppel("diagnose " + kTopology + " --observed " +
                              (dir / "production" / "traces.otlp.jsonl").string() +
                              " --trace-sample 0.2 --candidates " +
                              source_path("tests/data/diagnose/candidates.json") +
                              " --replications 2 --jobs 2 --out " + (dir / "diagnosis").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto diagnosis = nlohmann::json::parse(slurp(dir / "diagnosis" / "diagnosis.json"));
  EXPECT_EQ(diagnosis["causes"][0]["cause"], "slow redis") << diagnosis["causes"].dump();
  EXPECT_NEAR(diagnosis["simulation"]["onset_s"].get<double>(), 20.0, 1.0);
}

TEST(Diagnose, BadInputExitsTwoNamingThePlace) {
  const fs::path dir = fresh_test_dir("diagnose-bad");
  const std::string observed = source_path("tests/data/diagnose/candidates.json");  // not a CSV
  Result r = run_doppel("diagnose " + kTopology + " --observed /nonexistent.csv --auto --out " +
                        dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("/nonexistent.csv: cannot open the file"), std::string::npos) << r.out;

  const fs::path csv = dir / "observed.csv";
  std::ofstream(csv) << "time,frontend_rps\n1,10\n2,11\n";
  r = run_doppel("diagnose " + kTopology + " --observed " + csv.string() +
                 " --window 30-40 --auto --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--window: \"30-40\": expected START:END in seconds"), std::string::npos)
      << r.out;

  r = run_doppel("diagnose " + kTopology + " --observed " + csv.string() + " --candidates " +
                 source_path("tests/data/diagnose/bad-candidates.json") + " --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("bad-candidates.json: /candidates/0/injections/0/target"), std::string::npos)
      << r.out;

  r = run_doppel("diagnose " + kTopology + " --observed " + csv.string() + " --out " +
                 dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--candidates FILE or --auto"), std::string::npos) << r.out;
}

// A step of five baseline scales in one latency is no onset at the usual thresholds; a
// diagnosis asked for anyway starts there and says the evidence is weak. A flat series is no
// onset at either: exit 2, asking for a window.
TEST(Diagnose, AWeakOnsetIsUsedAndFlaggedAFlatSeriesIsAnError) {
  const fs::path dir = fresh_test_dir("diagnose-weak-onset");
  const fs::path candidates = dir / "null.json";
  std::ofstream(candidates) << R"({"doppel": "candidates/v1", "candidates": [
      {"name": "no fault", "description": "the null hypothesis", "injections": []}]})";
  const auto write_csv = [&](const fs::path& file, double stepped) {
    std::ofstream csv(file);
    csv << "time,frontend_lat_99\n";
    for (int t = 1; t <= 40; ++t) {
      csv << t << "," << (t >= 31 ? stepped : 10.0) + 0.2 * std::sin(t * 1.7) << "\n";
    }
  };
  write_csv(dir / "weak.csv", 15.0);
  Result r = run_doppel("diagnose " + kTopology + " --observed " + (dir / "weak.csv").string() +
                        " --candidates " + candidates.string() +
                        " --replications 1 --jobs 1 --out " + (dir / "weak").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Warning: no metric departs clearly from its baseline"), std::string::npos)
      << r.out;
  const auto diagnosis = nlohmann::json::parse(slurp(dir / "weak" / "diagnosis.json"));
  EXPECT_TRUE(diagnosis["simulation"]["onset_relaxed"].get<bool>());
  EXPECT_DOUBLE_EQ(diagnosis["simulation"]["onset_s"].get<double>(), 30.0);

  write_csv(dir / "flat.csv", 10.0);
  r = run_doppel("diagnose " + kTopology + " --observed " + (dir / "flat.csv").string() +
                 " --candidates " + candidates.string() + " --out " + (dir / "flat").string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--observed: no metric departs from its baseline: no symptom onset found "
                       "(pass --window START:END to say where to look)"),
            std::string::npos)
      << r.out;
}

// The main job on the bundled default, the whole story: the incident as production (its
// abort condition only reported), diagnosed from production's metrics with every candidate of
// the catalogue, then the four bundled fixes validated. Every verdict comes out of the
// simulation: rollback and index recover; a bigger pool drives redis-cart past its
// max_connections (harmful); a longer acquire timeout only makes requests wait (ineffective).
TEST(Demo, TellsTheWholeStory) {
  const fs::path dir = fresh_test_dir("demo");
  const Result r = run_doppel("demo --jobs 2 --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Causal chain"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Abort condition would have fired"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pool_exhausted"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir / "production" / "metrics.csv"));

  const auto diagnosis = nlohmann::json::parse(slurp(dir / "diagnosis" / "diagnosis.json"));
  EXPECT_EQ(diagnosis["causes"][0]["cause"], "datastore_slowdown@redis-cart")
      << diagnosis["causes"].dump();

  const auto validation = nlohmann::json::parse(slurp(dir / "validation" / "validation.json"));
  std::map<std::string, std::string> verdicts;
  for (const auto& fix : validation["fixes"]) verdicts[fix["fix"]] = fix["verdict"];
  EXPECT_EQ(verdicts["rollback"], "recommend") << r.out;
  EXPECT_EQ(verdicts["index"], "recommend") << r.out;
  EXPECT_EQ(verdicts["bigger pool"], "reject: harmful") << r.out;
  EXPECT_EQ(verdicts["longer timeout"], "reject: ineffective") << r.out;
  EXPECT_NE(r.out.find("changes nothing in production"), std::string::npos);
  const std::string report = slurp(dir / "report.html");
  EXPECT_NE(report.find("datastore_slowdown@redis-cart"), std::string::npos);
  EXPECT_NE(report.find("reject: harmful"), std::string::npos);
}

// The bundled staged fixes: the canary of the longer timeout already shows it failing; the
// canary of the bigger pool (one instance: 64 + 16 connections, under redis-cart's 100) cannot
// show what the full rollout breaks (2 x 64), and the report says so.
TEST(Validate, CanaryStagesShowWhatACanaryWouldAndWouldNotCatch) {
  const fs::path dir = fresh_test_dir("validate-canary");
  const Result r = run_doppel("validate " + kTopology + " --cause " +
                              source_path("scenarios/db-pool-exhaustion.json") + " --fixes " +
                              source_path("fixes/db-pool-exhaustion-staged.json") +
                              " --replications 2 --jobs 2 --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto validation = nlohmann::json::parse(slurp(dir / "validation.json"));
  ASSERT_EQ(validation["fixes"].size(), 2u);
  const auto& pool = validation["fixes"][0];
  const auto& timeout = validation["fixes"][1];
  EXPECT_EQ(pool["verdict"], "reject: harmful") << r.out;
  EXPECT_EQ(pool["canary"]["instances"], 1);
  EXPECT_TRUE(pool["canary"]["breaks"].empty()) << pool["canary"].dump();
  EXPECT_NE(pool["canary"]["finding"].get<std::string>().find(
                "but the full rollout breaks datastore redis-cart refused connections"),
            std::string::npos)
      << pool["canary"].dump();
  EXPECT_EQ(timeout["verdict"], "reject: ineffective") << r.out;
  EXPECT_EQ(timeout["canary"]["finding"].get<std::string>().rfind("stop at the canary", 0), 0u)
      << timeout["canary"].dump();
  EXPECT_GT(timeout["canary"]["all_routes_err"]["fix"].get<double>(),
            timeout["canary"]["all_routes_err"]["cause"].get<double>());
  EXPECT_NE(r.out.find("Canary stage of bigger pool, canary first"), std::string::npos) << r.out;
}

TEST(Validate, AFixThatDoesNotFitTheTopologyExitsTwo) {
  const fs::path dir = fresh_test_dir("validate-bad");
  const fs::path fixes = dir / "fixes.json";
  std::ofstream(fixes) << R"({"doppel": "fixes/v1", "fixes": [{"name": "x", "at_s": 30,
      "changes": [{"set": "/edges/cartservice->nowhere/timeout_ms", "value": 8}]}]})";
  const Result r = run_doppel("validate " + kTopology + " --cause " +
                              source_path("scenarios/db-pool-exhaustion.json") + " --fixes " +
                              fixes.string() + " --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("fixes.json: /fixes/0/changes/0"), std::string::npos) << r.out;
}

}  // namespace
