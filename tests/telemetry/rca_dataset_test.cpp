// The RCA dataset writers on synthetic streams with known answers: traces.csv and logs.csv
// formats, the log rate limit, vector clocks ordering a call chain, folded profiles.
#include "doppel/telemetry/rca_dataset.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "telemetry/synthetic_stream.hpp"

namespace doppel::telemetry {
namespace {

using testing::client_span;
using testing::server_span;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// A chain front -> back: front's server span 1 makes client span 2, served by back's span 3.
struct Chain {
  twin::SpanRecord root = server_span("front", 1.0, 1.010);
  twin::SpanRecord call = client_span("front", "back", 1.002, 1.008);
  twin::SpanRecord served = server_span("back", 1.003, 1.007);
  Chain() {
    const twin::TraceId trace{0xabc, 0x123};
    root.trace_id = call.trace_id = served.trace_id = trace;
    root.span_id = 1;
    call.span_id = 2;
    call.parent_span_id = 1;
    call.operation = "get";
    served.span_id = 3;
    served.parent_span_id = 2;
    served.operation = "get";
  }
  // In the order the twin reports them: as they end.
  std::vector<twin::SpanRecord> in_end_order() const { return {served, call, root}; }
};

TEST(SpanCsvWriter, WritesOneRowPerSpanWithMicrosecondsAndStatus) {
  std::ostringstream out;
  SpanCsvWriter writer(out, 1.0, 1700000000);
  Chain chain;
  for (const auto& span : chain.in_end_order()) writer.on_span(span);
  auto failed = server_span("back", 2.0, 2.5, twin::Outcome::timeout);
  failed.trace_id = {0, 7};
  failed.span_id = 9;
  failed.parent_span_id = 4;
  writer.on_span(failed);

  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0],
            "traceID,spanID,parentSpanID,serviceName,operationName,startTime,duration,statusCode");
  EXPECT_EQ(lines[1],
            "0000000000000abc0000000000000123,0000000000000003,0000000000000002,back,get,"
            "1700000001003000,4000,200");
  EXPECT_EQ(
      lines[3],
      "0000000000000abc0000000000000123,0000000000000001,,front,op,1700000001000000,10000,200");
  EXPECT_EQ(lines[4],
            "00000000000000000000000000000007,0000000000000009,0000000000000004,back,op,"
            "1700000002000000,500000,504");
  EXPECT_EQ(writer.rows_written(), 4u);
}

TEST(SpanCsvWriter, SamplesWholeTraces) {
  std::ostringstream out;
  SpanCsvWriter writer(out, 0.0, 0);
  Chain chain;
  for (const auto& span : chain.in_end_order()) writer.on_span(span);
  EXPECT_EQ(writer.rows_written(), 0u);
  EXPECT_THROW(SpanCsvWriter(out, 1.5, 0), std::invalid_argument);
}

TEST(ServiceLogWriter, LogsFailuresAndBreakersAtTheServiceThatSeesThem) {
  std::ostringstream out;
  ServiceLogWriter logs(out, 1700000000);
  auto timeout = client_span("front", "back", 3.0, 3.5, 1, twin::Outcome::timeout);
  timeout.operation = "get";
  logs.on_span(timeout);
  logs.on_span(server_span("back", 3.0, 3.2, twin::Outcome::ok));  // nothing to say
  logs.on_event({4.25, "breaker_open", "front->back", {{"instance", "1"}}});
  logs.on_event({4.5, "fault_start", "back", {}});  // a service cannot see its fault
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "time,service,level,message");
  EXPECT_EQ(lines[1],
            "1700000003.500000,front,WARN,call to back get timed out after 500.0 ms (retry 1) "
            "trace_id=00000000000000000000000000000000");
  EXPECT_EQ(lines[2], "1700000004.250000,front,WARN,circuit breaker to back opened instance=1");
}

TEST(ServiceLogWriter, RateLimitsEachServicePerSecond) {
  std::ostringstream out;
  ServiceLogWriter logs(out, 0, 3);
  for (int i = 0; i < 10; ++i) {
    logs.on_span(server_span("back", 5.0, 5.0 + i * 0.01, twin::Outcome::rejected));
    logs.on_span(server_span("front", 5.0, 5.0 + i * 0.01, twin::Outcome::error));
  }
  logs.on_span(server_span("back", 6.0, 6.1, twin::Outcome::rejected));  // a new second
  EXPECT_EQ(logs.lines_written(), 7u);
  EXPECT_EQ(logs.lines_suppressed(), 14u);
  EXPECT_EQ(lines_of(out.str()).size(), 8u);
}

std::vector<nlohmann::json> events_of(const std::string& text) {
  std::vector<nlohmann::json> events;
  for (const auto& line : lines_of(text)) events.push_back(nlohmann::json::parse(line));
  return events;
}

// a happened before b: a's clock <= b's everywhere, and they differ.
bool happened_before(const nlohmann::json& a, const nlohmann::json& b) {
  bool less = false;
  for (const auto& [process, count] : a["clock"].items()) {
    const auto other = b["clock"].value(process, 0);
    if (count.get<int>() > other) return false;
    if (count.get<int>() < other) less = true;
  }
  for (const auto& [process, count] : b["clock"].items()) {
    if (!a["clock"].contains(process) && count.get<int>() > 0) less = true;
  }
  return less;
}

TEST(CausalEventLog, VectorClocksOrderACallChainAndConcurrentEvents) {
  std::ostringstream out;
  const auto topology = testing::small_topology();
  CausalEventLog log(topology, out, 1.0, 1700000000);
  Chain chain;
  for (const auto& span : chain.in_end_order()) log.on_span(span);
  log.on_event({1.0025, "fault_start", "db", {{"fault", "datastore_crash"}}});
  log.on_run_end(2.0);

  const auto events = events_of(out.str());
  ASSERT_EQ(events.size(), 5u);  // sent, received, response sent, response received, fault
  std::vector<std::string> kinds;
  for (const auto& e : events) kinds.push_back(e["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"request_sent", "fault_start", "request_received",
                                             "response_sent", "response_received"}));
  const auto& sent = events[0];
  const auto& fault = events[1];
  const auto& received = events[2];
  const auto& replied = events[3];
  const auto& back_home = events[4];
  EXPECT_EQ(sent["process"], "front");
  EXPECT_EQ(received["process"], "back");
  EXPECT_EQ(received["peer"], "front");
  EXPECT_EQ(fault["process"], "db");
  EXPECT_TRUE(happened_before(sent, received));
  EXPECT_TRUE(happened_before(received, replied));
  EXPECT_TRUE(happened_before(replied, back_home));
  EXPECT_TRUE(happened_before(sent, back_home));
  // The fault at db is concurrent with the whole exchange: no message links them.
  for (const auto* e : {&sent, &received, &replied, &back_home}) {
    EXPECT_FALSE(happened_before(fault, *e));
    EXPECT_FALSE(happened_before(*e, fault));
  }
  EXPECT_EQ(back_home["clock"], (nlohmann::json{{"front", 2}, {"back", 2}}));
}

TEST(CausalEventLog, EveryLineIsExactlyWhatNlohmannJsonWritesForIt) {
  // events.jsonl is written without building JSON objects: each line must still be, byte for
  // byte, nlohmann::json's dump() of its own content (sorted keys, its number and escape
  // formats), as it was when nlohmann wrote it. Names with escapes and UTF-8 included.
  auto topology = testing::small_topology();
  topology.services[1].name = "b\"a\\c\tk\x01";
  topology.datastores[0].name =
      "d\xc3\xa9"
      "b";  // "db" with an e-acute
  std::ostringstream out;
  CausalEventLog log(topology, out, 1.0, 1700000000);
  Chain chain;
  chain.call.peer = chain.served.service = topology.services[1].name;
  chain.call.operation = chain.served.operation = "g\"et";
  auto refused = client_span("front", topology.datastores[0].name, 1.0, 1.0000001, 0,
                             twin::Outcome::pool_timeout);
  refused.trace_id = chain.root.trace_id;
  refused.span_id = 4;
  refused.parent_span_id = 1;
  log.on_span(refused);
  for (const auto& span : chain.in_end_order()) log.on_span(span);
  for (double time_s : {0.1, 354.0, 1e-7, 123456789.125, 2.0 / 3.0}) {
    auto span = server_span("front", time_s, time_s + 1.0);
    span.trace_id = {7, 7};
    span.span_id = 10;
    span.parent_span_id = 9;
    log.on_span(span);
  }
  log.on_event({1.0025, "fault_start", "db", {{"fault", "datastore_crash"}}});
  log.on_run_end(2.0);

  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 1u + 4u + 10u + 1u);  // refused, the chain, 5 served, the fault
  for (const auto& line : lines) {
    EXPECT_EQ(nlohmann::json::parse(line).dump(), line);
  }
  EXPECT_NE(out.str().find("\"operation\":\"g\\\"et\""), std::string::npos);
  EXPECT_NE(out.str().find("\"time_s\":354.0,"), std::string::npos);
}

TEST(CausalEventLog, AResponseAfterTheCallerGaveUpIsNoCause) {
  std::ostringstream out;
  const auto topology = testing::small_topology();
  CausalEventLog log(topology, out, 1.0, 0);
  Chain chain;
  chain.call.end_s = 1.005;  // the caller timed out before back replied at 1.007
  chain.call.outcome = twin::Outcome::timeout;
  log.on_span(chain.call);
  log.on_span(chain.served);
  log.on_run_end(2.0);
  const auto events = events_of(out.str());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2]["kind"], "response_received");
  EXPECT_EQ(events[2]["outcome"], "timeout");
  EXPECT_EQ(events[3]["kind"], "response_sent");
  EXPECT_FALSE(happened_before(events[3], events[2]));
}

TEST(CpuProfileRecorder, FoldsOwnTimeAndCalleeTime) {
  const auto dir = std::filesystem::temp_directory_path() / "doppel-rca-profiles-test";
  std::filesystem::remove_all(dir);
  {
    CpuProfileRecorder profiles(dir);
    Chain chain;
    for (const auto& span : chain.in_end_order()) profiles.on_span(span);
    profiles.on_run_end(2.0);
  }
  auto read = [&](const char* name) {
    std::ifstream in(dir / name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  // front: 10 ms busy minus the 6 ms call; back: 4 ms, all its own.
  EXPECT_EQ(read("front.folded"), "front;op 4000\nfront;op;get 4000\n");
  EXPECT_EQ(read("back.folded"), "back;get 4000\n");
  std::filesystem::remove_all(dir);
}

TEST(RcaDatasetWriters, CreatesEveryFile) {
  const auto dir = std::filesystem::temp_directory_path() / "doppel-rca-writers-test";
  std::filesystem::remove_all(dir);
  const auto topology = testing::small_topology();
  {
    RcaDatasetWriters writers(topology, {dir, 1.0, 1700000000, 10});
    Chain chain;
    for (auto* observer : writers.observers()) {
      for (const auto& span : chain.in_end_order()) observer->on_span(span);
      observer->on_run_end(2.0);
    }
    writers.finish();
  }
  for (const char* file : {"traces.csv", "logs.csv", "events.jsonl", "profiles/front.folded"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(dir / file)) << file;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace doppel::telemetry
