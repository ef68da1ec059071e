// Drives the format readers over a byte stream: detection, JSON Lines or single document,
// bounded buffering, and turning JSON errors into InputErrors with a place.
#include "doppel/ingest/trace_reader.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "byte_source.hpp"
#include "read_context.hpp"

namespace doppel::ingest {

namespace detail {

namespace {

// Offset of the first byte that is not valid UTF-8 (text.size() if all valid).
std::size_t first_invalid_utf8(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const auto lead = static_cast<unsigned char>(text[at]);
    std::size_t length = 0;
    if (lead < 0x80) {
      length = 1;
    } else if ((lead >> 5) == 0x6 && lead >= 0xC2) {
      length = 2;
    } else if ((lead >> 4) == 0xE) {
      length = 3;
    } else if ((lead >> 3) == 0x1E && lead <= 0xF4) {
      length = 4;
    } else {
      return at;
    }
    if (at + length > text.size()) return at;
    for (std::size_t i = 1; i < length; ++i) {
      if ((static_cast<unsigned char>(text[at + i]) >> 6) != 0x2) return at;
    }
    at += length;
  }
  return text.size();
}

std::string describe_json_error(simdjson::error_code error) {
  switch (error) {
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
    case simdjson::UNCLOSED_STRING:
      return "truncated JSON: the input ends inside an object, array or string";
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8 (binary data in a JSON file?)";
    case simdjson::INCORRECT_TYPE:
      return "a value has the wrong JSON type for this trace format";
    case simdjson::DEPTH_ERROR:
      return "JSON nested too deeply";
    case simdjson::EMPTY:
      return "empty JSON document";
    case simdjson::TRAILING_CONTENT:
      return "unexpected content after the JSON document (two documents on one line?)";
    default:
      return fmt::format("invalid JSON: {}", simdjson::error_message(error));
  }
}

}  // namespace

void ReadContext::fail_json(simdjson::ondemand::document* document,
                            simdjson::error_code error) const {
  std::uint64_t offset = document_offset_;
  const std::uint64_t document_end = document_offset_ + document_.size();
  const char* position = nullptr;
  if (document && !document->current_location().get(position)) {
    offset = offset_of(position);
  } else if (document || error == simdjson::INCOMPLETE_ARRAY_OR_OBJECT ||
             error == simdjson::UNCLOSED_STRING) {
    offset = document_end;  // the iteration ran off the end of the input
  } else if (error == simdjson::UTF8_ERROR) {
    offset = document_offset_ + first_invalid_utf8(document_);
  }
  InputLocation where = input_location(offset);
  if (line_ > 0) where.column = static_cast<std::int64_t>(offset - document_offset_) + 1;
  throw InputError(*file_, where, describe_json_error(error));
}

namespace {

constexpr std::size_t kDetectionBytes = 64 * 1024;
constexpr std::size_t kChunkBytes = 4 * 1024 * 1024;
// simdjson cannot index documents of 4 GiB and more.
constexpr std::size_t kSimdjsonLimit = std::size_t{0xFFFFFFFF} - simdjson::SIMDJSON_PADDING;

std::string human_bytes(std::size_t bytes) {
  if (bytes >= (std::size_t{1} << 20) && bytes % (std::size_t{1} << 20) == 0) {
    return fmt::format("{} MiB", bytes >> 20);
  }
  if (bytes >= 1024 && bytes % 1024 == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

// A window on the stream, with simdjson's padding after it so documents parse in place.
class StreamBuffer {
 public:
  // Starts small (small inputs, fuzzing) and grows by chunks as documents need.
  explicit StreamBuffer(ByteSource& source) : source_(source) { grow(kDetectionBytes); }

  std::string_view pending() const { return {data_.get() + begin_, end_ - begin_}; }
  const char* begin_pointer() const { return data_.get() + begin_; }
  std::uint64_t pending_offset() const { return base_offset_ + begin_; }
  std::uint64_t bytes_read() const { return base_offset_ + end_; }
  bool at_eof() const { return eof_; }
  void consume(std::size_t count) { begin_ += count; }

  // Reads more bytes after the pending ones, growing the window as needed while the pending
  // bytes stay within `max_pending` + 1 (one more than allowed, so the caller can tell).
  // Returns false at the end of the stream.
  bool read_more(std::size_t max_pending) {
    if (eof_) return false;
    if (end_ == capacity_ && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      base_offset_ += begin_;
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == capacity_) {
      const std::size_t wanted = std::min(std::max(capacity_ * 2, kChunkBytes), max_pending + 1);
      if (wanted <= capacity_) return true;  // the caller will see pending() is too large
      grow(wanted);
    }
    const std::size_t count = source_.read(data_.get() + end_, capacity_ - end_);
    if (count == 0) {
      eof_ = true;
      return false;
    }
    end_ += count;
    return true;
  }

 private:
  void grow(std::size_t capacity) {
    auto bigger = std::make_unique_for_overwrite<char[]>(capacity + simdjson::SIMDJSON_PADDING);
    // The first growth has no buffer yet: memcpy from null is undefined even for 0 bytes.
    if (end_ > begin_) std::memcpy(bigger.get(), data_.get() + begin_, end_ - begin_);
    std::memset(bigger.get() + capacity, ' ', simdjson::SIMDJSON_PADDING);
    base_offset_ += begin_;
    end_ -= begin_;
    begin_ = 0;
    data_ = std::move(bigger);
    capacity_ = capacity;
  }

  ByteSource& source_;
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint64_t base_offset_ = 0;  // stream offset of data_[0]
  bool eof_ = false;
};

using DocumentReader = void (*)(simdjson::ondemand::parser&, simdjson::padded_string_view,
                                ReadContext&);

DocumentReader reader_for(TraceFormat format) {
  switch (format) {
    case TraceFormat::otlp_json:
      return &read_otlp_document;
    case TraceFormat::jaeger_ui_json:
      return &read_jaeger_ui_document;
    case TraceFormat::zipkin_v2_json:
    case TraceFormat::automatic:
      break;
  }
  return &read_zipkin_document;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// JSON Lines when the first non-blank line is a whole JSON value on its own; a pretty-printed
// document's first line ("{") is not. A single-line document reads the same either way.
bool looks_like_json_lines(std::string_view prefix, bool whole_input) {
  while (!prefix.empty()) {
    const std::size_t newline = prefix.find('\n');
    if (newline == std::string_view::npos && !whole_input) return true;  // a long first line
    const std::string_view line = trim(prefix.substr(0, newline));
    if (!line.empty()) {
      const char first = line.front();
      const char last = line.back();
      return line.size() > 1 && ((first == '{' && last == '}') || (first == '[' && last == ']'));
    }
    if (newline == std::string_view::npos) return false;
    prefix.remove_prefix(newline + 1);
  }
  return false;
}

class DocumentDriver {
 public:
  DocumentDriver(ReadContext& context, DocumentReader reader, std::size_t max_document_bytes)
      : context_(context),
        reader_(reader),
        limit_(std::min(max_document_bytes, kSimdjsonLimit)),
        parser_(limit_) {}

  std::uint64_t documents() const { return documents_; }

  void read_lines(StreamBuffer& buffer) {
    std::uint64_t line = 0;
    std::size_t scanned = 0;  // pending bytes already known to hold no newline
    for (;;) {
      const std::string_view pending = buffer.pending();
      const std::size_t newline = pending.find('\n', scanned);
      if (newline != std::string_view::npos) {
        parse_line(buffer, newline, ++line);
        buffer.consume(newline + 1);
        scanned = 0;
        continue;
      }
      if (pending.size() > limit_) too_large(buffer.pending_offset(), line + 1);
      scanned = pending.size();
      if (!buffer.read_more(limit_)) break;
    }
    if (!buffer.pending().empty()) parse_line(buffer, buffer.pending().size(), ++line);
  }

  void read_single(StreamBuffer& buffer) {
    while (buffer.read_more(limit_)) {
      if (buffer.pending().size() > limit_) too_large(buffer.pending_offset(), 0);
    }
    if (buffer.pending().size() > limit_) too_large(buffer.pending_offset(), 0);
    parse(buffer.begin_pointer(), buffer.pending().size(), buffer.pending_offset(), 0);
  }

 private:
  void parse_line(StreamBuffer& buffer, std::size_t length, std::uint64_t line) {
    std::string_view text(buffer.begin_pointer(), length);
    if (trim(text).empty()) return;
    if (length > limit_) too_large(buffer.pending_offset(), line);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    parse(text.data(), text.size(), buffer.pending_offset(), line);
  }

  void parse(const char* data, std::size_t length, std::uint64_t offset, std::uint64_t line) {
    ++documents_;
    context_.begin_document({data, length}, offset, line);
    // The stream buffer keeps SIMDJSON_PADDING readable bytes after any document in it.
    reader_(parser_,
            simdjson::padded_string_view(data, length, length + simdjson::SIMDJSON_PADDING),
            context_);
  }

  [[noreturn]] void too_large(std::uint64_t offset, std::uint64_t line) const {
    InputLocation where;
    if (line > 0) where.line = static_cast<std::int64_t>(line);
    where.byte_offset = static_cast<std::int64_t>(offset);
    const std::string what = line > 0
                                 ? fmt::format("line {} (starting at byte {})", line, offset)
                                 : fmt::format("the JSON document starting at byte {}", offset);
    throw InputError(*context_.file(), where,
                     fmt::format("document larger than {} (the maximum document size): {} does "
                                 "not end within that many bytes; raise the limit if the file is "
                                 "meant to be this large",
                                 human_bytes(limit_), what));
  }

  ReadContext& context_;
  DocumentReader reader_;
  std::size_t limit_;
  simdjson::ondemand::parser parser_;
  std::uint64_t documents_ = 0;
};

ReadResult read_stream(ByteSource& raw, std::string name, SpanSink& sink,
                       const ReaderOptions& options) {
  ReadResult result;
  auto file = std::make_shared<const std::string>(std::move(name));

  std::string magic(4, '\0');
  std::size_t magic_length = 0;
  while (magic_length < magic.size()) {
    const std::size_t count = raw.read(magic.data() + magic_length, magic.size() - magic_length);
    if (count == 0) break;
    magic_length += count;
  }
  magic.resize(magic_length);
  result.zstd_compressed = starts_with_zstd_magic(magic);
  PrefixedSource prefixed(std::move(magic), raw);
  std::unique_ptr<ZstdSource> zstd;
  ByteSource* source = &prefixed;
  if (result.zstd_compressed) {
    zstd = std::make_unique<ZstdSource>(prefixed, *file);
    source = zstd.get();
  }

  StreamBuffer buffer(*source);
  while (buffer.pending().size() < kDetectionBytes && buffer.read_more(kChunkBytes)) {
  }
  if (buffer.pending().substr(0, 3) == "\xEF\xBB\xBF") buffer.consume(3);  // UTF-8 BOM

  const std::string_view prefix = buffer.pending().substr(0, kDetectionBytes);
  result.format = options.format;
  if (result.format == TraceFormat::automatic) {
    result.format = detect_trace_format(prefix, *file);
  } else if (trim(prefix).empty()) {
    InputLocation where;
    where.byte_offset = static_cast<std::int64_t>(buffer.bytes_read());
    throw InputError(*file, where, "empty input: no trace data");
  }
  result.json_lines = looks_like_json_lines(prefix, buffer.at_eof());

  QualityTracker quality(options.check_structure);
  ReadContext context(file, options, sink, quality);
  DocumentDriver driver(context, reader_for(result.format), options.max_document_bytes);
  if (result.json_lines) {
    driver.read_lines(buffer);
  } else {
    driver.read_single(buffer);
  }
  result.bytes = buffer.bytes_read();
  result.documents = driver.documents();
  result.quality = quality.finish();
  return result;
}

}  // namespace

}  // namespace detail

ReadResult read_trace_file(const std::filesystem::path& path, SpanSink& sink,
                           const ReaderOptions& options) {
  detail::FileSource source(path, path.string());
  return detail::read_stream(source, path.string(), sink, options);
}

ReadResult read_trace_bytes(std::string_view bytes, std::string name, SpanSink& sink,
                            const ReaderOptions& options) {
  detail::MemorySource source(bytes);
  return detail::read_stream(source, std::move(name), sink, options);
}

}  // namespace doppel::ingest
