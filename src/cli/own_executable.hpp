// The doppel binary that is running, to start more of itself: every simulation of an
// experiment runs in its own process (SimGrid's engine runs once per process).
#pragma once

#include <filesystem>
#include <system_error>

namespace doppel::cli {

inline std::filesystem::path own_executable(const char* fallback = "doppel") {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path(fallback) : path;
}

}  // namespace doppel::cli
