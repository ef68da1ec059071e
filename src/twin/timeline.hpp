// The engine's own list of timed callbacks, driven by one SimGrid kernel timer. Private to
// src/twin.
//
// Every scheduled callback of the engine (a transfer's arrival, a reply, a host's CPU end, the
// earliest deadline, an arrival, a fault's action) used to be a SimGrid kernel timer, and each
// distinct instant one of them fell on cost a SimGrid scheduling round: a solve over every
// model, a walk of their finished actions, the timer heap (~1 µs here), whatever ran in it.
// Here the callbacks wait in a heap of their own behind one kernel timer for the earliest.
//
// When nothing in SimGrid can happen before the next callback (the engine's own CPU sharing,
// and the latency network or no flow comm in flight: no comm, execution or sleep in SimGrid's
// models; no actor woken and waiting to run; no other kernel timer earlier), the timeline runs
// on to the next instant itself instead of handing back to SimGrid for a round: `now()` is the
// simulated time, and SimGrid's clock is left behind until it is needed. Nothing in the twin
// reads SimGrid's clock but this class (and FlowTransfers, for comms). An actor woken by a
// callback (a semaphore release) ends the run-ahead once the callbacks of that instant are
// done, as SimGrid runs woken actors after all the timers of an instant: it runs next, with
// `now()` at that instant. A flow transfer that must become a SimGrid comm, or a runtime hook
// (schedule_in_step), ends it at once: SimGrid's clock comes to that instant first.
//
// Callbacks of one instant run in the order they were scheduled.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u/Engine.hpp>

#include "doppel/twin/twin.hpp"

namespace doppel::twin::detail {

// A callable of a few pointers and numbers stored in place: scheduling one allocates nothing
// (a std::function or SimGrid's Task allocates beyond 16 or 24 bytes of capture).
class InlineCallback {
 public:
  static constexpr std::size_t kCapacity = 40;

  InlineCallback() = default;
  template <typename F>
  explicit InlineCallback(F callback) {
    static_assert(sizeof(F) <= kCapacity, "capture at most 40 bytes");
    static_assert(alignof(F) <= 8);
    static_assert(std::is_trivially_copyable_v<F> && std::is_trivially_destructible_v<F>,
                  "capture pointers and numbers only");
    ::new (static_cast<void*>(storage_)) F(std::move(callback));
    invoke_ = [](void* storage) { (*std::launder(static_cast<F*>(storage)))(); };
  }
  void operator()() { invoke_(storage_); }

 private:
  void (*invoke_)(void*) = nullptr;
  alignas(8) unsigned char storage_[kCapacity] = {};
};

class Timeline {
 public:
  explicit Timeline(SimGridOps& ops) : ops_(&ops) {}
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;
  ~Timeline() {
    if (timer_ != nullptr) timer_->remove();
  }

  // Simulated time: the instant of the callback running, or SimGrid's clock when it is ahead
  // (sync()).
  double now() const { return now_; }

  // Runs `callback` at `at_s` (now() if that is past).
  template <typename F>
  void schedule(double at_s, F callback) {
    push(at_s, {nullptr, 0, InlineCallback(std::move(callback))});
  }
  // The same for a callback that changes what SimGrid holds (a link's bandwidth, say): the
  // timeline does not run ahead to it, SimGrid's clock gets there first.
  template <typename F>
  void schedule_in_step(double at_s, F callback) {
    push(at_s, {nullptr, 0, InlineCallback(std::move(callback)), true});
  }
  // Runs first whenever SimGrid's clock has caught up with the timeline (before that
  // instant's callbacks).
  void on_caught_up(std::function<void()> callback) { caught_up_ = std::move(callback); }
  // The same for a callback its owner may replace: it is dropped, without taking an instant of
  // its own, if `generation` has moved on from its value now by then. An owner that replaces
  // one scheduled at `old_at_s` calls replaced(old_at_s).
  template <typename F>
  void schedule_replaceable(double at_s, const std::uint64_t& generation, F callback) {
    push(at_s, {&generation, generation, InlineCallback(std::move(callback))});
  }
  void replaced(double old_at_s) {
    // The kernel timer waits for it: move it on, as a removed SimGrid timer would be.
    if (!firing_ && timer_ != nullptr && old_at_s <= timer_at_s_) arm();
  }

  // Whether the timeline may run on to later instants without SimGrid (see above): only
  // when no SimGrid model holds anything that takes time.
  void allow_running_ahead(bool allowed) { run_ahead_ = allowed; }
  // A callback released a blocked actor: SimGrid must run it before any later instant.
  void note_actor_woken() { actor_woken_ = true; }
  // Whether the timeline has run on past SimGrid's clock, so that anything started in SimGrid
  // now would start at the wrong time: then hand_back() and start it from on_caught_up().
  // (Tracked, not compared: SimGrid's clock can land a rounding step short of a timer's date.)
  bool ahead() const { return ahead_; }
  // Stops running callbacks, even of this instant, until SimGrid's clock has caught up with
  // now() (the caller schedules something at now() so that SimGrid's next round is there).
  void hand_back() { hand_back_ = ahead_; }
  // SimGrid's clock moved (its time-advance report): now() follows it when it is ahead.
  // SimGrid only advances to an instant the timeline armed, or, while it does not run ahead,
  // to one of its own: either way the two clocks agree after it.
  void sync(double simgrid_clock) {
    now_ = std::max(now_, simgrid_clock);
    ahead_ = false;
  }
  // The run is over: nothing scheduled runs any more.
  void halt() {
    halted_ = true;
    heap_.clear();
    slots_.clear();
    free_slots_.clear();
  }

 private:
  // A callback waits in a slot; the heap holds small keys to it, so its reordering moves
  // 24 bytes per step instead of the whole callback.
  struct Slot {
    const std::uint64_t* generation;  // schedule_replaceable: its owner's counter
    std::uint64_t scheduled_generation;
    InlineCallback callback;
    bool in_step = false;  // schedule_in_step
    bool replaced() const { return generation != nullptr && *generation != scheduled_generation; }
  };
  struct Key {
    double at_s;
    std::uint64_t sequence;
    std::uint32_t slot;
  };
  // The heap's order: the earliest on top, ties in the order scheduled.
  struct Later {
    bool operator()(const Key& a, const Key& b) const {
      return a.at_s != b.at_s ? a.at_s > b.at_s : a.sequence > b.sequence;
    }
  };

  void push(double at_s, const Slot& slot) {
    ++ops_->scheduled;
    std::uint32_t index = 0;
    if (free_slots_.empty()) {
      index = static_cast<std::uint32_t>(slots_.size());
      slots_.push_back(slot);
    } else {
      index = free_slots_.back();
      free_slots_.pop_back();
      slots_[index] = slot;
    }
    const Key key{std::max(at_s, now_), ++sequence_, index};
    heap_.push_back(key);
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    if (!firing_ && (timer_ == nullptr || key.at_s < timer_at_s_)) arm();
  }
  // Takes the earliest callback off the heap and frees its slot.
  InlineCallback pop() {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    const std::uint32_t index = heap_.back().slot;
    heap_.pop_back();
    free_slots_.push_back(index);
    return slots_[index].callback;
  }
  bool top_replaced() const { return slots_[heap_.front().slot].replaced(); }
  void drop_replaced_on_top() {
    while (!heap_.empty() && top_replaced()) pop();
  }
  // The kernel timer for the earliest callback still wanted.
  void arm() {
    drop_replaced_on_top();
    if (timer_ != nullptr) {
      if (!heap_.empty() && heap_.front().at_s == timer_at_s_) return;
      timer_->remove();
      timer_ = nullptr;
    }
    if (heap_.empty()) return;
    ++ops_->timers;
    timer_at_s_ = heap_.front().at_s;
    timer_ = simgrid::kernel::timer::Timer::set(timer_at_s_, [this] {
      timer_ = nullptr;
      fire();
    });
  }
  void fire();

  SimGridOps* ops_;
  std::vector<Key> heap_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t sequence_ = 0;
  double now_ = 0.0;
  simgrid::kernel::timer::Timer* timer_ = nullptr;
  double timer_at_s_ = 0.0;
  bool firing_ = false;  // in fire(): it arms the kernel timer once, when done
  bool run_ahead_ = false;
  bool actor_woken_ = false;
  bool ahead_ = false;  // now_ is past SimGrid's clock (run ahead since its last advance)
  bool hand_back_ = false;
  std::function<void()> caught_up_;
  bool halted_ = false;
};

inline void Timeline::fire() {
  if (halted_) return;
  sync(simgrid::s4u::Engine::get_clock());
  firing_ = true;
  actor_woken_ = false;
  hand_back_ = false;
  if (caught_up_) caught_up_();
  while (!heap_.empty() && !hand_back_) {
    if (top_replaced()) {
      pop();
      continue;
    }
    const double next_at = heap_.front().at_s;
    const bool in_step = slots_[heap_.front().slot].in_step;
    if (ahead_ && in_step) break;  // SimGrid's clock first
    if (next_at > now_) {
      // A later instant: SimGrid's turn, unless nothing of its own can come first.
      if (!run_ahead_ || actor_woken_ || in_step) break;
      const double other_timer = simgrid::kernel::timer::Timer::next();
      if (other_timer >= 0 && other_timer < next_at) break;
      now_ = next_at;
      ahead_ = true;
      ++ops_->instants_ahead;
    }
    InlineCallback callback = pop();
    callback();  // may schedule more, or halt()
    if (halted_) break;
  }
  firing_ = false;
  if (!halted_) arm();
}

}  // namespace doppel::twin::detail
