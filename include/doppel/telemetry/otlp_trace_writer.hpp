// traces.otlp.jsonl: sampled traces as the OpenTelemetry Collector's file exporter writes
// them, one ExportTraceServiceRequest (OTLP/JSON) per line. Spans are buffered per trace and
// written when the trace's entry completes, so memory follows the traces in flight, not the
// run. Format details: docs/telemetry.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>

#include "doppel/twin/observer.hpp"

namespace doppel::telemetry {

struct OtlpOptions {
  // Share of traces kept, decided from the trace id alone (see trace_sampled), so every span
  // of a trace is kept or dropped together. 1 keeps all, 0 none.
  double sample_ratio = 1.0;
  // Simulated time 0 is this Unix time; span times are epoch + simulated time.
  std::int64_t epoch_unix_s = 1700000000;
  // Traces buffered at once; beyond, the oldest is written as it stands (its later spans
  // follow on lines of their own).
  std::size_t max_open_traces = 100000;
};

// Deterministic head sampling: keep a trace iff a 64-bit mix of its id is below
// ratio * 2^64. The same id gets the same verdict in every run and every process.
bool trace_sampled(const twin::TraceId& trace_id, double sample_ratio);

// The same verdicts, with the ratio's threshold worked out once: the writers ask for every
// span of a run.
class TraceSampler {
 public:
  explicit TraceSampler(double sample_ratio);
  bool sampled(const twin::TraceId& trace_id) const;

 private:
  bool all_ = false;
  std::uint64_t below_ = 0;  // keep iff the id's mix is below this; 0 keeps none
};

class OtlpTraceWriter final : public twin::TwinObserver {
 public:
  // `out` must outlive the writer. Throws std::invalid_argument for a ratio outside [0, 1].
  explicit OtlpTraceWriter(std::ostream& out, OtlpOptions options = {});
  ~OtlpTraceWriter() override;
  OtlpTraceWriter(const OtlpTraceWriter&) = delete;
  OtlpTraceWriter& operator=(const OtlpTraceWriter&) = delete;

  void on_span(const twin::SpanRecord& span) override;
  // The end of a trace: its buffered spans are written as one line, the root span (parent 0)
  // carrying the request's HTTP attributes.
  void on_entry(const twin::EntryRecord& entry) override;
  void on_run_end(double end_time_s) override;

  // Writes the traces still open (in the order they started). Safe to call twice.
  void finish();

  std::uint64_t lines_written() const;
  std::uint64_t spans_written() const;
  std::size_t open_traces() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::telemetry
