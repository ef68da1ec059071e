// Streaming trace readers: a file (plain or .zst) in, spans out to a SpanSink.
//
// Formats (docs/trace-formats.md): OTLP JSON (single document, JSON Lines as written by the
// collector's file exporter, or wrapped as {"result": ...} by Jaeger's query API v3), Jaeger
// UI JSON {"data": [...]}, and Zipkin v2 JSON arrays. Unusable input throws
// doppel::InputError naming the file and the byte offset (or line) of the problem; problems
// that spoil single spans only are counted in the returned DataQuality.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "doppel/ingest/data_quality.hpp"
#include "doppel/ingest/span.hpp"

namespace doppel::ingest {

enum class TraceFormat { automatic, otlp_json, jaeger_ui_json, zipkin_v2_json };
std::string_view to_string(TraceFormat format);

struct ReaderOptions {
  TraceFormat format = TraceFormat::automatic;
  // A single JSON document (or one JSON Lines line) is parsed in memory; a larger one is
  // refused with "document larger than ..." rather than exhausting memory.
  std::size_t max_document_bytes = std::size_t{512} << 20;
  // Keep every attribute as a string, not only kReconstructionAttributes.
  bool keep_all_attributes = false;
  // Run the whole-trace checks (orphans, cycles, duplicates, skew): 56 bytes per span.
  bool check_structure = true;
};

struct ReadResult {
  TraceFormat format = TraceFormat::automatic;  // the one detected (or forced)
  bool zstd_compressed = false;
  bool json_lines = false;
  std::uint64_t bytes = 0;      // decompressed bytes read
  std::uint64_t documents = 0;  // JSON documents (lines, for JSON Lines)
  DataQuality quality;
};

// Reads a trace file; ".zst" content (detected by its magic number) is decompressed on the fly.
ReadResult read_trace_file(const std::filesystem::path& path, SpanSink& sink,
                           const ReaderOptions& options = {});

// Reads trace data already in memory (possibly zstd-compressed); `name` stands for the file
// in messages.
ReadResult read_trace_bytes(std::string_view bytes, std::string name, SpanSink& sink,
                            const ReaderOptions& options = {});

// The format the first bytes of (decompressed) input announce, or throws InputError saying
// what the input looks like instead. `prefix` need only hold the first few kilobytes.
TraceFormat detect_trace_format(std::string_view prefix, const std::string& name);

}  // namespace doppel::ingest
