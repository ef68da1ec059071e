// What the format readers share: where they are in which file, and where spans go.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "doppel/ingest/data_quality.hpp"
#include "doppel/ingest/span.hpp"
#include "doppel/ingest/trace_reader.hpp"
#include "doppel/model/input_error.hpp"

namespace doppel::ingest::detail {

class ReadContext {
 public:
  ReadContext(std::shared_ptr<const std::string> file, const ReaderOptions& options, SpanSink& sink,
              QualityTracker& quality)
      : file_(std::move(file)), options_(options), sink_(sink), quality_(quality) {}

  const ReaderOptions& options() const { return options_; }
  const std::shared_ptr<const std::string>& file() const { return file_; }

  // The document being read: its bytes and where they start in the stream.
  void begin_document(std::string_view json, std::uint64_t stream_offset, std::uint64_t line) {
    document_ = json;
    document_offset_ = stream_offset;
    line_ = line;
  }

  // Iterates `json` and runs body(document); JSON errors become an InputError at the place
  // the iteration stopped.
  template <typename Body>
  void parse_document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                      Body&& body) {
    simdjson::ondemand::document document;
    if (auto error = parser.iterate(json).get(document)) fail_json(nullptr, error);
    try {
      body(document);
    } catch (const simdjson::simdjson_error& error) {
      fail_json(&document, error.error());
    }
    // The readers consume the whole root value, so any position left is trailing content
    // (On Demand does not look past the root by itself).
    const char* trailing = nullptr;
    if (!document.current_location().get(trailing)) {
      fail_json(&document, simdjson::TRAILING_CONTENT);
    }
  }
  [[noreturn]] void fail_json(simdjson::ondemand::document* document,
                              simdjson::error_code error) const;
  std::uint64_t line() const { return line_; }
  std::uint64_t document_offset() const { return document_offset_; }

  // Stream offset of a pointer into the current document.
  std::uint64_t offset_of(const char* position) const {
    if (position < document_.data() || position > document_.data() + document_.size()) {
      return document_offset_;
    }
    return document_offset_ + static_cast<std::uint64_t>(position - document_.data());
  }
  SourceLocation location_of(const char* position) const {
    return SourceLocation{file_, offset_of(position), line_};
  }
  InputLocation input_location(std::uint64_t offset) const {
    InputLocation where;
    if (line_ > 0) {
      where.line = static_cast<std::int64_t>(line_);
    } else {
      where.byte_offset = static_cast<std::int64_t>(offset);
    }
    return where;
  }
  [[noreturn]] void fail(const char* position, const std::string& message) const {
    throw InputError(*file_, input_location(offset_of(position)), message);
  }

  bool keeps_attribute(std::string_view key) const {
    return options_.keep_all_attributes || is_reconstruction_attribute(key);
  }

  void emit(Span&& span) {
    quality_.observe(span);
    sink_.on_span(std::move(span));
  }
  void malformed(const SourceLocation& where, const std::string& message) {
    quality_.note_malformed_span(where.to_string() + ": " + message);
  }
  QualityTracker& quality() { return quality_; }

 private:
  std::shared_ptr<const std::string> file_;
  const ReaderOptions& options_;
  SpanSink& sink_;
  QualityTracker& quality_;
  std::string_view document_;
  std::uint64_t document_offset_ = 0;
  std::uint64_t line_ = 0;
};

// For error codes the readers may survive: true when `error` only says a value is absent or
// not of the type asked for (On Demand leaves the iterator where it was, so iteration goes
// on); throws for anything else, since after a structural error the document iterator is
// unusable and must not be touched again.
inline bool failed(simdjson::error_code error) {
  if (error == simdjson::SUCCESS) return false;
  if (error == simdjson::INCORRECT_TYPE || error == simdjson::NUMBER_OUT_OF_RANGE ||
      error == simdjson::NO_SUCH_FIELD) {
    return true;
  }
  throw simdjson::simdjson_error(error);
}

// Text of a scalar or the JSON text of a container, for attribute values.
std::string value_to_text(simdjson::ondemand::value value);

// A field in any order, like object::find_field_unordered, which on malformed input can
// reach an "unreachable" point when it wraps around (simdjson 3.0.1 assumes fields it once
// skipped are well separated; the fuzzer fed it `"a":"b"m}`): forward from where the object
// stands, then once from its start, each pass reporting broken separators as errors.
simdjson::simdjson_result<simdjson::ondemand::value> find_field_any_order(
    simdjson::ondemand::object& object, std::string_view key);
// An OTLP AnyValue object as text: stringValue as is, numbers and bools as written,
// arrayValue/kvlistValue as their JSON text, bytesValue as its base64, {} as "".
std::string any_value_to_text(simdjson::ondemand::value value);
// An int64 written as a JSON number or as a decimal string (OTLP allows both).
std::optional<std::int64_t> flexible_int64(simdjson::ondemand::value value);
// Microseconds (Jaeger, Zipkin) to nanoseconds; nullopt on overflow.
std::optional<std::int64_t> micros_to_nanos(std::int64_t micros);

// The format readers: each iterates one whole JSON document and emits its spans.
void read_otlp_document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                        ReadContext& context);
void read_jaeger_ui_document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                             ReadContext& context);
void read_zipkin_document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                          ReadContext& context);

}  // namespace doppel::ingest::detail
