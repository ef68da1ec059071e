// Choosing the callee instance: round robin, least request (fewest in flight) and the power
// of two choices (two at random, the less loaded), as Envoy names them.
#pragma once

#include <cstdint>
#include <span>

#include "doppel/model/distribution.hpp"
#include "doppel/model/topology.hpp"

namespace doppel::twin::detail {

class LoadBalancer {
 public:
  explicit LoadBalancer(model::LoadBalancing kind) : kind_(kind) {}

  // Picks one of `candidates` (instance indexes, in a stable order); in_flight[i] is the
  // number of requests instance i holds (queued or in service). Returns -1 without
  // candidates. Least request breaks ties round robin, so an idle pool is still spread.
  int pick(std::span<const int> candidates, std::span<const int> in_flight,
           model::RandomStream& rng);

  void set_kind(model::LoadBalancing kind) { kind_ = kind; }

 private:
  model::LoadBalancing kind_;
  std::uint64_t cursor_ = 0;
};

}  // namespace doppel::twin::detail
