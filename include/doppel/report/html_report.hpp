// report.html: the evidence of a diagnosis and of fix verdicts as ONE self-contained file
// (inline CSS and SVG; no script, no font, no network), readable offline and attachable to a
// ticket. Layout and sections: docs/report.md.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/experiments/automation_policy.hpp"
#include "doppel/experiments/diagnosis.hpp"
#include "doppel/experiments/fix_validation.hpp"
#include "doppel/experiments/fix_verdict.hpp"
#include "doppel/model/topology.hpp"

namespace doppel::report {

struct Curve {
  std::string label;
  std::vector<experiments::SeriesPoint> points;  // NaN values break the line
  bool dashed = false;
};

struct LineChart {
  std::string title;
  std::string x_label = "time (s)";
  std::string y_label;
  std::vector<Curve> curves;
  std::optional<double> limit;  // a horizontal line: an SLO bound
  std::string limit_label = "limit";
};

// One fix: its verdict, what the policy makes of it, and before/after SLO curves over time
// (no cause, cause alone, cause + fix) when the caller has them.
struct FixSection {
  experiments::FixVerdict verdict;
  std::optional<experiments::Recommendation> recommendation;
  std::vector<LineChart> charts;
  // Services whose request rate under the fix differs from the healthy twin's.
  std::vector<experiments::LoadShift> load_shifts;
  // What the fix's canary stage showed (none: the fix is not staged).
  std::optional<experiments::CanaryCheck> canary;
};

struct ReportInput {
  std::string title = "Doppel report";
  std::vector<std::string> notes;  // one paragraph each: command line, inputs, seeds
  const model::Topology* topology = nullptr;
  std::optional<experiments::Diagnosis> diagnosis;
  int leading_candidates = 3;  // curves drawn for this many of the best candidates
  int max_metric_charts = 6;   // symptom metrics first
  std::vector<FixSection> fixes;
};

void write_html_report(std::ostream& out, const ReportInput& input);
// Writes report.html (or any path); throws std::runtime_error when the file cannot be written.
void write_html_report(const std::filesystem::path& file, const ReportInput& input);

namespace detail {

// &, <, >, " and ' as entities: safe in text and in quoted attributes.
std::string escape_html(std::string_view text);

// Components by layer: layer 0 holds the gateway (when it has routes) and everything nothing
// calls; every other component sits one layer below its deepest caller (longest path), so
// calls always point downwards. Names within a layer keep the topology's order.
std::vector<std::vector<std::string>> topology_layers(const model::Topology& topology);

std::string svg_topology(const model::Topology& topology);
std::string svg_line_chart(const LineChart& chart);

}  // namespace detail
}  // namespace doppel::report
