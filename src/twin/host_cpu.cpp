#include "twin/host_cpu.hpp"

#include <algorithm>
#include <utility>

namespace doppel::twin::detail {

namespace {
// A job this close to its end (in seconds of its current rate) is done: the rounding error of
// the virtual work must not leave a job a few flops short, waiting for one more timer.
constexpr double kEndToleranceS = 1e-9;
}  // namespace

HostCpu::HostCpu(double speed_flops, int cores, Timeline& timeline,
                 std::function<void(Request&)> on_done)
    : speed_(speed_flops),
      cores_(std::max(1, cores)),
      timeline_(&timeline),
      on_done_(std::move(on_done)) {}

double HostCpu::rate() const {
  const auto n = static_cast<double>(jobs_.size());
  return n <= cores_ ? speed_ : speed_ * cores_ / n;
}

void HostCpu::advance() {
  const double now = timeline_->now();
  if (!jobs_.empty()) virtual_work_ += rate() * (now - updated_s_);
  updated_s_ = now;
}

void HostCpu::start(double flops, Request& request) {
  advance();
  jobs_.push_back({virtual_work_ + flops, ++sequence_, &request});
  std::push_heap(jobs_.begin(), jobs_.end(), std::greater<>{});
  schedule_next();
}

void HostCpu::finish_due() {
  advance();
  // The rate is the one that held up to now: ends are judged before anyone leaves.
  const double tolerance = rate() * kEndToleranceS;
  while (!jobs_.empty() && jobs_.front().end_work <= virtual_work_ + tolerance) {
    std::pop_heap(jobs_.begin(), jobs_.end(), std::greater<>{});
    Request* done = jobs_.back().request;
    jobs_.pop_back();
    on_done_(*done);  // may start more work here: nothing of jobs_ is held across it
  }
  schedule_next();
}

void HostCpu::schedule_next() {
  if (jobs_.empty()) {
    if (armed_) {
      armed_ = false;
      ++armed_generation_;
      timeline_->replaced(timer_at_s_);
    }
    return;
  }
  // The timer set stands while it waits for the same job at the same rate: a job that starts
  // behind it on a free core changes neither.
  const Job& first = jobs_.front();
  const double current_rate = rate();
  if (armed_ && first.sequence == timer_job_ && current_rate == timer_rate_) return;
  const double at = timeline_->now() + std::max(0.0, first.end_work - virtual_work_) / current_rate;
  const bool replacing = armed_;
  const double replaced_at_s = timer_at_s_;
  armed_ = true;
  ++armed_generation_;
  timer_job_ = first.sequence;
  timer_rate_ = current_rate;
  timer_at_s_ = at;
  timeline_->schedule_replaceable(at, armed_generation_, [this] {
    armed_ = false;
    finish_due();
  });
  if (replacing) timeline_->replaced(replaced_at_s);
}

}  // namespace doppel::twin::detail
