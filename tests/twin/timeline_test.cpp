// The engine's timeline (src/twin/timeline.hpp): callbacks in time order, ties in the order
// scheduled, replaced callbacks dropped, and running ahead of SimGrid's clock only while
// nothing of SimGrid's can come first (a woken actor, another kernel timer).
#include "twin/timeline.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Host.hpp>
#include <simgrid/s4u/NetZone.hpp>
#include <simgrid/s4u/Semaphore.hpp>

#include "sim_harness.hpp"

namespace doppel::twin {
namespace {

using detail::Timeline;
using testing::Metrics;
using testing::run_isolated;

namespace sg = simgrid::s4u;

// A SimGrid engine with one host, in this (child) process.
sg::Host* start_engine() {
  static int argc = 2;
  static char arg0[] = "timeline-test";
  static char arg1[] = "--log=root.thresh:critical";
  static char* argv[] = {arg0, arg1, nullptr};
  new sg::Engine(&argc, argv);
  auto* zone = sg::create_full_zone("z");
  auto* host = zone->create_host("h", 1e9);
  zone->seal();
  return host;
}

// Each callback appends "name@time" (the timeline's time) and whether SimGrid's clock was
// behind it.
struct Log {
  std::vector<std::string> entries;
  int simgrid_behind = 0;
  void note(Timeline& timeline, const char* name) {
    entries.push_back(std::string(name) + "@" + std::to_string(timeline.now()));
    if (sg::Engine::get_clock() < timeline.now()) ++simgrid_behind;
  }
};

Metrics order_and_replacement(bool run_ahead) {
  start_engine();
  SimGridOps ops;
  Timeline timeline(ops);
  timeline.allow_running_ahead(run_ahead);
  Log log;
  std::uint64_t generation = 1;
  timeline.schedule(1.0, [&] {
    log.note(timeline, "a");
    // Same instant, scheduled later: runs after "b", which was scheduled first.
    timeline.schedule(1.0, [&] { log.note(timeline, "a2"); });
  });
  timeline.schedule(2.0, [&] { log.note(timeline, "c"); });
  timeline.schedule(1.0, [&] { log.note(timeline, "b"); });
  timeline.schedule_replaceable(1.5, generation, [&] { log.note(timeline, "replaced"); });
  ++generation;
  timeline.replaced(1.5);
  timeline.schedule_replaceable(3.0, generation, [&] { log.note(timeline, "kept"); });
  sg::Engine::get_instance()->run();
  const std::vector<std::string> expected{"a@1.000000", "b@1.000000", "a2@1.000000", "c@2.000000",
                                          "kept@3.000000"};
  return {{"order_ok", log.entries == expected ? 1.0 : 0.0},
          {"callbacks", static_cast<double>(log.entries.size())},
          {"simgrid_behind", static_cast<double>(log.simgrid_behind)},
          {"kernel_timers", static_cast<double>(ops.timers)},
          {"instants_ahead", static_cast<double>(ops.instants_ahead)}};
}

TEST(TwinTimeline, RunsCallbacksInTimeOrderTiesAsScheduledAndDropsReplacedOnes) {
  for (bool run_ahead : {false, true}) {
    SCOPED_TRACE(run_ahead ? "running ahead" : "one instant per SimGrid round");
    const auto m = run_isolated([run_ahead] { return order_and_replacement(run_ahead); });
    EXPECT_EQ(m.at("order_ok"), 1.0);
    EXPECT_EQ(m.at("callbacks"), 5.0);
    if (run_ahead) {
      // One kernel timer, then the timeline runs on to 2.0 and 3.0 by itself.
      EXPECT_EQ(m.at("kernel_timers"), 1.0);
      EXPECT_EQ(m.at("instants_ahead"), 2.0);
      EXPECT_EQ(m.at("simgrid_behind"), 2.0);
    } else {
      // A kernel timer per instant (the replaced one's too, until it was replaced).
      EXPECT_EQ(m.at("instants_ahead"), 0.0);
      EXPECT_EQ(m.at("simgrid_behind"), 0.0);
      EXPECT_GE(m.at("kernel_timers"), 3.0);
    }
  }
}

// A callback at 1.0 releases an actor: the other callbacks at 1.0 run first, then the actor
// (at the timeline's 1.0), and only then the callback at 2.0. A kernel timer of someone else
// at 2.5 runs before the timeline's callback at 3.0.
Metrics actor_and_foreign_timer() {
  sg::Host* host = start_engine();
  SimGridOps ops;
  Timeline timeline(ops);
  timeline.allow_running_ahead(true);
  Log log;
  auto semaphore = sg::Semaphore::create(0);
  sg::Actor::create("sleeper", host, [&] {
    semaphore->acquire();
    log.note(timeline, "actor");
  });
  timeline.schedule(1.0, [&] {
    log.note(timeline, "wake");
    timeline.note_actor_woken();
    semaphore->release();
    timeline.schedule(1.0, [&] { log.note(timeline, "same-instant"); });
  });
  timeline.schedule(2.0, [&] { log.note(timeline, "later"); });
  timeline.schedule(3.0, [&] { log.note(timeline, "after-foreign"); });
  simgrid::kernel::timer::Timer::set(2.5, [&] {
    log.entries.push_back("foreign@" + std::to_string(sg::Engine::get_clock()) +
                          (timeline.now() <= 2.5 ? "" : " (timeline ahead)"));
  });
  sg::Engine::get_instance()->run();
  const std::vector<std::string> expected{"wake@1.000000",    "same-instant@1.000000",
                                          "actor@1.000000",   "later@2.000000",
                                          "foreign@2.500000", "after-foreign@3.000000"};
  return {{"order_ok", log.entries == expected ? 1.0 : 0.0},
          {"callbacks", static_cast<double>(log.entries.size())}};
}

TEST(TwinTimeline, StopsRunningAheadForAWokenActorAndForAnotherKernelTimer) {
  const auto m = run_isolated(actor_and_foreign_timer);
  EXPECT_EQ(m.at("callbacks"), 6.0);
  EXPECT_EQ(m.at("order_ok"), 1.0);
}

}  // namespace
}  // namespace doppel::twin
