#include "faults/topology_patch.hpp"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "model/json_reader.hpp"

namespace doppel::faults::detail {

namespace {

using nlohmann::json;

std::vector<std::string> split_pointer(std::string_view path) {
  std::vector<std::string> tokens;
  std::size_t pos = 1;  // past the leading '/'
  while (pos <= path.size()) {
    const std::size_t next = path.find('/', pos);
    const std::string_view raw =
        path.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    std::string token;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token += raw[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        token += raw[i];
      }
    }
    tokens.push_back(std::move(token));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return tokens;
}

bool parse_index(const std::string& token, std::size_t& index) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) return false;
  const auto* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, index);
  return ec == std::errc() && ptr == end;
}

// The element of an array of named objects (or of from/to edges) that a token names.
std::optional<std::size_t> find_named(const json& array, const std::string& token) {
  for (std::size_t i = 0; i < array.size(); ++i) {
    const json& item = array[i];
    if (!item.is_object()) continue;
    auto name = item.find("name");
    if (name != item.end() && name->is_string() && name->get<std::string>() == token) return i;
    auto from = item.find("from");
    auto to = item.find("to");
    if (from != item.end() && to != item.end() && from->is_string() && to->is_string() &&
        from->get<std::string>() + "->" + to->get<std::string>() == token) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace

ResolvedPointer resolve_topology_pointer(const json& doc, std::string_view path,
                                         bool allow_new_member) {
  ResolvedPointer out;
  if (path.empty() || path.front() != '/') {
    out.error = fmt::format("\"{}\" is not a JSON pointer (it must start with \"/\")", path);
    return out;
  }
  const auto tokens = split_pointer(path);
  const json* here = &doc;
  std::string resolved;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const std::string& token = tokens[t];
    const bool last = t + 1 == tokens.size();
    const std::string where = resolved.empty() ? "the document root" : resolved;
    if (here->is_object()) {
      auto it = here->find(token);
      if (it == here->end()) {
        if (last && allow_new_member) {
          out.pointer = resolved + "/" + model::detail::escape_pointer_token(token);
          out.exists = false;
          return out;
        }
        out.error = fmt::format("the topology has no \"{}\" under {}", token, where);
        return out;
      }
      resolved += "/" + model::detail::escape_pointer_token(token);
      here = &*it;
    } else if (here->is_array()) {
      std::size_t index = 0;
      if (token == "-" && last && allow_new_member) {
        out.pointer = resolved + "/-";
        out.exists = false;
        return out;
      }
      if (parse_index(token, index)) {
        if (index >= here->size()) {
          out.error = fmt::format("index {} is past the end of {} ({} elements)", index, where,
                                  here->size());
          return out;
        }
      } else if (auto named = find_named(*here, token)) {
        index = *named;
      } else {
        out.error = fmt::format("no element named \"{}\" in {}", token, where);
        return out;
      }
      resolved += fmt::format("/{}", index);
      here = &(*here)[index];
    } else {
      out.error = fmt::format("{} is {}, which has no \"{}\"", where,
                              model::detail::describe_json_value(*here), token);
      return out;
    }
  }
  out.pointer = resolved;
  out.exists = true;
  return out;
}

void apply_topology_change(json& doc, const TopologyChange& change) {
  const json::json_pointer pointer(change.resolved_path);
  switch (change.op) {
    case TopologyChange::Op::set: {
      const std::string& path = change.resolved_path;
      if (path.size() >= 2 && path.compare(path.size() - 2, 2, "/-") == 0) {
        doc[pointer.parent_pointer()].push_back(change.value);
      } else {
        doc[pointer] = change.value;
      }
      break;
    }
    case TopologyChange::Op::scale:
      doc[pointer] = doc[pointer].get<double>() * change.factor;
      break;
    case TopologyChange::Op::remove: {
      json& parent = doc[pointer.parent_pointer()];
      const std::string key = pointer.back();
      if (parent.is_array()) {
        parent.erase(static_cast<std::size_t>(std::stoul(key)));
      } else {
        parent.erase(key);
      }
      break;
    }
  }
}

}  // namespace doppel::faults::detail
