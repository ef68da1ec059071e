// TopologyReconstructor: buffers the spans of open traces, hands complete traces to the
// analysis (reconstruct_trace.cpp), and assembles the Topology from the statistics.
#include "doppel/ingest/reconstruct.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include <boost/graph/depth_first_search.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/ingest/config_overlay.hpp"
#include "doppel/model/input_error.hpp"

#include "ingest/reconstruct_trace.hpp"

namespace doppel::ingest {

using detail::CalleeKey;
using detail::ObservedStats;

struct TopologyReconstructor::State {
  ReconstructOptions options;
  model::RandomStream rng{0x5eed'd0bb'e1ULL};
  ObservedStats stats;

  struct OpenTrace {
    std::vector<Span> spans;
    std::uint64_t last_touch = 0;
  };
  std::map<TraceId, OpenTrace> open;
  std::map<std::uint64_t, TraceId> by_touch;  // least recently touched first
  std::uint64_t clock = 0;
  std::size_t buffered = 0;
  bool finished = false;

  void close(std::map<TraceId, OpenTrace>::iterator it) {
    by_touch.erase(it->second.last_touch);
    buffered -= it->second.spans.size();
    detail::analyse_trace(it->second.spans, options, rng, stats);
    open.erase(it);
  }
};

TopologyReconstructor::TopologyReconstructor(ReconstructOptions options)
    : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
}

TopologyReconstructor::~TopologyReconstructor() = default;

void TopologyReconstructor::on_span(Span&& span) {
  State& s = *state_;
  // Nameless spans still count; topology/v1 needs names.
  if (span.service.empty()) span.service = "unknown-service";
  if (span.operation.empty()) span.operation = "unnamed";
  auto [it, fresh] = s.open.try_emplace(span.trace_id);
  if (!fresh) s.by_touch.erase(it->second.last_touch);
  it->second.last_touch = ++s.clock;
  s.by_touch.emplace(it->second.last_touch, span.trace_id);
  it->second.spans.push_back(std::move(span));
  ++s.buffered;
  if (s.buffered > s.options.max_buffered_spans) {
    // Analyse the traces idle the longest until half the budget is free again.
    while (s.buffered > s.options.max_buffered_spans / 2 && s.open.size() > 1) {
      auto oldest = s.open.find(s.by_touch.begin()->second);
      ++s.stats.counters.early_flushed_traces;
      s.close(oldest);
    }
  }
}

namespace {

constexpr const char* kDefaultZone = "zone-1";
constexpr int kDefaultHostCores = 4;
constexpr double kDefaultTimeoutFloorMs = 1000.0;

// Rounds to `digits` decimals: dividing by an exact power of ten gives the nearest double
// (1.9, not 1.9000000000000001).
double round_to(double value, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(value * scale) / scale;
}

model::Distribution fit_distribution(std::vector<double> samples,
                                     const ReconstructOptions& options) {
  if (samples.empty()) return model::Distribution::constant(0.0);
  std::sort(samples.begin(), samples.end());
  if (options.fit == SelfTimeFit::lognormal) {
    double sum = 0.0;
    for (double x : samples) sum += std::log(std::max(x, 1e-3));
    const double mu = sum / static_cast<double>(samples.size());
    double squares = 0.0;
    for (double x : samples) squares += std::pow(std::log(std::max(x, 1e-3)) - mu, 2);
    const double sigma =
        samples.size() > 1 ? std::sqrt(squares / static_cast<double>(samples.size() - 1)) : 0.0;
    return model::Distribution::lognormal(std::exp(mu), sigma);
  }
  // Quantile buckets: edges at the min and at the i/B quantiles. The first bucket holds the
  // minimum's ties, so the lower tail is not smeared down to zero.
  const std::size_t n = samples.size();
  const std::size_t bucket_count = std::clamp<std::size_t>(
      static_cast<std::size_t>(std::max(1, options.histogram_buckets)), 1, n);
  std::vector<model::HistogramBucket> buckets;
  auto add_edge = [&](double upper) {
    if (!buckets.empty() && !(upper > buckets.back().upper_ms)) return;
    const auto below = static_cast<double>(std::upper_bound(samples.begin(), samples.end(), upper) -
                                           samples.begin());
    const double already =
        std::accumulate(buckets.begin(), buckets.end(), 0.0,
                        [](double sum, const model::HistogramBucket& b) { return sum + b.weight; });
    buckets.push_back(model::HistogramBucket{upper, below - already});
  };
  // A zero-weight first bucket at the minimum: samples then fall in (min, max], not (0, max].
  buckets.push_back(model::HistogramBucket{samples.front(), 0.0});
  // Edges at the i/B quantiles, and finer ones in the upper tail: a draw is uniform inside
  // its bucket, and a last bucket from the 96th percentile to the maximum would spread the
  // rare slow samples over it and inflate the replayed p99 (by 40% on HotROD's routes).
  std::vector<std::size_t> ranks;
  auto rank_of = [n](double q) {
    return std::min(n - 1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(n))) - 1);
  };
  for (std::size_t b = 1; b <= bucket_count; ++b) {
    ranks.push_back(std::min(n - 1, (b * n + bucket_count - 1) / bucket_count - 1));
  }
  for (double q : {0.95, 0.975, 0.99, 0.995, 0.999}) {
    if (bucket_count > 1) ranks.push_back(rank_of(q));
  }
  std::sort(ranks.begin(), ranks.end());
  for (std::size_t rank : ranks) add_edge(samples[rank]);
  if (buckets.size() == 1) return model::Distribution::constant(samples.front());
  return model::Distribution::empirical(std::move(buckets));
}

// Whether arrival counts per window could come from one constant-rate Poisson stream: the
// index-of-dispersion statistic sum((c - mean)^2) / mean is chi-square with k - 1 degrees of
// freedom then, and stays below its 99th percentile (Wilson-Hilferty approximation) 99% of
// the time. Replaying a steady stream window by window would add the counts' sampling noise
// as bursts the system never saw (more overlap, more queueing in the replay).
bool consistent_with_constant_rate(const std::vector<double>& counts) {
  if (counts.size() < 2) return true;
  const double k = static_cast<double>(counts.size());
  const double mean = std::accumulate(counts.begin(), counts.end(), 0.0) / k;
  if (mean <= 0.0) return true;
  double statistic = 0.0;
  for (double c : counts) statistic += (c - mean) * (c - mean) / mean;
  const double df = k - 1.0;
  constexpr double kZ99 = 2.326;
  const double a = 2.0 / (9.0 * df);
  const double critical = df * std::pow(1.0 - a + kZ99 * std::sqrt(a), 3.0);
  return statistic <= critical;
}

std::string slug(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (keep) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "op" : out;
}

// An exact-match RE2 pattern for a literal path.
std::string literal_regex(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '-' && c != '_') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

class Assembler {
 public:
  Assembler(ObservedStats& stats, const ReconstructOptions& options)
      : stats_(stats), options_(options) {}

  Reconstruction build() {
    resolve_name_clashes();
    drop_cycle_calls();
    Reconstruction out;
    out.topology.name = options_.topology_name;
    out.topology.description =
        fmt::format("Reconstructed by doppel build from {} traces ({} spans, {} entry requests).",
                    stats_.counters.traces, stats_.counters.spans, stats_.counters.entry_requests);
    infer_network_latency();
    infer_connection_pools();
    build_services(out);
    build_datastores(out);
    build_platform(out);
    build_workload(out);
    build_edges(out);
    build_call_graph(out);
    out.stats = stats_.counters;
    std::sort(
        out.provenance.begin(), out.provenance.end(),
        [](const ProvenanceEntry& a, const ProvenanceEntry& b) { return a.pointer < b.pointer; });
    return out;
  }

 private:
  void note(std::string sentence) { stats_.counters.notes.push_back(std::move(sentence)); }

  static void record(Reconstruction& out, std::string pointer, std::string source,
                     std::string note) {
    out.provenance.push_back({std::move(pointer), std::move(source), std::move(note)});
  }

  // A datastore seen under a name that is also an instrumented service's gets a suffix: the
  // topology needs distinct component names.
  void resolve_name_clashes() {
    std::map<std::string, std::string> renamed;
    for (auto it = stats_.stores.begin(); it != stats_.stores.end();) {
      if (stats_.services.count(it->first) == 0) {
        ++it;
        continue;
      }
      std::string name = it->first + "-store";
      while (stats_.services.count(name) || stats_.stores.count(name)) name += "-x";
      note(fmt::format("datastore \"{}\" shares its name with a service: written as \"{}\"",
                       it->first, name));
      renamed[it->first] = name;
      auto node = stats_.stores.extract(it++);
      node.key() = name;
      stats_.stores.insert(std::move(node));
    }
    if (renamed.empty()) return;
    for (auto& [service_name, service] : stats_.services) {
      for (auto& [op_name, op] : service.operations) {
        std::map<CalleeKey, detail::CallStats> calls;
        for (auto& [key, call] : op.calls) {
          CalleeKey fixed = key;
          if (key.kind != ComponentKind::service && renamed.count(key.component)) {
            fixed.component = renamed[key.component];
          }
          calls[fixed] = call;
        }
        op.calls = std::move(calls);
        std::map<std::pair<CalleeKey, CalleeKey>, detail::PairStats> pairs;
        for (auto& [key, pair] : op.pairs) {
          auto fix = [&](CalleeKey k) {
            if (k.kind != ComponentKind::service && renamed.count(k.component)) {
              k.component = renamed[k.component];
            }
            return k;
          };
          auto a = fix(key.first);
          auto b = fix(key.second);
          if (b < a) std::swap(a, b);
          pairs[{a, b}] = pair;
        }
        op.pairs = std::move(pairs);
      }
    }
  }

  // topology/v1 forbids call cycles between operations (a request would never end); traces
  // can show one (recursion, a callback). The call closing each cycle is dropped and noted.
  void drop_cycle_calls() {
    using Graph = boost::adjacency_list<boost::setS, boost::vecS, boost::directedS>;
    std::map<std::pair<std::string, std::string>, std::size_t> vertex_of;
    std::vector<std::pair<std::string, std::string>> names;
    for (const auto& [service_name, service] : stats_.services) {
      for (const auto& [op_name, op] : service.operations) {
        vertex_of.try_emplace({service_name, op_name}, names.size());
        names.emplace_back(service_name, op_name);
      }
    }
    Graph graph(names.size());
    for (const auto& [service_name, service] : stats_.services) {
      for (const auto& [op_name, op] : service.operations) {
        const std::size_t from = vertex_of.at({service_name, op_name});
        for (const auto& [key, call] : op.calls) {
          if (key.kind != ComponentKind::service) continue;
          auto to = vertex_of.find({key.component, key.operation});
          if (to != vertex_of.end()) boost::add_edge(from, to->second, graph);
        }
      }
    }
    // Without the back edges of one depth-first search a graph is acyclic: one pass drops
    // exactly those.
    using Edge = std::pair<std::size_t, std::size_t>;
    struct BackEdgeCollector : boost::default_dfs_visitor {
      std::vector<Edge>* back_edges;
      void back_edge(boost::graph_traits<Graph>::edge_descriptor e, const Graph& g) const {
        back_edges->emplace_back(boost::source(e, g), boost::target(e, g));
      }
    };
    std::vector<Edge> back_edges;
    BackEdgeCollector collector;
    collector.back_edges = &back_edges;
    if (boost::num_edges(graph) > 0) boost::depth_first_search(graph, boost::visitor(collector));
    for (const auto& [from, to] : back_edges) {
      const auto& [from_service, from_op] = names[from];
      const auto& [to_service, to_op] = names[to];
      stats_.services[from_service].operations[from_op].calls.erase(
          CalleeKey{to_service, to_op, ComponentKind::service});
      note(
          fmt::format("call {}.{} -> {}.{} closes a call cycle: dropped (topology/v1 has no "
                      "recursive calls)",
                      from_service, from_op, to_service, to_op));
    }
  }

  std::vector<model::Step> build_steps(const detail::OperationStats& op) const {
    struct Candidate {
      CalleeKey key;
      const detail::CallStats* stats;
      double mean_start;
    };
    std::vector<Candidate> candidates;
    for (const auto& [key, call] : op.calls) {
      candidates.push_back(
          {key, &call, call.relative_start_sum / static_cast<double>(call.instances_with_call)});
    }
    std::stable_sort(
        candidates.begin(), candidates.end(),
        [](const Candidate& a, const Candidate& b) { return a.mean_start < b.mean_start; });
    // Union-find over callees that overlap in most of the requests calling both.
    std::vector<std::size_t> group(candidates.size());
    std::iota(group.begin(), group.end(), 0);
    auto find = [&](std::size_t x) {
      while (group[x] != x) x = group[x] = group[group[x]];
      return x;
    };
    for (std::size_t a = 0; a < candidates.size(); ++a) {
      for (std::size_t b = a + 1; b < candidates.size(); ++b) {
        auto first = candidates[a].key;
        auto second = candidates[b].key;
        if (second < first) std::swap(first, second);
        auto it = op.pairs.find({first, second});
        if (it == op.pairs.end()) continue;
        if (2 * it->second.overlapping > it->second.together) group[find(b)] = find(a);
      }
    }
    std::vector<model::Step> steps;
    std::map<std::size_t, std::size_t> step_of_group;
    const double instances = static_cast<double>(op.instances);
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      const auto& [key, call, mean_start] = candidates[c];
      auto [it, fresh] = step_of_group.try_emplace(find(c), steps.size());
      if (fresh) steps.emplace_back();
      model::Step& step = steps[it->second];
      model::Call out;
      out.to = key.component;
      out.operation = key.operation;
      const double present = static_cast<double>(call->instances_with_call);
      out.count = round_to(static_cast<double>(call->total_calls) / present, 6);
      out.probability = std::min(1.0, round_to(present / instances, 6));
      if (call->request_bytes_seen > 0) {
        out.request_bytes =
            std::llround(call->request_bytes_sum / static_cast<double>(call->request_bytes_seen));
      }
      if (call->response_bytes_seen > 0) {
        out.response_bytes =
            std::llround(call->response_bytes_sum / static_cast<double>(call->response_bytes_seen));
      }
      step.calls.push_back(std::move(out));
      const bool repeats_overlap =
          call->instances_with_repeats > 0 &&
          2 * call->instances_with_overlapping_repeats > call->instances_with_repeats;
      if (step.calls.size() > 1 || repeats_overlap) step.parallel = true;
    }
    return steps;
  }

  void build_services(Reconstruction& out) {
    for (const auto& [name, service] : stats_.services) {
      model::Service s;
      s.name = name;
      const std::string base = "/services/" + json_pointer_token(name);
      if (service.instances.size() > 1) {
        s.replicas = static_cast<int>(service.instances.size());
        record(out, base + "/replicas", "traces",
               fmt::format("{} distinct instances seen", service.instances.size()));
      } else {
        record(out, base + "/replicas", "default",
               service.instances.empty() ? "1: no instance ids in the traces"
                                         : "1: one instance seen");
      }
      record(out, base + "/workers", "default", fmt::format("{} per instance", s.workers));
      record(out, base + "/queue_capacity", "default", fmt::format("{}", s.queue_capacity));
      record(out, base + "/memory", "default", "base 64 MB, 64 kB per request");
      for (const auto& [op_name, op] : service.operations) {
        model::Operation operation;
        operation.name = op_name;
        const bool pooled = calls_through_pool(name, op);
        const auto& self_ms = pooled ? op.self_ms_waits_in_calls : op.self_ms;
        operation.cpu_ms = fit_distribution(self_ms.samples(), options_);
        operation.error_rate =
            op.instances > 0
                ? round_to(static_cast<double>(op.own_errors) / static_cast<double>(op.instances),
                           6)
                : 0.0;
        operation.steps = build_steps(op);
        ObservedOperation& observed = out.observed[name + "." + op_name];
        observed.spans = op.instances;
        observed.latency_ms = op.latency_ms.samples();
        std::sort(observed.latency_ms.begin(), observed.latency_ms.end());
        for (const auto& [key, call] : op.calls) {
          observed.calls_per_span[key.component + "." + key.operation] =
              static_cast<double>(call.total_calls) / static_cast<double>(op.instances);
        }
        const std::string op_base = base + "/operations/" + json_pointer_token(op_name);
        record(out, op_base + "/cpu_ms", "traces",
               fmt::format("{} fit of self time over {} spans{}", to_string(operation.cpu_ms.kind),
                           self_ms.seen(),
                           pooled ? " (waits for a pooled connection left to the pool)"
                                  : " (waits for a connection count as own time)"));
        record(out, op_base + "/error_rate", "traces",
               fmt::format("{} own failures in {} spans", op.own_errors, op.instances));
        record(out, op_base + "/steps", "traces", "call plan from child spans");
        s.operations.push_back(std::move(operation));
      }
      out.topology.services.push_back(std::move(s));
    }
  }

  // Repeated calls that the callee served fewer at a time than the caller had asked for,
  // in most parent spans repeating them: a limit on the caller's side, kept as a
  // connection pool of the most ever served at once.
  void infer_connection_pools() {
    for (const auto& [name, service] : stats_.services) {
      for (const auto& [op_name, op] : service.operations) {
        for (const auto& [key, call] : op.calls) {
          if (key.kind == ComponentKind::queue || call.instances_with_repeats == 0 ||
              2 * call.instances_with_limited_concurrency <= call.instances_with_repeats ||
              call.max_served_concurrently < 1) {
            continue;
          }
          int& size = pools_[{name, key.component}];
          size = std::max(size, call.max_served_concurrently);
        }
      }
    }
    // Across requests: an edge whose callers often waited before the callee started had
    // all its connections busy then; the pool is the most calls one caller instance ever
    // had served at once.
    for (auto& [ends, usage] : stats_.edges) {
      if (usage.waited < 5 || 20 * usage.waited < usage.calls) continue;
      if (stats_.services.count(ends.second) == 0 && stats_.stores.count(ends.second) == 0) {
        continue;  // renamed (a datastore named like a service): no edge to put it on
      }
      int size = 0;
      for (auto& [instance, intervals] : usage.served) {
        size = std::max(size, detail::peak_concurrency(std::move(intervals)));
      }
      if (size < 1) continue;
      int& pool = pools_[ends];
      pool = std::max(pool, size);
    }
  }

  // Whether an operation calls through an inferred pool: the replay then reproduces the
  // waits for a connection, and they must not be spent again as the operation's own time.
  bool calls_through_pool(const std::string& service, const detail::OperationStats& op) const {
    return std::any_of(op.calls.begin(), op.calls.end(), [&](const auto& entry) {
      return pools_.count({service, entry.first.component}) > 0;
    });
  }

  // The median one-way time between a client span and its server span (network, stack,
  // serialisation) becomes the zone's link latency; without client/server pairs, 100 us.
  void infer_network_latency() {
    std::vector<double> samples = stats_.one_way_network_ms.samples();
    if (samples.empty()) return;
    std::sort(samples.begin(), samples.end());
    const double median_ms = samples[samples.size() / 2];
    network_latency_us_ = std::clamp(round_to(median_ms * 1000.0, 3), 1.0, 100'000.0);
    network_pairs_ = stats_.one_way_network_ms.seen();
  }

  void build_datastores(Reconstruction& out) {
    for (const auto& [name, store] : stats_.stores) {
      model::Datastore d;
      d.name = name;
      d.kind = store.datastore_kind;
      const std::string base = "/datastores/" + json_pointer_token(name);
      record(out, base + "/kind", "traces", store.evidence);
      record(out, base + "/consistency", "default", "strong");
      record(out, base + "/replicas", "default", "none");
      record(out, base + "/max_connections", "default", fmt::format("{}", d.max_connections));
      record(out, base + "/workers", "default", fmt::format("{}", d.workers));
      for (const auto& [query_name, query] : store.queries) {
        model::Query q;
        q.name = query_name;
        q.type = store.kind == ComponentKind::queue ? model::QueryType::write
                                                    : detail::query_type(query_name);
        // Client spans include the round trip the twin adds again over the zone's link; the
        // datastore's own spans do not.
        std::vector<double> costs = query.cost_ms.samples();
        const double round_trip_ms = 2.0 * network_latency_us_ / 1000.0;
        for (double& cost : costs) cost = std::max(0.0, cost - round_trip_ms);
        const auto& served = query.server_cost_ms.samples();
        costs.insert(costs.end(), served.begin(), served.end());
        q.cost_ms = fit_distribution(std::move(costs), options_);
        record(out, base + "/queries/" + json_pointer_token(query_name), "traces",
               query.server_cost_ms.seen() > 0 && query.cost_ms.seen() == 0
                   ? fmt::format("cost from {} of the datastore's own spans",
                                 query.server_cost_ms.seen())
                   : fmt::format("cost from {} client spans, minus the {:g} ms round trip, and "
                                 "{} of the datastore's own spans",
                                 query.cost_ms.seen(), round_trip_ms, query.server_cost_ms.seen()));
        if (query.errors > 0) {
          note(
              fmt::format("{}.{}: {} of {} calls failed; topology/v1 has no datastore error "
                          "rate, so these failures are not simulated",
                          name, query_name, query.errors, query.calls));
        }
        d.queries.push_back(std::move(q));
      }
      for (const auto& consumer : store.consumers) {
        note(
            fmt::format("{} consumes from queue \"{}\": messaging edge kept in the call graph, "
                        "not simulated (topology/v1 has no consumers)",
                        consumer, name));
      }
      out.topology.datastores.push_back(std::move(d));
    }
  }

  // One zone; each service instance and each datastore on a host of its own, so no CPU is
  // shared that the traces did not show shared. A host has a core per worker: self time
  // measured in spans is wall time that already holds production's CPU contention, and
  // must not be stretched again by the twin sharing too few cores among busy workers.
  void build_platform(Reconstruction& out) {
    model::Zone zone;
    zone.name = kDefaultZone;
    zone.network.latency_us = network_latency_us_;
    auto add_host = [&](const std::string& name, int workers) {
      model::Host host;
      host.name = name;
      host.cores = std::max(kDefaultHostCores, workers);
      zone.hosts.push_back(host);
      return name;
    };
    for (auto& service : out.topology.services) {
      for (int r = 0; r < service.replicas; ++r) {
        service.placement.push_back(model::Placement{
            kDefaultZone, add_host(fmt::format("{}-{}", service.name, r + 1), service.workers)});
      }
      record(out, "/services/" + json_pointer_token(service.name) + "/placement", "default",
             "one host of its own per instance");
    }
    for (auto& store : out.topology.datastores) {
      store.primary = model::Placement{kDefaultZone, add_host(store.name + "-1", store.workers)};
      record(out, "/datastores/" + json_pointer_token(store.name) + "/primary", "default",
             "a host of its own");
    }
    out.topology.zones.push_back(std::move(zone));
    record(out, "/zones", "default",
           fmt::format("one zone \"{}\", hosts at speed 1 with a core per worker (at least {})",
                       kDefaultZone, kDefaultHostCores));
    if (network_pairs_ > 0) {
      record(out, "/zones/" + std::string(kDefaultZone) + "/latency_us", "traces",
             fmt::format("median of (client - server span duration) / 2 over {} calls",
                         network_pairs_));
    } else {
      record(out, "/zones/" + std::string(kDefaultZone) + "/latency_us", "default",
             "100 us: no call seen from both sides");
    }
    record(out, "/network", "default", "10 Gbit/s inside the zone");
  }

  void build_workload(Reconstruction& out) {
    const double window = std::max(1e-3, options_.rate_window_s);
    std::int64_t first = 0;
    std::int64_t last = 0;
    bool any = false;
    for (const auto& [key, entry] : stats_.entries) {
      if (entry.arrivals_per_window.empty()) continue;
      const std::int64_t lo = entry.arrivals_per_window.begin()->first;
      const std::int64_t hi = entry.arrivals_per_window.rbegin()->first;
      first = any ? std::min(first, lo) : lo;
      last = any ? std::max(last, hi) : hi;
      any = true;
    }
    std::set<std::pair<std::string, std::string>> used_paths;
    std::set<std::string> route_names;
    if (const auto& own = stats_.gateway_ms.samples(); !own.empty()) {
      std::vector<double> sorted = own;
      std::sort(sorted.begin(), sorted.end());
      out.topology.gateway.latency_ms = round_to(sorted[sorted.size() / 2], 6);
      record(out, "/gateway/latency_ms", "traces",
             fmt::format("median own time of {} \"{}\" entry spans", stats_.gateway_ms.seen(),
                         options_.gateway_service));
    }
    for (const auto& [key, entry] : stats_.entries) {
      const auto& [service, operation] = key;
      std::string name = entry.route.empty() ? slug(service + "-" + operation) : entry.route;
      while (route_names.count(name)) name += "-2";
      route_names.insert(name);
      std::string path = entry.path;
      if (path.empty() || used_paths.count({entry.method, path})) {
        path = "/" + slug(service) + "/" + slug(operation);
      }
      used_paths.insert({entry.method, path});

      model::Route route;
      route.name = name;
      if (!entry.method.empty()) route.method = entry.method;
      route.path_regex = literal_regex(path);
      route.service = service;
      route.operation = operation;
      out.topology.gateway.routes.push_back(route);
      record(out, "/gateway/routes/" + name, "traces",
             fmt::format("entry operation {}.{}", service, operation));

      model::ClientClass client;
      client.name = name;
      client.mix.push_back(
          model::RequestKind{entry.method.empty() ? "GET" : entry.method, path, 1.0});
      std::vector<double> counts;
      for (std::int64_t w = first; w <= last; ++w) {
        auto it = entry.arrivals_per_window.find(w);
        counts.push_back(it == entry.arrivals_per_window.end() ? 0.0
                                                               : static_cast<double>(it->second));
      }
      const bool steady = consistent_with_constant_rate(counts);
      if (steady) {
        const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
        client.rate.push_back(model::RatePoint{
            0.0, round_to(total / (static_cast<double>(counts.size()) * window), 9)});
      } else {
        for (std::size_t w = 0; w < counts.size(); ++w) {
          const double rps = round_to(counts[w] / window, 9);
          if (!client.rate.empty() && client.rate.back().rps == rps) continue;
          client.rate.push_back(model::RatePoint{static_cast<double>(w) * window, rps});
        }
      }
      out.topology.workload.clients.push_back(std::move(client));
      record(out, "/workload/clients/" + name, "traces",
             steady ? fmt::format("one rate: root spans per {:g} s window vary no more than a "
                                  "steady Poisson stream's (dispersion test, 1%)",
                                  window)
                    : fmt::format("root spans per {:g} s window", window));
    }
    out.topology.workload.duration_s =
        any ? static_cast<double>(last - first + 1) * window : window;
    record(out, "/workload/duration_s", "traces", "the traces' time span, whole windows");
    record(out, "/slos", "default", "none");
    if (!any) note("no root spans: the workload is empty (only fragments of traces were seen)");
  }

  void build_edges(Reconstruction& out) {
    // Calls must not time out where the real system waited: the default timeout is at least
    // twice the slowest call observed.
    const double timeout = std::max(kDefaultTimeoutFloorMs, std::ceil(2.0 * stats_.max_call_ms));
    out.topology.edge_defaults.timeout_ms = timeout;
    record(out, "/edge_defaults/timeout_ms", "traces",
           fmt::format("max(1000, twice the slowest call seen: {:.3f} ms)", stats_.max_call_ms));
    record(out, "/edge_defaults/retries", "default", "none");
    record(out, "/edge_defaults/circuit_breaker", "default", "off");
    record(out, "/edge_defaults/connection_pool", "default", "unlimited");

    for (const auto& [ends, size] : pools_) {
      model::EdgePolicy edge = out.topology.edge_defaults;
      edge.from = ends.first;
      edge.to = ends.second;
      edge.pool.size = size;
      // Production waited for a connection without failing: so does the twin.
      edge.pool.acquire_timeout_ms = timeout;
      out.topology.edges.push_back(edge);
      record(out,
             "/edges/" + json_pointer_token(ends.first) + "->" + json_pointer_token(ends.second) +
                 "/connection_pool",
             "traces",
             fmt::format("size {}: the most calls served at once while more were waiting", size));
    }
  }

  void build_call_graph(Reconstruction& out) {
    std::map<std::string, CallGraph::vertex_descriptor> vertex;
    auto add = [&](const std::string& name, ComponentKind kind) {
      if (!vertex.count(name))
        vertex[name] = boost::add_vertex(ObservedComponent{name, kind}, out.call_graph);
      return vertex[name];
    };
    for (const auto& [name, service] : stats_.services) add(name, ComponentKind::service);
    for (const auto& [name, store] : stats_.stores) add(name, store.kind);
    auto connect = [&](const std::string& from, const std::string& to, std::uint64_t calls,
                       bool messaging) {
      auto [edge, exists] = boost::edge(vertex.at(from), vertex.at(to), out.call_graph);
      if (!exists) edge = boost::add_edge(vertex.at(from), vertex.at(to), out.call_graph).first;
      out.call_graph[edge].calls += calls;
      out.call_graph[edge].messaging = out.call_graph[edge].messaging || messaging;
    };
    for (const auto& [name, service] : stats_.services) {
      for (const auto& [op_name, op] : service.operations) {
        for (const auto& [key, call] : op.calls) {
          if (!vertex.count(key.component)) continue;
          connect(name, key.component, call.total_calls, key.kind == ComponentKind::queue);
        }
      }
    }
    for (const auto& [name, store] : stats_.stores) {
      for (const auto& consumer : store.consumers) {
        if (vertex.count(consumer)) connect(name, consumer, 0, true);
      }
    }
  }

  ObservedStats& stats_;
  const ReconstructOptions& options_;
  double network_latency_us_ = model::NetworkLink{}.latency_us;
  std::map<std::pair<std::string, std::string>, int> pools_;  // (caller, callee) -> size
  std::uint64_t network_pairs_ = 0;
};

}  // namespace

Reconstruction TopologyReconstructor::finish() {
  State& s = *state_;
  if (s.finished) throw std::logic_error("TopologyReconstructor::finish called twice");
  s.finished = true;
  while (!s.open.empty()) s.close(s.open.find(s.by_touch.begin()->second));
  if (s.stats.services.empty()) {
    throw InputError("traces", InputLocation{},
                     "no usable spans: nothing to reconstruct a topology from");
  }
  return Assembler(s.stats, s.options).build();
}

std::vector<std::string> callees_of(const CallGraph& graph, const std::string& component) {
  std::vector<std::string> out;
  for (auto v : boost::make_iterator_range(boost::vertices(graph))) {
    if (graph[v].name != component) continue;
    for (auto e : boost::make_iterator_range(boost::out_edges(v, graph))) {
      out.push_back(graph[boost::target(e, graph)].name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string provenance_to_json_text(const std::vector<ProvenanceEntry>& provenance) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& entry : provenance) {
    entries.push_back({{"pointer", entry.pointer}, {"source", entry.source}, {"note", entry.note}});
  }
  return nlohmann::json{{"doppel", "provenance/v1"}, {"values", entries}}.dump(2) + "\n";
}

}  // namespace doppel::ingest
