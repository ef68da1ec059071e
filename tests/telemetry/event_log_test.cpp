#include "doppel/telemetry/event_log.hpp"

#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace doppel::telemetry {
namespace {

TEST(EventLog, WritesOneObjectPerEventInOrder) {
  std::ostringstream out;
  EventLog log(out);
  log.on_event(twin::TwinEvent{
      12.5, "breaker_open", "web->api", {{"instance", "1"}, {"error_rate", "0.62"}}});
  log.on_event(twin::TwinEvent{13.0, "fault_start", "db", {}});
  log.on_run_end(20.0);
  EXPECT_EQ(log.events_written(), 2u);
  EXPECT_EQ(out.str(),
            "{\"time_s\":12.5,\"kind\":\"breaker_open\",\"component\":\"web->api\","
            "\"attributes\":{\"instance\":\"1\",\"error_rate\":\"0.62\"}}\n"
            "{\"time_s\":13.0,\"kind\":\"fault_start\",\"component\":\"db\",\"attributes\":{}}\n");
  std::istringstream lines(out.str());
  std::string line;
  while (std::getline(lines, line)) EXPECT_TRUE(nlohmann::json::accept(line)) << line;
}

TEST(EventLog, EscapesWhatJsonNeedsEscaped) {
  std::ostringstream out;
  EventLog log(out);
  log.on_event(twin::TwinEvent{0.0, "config_change", "a\"b", {{"path", "C:\\x\n"}}});
  const auto parsed = nlohmann::json::parse(out.str());
  EXPECT_EQ(parsed.at("component"), "a\"b");
  EXPECT_EQ(parsed.at("attributes").at("path"), "C:\\x\n");
}

}  // namespace
}  // namespace doppel::telemetry
