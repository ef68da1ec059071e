// doppel: the command-line front of doppel_core. Each subcommand lives in its own file and
// registers itself here; this file only parses, dispatches and maps failures to exit codes.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "doppel/model/input_error.hpp"

#include "cli/command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Doppel: a digital twin of distributed systems for hypothesis testing"};
  app.set_version_flag("--version", std::string("doppel ") + DOPPEL_VERSION);
  app.require_subcommand(1);
  app.fallthrough();

  doppel::cli::Action action;
  doppel::cli::add_topology_commands(app, action);
  doppel::cli::add_run_command(app, action);
  doppel::cli::add_rehearse_command(app, action);
  doppel::cli::add_build_command(app, action);
  doppel::cli::add_demo_command(app, action);
  doppel::cli::add_generate_command(app, action);
  doppel::cli::add_hypothesis_commands(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  try {
    return action ? action() : 2;
  } catch (const doppel::InputError& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 2;
  } catch (const CLI::ValidationError& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "doppel: " << e.what() << '\n';
    return 1;
  }
}
