// How the CLI's subcommands plug in: each command file registers its subcommands on the
// app; the one the user picked stores the action to run once parsing is done.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace doppel::cli {

// Returns the process exit code: 0 ok, 1 the job failed, 2 bad usage or bad input.
using Action = std::function<int()>;

void add_topology_commands(CLI::App& app, Action& action);
void add_demo_command(CLI::App& app, Action& action);
void add_run_command(CLI::App& app, Action& action);
void add_rehearse_command(CLI::App& app, Action& action);
void add_build_command(CLI::App& app, Action& action);
void add_generate_command(CLI::App& app, Action& action);
// diagnose, validate (and the hidden simulate they run)
void add_hypothesis_commands(CLI::App& app, Action& action);

}  // namespace doppel::cli
