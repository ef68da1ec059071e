// A SpanSink that keeps every span, and helpers to read test files with it.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "doppel/ingest/trace_reader.hpp"

namespace doppel::ingest::testing {

class CollectingSink final : public SpanSink {
 public:
  void on_span(Span&& span) override { spans.push_back(std::move(span)); }

  std::set<std::string> services() const {
    std::set<std::string> names;
    for (const Span& span : spans) names.insert(span.service);
    return names;
  }
  std::size_t errors() const {
    std::size_t count = 0;
    for (const Span& span : spans) count += span.error ? 1 : 0;
    return count;
  }
  const Span* find(std::uint64_t span_id) const {
    for (const Span& span : spans) {
      if (span.span_id == span_id) return &span;
    }
    return nullptr;
  }

  std::vector<Span> spans;
};

inline std::filesystem::path test_data(const std::string& relative) {
  return std::filesystem::path(DOPPEL_SOURCE_DIR) / "tests" / "data" / "traces" / relative;
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

}  // namespace doppel::ingest::testing
