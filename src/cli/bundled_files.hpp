// Where the bundled topologies and scenarios are: beside the working directory when run from
// a checkout (tools/demo does), else in the source tree the binary was built from.
#pragma once

#include <filesystem>
#include <string>

namespace doppel::cli {

inline std::filesystem::path bundled_file(const std::string& relative) {
  if (std::filesystem::exists(relative)) return relative;
  return std::filesystem::path(DOPPEL_DATA_DIR) / relative;
}

}  // namespace doppel::cli
