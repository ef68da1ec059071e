// Chaos Toolkit tolerances, judged as chaostoolkit-lib's hypothesis.within_tolerance does,
// with Python's equality and ordering rules spelled out (True == 1, no str/int ordering).
#include <cctype>
#include <charconv>

#include <re2/re2.h>

#include "doppel/faults/chaos_toolkit.hpp"

namespace doppel::faults::chaos {

namespace {

using nlohmann::json;

// Python treats bool as an int subclass in comparisons.
bool numeric(const json& v) {
  return v.is_number() || v.is_boolean();
}
double as_double(const json& v) {
  return v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>();
}

bool python_equal(const json& a, const json& b) {
  if (numeric(a) && numeric(b)) return as_double(a) == as_double(b);
  if (a.is_string() && b.is_string())
    return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
  if (a.is_null() && b.is_null()) return true;
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!python_equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a.items()) {
      auto other = b.find(key);
      if (other == b.end() || !python_equal(value, *other)) return false;
    }
    return true;
  }
  return false;
}

// a <= b where Python can order them (numbers, strings); Python raises otherwise, which the
// toolkit reports as a failed check.
std::optional<bool> python_less_equal(const json& a, const json& b) {
  if (numeric(a) && numeric(b)) return as_double(a) <= as_double(b);
  if (a.is_string() && b.is_string())
    return a.get_ref<const std::string&>() <= b.get_ref<const std::string&>();
  return std::nullopt;
}

bool contains(const json& list, const json& value) {
  for (const auto& item : list) {
    if (python_equal(item, value)) return true;
  }
  return false;
}

bool in_range(const json& lo, const json& value, const json& hi) {
  const auto low_ok = python_less_equal(lo, value);
  const auto high_ok = python_less_equal(value, hi);
  return low_ok.value_or(false) && high_ok.value_or(false);
}

bool has_status(const json& value) {
  return value.is_object() && value.contains("status");
}

// value.get(target, value) for a dict output.
const json& targeted(const json& tolerance, const json& value) {
  auto target = tolerance.find("target");
  if (target == tolerance.end() || !target->is_string() || !value.is_object()) return value;
  auto it = value.find(target->get<std::string>());
  return it == value.end() ? value : *it;
}

// Decimal(value): numbers, bools and numeric strings.
std::optional<double> as_decimal(const json& value) {
  if (numeric(value)) return as_double(value);
  if (!value.is_string()) return std::nullopt;
  std::string text = value.get<std::string>();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::size_t begin = 0;
  while (begin < text.size() && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  if (begin < text.size() && text[begin] == '+') ++begin;
  double out = 0.0;
  const char* first = text.data() + begin;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (ec != std::errc() || ptr != last || first == last) return std::nullopt;
  return out;
}

bool dict_tolerance(const json& tolerance, const json& value) {
  const std::string type = tolerance.value("type", "");
  if (type == "regex") {
    const json& subject = targeted(tolerance, value);
    const auto pattern = tolerance.find("pattern");
    if (!subject.is_string() || pattern == tolerance.end() || !pattern->is_string()) return false;
    const RE2 regex(pattern->get<std::string>(), RE2::Quiet);
    return regex.ok() && RE2::PartialMatch(subject.get<std::string>(), regex);
  }
  if (type == "jsonpath") {
    json subject = targeted(tolerance, value);
    if (subject.is_string()) {
      json parsed = json::parse(subject.get<std::string>(), nullptr, false);
      if (!parsed.is_discarded()) subject = std::move(parsed);
    }
    const auto path = tolerance.find("path");
    if (path == tolerance.end() || !path->is_string()) return false;
    const auto values = json_path_values(path->get<std::string>(), subject);
    if (!values) return false;
    bool result = !values->empty();
    if (auto count = tolerance.find("count"); count != tolerance.end() && !count->is_null()) {
      result = numeric(*count) && as_double(*count) == static_cast<double>(values->size());
    }
    if (auto expect = tolerance.find("expect"); expect != tolerance.end()) {
      const json found(*values);
      result = expect->is_array() ? python_equal(found, *expect)
                                  : python_equal(found, json::array({*expect}));
    }
    return result;
  }
  if (type == "range") {
    const auto number = as_decimal(targeted(tolerance, value));
    const auto range = tolerance.find("range");
    if (!number || range == tolerance.end() || !range->is_array() || range->size() != 2 ||
        !numeric((*range)[0]) || !numeric((*range)[1])) {
      return false;
    }
    return as_double((*range)[0]) <= *number && *number <= as_double((*range)[1]);
  }
  return false;  // "probe" needs the user's Python; the loader rejects it
}

}  // namespace

bool within_tolerance(const json& tolerance, const json& value) {
  if (tolerance.is_boolean() || tolerance.is_string()) return python_equal(value, tolerance);
  if (tolerance.is_number_integer() || tolerance.is_number_unsigned()) {
    if (has_status(value)) return python_equal(value["status"], tolerance);
    return python_equal(value, tolerance);
  }
  if (tolerance.is_array()) {
    if (has_status(value)) return contains(tolerance, value["status"]);
    if (tolerance.size() == 2) return in_range(tolerance[0], value, tolerance[1]);
    return contains(tolerance, value);
  }
  if (tolerance.is_object()) return dict_tolerance(tolerance, value);
  return false;  // a float or null tolerance: chaostoolkit-lib has no rule for it
}

std::optional<std::vector<json>> json_path_values(std::string_view path, const json& document) {
  std::size_t pos = 0;
  while (pos < path.size() && std::isspace(static_cast<unsigned char>(path[pos]))) ++pos;
  if (pos >= path.size() || path[pos] != '$') return std::nullopt;
  ++pos;
  std::vector<const json*> current{&document};
  const auto is_name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  };
  while (pos < path.size()) {
    std::vector<const json*> next;
    const char c = path[pos];
    if (c == '.') {
      ++pos;
      if (pos < path.size() && path[pos] == '.') return std::nullopt;  // recursive descent
      if (pos < path.size() && path[pos] == '*') {
        ++pos;
        for (const json* node : current) {
          if (node->is_object() || node->is_array()) {
            for (const auto& child : *node) next.push_back(&child);
          }
        }
      } else {
        const std::size_t start = pos;
        while (pos < path.size() && is_name_char(path[pos])) ++pos;
        if (pos == start) return std::nullopt;
        const std::string name(path.substr(start, pos - start));
        for (const json* node : current) {
          if (node->is_object() && node->contains(name)) next.push_back(&(*node)[name]);
        }
      }
    } else if (c == '[') {
      const std::size_t close = path.find(']', pos);
      if (close == std::string_view::npos) return std::nullopt;
      const std::string_view inside = path.substr(pos + 1, close - pos - 1);
      pos = close + 1;
      if (inside == "*") {
        for (const json* node : current) {
          if (node->is_object() || node->is_array()) {
            for (const auto& child : *node) next.push_back(&child);
          }
        }
      } else if (inside.size() >= 2 && (inside.front() == '\'' || inside.front() == '"') &&
                 inside.back() == inside.front()) {
        const std::string name(inside.substr(1, inside.size() - 2));
        for (const json* node : current) {
          if (node->is_object() && node->contains(name)) next.push_back(&(*node)[name]);
        }
      } else {
        long long index = 0;
        auto [ptr, ec] = std::from_chars(inside.data(), inside.data() + inside.size(), index);
        if (ec != std::errc() || ptr != inside.data() + inside.size()) return std::nullopt;
        for (const json* node : current) {
          if (!node->is_array()) continue;
          const long long size = static_cast<long long>(node->size());
          const long long at = index < 0 ? size + index : index;
          if (at >= 0 && at < size) next.push_back(&(*node)[static_cast<std::size_t>(at)]);
        }
      }
    } else {
      return std::nullopt;
    }
    current = std::move(next);
  }
  std::vector<json> values;
  for (const json* node : current) values.push_back(*node);
  return values;
}

}  // namespace doppel::faults::chaos
