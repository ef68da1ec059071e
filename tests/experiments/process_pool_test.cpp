#include "doppel/experiments/process_pool.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <gtest/gtest.h>

namespace doppel::experiments {
namespace {

std::filesystem::path scratch_dir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("doppel-process-pool-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

ChildProcess shell(std::string script, std::filesystem::path output = {}) {
  return ChildProcess{{"-c", std::move(script)}, std::move(output)};
}

TEST(ProcessPool, ReportsEachChildsExitInInputOrder) {
  const std::vector<ChildProcess> children = {shell("exit 0"), shell("exit 3"), shell("kill -9 $$"),
                                              shell("exit 0")};
  std::vector<std::size_t> seen;
  const auto exits = run_children(
      "/bin/sh", children, 2, [&](std::size_t index, const ChildExit&) { seen.push_back(index); });
  ASSERT_EQ(exits.size(), 4u);
  EXPECT_TRUE(exits[0].ok());
  EXPECT_EQ(exits[1].exit_code, 3);
  EXPECT_EQ(exits[1].describe(), "exit code 3");
  EXPECT_EQ(exits[2].signal, 9);
  EXPECT_FALSE(exits[2].ok());
  EXPECT_TRUE(exits[3].ok());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::size_t>{0, 1, 2, 3}));
}

TEST(ProcessPool, SendsStdoutAndStderrToTheOutputFile) {
  const auto dir = scratch_dir();
  const auto log = dir / "child.log";
  const auto exits = run_children("/bin/sh", {shell("echo out; echo err >&2", log)}, 1);
  ASSERT_TRUE(exits.at(0).ok());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "out\nerr\n");
  std::filesystem::remove_all(dir);
}

TEST(ProcessPool, NeverRunsMoreThanJobsAtOnce) {
  // Each child takes a lock file exclusively with mkdir, which fails if another holds it.
  const auto dir = scratch_dir();
  const auto lock = (dir / "lock").string();
  const std::string script = "mkdir " + lock + " || exit 7; sleep 0.05; rmdir " + lock;
  const std::vector<ChildProcess> children(4, shell(script));
  for (const auto& exit : run_children("/bin/sh", children, 1)) EXPECT_TRUE(exit.ok());
  std::filesystem::remove_all(dir);
}

TEST(ProcessPool, RefusesAnExecutableThatCannotStart) {
  EXPECT_THROW(run_children("/nonexistent/doppel", {shell("exit 0")}, 1), std::runtime_error);
  EXPECT_THROW(run_children("/bin/sh", {shell("exit 0")}, 0), std::invalid_argument);
}

TEST(ProcessPool, DefaultJobsIsAtLeastOne) {
  EXPECT_GE(default_jobs(), 1);
}

}  // namespace
}  // namespace doppel::experiments
