#include "twin/arrival_process.hpp"

#include <algorithm>
#include <limits>

namespace doppel::twin::detail {

ArrivalProcess::ArrivalProcess(std::vector<model::RatePoint> rate) : points_(std::move(rate)) {
  std::stable_sort(points_.begin(), points_.end(),
                   [](const auto& a, const auto& b) { return a.at_s < b.at_s; });
}

double ArrivalProcess::rate_at(double t) const {
  double rps = 0.0;
  for (const auto& p : points_) {
    if (p.at_s > t) break;
    rps = p.rps;
  }
  return rps;
}

double ArrivalProcess::next_after(double now, model::RandomStream& rng, double factor) const {
  constexpr double kNever = std::numeric_limits<double>::infinity();
  double t = now;
  // The segment holding t: the last point at or before t (none: before the first point).
  auto next_point = std::upper_bound(points_.begin(), points_.end(), t,
                                     [](double x, const auto& p) { return x < p.at_s; });
  while (true) {
    const double rps = next_point == points_.begin() ? 0.0 : std::prev(next_point)->rps * factor;
    const double segment_end = next_point == points_.end() ? kNever : next_point->at_s;
    if (rps > 0.0) {
      const double candidate = t + rng.exponential(1.0 / rps);
      if (candidate < segment_end) return candidate;
    }
    if (segment_end == kNever) return kNever;
    t = segment_end;
    ++next_point;
  }
}

WeightedChoice::WeightedChoice(const std::vector<double>& weights) {
  double sum = 0.0;
  for (double w : weights) {
    sum += std::max(0.0, w);
    cumulative_.push_back(sum);
  }
}

int WeightedChoice::pick(model::RandomStream& rng) const {
  if (cumulative_.empty() || cumulative_.back() <= 0.0) return 0;
  const double x = rng.uniform() * cumulative_.back();
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), x);
  if (it == cumulative_.end()) --it;
  return static_cast<int>(it - cumulative_.begin());
}

}  // namespace doppel::twin::detail
