#include "doppel/telemetry/name_ids.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace doppel::telemetry {
namespace {

TEST(NameIds, DenseIdsInTheOrderNamesAreFirstSeen) {
  NameIds ids;
  EXPECT_EQ(ids.id("checkout"), 0u);
  EXPECT_EQ(ids.id("cart"), 1u);
  EXPECT_EQ(ids.id("checkout"), 0u);
  EXPECT_EQ(ids.id(""), 2u);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.name(1), "cart");
  EXPECT_EQ(ids.name(2), "");
}

TEST(NameIds, AnEmptyViewFirstIsANameLikeAnyOther) {
  // A default view (null, 0) must not match the cache's empty slots.
  NameIds ids;
  EXPECT_EQ(ids.id(std::string_view()), 0u);
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.id("get"), 1u);
  EXPECT_EQ(ids.id(std::string_view()), 0u);
  EXPECT_EQ(ids.id(""), 0u);
  EXPECT_EQ(ids.name(0), "");
}

TEST(NameIds, TheSameNameAtAnotherAddressHasTheSameId) {
  NameIds ids;
  const std::string first = "productcatalogservice";
  const std::string copy = first;
  ASSERT_NE(first.data(), copy.data());
  const std::size_t id = ids.id(first);
  EXPECT_EQ(ids.id(copy), id);
  EXPECT_EQ(ids.id(std::string_view(first)), id);
  // A prefix at the same address is another name.
  EXPECT_NE(ids.id(std::string_view(first).substr(0, 7)), id);
}

TEST(NameIds, StorageReusedForAnotherNameIsNotMistakenForTheFirst) {
  // The address cache must never answer for bytes that changed under it.
  NameIds ids;
  std::string buffer = "alpha";
  const std::size_t alpha = ids.id(buffer);
  buffer[0] = 'A';  // same address, same length, other content
  const std::size_t upper_alpha = ids.id(buffer);
  EXPECT_NE(upper_alpha, alpha);
  EXPECT_EQ(ids.name(upper_alpha), "Alpha");
  buffer[0] = 'a';
  EXPECT_EQ(ids.id(buffer), alpha);
}

TEST(NameIds, ManyNamesSharingCacheSlotsKeepTheirIds) {
  // Far more names than cache slots: collisions must cost time, never correctness.
  NameIds ids;
  std::vector<std::string> names;
  for (int i = 0; i < 2000; ++i) names.push_back(fmt::format("service-{}", i));
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      ASSERT_EQ(ids.id(names[i]), i) << names[i] << " round " << round;
    }
  }
  EXPECT_EQ(ids.size(), names.size());
}

}  // namespace
}  // namespace doppel::telemetry
