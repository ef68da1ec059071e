#include "doppel/telemetry/span_id_map.hpp"

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace doppel::telemetry::detail {
namespace {

TEST(SpanIdMap, FindsInsertsAndErases) {
  SpanIdMap<int> map;
  EXPECT_EQ(map.find(7), nullptr);
  map[7] = 70;
  map[0] = 1;  // 0 is an id like any other
  ASSERT_NE(map.find(7), nullptr);
  EXPECT_EQ(*map.find(7), 70);
  EXPECT_EQ(*map.find(0), 1);
  bool inserted = true;
  EXPECT_EQ(map.get(7, inserted), 70);
  EXPECT_FALSE(inserted);
  map.erase(7);
  map.erase(12345);  // absent: nothing happens
  EXPECT_EQ(map.find(7), nullptr);
  EXPECT_EQ(map.size(), 1u);
  map.clear();
  EXPECT_EQ(map.find(0), nullptr);
}

TEST(SpanIdMap, AgreesWithStdMapThroughGrowthAndErasure) {
  // Spans in flight come and go: consecutive ids (the twin's counters) and random ones,
  // inserted and erased in mixed order, many times the initial table size.
  std::mt19937_64 random(11);
  SpanIdMap<std::vector<int>> map;
  std::map<std::uint64_t, std::vector<int>> reference;
  std::uint64_t next_id = 1;
  for (int step = 0; step < 200000; ++step) {
    const auto choice = random() % 10;
    std::uint64_t key = 0;
    if (choice < 4) {
      key = next_id++;
    } else if (choice < 6) {
      key = random();
    } else if (!reference.empty()) {
      auto it = reference.lower_bound(random() % next_id);
      if (it == reference.end()) it = reference.begin();
      key = it->first;
    }
    if (choice < 7) {
      map[key].push_back(step);
      reference[key].push_back(step);
    } else {
      map.erase(key);
      reference.erase(key);
    }
    ASSERT_EQ(map.size(), reference.size()) << "step " << step;
  }
  for (const auto& [key, values] : reference) {
    const auto* found = map.find(key);
    ASSERT_NE(found, nullptr) << key;
    EXPECT_EQ(*found, values) << key;
  }
  for (std::uint64_t key = next_id; key < next_id + 1000; ++key) EXPECT_EQ(map.find(key), nullptr);
}

}  // namespace
}  // namespace doppel::telemetry::detail
