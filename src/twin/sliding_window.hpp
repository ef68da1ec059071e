// Counts over the last `window_s` seconds in fixed buckets, driven by explicit timestamps:
// the shared clockwork of the circuit breaker and the retry budget.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace doppel::twin::detail {

template <int Counters>
class SlidingWindow {
 public:
  static constexpr int kBuckets = 10;

  explicit SlidingWindow(double window_s) : bucket_s_(window_s > 0 ? window_s / kBuckets : 1.0) {}

  void add(double now, int counter, std::uint64_t amount = 1) {
    advance(now);
    buckets_[current_ % kBuckets][counter] += amount;
  }

  // Sum over the window ending at `now` (the bucket holding `now` and the kBuckets-1 before).
  std::uint64_t total(double now, int counter) {
    advance(now);
    std::uint64_t sum = 0;
    for (const auto& b : buckets_) sum += b[counter];
    return sum;
  }

  void clear() {
    for (auto& b : buckets_) b.fill(0);
  }

 private:
  void advance(double now) {
    const auto index = static_cast<std::int64_t>(std::floor(now / bucket_s_));
    if (index <= current_) return;
    // Zero the buckets the clock moved past; a jump of a whole window clears them all.
    const std::int64_t steps = index - current_;
    for (std::int64_t i = 1; i <= steps && i <= kBuckets; ++i) {
      buckets_[(current_ + i) % kBuckets].fill(0);
    }
    current_ = index;
  }

  double bucket_s_;
  std::int64_t current_ = 0;
  std::array<std::array<std::uint64_t, Counters>, kBuckets> buckets_{};
};

}  // namespace doppel::twin::detail
