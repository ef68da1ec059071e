// A host's cores shared between the CPU work of its service instances, computed in user
// space instead of by SimGrid executions. Private to src/twin.
//
// SimGrid's CPU model gives each single-core execution on a host of `cores` cores and
// `speed` flop/s the max-min fair share min(speed, cores * speed / n) when n run at once
// (equal priorities: the twin sets none). That is processor sharing with a rate common to all
// running jobs, so one number tracks them all: the work each job has received since the host
// started ("virtual work", growing at that common rate). A job started when it stood at V
// with w flops to do ends when it reaches V + w. One timeline callback per host (timeline.hpp)
// waits for the earliest end. The result is the same schedule SimGrid computes, without an
// execution activity, a max-min solve and a CPU action per request: docs/performance.md ("Twin
// engine") has the measured gain, tests/twin the check against SimGrid's own executions.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "doppel/twin/twin.hpp"

#include "twin/timeline.hpp"

namespace doppel::twin::detail {

struct Request;

class HostCpu {
 public:
  // `on_done` runs (in SimGrid's maestro) when a request's work is complete.
  HostCpu(double speed_flops, int cores, Timeline& timeline, std::function<void(Request&)> on_done);
  HostCpu(const HostCpu&) = delete;
  HostCpu& operator=(const HostCpu&) = delete;

  // Starts `flops` of single-core work for `request` now.
  void start(double flops, Request& request);

  int running() const { return static_cast<int>(jobs_.size()); }

 private:
  struct Job {
    double end_work;  // virtual work at which it is done
    std::uint64_t sequence;
    Request* request;
    // The heap's order: the earliest end on top, ties in start order.
    bool operator>(const Job& other) const {
      return end_work != other.end_work ? end_work > other.end_work : sequence > other.sequence;
    }
  };

  double rate() const;  // flop/s each running job receives now
  void advance();       // brings virtual_work_ up to the current time
  void finish_due();
  void schedule_next();

  double speed_;
  double cores_;
  Timeline* timeline_;
  std::function<void(Request&)> on_done_;
  double virtual_work_ = 0.0;
  double updated_s_ = 0.0;
  std::uint64_t sequence_ = 0;
  std::vector<Job> jobs_;  // a min-heap by end_work
  // The timeline callback for the earliest end: one replaced stays scheduled and finds its
  // generation outdated.
  bool armed_ = false;
  std::uint64_t armed_generation_ = 0;
  std::uint64_t timer_job_ = 0;  // the job the callback waits for, at timer_rate_
  double timer_rate_ = 0.0;
  double timer_at_s_ = 0.0;
};

}  // namespace doppel::twin::detail
