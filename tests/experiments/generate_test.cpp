// doppel generate: the catalogue and the draws in-process; datasets through the doppel binary
// (one SimGrid run per process): labels against the metrics, byte-identical regeneration,
// shards and merge against an unsharded run, resume after a kill, the file formats.
#include "doppel/experiments/generate.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::experiments {
namespace {

namespace fs = std::filesystem;

const fs::path kTopology = fs::path(DOPPEL_SOURCE_DIR) / "topologies" / "online-boutique.json";

// ctest runs each TEST in its own process, two at a time: every process gets its own
// directory, or one process's SetUpTestSuite would delete the dataset another is reading.
fs::path test_root() {
  return fs::path(DOPPEL_BINARY_DIR) / "generate-test" / std::to_string(getpid());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

fs::path scratch(const std::string& name) {
  const auto dir = test_root() / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir;
}

int doppel(const std::string& arguments) {
  const std::string command = std::string(DOPPEL_CLI) + " " + arguments + " >/dev/null 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Every file under a directory, relative path -> bytes.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), dir).string()] = read_file(entry.path());
    }
  }
  return files;
}

// Short, low-rate cases of kinds whose root cause shows in its own metrics columns.
fs::path write_test_catalog() {
  const auto file = test_root() / "catalog.json";
  fs::create_directories(file.parent_path());
  std::ofstream(file) << R"({
    "format": "catalog/v1",
    "duration_s": 20,
    "rate_multiplier": 0.1,
    "start_fraction": [0.4, 0.5],
    "faults": [
      {"kind": "instance_crash", "targets": ["cartservice", "currencyservice"],
       "magnitude": [3, 3], "duration_s": [8, 8]},
      {"kind": "cpu_hog", "targets": ["productcatalogservice", "cartservice"],
       "magnitude": [20, 20], "duration_s": [8, 8]},
      {"kind": "datastore_crash", "duration_s": [8, 8]}
    ]
  })";
  return file;
}

// --- In process -----------------------------------------------------------------------------

TEST(Shards, ParseAndEnvironment) {
  EXPECT_EQ(parse_shard("2/5"), (Shard{2, 5}));
  EXPECT_THROW(parse_shard("5/5"), InputError);
  EXPECT_THROW(parse_shard("1/0"), InputError);
  EXPECT_THROW(parse_shard("x"), InputError);
  std::map<std::string, std::string> env;
  auto lookup = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_FALSE(shard_from_environment(lookup));
  env["JOB_COMPLETION_INDEX"] = "3";
  EXPECT_THROW(shard_from_environment(lookup), InputError);  // no count
  env["DOPPEL_SHARD_COUNT"] = "4";
  EXPECT_EQ(shard_from_environment(lookup), (Shard{3, 4}));
  env["SLURM_ARRAY_TASK_ID"] = "1";
  env["SLURM_ARRAY_TASK_COUNT"] = "2";
  EXPECT_EQ(shard_from_environment(lookup), (Shard{1, 2}));  // Slurm first
}

TEST(Shards, PartitionTheIndices) {
  std::vector<int> seen(23, 0);
  for (std::uint64_t i = 0; i < 4; ++i) {
    for (auto index : shard_indices(23, {i, 4})) {
      EXPECT_EQ(index % 4, i);
      ++seen[index];
    }
  }
  for (int count : seen) EXPECT_EQ(count, 1);
}

TEST(Catalog, DefaultCoversEveryKindOnEveryApplicableComponent) {
  const auto topology = model::load_topology(kTopology);
  const auto catalog = default_catalog(topology);
  ASSERT_EQ(catalog.entries.size(), all_fault_kinds().size());
  for (const auto& entry : catalog.entries) {
    if (entry.kind == FaultKind::datastore_crash) {
      EXPECT_EQ(entry.targets.size(), topology.datastores.size());
    } else if (entry.kind != FaultKind::pool_exhaustion) {
      EXPECT_EQ(entry.targets.size(), topology.services.size());
    } else {
      EXPECT_GT(entry.targets.size(), topology.services.size() - 1);
    }
  }
}

TEST(Catalog, BadCataloguesNameThePlace) {
  const auto topology = model::load_topology(kTopology);
  const auto file = test_root() / "bad-catalog.json";
  fs::create_directories(file.parent_path());
  std::ofstream(file) << R"({"format": "catalog/v1", "faults": [
      {"kind": "latency", "targets": ["nosuchservice"]}]})";
  try {
    load_catalog(file, topology);
    FAIL() << "accepted an unknown target";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where().json_pointer, "/faults/0/targets/0");
  }
  std::ofstream(file) << R"({"format": "catalog/v1", "faults": [{"kind": "meteor"}]})";
  EXPECT_THROW(load_catalog(file, topology), InputError);
}

TEST(DrawCase, IsAFunctionOfSeedAndIndexWithinTheRanges) {
  const auto topology = model::load_topology(kTopology);
  const auto catalog = load_catalog(write_test_catalog(), topology);
  std::map<std::string, int> kinds;
  for (std::uint64_t i = 0; i < 200; ++i) {
    const auto a = draw_case(topology, catalog, 7, i);
    const auto b = draw_case(topology, catalog, 7, i);
    EXPECT_EQ(a.target, b.target);
    EXPECT_EQ(a.start_s, b.start_s);
    EXPECT_EQ(a.magnitude, b.magnitude);
    EXPECT_GE(a.start_s, 8.0);
    EXPECT_LE(a.start_s, 10.0);
    EXPECT_NEAR(a.end_s - a.start_s, 8.0, 1e-9);
    ++kinds[std::string(to_string(a.kind))];
  }
  EXPECT_EQ(kinds.size(), 3u);
  for (const auto& [kind, count] : kinds) EXPECT_GT(count, 40) << kind;
  EXPECT_NE(draw_case(topology, catalog, 8, 0).start_s, draw_case(topology, catalog, 7, 0).start_s);
}

// --- Through the binary ---------------------------------------------------------------------

class GenerateDataset : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    catalog_ = new fs::path(write_test_catalog());
    full_ = new fs::path(scratch("full"));
    ASSERT_EQ(doppel(fmt_args("--cases 6 --jobs 2 --seed 11 --trace-sample 0.2 --out " +
                              full_->string())),
              0);
  }
  static void TearDownTestSuite() {
    delete catalog_;
    delete full_;
  }
  static std::string fmt_args(const std::string& rest) {
    return "generate " + kTopology.string() + " --catalog " + catalog_->string() + " " + rest;
  }
  static fs::path* catalog_;
  static fs::path* full_;
};
fs::path* GenerateDataset::catalog_ = nullptr;
fs::path* GenerateDataset::full_ = nullptr;

TEST_F(GenerateDataset, WritesEveryCaseAndTheManifestInIndexOrder) {
  std::istringstream manifest(read_file(*full_ / "manifest.jsonl"));
  std::string line;
  std::uint64_t expected = 0;
  while (std::getline(manifest, line)) {
    const auto json = nlohmann::json::parse(line);
    EXPECT_EQ(json["index"], expected);
    EXPECT_EQ(json["dir"], case_dir_name(expected));
    EXPECT_EQ(json["seed"], 11);
    EXPECT_EQ(json["label"]["index"], expected);
    const auto dir = *full_ / case_dir_name(expected);
    for (const char* file : {"metrics.csv", "traces.csv", "logs.csv", "events.jsonl",
                             "inject_time.txt", "label.json"}) {
      EXPECT_TRUE(fs::is_regular_file(dir / file)) << dir / file;
    }
    EXPECT_TRUE(fs::is_directory(dir / "profiles"));
    EXPECT_FALSE(fs::exists(dir / "traces.otlp.jsonl"));  // only with --otlp
    EXPECT_EQ(std::stoll(read_file(dir / "inject_time.txt")),
              json["label"]["start_unix_s"].get<std::int64_t>());
    ++expected;
  }
  EXPECT_EQ(expected, 6u);
  for (const auto& entry : fs::directory_iterator(*full_)) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".tmp")) << entry.path();
  }
}

TEST_F(GenerateDataset, TracesAndLogsHaveTheRcaColumns) {
  const auto dir = *full_ / case_dir_name(0);
  std::istringstream traces(read_file(dir / "traces.csv"));
  std::string line;
  std::getline(traces, line);
  EXPECT_EQ(line,
            "traceID,spanID,parentSpanID,serviceName,operationName,startTime,duration,statusCode");
  int rows = 0;
  while (std::getline(traces, line)) {
    std::vector<std::string> cells;
    std::stringstream fields(line);
    std::string cell;
    while (std::getline(fields, cell, ',')) cells.push_back(cell);
    if (line.back() == ',') cells.push_back("");
    ASSERT_EQ(cells.size(), 8u) << line;
    EXPECT_EQ(cells[0].size(), 32u);
    EXPECT_EQ(cells[1].size(), 16u);
    EXPECT_TRUE(cells[2].empty() || cells[2].size() == 16u);
    EXPECT_GT(std::stoll(cells[5]), 1700000000LL * 1000000);
    EXPECT_GE(std::stoll(cells[6]), 0);
    ++rows;
  }
  EXPECT_GT(rows, 100);
  EXPECT_TRUE(read_file(dir / "logs.csv").starts_with("time,service,level,message\n"));
}

// The labelled root cause's own metrics deviate no later than any other service's.
TEST_F(GenerateDataset, LabelledRootCauseDeviatesFirstInTheMetrics) {
  int checked = 0;
  for (std::uint64_t index = 0; index < 6; ++index) {
    const auto dir = *full_ / case_dir_name(index);
    const auto label = nlohmann::json::parse(read_file(dir / "label.json"));
    const std::string root = label["root_cause"];
    const double inject = label["start_unix_s"].get<double>();

    std::istringstream metrics(read_file(dir / "metrics.csv"));
    std::string line;
    std::getline(metrics, line);
    std::vector<std::string> header;
    {
      std::stringstream fields(line);
      std::string cell;
      while (std::getline(fields, cell, ',')) header.push_back(cell);
    }
    std::vector<std::vector<double>> rows;
    while (std::getline(metrics, line)) {
      std::vector<double> row;
      std::stringstream fields(line + ",");
      std::string cell;
      while (std::getline(fields, cell, ',')) {
        row.push_back(cell.empty() ? std::numeric_limits<double>::quiet_NaN() : std::stod(cell));
      }
      rows.push_back(row);
    }
    auto column = [&](const std::string& name) -> int {
      for (std::size_t i = 0; i < header.size(); ++i) {
        if (header[i] == name) return static_cast<int>(i);
      }
      return -1;
    };
    // First row after the injection where errors, tail latency or load leave the baseline.
    auto first_deviation = [&](const std::string& component) -> double {
      const int err = column(component + "_err");
      int lat = column(component + "_lat_90");
      if (lat < 0) lat = column(component + "_lat_99");
      const int rps = column(component + "_rps");
      if (err < 0 || rps < 0) return std::numeric_limits<double>::infinity();
      double max_err = 0, max_lat = 0, sum_rps = 0;
      int baseline = 0;
      for (const auto& row : rows) {
        if (row[0] > inject) continue;
        max_err = std::max(max_err, row[err]);
        if (lat >= 0 && !std::isnan(row[lat])) max_lat = std::max(max_lat, row[lat]);
        sum_rps += row[rps];
        ++baseline;
      }
      const double mean_rps = baseline ? sum_rps / baseline : 0.0;
      for (const auto& row : rows) {
        if (row[0] <= inject) continue;
        const bool errors = row[err] > max_err + 0.05;
        const bool slow =
            lat >= 0 && max_lat > 0 && !std::isnan(row[lat]) && row[lat] > 1.5 * max_lat;
        const bool starved = mean_rps >= 2.0 && row[rps] < 0.5 * mean_rps;
        if (errors || slow || starved) return row[0];
      }
      return std::numeric_limits<double>::infinity();
    };
    const double root_time = first_deviation(root);
    ASSERT_TRUE(std::isfinite(root_time))
        << case_dir_name(index) << ": " << root << " never deviates";
    const auto topology = model::load_topology(kTopology);
    for (const auto& service : topology.services) {
      EXPECT_LE(root_time, first_deviation(service.name))
          << case_dir_name(index) << ": " << service.name << " deviates before " << root;
    }
    // The simulation's own record agrees: the root cause is the first affected component.
    const auto& affected = label["propagation"]["affected"];
    ASSERT_FALSE(affected.empty()) << case_dir_name(index);
    EXPECT_EQ(affected[0]["component"], root) << case_dir_name(index);
    EXPECT_FALSE(label["propagation"]["edges"].empty()) << case_dir_name(index);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST_F(GenerateDataset, ACaseRegeneratedAloneIsByteIdentical) {
  const auto alone = scratch("alone");
  ASSERT_EQ(doppel("generate-case " + kTopology.string() + " --catalog " + catalog_->string() +
                   " --index 4 --seed 11 --trace-sample 0.2 --out " + alone.string()),
            0);
  EXPECT_EQ(tree(alone / case_dir_name(4)), tree(*full_ / case_dir_name(4)));
}

TEST_F(GenerateDataset, ShardsNeverCollideAndMergeToTheUnshardedRun) {
  const auto shard0 = scratch("shard0");
  const auto shard1 = scratch("shard1");
  const auto merged = scratch("merged");
  ASSERT_EQ(doppel(fmt_args("--cases 6 --seed 11 --trace-sample 0.2 --shard 0/2 --out " +
                            shard0.string())),
            0);
  // The shard from the environment, as a Kubernetes Indexed Job sets it.
  ASSERT_EQ(
      std::system(("JOB_COMPLETION_INDEX=1 DOPPEL_SHARD_COUNT=2 " + std::string(DOPPEL_CLI) + " " +
                   fmt_args("--cases 6 --seed 11 --trace-sample 0.2 --out " + shard1.string()) +
                   " >/dev/null 2>&1")
                      .c_str()),
      0);
  for (std::uint64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(case_complete(shard0, i), i % 2 == 0) << i;
    EXPECT_EQ(case_complete(shard1, i), i % 2 == 1) << i;
  }
  ASSERT_EQ(doppel("generate merge " + shard0.string() + " " + shard1.string() + " --out " +
                   merged.string()),
            0);
  EXPECT_EQ(tree(merged), tree(*full_));
}

TEST_F(GenerateDataset, ResumeRedoesOnlyThePartialCase) {
  const auto resumed = scratch("resumed");
  fs::copy(*full_, resumed, fs::copy_options::recursive);
  // A run killed while writing case 3: its directory never got renamed.
  fs::rename(resumed / case_dir_name(3), resumed / (".tmp-" + case_dir_name(3)));
  fs::remove(resumed / ".tmp-case-000003" / "label.json");
  std::ofstream(resumed / ".tmp-case-000003" / "metrics.csv") << "time,half";
  write_manifest(resumed);
  EXPECT_EQ(read_file(resumed / "manifest.jsonl").find("case-000003"), std::string::npos);
  const auto untouched = fs::last_write_time(resumed / case_dir_name(0) / "metrics.csv");

  // Without --resume a directory holding cases is refused.
  EXPECT_EQ(doppel(fmt_args("--cases 6 --seed 11 --trace-sample 0.2 --out " + resumed.string())),
            2);
  ASSERT_EQ(
      doppel(fmt_args("--cases 6 --seed 11 --trace-sample 0.2 --resume --out " + resumed.string())),
      0);
  EXPECT_EQ(fs::last_write_time(resumed / case_dir_name(0) / "metrics.csv"), untouched);
  EXPECT_EQ(tree(resumed), tree(*full_));
}

}  // namespace
}  // namespace doppel::experiments
