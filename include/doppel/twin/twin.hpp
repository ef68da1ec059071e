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

  // How CPU work shares a host's cores. Both give what SimGrid's max-min CPU model gives
  // single-core work of equal priority: n jobs on c cores each run at speed * min(1, c / n).
  //  - processor_sharing: computed by the engine, one scheduled callback per host (the default,
  //    several times cheaper per request);
  //  - simgrid_executions: one SimGrid execution per request, the reference the former is
  //    tested against (tests/twin).
  enum class CpuModel { processor_sharing, simgrid_executions };
  CpuModel cpu_model = CpuModel::processor_sharing;

  // How a request's call plan (calls, retries, pools, parallel groups) is carried out:
  //  - callbacks: a state machine per request and per call, advanced by the engine's scheduled
  //  callbacks
  //    (replies, deadlines, CPU completions, the ends of flow transfers): no actor is woken
  //    per call (the default; with CpuModel::simgrid_executions requests use actors);
  //  - actors: the caller's actor (a worker, or a runner for entries and parallel branches)
  //    blocks for each call, the reference the former is tested against (tests/twin).
  // Both simulate the same thing; only events at the same simulated instant may be ordered
  // differently.
  enum class Requests { callbacks, actors };
  Requests requests = Requests::callbacks;

  // Whether the engine's timeline (its scheduled callbacks behind one SimGrid kernel timer)
  // may run on to its next instant without a SimGrid scheduling round when nothing in
  // SimGrid can happen first: with processor_sharing CPUs and the latency network (or, with
  // callbacks, no flow transfer a SimGrid comm at the time), SimGrid then has no model that
  // takes time. false: every instant of the timeline is a SimGrid round and SimGrid's clock
  // leads throughout, the reference the default is tested against (tests/twin); the records
  // are the same, only slower (docs/performance.md).
  bool run_ahead = true;

  // With the flow network and callbacks: whether a transfer that shares no link with another
  // is computed (latency + bytes / its bound, SimGrid's answer for it) rather than made a
  // SimGrid comm; sharing still goes to SimGrid (docs/twin.md, "Networks"). false: every
  // transfer is a SimGrid comm, the reference the default is tested against (tests/twin).
  bool flow_shortcut = true;

  // Called once the twin is built, before simulated time starts: later layers (faults) get
  // the runtime here and schedule their changes with TwinRuntime::at().
  std::function<void(TwinRuntime&)> on_start;
};

// What the run asked of SimGrid, counted by the engine: the operations that cost it time
// (docs/performance.md, "Twin engine").
struct SimGridOps {
  std::uint64_t executions = 0;          // CPU executions: a max-min variable and solve each
  std::uint64_t actor_blocks = 0;        // an actor blocked until woken: two context switches
  std::uint64_t timed_blocks = 0;        // of those, by a SimGrid sleep or wait with a timeout
  std::uint64_t timers = 0;              // kernel timers set
  std::uint64_t comms = 0;               // network transfers made SimGrid comms (flow model)
  std::uint64_t computed_transfers = 0;  // flow transfers alone on their links: no comm
  // Not SimGrid's: callbacks scheduled on the engine's own timeline (behind one kernel timer),
  // and the distinct instants it ran on to without a SimGrid scheduling round.
  std::uint64_t scheduled = 0;
  std::uint64_t instants_ahead = 0;
  std::uint64_t rounds = 0;  // SimGrid scheduling rounds that advanced its clock
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
  SimGridOps simgrid;
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
