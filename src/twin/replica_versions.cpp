#include "twin/replica_versions.hpp"

#include <algorithm>
#include <limits>

namespace doppel::twin::detail {

std::uint64_t ReplicaVersions::commit(std::int64_t key) {
  return ++primary_[key];
}

void ReplicaVersions::replicate(int replica, std::int64_t key, std::uint64_t version,
                                double commit_s, double apply_s) {
  auto& r = replicas_.at(static_cast<std::size_t>(replica));
  const double delay_s = apply_s - commit_s;
  if (r.held) apply_s = std::numeric_limits<double>::infinity();
  if (!r.log.empty()) apply_s = std::max(apply_s, r.log.back().apply_s);
  r.log.push_back({key, version, commit_s, apply_s, delay_s});
}

void ReplicaVersions::hold(int replica, double now) {
  auto& r = replicas_.at(static_cast<std::size_t>(replica));
  advance(r, now);
  r.held = true;
  for (auto& w : r.log) w.apply_s = std::numeric_limits<double>::infinity();
}

void ReplicaVersions::release(int replica, double now) {
  auto& r = replicas_.at(static_cast<std::size_t>(replica));
  r.held = false;
  double previous = now;
  for (auto& w : r.log) {
    w.apply_s = std::max(previous, now + w.delay_s);
    previous = w.apply_s;
  }
}

std::uint64_t ReplicaVersions::primary_version(std::int64_t key) const {
  auto it = primary_.find(key);
  return it == primary_.end() ? 0 : it->second;
}

std::uint64_t ReplicaVersions::replica_version(int replica, std::int64_t key, double now) {
  auto& r = replicas_.at(static_cast<std::size_t>(replica));
  advance(r, now);
  auto it = r.versions.find(key);
  return it == r.versions.end() ? 0 : it->second;
}

double ReplicaVersions::lag_s(int replica, double now) {
  auto& r = replicas_.at(static_cast<std::size_t>(replica));
  advance(r, now);
  return r.log.empty() ? 0.0 : now - r.log.front().commit_s;
}

void ReplicaVersions::advance(Replica& replica, double now) {
  while (!replica.log.empty() && replica.log.front().apply_s <= now) {
    const auto& w = replica.log.front();
    auto& v = replica.versions[w.key];
    v = std::max(v, w.version);
    replica.log.pop_front();
  }
}

}  // namespace doppel::twin::detail
