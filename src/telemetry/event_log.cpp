#include "doppel/telemetry/event_log.hpp"

#include <nlohmann/json.hpp>

namespace doppel::telemetry {

void EventLog::on_event(const twin::TwinEvent& event) {
  // Attributes keep the twin's order; a repeated key keeps its last value, as a JSON reader
  // would.
  nlohmann::ordered_json attributes = nlohmann::ordered_json::object();
  for (const auto& [key, value] : event.attributes) attributes[key] = value;
  const nlohmann::ordered_json line{{"time_s", event.time_s},
                                    {"kind", event.kind},
                                    {"component", event.component},
                                    {"attributes", std::move(attributes)}};
  out_ << line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
  ++events_;
}

void EventLog::on_run_end(double /*end_time_s*/) {
  out_.flush();
}

}  // namespace doppel::telemetry
