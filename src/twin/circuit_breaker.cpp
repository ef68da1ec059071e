#include "twin/circuit_breaker.hpp"

#include <algorithm>

namespace doppel::twin::detail {

CircuitBreaker::CircuitBreaker(const model::CircuitBreakerPolicy& policy)
    : policy_(policy), window_(policy.window_s) {}

bool CircuitBreaker::allow(double now) {
  if (!policy_.enabled) return true;
  switch (state_) {
    case BreakerState::closed:
      return true;
    case BreakerState::open:
      if (now < opened_at_ + policy_.open_s) return false;
      move_to(BreakerState::half_open, now);
      [[fallthrough]];
    case BreakerState::half_open:
      if (probes_in_flight_ >= std::max(1, policy_.half_open_probes)) return false;
      ++probes_in_flight_;
      return true;
  }
  return true;
}

void CircuitBreaker::record(double now, bool success) {
  if (!policy_.enabled) return;
  switch (state_) {
    case BreakerState::closed: {
      window_.add(now, success ? kSuccess : kFailure);
      const auto failures = window_.total(now, kFailure);
      const auto calls = failures + window_.total(now, kSuccess);
      if (calls >= static_cast<std::uint64_t>(std::max(1, policy_.min_requests)) &&
          static_cast<double>(failures) >= policy_.error_threshold * static_cast<double>(calls)) {
        move_to(BreakerState::open, now);
      }
      return;
    }
    case BreakerState::open:
      // A call let through before the breaker opened: its result no longer matters.
      return;
    case BreakerState::half_open:
      probes_in_flight_ = std::max(0, probes_in_flight_ - 1);
      if (!success) {
        move_to(BreakerState::open, now);
      } else if (++probe_successes_ >= std::max(1, policy_.half_open_probes)) {
        move_to(BreakerState::closed, now);
      }
      return;
  }
}

std::optional<CircuitBreaker::Transition> CircuitBreaker::take_transition() {
  auto t = pending_;
  pending_.reset();
  return t;
}

void CircuitBreaker::move_to(BreakerState next, double now) {
  pending_ = Transition{state_, next};
  state_ = next;
  probes_in_flight_ = 0;
  probe_successes_ = 0;
  if (next == BreakerState::open) opened_at_ = now;
  // Closing starts a fresh window: the failures that opened it are history.
  if (next == BreakerState::closed) window_.clear();
}

}  // namespace doppel::twin::detail
