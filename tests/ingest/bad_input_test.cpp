// Bad input: every file in tests/data/traces/bad/ has NAME.expected, the exact outcome (the
// InputError message, or the data-quality summary when the input is usable). To regenerate
// after a deliberate change: DOPPEL_UPDATE_GOLDEN=1 ./ingest_tests, then review the diff.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"

#include "collecting_sink.hpp"

namespace doppel::ingest {
namespace {

using testing::CollectingSink;
using testing::read_bytes;
using testing::test_data;

std::string outcome_of(const std::filesystem::path& path) {
  ReaderOptions options;
  const std::string name = path.filename().string();
  // Files named *limit1k* stand for inputs larger than the document limit.
  if (name.find("limit1k") != std::string::npos) options.max_document_bytes = 1024;
  try {
    CollectingSink sink;
    const ReadResult result = read_trace_bytes(read_bytes(path), name, sink, options);
    std::ostringstream out;
    out << "accepted as " << to_string(result.format) << ": ";
    print_summary(out, result.quality);
    return out.str();
  } catch (const InputError& error) {
    return std::string("rejected: ") + error.what() + "\n";
  }
}

TEST(BadInputTest, EachFileGivesItsGoldenOutcome) {
  const bool update = std::getenv("DOPPEL_UPDATE_GOLDEN") != nullptr;
  std::vector<std::filesystem::path> inputs;
  for (const auto& entry : std::filesystem::directory_iterator(test_data("bad"))) {
    if (entry.path().extension() != ".expected") inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  ASSERT_GE(inputs.size(), 15u);
  for (const auto& input : inputs) {
    const std::filesystem::path golden = input.string() + ".expected";
    const std::string actual = outcome_of(input);
    if (update) std::ofstream(golden, std::ios::binary) << actual;
    ASSERT_TRUE(std::filesystem::exists(golden)) << "missing " << golden;
    EXPECT_EQ(actual, read_bytes(golden)) << input.filename();
  }
}

TEST(BadInputTest, JsonLinesErrorsNameTheLine) {
  CollectingSink sink;
  try {
    read_trace_file(test_data("bad/jsonl_bad_second_line.jsonl"), sink);
    FAIL() << "accepted a broken line";
  } catch (const InputError& error) {
    ASSERT_TRUE(error.where().line.has_value());
    EXPECT_EQ(*error.where().line, 2);
  }
  EXPECT_EQ(sink.spans.size(), 1u);  // the good first line was delivered before
}

TEST(BadInputTest, AnOverlongLineIsRefusedWithoutReadingItWhole) {
  // 64 MiB of one line against a 1 MiB limit: refused after about 1 MiB, not buffered.
  std::string huge = R"({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": ")";
  huge.append(std::size_t{64} << 20, 'x');
  CollectingSink sink;
  ReaderOptions options;
  options.max_document_bytes = std::size_t{1} << 20;
  try {
    read_trace_bytes(huge, "huge.jsonl", sink, options);
    FAIL() << "accepted a line over the limit";
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()),
              "huge.jsonl: line 1: document larger than 1 MiB (the maximum document size): line 1 "
              "(starting at byte 0) does not end within that many bytes; raise the limit if the "
              "file is meant to be this large");
  }
}

TEST(BadInputTest, AnOverlongSingleDocumentIsRefusedWithItsOffset) {
  std::string document = "{\n  \"data\": [\n";
  document.append(4096, ' ');
  document += "]}\n";
  CollectingSink sink;
  ReaderOptions options;
  options.max_document_bytes = 1024;
  try {
    read_trace_bytes(document, "big.json", sink, options);
    FAIL() << "accepted a document over the limit";
  } catch (const InputError& error) {
    EXPECT_EQ(error.message(),
              "document larger than 1 KiB (the maximum document size): the JSON document "
              "starting at byte 0 does not end within that many bytes; raise the limit if the "
              "file is meant to be this large");
    ASSERT_TRUE(error.where().byte_offset.has_value());
    EXPECT_EQ(*error.where().byte_offset, 0);
  }
}

TEST(BadInputTest, MissingFileIsAnInputError) {
  CollectingSink sink;
  EXPECT_THROW(read_trace_file(test_data("bad/no-such-file.json"), sink), InputError);
}

TEST(BadInputTest, JaegerModelBatchIsNamedAndRefused) {
  CollectingSink sink;
  try {
    read_trace_file(test_data("jaeger_model_batch_hotrod_redis_apm-server.json"), sink);
    FAIL() << "accepted a Jaeger model batch";
  } catch (const InputError& error) {
    EXPECT_NE(error.message().find("Jaeger internal model batch"), std::string::npos);
    EXPECT_NE(error.message().find("does not read"), std::string::npos);
  }
}

TEST(BadInputTest, EveryPrefixOfARealFileFailsCleanlyOrParses) {
  // Truncation at any point must give an InputError or a (partial) result, never a crash.
  const std::string whole = read_bytes(test_data("features/zipkin_shared_and_untimed.json"));
  for (std::size_t length = 0; length < whole.size(); length += 7) {
    CollectingSink sink;
    try {
      read_trace_bytes(whole.substr(0, length), "prefix.json", sink);
    } catch (const InputError&) {
    }
  }
  SUCCEED();
}

}  // namespace
}  // namespace doppel::ingest
