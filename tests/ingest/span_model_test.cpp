// The span value type and the data-quality checks, without any file format.
#include <sstream>

#include <gtest/gtest.h>

#include "doppel/ingest/data_quality.hpp"
#include "doppel/ingest/span.hpp"

namespace doppel::ingest {
namespace {

TEST(TraceIdTest, SixteenAndThirtyTwoDigitFormsOfOneIdAreEqual) {
  const auto short_form = parse_trace_id_hex("8ce82b2e9ed820ba");
  const auto long_form = parse_trace_id_hex("00000000000000008CE82B2E9ED820BA");
  ASSERT_TRUE(short_form && long_form);
  EXPECT_EQ(*short_form, *long_form);
  EXPECT_EQ(short_form->to_hex(), "00000000000000008ce82b2e9ed820ba");
  const auto full = parse_trace_id_hex("2ea75461946a7dd10f2c15ab36a076cb");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->high, 0x2ea75461946a7dd1ULL);
  EXPECT_EQ(full->low, 0x0f2c15ab36a076cbULL);
}

TEST(TraceIdTest, RejectsNonHexAndOverlongIds) {
  EXPECT_FALSE(parse_trace_id_hex(""));
  EXPECT_FALSE(parse_trace_id_hex("AAAAAAAAAAB74v2Y0Jc74w=="));  // base64, Jaeger's model
  EXPECT_FALSE(parse_trace_id_hex(std::string(33, 'a')));
  EXPECT_FALSE(parse_span_id_hex(std::string(17, 'a')));
  EXPECT_FALSE(parse_span_id_hex("12g4"));
  EXPECT_EQ(parse_span_id_hex("ff"), 255u);
  EXPECT_EQ(span_id_to_hex(255), "00000000000000ff");
}

TEST(SpanTest, AttributesStaySortedAndReplaceable) {
  Span span;
  span.set_attribute("peer.service", "db");
  span.set_attribute("db.system", "mysql");
  span.set_attribute("peer.service", "cache");
  ASSERT_EQ(span.attributes.size(), 2u);
  EXPECT_EQ(span.attributes[0].first, "db.system");
  ASSERT_NE(span.attribute("peer.service"), nullptr);
  EXPECT_EQ(*span.attribute("peer.service"), "cache");
  EXPECT_EQ(span.attribute("http.method"), nullptr);
}

TEST(SpanTest, ReconstructionAttributeListIsSortedForBinarySearch) {
  EXPECT_TRUE(
      std::is_sorted(std::begin(kReconstructionAttributes), std::end(kReconstructionAttributes)));
  EXPECT_TRUE(is_reconstruction_attribute("db.system"));
  EXPECT_TRUE(is_reconstruction_attribute("url.full"));
  EXPECT_FALSE(is_reconstruction_attribute("user_agent.original"));
}

Span make_span(std::uint64_t trace, std::uint64_t id, std::uint64_t parent, std::int64_t start,
               std::int64_t end) {
  Span span;
  span.trace_id = TraceId{0, trace};
  span.span_id = id;
  span.parent_span_id = parent;
  span.start_ns = start;
  span.end_ns = end;
  return span;
}

TEST(QualityTrackerTest, CleanTraceHasNoProblems) {
  QualityTracker tracker;
  tracker.observe(make_span(1, 1, 0, 0, 100));
  tracker.observe(make_span(1, 2, 1, 10, 90));
  const DataQuality quality = tracker.finish();
  EXPECT_EQ(quality.spans, 2u);
  EXPECT_EQ(quality.traces, 1u);
  EXPECT_TRUE(quality.clean());
}

TEST(QualityTrackerTest, CountsOrphansSelfParentsAndIncompleteTraces) {
  QualityTracker tracker;
  tracker.observe(make_span(1, 1, 0, 0, 100));
  tracker.observe(make_span(1, 2, 99, 0, 10));  // orphan
  tracker.observe(make_span(2, 3, 3, 0, 10));   // its own parent: trace 2 has no root
  const DataQuality quality = tracker.finish();
  EXPECT_EQ(quality.missing_parents, 1u);
  EXPECT_EQ(quality.self_parents, 1u);
  EXPECT_EQ(quality.incomplete_traces, 2u);
  EXPECT_EQ(quality.parent_cycles, 0u);
}

TEST(QualityTrackerTest, FindsEachCycleOnce) {
  QualityTracker tracker;
  // 1 -> 2 -> 3 -> 1, and 4 hanging off the cycle; trace 2 is a clean tree.
  tracker.observe(make_span(1, 1, 3, 0, 10));
  tracker.observe(make_span(1, 2, 1, 0, 10));
  tracker.observe(make_span(1, 3, 2, 0, 10));
  tracker.observe(make_span(1, 4, 2, 0, 10));
  tracker.observe(make_span(2, 1, 0, 0, 10));
  tracker.observe(make_span(2, 2, 1, 0, 10));
  const DataQuality quality = tracker.finish();
  EXPECT_EQ(quality.parent_cycles, 1u);
  EXPECT_EQ(quality.spans_in_cycles, 3u);
  EXPECT_EQ(quality.incomplete_traces, 1u);
  EXPECT_EQ(quality.traces, 2u);
}

TEST(QualityTrackerTest, CountsDuplicatesAndClockSkewButNotAsyncChildren) {
  QualityTracker tracker;
  tracker.observe(make_span(1, 1, 0, 100, 200));
  tracker.observe(make_span(1, 2, 1, 90, 150));  // starts before its parent
  tracker.observe(make_span(1, 2, 1, 90, 150));  // duplicate
  Span consumer = make_span(1, 3, 1, 150, 400);  // outlives its parent, legitimately
  consumer.kind = SpanKind::consumer;
  tracker.observe(consumer);
  Span untimed = make_span(1, 4, 1, 150, 150);
  untimed.has_duration = false;
  tracker.observe(untimed);
  const DataQuality quality = tracker.finish();
  EXPECT_EQ(quality.duplicate_spans, 1u);
  EXPECT_EQ(quality.clock_skew, 1u);
  EXPECT_EQ(quality.missing_durations, 1u);
  EXPECT_EQ(quality.spans, 5u);
}

TEST(QualityTrackerTest, SummaryNamesEachProblem) {
  QualityTracker tracker;
  tracker.observe(make_span(1, 2, 9, 0, 10));
  tracker.note_malformed_span("f.json: byte 3: no spanId");
  std::ostringstream out;
  print_summary(out, tracker.finish());
  EXPECT_EQ(out.str(),
            "1 spans in 1 traces\n"
            "  1 malformed spans skipped\n"
            "  1 spans whose parent is missing (orphans)\n"
            "  1 incomplete traces (orphan, cycle or no root)\n"
            "  e.g. f.json: byte 3: no spanId\n");
}

TEST(QualityTrackerTest, WithoutStructureChecksKeepsOnlyPerSpanCounters) {
  QualityTracker tracker(false);
  Span span = make_span(1, 2, 9, 0, 10);
  span.has_start = false;
  tracker.observe(span);
  const DataQuality quality = tracker.finish();
  EXPECT_EQ(quality.spans, 1u);
  EXPECT_EQ(quality.missing_timestamps, 1u);
  EXPECT_EQ(quality.missing_parents, 0u);
  EXPECT_EQ(quality.traces, 0u);
}

}  // namespace
}  // namespace doppel::ingest
