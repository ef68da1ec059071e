#include "twin/host_cpu.hpp"

#include <algorithm>

#include <simgrid/s4u/Engine.hpp>

#include "twin/sim_primitives.hpp"

namespace doppel::twin::detail {

namespace {
// A job this close to its end (in seconds of its current rate) is done: the rounding error of
// the virtual work must not leave a job a few flops short, waiting for one more timer.
constexpr double kEndToleranceS = 1e-9;
}  // namespace

HostCpu::HostCpu(double speed_flops, int cores, SimGridOps& ops)
    : speed_(speed_flops), cores_(std::max(1, cores)), ops_(&ops) {}

HostCpu::~HostCpu() {
  if (timer_ != nullptr) timer_->remove();
}

double HostCpu::rate() const {
  const auto n = static_cast<double>(jobs_.size());
  return n <= cores_ ? speed_ : speed_ * cores_ / n;
}

void HostCpu::advance() {
  const double now = simgrid::s4u::Engine::get_clock();
  if (!jobs_.empty()) virtual_work_ += rate() * (now - updated_s_);
  updated_s_ = now;
}

void HostCpu::start(double flops, Waiter& waiter, std::uint64_t token) {
  advance();
  jobs_.push_back({virtual_work_ + flops, ++sequence_, &waiter, token});
  std::push_heap(jobs_.begin(), jobs_.end(), std::greater<>{});
  schedule_next();
}

void HostCpu::finish_due() {
  advance();
  // The rate is the one that held up to now: ends are judged before anyone leaves.
  const double tolerance = rate() * kEndToleranceS;
  while (!jobs_.empty() && jobs_.front().end_work <= virtual_work_ + tolerance) {
    std::pop_heap(jobs_.begin(), jobs_.end(), std::greater<>{});
    const Job done = jobs_.back();
    jobs_.pop_back();
    done.waiter->notify(done.token);
  }
  schedule_next();
}

void HostCpu::schedule_next() {
  if (jobs_.empty()) {
    if (timer_ != nullptr) timer_->remove();
    timer_ = nullptr;
    return;
  }
  const double now = simgrid::s4u::Engine::get_clock();
  const double at = now + std::max(0.0, jobs_.front().end_work - virtual_work_) / rate();
  if (timer_ != nullptr) {
    if (at == timer_at_) return;
    timer_->remove();
  }
  ++ops_->timers;
  timer_at_ = at;
  timer_ = simgrid::kernel::timer::Timer::set(at, [this] {
    timer_ = nullptr;
    finish_due();
  });
}

}  // namespace doppel::twin::detail
