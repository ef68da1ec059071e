#include "doppel/experiments/symptoms.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/model/input_error.hpp"

namespace doppel::experiments {
namespace {

using nlohmann::json;

InputLocation at_line(std::int64_t line) {
  InputLocation where;
  where.line = line;
  return where;
}

InputLocation at_pointer(std::string pointer) {
  InputLocation where;
  where.json_pointer = std::move(pointer);
  return where;
}

std::string read_whole_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), {}, "cannot open the file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

json parse_json_text(std::string_view text, const std::string& label) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& error) {
    InputLocation where;
    where.byte_offset = static_cast<std::int64_t>(error.byte);
    throw InputError(label, where, "not valid JSON");
  }
}

// CSV cells as RFC 4180 has them: quotes around a cell may hold commas and doubled quotes.
// A quoted line break is not supported: metrics files never have one, and rejecting it keeps
// line numbers in errors true.
std::vector<std::string> split_csv_line(std::string_view line, const std::string& label,
                                        std::int64_t line_number) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.push_back(std::move(cell));
      cell.clear();
    } else {
      cell += c;
    }
  }
  if (quoted) throw InputError(label, at_line(line_number), "unterminated quoted cell");
  cells.push_back(std::move(cell));
  return cells;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

bool is_missing_cell(std::string_view cell) {
  return cell.empty() || cell == "NaN" || cell == "nan" || cell == "null" || cell == "NA";
}

std::optional<double> parse_number(std::string_view cell) {
  double value = 0.0;
  const char* begin = cell.data();
  const char* end = begin + cell.size();
  if (begin != end && *begin == '+') ++begin;
  const auto [stop, error] = std::from_chars(begin, end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  return value;
}

struct MappedColumn {
  std::string metric;  // empty: dropped
  double scale = 1.0;
};

MappedColumn map_column(const std::string& column, const ColumnMapping& mapping,
                        const std::vector<std::regex>& compiled) {
  for (std::size_t r = 0; r < mapping.rules.size(); ++r) {
    std::smatch match;
    if (!std::regex_match(column, match, compiled[r]) || match.size() < 2) continue;
    std::string service = match[1].str();
    if (const auto alias = mapping.service_aliases.find(service);
        alias != mapping.service_aliases.end()) {
      service = alias->second;
    }
    return {service + "_" + mapping.rules[r].metric, mapping.rules[r].scale};
  }
  if (mapping.drop_unmatched) return {};
  return {column, 1.0};
}

double median_of(std::vector<double> values) {
  if (values.empty()) return 0.0;
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

const json& require(const json& object, const char* key, const std::string& pointer,
                    const std::string& label) {
  const auto found = object.find(key);
  if (found == object.end()) {
    throw InputError(label, at_pointer(pointer), fmt::format("missing required key '{}'", key));
  }
  return *found;
}

std::string require_string(const json& object, const char* key, const std::string& pointer,
                           const std::string& label) {
  const json& value = require(object, key, pointer, label);
  if (!value.is_string() || value.get<std::string>().empty()) {
    throw InputError(label, at_pointer(pointer + "/" + key), "expected a non-empty string");
  }
  return value.get<std::string>();
}

double require_number(const json& value, const std::string& pointer, const std::string& label) {
  if (!value.is_number() || !std::isfinite(value.get<double>())) {
    throw InputError(label, at_pointer(pointer), "expected a finite number");
  }
  return value.get<double>();
}

void reject_unknown_keys(const json& object, std::initializer_list<std::string_view> known,
                         const std::string& pointer, const std::string& label) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw InputError(label, at_pointer(pointer + "/" + key),
                       fmt::format("unknown key '{}'", key));
    }
  }
}

}  // namespace

ColumnMapping ColumnMapping::rca_default() {
  ColumnMapping mapping;
  // Longer suffixes first: "_lat_90" must not be read as a service "x_lat" with metric "90".
  for (const char* percentile : {"50", "90", "95", "99"}) {
    mapping.rules.push_back(
        {fmt::format("(.+)_lat_{}", percentile), fmt::format("lat_{}", percentile), 1.0});
  }
  mapping.rules.push_back({"(.+)_(?:latency|lat)", "lat_50", 1.0});
  mapping.rules.push_back({"(.+)_cpu", "cpu", 1.0});
  mapping.rules.push_back({"(.+)_(?:mem|memory)", "mem", 1.0});
  mapping.rules.push_back({"(.+)_(?:lod|load)", "lod", 1.0});
  mapping.rules.push_back({"(.+)_(?:err|error|errors)", "err", 1.0});
  return mapping;
}

ColumnMapping ColumnMapping::identity() {
  return ColumnMapping{};
}

ColumnMapping parse_column_mapping(std::string_view json_text, const std::string& label) {
  const json doc = parse_json_text(json_text, label);
  if (!doc.is_object()) throw InputError(label, at_pointer(""), "expected a JSON object");
  reject_unknown_keys(doc,
                      {"format", "time_column", "time_scale", "rules", "service_aliases",
                       "drop_unmatched", "include_rca_defaults"},
                      "", label);
  if (const auto format = doc.find("format"); format != doc.end()) {
    if (!format->is_string() || format->get<std::string>() != "doppel-column-mapping/v1") {
      throw InputError(label, at_pointer("/format"), "expected \"doppel-column-mapping/v1\"");
    }
  }
  ColumnMapping mapping;
  if (const auto time = doc.find("time_column"); time != doc.end()) {
    mapping.time_column = require_string(doc, "time_column", "", label);
  }
  if (const auto scale = doc.find("time_scale"); scale != doc.end()) {
    mapping.time_scale = require_number(*scale, "/time_scale", label);
    if (mapping.time_scale <= 0.0) {
      throw InputError(label, at_pointer("/time_scale"), "must be positive");
    }
  }
  if (const auto drop = doc.find("drop_unmatched"); drop != doc.end()) {
    if (!drop->is_boolean())
      throw InputError(label, at_pointer("/drop_unmatched"), "expected true or false");
    mapping.drop_unmatched = drop->get<bool>();
  }
  if (const auto rules = doc.find("rules"); rules != doc.end()) {
    if (!rules->is_array()) throw InputError(label, at_pointer("/rules"), "expected an array");
    for (std::size_t i = 0; i < rules->size(); ++i) {
      const std::string pointer = fmt::format("/rules/{}", i);
      const json& rule = (*rules)[i];
      if (!rule.is_object()) throw InputError(label, at_pointer(pointer), "expected an object");
      reject_unknown_keys(rule, {"pattern", "metric", "scale"}, pointer, label);
      ColumnRule parsed;
      parsed.pattern = require_string(rule, "pattern", pointer, label);
      parsed.metric = require_string(rule, "metric", pointer, label);
      if (const auto scale = rule.find("scale"); scale != rule.end()) {
        parsed.scale = require_number(*scale, pointer + "/scale", label);
      }
      try {
        const std::regex compiled(parsed.pattern);
        if (compiled.mark_count() < 1) {
          throw InputError(label, at_pointer(pointer + "/pattern"),
                           "needs a capture group for the service name, e.g. \"(.+)_cpu\"");
        }
      } catch (const std::regex_error&) {
        throw InputError(label, at_pointer(pointer + "/pattern"), "not a valid regular expression");
      }
      mapping.rules.push_back(std::move(parsed));
    }
  }
  // A file may add rules in front of the built-in RCA ones rather than repeat them.
  if (const auto defaults = doc.find("include_rca_defaults"); defaults != doc.end()) {
    if (!defaults->is_boolean()) {
      throw InputError(label, at_pointer("/include_rca_defaults"), "expected true or false");
    }
    if (defaults->get<bool>()) {
      for (auto& rule : ColumnMapping::rca_default().rules) mapping.rules.push_back(rule);
    }
  }
  if (const auto aliases = doc.find("service_aliases"); aliases != doc.end()) {
    if (!aliases->is_object()) {
      throw InputError(label, at_pointer("/service_aliases"), "expected an object");
    }
    for (const auto& [from, to] : aliases->items()) {
      if (!to.is_string()) {
        throw InputError(label, at_pointer("/service_aliases/" + from), "expected a string");
      }
      mapping.service_aliases.emplace(from, to.get<std::string>());
    }
  }
  return mapping;
}

ColumnMapping load_column_mapping(const std::filesystem::path& file) {
  return parse_column_mapping(read_whole_file(file), file.string());
}

ObservedMetrics read_metrics_csv(const std::filesystem::path& file,
                                 const ReadMetricsOptions& options) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), {}, "cannot open the file");
  return read_metrics_csv(in, file.string(), options);
}

ObservedMetrics read_metrics_csv(std::istream& in, const std::string& label,
                                 const ReadMetricsOptions& options) {
  const ColumnMapping& mapping = options.mapping;
  std::vector<std::regex> compiled;
  compiled.reserve(mapping.rules.size());
  for (const auto& rule : mapping.rules) compiled.emplace_back(rule.pattern);

  std::string line;
  std::int64_t line_number = 0;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    ++line_number;
    if (!trim(line).empty()) {
      header = split_csv_line(line, label, line_number);
      break;
    }
  }
  if (header.empty()) throw InputError(label, at_line(1), "empty file: expected a header row");
  for (auto& name : header) name = std::string(trim(name));
  if (!header.empty() && header[0].rfind("\xEF\xBB\xBF", 0) == 0) header[0].erase(0, 3);

  std::optional<std::size_t> time_index;
  std::vector<MappedColumn> mapped(header.size());
  ObservedMetrics result;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (header[c] == mapping.time_column) {
      time_index = c;
      continue;
    }
    // pandas writes an unnamed index column first: nothing to compare there.
    if (header[c].empty() || header[c] == "Unnamed: 0") continue;
    mapped[c] = map_column(header[c], mapping, compiled);
    if (mapped[c].metric.empty()) result.unmapped_columns.push_back(header[c]);
  }
  if (!time_index) {
    throw InputError(label, at_line(line_number),
                     fmt::format("no '{}' column in the header", mapping.time_column));
  }
  const std::int64_t header_line = line_number;
  std::map<std::string, std::size_t> first_column_of_metric;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (mapped[c].metric.empty()) continue;
    const auto [where, inserted] = first_column_of_metric.emplace(mapped[c].metric, c);
    if (!inserted) {
      throw InputError(label, at_line(header_line),
                       fmt::format("columns '{}' and '{}' both map to metric '{}'",
                                   header[where->second], header[c], mapped[c].metric));
    }
  }

  std::vector<double> times;
  std::vector<std::vector<double>> values(header.size());
  while (std::getline(in, line)) {
    ++line_number;
    if (trim(line).empty()) continue;
    const auto cells = split_csv_line(line, label, line_number);
    if (cells.size() != header.size()) {
      throw InputError(
          label, at_line(line_number),
          fmt::format("{} cells, but the header has {} columns", cells.size(), header.size()));
    }
    const std::string_view time_cell = trim(cells[*time_index]);
    const auto time = parse_number(time_cell);
    if (!time || !std::isfinite(*time)) {
      throw InputError(label, at_line(line_number),
                       fmt::format("time '{}' is not a number", time_cell));
    }
    const double t = *time * mapping.time_scale;
    if (!times.empty() && t < times.back()) {
      throw InputError(label, at_line(line_number),
                       fmt::format("time {} goes backwards (previous row: {})", *time,
                                   times.back() / mapping.time_scale));
    }
    times.push_back(t);
    for (std::size_t c = 0; c < header.size(); ++c) {
      if (mapped[c].metric.empty()) {
        continue;
      }
      const std::string_view cell = trim(cells[c]);
      double value = std::numeric_limits<double>::quiet_NaN();
      if (!is_missing_cell(cell)) {
        const auto number = parse_number(cell);
        if (!number) {
          throw InputError(label, at_line(line_number),
                           fmt::format("column '{}': '{}' is not a number", header[c], cell));
        }
        value = *number * mapped[c].scale;
      }
      values[c].push_back(value);
    }
  }

  std::vector<double> gaps;
  for (std::size_t i = 1; i < times.size(); ++i) gaps.push_back(times[i] - times[i - 1]);
  result.row_interval_s = median_of(gaps);
  double origin = 0.0;
  if (options.time_origin_s) {
    origin = *options.time_origin_s * mapping.time_scale;
  } else if (!times.empty()) {
    origin = times.front() - result.row_interval_s;
  }
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (mapped[c].metric.empty()) continue;
    TimeSeries series;
    for (std::size_t row = 0; row < times.size(); ++row) {
      if (std::isfinite(values[c][row])) series.push_back({times[row] - origin, values[c][row]});
    }
    result.series.emplace(mapped[c].metric, std::move(series));
  }
  return result;
}

bool Symptom::holds(double observed) const {
  switch (op) {
    case Op::greater:
      return observed > value;
    case Op::greater_equal:
      return observed >= value;
    case Op::less:
      return observed < value;
    case Op::less_equal:
      return observed <= value;
  }
  return false;
}

std::string_view to_string(Symptom::Op op) {
  switch (op) {
    case Symptom::Op::greater:
      return ">";
    case Symptom::Op::greater_equal:
      return ">=";
    case Symptom::Op::less:
      return "<";
    case Symptom::Op::less_equal:
      return "<=";
  }
  return "?";
}

std::string Symptom::describe() const {
  std::string text =
      fmt::format("{} {} {:g} from t={:g} s", metric_name(), to_string(op), value, from_s);
  if (until_s) text += fmt::format(" until t={:g} s", *until_s);
  return text;
}

SymptomSpec parse_symptom_spec(std::string_view json_text, const std::string& label) {
  const json doc = parse_json_text(json_text, label);
  if (!doc.is_object()) throw InputError(label, at_pointer(""), "expected a JSON object");
  reject_unknown_keys(doc, {"format", "symptoms"}, "", label);
  const json& list = require(doc, "symptoms", "", label);
  if (!list.is_array() || list.empty()) {
    throw InputError(label, at_pointer("/symptoms"), "expected a non-empty array");
  }
  SymptomSpec spec;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string pointer = fmt::format("/symptoms/{}", i);
    const json& entry = list[i];
    if (!entry.is_object()) throw InputError(label, at_pointer(pointer), "expected an object");
    reject_unknown_keys(entry, {"service", "metric", "op", "value", "from_s", "until_s"}, pointer,
                        label);
    Symptom symptom;
    symptom.service = require_string(entry, "service", pointer, label);
    symptom.metric = require_string(entry, "metric", pointer, label);
    const std::string op = require_string(entry, "op", pointer, label);
    if (op == ">") {
      symptom.op = Symptom::Op::greater;
    } else if (op == ">=") {
      symptom.op = Symptom::Op::greater_equal;
    } else if (op == "<") {
      symptom.op = Symptom::Op::less;
    } else if (op == "<=") {
      symptom.op = Symptom::Op::less_equal;
    } else {
      throw InputError(label, at_pointer(pointer + "/op"),
                       fmt::format("unknown op '{}': expected >, >=, < or <=", op));
    }
    symptom.value =
        require_number(require(entry, "value", pointer, label), pointer + "/value", label);
    if (const auto from = entry.find("from_s"); from != entry.end()) {
      symptom.from_s = require_number(*from, pointer + "/from_s", label);
    }
    if (const auto until = entry.find("until_s"); until != entry.end()) {
      symptom.until_s = require_number(*until, pointer + "/until_s", label);
      if (*symptom.until_s <= symptom.from_s) {
        throw InputError(label, at_pointer(pointer + "/until_s"), "must be after from_s");
      }
    }
    spec.symptoms.push_back(std::move(symptom));
  }
  return spec;
}

SymptomSpec load_symptom_spec(const std::filesystem::path& file) {
  return parse_symptom_spec(read_whole_file(file), file.string());
}

}  // namespace doppel::experiments
