// Open-loop arrivals: a Poisson process whose rate is piecewise constant (a workload's rate
// points), and the weighted choice of what each arrival asks for.
#pragma once

#include <vector>

#include "doppel/model/distribution.hpp"
#include "doppel/model/topology.hpp"

namespace doppel::twin::detail {

class ArrivalProcess {
 public:
  // Points need not be sorted; the rate before the first point is 0, the last one holds on.
  explicit ArrivalProcess(std::vector<model::RatePoint> rate);

  // The first arrival strictly after `now`, or +infinity if the rate stays 0 from there.
  // Exponential gaps per segment: a gap that crosses a rate change is redrawn from the
  // change, which is exact because the exponential distribution is memoryless.
  // `factor` scales the rate (a surge).
  double next_after(double now, model::RandomStream& rng, double factor = 1.0) const;
  double rate_at(double t) const;

 private:
  std::vector<model::RatePoint> points_;
};

// Picks an index with probability proportional to its weight.
class WeightedChoice {
 public:
  explicit WeightedChoice(const std::vector<double>& weights);
  int pick(model::RandomStream& rng) const;

 private:
  std::vector<double> cumulative_;
};

}  // namespace doppel::twin::detail
