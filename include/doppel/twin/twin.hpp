// Running the twin: simulate a topology's workload on SimGrid and report what happens to
// TwinObservers (observer.hpp). docs/twin.md describes the model; this header is all a caller
// needs, and it has no SimGrid in it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::twin {

class TwinRuntime;

struct TwinOptions {
  // Randomness: every component draws from RandomStream::for_component(seed, run, its name).
  std::uint64_t seed = 1;
  std::uint64_t run = 0;
  // Simulated seconds to run; <= 0: the workload's duration_s.
  double duration_s = 0.0;
  // Snapshot (gauges and totals) period, also the window of pool-exhaustion end detection.
  double snapshot_interval_s = 1.0;

  // How transfers between hosts take time:
  //  - flow: SimGrid's flow model (CM02): concurrent transfers share link bandwidth; right
  //    when bandwidth is scarce (large payloads, saturated links).
  //  - latency: each transfer takes path latency + bytes / path bandwidth, independent of the
  //    others; several times faster, right when links are not the bottleneck.
  enum class NetworkModel { flow, latency };
  NetworkModel network = NetworkModel::latency;

  // Called once the twin is built, before simulated time starts: later layers (faults) get
  // the runtime here and schedule their changes with TwinRuntime::at().
  std::function<void(TwinRuntime&)> on_start;
};

struct RunStats {
  std::uint64_t entries = 0;  // entry requests finished (EntryRecords emitted)
  std::uint64_t spans = 0;    // SpanRecords emitted
  double simulated_s = 0.0;
  double wall_s = 0.0;
  // Requests delivered to a server (a service instance or a datastore node), retries
  // included: the unit of the engine's speed in docs/performance.md.
  std::uint64_t hops = 0;
  bool stopped = false;  // TwinRuntime::stop() ended the run early, at simulated_s
};

// Runs one simulation. SimGrid's engine is a process-wide singleton, so this may be called
// once per process: a second call throws std::logic_error. Run independent simulations
// (replications, hypotheses) as separate processes. Throws doppel::InputError when the
// topology cannot be simulated (an unknown zone or host, a bad regex).
RunStats run_twin(const model::Topology& topology, const TwinOptions& options,
                  std::span<TwinObserver* const> observers);

// The SimGrid platform (XML, DTD version 4.1) equivalent to the one run_twin builds in code:
// a zone per topology zone, a link per host, a link per pair of zones. Pure string
// generation: usable without starting SimGrid.
std::string platform_xml(const model::Topology& topology);

}  // namespace doppel::twin
