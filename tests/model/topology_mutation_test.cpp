// Property test: whatever a user does to a good file, loading it either succeeds (and the
// result survives the canonical round trip) or throws an InputError — never another
// exception, never a crash. Mutations are drawn from a fixed seed, so failures reproduce.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "doppel/model/distribution.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::model {
namespace {

using nlohmann::json;

std::string all_features_text() {
  std::ifstream in(std::filesystem::path(DOPPEL_SOURCE_DIR) /
                   "tests/data/topologies/all-features.json");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void collect_pointers(const json& value, const json::json_pointer& at,
                      std::vector<json::json_pointer>& out) {
  out.push_back(at);
  if (value.is_object()) {
    for (const auto& [key, member] : value.items()) collect_pointers(member, at / key, out);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) collect_pointers(value[i], at / i, out);
  }
}

json replacement(RandomStream& rng) {
  static const std::vector<json> kinds = {json(nullptr),
                                          json(true),
                                          json(-1),
                                          json(0),
                                          json(2.5),
                                          json(1e300),
                                          json(""),
                                          json("zone-a"),
                                          json("api"),
                                          json("x"),
                                          json::array(),
                                          json::object(),
                                          json::array({1, 2}),
                                          json({{"dist", "constant"}})};
  return kinds[rng.below(kinds.size())];
}

enum class Outcome { loaded, rejected };

Outcome load_mutant(const std::string& text) {
  try {
    const Topology t = parse_topology_text(text, "mutant.json");
    EXPECT_EQ(parse_topology(topology_to_json(t), "canonical"), t) << text;
    return Outcome::loaded;
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "mutant.json");
    EXPECT_FALSE(e.message().empty());
    return Outcome::rejected;
  }
}

TEST(TopologyMutation, StructuralMutantsLoadOrFailCleanly) {
  const json original = json::parse(all_features_text());
  std::vector<json::json_pointer> pointers;
  collect_pointers(original, json::json_pointer(), pointers);
  RandomStream rng(20240601);
  int rejected = 0;
  constexpr int kMutants = 3000;
  for (int i = 0; i < kMutants; ++i) {
    json mutant = original;
    const auto& target = pointers[1 + rng.below(pointers.size() - 1)];
    json& parent = mutant[target.parent_pointer()];
    if (parent.is_object() && rng.bernoulli(0.3)) {
      parent.erase(target.back());
    } else {
      mutant[target] = replacement(rng);
    }
    if (load_mutant(mutant.dump()) == Outcome::rejected) ++rejected;
  }
  // Most single changes break something; some (an optional field removed) are legal.
  EXPECT_GT(rejected, kMutants / 2);
  EXPECT_LT(rejected, kMutants);
}

TEST(TopologyMutation, TruncatedAndCorruptedTextFailsCleanly) {
  const std::string text = all_features_text();
  RandomStream rng(7);
  for (int i = 0; i < 1000; ++i) {
    std::string mutant = text;
    if (i % 2 == 0) {
      mutant.resize(rng.below(text.size()));
    } else {
      mutant[rng.below(text.size())] = static_cast<char>(rng.below(256));
    }
    load_mutant(mutant);
  }
}

}  // namespace
}  // namespace doppel::model
