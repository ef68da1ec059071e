// The simulation engine: wires a Topology into SimGrid actors and runs its workload.
//
// Request flow (docs/twin.md): a client class's arrival actor hands each entry request to a
// pooled runner actor; the runner routes it at the gateway and calls the target service.
// A call (attempt_call) is: breaker check, connection pool, load balancer, request transfer,
// the callee's bounded user-space queue, a wait for the reply with the edge timeout, the
// response transfer, and retries with backoff. A service instance is a pool of worker actors
// on its host: CPU work as a SimGrid execution (co-located services contend for cores), then
// the operation's call plan. Datastore nodes are the same kind of server with query costs and
// replica versions.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <simgrid/Exception.hpp>
#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u/Comm.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Link.hpp>
#include <simgrid/s4u/NetZone.hpp>

#include "doppel/model/input_error.hpp"
#include "doppel/twin/runtime.hpp"
#include "doppel/twin/twin.hpp"

#include "twin/arrival_process.hpp"
#include "twin/circuit_breaker.hpp"
#include "twin/flow_transfers.hpp"
#include "twin/gateway_router.hpp"
#include "twin/host_cpu.hpp"
#include "twin/load_balancer.hpp"
#include "twin/platform_plan.hpp"
#include "twin/replica_versions.hpp"
#include "twin/retry_policy.hpp"
#include "twin/sim_primitives.hpp"
#include "twin/simgrid_platform.hpp"

namespace doppel::twin {
namespace detail {

namespace sg = simgrid::s4u;
using model::RandomStream;

namespace {
int status_of(Outcome outcome) {
  switch (outcome) {
    case Outcome::ok:
      return 200;
    case Outcome::not_found:
      return 404;
    case Outcome::error:
      return 500;
    case Outcome::timeout:
      return 504;
    case Outcome::rejected:
    case Outcome::circuit_open:
    case Outcome::pool_timeout:
    case Outcome::unavailable:
      return 503;
  }
  return 500;
}
// What a caller makes of a reply over the latency network: a refusal stays one, any other
// failure of the callee is an error.
Outcome latency_reply_outcome(Outcome reply) {
  switch (reply) {
    case Outcome::ok:
    case Outcome::rejected:
    case Outcome::unavailable:
      return reply;
    default:
      return Outcome::error;
  }
}
// Every actor takes two memory mappings; Linux's default vm.max_map_count (65530) stops a
// process near 32k actors (SIMGRID.md). Workers come first, runners get the rest.
constexpr std::size_t kMaxActors = 30000;
constexpr std::size_t kMinRunners = 1000;
// Packet loss: a lost transmission is resent after a retransmission timeout that doubles each
// time (Linux's minimum RTO is 200 ms); a transfer lost this many times in a row fails.
constexpr double kRetransmissionTimeoutS = 0.2;
constexpr int kMaxTransmissions = 6;
// The gateway's calls use the request and response sizes of model::Call's defaults.
const model::Call kGatewayCall{};
}  // namespace

struct HostState {
  sg::Host* host = nullptr;
  int index = 0;
  std::string_view name;
  std::string_view zone;
  int cores = 1;
  double speed_flops = 1e9;
  double busy_core_s = 0.0;
  double stress = 1.0;
  double loss = 0.0;    // packet loss rate of transfers to or from the host
  double skew_s = 0.0;  // clock skew: added to the timestamps of spans recorded here
  std::unique_ptr<HostCpu> cpu = nullptr;  // CpuModel::processor_sharing
};

struct Server;

struct Request {
  TraceId trace;
  std::uint64_t span_id = 0;
  std::uint64_t parent_span_id = 0;
  int op = 0;  // operation (service) or query (datastore) index
  double arrival_s = 0.0;
  double started_s = 0.0;  // when a worker took it
  Waiter* reply_to = nullptr;
  std::uint64_t token = 0;
  std::int64_t key = 0;
  // Latency network: the reply reaches the caller this long after the server finishes (a
  // timer delivers it). Negative: the caller does the response transfer itself (flow).
  double reply_delay_s = -1.0;
  int reply_to_host = 0;
  int server_host = 0;        // latency network: where the reply leaves from
  bool reply_failed = false;  // latency network: the reply's transfer will fail (packet loss)
  // Set when a worker takes it (begin_work).
  Server* server = nullptr;
  ActorContext* worker = nullptr;
  std::uint64_t worker_token = 0;  // the worker sleeps on it until the request needs it
  double cpu_flops = 0.0;          // the operation's CPU work, drawn when it started
};

struct ServiceState;
struct DatastoreState;
struct EdgeGroup;

struct CompiledCall {
  int target = 0;
  int op = 0;
  std::string_view op_name;
  const model::Call* spec = nullptr;
};
struct CompiledStep {
  bool parallel = false;
  std::vector<CompiledCall> calls;
};
struct CompiledOperation {
  const model::Operation* spec = nullptr;
  std::vector<CompiledStep> steps;
};

// The calls a step makes this time, into `jobs`: each with its probability, `count` times
// (the integer part always, the fraction as a probability). Both request paths draw them
// here, so they consume the instance's stream alike.
void draw_step_calls(const CompiledStep& step, RandomStream& rng,
                     std::vector<const CompiledCall*>& jobs) {
  jobs.clear();
  for (const auto& c : step.calls) {
    const auto& spec = *c.spec;
    if (spec.probability < 1.0 && !rng.bernoulli(spec.probability)) continue;
    const double whole = std::floor(spec.count);
    int repeats = static_cast<int>(whole);
    if (spec.count > whole && rng.bernoulli(spec.count - whole)) ++repeats;
    for (int r = 0; r < repeats; ++r) jobs.push_back(&c);
  }
}

struct PoolState {
  int in_use = 0;
  struct Waiting {
    Waiter* waiter;
    std::uint64_t token;
  };
  std::deque<Waiting> waiters;
};

// What one caller instance keeps about one callee.
struct EdgeState {
  EdgeState(const model::EdgePolicy& p, RandomStream stream)
      : policy(&p),
        breaker(p.breaker),
        balancer(p.load_balancing),
        budget(p.retry.budget_ratio),
        rng(stream) {}
  const model::EdgePolicy* policy;
  CircuitBreaker breaker;
  LoadBalancer balancer;
  RetryBudget budget;
  RandomStream rng;
  PoolState pool;
  // read_your_writes: the latest version this caller wrote, per key.
  std::unordered_map<std::int64_t, std::uint64_t> written;
  EdgeGroup* group = nullptr;
  int instance = 0;
};

// All instances of one caller service towards one callee: gauges and events are per group.
struct EdgeGroup {
  std::string from;
  std::string to;
  std::string component;  // "from->to"
  std::vector<EdgeState*> members;
  std::uint64_t acquire_timeouts_total = 0;
  std::uint64_t timeouts_in_episode = 0;
  bool exhausted = false;
  double last_timeout_s = 0.0;
  double extra_latency_s = 0.0;  // added to requests on this edge only
  double jitter_s = 0.0;
};

struct CallerState {
  std::string_view name;
  int instance = 0;
  HostState* host = nullptr;
  std::vector<std::unique_ptr<EdgeState>> edges;  // by target id
};

struct Server {
  enum class Kind { service, datastore };
  Kind kind = Kind::service;
  std::string_view name;
  int index = 0;  // instance, or node (0: primary)
  int target = 0;
  HostState* host = nullptr;
  int workers = 1;
  std::size_t queue_capacity = 0;
  int max_in_flight = 0;
  bool up = true;
  bool retired = false;  // scaled in: takes no new requests, finishes what it holds
  int spawned = 0;       // worker actors created; those at index >= workers are parked
  std::vector<ActorContext*> parked;
  std::vector<std::uint64_t> parked_tokens;
  double slowdown = 1.0;  // CPU work of this instance takes this much longer
  double extra_memory_mb = 0.0;
  double memory_limit_mb = 0.0;  // > 0: crash when the memory gauge goes over it
  std::deque<Request*> waiting;
  std::vector<ActorContext*> idle;
  std::vector<std::uint64_t> idle_tokens;
  std::vector<Request*> in_service;
  RandomStream rng{0};
  // service instances
  ServiceState* service = nullptr;
  std::unique_ptr<CallerState> caller;
  double cpu_s_total = 0.0;
  // datastore nodes
  DatastoreState* datastore = nullptr;
  std::uint64_t reads_total = 0;
  std::uint64_t stale_reads_total = 0;
  std::uint64_t writes_total = 0;
};

struct Target {
  bool is_datastore = false;
  int index = 0;
  std::string_view name;
  std::vector<Server*> servers;
  std::vector<int> in_flight;  // by server index: queued + in service
  std::vector<int> scratch;    // candidate list, rebuilt per pick
  bool resolvable = true;      // false: the name does not resolve (dns failure)
};

struct ServiceState {
  const model::Service* spec = nullptr;
  int target = 0;
  std::vector<std::unique_ptr<Server>> instances;
  std::vector<CompiledOperation> operations;
  double extra_latency_s = 0.0;
  double jitter_s = 0.0;  // extra latency varies uniformly by +- this much per request
  double cpu_factor = 1.0;
  double loss = 0.0;                   // packet loss rate of transfers to and from it
  std::vector<double> error_override;  // by operation; < 0: the topology's error rate
};

struct DatastoreState {
  const model::Datastore* spec = nullptr;
  int target = 0;
  std::vector<std::unique_ptr<Server>> nodes;
  ReplicaVersions versions{0};
  double lag_factor = 1.0;
  double lag_extra_s = 0.0;
  bool replication_stopped = false;  // by set_replication_stopped
  std::vector<char> replica_held;    // by replica: replication currently stopped
  std::vector<double> query_factor;  // by query
};

struct EntryTarget {
  bool matched = false;
  std::string_view route;
  CompiledCall call;
};

struct ClientState {
  const model::ClientClass* spec = nullptr;
  ArrivalProcess arrivals{{}};
  WeightedChoice mix{{}};
  RandomStream rng{0};
  HostState* entry_host = nullptr;
  CallerState* gateway = nullptr;
  std::vector<EntryTarget> targets;  // by mix index
  double rate_factor = 1.0;
  // Bumped when the rate changes: the arrival already scheduled is dropped and redrawn.
  std::uint64_t arrival_generation = 0;
};

struct TraceContext {
  TraceId trace;
  std::uint64_t parent_span_id = 0;
};

class Engine;
struct PlanRun;

// One call with its retries, carried out by scheduled callbacks instead of a blocked actor
// (TwinOptions::Requests::callbacks): attempt_call and call() as a state machine. Each wait
// (the gateway's delay, a pooled connection, the reply, a transfer lost until the deadline,
// a backoff) is its waiter's, and the wait's decision resumes the call where it stopped.
struct CallRun final : Resumable {
  CallRun(Engine& engine, Deadlines& deadlines) : engine(&engine), waiter(deadlines) {}
  void resume(bool signaled) override;

  enum class Stage {
    gateway_delay,
    acquiring,
    exchanging,  // latency network: until the reply or the deadline
    lost,
    backoff,
    // Flow network: a transfer's delays and comm, the wait for the reply in between.
    transfer_lost,
    transfer_delay,
    transfer_comm,
    awaiting_reply,
  };
  enum class Leg { request, response };
  enum class TransferEnd { done, timed_out, failed };
  Engine* engine;
  Waiter waiter;
  Stage stage = Stage::exchanging;
  PlanRun* plan = nullptr;  // told when the call is done
  CallerState* caller = nullptr;
  EdgeState* edge = nullptr;
  const CompiledCall* call = nullptr;
  TraceContext trace;
  int attempt = 0;
  SpanRecord span;  // the attempt's client span
  std::int64_t key = 0;
  double deadline = 0.0;
  const model::EdgePolicy* policy = nullptr;  // the edge's policy when the attempt began
  bool holds_connection = false;              // from the edge's pool
  std::uint64_t pool_token = 0;               // its wait in the pool's queue
  Outcome lost_outcome = Outcome::timeout;    // what a `lost` wait ends in
  // Flow network: the exchange's legs (transfer(), flow_exchange()).
  Leg leg = Leg::request;
  Server* server = nullptr;
  double loss = 0.0;  // the callee service's packet loss
  const HostState* from = nullptr;
  const HostState* to = nullptr;
  std::int64_t bytes = 0;
  TransferEnd transfer_end = TransferEnd::done;  // what a `transfer_lost` wait ends in
  std::size_t comm = 0;                          // FlowTransfers id while in flight
  Outcome reply = Outcome::ok;
  std::uint64_t reply_version = 0;
};

// What a callback-driven request does with its calls: an operation's steps (sequential calls,
// parallel groups and their join), or an entry request's one call through the gateway.
struct PlanRun {
  enum class Kind { entry, operation };
  Kind kind = Kind::operation;
  TraceContext trace;  // the calls' parent span
  CallerState* caller = nullptr;
  // Operations: the request, its server and the worker slot it holds.
  Server* server = nullptr;
  Request* request = nullptr;
  const CompiledOperation* op = nullptr;
  std::size_t step = 0;
  std::vector<const CompiledCall*> jobs;  // the current step's calls
  std::size_t next_job = 0;               // sequential steps: the call under way
  std::size_t pending = 0;                // parallel steps: calls not yet done
  bool in_parallel = false;               // the current step's calls run at once
  bool failed = false;
  bool starting = false;  // in serve_by_callbacks: a finish then is reported by its return
  bool finished = false;
  // Entries.
  ClientState* client = nullptr;
  int mix_kind = 0;
  EntryTarget target;
  SpanRecord root;
};

class Engine {
 public:
  Engine(const model::Topology& topology, const TwinOptions& options,
         std::span<TwinObserver* const> observers)
      : topology_(topology),
        options_(options),
        observers_(observers.begin(), observers.end()),
        plan_(make_platform_plan(topology)),
        runtime_(*this) {}

  RunStats run();

  // Simulated time (the timeline's: SimGrid's clock may lag behind it, timeline.hpp).
  double now() const { return timeline_.now(); }

  // TwinRuntime's hooks.
  void at(double at_s, std::function<void(TwinRuntime&)> action);
  void set_server_up(Server& server, bool up);
  ServiceState& service_named(std::string_view name);
  DatastoreState& datastore_named(std::string_view name);
  HostState& host_named(std::string_view name);
  int zone_index(std::string_view name) const;
  void set_zone_latency(int zone_a, int zone_b, double latency_s);
  void set_edge_policy(const model::EdgePolicy& policy, int only_instance = -1);
  void emit_event(const TwinEvent& event);
  int add_partition(const std::vector<std::string>& side_a, const std::vector<std::string>& side_b,
                    bool two_way);
  void heal_partition(int id);
  void set_zone_bandwidth(int zone_a, int zone_b, double bytes_per_s);
  void update_fault_flags();
  void update_replication(DatastoreState& ds);
  ClientState& client_named(std::string_view name);
  void set_client_rate_factor(ClientState& client, double factor);
  void set_gateway_routes(const std::vector<model::Route>& routes);
  void set_workers(Server& server, int workers);
  void check_memory(Server& server, int in_flight);
  Server& instance_of(std::string_view service, int instance);
  void stop();

 private:
  friend class doppel::twin::TwinRuntime;

  void build_platform();
  void build_model();
  void start_actors();
  CompiledCall compile_call(const model::Call& call, const std::string& where) const;
  int target_of(std::string_view name) const;
  void attach_edges(CallerState& caller, std::string_view caller_service,
                    const std::vector<int>& targets);
  HostState& place(const model::Placement& placement, std::map<std::string, int>& spread,
                   const std::string& where);
  Server& add_server(Server::Kind kind, std::string_view name, int index, int target,
                     HostState& host, int workers);

  // Actors.
  void worker_loop(Server& server, ActorContext& self);
  void spawn_worker(Server& server);
  void sampler_loop(double duration);

  // Requests.
  void run_entry(ActorContext& self, ClientState& client, int kind);
  Outcome call(ActorContext& self, CallerState& caller, const CompiledCall& call,
               const TraceContext& trace);
  Outcome attempt_call(ActorContext& self, CallerState& caller, EdgeState& edge,
                       const CompiledCall& call, const TraceContext& trace, int attempt);
  Outcome flow_exchange(ActorContext& self, CallerState& caller, Server& server,
                        const CompiledCall& call, const TraceContext& trace,
                        std::uint64_t client_span_id, std::int64_t key, double extra,
                        double deadline, std::uint64_t& reply_version);
  Outcome latency_exchange(ActorContext& self, CallerState& caller, Server& server,
                           const CompiledCall& call, const TraceContext& trace,
                           std::uint64_t client_span_id, std::int64_t key, double extra_s,
                           double deadline, std::uint64_t& reply_version);
  Outcome run_steps(ActorContext& self, Server& instance, const CompiledOperation& op,
                    const TraceContext& trace);
  Outcome run_parallel(ActorContext& self, CallerState& caller,
                       const std::vector<const CompiledCall*>& jobs, const TraceContext& trace);
  void serve(ActorContext& self, Server& server, Request& request);
  bool begin_work(Server& server, Request& request, ActorContext& worker, std::uint64_t token);
  void work_done(Request& request);
  bool finishes_without_worker(const Server& server, const Request& request) const;
  void serve_operation(ActorContext* self, Server& server, Request& request);
  void serve_query(Server& server, Request& request);
  void finish_request(Server& server, Request& request, Outcome outcome, std::uint64_t version);
  void reply(const Request& request, Outcome outcome, std::uint64_t version);
  void arrive(Server& server, Request* request);
  bool serve_without_actor(Request& request);
  void worker_free(Server& server, ActorContext& worker, std::uint64_t token);
  bool fails_at_start(Server& server, Request& request);

  // What both ways of carrying out a call share.
  SpanRecord client_span(const CallerState& caller, const CompiledCall& call,
                         const TraceContext& trace, int attempt);
  Outcome finish_client_span(SpanRecord& span, const CallerState& caller, Outcome outcome);
  std::int64_t draw_key(EdgeState& edge, const Target& target);
  void settle_attempt(EdgeState& edge, const CompiledCall& call, std::int64_t key, Outcome outcome,
                      std::uint64_t reply_version);
  bool retry_backoff(EdgeState& edge, int attempt, Outcome outcome, double& backoff_s);
  void note_pool_timeout(EdgeState& edge);

  // Requests carried out by scheduled callbacks (TwinOptions::Requests::callbacks).
  friend struct CallRun;
  void start_entry(ClientState& client, int kind);
  bool serve_by_callbacks(Server& server, Request& request);
  void advance_plan(PlanRun& plan);
  void plan_call_done(PlanRun& plan, Outcome outcome);
  void finish_plan(PlanRun& plan, Outcome outcome);
  void start_call(PlanRun& plan, CallerState& caller, const CompiledCall& call, double delay_s);
  void begin_call(CallRun& run);
  void start_attempt(CallRun& run);
  void exchange_by_callbacks(CallRun& run);
  void transfer_by_callbacks(CallRun& run, const HostState& from, const HostState& to,
                             std::int64_t bytes, double extra_s);
  void transfer_lost(CallRun& run, double delay_s, CallRun::TransferEnd end);
  void start_comm(CallRun& run);
  void transfer_ended(CallRun& run, CallRun::TransferEnd end);
  void lose_attempt(CallRun& run, double delay_s, Outcome outcome);
  void end_attempt(CallRun& run, Outcome outcome, std::uint64_t reply_version);
  void resume_call(CallRun& run, bool signaled);
  PlanRun& new_plan();
  void free_plan(PlanRun& plan);
  template <typename F>
  void schedule(double at_s, F&& callback);
  void schedule_arrival(ClientState& client, double at_s, double duration);
  std::optional<EntryTarget> route_entry(const GatewayRouter& router, const ClientState& client,
                                         const model::RequestKind& kind,
                                         std::string& problem) const;
  enum class Delivery { accepted, rejected, down };
  Delivery deliver(Server& server, Request* request);
  Server* choose_server(EdgeState& edge, Target& target, const CompiledCall& call,
                        std::int64_t key);
  bool acquire_connection(ActorContext& self, EdgeState& edge);
  void release_connection(EdgeState& edge);
  void note_breaker(EdgeState& edge);
  enum class Transfer { done, timed_out, failed };
  Transfer transfer(ActorContext& self, const HostState& from, const HostState& to,
                    std::int64_t bytes, double deadline, double extra_s, double service_loss);
  bool blocked(int from_host, int to_host) const {
    return partitioned_ && blocked_[static_cast<std::size_t>(from_host) * hosts_.size() +
                                    static_cast<std::size_t>(to_host)] > 0;
  }
  double loss_delay_s(int from_host, int to_host, double service_loss, bool& failed);
  double extra_latency(const EdgeState& edge, const Target& target);
  EdgeGroup& edge_group(std::string_view from, std::string_view to);

  Request* new_request();
  void free_request(Request* request);
  std::uint64_t next_span_id() { return ++span_counter_; }
  void emit_span(SpanRecord& span, const HostState& host);
  void emit_entry(const EntryRecord& entry);
  Snapshot take_snapshot(double time);
  void check_pool_recovery(double time);

  const model::Topology& topology_;
  TwinOptions options_;
  std::vector<TwinObserver*> observers_;
  PlatformPlan plan_;
  TwinRuntime runtime_;
  std::vector<sg::Link*> nic_links_;   // by host
  std::vector<sg::Link*> zone_links_;  // by plan zone route
  std::vector<HostState> hosts_;
  std::vector<Target> targets_;
  std::vector<std::unique_ptr<ServiceState>> services_;
  std::vector<std::unique_ptr<DatastoreState>> datastores_;
  std::vector<std::unique_ptr<ClientState>> clients_;
  std::map<int, std::unique_ptr<CallerState>> gateways_;  // by entry zone
  std::map<std::pair<std::string, std::string>, std::unique_ptr<EdgeGroup>> edge_groups_;
  std::vector<std::unique_ptr<ActorContext>> worker_contexts_;
  std::optional<GatewayRouter> router_;
  std::unique_ptr<RunnerPool> runners_;
  std::vector<std::unique_ptr<Request>> request_storage_;
  std::vector<Request*> free_requests_;
  // Callback-driven requests: reused, as requests are.
  bool callbacks_ = false;
  std::vector<std::unique_ptr<CallRun>> call_runs_;
  std::vector<CallRun*> free_call_runs_;
  std::vector<std::unique_ptr<PlanRun>> plan_runs_;
  std::vector<PlanRun*> free_plan_runs_;
  std::vector<std::unique_ptr<model::EdgePolicy>> replaced_policies_;
  // Route tables installed at run time: entry targets point into them.
  std::vector<std::unique_ptr<model::Gateway>> replaced_gateways_;
  std::vector<std::unique_ptr<GatewayRouter>> replaced_routers_;
  // Partitions: per partition the blocked (from, to) host pairs; blocked_ counts, per pair,
  // the partitions that cut it. partitioned_ keeps the per-transfer check one flag test.
  std::map<int, std::vector<std::pair<int, int>>> partitions_;
  std::vector<int> blocked_;
  bool partitioned_ = false;
  int next_partition_id_ = 1;
  bool lossy_ = false;  // some host or service has packet loss
  RandomStream loss_rng_{0};
  bool jittery_ = false;  // some service or edge has latency jitter
  RandomStream jitter_rng_{0};
  std::size_t worker_actors_ = 0;
  std::uint64_t span_counter_ = 0;
  RunStats stats_;
  Timeline timeline_{stats_.simgrid};
  // TwinRuntime::at's actions, kept here: a timeline callback holds pointers and numbers only.
  std::deque<std::function<void(TwinRuntime&)>> runtime_actions_;
  Deadlines deadlines_{timeline_, stats_.simgrid};
  FlowTransfers comms_{timeline_, stats_.simgrid};
  // stop(): from then on nothing new happens and nothing more is reported; the sampler, the
  // one actor that is not a daemon, wakes up, takes the last snapshot and returns, which
  // ends the SimGrid run (the daemons are killed with it).
  bool stopped_ = false;
  // The run reached its duration: the sampler, its last non-daemon actor, returned. Kernel
  // timers still pending then (transfers, CPU work, query costs) may still fire while SimGrid
  // drains them; they must change and report nothing, as the killed actors do.
  bool ended_ = false;
  std::unique_ptr<ActorContext> sampler_;
  std::uint64_t sampler_token_ = 0;
};

// ---------------------------------------------------------------------------------------
// Building

int Engine::zone_index(std::string_view name) const {
  for (std::size_t i = 0; i < plan_.zones.size(); ++i) {
    if (plan_.zones[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

void Engine::build_platform() {
  // CM02: no latency factor (LV08 multiplies latencies by 13, SIMGRID.md).
  sg::Engine::set_config("network/model:CM02");
  auto built = build_simgrid_platform(plan_);
  for (const auto& zone : plan_.zones) {
    for (int h : zone.hosts) {
      const auto& planned = plan_.hosts[static_cast<std::size_t>(h)];
      hosts_.push_back({built.hosts[static_cast<std::size_t>(h)], h, planned.name, zone.name,
                        planned.cores, planned.speed_flops});
      hosts_.back().cpu = std::make_unique<HostCpu>(planned.speed_flops, planned.cores, timeline_,
                                                    [this](Request& r) { work_done(r); });
    }
  }
  nic_links_ = std::move(built.nics);
  zone_links_ = std::move(built.zone_links);
}

int Engine::target_of(std::string_view name) const {
  for (const auto& t : targets_) {
    if (t.name == name) return t.index;
  }
  return -1;
}

CompiledCall Engine::compile_call(const model::Call& call, const std::string& where) const {
  const int target = target_of(call.to);
  if (target < 0) {
    throw InputError(topology_.name, InputLocation{where + "/to", {}, {}, {}},
                     fmt::format("unknown service or datastore '{}'", call.to));
  }
  CompiledCall compiled{target, -1, {}, &call};
  const auto& t = targets_[target];
  if (t.is_datastore) {
    const auto& queries = datastores_[t.index - services_.size()]->spec->queries;
    for (std::size_t q = 0; q < queries.size(); ++q) {
      if (queries[q].name == call.operation) compiled.op = static_cast<int>(q);
    }
  } else {
    const auto& ops = services_[t.index]->spec->operations;
    for (std::size_t o = 0; o < ops.size(); ++o) {
      if (ops[o].name == call.operation) compiled.op = static_cast<int>(o);
    }
  }
  if (compiled.op < 0) {
    throw InputError(topology_.name, InputLocation{where + "/operation", {}, {}, {}},
                     fmt::format("'{}' has no operation or query '{}'", call.to, call.operation));
  }
  compiled.op_name = call.operation;
  return compiled;
}

HostState& Engine::place(const model::Placement& placement, std::map<std::string, int>& spread,
                         const std::string& where) {
  const int zone = zone_index(placement.zone);
  if (zone < 0 || plan_.zones[zone].hosts.empty()) {
    throw InputError(topology_.name, InputLocation{where + "/zone", {}, {}, {}},
                     fmt::format("unknown zone '{}' (or a zone without hosts)", placement.zone));
  }
  if (placement.host) {
    const int h = plan_.host_index(*placement.host);
    if (h < 0 || plan_.hosts[h].zone != zone) {
      throw InputError(topology_.name, InputLocation{where + "/host", {}, {}, {}},
                       fmt::format("no host '{}' in zone '{}'", *placement.host, placement.zone));
    }
    return hosts_[h];
  }
  const auto& zone_hosts = plan_.zones[zone].hosts;
  int& next = spread[placement.zone];
  return hosts_[zone_hosts[static_cast<std::size_t>(next++) % zone_hosts.size()]];
}

Server& Engine::add_server(Server::Kind kind, std::string_view name, int index, int target,
                           HostState& host, int workers) {
  auto server = std::make_unique<Server>();
  server->kind = kind;
  server->name = name;
  server->index = index;
  server->target = target;
  server->host = &host;
  server->workers = std::max(1, workers);
  Server& ref = *server;
  auto& t = targets_[target];
  t.servers.push_back(&ref);
  t.in_flight.push_back(0);
  if (kind == Server::Kind::service) {
    services_[t.index]->instances.push_back(std::move(server));
  } else {
    datastores_[t.index - services_.size()]->nodes.push_back(std::move(server));
  }
  return ref;
}

void Engine::attach_edges(CallerState& caller, std::string_view caller_service,
                          const std::vector<int>& targets) {
  caller.edges.resize(targets_.size());
  for (int target : targets) {
    if (caller.edges[target]) continue;
    const auto& callee = targets_[target].name;
    const auto& policy = topology_.policy(caller_service, callee);
    auto stream = RandomStream::for_component(
        options_.seed, options_.run,
        fmt::format("edge/{}/{}->{}", caller_service, caller.instance, callee));
    auto edge = std::make_unique<EdgeState>(policy, stream);
    edge->instance = caller.instance;
    auto key = std::make_pair(std::string(caller_service), std::string(callee));
    auto& group = edge_groups_[key];
    if (!group) {
      group = std::make_unique<EdgeGroup>();
      group->from = key.first;
      group->to = key.second;
      group->component = fmt::format("{}->{}", key.first, key.second);
    }
    group->members.push_back(edge.get());
    edge->group = group.get();
    caller.edges[target] = std::move(edge);
  }
}

void Engine::build_model() {
  if (hosts_.empty()) {
    throw InputError(topology_.name, InputLocation{"/zones", {}, {}, {}}, "no hosts to run on");
  }
  // Targets: services first, then datastores; a target id is its index.
  for (const auto& s : topology_.services) {
    auto state = std::make_unique<ServiceState>();
    state->spec = &s;
    state->target = static_cast<int>(targets_.size());
    targets_.push_back({false, state->target, s.name, {}, {}, {}});
    services_.push_back(std::move(state));
  }
  for (const auto& d : topology_.datastores) {
    auto state = std::make_unique<DatastoreState>();
    state->spec = &d;
    state->target = static_cast<int>(targets_.size());
    state->versions = ReplicaVersions(static_cast<int>(d.replicas.size()));
    state->replica_held.assign(d.replicas.size(), 0);
    state->query_factor.assign(d.queries.size(), 1.0);
    targets_.push_back({true, state->target, d.name, {}, {}, {}});
    datastores_.push_back(std::move(state));
  }

  for (std::size_t si = 0; si < services_.size(); ++si) {
    auto& service = *services_[si];
    const auto& spec = *service.spec;
    std::vector<int> callees;
    for (std::size_t o = 0; o < spec.operations.size(); ++o) {
      CompiledOperation op{&spec.operations[o], {}};
      for (std::size_t st = 0; st < spec.operations[o].steps.size(); ++st) {
        const auto& step = spec.operations[o].steps[st];
        CompiledStep compiled{step.parallel, {}};
        for (std::size_t c = 0; c < step.calls.size(); ++c) {
          compiled.calls.push_back(compile_call(
              step.calls[c], fmt::format("/services/{}/operations/{}/steps/{}/{}", si, o, st, c)));
          callees.push_back(compiled.calls.back().target);
        }
        op.steps.push_back(std::move(compiled));
      }
      service.operations.push_back(std::move(op));
    }
    std::map<std::string, int> spread;
    const int replicas = std::max(1, spec.replicas);
    for (int i = 0; i < replicas; ++i) {
      const auto where = fmt::format("/services/{}/placement", si);
      if (spec.placement.empty()) {
        throw InputError(topology_.name, InputLocation{where, {}, {}, {}}, "no placement");
      }
      auto& host =
          place(spec.placement[static_cast<std::size_t>(i) % spec.placement.size()], spread, where);
      auto& server =
          add_server(Server::Kind::service, spec.name, i, service.target, host, spec.workers);
      server.service = &service;
      server.queue_capacity = static_cast<std::size_t>(std::max(0, spec.queue_capacity));
      server.max_in_flight = server.workers + std::max(0, spec.queue_capacity);
      server.rng = RandomStream::for_component(options_.seed, options_.run,
                                               fmt::format("service/{}/{}", spec.name, i));
      server.caller = std::make_unique<CallerState>();
      server.caller->name = spec.name;
      server.caller->instance = i;
      server.caller->host = &host;
      attach_edges(*server.caller, spec.name, callees);
    }
  }

  for (std::size_t di = 0; di < datastores_.size(); ++di) {
    auto& ds = *datastores_[di];
    const auto& spec = *ds.spec;
    std::map<std::string, int> spread;
    std::vector<const model::Placement*> placements{&spec.primary};
    for (const auto& r : spec.replicas) placements.push_back(&r);
    for (std::size_t n = 0; n < placements.size(); ++n) {
      const auto where = n == 0 ? fmt::format("/datastores/{}/primary", di)
                                : fmt::format("/datastores/{}/replicas/{}", di, n - 1);
      auto& host = place(*placements[n], spread, where);
      auto& server = add_server(Server::Kind::datastore, spec.name, static_cast<int>(n), ds.target,
                                host, spec.workers);
      server.datastore = &ds;
      server.max_in_flight = std::max(1, spec.max_connections);
      server.queue_capacity = static_cast<std::size_t>(server.max_in_flight);
      server.rng = RandomStream::for_component(options_.seed, options_.run,
                                               fmt::format("datastore/{}/{}", spec.name, n));
    }
  }

  router_.emplace(topology_.gateway, topology_.name);
  for (std::size_t ci = 0; ci < topology_.workload.clients.size(); ++ci) {
    const auto& spec = topology_.workload.clients[ci];
    auto client = std::make_unique<ClientState>();
    client->spec = &spec;
    client->arrivals = ArrivalProcess(spec.rate);
    std::vector<double> weights;
    for (const auto& kind : spec.mix) weights.push_back(kind.weight);
    client->mix = WeightedChoice(weights);
    client->rng = RandomStream::for_component(options_.seed, options_.run, "client/" + spec.name);
    const int zone = spec.zone.empty() ? 0 : zone_index(spec.zone);
    if (zone < 0 || plan_.zones[zone].hosts.empty()) {
      throw InputError(topology_.name,
                       InputLocation{fmt::format("/workload/clients/{}/zone", ci), {}, {}, {}},
                       fmt::format("unknown zone '{}' (or a zone without hosts)", spec.zone));
    }
    client->entry_host = &hosts_[plan_.zones[zone].hosts.front()];
    auto& gateway = gateways_[zone];
    if (!gateway) {
      gateway = std::make_unique<CallerState>();
      gateway->name = "gateway";
      gateway->instance = zone;
      gateway->host = client->entry_host;
      gateway->edges.resize(targets_.size());
    }
    client->gateway = gateway.get();
    std::vector<int> entry_targets;
    for (const auto& kind : spec.mix) {
      std::string problem;
      auto entry = route_entry(*router_, *client, kind, problem);
      if (!entry) throw InputError(topology_.name, InputLocation{"/gateway", {}, {}, {}}, problem);
      if (entry->matched) entry_targets.push_back(entry->call.target);
      client->targets.push_back(*entry);
    }
    attach_edges(*gateway, "gateway", entry_targets);
    clients_.push_back(std::move(client));
  }
}

// Where the gateway sends one request kind of a client class: nullopt (with `problem`) for a
// route to an unknown service or operation.
std::optional<EntryTarget> Engine::route_entry(const GatewayRouter& router,
                                               const ClientState& client,
                                               const model::RequestKind& kind,
                                               std::string& problem) const {
  EntryTarget entry;
  entry.call.spec = &kGatewayCall;
  auto match = router.match(kind.method, kind.path, client.spec->headers);
  if (!match) return entry;
  const int target = target_of(match->service);
  if (target < 0 || targets_[target].is_datastore) {
    problem = fmt::format("route to unknown service '{}'", match->service);
    return std::nullopt;
  }
  const auto& service = *services_[target];
  std::string_view operation = match->operation;
  if (operation.empty() && !service.spec->operations.empty()) {
    operation = service.spec->operations.front().name;
  }
  entry.matched = true;
  entry.route = match->route_name;
  entry.call.target = target;
  entry.call.op = -1;
  for (std::size_t o = 0; o < service.spec->operations.size(); ++o) {
    if (service.spec->operations[o].name == operation) entry.call.op = static_cast<int>(o);
  }
  if (entry.call.op < 0) {
    problem = fmt::format("service '{}' has no operation '{}'", match->service, operation);
    return std::nullopt;
  }
  entry.call.op_name = service.spec->operations[entry.call.op].name;
  return entry;
}

void Engine::start_actors() {
  std::size_t workers = 0;
  for (const auto& target : targets_) {
    for (const Server* server : target.servers)
      workers += static_cast<std::size_t>(server->workers);
  }
  if (workers + kMinRunners > kMaxActors) {
    throw InputError(topology_.name, InputLocation{"/services", {}, {}, {}},
                     fmt::format("{} workers in all (services and datastore nodes) exceed the "
                                 "engine's limit of {} (one simulated actor each)",
                                 workers, kMaxActors - kMinRunners));
  }
  runners_ = std::make_unique<RunnerPool>(hosts_.front().host, kMaxActors - workers, deadlines_);
  blocked_.assign(hosts_.size() * hosts_.size(), 0);
  loss_rng_ = RandomStream::for_component(options_.seed, options_.run, "network/packet_loss");
  jitter_rng_ = RandomStream::for_component(options_.seed, options_.run, "network/jitter");
  for (auto& target : targets_) {
    for (Server* server : target.servers) {
      for (int w = 0; w < server->workers; ++w) spawn_worker(*server);
    }
  }
  for (auto& client : clients_) {
    schedule_arrival(*client, client->arrivals.next_after(0.0, client->rng, client->rate_factor),
                     stats_.simulated_s);
  }
}

// ---------------------------------------------------------------------------------------
// Actors

template <typename F>
void Engine::schedule(double at_s, F&& callback) {
  // A timeline callback instead of a sleeping actor: no context switch, and no SimGrid round
  // of its own (timeline.hpp). It may be scheduled from an actor (all of SimGrid runs in one
  // thread with the default contexts) and runs in maestro, where s4u calls take their direct
  // path.
  timeline_.schedule(at_s, std::forward<F>(callback));
}

// Open loop: each arrival schedules the next; a runner actor takes the request.
void Engine::schedule_arrival(ClientState& client, double at_s, double duration) {
  if (!(at_s < duration)) return;
  schedule(at_s, [this, &client, at_s, duration, generation = client.arrival_generation] {
    if (generation != client.arrival_generation) return;  // the rate changed: redrawn
    if (stopped_) return;
    const int kind = client.mix.pick(client.rng);
    if (callbacks_) {
      // The next arrival is drawn first, as when a runner takes the entry later.
      schedule_arrival(client, client.arrivals.next_after(at_s, client.rng, client.rate_factor),
                       duration);
      start_entry(client, kind);
      return;
    }
    runners_->submit([this, &client, kind](ActorContext& self) { run_entry(self, client, kind); });
    schedule_arrival(client, client.arrivals.next_after(at_s, client.rng, client.rate_factor),
                     duration);
  });
}

void Engine::spawn_worker(Server& server) {
  auto context = std::make_unique<ActorContext>(deadlines_);
  ActorContext* raw = context.get();
  raw->worker = server.spawned++;
  worker_contexts_.push_back(std::move(context));
  ++worker_actors_;
  timeline_.note_actor_woken();  // a new actor runs before any later instant
  Server* s = &server;
  sg::Actor::create(fmt::format("{}/{}/w{}", server.name, server.index, raw->worker),
                    server.host->host, [this, s, raw] { worker_loop(*s, *raw); })
      ->daemonize();
}

void Engine::worker_loop(Server& server, ActorContext& self) {
  while (true) {
    if (self.worker >= server.workers) {
      // Scaled down: park until set_workers raises the count again.
      server.parked.push_back(&self);
      server.parked_tokens.push_back(self.waiter.arm());
      self.waiter.wait(-1);
      continue;
    }
    // Asleep until a request needs this actor (work_done): requests that finish without it
    // (queries, operations without calls) come and go while it sleeps.
    const std::uint64_t token = self.waiter.arm();
    if (!server.waiting.empty()) {
      Request* next = server.waiting.front();
      server.waiting.pop_front();
      if (!begin_work(server, *next, self, token)) work_done(*next);
    } else {
      server.idle.push_back(&self);
      server.idle_tokens.push_back(token);
    }
    self.waiter.wait(-1);
    Request* request = self.assigned;
    self.assigned = nullptr;
    if (request == nullptr) continue;  // woken without work: set_workers (un)parked it
    serve(self, server, *request);
  }
}

void Engine::sampler_loop(double duration) {
  const double interval =
      options_.snapshot_interval_s > 0 ? options_.snapshot_interval_s : duration;
  for (std::int64_t k = 1;; ++k) {
    const double t = std::min(duration, static_cast<double>(k) * interval);
    if (!stopped_) {
      sampler_token_ = sampler_->waiter.arm();
      sampler_->waiter.wait(t - now());
      sampler_token_ = 0;
    }
    if (stopped_) {
      // The last snapshot, at the stop: the telemetry covers the run up to there.
      const double end = stats_.simulated_s;
      check_pool_recovery(end);
      const auto snapshot = take_snapshot(end);
      for (auto* o : observers_) o->on_snapshot(snapshot);
      timeline_.halt();
      return;
    }
    check_pool_recovery(t);
    const auto snapshot = take_snapshot(t);
    for (auto* o : observers_) o->on_snapshot(snapshot);
    if (t >= duration) {
      ended_ = true;
      timeline_.halt();
      return;  // the last non-daemon actor: the run ends here
    }
  }
}

// ---------------------------------------------------------------------------------------
// Requests

void Engine::run_entry(ActorContext& self, ClientState& client, int kind) {
  const double start = now();
  TraceId trace{client.rng.next_u64(), client.rng.next_u64()};
  const auto& request_kind = client.spec->mix[static_cast<std::size_t>(kind)];
  // A copy: a route change while this entry is in flight must not move it.
  const EntryTarget target = client.targets[static_cast<std::size_t>(kind)];
  SpanRecord root;
  root.trace_id = trace;
  root.span_id = next_span_id();
  root.kind = SpanKind::server;
  root.service = "gateway";
  root.operation = target.route;
  root.instance = client.gateway->instance;
  root.host = client.entry_host->name;
  root.start_s = start;

  Outcome outcome = Outcome::not_found;
  if (target.matched) {
    self.waiter.sleep(topology_.gateway.latency_ms / 1000.0);
    outcome = call(self, *client.gateway, target.call, {trace, root.span_id});
  }
  root.end_s = now();
  root.outcome = outcome;
  emit_span(root, *client.entry_host);
  EntryRecord entry{
      trace,      client.spec->name,  target.route, request_kind.method, request_kind.path, start,
      root.end_s, status_of(outcome), outcome};
  emit_entry(entry);
}

Outcome Engine::call(ActorContext& self, CallerState& caller, const CompiledCall& call,
                     const TraceContext& trace) {
  EdgeState& edge = *caller.edges[call.target];
  edge.budget.record_call(now());
  Outcome outcome = attempt_call(self, caller, edge, call, trace, 0);
  double backoff_s = 0.0;
  for (int attempt = 1; outcome != Outcome::ok && retry_backoff(edge, attempt, outcome, backoff_s);
       ++attempt) {
    self.waiter.sleep(backoff_s);
    outcome = attempt_call(self, caller, edge, call, trace, attempt);
  }
  return outcome;
}

// Whether a call that ended in `outcome` makes attempt number `attempt` (1: the first retry),
// and after which backoff.
bool Engine::retry_backoff(EdgeState& edge, int attempt, Outcome outcome, double& backoff_s) {
  const auto& retry = edge.policy->retry;
  if (attempt > retry.max_retries || !is_retryable(outcome)) return false;
  if (!edge.budget.try_spend_retry(now())) return false;
  backoff_s = backoff_ms(retry, attempt, edge.rng) / 1000.0;
  return true;
}

void Engine::note_breaker(EdgeState& edge) {
  if (auto transition = edge.breaker.take_transition()) {
    emit_event({now(),
                fmt::format("breaker_{}", to_string(transition->to)),
                edge.group->component,
                {{"instance", std::to_string(edge.instance)},
                 {"from_state", std::string(to_string(transition->from))}}});
  }
}

bool Engine::acquire_connection(ActorContext& self, EdgeState& edge) {
  auto& pool = edge.pool;
  const auto& policy = edge.policy->pool;
  if (pool.in_use < policy.size && pool.waiters.empty()) {
    ++pool.in_use;
    return true;
  }
  const std::uint64_t token = self.waiter.arm();
  pool.waiters.push_back({&self.waiter, token});
  if (self.waiter.wait(std::max(0.0, policy.acquire_timeout_ms / 1000.0))) {
    return true;  // release_connection handed its connection over
  }
  std::erase_if(pool.waiters, [&](const PoolState::Waiting& w) {
    return w.token == token && w.waiter == &self.waiter;
  });
  note_pool_timeout(edge);
  return false;
}

void Engine::note_pool_timeout(EdgeState& edge) {
  const auto& policy = edge.policy->pool;
  auto& group = *edge.group;
  ++group.acquire_timeouts_total;
  ++group.timeouts_in_episode;
  group.last_timeout_s = now();
  if (!group.exhausted) {
    group.exhausted = true;
    emit_event(
        {now(),
         "pool_exhausted",
         group.component,
         {{"instance", std::to_string(edge.instance)}, {"size", std::to_string(policy.size)}}});
  }
}

void Engine::release_connection(EdgeState& edge) {
  auto& pool = edge.pool;
  const int size = edge.policy->pool.size;  // 0: the pool became unbounded
  while ((size == 0 || pool.in_use <= size) && !pool.waiters.empty()) {
    auto next = pool.waiters.front();
    pool.waiters.pop_front();
    if (next.waiter->notify(next.token)) return;  // the connection changes hands
  }
  --pool.in_use;
}

Server* Engine::choose_server(EdgeState& edge, Target& target, const CompiledCall& call,
                              std::int64_t key) {
  if (!target.resolvable) return nullptr;
  auto& candidates = target.scratch;
  candidates.clear();
  auto pick = [&]() -> Server* {
    const int chosen = edge.balancer.pick(candidates, target.in_flight, edge.rng);
    return chosen < 0 ? nullptr : target.servers[chosen];
  };
  if (!target.is_datastore) {
    for (Server* s : target.servers) {
      if (s->up && !s->retired) candidates.push_back(s->index);
    }
    return pick();
  }
  const auto& ds = *datastores_[target.index - services_.size()];
  Server* primary = target.servers.front();
  Server* live_primary = primary->up ? primary : nullptr;
  const auto& query = ds.spec->queries[call.op];
  if (query.type == model::QueryType::write) return live_primary;
  auto replicas_or_primary = [&]() -> Server* {
    for (std::size_t n = 1; n < target.servers.size(); ++n) {
      if (target.servers[n]->up) candidates.push_back(static_cast<int>(n));
    }
    return candidates.empty() ? live_primary : pick();
  };
  switch (ds.spec->consistency) {
    case model::Consistency::strong:
      return live_primary;
    case model::Consistency::eventual:
      return replicas_or_primary();
    case model::Consistency::read_your_writes: {
      Server* chosen = replicas_or_primary();
      if (chosen == nullptr || chosen->index == 0) return chosen;
      auto it = edge.written.find(key);
      if (it == edge.written.end()) return chosen;
      auto& versions = datastores_[target.index - services_.size()]->versions;
      return versions.node_version(chosen->index, key, now()) < it->second ? live_primary : chosen;
    }
    case model::Consistency::quorum:
      for (Server* s : target.servers) {
        if (s->up) candidates.push_back(s->index);
      }
      return pick();
  }
  return live_primary;
}

Engine::Transfer Engine::transfer(ActorContext& self, const HostState& from, const HostState& to,
                                  std::int64_t bytes, double deadline, double extra_s,
                                  double service_loss) {
  if (from.index != to.index && blocked(from.index, to.index)) {
    // Behind a partition packets vanish: the sender hears nothing until it gives up.
    self.waiter.sleep(deadline - now());
    return Transfer::timed_out;
  }
  if (lossy_) {
    bool failed = false;
    const double resend = loss_delay_s(from.index, to.index, service_loss, failed);
    if (failed) {
      const bool in_time = resend < deadline - now();
      self.waiter.sleep(in_time ? resend : deadline - now());
      return in_time ? Transfer::failed : Transfer::timed_out;
    }
    extra_s += resend;
  }
  if (options_.network == TwinOptions::NetworkModel::latency) {
    double delay = extra_s;
    if (from.index != to.index) {
      delay += plan_.path_latency_s(from.index, to.index) +
               static_cast<double>(bytes) / plan_.path_bandwidth(from.index, to.index);
    }
    if (delay <= 0) return Transfer::done;
    const double remaining = deadline - now();
    if (delay > remaining) {
      self.waiter.sleep(remaining);
      return Transfer::timed_out;
    }
    self.waiter.sleep(delay);
    return Transfer::done;
  }
  if (extra_s > 0) {
    if (extra_s > deadline - now()) {
      self.waiter.sleep(deadline - now());
      return Transfer::timed_out;
    }
    self.waiter.sleep(extra_s);
  }
  if (from.index == to.index) return Transfer::done;
  // sendto towards a host that is off aborts SimGrid 3.32 (SIMGRID.md).
  if (!to.host->is_on() || !from.host->is_on()) return Transfer::failed;
  const double remaining = deadline - now();
  if (remaining <= 0) return Transfer::timed_out;
  // The same transfers as the callbacks' (FlowTransfers), the actor waiting for their end.
  const std::uint64_t token = self.waiter.arm();
  const std::size_t id = comms_.start(from.index, to.index,
                                      static_cast<std::uint64_t>(std::max<std::int64_t>(bytes, 0)),
                                      self.waiter, token);
  if (!self.waiter.wait(remaining)) {
    comms_.cancel(id);
    return Transfer::timed_out;
  }
  return self.waiter.reply_outcome == Outcome::ok ? Transfer::done : Transfer::failed;
}

// The flow network's exchange: the caller moves the request and the response bytes itself
// (SimGrid comms sharing link bandwidth) and waits for the reply in between.
Outcome Engine::flow_exchange(ActorContext& self, CallerState& caller, Server& server,
                              const CompiledCall& call, const TraceContext& trace,
                              std::uint64_t client_span_id, std::int64_t key, double extra,
                              double deadline, std::uint64_t& reply_version) {
  Outcome outcome = Outcome::ok;
  const double loss = server.service != nullptr ? server.service->loss : 0.0;
  const auto sent =
      transfer(self, *caller.host, *server.host, call.spec->request_bytes, deadline, extra, loss);
  if (sent == Transfer::timed_out) {
    outcome = Outcome::timeout;
  } else if (sent == Transfer::failed) {
    outcome = Outcome::unavailable;
  } else {
    Request* request = new_request();
    request->trace = trace.trace;
    request->span_id = next_span_id();
    request->parent_span_id = client_span_id;
    request->op = call.op;
    request->arrival_s = now();
    request->reply_to = &self.waiter;
    request->token = self.waiter.arm();
    request->key = key;
    const auto delivery = deliver(server, request);
    if (delivery != Delivery::accepted) {
      self.waiter.disarm();
      outcome = delivery == Delivery::rejected ? Outcome::rejected : Outcome::unavailable;
    } else if (!self.waiter.wait(deadline - now())) {
      return Outcome::timeout;  // the callee goes on working; its reply is dropped
    } else {
      const Outcome reply = self.waiter.reply_outcome;
      reply_version = self.waiter.reply_version;
      const auto received = transfer(self, *server.host, *caller.host, call.spec->response_bytes,
                                     deadline, 0.0, loss);
      if (received == Transfer::timed_out) {
        outcome = Outcome::timeout;
      } else if (received == Transfer::failed) {
        outcome = Outcome::unavailable;
      } else if (reply == Outcome::ok) {
        outcome = Outcome::ok;
      } else {
        outcome = reply == Outcome::unavailable ? Outcome::unavailable : Outcome::error;
      }
    }
  }
  return outcome;
}

// The latency network's exchange: timers carry the request there and the reply back, so the
// caller blocks once, until the reply or its deadline. A request still travelling at the
// deadline is delivered all the same, as a packet would be: the server does the work for
// nobody.
Outcome Engine::latency_exchange(ActorContext& self, CallerState& caller, Server& server,
                                 const CompiledCall& call, const TraceContext& trace,
                                 std::uint64_t client_span_id, std::int64_t key, double extra_s,
                                 double deadline, std::uint64_t& reply_version) {
  const int from = caller.host->index;
  const int to = server.host->index;
  double there = extra_s;
  double back = 0.0;
  bool reply_failed = false;
  if (from != to) {
    if (blocked(from, to)) {
      self.waiter.sleep(deadline - now());  // lost behind a partition: nobody answers
      return Outcome::timeout;
    }
    const double latency = plan_.path_latency_s(from, to);
    const double bandwidth = plan_.path_bandwidth(from, to);
    there += latency + static_cast<double>(call.spec->request_bytes) / bandwidth;
    back = latency + static_cast<double>(call.spec->response_bytes) / bandwidth;
  }
  if (lossy_) {
    // Both ways are drawn now, in one order, so the stream's use does not depend on timing.
    const double loss = server.service != nullptr ? server.service->loss : 0.0;
    bool request_failed = false;
    there += loss_delay_s(from, to, loss, request_failed);
    back += loss_delay_s(to, from, loss, reply_failed);
    if (request_failed) {
      const bool in_time = there < deadline - now();
      self.waiter.sleep(in_time ? there : deadline - now());
      return in_time ? Outcome::unavailable : Outcome::timeout;
    }
  }
  Request* request = new_request();
  request->trace = trace.trace;
  request->span_id = next_span_id();
  request->parent_span_id = client_span_id;
  request->op = call.op;
  request->reply_to = &self.waiter;
  request->token = self.waiter.arm();
  request->key = key;
  request->reply_delay_s = back;
  request->reply_to_host = from;
  request->server_host = to;
  request->reply_failed = reply_failed;
  schedule(now() + there, [this, &server, request] { arrive(server, request); });
  if (!self.waiter.wait(deadline - now())) return Outcome::timeout;
  reply_version = self.waiter.reply_version;
  return latency_reply_outcome(self.waiter.reply_outcome);
}

Outcome Engine::attempt_call(ActorContext& self, CallerState& caller, EdgeState& edge,
                             const CompiledCall& call, const TraceContext& trace, int attempt) {
  Target& target = targets_[call.target];
  SpanRecord span = client_span(caller, call, trace, attempt);
  const bool allowed = edge.breaker.allow(span.start_s);
  note_breaker(edge);
  if (!allowed) return finish_client_span(span, caller, Outcome::circuit_open);

  const auto& policy = *edge.policy;
  const bool pooled = policy.pool.size > 0;
  Outcome outcome = Outcome::ok;
  std::uint64_t reply_version = 0;
  const std::int64_t key = draw_key(edge, target);
  if (pooled && !acquire_connection(self, edge)) {
    outcome = Outcome::pool_timeout;
  } else {
    const double deadline = now() + policy.timeout_ms / 1000.0;
    Server* server = choose_server(edge, target, call, key);
    if (server == nullptr) {
      outcome = Outcome::unavailable;
    } else {
      const double extra = extra_latency(edge, target);
      outcome = options_.network == TwinOptions::NetworkModel::latency
                    ? latency_exchange(self, caller, *server, call, trace, span.span_id, key, extra,
                                       deadline, reply_version)
                    : flow_exchange(self, caller, *server, call, trace, span.span_id, key, extra,
                                    deadline, reply_version);
    }
    if (pooled) release_connection(edge);
  }
  settle_attempt(edge, call, key, outcome, reply_version);
  return finish_client_span(span, caller, outcome);
}

SpanRecord Engine::client_span(const CallerState& caller, const CompiledCall& call,
                               const TraceContext& trace, int attempt) {
  SpanRecord span;
  span.trace_id = trace.trace;
  span.span_id = next_span_id();
  span.parent_span_id = trace.parent_span_id;
  span.kind = SpanKind::client;
  span.service = caller.name;
  span.operation = call.op_name;
  span.peer = targets_[call.target].name;
  span.instance = caller.instance;
  span.host = caller.host->name;
  span.start_s = now();
  span.attempt = attempt;
  return span;
}

Outcome Engine::finish_client_span(SpanRecord& span, const CallerState& caller, Outcome outcome) {
  span.end_s = now();
  span.outcome = outcome;
  emit_span(span, *caller.host);
  return outcome;
}

// A datastore call's key, uniform over the store's key space.
std::int64_t Engine::draw_key(EdgeState& edge, const Target& target) {
  if (!target.is_datastore) return 0;
  return static_cast<std::int64_t>(edge.rng.below(static_cast<std::uint64_t>(
      std::max<std::int64_t>(1, datastores_[target.index - services_.size()]->spec->key_space))));
}

// An attempt that got past the breaker is over: what a write taught the caller
// (read_your_writes), and the breaker's count.
void Engine::settle_attempt(EdgeState& edge, const CompiledCall& call, std::int64_t key,
                            Outcome outcome, std::uint64_t reply_version) {
  const Target& target = targets_[call.target];
  if (outcome == Outcome::ok && target.is_datastore &&
      datastores_[target.index - services_.size()]->spec->queries[call.op].type ==
          model::QueryType::write) {
    auto& written = edge.written[key];
    written = std::max(written, reply_version);
  }
  edge.breaker.record(now(), outcome == Outcome::ok);
  note_breaker(edge);
}

void Engine::reply(const Request& request, Outcome outcome, std::uint64_t version) {
  if (request.reply_delay_s < 0) {
    request.reply_to->notify_reply(request.token, outcome, version);
    return;
  }
  // A reply lost behind a partition never comes: the caller times out.
  if (blocked(request.server_host, request.reply_to_host)) return;
  if (request.reply_failed) outcome = Outcome::unavailable;
  schedule(now() + request.reply_delay_s,
           [waiter = request.reply_to, token = request.token, outcome, version] {
             waiter->notify_reply(token, outcome, version);
           });
}

// Latency network: a request reaches its server when its transfer ends (a timer); a refusal
// travels back like a reply without payload.
void Engine::arrive(Server& server, Request* request) {
  if (ended_) return;
  request->arrival_s = now();
  Request refusal = *request;  // deliver() frees the request when it does not take it
  const auto delivery = deliver(server, request);
  if (delivery == Delivery::accepted) return;
  refusal.reply_delay_s = plan_.path_latency_s(server.host->index, refusal.reply_to_host);
  reply(refusal, delivery == Delivery::rejected ? Outcome::rejected : Outcome::unavailable, 0);
}

Engine::Delivery Engine::deliver(Server& server, Request* request) {
  auto& target = targets_[server.target];
  if (!server.up) {
    free_request(request);
    return Delivery::down;
  }
  int& in_flight = target.in_flight[server.index];
  if (server.memory_limit_mb > 0) {
    check_memory(server, in_flight + 1);
    if (!server.up) {
      free_request(request);
      return Delivery::down;
    }
  }
  const bool full = in_flight >= server.max_in_flight ||
                    (server.idle.empty() && server.waiting.size() >= server.queue_capacity);
  if (full) {
    SpanRecord span;
    span.trace_id = request->trace;
    span.span_id = request->span_id;
    span.parent_span_id = request->parent_span_id;
    span.kind = SpanKind::server;
    span.service = server.name;
    span.operation = server.kind == Server::Kind::service
                         ? std::string_view(server.service->spec->operations[request->op].name)
                         : std::string_view(server.datastore->spec->queries[request->op].name);
    span.instance = server.index;
    span.host = server.host->name;
    span.start_s = span.end_s = now();
    span.outcome = Outcome::rejected;
    emit_span(span, *server.host);
    free_request(request);
    return Delivery::rejected;
  }
  ++in_flight;
  ++stats_.hops;
  if (!server.idle.empty()) {
    ActorContext* worker = server.idle.back();
    const std::uint64_t token = server.idle_tokens.back();
    server.idle.pop_back();
    server.idle_tokens.pop_back();
    if (!begin_work(server, *request, *worker, token)) work_done(*request);
  } else {
    server.waiting.push_back(request);
  }
  return Delivery::accepted;
}

// A request's first piece of work starts the moment a worker takes it: an operation's CPU
// work on the host's shared cores, a query's cost as a delay. It runs without the worker's
// actor, which sleeps on `token`; work_done decides whether it must wake. False: there is no
// such work (or, with CpuModel::simgrid_executions, the worker executes it), so the caller
// calls work_done now.
bool Engine::begin_work(Server& server, Request& request, ActorContext& worker,
                        std::uint64_t token) {
  request.started_s = now();
  request.server = &server;
  request.worker = &worker;
  request.worker_token = token;
  server.in_service.push_back(&request);
  if (server.kind == Server::Kind::service) {
    auto& service = *server.service;
    const auto& op = service.operations[request.op];
    const double cpu_ms = std::max(0.0, op.spec->cpu_ms.sample(server.rng)) * service.cpu_factor;
    request.cpu_flops =
        cpu_ms * 1e-3 * PlatformPlan::kReferenceFlops * server.host->stress * server.slowdown;
    if (request.cpu_flops <= 0 || options_.cpu_model != TwinOptions::CpuModel::processor_sharing) {
      return false;
    }
    server.host->cpu->start(request.cpu_flops, request);
    return true;
  }
  auto& ds = *server.datastore;
  const double cost_s = std::max(0.0, ds.spec->queries[request.op].cost_ms.sample(server.rng)) /
                        1000.0 * ds.query_factor[request.op];
  if (cost_s <= 0) return false;
  schedule(now() + cost_s, [this, &request] { work_done(request); });
  return true;
}

// Nothing left that blocks: a query, or an operation without calls once its CPU work is done.
bool Engine::finishes_without_worker(const Server& server, const Request& request) const {
  if (server.kind == Server::Kind::datastore) return true;
  return options_.cpu_model == TwinOptions::CpuModel::processor_sharing &&
         server.service->operations[request.op].steps.empty();
}

// A request's first piece of work is done. One that needs its worker's actor (it calls others,
// and requests run on actors) wakes it; one that does not finishes here or goes on by
// callbacks, and the still sleeping worker takes the next queued request as worker_loop
// would: one context switch per request that calls others with actors, none otherwise.
void Engine::work_done(Request& done) {
  if (ended_) return;
  Server& server = *done.server;
  ActorContext& worker = *done.worker;
  const std::uint64_t token = done.worker_token;
  if (serve_without_actor(done)) worker_free(server, worker, token);
}

// Serves `request` past its first piece of work without waking its worker's actor when it
// can. True: it is finished and its worker free; false: its worker is still taken (woken, or
// held by the request's calls under way).
bool Engine::serve_without_actor(Request& request) {
  Server& server = *request.server;
  if (finishes_without_worker(server, request)) {
    if (server.kind == Server::Kind::service) {
      serve_operation(nullptr, server, request);
    } else {
      serve_query(server, request);
    }
    return true;
  }
  if (callbacks_) return serve_by_callbacks(server, request);
  request.worker->assigned = &request;
  request.worker->waiter.notify(request.worker_token);
  return false;
}

// `worker` (asleep on `token`) is free: it parks if scaled down, idles, or takes the next
// queued request.
void Engine::worker_free(Server& server, ActorContext& worker, std::uint64_t token) {
  while (true) {
    if (worker.worker >= server.workers) {
      server.parked.push_back(&worker);
      server.parked_tokens.push_back(token);
      return;
    }
    if (server.waiting.empty()) {
      server.idle.push_back(&worker);
      server.idle_tokens.push_back(token);
      return;
    }
    Request* request = server.waiting.front();
    server.waiting.pop_front();
    if (begin_work(server, *request, worker, token)) return;
    if (!serve_without_actor(*request)) return;
  }
}

// What a request does after its first piece of work, in its worker's actor.
void Engine::serve(ActorContext& self, Server& server, Request& request) {
  if (server.kind == Server::Kind::service) {
    serve_operation(&self, server, request);
  } else {
    serve_query(server, request);
  }
}

void Engine::finish_request(Server& server, Request& request, Outcome outcome,
                            std::uint64_t version) {
  const double end = now();
  auto it = std::find(server.in_service.begin(), server.in_service.end(), &request);
  // Absent: a crash already failed it (set_server_up); the work done since is discarded.
  const bool live = it != server.in_service.end();
  if (live) {
    server.in_service.erase(it);
    --targets_[server.target].in_flight[server.index];
  }
  SpanRecord span;
  span.trace_id = request.trace;
  span.span_id = request.span_id;
  span.parent_span_id = request.parent_span_id;
  span.kind = SpanKind::server;
  span.service = server.name;
  span.instance = server.index;
  span.host = server.host->name;
  span.start_s = request.arrival_s;
  span.end_s = end;
  span.outcome = live ? outcome : Outcome::unavailable;
  if (server.kind == Server::Kind::service) {
    span.operation = server.service->spec->operations[request.op].name;
  } else {
    span.operation = server.datastore->spec->queries[request.op].name;
  }
  span.queue_s = request.started_s - request.arrival_s;
  if (live) reply(request, outcome, version);
  emit_span(span, *server.host);
  free_request(&request);
}

Outcome Engine::run_parallel(ActorContext& self, CallerState& caller,
                             const std::vector<const CompiledCall*>& jobs,
                             const TraceContext& trace) {
  struct Join {
    int pending = 0;
    bool failed = false;
    Waiter* waiter = nullptr;
    std::uint64_t token = 0;
  } join;
  join.pending = static_cast<int>(jobs.size()) - 1;
  for (std::size_t j = 1; j < jobs.size(); ++j) {
    const CompiledCall* job = jobs[j];
    runners_->submit([this, &join, &caller, job, trace](ActorContext& helper) {
      if (call(helper, caller, *job, trace) != Outcome::ok) join.failed = true;
      if (--join.pending == 0 && join.waiter != nullptr) join.waiter->notify(join.token);
    });
  }
  if (call(self, caller, *jobs.front(), trace) != Outcome::ok) join.failed = true;
  if (join.pending > 0) {
    join.waiter = &self.waiter;
    join.token = self.waiter.arm();
    self.waiter.wait(-1);
  }
  return join.failed ? Outcome::error : Outcome::ok;
}

Outcome Engine::run_steps(ActorContext& self, Server& instance, const CompiledOperation& op,
                          const TraceContext& trace) {
  auto& rng = instance.rng;
  std::vector<const CompiledCall*> jobs;
  for (const auto& step : op.steps) {
    draw_step_calls(step, rng, jobs);
    if (jobs.empty()) continue;
    if (step.parallel && jobs.size() > 1) {
      if (run_parallel(self, *instance.caller, jobs, trace) != Outcome::ok) return Outcome::error;
      continue;
    }
    for (const CompiledCall* job : jobs) {
      // A dependency that failed (after its retries) fails the operation: later steps are
      // skipped, as a handler that throws would skip them.
      if (call(self, *instance.caller, *job, trace) != Outcome::ok) return Outcome::error;
    }
  }
  return Outcome::ok;
}

// `self`: the worker's actor; null when the operation has no calls (work_done runs it).
void Engine::serve_operation(ActorContext* self, Server& server, Request& request) {
  const auto& op = server.service->operations[request.op];
  if (request.cpu_flops > 0 && options_.cpu_model == TwinOptions::CpuModel::simgrid_executions) {
    ++stats_.simgrid.executions;
    ++stats_.simgrid.actor_blocks;
    sg::this_actor::execute(request.cpu_flops);
  }
  Outcome outcome = Outcome::ok;
  if (fails_at_start(server, request)) {
    outcome = Outcome::error;
  } else {
    outcome = op.steps.empty() ? Outcome::ok
                               : run_steps(*self, server, op, {request.trace, request.span_id});
  }
  finish_request(server, request, outcome, 0);
}

// An operation's CPU work is done: it is accounted, and the operation's error rate drawn.
// True: the operation fails before its calls.
bool Engine::fails_at_start(Server& server, Request& request) {
  auto& service = *server.service;
  const double flops = request.cpu_flops;
  if (flops > 0) {
    server.cpu_s_total += flops / PlatformPlan::kReferenceFlops;
    server.host->busy_core_s += flops / server.host->speed_flops;
  }
  double error_rate = service.operations[request.op].spec->error_rate;
  if (!service.error_override.empty() && service.error_override[request.op] >= 0) {
    error_rate = service.error_override[request.op];
  }
  return error_rate > 0 && server.rng.bernoulli(error_rate);
}

void Engine::serve_query(Server& server, Request& request) {
  auto& ds = *server.datastore;
  const auto& query = ds.spec->queries[request.op];
  const double t = now();  // begin_work waited for the query's cost
  std::uint64_t version = 0;
  if (query.type == model::QueryType::write) {
    version = ds.versions.commit(request.key);
    ++server.writes_total;
    auto& nodes = targets_[ds.target].servers;
    for (std::size_t r = 1; r < nodes.size(); ++r) {
      const double lag =
          std::max(0.0, ds.spec->replication_lag_ms.sample(server.rng)) / 1000.0 * ds.lag_factor +
          ds.lag_extra_s + plan_.path_latency_s(server.host->index, nodes[r]->host->index);
      ds.versions.replicate(static_cast<int>(r) - 1, request.key, version, t, t + lag);
    }
  } else {
    if (ds.spec->consistency == model::Consistency::quorum) {
      // A majority of nodes answers, starting with this one; the newest version wins.
      const int nodes = ds.versions.replicas() + 1;
      const int majority = nodes / 2 + 1;
      for (int k = 0; k < majority; ++k) {
        version =
            std::max(version, ds.versions.node_version((server.index + k) % nodes, request.key, t));
      }
    } else {
      version = ds.versions.node_version(server.index, request.key, t);
    }
    ++server.reads_total;
    if (ds.versions.is_stale(request.key, version)) ++server.stale_reads_total;
  }
  finish_request(server, request, Outcome::ok, version);
}

// ---------------------------------------------------------------------------------------
// Requests carried out by scheduled callbacks (the timeline's, timeline.hpp)
//
// The same steps as run_entry, run_steps, run_parallel, call and attempt_call above (latency
// network), as state machines: where those block their actor, these arm their waiter and
// return, and the wait's decision (a reply timer, a pool hand-over, the deadline heap)
// resumes them. No actor is woken per call; a worker's actor sleeps through its request.

void CallRun::resume(bool signaled) {
  engine->resume_call(*this, signaled);
}

PlanRun& Engine::new_plan() {
  if (free_plan_runs_.empty()) {
    plan_runs_.push_back(std::make_unique<PlanRun>());
    return *plan_runs_.back();
  }
  PlanRun* plan = free_plan_runs_.back();
  free_plan_runs_.pop_back();
  auto jobs = std::move(plan->jobs);  // keeps its capacity
  *plan = PlanRun{};
  plan->jobs = std::move(jobs);
  plan->jobs.clear();
  return *plan;
}

void Engine::free_plan(PlanRun& plan) {
  free_plan_runs_.push_back(&plan);
}

void Engine::start_entry(ClientState& client, int kind) {
  PlanRun& plan = new_plan();
  plan.kind = PlanRun::Kind::entry;
  plan.client = &client;
  plan.mix_kind = kind;
  const TraceId trace{client.rng.next_u64(), client.rng.next_u64()};
  // A copy: a route change while this entry is in flight must not move it.
  plan.target = client.targets[static_cast<std::size_t>(kind)];
  auto& root = plan.root;
  root.trace_id = trace;
  root.span_id = next_span_id();
  root.kind = SpanKind::server;
  root.service = "gateway";
  root.operation = plan.target.route;
  root.instance = client.gateway->instance;
  root.host = client.entry_host->name;
  root.start_s = now();
  plan.trace = {trace, root.span_id};
  plan.caller = client.gateway;
  if (!plan.target.matched) {
    finish_plan(plan, Outcome::not_found);
    return;
  }
  start_call(plan, *client.gateway, plan.target.call, topology_.gateway.latency_ms / 1000.0);
}

// True: the operation finished at once (an error drawn, or calls that all ended at once);
// false: its calls are under way and finish_plan frees the worker when they are done.
bool Engine::serve_by_callbacks(Server& server, Request& request) {
  if (fails_at_start(server, request)) {
    finish_request(server, request, Outcome::error, 0);
    return true;
  }
  PlanRun& plan = new_plan();
  plan.kind = PlanRun::Kind::operation;
  plan.server = &server;
  plan.request = &request;
  plan.op = &server.service->operations[request.op];
  plan.caller = server.caller.get();
  plan.trace = {request.trace, request.span_id};
  plan.starting = true;
  advance_plan(plan);
  if (plan.finished) {
    free_plan(plan);
    return true;
  }
  plan.starting = false;
  return false;
}

// Starts the calls of the next step that has any (each call's probability and count drawn
// as run_steps draws them), or finishes the operation when none is left.
void Engine::advance_plan(PlanRun& plan) {
  auto& rng = plan.server->rng;
  const auto& steps = plan.op->steps;
  while (plan.step < steps.size()) {
    const auto& step = steps[plan.step];
    draw_step_calls(step, rng, plan.jobs);
    if (plan.jobs.empty()) {
      ++plan.step;
      continue;
    }
    if (step.parallel && plan.jobs.size() > 1) {
      const std::size_t calls = plan.jobs.size();
      plan.in_parallel = true;
      plan.pending = calls;
      plan.failed = false;
      // The last call's end may advance the plan (and clear jobs): nothing is read after it.
      for (std::size_t j = 0; j < calls; ++j) start_call(plan, *plan.caller, *plan.jobs[j], 0.0);
      return;
    }
    plan.in_parallel = false;
    plan.next_job = 0;
    start_call(plan, *plan.caller, *plan.jobs.front(), 0.0);
    return;
  }
  finish_plan(plan, Outcome::ok);
}

void Engine::plan_call_done(PlanRun& plan, Outcome outcome) {
  if (plan.kind == PlanRun::Kind::entry) {
    finish_plan(plan, outcome);
    return;
  }
  if (plan.in_parallel) {
    if (outcome != Outcome::ok) plan.failed = true;
    if (--plan.pending > 0) return;
    if (plan.failed) {
      finish_plan(plan, Outcome::error);
      return;
    }
  } else {
    // A dependency that failed (after its retries) fails the operation, as in run_steps.
    if (outcome != Outcome::ok) {
      finish_plan(plan, Outcome::error);
      return;
    }
    if (++plan.next_job < plan.jobs.size()) {
      start_call(plan, *plan.caller, *plan.jobs[plan.next_job], 0.0);
      return;
    }
  }
  ++plan.step;
  advance_plan(plan);
}

void Engine::finish_plan(PlanRun& plan, Outcome outcome) {
  if (plan.kind == PlanRun::Kind::entry) {
    ClientState& client = *plan.client;
    auto& root = plan.root;
    const double start = root.start_s;
    root.end_s = now();
    root.outcome = outcome;
    emit_span(root, *client.entry_host);
    const auto& request_kind = client.spec->mix[static_cast<std::size_t>(plan.mix_kind)];
    emit_entry({root.trace_id, client.spec->name, plan.target.route, request_kind.method,
                request_kind.path, start, root.end_s, status_of(outcome), outcome});
    free_plan(plan);
    return;
  }
  Server& server = *plan.server;
  Request& request = *plan.request;
  ActorContext& worker = *request.worker;
  const std::uint64_t token = request.worker_token;
  finish_request(server, request, outcome, 0);
  if (plan.starting) {
    plan.finished = true;  // serve_by_callbacks frees the plan and the worker
    return;
  }
  free_plan(plan);
  worker_free(server, worker, token);
}

void Engine::start_call(PlanRun& plan, CallerState& caller, const CompiledCall& call,
                        double delay_s) {
  CallRun* run = nullptr;
  if (free_call_runs_.empty()) {
    call_runs_.push_back(std::make_unique<CallRun>(*this, deadlines_));
    run = call_runs_.back().get();
  } else {
    run = free_call_runs_.back();
    free_call_runs_.pop_back();
  }
  run->plan = &plan;
  run->caller = &caller;
  run->call = &call;
  run->trace = plan.trace;
  run->attempt = 0;
  run->holds_connection = false;
  if (delay_s > 0) {
    run->stage = CallRun::Stage::gateway_delay;
    run->waiter.delay_then(delay_s, *run);
    return;
  }
  begin_call(*run);
}

void Engine::begin_call(CallRun& run) {
  run.edge = run.caller->edges[run.call->target].get();
  run.edge->budget.record_call(now());
  start_attempt(run);
}

void Engine::start_attempt(CallRun& run) {
  EdgeState& edge = *run.edge;
  const Target& target = targets_[run.call->target];
  run.span = client_span(*run.caller, *run.call, run.trace, run.attempt);
  const bool allowed = edge.breaker.allow(run.span.start_s);
  note_breaker(edge);
  if (!allowed) {
    finish_client_span(run.span, *run.caller, Outcome::circuit_open);
    run.holds_connection = false;
    // Not retryable: the call ends here.
    end_attempt(run, Outcome::circuit_open, 0);
    return;
  }
  run.policy = edge.policy;
  run.key = draw_key(edge, target);
  if (run.policy->pool.size > 0) {
    auto& pool = edge.pool;
    if (pool.in_use < run.policy->pool.size && pool.waiters.empty()) {
      ++pool.in_use;
    } else {
      run.pool_token = run.waiter.arm();
      pool.waiters.push_back({&run.waiter, run.pool_token});
      run.stage = CallRun::Stage::acquiring;
      run.waiter.wait_then(std::max(0.0, run.policy->pool.acquire_timeout_ms / 1000.0), run);
      return;
    }
    run.holds_connection = true;
  }
  exchange_by_callbacks(run);
}

// latency_exchange's request leg: a timer carries the request to the server, then the call
// waits for the reply until its deadline.
void Engine::exchange_by_callbacks(CallRun& run) {
  EdgeState& edge = *run.edge;
  Target& target = targets_[run.call->target];
  const CompiledCall& call = *run.call;
  run.deadline = now() + run.policy->timeout_ms / 1000.0;
  Server* server = choose_server(edge, target, call, run.key);
  if (server == nullptr) {
    end_attempt(run, Outcome::unavailable, 0);
    return;
  }
  const double extra_s = extra_latency(edge, target);
  if (options_.network == TwinOptions::NetworkModel::flow) {
    run.leg = CallRun::Leg::request;
    run.server = server;
    run.loss = server->service != nullptr ? server->service->loss : 0.0;
    transfer_by_callbacks(run, *run.caller->host, *server->host, call.spec->request_bytes, extra_s);
    return;
  }
  const int from = run.caller->host->index;
  const int to = server->host->index;
  double there = extra_s;
  double back = 0.0;
  bool reply_failed = false;
  if (from != to) {
    if (blocked(from, to)) {
      lose_attempt(run, run.deadline - now(), Outcome::timeout);
      return;
    }
    const double latency = plan_.path_latency_s(from, to);
    const double bandwidth = plan_.path_bandwidth(from, to);
    there += latency + static_cast<double>(call.spec->request_bytes) / bandwidth;
    back = latency + static_cast<double>(call.spec->response_bytes) / bandwidth;
  }
  if (lossy_) {
    const double loss = server->service != nullptr ? server->service->loss : 0.0;
    bool request_failed = false;
    there += loss_delay_s(from, to, loss, request_failed);
    back += loss_delay_s(to, from, loss, reply_failed);
    if (request_failed) {
      const bool in_time = there < run.deadline - now();
      lose_attempt(run, in_time ? there : run.deadline - now(),
                   in_time ? Outcome::unavailable : Outcome::timeout);
      return;
    }
  }
  Request* request = new_request();
  request->trace = run.trace.trace;
  request->span_id = next_span_id();
  request->parent_span_id = run.span.span_id;
  request->op = call.op;
  request->reply_to = &run.waiter;
  request->token = run.waiter.arm();
  request->key = run.key;
  request->reply_delay_s = back;
  request->reply_to_host = from;
  request->server_host = to;
  request->reply_failed = reply_failed;
  schedule(now() + there, [this, server, request] { arrive(*server, request); });
  run.stage = CallRun::Stage::exchanging;
  run.waiter.wait_then(run.deadline - now(), run);
}

// transfer() without an actor: the transfer's end goes to transfer_ended.
void Engine::transfer_by_callbacks(CallRun& run, const HostState& from, const HostState& to,
                                   std::int64_t bytes, double extra_s) {
  using End = CallRun::TransferEnd;
  run.from = &from;
  run.to = &to;
  run.bytes = bytes;
  if (from.index != to.index && blocked(from.index, to.index)) {
    transfer_lost(run, run.deadline - now(), End::timed_out);
    return;
  }
  if (lossy_) {
    bool failed = false;
    const double resend = loss_delay_s(from.index, to.index, run.loss, failed);
    if (failed) {
      const bool in_time = resend < run.deadline - now();
      transfer_lost(run, in_time ? resend : run.deadline - now(),
                    in_time ? End::failed : End::timed_out);
      return;
    }
    extra_s += resend;
  }
  if (extra_s > 0) {
    if (extra_s > run.deadline - now()) {
      transfer_lost(run, run.deadline - now(), End::timed_out);
      return;
    }
    run.stage = CallRun::Stage::transfer_delay;
    run.waiter.delay_then(extra_s, run);
    return;
  }
  start_comm(run);
}

void Engine::transfer_lost(CallRun& run, double delay_s, CallRun::TransferEnd end) {
  if (delay_s <= 0) {
    transfer_ended(run, end);
    return;
  }
  run.transfer_end = end;
  run.stage = CallRun::Stage::transfer_lost;
  run.waiter.delay_then(delay_s, run);
}

void Engine::start_comm(CallRun& run) {
  using End = CallRun::TransferEnd;
  const HostState& from = *run.from;
  const HostState& to = *run.to;
  if (from.index == to.index) {
    transfer_ended(run, End::done);
    return;
  }
  // sendto towards a host that is off aborts SimGrid 3.32 (SIMGRID.md).
  if (!to.host->is_on() || !from.host->is_on()) {
    transfer_ended(run, End::failed);
    return;
  }
  const double remaining = run.deadline - now();
  if (remaining <= 0) {
    transfer_ended(run, End::timed_out);
    return;
  }
  const std::uint64_t token = run.waiter.arm();
  run.comm = comms_.start(from.index, to.index,
                          static_cast<std::uint64_t>(std::max<std::int64_t>(run.bytes, 0)),
                          run.waiter, token);
  run.stage = CallRun::Stage::transfer_comm;
  run.waiter.wait_then(remaining, run);
}

// flow_exchange's steps between and after the transfers.
void Engine::transfer_ended(CallRun& run, CallRun::TransferEnd end) {
  using End = CallRun::TransferEnd;
  if (end == End::timed_out) {
    end_attempt(run, Outcome::timeout, 0);
    return;
  }
  if (end == End::failed) {
    end_attempt(run, Outcome::unavailable, 0);
    return;
  }
  if (run.leg == CallRun::Leg::response) {
    Outcome outcome = Outcome::ok;
    if (run.reply != Outcome::ok) {
      outcome = run.reply == Outcome::unavailable ? Outcome::unavailable : Outcome::error;
    }
    end_attempt(run, outcome, run.reply_version);
    return;
  }
  Request* request = new_request();
  request->trace = run.trace.trace;
  request->span_id = next_span_id();
  request->parent_span_id = run.span.span_id;
  request->op = run.call->op;
  request->arrival_s = now();
  request->reply_to = &run.waiter;
  request->token = run.waiter.arm();
  request->key = run.key;
  const auto delivery = deliver(*run.server, request);
  if (delivery != Delivery::accepted) {
    run.waiter.disarm();
    end_attempt(run, delivery == Delivery::rejected ? Outcome::rejected : Outcome::unavailable, 0);
    return;
  }
  run.stage = CallRun::Stage::awaiting_reply;
  run.waiter.wait_then(std::max(0.0, run.deadline - now()), run);
}

// The attempt ends in `outcome` after `delay_s` in which nothing answers (a transfer lost).
void Engine::lose_attempt(CallRun& run, double delay_s, Outcome outcome) {
  if (delay_s <= 0) {
    end_attempt(run, outcome, 0);
    return;
  }
  run.lost_outcome = outcome;
  run.stage = CallRun::Stage::lost;
  run.waiter.delay_then(delay_s, run);
}

// The attempt is over: its connection goes back, its span ends (unless the breaker refused
// it, which start_attempt recorded), then a retry after its backoff or the call's end.
void Engine::end_attempt(CallRun& run, Outcome outcome, std::uint64_t reply_version) {
  EdgeState& edge = *run.edge;
  if (outcome != Outcome::circuit_open) {
    if (run.holds_connection) {
      run.holds_connection = false;
      release_connection(edge);
    }
    settle_attempt(edge, *run.call, run.key, outcome, reply_version);
    finish_client_span(run.span, *run.caller, outcome);
  }
  double backoff_s = 0.0;
  if (outcome != Outcome::ok && retry_backoff(edge, run.attempt + 1, outcome, backoff_s)) {
    ++run.attempt;
    if (backoff_s <= 0) {
      start_attempt(run);
      return;
    }
    run.stage = CallRun::Stage::backoff;
    run.waiter.delay_then(backoff_s, run);
    return;
  }
  PlanRun& plan = *run.plan;
  free_call_runs_.push_back(&run);
  plan_call_done(plan, outcome);
}

void Engine::resume_call(CallRun& run, bool signaled) {
  // After the run's end nothing moves, as the killed actors of the other path do not.
  if (ended_ || stopped_) return;
  switch (run.stage) {
    case CallRun::Stage::gateway_delay:
      begin_call(run);
      return;
    case CallRun::Stage::acquiring:
      if (signaled) {  // release_connection handed its connection over
        run.holds_connection = true;
        exchange_by_callbacks(run);
        return;
      }
      std::erase_if(run.edge->pool.waiters, [&](const PoolState::Waiting& w) {
        return w.token == run.pool_token && w.waiter == &run.waiter;
      });
      note_pool_timeout(*run.edge);
      end_attempt(run, Outcome::pool_timeout, 0);
      return;
    case CallRun::Stage::exchanging:
      if (!signaled) {
        end_attempt(run, Outcome::timeout, 0);  // the callee goes on; its reply is dropped
        return;
      }
      end_attempt(run, latency_reply_outcome(run.waiter.reply_outcome), run.waiter.reply_version);
      return;
    case CallRun::Stage::lost:
      end_attempt(run, run.lost_outcome, 0);
      return;
    case CallRun::Stage::backoff:
      start_attempt(run);
      return;
    case CallRun::Stage::transfer_lost:
      transfer_ended(run, run.transfer_end);
      return;
    case CallRun::Stage::transfer_delay:
      start_comm(run);
      return;
    case CallRun::Stage::transfer_comm:
      if (!signaled) {
        comms_.cancel(run.comm);
        transfer_ended(run, CallRun::TransferEnd::timed_out);
        return;
      }
      transfer_ended(run, run.waiter.reply_outcome == Outcome::ok ? CallRun::TransferEnd::done
                                                                  : CallRun::TransferEnd::failed);
      return;
    case CallRun::Stage::awaiting_reply:
      if (!signaled) {
        end_attempt(run, Outcome::timeout, 0);  // the callee goes on; its reply is dropped
        return;
      }
      run.reply = run.waiter.reply_outcome;
      run.reply_version = run.waiter.reply_version;
      run.leg = CallRun::Leg::response;
      transfer_by_callbacks(run, *run.server->host, *run.caller->host,
                            run.call->spec->response_bytes, 0.0);
      return;
  }
}

// ---------------------------------------------------------------------------------------
// Records

Request* Engine::new_request() {
  if (free_requests_.empty()) {
    request_storage_.push_back(std::make_unique<Request>());
    return request_storage_.back().get();
  }
  Request* r = free_requests_.back();
  free_requests_.pop_back();
  *r = Request{};
  return r;
}

void Engine::free_request(Request* request) {
  free_requests_.push_back(request);
}

void Engine::emit_span(SpanRecord& span, const HostState& host) {
  if (stopped_ || ended_) return;
  // Clock skew changes what the host's tracer writes down, not what happens.
  if (host.skew_s != 0.0) {
    span.start_s += host.skew_s;
    span.end_s += host.skew_s;
  }
  ++stats_.spans;
  for (auto* o : observers_) o->on_span(span);
}

void Engine::emit_entry(const EntryRecord& entry) {
  if (stopped_ || ended_) return;
  ++stats_.entries;
  for (auto* o : observers_) o->on_entry(entry);
}

void Engine::emit_event(const TwinEvent& event) {
  if (stopped_ || ended_) return;
  for (auto* o : observers_) o->on_event(event);
}

void Engine::check_pool_recovery(double time) {
  const double window = options_.snapshot_interval_s > 0 ? options_.snapshot_interval_s : 1.0;
  for (auto& [key, group] : edge_groups_) {
    if (group->exhausted && time - group->last_timeout_s >= window) {
      group->exhausted = false;
      emit_event({time,
                  "pool_recovered",
                  group->component,
                  {{"acquire_timeouts", std::to_string(group->timeouts_in_episode)}}});
      group->timeouts_in_episode = 0;
    }
  }
}

Snapshot Engine::take_snapshot(double time) {
  Snapshot s;
  s.time_s = time;
  for (const auto& service : services_) {
    const auto& memory = service->spec->memory;
    for (const auto& instance : service->instances) {
      const int busy = instance->spawned - static_cast<int>(instance->idle.size()) -
                       static_cast<int>(instance->parked.size());
      const int queued = static_cast<int>(instance->waiting.size());
      const int in_flight = targets_[instance->target].in_flight[instance->index];
      s.instances.push_back(
          {instance->name, instance->index, instance->host->name, instance->up, instance->workers,
           busy, queued,
           memory.base_mb + memory.per_request_kb * in_flight / 1024.0 + instance->extra_memory_mb,
           instance->cpu_s_total});
    }
  }
  for (const auto& host : hosts_) {
    s.hosts.push_back({host.name, host.zone, host.cores, host.busy_core_s});
  }
  for (const auto& [key, group] : edge_groups_) {
    PoolGauge pool{group->from, group->to, 0, 0, 0, group->acquire_timeouts_total};
    for (const EdgeState* edge : group->members) {
      pool.size += edge->policy->pool.size;
      pool.in_use += edge->pool.in_use;
      pool.waiters += static_cast<int>(edge->pool.waiters.size());
      if (edge->policy->breaker.enabled) {
        s.breakers.push_back({group->from, group->to, edge->instance, edge->breaker.state()});
      }
    }
    if (pool.size > 0) s.pools.push_back(pool);
  }
  for (const auto& ds : datastores_) {
    for (const auto& node : ds->nodes) {
      const double lag =
          node->index == 0 ? 0.0 : ds->versions.lag_s(node->index - 1, time) * 1000.0;
      s.datastores.push_back({node->name, node->index, node->up, lag,
                              targets_[node->target].in_flight[node->index], node->reads_total,
                              node->stale_reads_total, node->writes_total});
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Runtime hooks

void Engine::at(double at_s, std::function<void(TwinRuntime&)> action) {
  runtime_actions_.push_back(std::move(action));
  auto run = [this, stored = &runtime_actions_.back()] {
    if (!stopped_) (*stored)(runtime_);
  };
  // A hook may change links: with the flow network, SimGrid's clock must be at its instant
  // (the timeline runs ahead while no SimGrid comm is in flight, FlowTransfers).
  if (options_.network == TwinOptions::NetworkModel::flow) {
    timeline_.schedule_in_step(std::max(at_s, now()), run);
  } else {
    schedule(at_s, run);
  }
}

void Engine::stop() {
  if (stopped_) return;
  stopped_ = true;
  stats_.simulated_s = now();
  stats_.stopped = true;
  if (sampler_token_ != 0) sampler_->waiter.notify(sampler_token_);
}

void Engine::set_server_up(Server& server, bool up) {
  if (server.up == up) return;
  server.up = up;
  if (up) return;
  // The process died: whatever it held fails now; workers still busy finish as ghosts.
  auto fail = [&](Request* request) { reply(*request, Outcome::unavailable, 0); };
  for (Request* r : server.in_service) fail(r);
  server.in_service.clear();
  for (Request* r : server.waiting) {
    fail(r);
    free_request(r);
  }
  server.waiting.clear();
  targets_[server.target].in_flight[server.index] = 0;
}

ServiceState& Engine::service_named(std::string_view name) {
  for (auto& s : services_) {
    if (s->spec->name == name) return *s;
  }
  throw std::out_of_range(fmt::format("no service '{}'", name));
}

DatastoreState& Engine::datastore_named(std::string_view name) {
  for (auto& d : datastores_) {
    if (d->spec->name == name) return *d;
  }
  throw std::out_of_range(fmt::format("no datastore '{}'", name));
}

HostState& Engine::host_named(std::string_view name) {
  for (auto& h : hosts_) {
    if (h.name == name) return h;
  }
  throw std::out_of_range(fmt::format("no host '{}'", name));
}

void Engine::set_zone_latency(int zone_a, int zone_b, double latency_s) {
  if (zone_a == zone_b) {
    for (int h : plan_.zones[zone_a].hosts) {
      plan_.hosts[h].nic.latency_s = latency_s / 2;
      if (h < static_cast<int>(nic_links_.size())) {
        comms_.before_link_change();
        nic_links_[h]->set_latency(latency_s / 2);
      }
    }
    return;
  }
  auto& route = plan_.zone_route(zone_a, zone_b);
  double half_nics = 0;
  for (int z : {zone_a, zone_b}) {
    if (!plan_.zones[z].hosts.empty())
      half_nics += plan_.hosts[plan_.zones[z].hosts[0]].nic.latency_s;
  }
  route.link.latency_s = std::max(0.0, latency_s - half_nics);
  for (std::size_t i = 0; i < plan_.zone_routes.size(); ++i) {
    if (&plan_.zone_routes[i] == &route && i < zone_links_.size()) {
      comms_.before_link_change();
      zone_links_[i]->set_latency(route.link.latency_s);
    }
  }
}

void Engine::set_edge_policy(const model::EdgePolicy& policy, int only_instance) {
  // Edges point at their policy: keep each new one for the rest of the run.
  replaced_policies_.push_back(std::make_unique<model::EdgePolicy>(policy));
  const model::EdgePolicy* stored = replaced_policies_.back().get();
  auto it = edge_groups_.find({policy.from, policy.to});
  if (it == edge_groups_.end()) return;
  for (EdgeState* edge : it->second->members) {
    if (only_instance >= 0 && edge->instance != only_instance) continue;
    edge->policy = stored;
    edge->breaker.set_policy(stored->breaker);
    edge->balancer.set_kind(stored->load_balancing);
    edge->budget.set_ratio(stored->retry.budget_ratio);
    // A pool that grows opens its new connections for the requests already waiting: they
    // are ahead of every later caller, and without this the pool would only ever hand over
    // the connections it had. A pool that shrinks closes connections as they are released.
    auto& pool = edge->pool;
    const int size = stored->pool.size;  // 0: unbounded from now on
    while ((size == 0 || pool.in_use < size) && !pool.waiters.empty()) {
      auto next = pool.waiters.front();
      pool.waiters.pop_front();
      // Counted before the hand-over: the waiter may go on (and release) at once.
      ++pool.in_use;
      if (!next.waiter->notify(next.token)) --pool.in_use;
    }
  }
}

Server& Engine::instance_of(std::string_view service, int instance) {
  auto& instances = service_named(service).instances;
  if (instance < 0 || static_cast<std::size_t>(instance) >= instances.size()) {
    throw std::out_of_range(fmt::format("service '{}' has no instance {}", service, instance));
  }
  return *instances[static_cast<std::size_t>(instance)];
}

ClientState& Engine::client_named(std::string_view name) {
  for (auto& c : clients_) {
    if (c->spec->name == name) return *c;
  }
  throw std::out_of_range(fmt::format("no client class '{}'", name));
}

int Engine::add_partition(const std::vector<std::string>& side_a,
                          const std::vector<std::string>& side_b, bool two_way) {
  auto hosts_of = [&](const std::vector<std::string>& names) {
    std::vector<int> out;
    for (const auto& name : names) {
      if (const int zone = zone_index(name); zone >= 0) {
        out.insert(out.end(), plan_.zones[zone].hosts.begin(), plan_.zones[zone].hosts.end());
      } else if (plan_.host_index(name) >= 0) {
        out.push_back(plan_.host_index(name));
      } else {
        // A service: the hosts its instances run on (what else runs there is cut off too).
        for (const auto& instance : service_named(name).instances) {
          out.push_back(instance->host->index);
        }
      }
    }
    return out;
  };
  const auto a = hosts_of(side_a);
  const auto b = hosts_of(side_b);
  std::vector<std::pair<int, int>> pairs;
  for (int x : a) {
    for (int y : b) {
      if (x == y) continue;  // a host on both sides still talks to itself
      pairs.emplace_back(x, y);
      if (two_way) pairs.emplace_back(y, x);
    }
  }
  const std::size_t n = hosts_.size();
  for (auto [x, y] : pairs)
    ++blocked_[static_cast<std::size_t>(x) * n + static_cast<std::size_t>(y)];
  const int id = next_partition_id_++;
  partitions_[id] = std::move(pairs);
  partitioned_ = true;
  for (auto& ds : datastores_) update_replication(*ds);
  return id;
}

void Engine::heal_partition(int id) {
  auto it = partitions_.find(id);
  if (it == partitions_.end()) throw std::out_of_range(fmt::format("no partition {}", id));
  const std::size_t n = hosts_.size();
  for (auto [x, y] : it->second)
    --blocked_[static_cast<std::size_t>(x) * n + static_cast<std::size_t>(y)];
  partitions_.erase(it);
  partitioned_ = !partitions_.empty();
  for (auto& ds : datastores_) update_replication(*ds);
}

// Replication to a replica runs unless it was stopped or a partition cuts it from the primary.
void Engine::update_replication(DatastoreState& ds) {
  const int primary_host = ds.nodes.front()->host->index;
  for (std::size_t r = 0; r < ds.replica_held.size(); ++r) {
    const int replica_host = ds.nodes[r + 1]->host->index;
    const bool hold = ds.replication_stopped || blocked(primary_host, replica_host);
    if (hold == static_cast<bool>(ds.replica_held[r])) continue;
    ds.replica_held[r] = hold;
    const int replica = static_cast<int>(r);
    if (hold) {
      ds.versions.hold(replica, now());
    } else {
      ds.versions.release(replica, now());
    }
    emit_event({now(),
                hold ? "replication_stopped" : "replication_resumed",
                std::string(ds.spec->name),
                {{"node", std::to_string(r + 1)},
                 {"cause", ds.replication_stopped ? "stopped" : "partition"}}});
  }
}

// The delay packet loss adds to one transfer: each transmission is lost with the path's loss
// probability and resent after a doubling timeout; `failed` after kMaxTransmissions losses.
double Engine::loss_delay_s(int from_host, int to_host, double service_loss, bool& failed) {
  failed = false;
  // A host's loss is its NIC's, which traffic between two of its own instances never
  // crosses; a service's is its instances' own interfaces (tc netem in the container, as
  // chaos tools inject it), which it does.
  const double nics = from_host == to_host
                          ? 1.0
                          : (1.0 - hosts_[static_cast<std::size_t>(from_host)].loss) *
                                (1.0 - hosts_[static_cast<std::size_t>(to_host)].loss);
  const double delivered = nics * (1.0 - service_loss);
  const double loss = 1.0 - delivered;
  if (loss <= 0.0) return 0.0;
  double delay = 0.0;
  double timeout = kRetransmissionTimeoutS;
  for (int k = 0; k < kMaxTransmissions; ++k) {
    if (!loss_rng_.bernoulli(loss)) return delay;
    delay += timeout;
    timeout *= 2;
  }
  failed = true;
  return delay;
}

// Latency a fault adds to one request: the callee service's and the edge's, each with its
// jitter drawn uniformly in [-jitter, +jitter] (never below zero in all).
double Engine::extra_latency(const EdgeState& edge, const Target& target) {
  const EdgeGroup& group = *edge.group;
  const ServiceState* service = target.is_datastore ? nullptr : services_[target.index].get();
  double extra = group.extra_latency_s + (service != nullptr ? service->extra_latency_s : 0.0);
  if (jittery_) {
    const double jitter = group.jitter_s + (service != nullptr ? service->jitter_s : 0.0);
    if (jitter > 0) extra += jitter_rng_.uniform(-jitter, jitter);
  }
  return std::max(0.0, extra);
}

EdgeGroup& Engine::edge_group(std::string_view from, std::string_view to) {
  auto it = edge_groups_.find({std::string(from), std::string(to)});
  if (it == edge_groups_.end()) {
    throw std::out_of_range(fmt::format("no calls from '{}' to '{}'", from, to));
  }
  return *it->second;
}

void Engine::update_fault_flags() {
  lossy_ = false;
  for (const auto& h : hosts_) lossy_ = lossy_ || h.loss > 0;
  for (const auto& s : services_) lossy_ = lossy_ || s->loss > 0;
  jittery_ = false;
  for (const auto& s : services_) jittery_ = jittery_ || s->jitter_s > 0;
  for (const auto& [key, group] : edge_groups_) jittery_ = jittery_ || group->jitter_s > 0;
}

void Engine::set_zone_bandwidth(int zone_a, int zone_b, double bytes_per_s) {
  if (zone_a == zone_b) {
    for (int h : plan_.zones[zone_a].hosts) {
      plan_.hosts[h].nic.bandwidth_bytes_per_s = bytes_per_s;
      if (h < static_cast<int>(nic_links_.size())) {
        comms_.before_link_change();
        nic_links_[h]->set_bandwidth(bytes_per_s);
      }
    }
    return;
  }
  auto& route = plan_.zone_route(zone_a, zone_b);
  route.link.bandwidth_bytes_per_s = bytes_per_s;
  for (std::size_t i = 0; i < plan_.zone_routes.size(); ++i) {
    if (&plan_.zone_routes[i] == &route && i < zone_links_.size()) {
      comms_.before_link_change();
      zone_links_[i]->set_bandwidth(bytes_per_s);
    }
  }
}

void Engine::set_client_rate_factor(ClientState& client, double factor) {
  client.rate_factor = factor;
  // The exponential is memoryless: dropping the pending arrival and drawing from now at the
  // new rate is exact.
  ++client.arrival_generation;
  schedule_arrival(client, client.arrivals.next_after(now(), client.rng, factor),
                   stats_.simulated_s);
}

void Engine::set_gateway_routes(const std::vector<model::Route>& routes) {
  auto gateway = std::make_unique<model::Gateway>(
      replaced_gateways_.empty() ? topology_.gateway : *replaced_gateways_.back());
  gateway->routes = routes;
  std::unique_ptr<GatewayRouter> router;
  try {
    router = std::make_unique<GatewayRouter>(*gateway, topology_.name);
  } catch (const InputError& e) {
    throw std::invalid_argument(e.what());
  }
  // Everything is checked before anything changes.
  std::vector<std::vector<EntryTarget>> targets;
  for (const auto& client : clients_) {
    auto& per_kind = targets.emplace_back();
    for (const auto& kind : client->spec->mix) {
      std::string problem;
      auto entry = route_entry(*router, *client, kind, problem);
      if (!entry) throw std::out_of_range(problem);
      per_kind.push_back(*entry);
    }
  }
  for (std::size_t c = 0; c < clients_.size(); ++c) {
    auto& client = *clients_[c];
    client.targets = std::move(targets[c]);
    std::vector<int> entry_targets;
    for (const auto& entry : client.targets) {
      if (entry.matched) entry_targets.push_back(entry.call.target);
    }
    attach_edges(*client.gateway, "gateway", entry_targets);
  }
  replaced_gateways_.push_back(std::move(gateway));
  replaced_routers_.push_back(std::move(router));
}

void Engine::set_workers(Server& server, int workers) {
  workers = std::max(1, workers);
  const int added = std::max(0, workers - server.spawned);
  if (worker_actors_ + static_cast<std::size_t>(added) + runners_->size() > kMaxActors) {
    throw std::length_error(fmt::format(
        "{} more workers would pass the engine's limit of {} actors", added, kMaxActors));
  }
  const int queue = server.max_in_flight - server.workers;
  server.workers = workers;
  server.max_in_flight = workers + queue;
  // Idle workers past the new count park; parked ones under it come back.
  for (std::size_t i = 0; i < server.idle.size();) {
    if (server.idle[i]->worker >= workers) {
      server.parked.push_back(server.idle[i]);
      server.parked_tokens.push_back(server.idle_tokens[i]);
      server.idle.erase(server.idle.begin() + static_cast<std::ptrdiff_t>(i));
      server.idle_tokens.erase(server.idle_tokens.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (std::size_t i = 0; i < server.parked.size();) {
    if (server.parked[i]->worker < workers) {
      server.parked[i]->waiter.notify(server.parked_tokens[i]);
      server.parked.erase(server.parked.begin() + static_cast<std::ptrdiff_t>(i));
      server.parked_tokens.erase(server.parked_tokens.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (int w = 0; w < added; ++w) spawn_worker(server);
}

void Engine::check_memory(Server& server, int in_flight) {
  if (server.memory_limit_mb <= 0 || !server.up || server.service == nullptr) return;
  const auto& memory = server.service->spec->memory;
  const double mb =
      memory.base_mb + memory.per_request_kb * in_flight / 1024.0 + server.extra_memory_mb;
  if (mb <= server.memory_limit_mb) return;
  set_server_up(server, false);
  emit_event({now(),
              "instance_oom_killed",
              std::string(server.name),
              {{"instance", std::to_string(server.index)},
               {"memory_mb", fmt::format("{:.1f}", mb)},
               {"limit_mb", fmt::format("{:.1f}", server.memory_limit_mb)}}});
  emit_event({now(),
              "instance_down",
              std::string(server.name),
              {{"instance", std::to_string(server.index)}}});
}

// ---------------------------------------------------------------------------------------
// The run

RunStats Engine::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  const double duration =
      options_.duration_s > 0 ? options_.duration_s : topology_.workload.duration_s;
  stats_.simulated_s = duration;

  static int argc = 2;
  static char arg0[] = "doppel-twin";
  static char arg1[] = "--log=root.thresh:critical";
  static char* argv[] = {arg0, arg1, nullptr};
  // One engine per process, kept until exit: its actors end with the process.
  auto* engine = new sg::Engine(&argc, argv);
  callbacks_ = options_.requests == TwinOptions::Requests::callbacks &&
               options_.cpu_model == TwinOptions::CpuModel::processor_sharing;
  // SimGrid's clock moves on its own for flow transfers and executions: the timeline follows.
  // Reported before the flow network's transfer ends are handed over (connected after).
  sg::Engine::on_time_advance_cb([this](double) {
    ++stats_.simgrid.rounds;
    timeline_.sync(sg::Engine::get_clock());
  });
  // Without either, nothing in SimGrid takes time: the timeline may run ahead of its clock.
  // With the flow network, FlowTransfers allows it while no SimGrid comm is in flight.
  timeline_.allow_running_ahead(options_.run_ahead &&
                                options_.network == TwinOptions::NetworkModel::latency &&
                                options_.cpu_model == TwinOptions::CpuModel::processor_sharing);
  if (options_.network == TwinOptions::NetworkModel::flow) comms_.connect();
  sg::Engine::set_config("contexts/stack-size:128");
  build_platform();
  if (options_.network == TwinOptions::NetworkModel::flow) {
    std::vector<sg::Host*> hosts;
    for (const auto& h : hosts_) hosts.push_back(h.host);
    // Not with actors: one woken while the timeline is ahead would run before the rest of
    // that instant when a comm hands back to SimGrid, where SimGrid runs actors after it.
    comms_.prepare(hosts, options_.flow_shortcut, options_.run_ahead && callbacks_);
  }
  build_model();
  start_actors();
  sampler_ = std::make_unique<ActorContext>(deadlines_);
  sg::Actor::create("sampler", hosts_.front().host, [this, duration] { sampler_loop(duration); });
  if (options_.on_start) options_.on_start(runtime_);
  engine->run();
  for (auto* o : observers_) o->on_run_end(stats_.simulated_s);
  stats_.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return stats_;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Public surface

double TwinRuntime::now() const {
  return engine_->now();
}
void TwinRuntime::at(double at_s, std::function<void(TwinRuntime&)> action) {
  engine_->at(at_s, std::move(action));
}
void TwinRuntime::stop() {
  engine_->stop();
}
void TwinRuntime::set_instance_up(std::string_view service, int instance, bool up) {
  engine_->set_server_up(*engine_->service_named(service).instances.at(instance), up);
  emit_event({now(),
              up ? "instance_up" : "instance_down",
              std::string(service),
              {{"instance", std::to_string(instance)}}});
}
void TwinRuntime::set_datastore_node_up(std::string_view datastore, int node, bool up) {
  engine_->set_server_up(*engine_->datastore_named(datastore).nodes.at(node), up);
  emit_event({now(),
              up ? "datastore_node_up" : "datastore_node_down",
              std::string(datastore),
              {{"node", std::to_string(node)}}});
}
void TwinRuntime::set_extra_latency(std::string_view service, double ms) {
  engine_->service_named(service).extra_latency_s = std::max(0.0, ms) / 1000.0;
}
void TwinRuntime::set_zone_latency(std::string_view zone_a, std::string_view zone_b,
                                   double latency_us) {
  const int a = engine_->zone_index(zone_a);
  const int b = engine_->zone_index(zone_b);
  if (a < 0 || b < 0) throw std::out_of_range("unknown zone");
  engine_->set_zone_latency(a, b, std::max(0.0, latency_us) * 1e-6);
}
void TwinRuntime::set_latency_jitter(std::string_view service, double jitter_ms) {
  engine_->service_named(service).jitter_s = std::max(0.0, jitter_ms) / 1000.0;
  engine_->update_fault_flags();
  emit_event({now(),
              "latency_jitter_set",
              std::string(service),
              {{"jitter_ms", fmt::format("{}", jitter_ms)}}});
}
void TwinRuntime::set_edge_extra_latency(std::string_view from, std::string_view to, double ms,
                                         double jitter_ms) {
  auto& group = engine_->edge_group(from, to);
  group.extra_latency_s = std::max(0.0, ms) / 1000.0;
  group.jitter_s = std::max(0.0, jitter_ms) / 1000.0;
  engine_->update_fault_flags();
  emit_event({now(),
              "edge_latency_set",
              group.component,
              {{"ms", fmt::format("{}", ms)}, {"jitter_ms", fmt::format("{}", jitter_ms)}}});
}
void TwinRuntime::set_cpu_stress(std::string_view host, double factor) {
  engine_->host_named(host).stress = std::max(1e-3, factor);
}
void TwinRuntime::set_edge_policy(const model::EdgePolicy& policy) {
  engine_->set_edge_policy(policy);
}
void TwinRuntime::set_instance_edge_policy(const model::EdgePolicy& policy, int instance) {
  const auto& caller = engine_->service_named(policy.from);
  if (instance < 0 || instance >= static_cast<int>(caller.instances.size())) {
    throw std::out_of_range(fmt::format("{} has no instance {}", policy.from, instance));
  }
  engine_->set_edge_policy(policy, instance);
}
void TwinRuntime::set_cpu_cost_factor(std::string_view service, double factor) {
  engine_->service_named(service).cpu_factor = std::max(0.0, factor);
}
void TwinRuntime::emit_event(const TwinEvent& event) {
  engine_->emit_event(event);
}

namespace {
std::string number(double value) {
  return fmt::format("{}", value);
}
double at_least(double value, double floor) {
  return std::max(floor, value);
}
}  // namespace

int TwinRuntime::add_partition(const std::vector<std::string>& side_a,
                               const std::vector<std::string>& side_b, bool two_way) {
  const int id = engine_->add_partition(side_a, side_b, two_way);
  auto join = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
    return out;
  };
  emit_event({now(),
              "partition_applied",
              fmt::format("{}|{}", join(side_a), join(side_b)),
              {{"partition", std::to_string(id)}, {"two_way", two_way ? "true" : "false"}}});
  return id;
}
void TwinRuntime::heal_partition(int partition_id) {
  engine_->heal_partition(partition_id);
  emit_event({now(), "partition_healed", "", {{"partition", std::to_string(partition_id)}}});
}
void TwinRuntime::set_host_packet_loss(std::string_view host, double rate) {
  engine_->host_named(host).loss = std::clamp(rate, 0.0, 1.0);
  engine_->update_fault_flags();
  emit_event({now(), "packet_loss_set", std::string(host), {{"rate", number(rate)}}});
}
void TwinRuntime::set_service_packet_loss(std::string_view service, double rate) {
  engine_->service_named(service).loss = std::clamp(rate, 0.0, 1.0);
  engine_->update_fault_flags();
  emit_event({now(), "packet_loss_set", std::string(service), {{"rate", number(rate)}}});
}
void TwinRuntime::set_zone_bandwidth(std::string_view zone_a, std::string_view zone_b,
                                     double mbps) {
  const int a = engine_->zone_index(zone_a);
  const int b = engine_->zone_index(zone_b);
  if (a < 0 || b < 0) throw std::out_of_range("unknown zone");
  engine_->set_zone_bandwidth(a, b, at_least(mbps, 1e-6) * 1e6 / 8.0);
  emit_event(
      {now(), "bandwidth_set", fmt::format("{}->{}", zone_a, zone_b), {{"mbps", number(mbps)}}});
}
void TwinRuntime::set_service_resolvable(std::string_view service, bool resolvable) {
  auto& s = engine_->service_named(service);
  engine_->targets_[static_cast<std::size_t>(s.target)].resolvable = resolvable;
  emit_event({now(), resolvable ? "name_resolves" : "name_unresolvable", std::string(service), {}});
}
void TwinRuntime::set_replication_lag(std::string_view datastore, double factor, double extra_ms) {
  auto& ds = engine_->datastore_named(datastore);
  ds.lag_factor = at_least(factor, 0.0);
  ds.lag_extra_s = at_least(extra_ms, 0.0) / 1000.0;
  emit_event({now(),
              "replication_lag_set",
              std::string(datastore),
              {{"factor", number(factor)}, {"extra_ms", number(extra_ms)}}});
}
void TwinRuntime::set_replication_stopped(std::string_view datastore, bool stopped) {
  auto& ds = engine_->datastore_named(datastore);
  ds.replication_stopped = stopped;
  engine_->update_replication(ds);  // emits replication_stopped / _resumed per replica
}
void TwinRuntime::set_query_slowdown(std::string_view datastore, std::string_view query,
                                     double factor) {
  auto& ds = engine_->datastore_named(datastore);
  bool found = query.empty();
  for (std::size_t q = 0; q < ds.spec->queries.size(); ++q) {
    if (query.empty() || ds.spec->queries[q].name == query) {
      ds.query_factor[q] = at_least(factor, 0.0);
      found = true;
    }
  }
  if (!found) throw std::out_of_range(fmt::format("'{}' has no query '{}'", datastore, query));
  emit_event({now(),
              "query_slowdown_set",
              std::string(datastore),
              {{"query", std::string(query)}, {"factor", number(factor)}}});
}
void TwinRuntime::set_max_connections(std::string_view datastore, int max_connections) {
  auto& ds = engine_->datastore_named(datastore);
  for (auto& node : ds.nodes) {
    node->max_in_flight = std::max(1, max_connections);
    node->queue_capacity = static_cast<std::size_t>(node->max_in_flight);
  }
  emit_event({now(),
              "max_connections_set",
              std::string(datastore),
              {{"max_connections", std::to_string(max_connections)}}});
}
void TwinRuntime::set_error_rate(std::string_view service, std::string_view operation,
                                 double rate) {
  auto& s = engine_->service_named(service);
  const auto& ops = s.spec->operations;
  if (s.error_override.empty()) s.error_override.assign(ops.size(), -1.0);
  bool found = operation.empty();
  for (std::size_t o = 0; o < ops.size(); ++o) {
    if (operation.empty() || ops[o].name == operation) {
      s.error_override[o] = rate < 0 ? -1.0 : std::min(rate, 1.0);
      found = true;
    }
  }
  if (!found)
    throw std::out_of_range(fmt::format("'{}' has no operation '{}'", service, operation));
  emit_event({now(),
              "error_rate_set",
              std::string(service),
              {{"operation", std::string(operation)}, {"rate", number(rate)}}});
}
void TwinRuntime::set_client_rate_factor(std::string_view client, double factor) {
  engine_->set_client_rate_factor(engine_->client_named(client), at_least(factor, 0.0));
  emit_event({now(), "client_rate_set", std::string(client), {{"factor", number(factor)}}});
}
void TwinRuntime::set_gateway_routes(const std::vector<model::Route>& routes) {
  engine_->set_gateway_routes(routes);
  emit_event({now(), "routes_changed", "gateway", {{"routes", std::to_string(routes.size())}}});
}
void TwinRuntime::set_instance_slowdown(std::string_view service, int instance, double factor) {
  engine_->instance_of(service, instance).slowdown = at_least(factor, 1e-3);
  emit_event({now(),
              "instance_slowdown_set",
              std::string(service),
              {{"instance", std::to_string(instance)}, {"factor", number(factor)}}});
}
void TwinRuntime::set_instance_extra_memory(std::string_view service, int instance, double mb) {
  auto& server = engine_->instance_of(service, instance);
  server.extra_memory_mb = at_least(mb, 0.0);
  emit_event({now(),
              "instance_memory_set",
              std::string(service),
              {{"instance", std::to_string(instance)}, {"extra_mb", number(mb)}}});
  engine_->check_memory(server, engine_->targets_[static_cast<std::size_t>(server.target)]
                                    .in_flight[static_cast<std::size_t>(instance)]);
}
void TwinRuntime::set_instance_memory_limit(std::string_view service, int instance,
                                            double limit_mb) {
  auto& server = engine_->instance_of(service, instance);
  server.memory_limit_mb = at_least(limit_mb, 0.0);
  emit_event({now(),
              "instance_memory_limit_set",
              std::string(service),
              {{"instance", std::to_string(instance)}, {"limit_mb", number(limit_mb)}}});
  engine_->check_memory(server, engine_->targets_[static_cast<std::size_t>(server.target)]
                                    .in_flight[static_cast<std::size_t>(instance)]);
}
void TwinRuntime::set_clock_skew(std::string_view host, double skew_ms) {
  engine_->host_named(host).skew_s = skew_ms / 1000.0;
  emit_event({now(), "clock_skew_set", std::string(host), {{"skew_ms", number(skew_ms)}}});
}
void TwinRuntime::set_workers(std::string_view service, int workers) {
  for (auto& instance : engine_->service_named(service).instances) {
    engine_->set_workers(*instance, workers);
  }
  emit_event({now(), "workers_set", std::string(service), {{"workers", std::to_string(workers)}}});
}
void TwinRuntime::set_queue_capacity(std::string_view service, int capacity) {
  for (auto& instance : engine_->service_named(service).instances) {
    instance->queue_capacity = static_cast<std::size_t>(std::max(0, capacity));
    instance->max_in_flight = instance->workers + std::max(0, capacity);
  }
  emit_event({now(),
              "queue_capacity_set",
              std::string(service),
              {{"queue_capacity", std::to_string(capacity)}}});
}
void TwinRuntime::set_active_replicas(std::string_view service, int replicas) {
  auto& instances = engine_->service_named(service).instances;
  const int active = std::clamp(replicas, 1, static_cast<int>(instances.size()));
  for (auto& instance : instances) instance->retired = instance->index >= active;
  emit_event({now(), "replicas_set", std::string(service), {{"replicas", std::to_string(active)}}});
}

RunStats run_twin(const model::Topology& topology, const TwinOptions& options,
                  std::span<TwinObserver* const> observers) {
  static std::atomic<bool> ran{false};
  if (ran.exchange(true)) {
    throw std::logic_error(
        "run_twin: one simulation per process (SimGrid's engine is a singleton); run "
        "replications as separate processes");
  }
  // Kept alive with the engine: SimGrid's actors may still refer to it at exit.
  auto* engine = new detail::Engine(topology, options, observers);
  return engine->run();
}

}  // namespace doppel::twin
