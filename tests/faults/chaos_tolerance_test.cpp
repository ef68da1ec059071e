// Tolerance rules, one by one, as chaostoolkit-lib's within_tolerance judges them.
#include <gtest/gtest.h>

#include "doppel/faults/chaos_toolkit.hpp"

namespace doppel::faults::chaos {
namespace {

using nlohmann::json;

json http(int status) {
  return {{"status", status}, {"headers", json::object()}, {"body", ""}};
}

TEST(Tolerance, BoolMatchesExactly) {
  EXPECT_TRUE(within_tolerance(true, true));
  EXPECT_FALSE(within_tolerance(true, false));
  EXPECT_TRUE(within_tolerance(true, 1)) << "Python: True == 1";
  EXPECT_FALSE(within_tolerance(true, "true"));
}

TEST(Tolerance, IntMatchesExactlyOrAgainstAStatus) {
  EXPECT_TRUE(within_tolerance(200, 200));
  EXPECT_TRUE(within_tolerance(200, 200.0));
  EXPECT_FALSE(within_tolerance(200, 503));
  EXPECT_TRUE(within_tolerance(200, http(200)));
  EXPECT_FALSE(within_tolerance(200, http(500)));
  EXPECT_FALSE(within_tolerance(0, json{{"exit", 0}})) << "a dict without status is not 0";
}

TEST(Tolerance, StringMatchesExactly) {
  EXPECT_TRUE(within_tolerance("ok", "ok"));
  EXPECT_FALSE(within_tolerance("ok", "OK"));
  EXPECT_FALSE(within_tolerance("200", 200));
}

TEST(Tolerance, TwoElementListIsAnInclusiveRange) {
  EXPECT_TRUE(within_tolerance(json::array({0, 400}), 0));
  EXPECT_TRUE(within_tolerance(json::array({0, 400}), 400));
  EXPECT_TRUE(within_tolerance(json::array({0, 400}), 123.5));
  EXPECT_FALSE(within_tolerance(json::array({0, 400}), 400.5));
  EXPECT_FALSE(within_tolerance(json::array({0, 400}), "100")) << "no str/int ordering";
}

TEST(Tolerance, TwoElementListAgainstAnHttpStatusIsMembership) {
  // As a range, 201 would be inside [200, 204]; against an HTTP probe's status it is not.
  EXPECT_TRUE(within_tolerance(json::array({200, 204}), http(204)));
  EXPECT_FALSE(within_tolerance(json::array({200, 204}), http(201)));
  EXPECT_TRUE(within_tolerance(json::array({200, 204}), 201)) << "a bare number: range";
}

TEST(Tolerance, OtherListsAreMembership) {
  EXPECT_TRUE(within_tolerance(json::array({200, 201, 204}), 204));
  EXPECT_FALSE(within_tolerance(json::array({200, 201, 204}), 202));
  EXPECT_TRUE(within_tolerance(json::array({"a", "b", "c"}), "b"));
  EXPECT_TRUE(within_tolerance(json::array({500, 502, 503}), http(503)));
}

TEST(Tolerance, FloatAndNullToleranceAreNeverMet) {
  EXPECT_FALSE(within_tolerance(0.5, 0.5));
  EXPECT_FALSE(within_tolerance(json(), json()));
}

TEST(Tolerance, RegexSearchesTheTargetedValue) {
  const json tolerance = {{"type", "regex"}, {"pattern", "^[0-9]+ items"}};
  EXPECT_TRUE(within_tolerance(tolerance, "12 items in cart"));
  EXPECT_FALSE(within_tolerance(tolerance, "no items"));
  const json on_body = {{"type", "regex"}, {"pattern", "healthy"}, {"target", "body"}};
  EXPECT_TRUE(within_tolerance(on_body, json{{"status", 200}, {"body", "all healthy"}}));
  EXPECT_FALSE(within_tolerance(on_body, json{{"status", 200}, {"body", "degraded"}}));
  EXPECT_FALSE(within_tolerance(tolerance, 12)) << "not a string";
}

TEST(Tolerance, JsonPathExpectAndCount) {
  const json body = json::parse(R"({"items": [{"id": "a", "qty": 2}, {"id": "b", "qty": 3}]})");
  EXPECT_TRUE(within_tolerance(
      json{{"type", "jsonpath"}, {"path", "$.items[0].qty"}, {"expect", 2}}, body));
  EXPECT_FALSE(within_tolerance(
      json{{"type", "jsonpath"}, {"path", "$.items[1].qty"}, {"expect", 2}}, body));
  EXPECT_TRUE(within_tolerance(
      json{{"type", "jsonpath"}, {"path", "$.items[*].id"}, {"expect", {"a", "b"}}}, body));
  EXPECT_TRUE(
      within_tolerance(json{{"type", "jsonpath"}, {"path", "$.items[*]"}, {"count", 2}}, body));
  EXPECT_FALSE(within_tolerance(json{{"type", "jsonpath"}, {"path", "$.missing"}}, body));
  // A body given as text is parsed, and target picks it out of an HTTP output.
  const json output = {{"status", 200}, {"body", body.dump()}};
  EXPECT_TRUE(within_tolerance(
      json{
          {"type", "jsonpath"}, {"path", "$['items'][-1].id"}, {"expect", "b"}, {"target", "body"}},
      output));
}

TEST(Tolerance, RangeDictReadsNumbersAndNumericStrings) {
  const json tolerance = {{"type", "range"}, {"range", {0.0, 0.01}}};
  EXPECT_TRUE(within_tolerance(tolerance, 0.005));
  EXPECT_TRUE(within_tolerance(tolerance, "0.01"));
  EXPECT_FALSE(within_tolerance(tolerance, 0.02));
  EXPECT_FALSE(within_tolerance(tolerance, "n/a"));
  EXPECT_TRUE(within_tolerance(json{{"type", "range"}, {"range", {200, 299}}, {"target", "status"}},
                               http(204)));
}

TEST(JsonPath, SupportsTheDocumentedSubsetOnly) {
  const json doc = json::parse(R"({"a": {"b": [10, 20, 30]}, "c": {"x": 1, "y": 2}})");
  EXPECT_EQ(*json_path_values("$.a.b[0]", doc), std::vector<json>{10});
  EXPECT_EQ(*json_path_values("$.a.b[-1]", doc), std::vector<json>{30});
  EXPECT_EQ(json_path_values("$.c.*", doc)->size(), 2u);
  EXPECT_EQ(*json_path_values("$", doc), std::vector<json>{doc});
  EXPECT_FALSE(json_path_values("$..b", doc).has_value());
  EXPECT_FALSE(json_path_values("$.a[?(@.b)]", doc).has_value());
  EXPECT_FALSE(json_path_values("a.b", doc).has_value());
}

}  // namespace
}  // namespace doppel::faults::chaos
