#include "model/json_reader.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "doppel/model/input_error.hpp"

#include "model/did_you_mean.hpp"

namespace doppel::model::detail {

std::string escape_pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string describe_json_value(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::string: {
      constexpr std::size_t kMaxShown = 60;
      const auto& text = value.get_ref<const std::string&>();
      if (text.size() <= kMaxShown) return value.dump();
      return nlohmann::json(text.substr(0, kMaxShown)).dump() + "...";
    }
    default:
      return value.dump();
  }
}

void JsonValue::fail(const std::string& message) const {
  throw InputError(*file_, InputLocation{pointer_, {}, {}, {}}, message);
}

void JsonValue::fail_expected(std::string_view what) const {
  fail(fmt::format("expected {}, got {}", what, describe_json_value(*value_)));
}

void JsonValue::fail_unknown_word(const std::string& word,
                                  const std::vector<std::string>& names) const {
  std::string listed;
  for (const auto& name : names) {
    if (!listed.empty()) listed += ", ";
    listed += name;
  }
  fail(fmt::format("unknown value \"{}\", expected one of {}{}", word, listed,
                   did_you_mean(word, names)));
}

std::string JsonValue::as_string() const {
  if (!value_->is_string()) fail_expected("a string");
  return value_->get<std::string>();
}

double JsonValue::as_number() const {
  if (!value_->is_number()) fail_expected("a number");
  return value_->get<double>();
}

std::int64_t JsonValue::as_integer() const {
  if (value_->is_number_unsigned()) {
    const auto unsigned_value = value_->get<std::uint64_t>();
    if (unsigned_value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(fmt::format("integer {} is too large", unsigned_value));
    }
    return static_cast<std::int64_t>(unsigned_value);
  }
  if (!value_->is_number_integer()) fail_expected("an integer");
  return value_->get<std::int64_t>();
}

int JsonValue::as_int() const {
  const std::int64_t value = as_integer();
  if (value > std::numeric_limits<int>::max() || value < std::numeric_limits<int>::min()) {
    fail(fmt::format("integer {} is out of range", value));
  }
  return static_cast<int>(value);
}

JsonObject JsonValue::as_object(std::initializer_list<std::string_view> allowed_keys) const {
  return JsonObject(*this, allowed_keys);
}

std::vector<std::pair<std::string, JsonValue>> JsonValue::as_map() const {
  if (!value_->is_object()) fail_expected("an object");
  std::vector<std::pair<std::string, JsonValue>> members;
  for (const auto& [key, member] : value_->items()) {
    members.emplace_back(key,
                         JsonValue(*file_, member, pointer_ + "/" + escape_pointer_token(key)));
  }
  return members;
}

std::vector<JsonValue> JsonValue::as_array() const {
  if (!value_->is_array()) fail_expected("an array");
  std::vector<JsonValue> items;
  items.reserve(value_->size());
  for (std::size_t i = 0; i < value_->size(); ++i) {
    items.emplace_back(*file_, (*value_)[i], fmt::format("{}/{}", pointer_, i));
  }
  return items;
}

std::vector<JsonValue> JsonValue::as_nonempty_array() const {
  auto items = as_array();
  if (items.empty()) fail("must not be empty");
  return items;
}

double JsonValue::number_at_least(double minimum) const {
  const double value = as_number();
  if (!(value >= minimum)) fail(fmt::format("must be >= {}, got {}", minimum, value_->dump()));
  return value;
}

double JsonValue::number_above(double minimum) const {
  const double value = as_number();
  if (!(value > minimum)) fail(fmt::format("must be > {}, got {}", minimum, value_->dump()));
  return value;
}

double JsonValue::probability() const {
  const double value = as_number();
  if (!(value >= 0.0 && value <= 1.0)) {
    fail(fmt::format("must be between 0 and 1, got {}", value_->dump()));
  }
  return value;
}

int JsonValue::int_at_least(int minimum) const {
  const int value = as_int();
  if (value < minimum) fail(fmt::format("must be >= {}, got {}", minimum, value));
  return value;
}

std::int64_t JsonValue::integer_at_least(std::int64_t minimum) const {
  const std::int64_t value = as_integer();
  if (value < minimum) fail(fmt::format("must be >= {}, got {}", minimum, value));
  return value;
}

JsonObject::JsonObject(const JsonValue& value, std::initializer_list<std::string_view> allowed_keys)
    : self_(value) {
  const auto& raw = value.raw();
  if (!raw.is_object()) {
    value.fail(fmt::format("expected an object, got {}", describe_json_value(raw)));
  }
  for (const auto& [key, member] : raw.items()) {
    if (std::find(allowed_keys.begin(), allowed_keys.end(), key) != allowed_keys.end()) continue;
    std::vector<std::string> allowed(allowed_keys.begin(), allowed_keys.end());
    std::string hint = did_you_mean(key, allowed);
    if (hint.empty()) {
      std::string listed;
      for (const auto& name : allowed) {
        if (!listed.empty()) listed += ", ";
        listed += name;
      }
      hint = fmt::format(" (allowed here: {})", listed);
    }
    JsonValue(value.file(), member, value.pointer() + "/" + escape_pointer_token(key))
        .fail(fmt::format("unknown field \"{}\"{}", key, hint));
  }
}

bool JsonObject::has(std::string_view key) const {
  return self_.raw().contains(key);
}

std::optional<JsonValue> JsonObject::find(std::string_view key) const {
  const auto& raw = self_.raw();
  auto it = raw.find(key);
  if (it == raw.end()) return std::nullopt;
  return JsonValue(self_.file(), *it, self_.pointer() + "/" + escape_pointer_token(key));
}

JsonValue JsonObject::at(std::string_view key) const {
  if (auto found = find(key)) return *found;
  self_.fail(fmt::format("missing required field \"{}\"", key));
}

namespace {
// nlohmann's what() reads "[json.exception.parse_error.101] parse error at line 3, column 5:
// syntax error while parsing ..."; keep the explanation, the place goes into the location.
std::string parse_error_reason(const std::string& what) {
  const auto column = what.find(", column ");
  if (column != std::string::npos) {
    const auto colon = what.find(": ", column);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  const auto bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

// Line and column (both 1-based) of a 1-based byte position, as nlohmann reports them.
std::pair<std::int64_t, std::int64_t> line_and_column(std::string_view text, std::size_t byte) {
  // nlohmann counts `byte` from 1 and points at the character it could not accept.
  const std::size_t end = std::min(byte == 0 ? 0 : byte - 1, text.size());
  std::int64_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, static_cast<std::int64_t>(end - line_start) + 1};
}

// nlohmann keeps one of two equal keys without a word; a pasted block that repeats
// "timeout_ms" is a real mistake, so the parse callback tracks where it is and names the
// duplicate by its JSON pointer.
class DuplicateKeyGuard {
 public:
  explicit DuplicateKeyGuard(const std::string& file) : file_(&file) {}

  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        frames_.push_back(Frame{event == Event::object_start, {}, {}, 0});
        break;
      case Event::key: {
        Frame& frame = frames_.back();
        frame.key = parsed.get<std::string>();
        if (!frame.keys.insert(frame.key).second) {
          throw InputError(*file_, InputLocation{current_pointer(), {}, {}, {}},
                           fmt::format("duplicate key \"{}\" in this object", frame.key));
        }
        break;
      }
      case Event::object_end:
      case Event::array_end:
        frames_.pop_back();
        next_element();
        break;
      case Event::value:
        next_element();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object = false;
    std::set<std::string> keys;
    std::string key;        // the member being read, in an object
    std::size_t index = 0;  // the element being read, in an array
  };

  void next_element() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }

  std::string current_pointer() const {
    std::string pointer;
    for (const auto& frame : frames_) {
      pointer += "/";
      pointer += frame.object ? escape_pointer_token(frame.key) : std::to_string(frame.index);
    }
    return pointer;
  }

  const std::string* file_;
  std::vector<Frame> frames_;
};

// Error texts quote the input; bytes that are not printable ASCII (broken UTF-8 above all)
// are shown as \xNN so the message itself stays valid text.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}
}  // namespace

nlohmann::json parse_json_text(std::string_view text, const std::string& file) {
  DuplicateKeyGuard guard(file);
  try {
    return nlohmann::json::parse(text.begin(), text.end(), std::ref(guard));
  } catch (const nlohmann::json::parse_error& error) {
    const auto [line, column] = line_and_column(text, error.byte);
    throw InputError(file, InputLocation{{}, line, column, static_cast<std::int64_t>(error.byte)},
                     "malformed JSON: " + printable(parse_error_reason(error.what())));
  } catch (const nlohmann::json::exception& error) {
    // Number overflow (1e400) comes without a position: point at the literal it quotes.
    const std::string reason = parse_error_reason(error.what());
    InputLocation where;
    const auto open = reason.find('\'');
    const auto close = reason.rfind('\'');
    if (open != std::string::npos && close > open) {
      const auto at = text.find(reason.substr(open + 1, close - open - 1));
      if (at != std::string_view::npos) {
        std::tie(where.line, where.column) = line_and_column(text, at + 1);
      }
    }
    throw InputError(file, where, "malformed JSON: " + printable(reason));
  }
}

}  // namespace doppel::model::detail
