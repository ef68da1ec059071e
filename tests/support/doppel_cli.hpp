// The doppel binary as a test runs it, the way a user does: a command line in, its exit code
// and everything it printed out. DOPPEL_CLI (the binary) and DOPPEL_BINARY_DIR come from the
// test target's compile definitions.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

namespace doppel::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

inline CliResult run_doppel(const std::string& arguments) {
  const std::string command = std::string(DOPPEL_CLI) + " " + arguments + " 2>&1";
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) result.out += buffer.data();
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A file of the source tree (bundled topologies, scenarios, test data).
inline std::string source_path(const std::string& relative) {
  return std::string(DOPPEL_SOURCE_DIR) + "/" + relative;
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// An empty directory under the build tree's test-output/: `name` must be unique per test, as
// ctest runs tests as parallel processes.
inline std::filesystem::path fresh_test_dir(const std::string& name) {
  const auto dir = std::filesystem::path(DOPPEL_BINARY_DIR) / "test-output" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace doppel::testing
