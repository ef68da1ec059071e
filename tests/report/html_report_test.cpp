#include "doppel/report/html_report.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "doppel/model/topology_loader.hpp"

namespace doppel::report {
namespace {

namespace fs = std::filesystem;

model::Topology bundled_topology() {
  return model::load_topology(fs::path(DOPPEL_SOURCE_DIR) / "topologies" / "online-boutique.json");
}

experiments::MetricSeries step_series(const std::string& name, double base, double incident,
                                      double wobble) {
  experiments::MetricSeries series;
  for (int t = 1; t <= 120; ++t) {
    const double level = t >= 60 ? incident : base;
    series[name].push_back({static_cast<double>(t), level + wobble * ((t * 7) % 5 - 2)});
  }
  return series;
}

experiments::Diagnosis sample_diagnosis() {
  std::vector<experiments::CandidateRuns> candidates;
  const std::vector<std::pair<std::string, double>> incidents = {
      {"pool <exhaustion> & \"friends\"", 600}, {"cpu-stress@cartservice", 300}, {"no fault", 100}};
  for (const auto& [name, level] : incidents) {
    experiments::CandidateRuns runs;
    runs.name = name;
    runs.description = "synthetic <b>candidate</b>";
    runs.null_hypothesis = name == "no fault";
    for (int r = 0; r < 3; ++r) {
      runs.replications.push_back(step_series("checkoutservice_lat_99", 100, level, 3.0 + r));
    }
    candidates.push_back(std::move(runs));
  }
  experiments::DiagnosisOptions options;
  options.window_start_s = 60;
  options.window_end_s = 120;
  options.bootstrap_samples = 40;
  return experiments::diagnose(step_series("checkoutservice_lat_99", 100, 580, 4.0), candidates,
                               options);
}

FixSection sample_fix() {
  experiments::ArmResults no_cause;
  experiments::ArmResults cause;
  experiments::ArmResults fix;
  no_cause.figures.push_back({"route checkout p99 latency",
                              experiments::Figure::Kind::slo,
                              "ms",
                              500,
                              {200, 210, 205},
                              {}});
  cause.figures.push_back({"route checkout p99 latency",
                           experiments::Figure::Kind::slo,
                           "ms",
                           500,
                           {2400, 2500, 2450},
                           {}});
  fix.figures.push_back({"route checkout p99 latency",
                         experiments::Figure::Kind::slo,
                         "ms",
                         500,
                         {220, 230, 225},
                         {}});
  FixSection section;
  section.verdict = experiments::judge_fix("rollback <v2>", &no_cause, cause, fix);
  experiments::FixAction action;
  action.name = "rollback <v2>";
  action.kind = "rollback";
  action.targets.push_back({"checkoutservice", false, 1, 3});
  section.recommendation = experiments::recommend(section.verdict, action, {});
  section.load_shifts.push_back({"orders-db", 40.0, 60.0, 95.0});
  experiments::CanaryCheck canary;
  canary.instances = 1;
  canary.from_s = 35;
  canary.to_s = 45;
  canary.finding = "stop at the canary: on 1 instance(s) it already breaks <db>";
  section.canary = canary;
  LineChart chart;
  chart.title = "route checkout p99 over time";
  chart.y_label = "ms";
  chart.limit = 500;
  chart.limit_label = "SLO 500 ms";
  for (const auto& [label, level] : std::vector<std::pair<std::string, double>>{
           {"no cause", 200}, {"cause", 2450}, {"cause + fix", 225}}) {
    Curve curve{label, {}, label != "cause"};
    for (int t = 0; t <= 100; t += 10)
      curve.points.push_back({static_cast<double>(t), t < 30 ? 200 : level});
    chart.curves.push_back(curve);
  }
  section.charts.push_back(chart);
  return section;
}

std::string render(const model::Topology& topology) {
  ReportInput input;
  input.title = "Diagnosis of <incident>";
  input.notes.push_back("doppel diagnose topologies/online-boutique.json --observed x.csv");
  input.topology = &topology;
  input.diagnosis = sample_diagnosis();
  input.fixes.push_back(sample_fix());
  std::ostringstream out;
  write_html_report(out, input);
  return out.str();
}

// Every <svg> element's tags nest properly and every attribute value is quoted: the inline
// SVG is well-formed XML apart from HTML's entity set, which it does not use.
void expect_well_formed_svg(const std::string& html, int minimum_svgs = 3) {
  std::size_t searched = 0;
  int charts = 0;
  while (true) {
    const auto start = html.find("<svg", searched);
    if (start == std::string::npos) break;
    const auto end = html.find("</svg>", start);
    ASSERT_NE(end, std::string::npos);
    const std::string svg = html.substr(start, end + 6 - start);
    searched = end + 6;
    ++charts;
    std::vector<std::string> open;
    const std::regex tag(R"(<(/?)([a-zA-Z]+)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<>]*")*)\s*(/?)>)");
    std::size_t consumed = 0;
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator();
         ++it) {
      const auto& match = *it;
      // Between tags only text: no stray '<' that the regex could not read as a tag.
      const std::string between =
          svg.substr(consumed, static_cast<std::size_t>(match.position()) - consumed);
      EXPECT_EQ(between.find('<'), std::string::npos) << between;
      consumed = static_cast<std::size_t>(match.position() + match.length());
      const std::string name = match[2];
      if (match[1] == "/") {
        ASSERT_FALSE(open.empty()) << "closing " << name << " with nothing open";
        EXPECT_EQ(open.back(), name);
        open.pop_back();
      } else if (match[4] != "/") {
        open.push_back(name);
      }
    }
    EXPECT_TRUE(open.empty()) << "unclosed <" << (open.empty() ? "" : open.back()) << ">";
    EXPECT_EQ(consumed, svg.size());
  }
  // By default: the topology, one observed-vs-simulated chart, one fix chart.
  EXPECT_GE(charts, minimum_svgs);
}

TEST(HtmlReport, SelfContainedWellFormedAndEscaped) {
  const auto topology = bundled_topology();
  const std::string html = render(topology);
  expect_well_formed_svg(html);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  // Every candidate is in the table, escaped; raw markup from names never reaches the page.
  EXPECT_NE(html.find("pool &lt;exhaustion&gt; &amp; &quot;friends&quot;"), std::string::npos);
  EXPECT_NE(html.find("cpu-stress@cartservice"), std::string::npos);
  EXPECT_NE(html.find("no fault"), std::string::npos);
  EXPECT_EQ(html.find("<exhaustion>"), std::string::npos);
  EXPECT_EQ(html.find("<b>candidate</b>"), std::string::npos);
  EXPECT_NE(html.find("Diagnosis of &lt;incident&gt;"), std::string::npos);
  // Every service and datastore of the topology is a node of the graph.
  for (const auto& service : topology.services) {
    EXPECT_NE(html.find(">" + service.name + "<"), std::string::npos) << service.name;
  }
  for (const auto& datastore : topology.datastores) {
    EXPECT_NE(html.find(">" + datastore.name + "<"), std::string::npos) << datastore.name;
  }
  EXPECT_NE(html.find("rollback &lt;v2&gt;"), std::string::npos);
  EXPECT_NE(html.find("Staged rollout"), std::string::npos);
  EXPECT_NE(
      html.find("Canary stage (1 instance(s) of each service the fix changes, 35&ndash;45 s): "
                "stop at the canary: on 1 instance(s) it already breaks &lt;db&gt;"),
      std::string::npos);
  EXPECT_NE(html.find("<li>orders-db: 95.0 req/s (no cause 40.0, cause alone 60.0)</li>"),
            std::string::npos);
  EXPECT_NE(html.find("SLO 500 ms"), std::string::npos);
}

TEST(HtmlReport, SymptomSpecDiagnosisWithoutObservedCurvesHasNoNan) {
  // A symptom spec has no observed series: charts show the simulated means only.
  const auto spec = experiments::parse_symptom_spec(
      R"({"symptoms":[{"service":"checkoutservice","metric":"lat_99","op":">","value":400,
                        "from_s":70}]})",
      "spec.json");
  std::vector<experiments::CandidateRuns> candidates(2);
  candidates[0].name = "slow";
  candidates[1].name = "fine";
  for (int r = 0; r < 2; ++r) {
    candidates[0].replications.push_back(step_series("checkoutservice_lat_99", 100, 600, 2));
    candidates[1].replications.push_back(step_series("checkoutservice_lat_99", 100, 100, 2));
  }
  experiments::DiagnosisOptions options;
  options.window_start_s = 60;
  options.window_end_s = 120;
  ReportInput input;
  input.diagnosis = experiments::diagnose(spec, candidates, options);
  std::ostringstream out;
  write_html_report(out, input);
  const std::string html = out.str();
  expect_well_formed_svg(html, 1);
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf"), std::string::npos);
  EXPECT_LT(html.find(">slow<"), html.find(">fine<"));
}

TEST(HtmlReport, LayersFollowTheLongestCallPath) {
  // front calls mid and db; mid calls db; the gateway routes to front.
  const auto call = [](std::string to, std::string operation) {
    model::Call c;
    c.to = std::move(to);
    c.operation = std::move(operation);
    model::Step step;
    step.calls.push_back(c);
    return step;
  };
  model::Topology topology;
  topology.name = "chain";
  model::Service front;
  front.name = "front";
  front.operations.push_back({"get", {}, 0.0, {call("mid", "get"), call("db", "q")}});
  model::Service mid;
  mid.name = "mid";
  mid.operations.push_back({"get", {}, 0.0, {call("db", "q")}});
  topology.services = {front, mid};
  model::Datastore db;
  db.name = "db";
  topology.datastores = {db};
  model::Route route;
  route.name = "r";
  route.service = "front";
  route.operation = "get";
  topology.gateway.routes.push_back(route);
  const auto layers = detail::topology_layers(topology);
  // db is called by front directly but sits below mid, its deepest caller.
  const std::vector<std::vector<std::string>> expected = {
      {"(gateway)"}, {"front"}, {"mid"}, {"db"}};
  EXPECT_EQ(layers, expected);
}

TEST(HtmlReport, LineChartBreaksAtGapsAndHasAxesAndLegend) {
  LineChart chart;
  chart.title = "t";
  chart.y_label = "ms";
  chart.curves.push_back({"a", {{0, 1}, {1, 2}, {2, std::nan("")}, {3, 4}, {4, 5}}, false});
  const std::string svg = detail::svg_line_chart(chart);
  std::size_t polylines = 0;
  for (auto at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++polylines;
  }
  EXPECT_EQ(polylines, 2U);
  EXPECT_NE(svg.find(">time (s)<"), std::string::npos);
  EXPECT_NE(svg.find(">ms<"), std::string::npos);
  EXPECT_NE(svg.find(">a<"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(HtmlReport, RendersInHeadlessChromium) {
  const fs::path chromium = "/usr/bin/chromium";
  if (!fs::exists(chromium)) {
    GTEST_SKIP() << "/usr/bin/chromium is not installed (apt-get install -y chromium): the "
                    "render check of report.html is skipped";
  }
  const auto topology = bundled_topology();
  const fs::path dir = fs::path(DOPPEL_BINARY_DIR) / "report-render-test";
  fs::remove_all(dir);
  fs::create_directories(dir / "profile");
  const fs::path html = dir / "report.html";
  const fs::path png = dir / "report.png";
  {
    std::ofstream out(html);
    out << render(topology);
  }
  const std::string command = fmt::format(
      "timeout 120 {} --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir={} "
      "--window-size=1200,2400 --screenshot={} file://{} > {} 2>&1",
      chromium.string(), (dir / "profile").string(), png.string(), html.string(),
      (dir / "chromium.log").string());
  ASSERT_EQ(std::system(command.c_str()), 0) << "see " << (dir / "chromium.log").string();
  ASSERT_TRUE(fs::exists(png));
  // A blank page compresses to a few kB; charts, tables and text take far more.
  EXPECT_GT(fs::file_size(png), 40000U);
}

}  // namespace
}  // namespace doppel::report
