// The body every trace fuzzer shares: read the input as one format, then detected and
// reconstructed into a topology; accept InputError (bad input is expected), and let anything
// else (a crash, a sanitizer report, another exception) fail the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "doppel/ingest/reconstruct.hpp"
#include "doppel/ingest/trace_reader.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::fuzz {

class DiscardingSink final : public ingest::SpanSink {
 public:
  void on_span(ingest::Span&& span) override { last_operation_size_ = span.operation.size(); }

 private:
  std::size_t last_operation_size_ = 0;
};

inline int read_as(ingest::TraceFormat format, const std::uint8_t* data, std::size_t size) {
  ingest::ReaderOptions options;
  options.format = format;
  // Small, so fuzzed inputs also exercise the document size limit.
  options.max_document_bytes = std::size_t{1} << 20;
  DiscardingSink sink;
  try {
    ingest::read_trace_bytes(std::string_view(reinterpret_cast<const char*>(data), size),
                             "fuzz-input", sink, options);
  } catch (const InputError&) {
  }
  // Detection must also either accept or reject cleanly, and whatever spans it yields must
  // reconstruct (parent cycles, self parents, absurd times) without a crash. A tiny span
  // buffer exercises the early analysis of open traces too.
  ingest::ReconstructOptions reconstruct;
  reconstruct.max_buffered_spans = 8;
  ingest::TopologyReconstructor reconstructor(reconstruct);
  std::optional<ingest::Reconstruction> result;
  try {
    ingest::read_trace_bytes(std::string_view(reinterpret_cast<const char*>(data), size),
                             "fuzz-input", reconstructor, ingest::ReaderOptions{});
    result = reconstructor.finish();
  } catch (const InputError&) {
  }
  // What doppel build writes must load: an InputError here is a bug, and escapes.
  if (result) model::parse_topology(model::topology_to_json(result->topology), "reconstructed");
  return 0;
}

}  // namespace doppel::fuzz
