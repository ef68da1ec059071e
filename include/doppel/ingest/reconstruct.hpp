// From spans to a topology/v1 document (docs/reconstruction.md).
//
// TopologyReconstructor is a SpanSink: a trace reader feeds it spans, it keeps the spans of
// the traces still open, analyses each trace once it is complete (or once memory runs short),
// and folds the trace into per-operation statistics. finish() turns the statistics into a
// Topology (services, operations with fitted self time, call plans with counts, parallel
// groups and probabilities, datastores and queues, workload, gateway routes), plus the
// observed call graph and a provenance list saying where every value came from.
//
// SimGrid-free: nothing here simulates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "doppel/ingest/span.hpp"
#include "doppel/model/topology.hpp"

namespace doppel::ingest {

enum class SelfTimeFit {
  empirical,  // quantile histogram (default): keeps skew and tails as observed
  lognormal,  // median and sigma of log: smooth, two numbers
};

struct ReconstructOptions {
  std::string topology_name = "reconstructed";
  SelfTimeFit fit = SelfTimeFit::empirical;
  int histogram_buckets = 24;   // quantile buckets of an empirical fit
  double rate_window_s = 10.0;  // arrival rates are counted per window of this length
  // Spans buffered in open traces before the least recently touched traces are analysed
  // early (their late spans then count as orphans). Bounds memory on interleaved input.
  std::size_t max_buffered_spans = 200'000;
  // Self-time samples kept per operation (deterministic reservoir beyond this).
  std::size_t max_samples_per_operation = 100'000;
  // Root spans of this service that forward the request to exactly one operation are the
  // gateway, not a service: the operation they forward to is the entry, their own time the
  // gateway's latency. Empty: no gateway.
  std::string gateway_service = "gateway";
};

enum class ComponentKind { service, datastore, queue };

struct ObservedComponent {
  std::string name;
  ComponentKind kind = ComponentKind::service;
};

// One observed dependency between components, summed over operations.
struct ObservedDependency {
  std::uint64_t calls = 0;  // call spans seen
  bool messaging = false;   // producer -> queue or queue -> consumer
};

// The observed call graph at component level: services, datastores and queues as vertices.
using CallGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS,
                                        ObservedComponent, ObservedDependency>;

// Where a value of the output came from: "traces" (inferred), "overlay" (configured) or
// "default" (neither said; see docs/reconstruction.md for the defaults).
struct ProvenanceEntry {
  std::string pointer;  // JSON pointer into the topology document, names instead of indices
  std::string source;
  std::string note;  // how it was inferred, or which default

  bool operator==(const ProvenanceEntry&) const = default;
};

// What reconstruction itself noticed, beside the readers' DataQuality.
struct ReconstructionStats {
  std::uint64_t spans = 0;
  std::uint64_t traces = 0;
  std::uint64_t entry_requests = 0;        // root spans: the workload
  std::uint64_t fragment_roots = 0;        // spans whose parent never came: analysed, not workload
  std::uint64_t early_flushed_traces = 0;  // analysed before the input ended (memory bound)
  std::uint64_t transparent_client_spans = 0;  // client spans with no callee and no peer name
  std::vector<std::string> notes;              // one sentence each: dropped cycle edges, errors not
                                               // representable in topology/v1, ...
};

// What the traces showed of one operation, to compare a replay with (doppel build --check).
struct ObservedOperation {
  std::uint64_t spans = 0;
  std::vector<double> latency_ms;  // span durations (a reservoir beyond the sample cap), sorted
  std::map<std::string, double> calls_per_span;  // "callee.operation" -> mean calls per span
};

struct Reconstruction {
  model::Topology topology;
  std::map<std::string, ObservedOperation> observed;  // "service.operation"
  CallGraph call_graph;
  std::vector<ProvenanceEntry> provenance;  // sorted by pointer
  ReconstructionStats stats;
};

class TopologyReconstructor : public SpanSink {
 public:
  explicit TopologyReconstructor(ReconstructOptions options = {});
  ~TopologyReconstructor() override;
  TopologyReconstructor(const TopologyReconstructor&) = delete;
  TopologyReconstructor& operator=(const TopologyReconstructor&) = delete;

  void on_span(Span&& span) override;
  // Analyses the traces still open and builds the result. Throws doppel::InputError (file
  // "traces") when no usable span was seen. Call once.
  Reconstruction finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Names of the components in `graph` that `component` calls directly, sorted.
std::vector<std::string> callees_of(const CallGraph& graph, const std::string& component);

// The provenance as a JSON-ready list, and written beside the topology as a sidecar file.
std::string provenance_to_json_text(const std::vector<ProvenanceEntry>& provenance);

}  // namespace doppel::ingest
