// A circuit breaker (closed / open / half-open) over a sliding window of call results, in the
// style of Hystrix and resilience4j. No clock of its own: every method takes the time.
#pragma once

#include <optional>

#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

#include "twin/sliding_window.hpp"

namespace doppel::twin::detail {

class CircuitBreaker {
 public:
  struct Transition {
    BreakerState from;
    BreakerState to;
  };

  explicit CircuitBreaker(const model::CircuitBreakerPolicy& policy);

  // May a call start now? Closed: yes. Open: no, until open_s has passed, then it turns
  // half-open. Half-open: up to half_open_probes calls at a time, the rest are refused.
  bool allow(double now);
  // The result of a call that allow() let through. Failures may open a closed breaker; in
  // half-open, one failed probe reopens it and half_open_probes successes close it.
  void record(double now, bool success);

  BreakerState state() const { return state_; }
  // The last state change since the previous call, if any (for events).
  std::optional<Transition> take_transition();
  // A new policy (a deploy changing it): counts are kept, limits change.
  void set_policy(const model::CircuitBreakerPolicy& policy) { policy_ = policy; }
  const model::CircuitBreakerPolicy& policy() const { return policy_; }

 private:
  enum Counter { kSuccess, kFailure };
  void move_to(BreakerState next, double now);

  model::CircuitBreakerPolicy policy_;
  SlidingWindow<2> window_;
  BreakerState state_ = BreakerState::closed;
  double opened_at_ = 0.0;
  int probes_in_flight_ = 0;
  int probe_successes_ = 0;
  std::optional<Transition> pending_;
};

}  // namespace doppel::twin::detail
