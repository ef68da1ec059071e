// Retries: exponential backoff with a cap and jitter (the AWS Architecture Blog's "none",
// "full" and "equal" jitter), and a retry budget in the style of Envoy and Finagle.
#pragma once

#include "doppel/model/distribution.hpp"
#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

#include "twin/sliding_window.hpp"

namespace doppel::twin::detail {

// The wait before retry number `retry` (1 for the first retry), in milliseconds:
// ceiling = min(cap, base * 2^(retry-1)); none: ceiling; full: uniform [0, ceiling);
// equal: ceiling/2 + uniform [0, ceiling/2).
double backoff_ms(const model::RetryPolicy& policy, int retry, model::RandomStream& rng);

// Which call outcomes are worth another attempt: failures of the callee or the network.
// A refusal decided on the caller's side (open breaker, empty pool) is not: retrying it at
// once would add load exactly where the caller already knows there is no room.
bool is_retryable(Outcome outcome);

// Retries may not exceed budget_ratio x the calls started over the last window_s seconds.
class RetryBudget {
 public:
  static constexpr double kWindowS = 10.0;

  explicit RetryBudget(double budget_ratio) : ratio_(budget_ratio), window_(kWindowS) {}

  void record_call(double now) { window_.add(now, kCalls); }
  // Spends one retry if the budget allows it; budget_ratio <= 0 means no budget.
  bool try_spend_retry(double now);
  void set_ratio(double ratio) { ratio_ = ratio; }

 private:
  enum Counter { kCalls, kRetries };
  double ratio_;
  SlidingWindow<2> window_;
};

}  // namespace doppel::twin::detail
