#include "twin/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace doppel::twin::detail {

double backoff_ms(const model::RetryPolicy& policy, int retry, model::RandomStream& rng) {
  const int doublings = std::clamp(retry - 1, 0, 62);
  const double ceiling =
      std::min(policy.backoff_cap_ms, policy.backoff_base_ms * std::ldexp(1.0, doublings));
  switch (policy.jitter) {
    case model::JitterKind::none:
      return ceiling;
    case model::JitterKind::full:
      return rng.uniform(0.0, ceiling);
    case model::JitterKind::equal:
      return ceiling / 2 + rng.uniform(0.0, ceiling / 2);
  }
  return ceiling;
}

bool is_retryable(Outcome outcome) {
  switch (outcome) {
    case Outcome::error:
    case Outcome::timeout:
    case Outcome::rejected:
    case Outcome::unavailable:
      return true;
    case Outcome::ok:
    case Outcome::circuit_open:
    case Outcome::pool_timeout:
    case Outcome::not_found:
      return false;
  }
  return false;
}

bool RetryBudget::try_spend_retry(double now) {
  if (ratio_ <= 0.0) return true;
  const auto calls = static_cast<double>(window_.total(now, kCalls));
  const auto retries = static_cast<double>(window_.total(now, kRetries));
  if (retries + 1.0 > ratio_ * calls) return false;
  window_.add(now, kRetries);
  return true;
}

}  // namespace doppel::twin::detail
