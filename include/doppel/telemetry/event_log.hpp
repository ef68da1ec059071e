// events.jsonl: what happened to the system (breaker transitions, pool exhaustion, faults,
// config changes), one JSON object per TwinEvent, in the order the twin reported them:
// {"time_s":12.5,"kind":"breaker_open","component":"web->api","attributes":{...}}.
#pragma once

#include <cstdint>
#include <ostream>

#include "doppel/twin/observer.hpp"

namespace doppel::telemetry {

class EventLog final : public twin::TwinObserver {
 public:
  // `out` must outlive the log.
  explicit EventLog(std::ostream& out) : out_(out) {}

  void on_event(const twin::TwinEvent& event) override;
  void on_run_end(double end_time_s) override;

  std::uint64_t events_written() const { return events_; }

 private:
  std::ostream& out_;
  std::uint64_t events_ = 0;
};

}  // namespace doppel::telemetry
