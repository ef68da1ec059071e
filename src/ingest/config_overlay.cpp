// The config overlay: a partial document merged on top of the reconstructed topology at the
// JSON level, then checked by the topology loader like any topology file.
#include "doppel/ingest/config_overlay.hpp"

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include <fmt/format.h>

#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::ingest {

namespace {

using nlohmann::json;

class OverlayMerger {
 public:
  OverlayMerger(Reconstruction& reconstruction, const std::string& file)
      : reconstruction_(reconstruction), file_(file) {}

  void apply(const json& overlay) {
    if (!overlay.is_object()) fail("", "an overlay is a JSON object");
    check_keys(overlay, "",
               {"doppel", "name", "description", "zones", "network", "services", "datastores",
                "edge_defaults", "edges", "gateway", "workload", "slos"});
    if (auto it = overlay.find("doppel"); it != overlay.end()) {
      if (!it->is_string() || *it != kOverlayFormat) {
        fail("/doppel", fmt::format("unsupported format {}: an overlay says \"{}\"", it->dump(),
                                    kOverlayFormat));
      }
    }
    doc_ = model::topology_to_json(reconstruction_.topology);
    inferred_zones_ = true;
    for (const char* key : {"name", "description"}) {
      if (auto it = overlay.find(key); it != overlay.end()) configure(std::string("/") + key, *it);
    }
    if (auto it = overlay.find("zones"); it != overlay.end()) apply_zones(*it);
    if (auto it = overlay.find("network"); it != overlay.end()) configure("/network", *it);
    if (auto it = overlay.find("services"); it != overlay.end()) apply_services(*it);
    if (auto it = overlay.find("datastores"); it != overlay.end()) apply_datastores(*it);
    if (auto it = overlay.find("edge_defaults"); it != overlay.end()) apply_edge_defaults(*it);
    if (auto it = overlay.find("edges"); it != overlay.end()) apply_edges(*it);
    if (auto it = overlay.find("gateway"); it != overlay.end()) apply_gateway(*it);
    if (auto it = overlay.find("workload"); it != overlay.end()) apply_workload(*it);
    if (auto it = overlay.find("slos"); it != overlay.end()) configure("/slos", *it);

    model::Topology merged;
    try {
      merged = model::parse_topology(doc_, file_);
    } catch (const InputError& error) {
      // The pointer is into the merged document (arrays by index, as `doppel topology show
      // --json` prints it): the overlay set a value the topology format refuses.
      throw InputError(file_, error.where(),
                       "in the topology after merging the overlay: " + error.message());
    }
    reconstruction_.topology = std::move(merged);
    mark_provenance();
  }

 private:
  [[noreturn]] void fail(const std::string& pointer, const std::string& message) const {
    throw InputError(file_, InputLocation{pointer, {}, {}, {}}, message);
  }

  void check_keys(const json& object, const std::string& pointer,
                  std::initializer_list<std::string_view> allowed) const {
    if (!object.is_object()) fail(pointer, "expected an object, got " + object.dump());
    for (const auto& [key, value] : object.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string known;
      for (auto name : allowed) known += (known.empty() ? "" : ", ") + std::string(name);
      fail(pointer + "/" + json_pointer_token(key),
           fmt::format("unknown key \"{}\" (known here: {})", key, known));
    }
  }

  // Sets doc_ at `doc_pointer` and records `named_pointer` (names, not indices) as configured.
  void configure(const std::string& doc_pointer, const json& value,
                 std::string named_pointer = {}) {
    doc_[json::json_pointer(doc_pointer)] = value;
    configured_.push_back(named_pointer.empty() ? doc_pointer : std::move(named_pointer));
  }

  static std::size_t index_of(const json& array, const std::string& name) {
    for (std::size_t i = 0; i < array.size(); ++i) {
      if (array[i].value("name", std::string()) == name) return i;
    }
    return array.size();
  }

  [[noreturn]] void fail_unknown(const std::string& pointer, std::string_view what,
                                 const std::string& name, const json& array) const {
    std::string known;
    for (const auto& item : array) {
      known += (known.empty() ? "" : ", ") + item.value("name", std::string());
    }
    fail(pointer, fmt::format("no {} \"{}\" in the reconstructed topology (it has: {})", what, name,
                              known.empty() ? "none" : known));
  }

  void apply_zones(const json& zones) {
    if (!zones.is_array() || zones.empty()) fail("/zones", "expected a non-empty array of zones");
    const json first_zone = zones[0].is_object() ? zones[0].value("name", json()) : json();
    if (!first_zone.is_string()) fail("/zones/0/name", "the first zone needs a name");
    configure("/zones", zones);
    inferred_zones_ = false;
    // The inferred hosts are gone: whatever the overlay does not place goes to the first zone,
    // spread over its hosts.
    for (auto& service : doc_["services"]) {
      service["placement"] = json::array({{{"zone", first_zone}}});
    }
    for (auto& store : doc_["datastores"]) store["primary"] = {{"zone", first_zone}};
  }

  // More replicas than instances seen, on the inferred platform: a host of its own for each
  // new replica, as for the observed ones.
  void add_inferred_hosts(json& service, int replicas) {
    const std::string name = service["name"];
    json& hosts = doc_["zones"][0]["hosts"];
    const std::string zone = doc_["zones"][0]["name"];
    json placement = json::array();
    for (int r = 1; r <= replicas; ++r) {
      const std::string host = fmt::format("{}-{}", name, r);
      if (index_of(hosts, host) == hosts.size()) {
        json copy = hosts.empty() ? json{{"cores", 4}, {"speed", 1.0}} : hosts[0];
        copy["name"] = host;
        hosts.push_back(copy);
      }
      placement.push_back({{"zone", zone}, {"host", host}});
    }
    service["placement"] = placement;
  }

  void apply_services(const json& services) {
    if (!services.is_object()) fail("/services", "expected an object keyed by service name");
    json& list = doc_["services"];
    for (const auto& [name, fields] : services.items()) {
      const std::string pointer = "/services/" + json_pointer_token(name);
      const std::size_t index = index_of(list, name);
      if (index == list.size()) fail_unknown(pointer, "service", name, list);
      check_keys(fields, pointer,
                 {"replicas", "placement", "workers", "queue_capacity", "memory", "operations"});
      const std::string at = fmt::format("/services/{}", index);
      for (const char* key : {"replicas", "placement", "workers", "queue_capacity", "memory"}) {
        if (auto it = fields.find(key); it != fields.end()) {
          configure(at + "/" + key, *it, pointer + "/" + key);
        }
      }
      if (auto replicas = fields.find("replicas");
          replicas != fields.end() && !fields.contains("placement") && inferred_zones_ &&
          replicas->is_number_integer() && *replicas >= 1 && *replicas <= 10000) {
        add_inferred_hosts(list[index], replicas->get<int>());
      }
      if (auto operations = fields.find("operations"); operations != fields.end()) {
        apply_operations(*operations, pointer + "/operations", list[index], at);
      }
    }
  }

  void apply_operations(const json& operations, const std::string& pointer, json& service,
                        const std::string& at) {
    if (!operations.is_object()) fail(pointer, "expected an object keyed by operation name");
    json& list = service["operations"];
    for (const auto& [name, fields] : operations.items()) {
      const std::string op_pointer = pointer + "/" + json_pointer_token(name);
      const std::size_t index = index_of(list, name);
      if (index == list.size()) fail_unknown(op_pointer, "operation", name, list);
      check_keys(fields, op_pointer, {"cpu_ms", "error_rate"});
      for (const char* key : {"cpu_ms", "error_rate"}) {
        if (auto it = fields.find(key); it != fields.end()) {
          configure(fmt::format("{}/operations/{}/{}", at, index, key), *it,
                    op_pointer + "/" + key);
        }
      }
    }
  }

  void apply_datastores(const json& datastores) {
    if (!datastores.is_object()) fail("/datastores", "expected an object keyed by datastore name");
    json& list = doc_["datastores"];
    for (const auto& [name, fields] : datastores.items()) {
      const std::string pointer = "/datastores/" + json_pointer_token(name);
      const std::size_t index = index_of(list, name);
      if (index == list.size()) fail_unknown(pointer, "datastore", name, list);
      const std::initializer_list<std::string_view> kKeys{
          "kind",    "consistency", "primary", "replicas", "replication_lag_ms", "max_connections",
          "workers", "key_space"};
      check_keys(fields, pointer, kKeys);
      for (auto key : kKeys) {
        if (auto it = fields.find(key); it != fields.end()) {
          configure(fmt::format("/datastores/{}/{}", index, key), *it,
                    pointer + "/" + std::string(key));
        }
      }
    }
  }

  void apply_edge_defaults(const json& defaults) {
    check_keys(defaults, "/edge_defaults",
               {"timeout_ms", "retries", "circuit_breaker", "load_balancing", "connection_pool"});
    for (const auto& [key, value] : defaults.items()) configure("/edge_defaults/" + key, value);
  }

  // Edges are matched by (from, to): an overlay edge replaces the inferred one or is added.
  void apply_edges(const json& edges) {
    if (!edges.is_array()) fail("/edges", "expected an array of edge policies");
    json& list = doc_["edges"];
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const json& edge = edges[i];
      const std::string pointer = fmt::format("/edges/{}", i);
      check_keys(edge, pointer,
                 {"from", "to", "timeout_ms", "retries", "circuit_breaker", "load_balancing",
                  "connection_pool"});
      for (const char* end : {"from", "to"}) {
        auto it = edge.find(end);
        if (it == edge.end() || !it->is_string()) {
          fail(pointer + "/" + end, fmt::format("an edge needs \"{}\" (a component name)", end));
        }
        const std::string name = *it;
        const bool known = name == "*" ||
                           index_of(doc_["services"], name) < doc_["services"].size() ||
                           index_of(doc_["datastores"], name) < doc_["datastores"].size();
        if (!known) {
          fail(pointer + "/" + end,
               fmt::format("no service or datastore \"{}\" in the reconstructed topology", name));
        }
      }
      const std::string from = edge["from"];
      const std::string to = edge["to"];
      auto same = std::find_if(list.begin(), list.end(), [&](const json& e) {
        return e.value("from", std::string()) == from && e.value("to", std::string()) == to;
      });
      if (same != list.end()) {
        *same = edge;
      } else {
        list.push_back(edge);
      }
      configured_.push_back("/edges/" + json_pointer_token(from) + "->" + json_pointer_token(to));
    }
  }

  void apply_gateway(const json& gateway) {
    check_keys(gateway, "/gateway", {"latency_ms", "routes", "default"});
    for (const auto& [key, value] : gateway.items()) configure("/gateway/" + key, value);
  }

  void apply_workload(const json& workload) {
    check_keys(workload, "/workload", {"duration_s", "clients"});
    for (const auto& [key, value] : workload.items()) configure("/workload/" + key, value);
  }

  // Values under a configured pointer now come from the overlay.
  void mark_provenance() {
    auto& provenance = reconstruction_.provenance;
    for (const auto& pointer : configured_) {
      std::erase_if(provenance, [&](const ProvenanceEntry& entry) {
        return entry.pointer == pointer || entry.pointer.starts_with(pointer + "/");
      });
      provenance.push_back({pointer, "overlay", "set by " + file_});
    }
    std::sort(
        provenance.begin(), provenance.end(),
        [](const ProvenanceEntry& a, const ProvenanceEntry& b) { return a.pointer < b.pointer; });
  }

  Reconstruction& reconstruction_;
  const std::string& file_;
  json doc_;
  bool inferred_zones_ = true;
  std::vector<std::string> configured_;  // pointers with names, as in the provenance
};

}  // namespace

void apply_config_overlay(Reconstruction& reconstruction, const nlohmann::json& overlay,
                          const std::string& file_label) {
  Reconstruction copy = reconstruction;
  OverlayMerger(copy, file_label).apply(overlay);
  reconstruction = std::move(copy);
}

void apply_config_overlay_file(Reconstruction& reconstruction, const std::filesystem::path& file) {
  const std::string label = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(label, InputLocation{}, "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  nlohmann::json overlay;
  try {
    overlay = nlohmann::json::parse(content);
  } catch (const nlohmann::json::parse_error& error) {
    // Byte offset to line and column, as the topology loader reports syntax errors.
    const std::size_t offset =
        std::min<std::size_t>(error.byte > 0 ? error.byte - 1 : 0, content.size());
    const auto line = 1 + std::count(content.begin(),
                                     content.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
    const auto line_start = content.rfind('\n', offset == 0 ? 0 : offset - 1);
    const auto column =
        static_cast<std::int64_t>(
            offset - (line_start == std::string::npos || offset == 0 ? 0 : line_start + 1)) +
        1;
    InputLocation where;
    where.line = line;
    where.column = column;
    throw InputError(label, where, "invalid JSON");
  }
  apply_config_overlay(reconstruction, overlay, label);
}

std::string json_pointer_token(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace doppel::ingest
