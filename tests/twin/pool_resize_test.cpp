// A deploy that resizes a connection pool during a run (a fix under validation, say) must take
// effect under load: new connections go to the requests already waiting.
#include <gtest/gtest.h>

#include "doppel/twin/runtime.hpp"

#include "sim_harness.hpp"

namespace doppel::twin {
namespace {

using testing::Metrics;
using testing::Recorder;
using testing::run_isolated;

// pool.json with waiters that wait long enough to be there when the pool is resized at 1.5 s.
Metrics in_use_after_resize(int new_size) {
  return run_isolated([new_size] {
    auto topology = testing::load_fixture("pool.json");
    topology.edges.at(0).pool.acquire_timeout_ms = 5000;
    Recorder recorder;
    TwinObserver* observers[] = {&recorder};
    TwinOptions options;
    options.duration_s = 3.0;
    options.on_start = [&topology, new_size](TwinRuntime& runtime) {
      runtime.at(1.5, [&topology, new_size](TwinRuntime& r) {
        model::EdgePolicy policy = topology.edges.at(0);
        policy.pool.size = new_size;
        r.set_edge_policy(policy);
      });
    };
    run_twin(topology, options, observers);
    Metrics out;
    out["before.in_use"] = recorder.snapshots.at(0).pools.at(0).in_use;  // t = 1 s
    out["before.waiters"] = recorder.snapshots.at(0).pools.at(0).waiters;
    out["after.in_use"] = recorder.snapshots.at(1).pools.at(0).in_use;  // t = 2 s
    out["after.size"] = recorder.snapshots.at(1).pools.at(0).size;
    return out;
  });
}

TEST(TwinPools, AGrownPoolHandsItsNewConnectionsToTheWaiters) {
  const auto m = in_use_after_resize(40);
  EXPECT_EQ(m.at("before.in_use"), 4);
  EXPECT_GT(m.at("before.waiters"), 20);  // 200 rps against a pool of 4 at 40 queries/s
  EXPECT_EQ(m.at("after.size"), 40);
  EXPECT_EQ(m.at("after.in_use"), 40);
}

TEST(TwinPools, AShrunkPoolClosesConnectionsAsTheyAreReleased) {
  const auto m = in_use_after_resize(2);
  EXPECT_EQ(m.at("before.in_use"), 4);
  EXPECT_EQ(m.at("after.size"), 2);
  EXPECT_EQ(m.at("after.in_use"), 2);
}

}  // namespace
}  // namespace doppel::twin
