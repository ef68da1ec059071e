// Strict reading of JSON documents written by people: every value knows its JSON pointer, so
// any mistake becomes an InputError naming the file and the exact place; objects reject keys
// they do not know (with a did-you-mean), because a typo silently ignored is a wrong model.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace doppel::model::detail {

class JsonObject;

// "a/b" as a JSON pointer token ("a~1b").
std::string escape_pointer_token(std::string_view key);

// How a value is named in "expected X, got Y" messages: strings and numbers as written,
// containers by their kind.
std::string describe_json_value(const nlohmann::json& value);

// A JSON value and where it is.
class JsonValue {
 public:
  JsonValue(const std::string& file, const nlohmann::json& value, std::string pointer)
      : file_(&file), value_(&value), pointer_(std::move(pointer)) {}

  const nlohmann::json& raw() const { return *value_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& file() const { return *file_; }

  [[noreturn]] void fail(const std::string& message) const;

  std::string as_string() const;
  double as_number() const;
  std::int64_t as_integer() const;
  int as_int() const;  // an integer that fits in int
  JsonObject as_object(std::initializer_list<std::string_view> allowed_keys) const;
  // An object used as a map with keys of the user's choosing (HTTP headers...), sorted by key.
  std::vector<std::pair<std::string, JsonValue>> as_map() const;
  std::vector<JsonValue> as_array() const;
  std::vector<JsonValue> as_nonempty_array() const;

  // Range checks that report "must be ..., got X" at this value.
  double number_at_least(double minimum) const;  // >= minimum
  double number_above(double minimum) const;     // > minimum
  double probability() const;                    // in [0, 1]
  int int_at_least(int minimum) const;
  std::int64_t integer_at_least(std::int64_t minimum) const;

  // One of a fixed set of words, e.g. "round_robin".
  template <typename Enum>
  Enum as_enum(std::initializer_list<std::pair<std::string_view, Enum>> choices) const {
    const std::string word = as_string();
    for (const auto& [name, value] : choices) {
      if (name == word) return value;
    }
    std::vector<std::string> names;
    for (const auto& choice : choices) names.emplace_back(choice.first);
    fail_unknown_word(word, names);
  }

 private:
  [[noreturn]] void fail_unknown_word(const std::string& word,
                                      const std::vector<std::string>& names) const;
  [[noreturn]] void fail_expected(std::string_view what) const;

  const std::string* file_;
  const nlohmann::json* value_;
  std::string pointer_;
};

// A JSON object whose keys have been checked against the ones its format allows.
class JsonObject {
 public:
  JsonObject(const JsonValue& value, std::initializer_list<std::string_view> allowed_keys);

  const std::string& pointer() const { return self_.pointer(); }
  [[noreturn]] void fail(const std::string& message) const { self_.fail(message); }

  bool has(std::string_view key) const;
  JsonValue at(std::string_view key) const;  // required: a missing key is an error
  std::optional<JsonValue> find(std::string_view key) const;

 private:
  JsonValue self_;
};

// Reads text as JSON, reporting a syntax error by line and column.
nlohmann::json parse_json_text(std::string_view text, const std::string& file);

}  // namespace doppel::model::detail
