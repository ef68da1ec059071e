// Reading and writing topology/v1 files (docs/topology-format.md).
//
// Loading checks everything a user can get wrong: types, unknown keys (with a did-you-mean),
// names, references between parts, call cycles, value ranges and regexes. The first mistake
// is thrown as doppel::InputError, "FILE: /json/pointer: message". Things that are legal but
// probably unintended (a service nothing calls, an edge policy no call uses) are warnings:
// pass a vector to collect them, one sentence each, prefixed with the JSON pointer.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/model/topology.hpp"

namespace doppel::model {

// Reads and checks a topology file; `file` as given labels every error.
Topology load_topology(const std::filesystem::path& file,
                       std::vector<std::string>* warnings = nullptr);

// Checks an already-parsed document; `file_label` names it in errors.
Topology parse_topology(const nlohmann::json& doc, const std::string& file_label,
                        std::vector<std::string>* warnings = nullptr);

// Parses JSON text (syntax errors are reported with line and column) and checks it.
Topology parse_topology_text(std::string_view text, const std::string& file_label,
                             std::vector<std::string>* warnings = nullptr);

// The canonical topology/v1 document: every field written out, defaults resolved, edges
// complete. parse_topology(topology_to_json(t)) == t.
nlohmann::json topology_to_json(const Topology& topology);

}  // namespace doppel::model
