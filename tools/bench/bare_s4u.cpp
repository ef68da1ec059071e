// The benchmark's baseline: the message pattern of a topology's workload, replayed with bare
// SimGrid primitives and nothing else (no spans, policies, breakers, pools, balancing or
// retries). A user-space queue per instance (std::deque + s4u::Semaphore), an execution per
// CPU cost, a sleep (latency network) or a host-to-host comm (flow network) per transfer, a
// semaphore per reply, an actor per entry request and per parallel branch. Doppel's overhead
// is its wall time over this one's for the same requests.
#include "bare_s4u.hpp"

#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Comm.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Host.hpp>
#include <simgrid/s4u/Link.hpp>
#include <simgrid/s4u/Semaphore.hpp>

#include "twin/arrival_process.hpp"
#include "twin/gateway_router.hpp"
#include "twin/platform_plan.hpp"
#include "twin/simgrid_platform.hpp"

namespace doppel::bench {

namespace {
namespace sg = simgrid::s4u;
using twin::detail::PlatformPlan;

struct Message {
  int op = 0;
  sg::SemaphorePtr done;
};

struct Instance {
  int host = 0;
  std::deque<Message*> queue;
  sg::SemaphorePtr pending = sg::Semaphore::create(0);
};

struct Callee {
  bool datastore = false;
  int index = 0;
  std::vector<Instance> instances;
  std::size_t next = 0;  // round robin
};

class BareModel {
 public:
  BareModel(const model::Topology& topology, bool flow)
      : topology_(topology),
        plan_(twin::detail::make_platform_plan(topology)),
        router_(topology.gateway, topology.name),
        flow_(flow) {}

  BareStats run(double duration) {
    static int argc = 2;
    static char arg0[] = "doppel-bench-bare";
    static char arg1[] = "--log=root.thresh:critical";
    static char* argv[] = {arg0, arg1, nullptr};
    auto* engine = new sg::Engine(&argc, argv);
    sg::Engine::set_config("network/model:CM02");
    sg::Engine::set_config("contexts/stack-size:128");
    build_platform();
    build_callees();
    const auto start = std::chrono::steady_clock::now();
    for (const auto& client : topology_.workload.clients) {
      sg::Actor::create("arrivals", hosts_.front(), [this, &client, duration] {
        twin::detail::ArrivalProcess arrivals(client.rate);
        std::vector<double> weights;
        for (const auto& kind : client.mix) weights.push_back(kind.weight);
        twin::detail::WeightedChoice mix(weights);
        model::RandomStream rng(7);
        for (double t = arrivals.next_after(0, rng); t < duration;
             t = arrivals.next_after(t, rng)) {
          sg::this_actor::sleep_until(t);
          const int kind = mix.pick(rng);
          sg::Actor::create("entry", hosts_.front(), [this, &client, kind] {
            entry(client, kind);
          })->daemonize();
        }
      })->daemonize();
    }
    sg::Actor::create("clock", hosts_.front(),
                      [duration] { sg::this_actor::sleep_until(duration); });
    engine->run();
    BareStats stats;
    stats.hops = hops_;
    stats.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return stats;
  }

 private:
  void build_platform() { hosts_ = build_simgrid_platform(plan_).hosts; }

  int host_of(const model::Placement& p, int& spread) const {
    if (p.host) return plan_.host_index(*p.host);
    for (const auto& zone : plan_.zones) {
      if (zone.name == p.zone)
        return zone.hosts[static_cast<std::size_t>(spread++) % zone.hosts.size()];
    }
    return 0;
  }

  void build_callees() {
    for (std::size_t s = 0; s < topology_.services.size(); ++s) {
      const auto& spec = topology_.services[s];
      Callee callee{false, static_cast<int>(s), {}, 0};
      int spread = 0;
      for (int i = 0; i < spec.replicas; ++i) {
        callee.instances.push_back(
            {host_of(spec.placement[static_cast<std::size_t>(i) % spec.placement.size()], spread),
             {},
             sg::Semaphore::create(0)});
      }
      callees_.push_back(std::move(callee));
    }
    for (std::size_t d = 0; d < topology_.datastores.size(); ++d) {
      const auto& spec = topology_.datastores[d];
      Callee callee{true, static_cast<int>(d), {}, 0};
      int spread = 0;
      callee.instances.push_back({host_of(spec.primary, spread), {}, sg::Semaphore::create(0)});
      for (const auto& r : spec.replicas)
        callee.instances.push_back({host_of(r, spread), {}, sg::Semaphore::create(0)});
      callees_.push_back(std::move(callee));
    }
    // Workers take messages from their instance's queue.
    for (auto& callee : callees_) {
      const int workers = callee.datastore ? topology_.datastores[callee.index].workers
                                           : topology_.services[callee.index].workers;
      for (auto& instance : callee.instances) {
        for (int w = 0; w < workers; ++w) {
          sg::Actor::create("worker", hosts_[instance.host], [this, &callee, &instance] {
            model::RandomStream rng(static_cast<std::uint64_t>(instance.host) * 7919 + 13);
            while (true) {
              instance.pending->acquire();
              Message* message = instance.queue.front();
              instance.queue.pop_front();
              serve(callee, instance, *message, rng);
              message->done->release();
            }
          })->daemonize();
        }
      }
    }
  }

  int callee_of(const std::string& name) const {
    for (std::size_t s = 0; s < topology_.services.size(); ++s) {
      if (topology_.services[s].name == name) return static_cast<int>(s);
    }
    for (std::size_t d = 0; d < topology_.datastores.size(); ++d) {
      if (topology_.datastores[d].name == name)
        return static_cast<int>(topology_.services.size() + d);
    }
    return -1;
  }

  void move_bytes(int from, int to, std::int64_t bytes) {
    if (from == to) return;
    if (flow_) {
      sg::Comm::sendto(hosts_[from], hosts_[to], static_cast<std::uint64_t>(bytes));
    } else {
      sg::this_actor::sleep_for(plan_.path_latency_s(from, to) +
                                static_cast<double>(bytes) / plan_.path_bandwidth(from, to));
    }
  }

  void call(int from_host, int callee_index, const std::string& operation,
            const model::Call* spec) {
    auto& callee = callees_[static_cast<std::size_t>(callee_index)];
    auto& instance = callee.instances[callee.next++ % callee.instances.size()];
    int op = 0;
    if (callee.datastore) {
      const auto& queries = topology_.datastores[callee.index].queries;
      for (std::size_t q = 0; q < queries.size(); ++q)
        if (queries[q].name == operation) op = static_cast<int>(q);
    } else {
      const auto& ops = topology_.services[callee.index].operations;
      for (std::size_t o = 0; o < ops.size(); ++o)
        if (ops[o].name == operation) op = static_cast<int>(o);
    }
    const std::int64_t request_bytes = spec ? spec->request_bytes : 512;
    const std::int64_t response_bytes = spec ? spec->response_bytes : 2048;
    move_bytes(from_host, instance.host, request_bytes);
    Message message{op, sg::Semaphore::create(0)};
    instance.queue.push_back(&message);
    ++hops_;
    instance.pending->release();
    message.done->acquire();
    move_bytes(instance.host, from_host, response_bytes);
  }

  void serve(Callee& callee, Instance& instance, const Message& message, model::RandomStream& rng) {
    if (callee.datastore) {
      const auto& query = topology_.datastores[callee.index].queries[message.op];
      sg::this_actor::sleep_for(std::max(0.0, query.cost_ms.sample(rng)) / 1000.0);
      return;
    }
    const auto& op = topology_.services[callee.index].operations[message.op];
    const double flops = std::max(0.0, op.cpu_ms.sample(rng)) * 1e6;
    if (flops > 0) sg::this_actor::execute(flops);
    for (const auto& step : op.steps) {
      std::vector<const model::Call*> jobs;
      for (const auto& c : step.calls) {
        if (c.probability < 1.0 && !rng.bernoulli(c.probability)) continue;
        int repeats = static_cast<int>(std::floor(c.count));
        if (c.count > std::floor(c.count) && rng.bernoulli(c.count - std::floor(c.count)))
          ++repeats;
        for (int r = 0; r < repeats; ++r) jobs.push_back(&c);
      }
      if (step.parallel && jobs.size() > 1) {
        auto done = sg::Semaphore::create(0);
        for (std::size_t j = 1; j < jobs.size(); ++j) {
          const model::Call* job = jobs[j];
          sg::Actor::create("branch", hosts_[instance.host], [this, &instance, job, done] {
            call(instance.host, callee_of(job->to), job->operation, job);
            done->release();
          })->daemonize();
        }
        call(instance.host, callee_of(jobs[0]->to), jobs[0]->operation, jobs[0]);
        for (std::size_t j = 1; j < jobs.size(); ++j) done->acquire();
      } else {
        for (const auto* job : jobs) call(instance.host, callee_of(job->to), job->operation, job);
      }
    }
  }

  void entry(const model::ClientClass& client, int kind) {
    // Routes are matched once per request kind, as Doppel does.
    auto& cached = routes_[{&client, kind}];
    if (!cached) {
      const auto& request = client.mix[static_cast<std::size_t>(kind)];
      cached.emplace(-1, std::string());
      if (auto target = router_.match(request.method, request.path, client.headers)) {
        std::string operation(target->operation);
        if (operation.empty()) {
          operation = topology_.find_service(target->service)->operations.front().name;
        }
        cached.emplace(callee_of(std::string(target->service)), operation);
      }
    }
    if (cached->first >= 0) call(0, cached->first, cached->second, nullptr);
  }

  const model::Topology& topology_;
  PlatformPlan plan_;
  twin::detail::GatewayRouter router_;
  std::map<std::pair<const model::ClientClass*, int>, std::optional<std::pair<int, std::string>>>
      routes_;
  bool flow_;
  std::vector<sg::Host*> hosts_;
  std::vector<Callee> callees_;
  std::uint64_t hops_ = 0;
};
}  // namespace

BareStats run_bare(const model::Topology& topology, bool flow_network, double duration_s) {
  auto* model = new BareModel(topology, flow_network);  // lives with the engine until exit
  return model->run(duration_s);
}

}  // namespace doppel::bench
