// Running a simulation inside a test: SimGrid allows one engine per process, so each run
// happens in a forked child, which sends back named numbers computed from the records. The
// test binary then works both under ctest (one process per TEST) and run directly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"
#include "doppel/twin/twin.hpp"

namespace doppel::twin::testing {

using Metrics = std::map<std::string, double>;

// Runs `body` in a child process and returns what it returned. A child that throws, crashes
// or exits without answering makes this throw std::runtime_error with what is known.
Metrics run_isolated(const std::function<Metrics()>& body);

// Keeps every record of a run (string views stay valid while the topology lives).
class Recorder : public TwinObserver {
 public:
  void on_span(const SpanRecord& s) override { spans.push_back(s); }
  void on_entry(const EntryRecord& e) override { entries.push_back(e); }
  void on_event(const TwinEvent& e) override { events.push_back(e); }
  void on_snapshot(const Snapshot& s) override { snapshots.push_back(s); }
  void on_run_end(double t) override { end_time = t; }

  std::vector<SpanRecord> spans;
  std::vector<EntryRecord> entries;
  std::vector<TwinEvent> events;
  std::vector<Snapshot> snapshots;
  double end_time = -1;
};

// A fingerprint of every record, field by field, in emission order.
std::uint64_t fingerprint(const Recorder& recorder);

model::Topology load_fixture(const std::string& name);  // tests/data/twin/<name>
std::string source_path(const std::string& relative);   // under the source tree

}  // namespace doppel::twin::testing
