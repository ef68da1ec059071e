// What SimGrid 3.32 itself costs per elementary operation (simgrid_floor.cpp): the floor under
// any actor-based engine, docs/performance.md "Twin engine".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace doppel::bench {

// The primitives measured; each names one pattern, repeated `count` times.
const std::vector<std::string>& floor_primitives();

// Runs one primitive in this process's SimGrid engine (once per process) and returns how many
// operations ran; throws std::invalid_argument for an unknown name.
std::uint64_t run_floor_primitive(const std::string& name, std::uint64_t count);

}  // namespace doppel::bench
