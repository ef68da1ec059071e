// Problems in trace data that do not stop ingestion, counted so a user can judge how far to
// trust what is built from it (docs/trace-formats.md, "Data quality").
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "doppel/ingest/span.hpp"

namespace doppel::ingest {

struct DataQuality {
  std::uint64_t spans = 0;   // spans delivered (duplicates included)
  std::uint64_t traces = 0;  // distinct trace ids

  std::uint64_t malformed_spans = 0;  // skipped: bad or missing ids, wrong value types
  std::uint64_t duplicate_spans = 0;  // same trace id and span id seen again (extra copies)
  std::uint64_t missing_parents = 0;  // orphans: the parent span is not in the input
  std::uint64_t self_parents = 0;     // spans naming themselves as parent
  std::uint64_t parent_cycles = 0;    // cycles of two or more spans in parent links
  std::uint64_t spans_in_cycles = 0;
  std::uint64_t missing_timestamps = 0;   // no start time
  std::uint64_t missing_durations = 0;    // no duration (Zipkin: span never finished)
  std::uint64_t clock_skew = 0;           // child starts before or ends after its parent
  std::uint64_t incomplete_traces = 0;    // traces with an orphan, a cycle, or no root
  std::uint64_t zipkin_shared_spans = 0;  // server halves given their own id (not a problem)

  // The first messages about malformed spans, each "FILE: PLACE: MESSAGE" (at most 10).
  std::vector<std::string> malformed_examples;

  bool clean() const;  // nothing above that signals a problem
  friend bool operator==(const DataQuality&, const DataQuality&) = default;
};

// A human-readable summary, one line per non-zero counter, for CLI output.
void print_summary(std::ostream& out, const DataQuality& quality);

// Accumulates DataQuality from a stream of spans. Keeps 56 bytes per span (ids and times)
// until finish(), since parents may come after their children anywhere in a file.
class QualityTracker {
 public:
  // Without structure checks only per-span counters are kept (no memory per span), and
  // traces, orphans, cycles, duplicates and skew stay 0.
  explicit QualityTracker(bool check_structure = true) : check_structure_(check_structure) {}
  void observe(const Span& span);
  void note_malformed_span(std::string message);
  void note_zipkin_shared_span() { ++quality_.zipkin_shared_spans; }
  // Runs the whole-trace checks (parents, cycles, skew, duplicates). Call once.
  DataQuality finish();

 private:
  struct Record {
    TraceId trace_id;
    std::uint64_t span_id;
    std::uint64_t parent_span_id;
    std::int64_t start_ns;
    std::int64_t end_ns;
    bool timed;         // has both start and duration
    bool asynchronous;  // producer or consumer: may outlive its parent
  };
  bool check_structure_;
  std::vector<Record> records_;
  DataQuality quality_;
};

}  // namespace doppel::ingest
