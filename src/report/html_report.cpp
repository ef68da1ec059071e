#include "doppel/report/html_report.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace doppel::report {
namespace detail {

std::string escape_html(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

namespace {

constexpr const char* kGateway = "(gateway)";

struct CallGraph {
  std::vector<std::string> nodes;  // gateway, services, datastores: topology order
  std::set<std::string> datastores;
  std::set<std::pair<std::size_t, std::size_t>> edges;  // caller -> callee, deduplicated
};

CallGraph call_graph(const model::Topology& topology) {
  CallGraph graph;
  std::map<std::string, std::size_t, std::less<>> index;
  const auto add = [&](const std::string& name) {
    if (index.emplace(name, graph.nodes.size()).second) graph.nodes.push_back(name);
  };
  const bool has_gateway =
      !topology.gateway.routes.empty() || topology.gateway.default_service.has_value();
  if (has_gateway) add(kGateway);
  for (const auto& service : topology.services) add(service.name);
  for (const auto& datastore : topology.datastores) {
    add(datastore.name);
    graph.datastores.insert(datastore.name);
  }
  const auto connect = [&](const std::string& from, const std::string& to) {
    const auto a = index.find(from);
    const auto b = index.find(to);
    if (a != index.end() && b != index.end() && a->second != b->second) {
      graph.edges.emplace(a->second, b->second);
    }
  };
  if (has_gateway) {
    for (const auto& route : topology.gateway.routes) connect(kGateway, route.service);
    if (topology.gateway.default_service) connect(kGateway, *topology.gateway.default_service);
  }
  for (const auto& service : topology.services) {
    for (const auto& operation : service.operations) {
      for (const auto& step : operation.steps) {
        for (const auto& call : step.calls) connect(service.name, call.to);
      }
    }
  }
  return graph;
}

// Longest-path layering by Kahn's algorithm; nodes left on a cycle (the loader rejects
// cycles, but a report must not hang on one) go below everything else.
std::vector<std::size_t> longest_path_layers(const CallGraph& graph) {
  const std::size_t n = graph.nodes.size();
  std::vector<std::size_t> layer(n, 0);
  std::vector<int> indegree(n, 0);
  std::vector<std::vector<std::size_t>> callees(n);
  for (const auto& [from, to] : graph.edges) {
    callees[from].push_back(to);
    ++indegree[to];
  }
  std::vector<std::size_t> ready;
  for (std::size_t v = 0; v < n; ++v) {
    if (indegree[v] == 0) ready.push_back(v);
  }
  std::vector<bool> placed(n, false);
  std::size_t deepest = 0;
  while (!ready.empty()) {
    const std::size_t v = ready.front();
    ready.erase(ready.begin());
    placed[v] = true;
    deepest = std::max(deepest, layer[v]);
    for (std::size_t w : callees[v]) {
      layer[w] = std::max(layer[w], layer[v] + 1);
      if (--indegree[w] == 0) ready.push_back(w);
    }
  }
  for (std::size_t v = 0; v < n; ++v) {
    if (!placed[v]) layer[v] = deepest + 1;
  }
  return layer;
}

// Round numbers for axis ticks: 1, 2 or 5 times a power of ten, about `count` of them.
std::vector<double> nice_ticks(double low, double high, int count) {
  if (!(high > low)) high = low + 1.0;
  const double raw = (high - low) / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

constexpr std::array<const char*, 8> kPalette = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                 "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string number(double value) {
  return fmt::format("{:.2f}", value);
}

}  // namespace

std::vector<std::vector<std::string>> topology_layers(const model::Topology& topology) {
  const CallGraph graph = call_graph(topology);
  const auto layer = longest_path_layers(graph);
  std::vector<std::vector<std::string>> layers;
  for (std::size_t v = 0; v < graph.nodes.size(); ++v) {
    if (layers.size() <= layer[v]) layers.resize(layer[v] + 1);
    layers[layer[v]].push_back(graph.nodes[v]);
  }
  return layers;
}

std::string svg_topology(const model::Topology& topology) {
  const CallGraph graph = call_graph(topology);
  const auto layer = longest_path_layers(graph);
  constexpr double kColumn = 190.0;
  constexpr double kRow = 56.0;
  constexpr double kBoxWidth = 150.0;
  constexpr double kBoxHeight = 32.0;
  constexpr double kMargin = 20.0;
  std::map<std::size_t, std::size_t> filled;  // layer -> nodes placed so far
  std::vector<std::pair<double, double>> position(graph.nodes.size());
  std::size_t tallest = 1;
  std::size_t layer_count = 1;
  for (std::size_t v = 0; v < graph.nodes.size(); ++v) {
    const std::size_t row = filled[layer[v]]++;
    position[v] = {kMargin + static_cast<double>(layer[v]) * kColumn,
                   kMargin + static_cast<double>(row) * kRow};
    tallest = std::max(tallest, row + 1);
    layer_count = std::max(layer_count, layer[v] + 1);
  }
  const double width = 2 * kMargin + static_cast<double>(layer_count - 1) * kColumn + kBoxWidth;
  const double height = 2 * kMargin + static_cast<double>(tallest - 1) * kRow + kBoxHeight;
  std::string svg = fmt::format(
      "<svg class=\"topology\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "role=\"img\" aria-label=\"call graph\">\n"
      "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" "
      "markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#666\"/></marker>"
      "</defs>\n",
      number(width), number(height));
  for (const auto& [from, to] : graph.edges) {
    const auto [x1, y1] = position[from];
    const auto [x2, y2] = position[to];
    svg += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\" stroke-width=\"1.2\" "
        "marker-end=\"url(#arrow)\"/>\n",
        number(x1 + kBoxWidth), number(y1 + kBoxHeight / 2), number(x2),
        number(y2 + kBoxHeight / 2));
  }
  for (std::size_t v = 0; v < graph.nodes.size(); ++v) {
    const auto [x, y] = position[v];
    const std::string& name = graph.nodes[v];
    const bool datastore = graph.datastores.contains(name);
    const bool gateway = name == kGateway;
    const char* fill = datastore ? "#fdf1d8" : gateway ? "#e8e8e8" : "#dcebf8";
    const char* stroke = datastore ? "#b7862b" : gateway ? "#777" : "#3b75af";
    svg += fmt::format(
        "<g class=\"node\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" "
        "fill=\"{}\" stroke=\"{}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
        "font-size=\"12\">{}</text></g>\n",
        number(x), number(y), number(kBoxWidth), number(kBoxHeight), datastore ? "12" : "4", fill,
        stroke, number(x + kBoxWidth / 2), number(y + kBoxHeight / 2 + 4),
        escape_html(name.size() > 22 ? name.substr(0, 21) + "\u2026" : name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string svg_line_chart(const LineChart& chart) {
  constexpr double kWidth = 640.0;
  constexpr double kHeight = 280.0;
  constexpr double kLeft = 64.0;
  constexpr double kRight = 16.0;
  constexpr double kTop = 30.0;
  constexpr double kBottom = 44.0;
  double x_low = std::numeric_limits<double>::infinity();
  double x_high = -x_low;
  double y_low = x_low;
  double y_high = -x_low;
  for (const auto& curve : chart.curves) {
    for (const auto& point : curve.points) {
      if (!std::isfinite(point.value) || !std::isfinite(point.t_s)) continue;
      x_low = std::min(x_low, point.t_s);
      x_high = std::max(x_high, point.t_s);
      y_low = std::min(y_low, point.value);
      y_high = std::max(y_high, point.value);
    }
  }
  if (chart.limit) {
    y_low = std::min(y_low, *chart.limit);
    y_high = std::max(y_high, *chart.limit);
  }
  if (!std::isfinite(x_low)) {
    x_low = 0.0;
    x_high = 1.0;
  }
  if (!std::isfinite(y_low)) {
    y_low = 0.0;
    y_high = 1.0;
  }
  // Non-negative data reads best from zero; a small headroom keeps the top line visible.
  if (y_low >= 0.0) y_low = 0.0;
  if (y_high <= y_low) y_high = y_low + 1.0;
  y_high += 0.05 * (y_high - y_low);
  if (x_high <= x_low) x_high = x_low + 1.0;

  const double plot_width = kWidth - kLeft - kRight;
  const double plot_height = kHeight - kTop - kBottom;
  const auto sx = [&](double x) { return kLeft + (x - x_low) / (x_high - x_low) * plot_width; };
  const auto sy = [&](double y) {
    return kTop + (1.0 - (y - y_low) / (y_high - y_low)) * plot_height;
  };

  std::string svg = fmt::format(
      "<svg class=\"chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" "
      "aria-label=\"{2}\">\n<text x=\"{3}\" y=\"18\" font-size=\"13\" "
      "font-weight=\"bold\">{2}</text>\n",
      number(kWidth), number(kHeight), escape_html(chart.title), number(kLeft));
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#333\"/>\n",
      number(kLeft), number(kTop), number(plot_width), number(plot_height));
  for (double tick : nice_ticks(x_low, x_high, 6)) {
    if (tick < x_low || tick > x_high) continue;
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/><text x=\"{0}\" "
        "y=\"{3}\" text-anchor=\"middle\" font-size=\"11\">{4:g}</text>\n",
        number(sx(tick)), number(kTop + plot_height), number(kTop + plot_height + 5),
        number(kTop + plot_height + 18), tick);
  }
  for (double tick : nice_ticks(y_low, y_high, 5)) {
    if (tick < y_low || tick > y_high) continue;
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{3}\" "
        "y=\"{4}\" text-anchor=\"end\" font-size=\"11\">{5:g}</text>\n",
        number(kLeft), number(kLeft + plot_width), number(sy(tick)), number(kLeft - 5),
        number(sy(tick) + 4), tick);
  }
  svg +=
      fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
                  number(kLeft + plot_width / 2), number(kHeight - 6), escape_html(chart.x_label));
  svg += fmt::format(
      "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" font-size=\"12\" "
      "transform=\"rotate(-90 14 {0})\">{1}</text>\n",
      number(kTop + plot_height / 2), escape_html(chart.y_label));
  if (chart.limit) {
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#c00\" stroke-dasharray=\"2 "
        "3\"/>"
        "<text x=\"{1}\" y=\"{3}\" text-anchor=\"end\" font-size=\"10\" fill=\"#c00\">{4}</text>\n",
        number(kLeft), number(kLeft + plot_width), number(sy(*chart.limit)),
        number(sy(*chart.limit) - 3), escape_html(chart.limit_label));
  }
  // The legend goes on top of the curves, on a translucent box in the top-right corner.
  constexpr double kLegendWidth = 196.0;
  const double legend_left = kLeft + plot_width - kLegendWidth - 4.0;
  std::string legend;
  if (!chart.curves.empty()) {
    legend += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" "
        "fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n",
        number(legend_left), number(kTop + 4.0), number(kLegendWidth),
        number(15.0 * static_cast<double>(chart.curves.size()) + 6.0));
  }
  for (std::size_t c = 0; c < chart.curves.size(); ++c) {
    const auto& curve = chart.curves[c];
    const char* colour = kPalette[c % kPalette.size()];
    // One polyline per unbroken run of finite points: a gap in the data stays a gap.
    std::string points;
    const auto flush = [&] {
      if (points.empty()) return;
      svg += fmt::format(
          "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{} points=\"{}\"/>\n", colour,
          curve.dashed ? " stroke-dasharray=\"6 4\"" : "", points);
      points.clear();
    };
    for (const auto& point : curve.points) {
      if (!std::isfinite(point.value) || !std::isfinite(point.t_s)) {
        flush();
        continue;
      }
      if (!points.empty()) points += ' ';
      points += number(sx(point.t_s)) + "," + number(sy(point.value));
    }
    flush();
    const double legend_y = kTop + 12.0 + 15.0 * static_cast<double>(c);
    const double legend_x = legend_left + 6.0;
    legend += fmt::format(
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2\"{4}/>"
        "<text x=\"{5}\" y=\"{6}\" font-size=\"11\">{7}</text>\n",
        number(legend_x), number(legend_y), number(legend_x + 22), colour,
        curve.dashed ? " stroke-dasharray=\"6 4\"" : "", number(legend_x + 27),
        number(legend_y + 4),
        escape_html(curve.label.size() > 28 ? curve.label.substr(0, 27) + "\u2026" : curve.label));
  }
  svg += legend;
  svg += "</svg>\n";
  return svg;
}

}  // namespace detail

namespace {

using detail::escape_html;

constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: bold; padding: 1px 6px; border-radius: 3px; }
.recommend { background: #d8f0d8; } .reject { background: #f6d6d6; } .review { background: #fbeec8; }
.charts svg { margin: 6px 12px 6px 0; } .muted { color: #666; }
.bar { display: inline-block; height: 10px; background: #3b75af; }
)";

std::string verdict_class(experiments::VerdictKind kind) {
  switch (kind) {
    case experiments::VerdictKind::recommend:
      return "recommend";
    case experiments::VerdictKind::reject_harmful:
    case experiments::VerdictKind::reject_ineffective:
      return "reject";
    case experiments::VerdictKind::needs_review:
      return "review";
  }
  return "review";
}

std::string list_or_dash(const std::vector<std::string>& items) {
  if (items.empty()) return "&ndash;";
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ", ") + escape_html(item);
  return text;
}

std::string interval_text(const experiments::FigureInterval& interval) {
  if (interval.replications == 0) return "no data";
  if (!std::isfinite(interval.lower))
    return fmt::format("{:.4g} (n={})", interval.mean, interval.replications);
  return fmt::format("{:.4g} [{:.4g}, {:.4g}] (n={})", interval.mean, interval.lower,
                     interval.upper, interval.replications);
}

void write_diagnosis(std::ostream& out, const ReportInput& input) {
  const auto& diagnosis = *input.diagnosis;
  out << "<h2>Ranked causes</h2>\n";
  out << fmt::format(
      "<p class=\"muted\">Window {:g}&ndash;{:g} s; metrics compared: {}, of which symptoms "
      "(deviating from the baseline): {}; not compared (absent on one side): {}. Posterior with "
      "a uniform prior; interval: {:g}% bootstrap.</p>\n",
      diagnosis.options.window_start_s, diagnosis.options.window_end_s, diagnosis.metrics.size(),
      std::count_if(diagnosis.metrics.begin(), diagnosis.metrics.end(),
                    [](const auto& m) { return m.symptom; }),
      diagnosis.ignored_metrics.size(), diagnosis.options.interval_level * 100.0);
  out << "<table class=\"ranking\"><tr><th>#</th><th>cause</th><th>probability</th>"
         "<th>interval</th><th>explains</th><th>contradicts</th><th>misses</th></tr>\n";
  int rank = 0;
  for (const auto& score : diagnosis.ranking) {
    out << fmt::format(
        "<tr><td class=\"num\">{}</td><td>{}{}<br><span class=\"muted\">{}</span></td>"
        "<td class=\"num\">{:.3f} <span class=\"bar\" style=\"width:{}px\"></span></td>"
        "<td class=\"num\">[{:.3f}, {:.3f}]</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        ++rank, escape_html(score.name), score.null_hypothesis ? " (null hypothesis)" : "",
        escape_html(score.description), score.posterior,
        static_cast<int>(std::lround(score.posterior * 80.0)), score.interval.lower,
        score.interval.upper, list_or_dash(score.explains), list_or_dash(score.contradicts),
        list_or_dash(score.misses));
  }
  out << "</table>\n";

  // Observed against the leaders' simulated means, symptom metrics first.
  std::vector<std::size_t> order;
  for (std::size_t m = 0; m < diagnosis.metrics.size(); ++m) {
    if (diagnosis.metrics[m].symptom) order.push_back(m);
  }
  for (std::size_t m = 0; m < diagnosis.metrics.size(); ++m) {
    if (!diagnosis.metrics[m].symptom) order.push_back(m);
  }
  if (static_cast<int>(order.size()) > input.max_metric_charts) {
    order.resize(static_cast<std::size_t>(std::max(0, input.max_metric_charts)));
  }
  if (order.empty()) return;
  out << "<h2>Observed vs simulated</h2>\n<div class=\"charts\">\n";
  const std::size_t leaders = std::min(
      diagnosis.ranking.size(), static_cast<std::size_t>(std::max(0, input.leading_candidates)));
  for (std::size_t m : order) {
    const auto& metric = diagnosis.metrics[m];
    LineChart chart;
    chart.title = metric.name + (metric.symptom ? " (symptom)" : "");
    chart.y_label = metric.name;
    Curve observed{"observed", {}, false};
    for (std::size_t b = 0; b < metric.bin_times_s.size(); ++b) {
      observed.points.push_back({metric.bin_times_s[b], metric.observed[b]});
    }
    const bool any_observed = std::any_of(metric.observed.begin(), metric.observed.end(),
                                          [](double v) { return std::isfinite(v); });
    if (any_observed) chart.curves.push_back(std::move(observed));
    for (std::size_t c = 0; c < leaders; ++c) {
      const auto& score = diagnosis.ranking[c];
      if (m >= score.simulated_mean.size()) continue;
      Curve simulated{fmt::format("#{} {}", c + 1, score.name), {}, true};
      for (std::size_t b = 0; b < metric.bin_times_s.size(); ++b) {
        simulated.points.push_back({metric.bin_times_s[b], score.simulated_mean[m][b]});
      }
      chart.curves.push_back(std::move(simulated));
    }
    out << detail::svg_line_chart(chart);
  }
  out << "</div>\n";
}

void write_fixes(std::ostream& out, const ReportInput& input) {
  out << "<h2>Fix verdicts</h2>\n";
  out << "<table class=\"verdicts\"><tr><th>fix</th><th>verdict</th><th>why</th></tr>\n";
  for (const auto& section : input.fixes) {
    const auto& verdict = section.verdict;
    out << fmt::format(
        "<tr><td>{}</td><td><span class=\"verdict {}\">{}</span></td><td>{}</td></tr>\n",
        escape_html(verdict.fix), verdict_class(verdict.kind),
        escape_html(experiments::to_string(verdict.kind)), escape_html(verdict.reason));
  }
  out << "</table>\n";
  for (const auto& section : input.fixes) {
    const auto& verdict = section.verdict;
    out << fmt::format("<h3>{} &mdash; <span class=\"verdict {}\">{}</span></h3>\n",
                       escape_html(verdict.fix), verdict_class(verdict.kind),
                       escape_html(experiments::to_string(verdict.kind)));
    out << "<table><tr><th>figure</th><th>limit</th><th>no cause</th><th>cause alone</th>"
           "<th>cause + fix</th><th>outcome</th></tr>\n";
    for (const auto& figure : verdict.figures) {
      out << fmt::format(
          "<tr><td>{}</td><td class=\"num\">{:g} {}</td><td class=\"num\">{}</td>"
          "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
          escape_html(figure.name), figure.limit, escape_html(figure.unit),
          figure.no_cause ? interval_text(*figure.no_cause) : "&ndash;",
          interval_text(figure.cause), interval_text(figure.fix), escape_html(figure.outcome));
    }
    out << "</table>\n";
    if (section.canary) {
      out << fmt::format(
          "<p>Canary stage ({} instance(s) of each service the fix changes, {:g}&ndash;{:g} s): "
          "{}</p>\n",
          section.canary->instances, section.canary->from_s, section.canary->to_s,
          escape_html(section.canary->finding));
    }
    if (!section.load_shifts.empty()) {
      out << "<p>Load the fix adds to a dependency (request rate after the fix):</p><ul>\n";
      for (const auto& shift : section.load_shifts) {
        out << fmt::format("<li>{}: {:.1f} req/s (no cause {:.1f}, cause alone {:.1f})</li>\n",
                           escape_html(shift.service), shift.fix_rps, shift.no_cause_rps,
                           shift.cause_rps);
      }
      out << "</ul>\n";
    }
    if (section.recommendation) {
      const auto& recommendation = *section.recommendation;
      out << fmt::format(
          "<p>Automation level: <b>{}</b>; human approval: {}.</p>\n",
          escape_html(experiments::to_string(recommendation.level)),
          recommendation.needs_human_approval
              ? "required" + (recommendation.approval_reasons.empty()
                                  ? std::string()
                                  : " (" + list_or_dash(recommendation.approval_reasons) + ")")
              : std::string("not required by the policy"));
      if (!recommendation.rollout.empty()) {
        out << "<p>Staged rollout (Doppel applies nothing; a person runs each stage):</p><ol>\n";
        for (const auto& stage : recommendation.rollout) {
          out << fmt::format("<li>{}; {}</li>\n", escape_html(stage.action),
                             escape_html(stage.check));
        }
        out << "</ol>\n";
      }
    }
    if (!section.charts.empty()) {
      out << "<div class=\"charts\">\n";
      for (const auto& chart : section.charts) out << detail::svg_line_chart(chart);
      out << "</div>\n";
    }
  }
}

}  // namespace

void write_html_report(std::ostream& out, const ReportInput& input) {
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<title>" << escape_html(input.title) << "</title>\n<style>" << kStyle
      << "</style>\n</head>\n<body>\n";
  out << "<h1>" << escape_html(input.title) << "</h1>\n";
  for (const auto& note : input.notes)
    out << "<p class=\"muted\">" << escape_html(note) << "</p>\n";
  if (input.topology != nullptr) {
    out << "<h2>Topology: " << escape_html(input.topology->name) << "</h2>\n"
        << "<p class=\"muted\">Calls point right; every component sits one column right of its "
           "deepest caller. Datastores have rounded corners.</p>\n"
        << detail::svg_topology(*input.topology);
  }
  if (input.diagnosis) write_diagnosis(out, input);
  if (!input.fixes.empty()) write_fixes(out, input);
  out << "</body>\n</html>\n";
}

void write_html_report(const std::filesystem::path& file, const ReportInput& input) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + file.string());
  write_html_report(out, input);
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace doppel::report
