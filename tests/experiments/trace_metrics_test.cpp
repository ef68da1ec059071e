#include "doppel/experiments/trace_metrics.hpp"

#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"

namespace doppel::experiments {
namespace {

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("doppel-trace-metrics-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name) << text;
  return dir / name;
}

// Zipkin v2: microseconds. Server spans of "cart" in two seconds, one with an error; a client
// span (not counted) and a span of "web".
const char* kSpans = R"([
  {"traceId": "a1", "id": "1", "kind": "SERVER", "name": "get", "timestamp": 1700000000100000,
   "duration": 10000, "localEndpoint": {"serviceName": "cart"}},
  {"traceId": "a2", "id": "2", "kind": "SERVER", "name": "get", "timestamp": 1700000000200000,
   "duration": 30000, "localEndpoint": {"serviceName": "cart"}, "tags": {"error": "boom"}},
  {"traceId": "a3", "id": "3", "kind": "SERVER", "name": "get", "timestamp": 1700000001500000,
   "duration": 20000, "localEndpoint": {"serviceName": "cart"}},
  {"traceId": "a3", "id": "4", "parentId": "3", "kind": "CLIENT", "name": "q",
   "timestamp": 1700000001501000, "duration": 5000, "localEndpoint": {"serviceName": "cart"}},
  {"traceId": "a4", "id": "5", "kind": "SERVER", "name": "home", "timestamp": 1700000000300000,
   "duration": 2000, "localEndpoint": {"serviceName": "web"}}
])";

TEST(TraceMetrics, ServerSpansBecomePerServiceSeries) {
  const auto file = write_file("spans.json", kSpans);
  const auto series = metrics_from_traces({file});
  ASSERT_TRUE(series.contains("cart_rps"));
  // The first window ends one second after the earliest span's second.
  const auto& rps = series.at("cart_rps");
  ASSERT_EQ(rps.size(), 2u);
  EXPECT_DOUBLE_EQ(rps[0].t_s, 1.0);
  EXPECT_DOUBLE_EQ(rps[0].value, 2.0);
  EXPECT_DOUBLE_EQ(rps[1].value, 1.0);
  EXPECT_DOUBLE_EQ(series.at("cart_err")[0].value, 0.5);
  EXPECT_DOUBLE_EQ(series.at("cart_err")[1].value, 0.0);
  EXPECT_NEAR(series.at("cart_lat_99")[0].value, 30.0, 1e-3);
  EXPECT_NEAR(series.at("cart_lat_50")[0].value, 10.0, 1e-3);
  EXPECT_NEAR(series.at("cart_lat_50")[1].value, 20.0, 1e-3);
  // "web" has no span in the second window: rate 0, no latency point.
  EXPECT_DOUBLE_EQ(series.at("web_rps")[1].value, 0.0);
  EXPECT_EQ(series.at("web_lat_50").size(), 1u);
}

TEST(TraceMetrics, RatesAreScaledBackUpBySampling) {
  const auto file = write_file("sampled.json", kSpans);
  TraceMetricsOptions options;
  options.sample_ratio = 0.5;
  EXPECT_DOUBLE_EQ(metrics_from_traces({file}, options).at("cart_rps")[0].value, 4.0);
}

TEST(TraceMetrics, UnusableFilesAreInputErrors) {
  const auto file = write_file("garbage.json", "{\"data\": [ {\"traceID\": ");
  EXPECT_THROW(metrics_from_traces({file}), InputError);
}

}  // namespace
}  // namespace doppel::experiments
