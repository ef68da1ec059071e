// The config overlay of `doppel build --config`: what traces cannot show (replicas, zones,
// pool sizes, timeouts, retries, breakers, datastore consistency, routes, SLOs), merged on
// top of a reconstructed topology. Format and semantics: docs/reconstruction.md, "Config
// overlay". Every key is optional; unknown keys, services, operations and datastores are
// errors naming the overlay file and the JSON pointer.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "doppel/ingest/reconstruct.hpp"

namespace doppel::ingest {

inline constexpr const char* kOverlayFormat = "overlay/v1";

// Merges `overlay` into reconstruction.topology, checks the result as a topology/v1 document
// would be checked, and marks every configured value "overlay" in the provenance. Throws
// doppel::InputError labelled `file_label`; the reconstruction is unchanged on error.
void apply_config_overlay(Reconstruction& reconstruction, const nlohmann::json& overlay,
                          const std::string& file_label);

// Reads the overlay file (JSON syntax errors with line and column), then applies it.
void apply_config_overlay_file(Reconstruction& reconstruction, const std::filesystem::path& file);

// "a/b~c" -> "a~1b~0c": a name as one JSON pointer token (RFC 6901).
std::string json_pointer_token(std::string_view name);

}  // namespace doppel::ingest
