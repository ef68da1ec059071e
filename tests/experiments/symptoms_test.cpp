#include "doppel/experiments/symptoms.hpp"

#include <cmath>
#include <sstream>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"
#include "doppel/telemetry/metrics_recorder.hpp"

namespace doppel::experiments {
namespace {

ObservedMetrics read_text(const std::string& text, const ReadMetricsOptions& options = {}) {
  std::istringstream in(text);
  return read_metrics_csv(in, "metrics.csv", options);
}

std::string error_of(const std::string& text, const ReadMetricsOptions& options = {}) {
  try {
    read_text(text, options);
  } catch (const InputError& error) {
    return error.what();
  }
  return "no error";
}

TEST(MetricsCsv, DoppelLayoutKeepsColumnNamesAndMakesTimeRelative) {
  const auto metrics = read_text(
      "time,checkout_lat_99,checkout_rps\n"
      "1700000001,12.5,100\n"
      "1700000002,,98\n"
      "1700000003,14,NaN\n");
  ASSERT_EQ(metrics.series.size(), 2U);
  EXPECT_DOUBLE_EQ(metrics.row_interval_s, 1.0);
  const auto& latency = metrics.series.at("checkout_lat_99");
  // The empty cell is a missing point, not a zero.
  ASSERT_EQ(latency.size(), 2U);
  EXPECT_DOUBLE_EQ(latency[0].t_s, 1.0);  // rows are stamped at their window's end
  EXPECT_DOUBLE_EQ(latency[0].value, 12.5);
  EXPECT_DOUBLE_EQ(latency[1].t_s, 3.0);
  EXPECT_EQ(metrics.series.at("checkout_rps").size(), 2U);
}

TEST(MetricsCsv, ReadsWhatDoppelsMetricsRecorderWrites) {
  const auto topology = model::load_topology(std::filesystem::path(DOPPEL_SOURCE_DIR) /
                                             "topologies" / "online-boutique.json");
  std::ostringstream csv;
  telemetry::MetricsRecorder recorder(topology, csv);
  const std::string service = topology.services.front().name;
  for (int i = 0; i < 40; ++i) {
    twin::SpanRecord span;
    span.kind = twin::SpanKind::server;
    span.service = service;
    span.operation = topology.services.front().operations.front().name;
    span.span_id = static_cast<std::uint64_t>(i + 1);
    span.start_s = 0.1 * i;
    span.end_s = span.start_s + 0.02;  // 20 ms each
    recorder.on_span(span);
  }
  recorder.on_run_end(4.0);
  const auto metrics = read_text(csv.str());
  // Every column of the recorder is a metric; the 4 one-second rows start at t = 1.
  EXPECT_EQ(metrics.series.size() + 1, recorder.columns().size());
  EXPECT_DOUBLE_EQ(metrics.row_interval_s, 1.0);
  const auto& latency = metrics.series.at(service + "_lat_99");
  ASSERT_EQ(latency.size(), 4U);
  EXPECT_DOUBLE_EQ(latency.front().t_s, 1.0);
  EXPECT_NEAR(latency.front().value, 20.0, 0.5);
  EXPECT_NEAR(metrics.series.at(service + "_rps").front().value, 10.0, 1e-9);
}

TEST(MetricsCsv, ExplicitTimeOrigin) {
  ReadMetricsOptions options;
  options.time_origin_s = 1700000000.0;
  const auto metrics = read_text("time,a_cpu\n1700000010,1\n1700000020,2\n", options);
  EXPECT_DOUBLE_EQ(metrics.series.at("a_cpu")[0].t_s, 10.0);
  EXPECT_DOUBLE_EQ(metrics.series.at("a_cpu")[1].t_s, 20.0);
}

TEST(MetricsCsv, RcaColumnsGoThroughTheMappingWithAliasesAndScale) {
  ReadMetricsOptions options;
  options.mapping = ColumnMapping::rca_default();
  options.mapping.service_aliases.emplace("cartsdb", "carts-db");
  const auto metrics = read_text(
      ",time,carts_cpu,carts_mem,carts_lat_50,carts_lat_90,carts_lod,cartsdb_cpu\n"
      "0,100,0.5,200,0.01,0.02,30,0.1\n"
      "1,101,0.6,210,0.01,0.03,31,0.2\n",
      options);
  for (const char* name :
       {"carts_cpu", "carts_mem", "carts_lat_50", "carts_lat_90", "carts_lod", "carts-db_cpu"}) {
    EXPECT_TRUE(metrics.series.contains(name)) << name;
  }
  EXPECT_EQ(metrics.series.size(), 6U);

  const auto mapping = parse_column_mapping(
      R"({"format":"doppel-column-mapping/v1",
          "rules":[{"pattern":"(.+)_lat_90","metric":"lat_90","scale":1000}],
          "include_rca_defaults":true, "drop_unmatched":true})",
      "mapping.json");
  options.mapping = mapping;
  const auto scaled = read_text("time,carts_lat_90,weird\n5,0.02,1\n6,0.03,2\n", options);
  EXPECT_DOUBLE_EQ(scaled.series.at("carts_lat_90")[0].value, 20.0);
  EXPECT_FALSE(scaled.series.contains("weird"));
  EXPECT_EQ(scaled.unmapped_columns, std::vector<std::string>{"weird"});
}

TEST(MetricsCsv, ErrorsNameTheFileAndLine) {
  EXPECT_EQ(error_of("a,b\n1,2\n"), "metrics.csv: line 1: no 'time' column in the header");
  EXPECT_EQ(error_of("time,a\n1,2\n2,3,4\n"),
            "metrics.csv: line 3: 3 cells, but the header has 2 columns");
  EXPECT_EQ(error_of("time,a\n1,2\n2,x\n"), "metrics.csv: line 3: column 'a': 'x' is not a number");
  EXPECT_EQ(error_of("time,a\n5,2\n4,3\n"),
            "metrics.csv: line 3: time 4 goes backwards (previous row: 5)");
  EXPECT_EQ(error_of(""), "metrics.csv: line 1: empty file: expected a header row");
  EXPECT_EQ(error_of("time,a\n\"1,2\n"), "metrics.csv: line 2: unterminated quoted cell");
  ReadMetricsOptions rca;
  rca.mapping = ColumnMapping::rca_default();
  EXPECT_EQ(error_of("time,x_lat,x_lat_50\n1,2,3\n", rca),
            "metrics.csv: line 1: columns 'x_lat' and 'x_lat_50' both map to metric 'x_lat_50'");
}

TEST(MetricsCsv, MissingFileIsAnInputError) {
  EXPECT_THROW(read_metrics_csv(std::filesystem::path("/nonexistent/metrics.csv")), InputError);
}

TEST(ColumnMapping, BadFilesAreReportedWithPointers) {
  const auto error = [](const std::string& text) {
    try {
      parse_column_mapping(text, "map.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(R"({"rules":[{"pattern":"x_cpu","metric":"cpu"}]})"),
            "map.json: /rules/0/pattern: needs a capture group for the service name, e.g. "
            "\"(.+)_cpu\"");
  EXPECT_EQ(error(R"({"rules":[{"pattern":"(","metric":"cpu"}]})"),
            "map.json: /rules/0/pattern: not a valid regular expression");
  EXPECT_EQ(error(R"({"rulez":[]})"), "map.json: /rulez: unknown key 'rulez'");
  EXPECT_EQ(error(R"({"format":"v2"})"),
            "map.json: /format: expected \"doppel-column-mapping/v1\"");
  EXPECT_EQ(error("{"), "map.json: byte 2: not valid JSON");
}

TEST(SymptomSpec, ParsesTheIssueExample) {
  const auto spec = parse_symptom_spec(
      R"({"symptoms":[{"service":"checkout","metric":"lat_99","op":">","value":2000,"from_s":300}]})",
      "spec.json");
  ASSERT_EQ(spec.symptoms.size(), 1U);
  const auto& symptom = spec.symptoms[0];
  EXPECT_EQ(symptom.metric_name(), "checkout_lat_99");
  EXPECT_TRUE(symptom.holds(2500));
  EXPECT_FALSE(symptom.holds(2000));
  EXPECT_EQ(symptom.describe(), "checkout_lat_99 > 2000 from t=300 s");
}

TEST(SymptomSpec, RejectsBadOpsWithPointer) {
  try {
    parse_symptom_spec(R"({"symptoms":[{"service":"a","metric":"err","op":"~","value":1}]})",
                       "spec.json");
    FAIL() << "no error";
  } catch (const InputError& error) {
    EXPECT_STREQ(error.what(),
                 "spec.json: /symptoms/0/op: unknown op '~': expected >, >=, < or <=");
  }
  EXPECT_THROW(parse_symptom_spec(R"({"symptoms":[]})", "spec.json"), InputError);
  EXPECT_THROW(
      parse_symptom_spec(R"({"symptoms":[{"service":"a","metric":"err","op":">"}]})", "spec.json"),
      InputError);
}

}  // namespace
}  // namespace doppel::experiments
