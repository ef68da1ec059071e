#include "twin/load_balancer.hpp"

namespace doppel::twin::detail {

int LoadBalancer::pick(std::span<const int> candidates, std::span<const int> in_flight,
                       model::RandomStream& rng) {
  const auto n = candidates.size();
  if (n == 0) return -1;
  if (n == 1) return candidates[0];
  switch (kind_) {
    case model::LoadBalancing::round_robin:
      return candidates[cursor_++ % n];
    case model::LoadBalancing::least_request: {
      const auto start = cursor_++ % n;
      int best = candidates[start];
      for (std::size_t k = 1; k < n; ++k) {
        const int c = candidates[(start + k) % n];
        if (in_flight[c] < in_flight[best]) best = c;
      }
      return best;
    }
    case model::LoadBalancing::power_of_two: {
      const auto first = rng.below(n);
      auto second = rng.below(n - 1);
      if (second >= first) ++second;
      const int a = candidates[first];
      const int b = candidates[second];
      return in_flight[b] < in_flight[a] ? b : a;
    }
  }
  return candidates[0];
}

}  // namespace doppel::twin::detail
