// A JSON string as nlohmann::json::dump() writes it, appended without building a DOM: the
// OTLP writer and the RCA dataset's events.jsonl write one per span or event.
#pragma once

#include <string>
#include <string_view>

namespace doppel::telemetry::detail {

// JSON's escapes (\" \\ \b \f \n \r \t, \u00XX for other control bytes) for ASCII text;
// text with a byte above 0x7f goes through nlohmann itself, which validates the UTF-8 and
// throws on invalid input.
void append_json_string(std::string& out, std::string_view text);

}  // namespace doppel::telemetry::detail
