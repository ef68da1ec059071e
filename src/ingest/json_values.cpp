// Value conversions shared by the format readers.
#include <charconv>
#include <limits>

#include "read_context.hpp"

namespace doppel::ingest::detail {

namespace {

std::string_view trim_right(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                           text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

simdjson::simdjson_result<simdjson::ondemand::value> find_field_any_order(
    simdjson::ondemand::object& object, std::string_view key) {
  simdjson::ondemand::value found;
  auto error = object.find_field(key).get(found);
  if (error != simdjson::NO_SUCH_FIELD) {
    if (error) return error;
    return found;
  }
  bool has_fields = false;  // what reset() answers: false for an empty object
  if (auto reset_error = object.reset().get(has_fields); reset_error) return reset_error;
  if (!has_fields) return simdjson::NO_SUCH_FIELD;
  return object.find_field(key);
}

std::string value_to_text(simdjson::ondemand::value value) {
  switch (value.type()) {
    case simdjson::ondemand::json_type::string:
      return std::string(value.get_string().value());
    case simdjson::ondemand::json_type::number:
      return std::string(trim_right(value.raw_json_token()));
    case simdjson::ondemand::json_type::boolean:
      return value.get_bool() ? "true" : "false";
    case simdjson::ondemand::json_type::null:
      return {};
    case simdjson::ondemand::json_type::array:
      return std::string(trim_right(value.get_array().value().raw_json().value()));
    case simdjson::ondemand::json_type::object:
      return std::string(trim_right(value.get_object().value().raw_json().value()));
  }
  return {};
}

std::string any_value_to_text(simdjson::ondemand::value value) {
  if (value.type() != simdjson::ondemand::json_type::object) return value_to_text(value);
  // An AnyValue has one field naming its type; {} is the empty value.
  // Containers (arrayValue, kvlistValue) come out as their JSON text.
  for (auto field : value.get_object()) return value_to_text(field.value());
  return {};
}

std::optional<std::int64_t> flexible_int64(simdjson::ondemand::value value) {
  if (value.type() == simdjson::ondemand::json_type::string) {
    std::string_view text;
    if (failed(value.get_string().get(text))) return std::nullopt;
    std::int64_t parsed = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return parsed;
  }
  std::int64_t number = 0;
  if (failed(value.get_int64().get(number))) return std::nullopt;
  return number;
}

std::optional<std::int64_t> micros_to_nanos(std::int64_t micros) {
  constexpr std::int64_t kLimit = std::numeric_limits<std::int64_t>::max() / 1000;
  if (micros > kLimit || micros < -kLimit) return std::nullopt;
  return micros * 1000;
}

}  // namespace doppel::ingest::detail
