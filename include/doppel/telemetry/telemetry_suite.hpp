// Everything a run writes to its output directory (`--out DIR`), wired to one twin run:
// metrics.csv, traces.otlp.jsonl, events.jsonl, summary.json and summary.txt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "doppel/model/topology.hpp"
#include "doppel/telemetry/summary_recorder.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::telemetry {

inline constexpr std::string_view kMetricsFileName = "metrics.csv";
inline constexpr std::string_view kTracesFileName = "traces.otlp.jsonl";
inline constexpr std::string_view kEventsFileName = "events.jsonl";
inline constexpr std::string_view kSummaryFileName = "summary.json";
inline constexpr std::string_view kSummaryTableFileName = "summary.txt";

struct TelemetryOptions {
  std::filesystem::path out_dir;
  double window_s = 1.0;                   // metrics.csv row width, simulated seconds
  double trace_sample_ratio = 0.01;        // share of traces written, decided per trace id
  std::int64_t epoch_unix_s = 1700000000;  // simulated time 0, in metrics and traces alike
  int metric_decimals = 6;
  bool idle_latency_as_zero = false;
  std::size_t max_open_traces = 100000;
  // Which files to write; the summary is computed (and returned by finish) regardless...
  bool write_metrics = true;
  bool write_traces = true;
  bool write_events = true;
  bool write_summary = true;
  // ...unless nobody reads it: with this and write_summary both false, no summary recorder
  // runs (its latency histograms cost ~4% of a generate case) and finish() returns an empty
  // Summary.
  bool compute_summary = true;
};

class TelemetrySuite {
 public:
  // Creates out_dir (with parents) and opens the files. Throws doppel::InputError naming the
  // path if it cannot, std::invalid_argument for bad options.
  TelemetrySuite(const model::Topology& topology, TelemetryOptions options);
  ~TelemetrySuite();
  TelemetrySuite(const TelemetrySuite&) = delete;
  TelemetrySuite& operator=(const TelemetrySuite&) = delete;

  // One observer forwarding every record to each recorder, for a twin that takes one.
  twin::TwinObserver& observer();
  // The recorders themselves, for a twin that takes a list.
  std::vector<twin::TwinObserver*> observers();

  // Writes what is still buffered, summary.json and summary.txt, and closes the files.
  // Throws std::runtime_error if a file could not be written. Later calls return the same
  // summary without writing again.
  const Summary& finish();

  const std::filesystem::path& out_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::telemetry
