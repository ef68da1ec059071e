// doppel demo: the main job on the bundled default topology.
#include <fmt/format.h>

#include "doppel/model/topology_loader.hpp"

#include "cli/bundled_files.hpp"
#include "cli/command.hpp"

namespace doppel::cli {

void add_demo_command(CLI::App& app, Action& action) {
  auto* demo = app.add_subcommand("demo", "Run the main job on the bundled Online Boutique twin");
  demo->callback([&action] {
    action = [] {
      const auto file = bundled_file("topologies/online-boutique.json");
      const auto topology = model::load_topology(file);
      fmt::print("Doppel demo: {} ({} services, {} datastores)\n", topology.name,
                 topology.services.size(), topology.datastores.size());
      return 0;
    };
  });
}

}  // namespace doppel::cli
