// Traces as observed symptoms: OTLP, Jaeger or Zipkin files (the ingest readers) turned into
// the per-service series Doppel's metrics.csv has, so `doppel diagnose --observed` takes them
// like a metrics CSV (docs/diagnosis.md).
#pragma once

#include <filesystem>
#include <vector>

#include "doppel/experiments/symptoms.hpp"

namespace doppel::experiments {

struct TraceMetricsOptions {
  double window_s = 1.0;
  // The share of traces the files hold (head sampling): request rates are divided by it.
  double sample_ratio = 1.0;
};

// Per service, from its server (and consumer) spans, per window: <svc>_rps, <svc>_err,
// <svc>_lat_50, <svc>_lat_90, <svc>_lat_99 (ms, nearest rank). Times count from the start of
// the window holding the earliest span; a row is stamped with its window's end, as in
// metrics.csv. Windows without a span have rps 0 and err 0 and no latency point. Throws
// doppel::InputError for unusable files.
MetricSeries metrics_from_traces(const std::vector<std::filesystem::path>& files,
                                 const TraceMetricsOptions& options = {});

}  // namespace doppel::experiments
