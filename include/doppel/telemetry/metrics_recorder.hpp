// metrics.csv: what a metrics backend (Prometheus scraping cAdvisor and a service mesh) would
// show of a twin run, as one row per window of simulated time in the wide layout RCA
// datasets use (RCAEval, RCD): `time,<service>_<metric>,...`. Every column is documented in
// docs/telemetry.md.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::telemetry {

struct MetricsOptions {
  // Row width in simulated seconds. The twin should snapshot at the same interval: gauge and
  // CPU columns come from the snapshot taken at a window's end.
  double window_s = 1.0;
  // `time` = epoch + window end, in Unix seconds, so rows line up with the traces' timestamps.
  double epoch_unix_s = 1700000000.0;
  // Digits after the decimal point; trailing zeros are trimmed ("12.5", "0").
  int decimals = 6;
  // A window without requests has no latency: by default its latency cells are empty (NaN to
  // pandas), because 0 would read as "suddenly fast". Set to write 0 instead.
  bool idle_latency_as_zero = false;
  // Columns per caller -> callee service pair (`<from>_to_<to>_rps/_err/_lat_50/_lat_99`),
  // from the caller's client spans: what a service mesh reports per edge.
  bool call_edges = true;
};

class MetricsRecorder final : public twin::TwinObserver {
 public:
  // Columns come from the topology (in its order), so they exist from the first row even for
  // idle services. Throws std::invalid_argument if two columns would get the same name or
  // window_s is not positive. `out` must outlive the recorder.
  MetricsRecorder(const model::Topology& topology, std::ostream& out, MetricsOptions options = {});
  ~MetricsRecorder() override;
  MetricsRecorder(const MetricsRecorder&) = delete;
  MetricsRecorder& operator=(const MetricsRecorder&) = delete;

  void on_span(const twin::SpanRecord& span) override;
  void on_entry(const twin::EntryRecord& entry) override;
  void on_snapshot(const twin::Snapshot& snapshot) override;
  // Writes every window up to end_time_s (the last one may be partial: its rates are per
  // second over the part that ran).
  void on_run_end(double end_time_s) override;

  // Writes what is still open if on_run_end never came (up to the last record seen). Safe to
  // call twice.
  void finish();

  const std::vector<std::string>& columns() const;  // "time" first
  std::int64_t rows_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::telemetry
