#include "doppel/experiments/trace_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "doppel/ingest/trace_reader.hpp"

namespace doppel::experiments {

namespace {

// What is kept of a span: enough to bin it, in a compact form (a trace file can hold
// millions of spans).
struct ServedSpan {
  std::int64_t end_ns = 0;
  float latency_ms = 0.0F;
  bool error = false;
};

class ServerSpans final : public ingest::SpanSink {
 public:
  void on_span(ingest::Span&& span) override {
    if (span.kind != ingest::SpanKind::server && span.kind != ingest::SpanKind::consumer) return;
    if (!span.has_start || !span.has_duration || span.service.empty()) return;
    by_service[span.service].push_back(
        {span.end_ns, static_cast<float>(double(span.duration_ns()) / 1e6), span.error});
    earliest_start_ns = std::min(earliest_start_ns, span.start_ns);
  }

  std::map<std::string, std::vector<ServedSpan>, std::less<>> by_service;
  std::int64_t earliest_start_ns = std::numeric_limits<std::int64_t>::max();
};

double nearest_rank(const std::vector<float>& sorted, double percentile) {
  const auto rank = static_cast<std::size_t>(std::ceil(percentile / 100.0 * double(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

MetricSeries metrics_from_traces(const std::vector<std::filesystem::path>& files,
                                 const TraceMetricsOptions& options) {
  if (!(options.window_s > 0.0) || !(options.sample_ratio > 0.0) || options.sample_ratio > 1.0) {
    throw std::invalid_argument("metrics_from_traces: window_s > 0 and 0 < sample_ratio <= 1");
  }
  ServerSpans spans;
  ingest::ReaderOptions reader;
  reader.check_structure = false;
  for (const auto& file : files) ingest::read_trace_file(file, spans, reader);

  MetricSeries series;
  if (spans.by_service.empty()) return series;
  const double window_ns = options.window_s * 1e9;
  const auto origin = static_cast<std::int64_t>(
      std::floor(double(spans.earliest_start_ns) / window_ns) * window_ns);
  std::int64_t last_window = 0;
  for (const auto& [service, served] : spans.by_service) {
    for (const auto& span : served) {
      last_window = std::max(last_window,
                             static_cast<std::int64_t>(double(span.end_ns - origin) / window_ns));
    }
  }
  for (auto& [service, served] : spans.by_service) {
    std::vector<std::vector<float>> latencies(static_cast<std::size_t>(last_window) + 1);
    std::vector<std::size_t> errors(latencies.size(), 0);
    for (const auto& span : served) {
      const auto w = static_cast<std::size_t>(double(span.end_ns - origin) / window_ns);
      latencies[w].push_back(span.latency_ms);
      errors[w] += span.error ? 1 : 0;
    }
    TimeSeries rps, err, p50, p90, p99;
    for (std::size_t w = 0; w < latencies.size(); ++w) {
      const double t = double(w + 1) * options.window_s;
      auto& window = latencies[w];
      rps.push_back({t, double(window.size()) / options.window_s / options.sample_ratio});
      err.push_back({t, window.empty() ? 0.0 : double(errors[w]) / double(window.size())});
      if (window.empty()) continue;
      std::sort(window.begin(), window.end());
      p50.push_back({t, nearest_rank(window, 50.0)});
      p90.push_back({t, nearest_rank(window, 90.0)});
      p99.push_back({t, nearest_rank(window, 99.0)});
    }
    series[service + "_rps"] = std::move(rps);
    series[service + "_err"] = std::move(err);
    series[service + "_lat_50"] = std::move(p50);
    series[service + "_lat_90"] = std::move(p90);
    series[service + "_lat_99"] = std::move(p99);
  }
  return series;
}

}  // namespace doppel::experiments
