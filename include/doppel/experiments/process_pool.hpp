// Child processes of the doppel binary, a few at a time. The SimGrid engine runs once per
// process, so every experiment made of several simulations (replications, candidates, cases)
// runs each one as a child and reads what it wrote.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace doppel::experiments {

struct ChildProcess {
  std::vector<std::string> arguments;  // after the executable
  // The child's stdout and stderr go to this file (truncated); empty: /dev/null.
  std::filesystem::path output_file;
};

struct ChildExit {
  int exit_code = 0;  // -1 when killed by a signal
  int signal = 0;     // the signal that killed it, 0 otherwise

  bool ok() const { return exit_code == 0 && signal == 0; }
  std::string describe() const;  // "exit code 2", "killed by signal 9 (Killed)"
};

// Runs every child, at most `jobs` at once, and waits for all of them. `on_exit` is called
// from the calling thread as each child ends (completion order), with the child's index.
// Returns the exits in input order. Throws std::runtime_error when a child cannot be started
// (after waiting for the ones already running) and std::invalid_argument when jobs < 1.
std::vector<ChildExit> run_children(
    const std::filesystem::path& executable, const std::vector<ChildProcess>& children, int jobs,
    const std::function<void(std::size_t index, const ChildExit& exit)>& on_exit = {});

// The default --jobs: the hardware threads of this machine, at least 1.
int default_jobs();

}  // namespace doppel::experiments
