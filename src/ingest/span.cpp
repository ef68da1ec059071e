#include "doppel/ingest/span.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace doppel::ingest {

namespace {

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::uint64_t> parse_hex_u64(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : hex) {
    const int digit = hex_digit_value(c);
    if (digit < 0) return std::nullopt;
    value = (value << 4) | static_cast<std::uint64_t>(digit);
  }
  return value;
}

}  // namespace

std::string TraceId::to_hex() const {
  return fmt::format("{:016x}{:016x}", high, low);
}

std::optional<TraceId> parse_trace_id_hex(std::string_view hex) {
  if (hex.empty() || hex.size() > 32) return std::nullopt;
  TraceId id;
  const std::size_t low_digits = std::min<std::size_t>(hex.size(), 16);
  const std::string_view high_part = hex.substr(0, hex.size() - low_digits);
  const std::string_view low_part = hex.substr(hex.size() - low_digits);
  const auto low = parse_hex_u64(low_part);
  if (!low) return std::nullopt;
  id.low = *low;
  if (!high_part.empty()) {
    const auto high = parse_hex_u64(high_part);
    if (!high) return std::nullopt;
    id.high = *high;
  }
  return id;
}

std::optional<std::uint64_t> parse_span_id_hex(std::string_view hex) {
  return parse_hex_u64(hex);
}

std::string span_id_to_hex(std::uint64_t span_id) {
  return fmt::format("{:016x}", span_id);
}

std::string_view to_string(SpanKind kind) {
  switch (kind) {
    case SpanKind::unspecified:
      return "unspecified";
    case SpanKind::internal:
      return "internal";
    case SpanKind::server:
      return "server";
    case SpanKind::client:
      return "client";
    case SpanKind::producer:
      return "producer";
    case SpanKind::consumer:
      return "consumer";
  }
  return "unspecified";
}

std::string SourceLocation::to_string() const {
  const std::string& name = file ? *file : std::string("<input>");
  if (line > 0) return fmt::format("{}: line {}", name, line);
  return fmt::format("{}: byte {}", name, byte_offset);
}

const std::string* Span::attribute(std::string_view key) const {
  const auto it = std::lower_bound(attributes.begin(), attributes.end(), key,
                                   [](const std::pair<std::string, std::string>& entry,
                                      std::string_view k) { return entry.first < k; });
  if (it == attributes.end() || it->first != key) return nullptr;
  return &it->second;
}

void Span::set_attribute(std::string_view key, std::string value) {
  const auto it = std::lower_bound(attributes.begin(), attributes.end(), key,
                                   [](const std::pair<std::string, std::string>& entry,
                                      std::string_view k) { return entry.first < k; });
  if (it != attributes.end() && it->first == key) {
    it->second = std::move(value);
    return;
  }
  attributes.emplace(it, std::string(key), std::move(value));
}

bool is_reconstruction_attribute(std::string_view key) {
  return std::binary_search(std::begin(kReconstructionAttributes),
                            std::end(kReconstructionAttributes), key);
}

}  // namespace doppel::ingest
