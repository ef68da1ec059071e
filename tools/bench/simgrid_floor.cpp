// The floor under any actor-based engine on SimGrid 3.32: the cost of the few operations a
// simulated request is made of, each repeated alone in a loop. The twin spends several of
// these per hop, so their rates bound what it can reach (docs/performance.md, "Twin engine").
#include "simgrid_floor.hpp"

#include <memory>
#include <stdexcept>

#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Host.hpp>
#include <simgrid/s4u/NetZone.hpp>
#include <simgrid/s4u/Semaphore.hpp>

namespace doppel::bench {
namespace {

namespace sg = simgrid::s4u;
using simgrid::kernel::timer::Timer;

// Simulated time between operations: small, so the run never reaches a horizon.
constexpr double kStepS = 1e-6;
constexpr double kFlops = 1e6;  // 1 ms on a 1 Gflop/s core
constexpr int kCores = 4;

struct Counter {
  std::uint64_t done = 0;
  std::uint64_t target = 0;
  bool more() const { return done < target; }
};

// Maestro alone: each timer's callback sets the next one.
void timer_chain(Counter& counter) {
  if (!counter.more()) return;
  ++counter.done;
  Timer::set(sg::Engine::get_clock() + kStepS, [&counter] { timer_chain(counter); });
}

// The twin's pattern: a timer (a transfer ending) wakes an actor blocked on a semaphore.
void timer_wakes_actor(Counter& counter) {
  auto semaphore = sg::Semaphore::create(0);
  while (counter.more()) {
    Timer::set(sg::Engine::get_clock() + kStepS, [semaphore] { semaphore->release(); });
    semaphore->acquire();
    ++counter.done;
  }
}

// One actor waking another and waiting to be woken back: two wake-ups per round.
void ping_pong(Counter& counter) {
  auto ping = sg::Semaphore::create(0);
  auto pong = sg::Semaphore::create(0);
  sg::Actor::create("pong", sg::this_actor::get_host(), [ping, pong, &counter] {
    while (true) {
      ping->acquire();
      ++counter.done;
      pong->release();
    }
  })->daemonize();
  while (counter.more()) {
    ping->release();
    pong->acquire();
    ++counter.done;
  }
}

// A timer resumes a suspended actor: no synchronisation object at all.
void timer_resumes_actor(Counter& counter) {
  sg::ActorPtr self = sg::Actor::self();
  while (counter.more()) {
    Timer::set(sg::Engine::get_clock() + kStepS, [self] { self->resume(); });
    sg::this_actor::suspend();
    ++counter.done;
  }
}

void sleeps(Counter& counter) {
  while (counter.more()) {
    sg::this_actor::sleep_for(kStepS);
    ++counter.done;
  }
}

// A wait with a timeout that expires: what a caller waiting for a reply costs the kernel.
void acquire_timeouts(Counter& counter) {
  auto semaphore = sg::Semaphore::create(0);
  while (counter.more()) {
    semaphore->acquire_timeout(kStepS);
    ++counter.done;
  }
}

void executes(Counter& counter) {
  while (counter.more()) {
    sg::this_actor::execute(kFlops);
    ++counter.done;
  }
}

}  // namespace

const std::vector<std::string>& floor_primitives() {
  static const std::vector<std::string> names{"timer-chain",
                                              "timer-wakes-actor",
                                              "actor-ping-pong",
                                              "timer-resumes-actor",
                                              "sleep",
                                              "acquire-timeout",
                                              "execute-alone",
                                              "execute-4-on-4-cores",
                                              "execute-16-on-4-cores"};
  return names;
}

std::uint64_t run_floor_primitive(const std::string& name, std::uint64_t count) {
  static int argc = 2;
  static char arg0[] = "doppel-bench-floor";
  static char arg1[] = "--log=root.thresh:critical";
  static char* argv[] = {arg0, arg1, nullptr};
  auto* engine = new sg::Engine(&argc, argv);  // kept until exit, as in the twin
  sg::Engine::set_config("contexts/stack-size:128");
  auto* zone = sg::create_full_zone("floor");
  auto* host = zone->create_host("h", 1e9);
  host->set_core_count(kCores);
  zone->seal();

  auto counter = std::make_unique<Counter>();
  counter->target = count;
  Counter& c = *counter;
  auto actor = [host](auto body) { sg::Actor::create("bench", host, body); };
  auto executors = [&](int actors) {
    c.target = count / static_cast<std::uint64_t>(actors);
    for (int a = 0; a < actors; ++a) {
      sg::Actor::create("exec", host, [&c] {
        for (std::uint64_t i = 0; i < c.target; ++i) sg::this_actor::execute(kFlops);
        c.done += c.target;
      });
    }
  };
  if (name == "timer-chain") {
    Timer::set(0.0, [&c] { timer_chain(c); });
  } else if (name == "timer-wakes-actor") {
    actor([&c] { timer_wakes_actor(c); });
  } else if (name == "actor-ping-pong") {
    actor([&c] { ping_pong(c); });
  } else if (name == "timer-resumes-actor") {
    actor([&c] { timer_resumes_actor(c); });
  } else if (name == "sleep") {
    actor([&c] { sleeps(c); });
  } else if (name == "acquire-timeout") {
    actor([&c] { acquire_timeouts(c); });
  } else if (name == "execute-alone") {
    actor([&c] { executes(c); });
  } else if (name == "execute-4-on-4-cores") {
    executors(4);
  } else if (name == "execute-16-on-4-cores") {
    executors(16);
  } else {
    throw std::invalid_argument("unknown primitive '" + name + "'");
  }
  engine->run();
  return c.done;
}

}  // namespace doppel::bench
