// Versions of a datastore's keys at its primary and at each replica, to detect stale reads.
// A write commits at the primary (a new version of its key) and is applied at each replica
// later; replicas apply in commit order (a replication log), so a write is never applied
// before the one committed ahead of it. State advances lazily to the time of each question.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

namespace doppel::twin::detail {

class ReplicaVersions {
 public:
  explicit ReplicaVersions(int replicas) : replicas_(static_cast<std::size_t>(replicas)) {}

  // Commits a write of `key` at the primary; returns its version (1, 2, ... per key).
  std::uint64_t commit(std::int64_t key);
  // Schedules the write (key, version) committed at `commit_s` for replica `replica` at
  // `apply_s` (moved later if needed to keep the log's order).
  void replicate(int replica, std::int64_t key, std::uint64_t version, double commit_s,
                 double apply_s);

  std::uint64_t primary_version(std::int64_t key) const;
  std::uint64_t replica_version(int replica, std::int64_t key, double now);

  // Node 0 is the primary, 1.. the replicas (as in DatastoreGauge::node).
  std::uint64_t node_version(int node, std::int64_t key, double now) {
    return node == 0 ? primary_version(key) : replica_version(node - 1, key, now);
  }
  // A read returning `version` of `key` is stale when the primary committed a newer one.
  bool is_stale(std::int64_t key, std::uint64_t version) const {
    return version < primary_version(key);
  }

  // Replication to `replica` stops at `now`: writes not applied yet, and those replicated
  // while held, wait. release() starts it again: each held write is applied its own
  // replication delay after the release, still in commit order (the backlog drains).
  void hold(int replica, double now);
  void release(int replica, double now);

  // Age of the oldest write committed but not yet applied at the replica; 0 when caught up.
  double lag_s(int replica, double now);
  int replicas() const { return static_cast<int>(replicas_.size()); }

 private:
  struct PendingWrite {
    std::int64_t key;
    std::uint64_t version;
    double commit_s;
    double apply_s;  // +infinity while held
    double delay_s;  // apply_s - commit_s as first scheduled
  };
  struct Replica {
    std::unordered_map<std::int64_t, std::uint64_t> versions;
    std::deque<PendingWrite> log;  // apply_s non-decreasing
    bool held = false;
  };
  void advance(Replica& replica, double now);

  std::unordered_map<std::int64_t, std::uint64_t> primary_;
  std::vector<Replica> replicas_;
};

}  // namespace doppel::twin::detail
