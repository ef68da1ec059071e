#include "doppel/ingest/data_quality.hpp"

#include <algorithm>
#include <ostream>

#include <fmt/format.h>

namespace doppel::ingest {

namespace {
constexpr std::size_t kMaxMalformedExamples = 10;
constexpr std::int64_t kNoIndex = -1;
}  // namespace

bool DataQuality::clean() const {
  return malformed_spans == 0 && duplicate_spans == 0 && missing_parents == 0 &&
         self_parents == 0 && parent_cycles == 0 && missing_timestamps == 0 &&
         missing_durations == 0 && clock_skew == 0 && incomplete_traces == 0;
}

void print_summary(std::ostream& out, const DataQuality& quality) {
  out << fmt::format("{} spans in {} traces\n", quality.spans, quality.traces);
  const auto line = [&out](std::uint64_t count, std::string_view what) {
    if (count > 0) out << fmt::format("  {} {}\n", count, what);
  };
  line(quality.malformed_spans, "malformed spans skipped");
  line(quality.duplicate_spans, "duplicate spans (same trace and span id)");
  line(quality.missing_parents, "spans whose parent is missing (orphans)");
  line(quality.self_parents, "spans that are their own parent");
  line(quality.parent_cycles, "cycles in parent links");
  line(quality.spans_in_cycles, "spans in those cycles");
  line(quality.missing_timestamps, "spans without a start time");
  line(quality.missing_durations, "spans without a duration");
  line(quality.clock_skew, "spans outside their parent's time span (clock skew)");
  line(quality.incomplete_traces, "incomplete traces (orphan, cycle or no root)");
  line(quality.zipkin_shared_spans, "Zipkin shared server spans given their own id");
  for (const auto& example : quality.malformed_examples) out << "  e.g. " << example << '\n';
  if (quality.clean()) out << "  no problems found\n";
}

void QualityTracker::observe(const Span& span) {
  ++quality_.spans;
  if (!span.has_start) ++quality_.missing_timestamps;
  if (!span.has_duration) ++quality_.missing_durations;
  if (!check_structure_) return;
  records_.push_back(Record{span.trace_id, span.span_id, span.parent_span_id, span.start_ns,
                            span.end_ns, span.has_start && span.has_duration,
                            span.kind == SpanKind::producer || span.kind == SpanKind::consumer});
}

void QualityTracker::note_malformed_span(std::string message) {
  ++quality_.malformed_spans;
  if (quality_.malformed_examples.size() < kMaxMalformedExamples) {
    quality_.malformed_examples.push_back(std::move(message));
  }
}

DataQuality QualityTracker::finish() {
  // Sorting by (trace, span) groups traces and makes parents findable by binary search; the
  // stable sort keeps the first copy of a duplicated span first.
  std::stable_sort(records_.begin(), records_.end(), [](const Record& a, const Record& b) {
    if (a.trace_id != b.trace_id) return a.trace_id < b.trace_id;
    return a.span_id < b.span_id;
  });
  std::vector<Record> unique;
  unique.reserve(records_.size());
  for (const Record& record : records_) {
    if (!unique.empty() && unique.back().trace_id == record.trace_id &&
        unique.back().span_id == record.span_id) {
      ++quality_.duplicate_spans;
      continue;
    }
    unique.push_back(record);
  }
  records_.clear();
  records_.shrink_to_fit();

  const auto find = [&unique](const TraceId& trace, std::uint64_t span_id) -> std::int64_t {
    const auto it =
        std::lower_bound(unique.begin(), unique.end(), std::pair{trace, span_id},
                         [](const Record& r, const std::pair<TraceId, std::uint64_t>& key) {
                           if (r.trace_id != key.first) return r.trace_id < key.first;
                           return r.span_id < key.second;
                         });
    if (it == unique.end() || it->trace_id != trace || it->span_id != span_id) return kNoIndex;
    return it - unique.begin();
  };

  std::vector<std::int64_t> parent_index(unique.size(), kNoIndex);
  std::vector<bool> trace_incomplete(unique.size(), false);  // indexed by the trace's first span
  std::vector<std::size_t> trace_start(unique.size(), 0);
  std::size_t first_of_trace = 0;
  bool trace_has_root = false;
  for (std::size_t i = 0; i < unique.size(); ++i) {
    const Record& record = unique[i];
    if (i == 0 || unique[i - 1].trace_id != record.trace_id) {
      if (i > 0 && !trace_has_root) trace_incomplete[first_of_trace] = true;
      first_of_trace = i;
      trace_has_root = false;
      ++quality_.traces;
    }
    trace_start[i] = first_of_trace;
    if (record.parent_span_id == 0) {
      trace_has_root = true;
      continue;
    }
    if (record.parent_span_id == record.span_id) {
      ++quality_.self_parents;
      continue;
    }
    const std::int64_t parent = find(record.trace_id, record.parent_span_id);
    if (parent == kNoIndex) {
      ++quality_.missing_parents;
      trace_incomplete[first_of_trace] = true;
      continue;
    }
    parent_index[i] = parent;
    const Record& parent_record = unique[static_cast<std::size_t>(parent)];
    if (record.timed && parent_record.timed && !record.asynchronous &&
        !parent_record.asynchronous &&
        (record.start_ns < parent_record.start_ns || record.end_ns > parent_record.end_ns)) {
      ++quality_.clock_skew;
    }
  }
  if (!unique.empty() && !trace_has_root) trace_incomplete[first_of_trace] = true;

  // Each span has at most one parent, so following parents from any span either ends or
  // enters a cycle; colouring each walk finds every cycle once, in linear time.
  enum : std::uint8_t { unvisited, on_walk, done };
  std::vector<std::uint8_t> state(unique.size(), unvisited);
  std::vector<std::size_t> walk;
  for (std::size_t start = 0; start < unique.size(); ++start) {
    if (state[start] != unvisited) continue;
    walk.clear();
    std::int64_t at = static_cast<std::int64_t>(start);
    while (at != kNoIndex && state[static_cast<std::size_t>(at)] == unvisited) {
      state[static_cast<std::size_t>(at)] = on_walk;
      walk.push_back(static_cast<std::size_t>(at));
      at = parent_index[static_cast<std::size_t>(at)];
    }
    if (at != kNoIndex && state[static_cast<std::size_t>(at)] == on_walk) {
      ++quality_.parent_cycles;
      const auto cycle_start = std::find(walk.begin(), walk.end(), static_cast<std::size_t>(at));
      quality_.spans_in_cycles += static_cast<std::uint64_t>(walk.end() - cycle_start);
      trace_incomplete[trace_start[static_cast<std::size_t>(at)]] = true;
    }
    for (std::size_t index : walk) state[index] = done;
  }

  quality_.incomplete_traces = static_cast<std::uint64_t>(
      std::count(trace_incomplete.begin(), trace_incomplete.end(), true));
  return quality_;
}

}  // namespace doppel::ingest
