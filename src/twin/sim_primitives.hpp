// The few SimGrid-backed building blocks the engine is made of: the deadlines of timed
// waits, a one-shot wake-up for an actor or a callback, and a pool of reusable actors for
// short tasks.
// Private to src/twin (SimGrid stays out of public headers); this, timeline.hpp,
// flow_transfers.hpp, simgrid_platform.* and engine.cpp are the only files that include
// SimGrid.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <simgrid/kernel/Timer.hpp>
#include <simgrid/kernel/resource/Action.hpp>
#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Comm.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Host.hpp>
#include <simgrid/s4u/Link.hpp>
#include <simgrid/s4u/Semaphore.hpp>

#include "doppel/twin/observer.hpp"
#include "doppel/twin/twin.hpp"

#include "twin/timeline.hpp"

namespace doppel::twin::detail {

class Waiter;

// What a wait in callback mode (Waiter::wait_then) continues when it is decided: the
// engine's requests run as state machines of this kind instead of blocked actors.
class Resumable {
 public:
  // `signaled`: notified; false: the wait's timeout or delay passed.
  virtual void resume(bool signaled) = 0;

 protected:
  ~Resumable() = default;
};

// Every timed wait's deadline, in one heap behind one timeline callback (for the earliest).
// A callback per wait would cost a heap insertion per call, though nearly every call is
// answered before its deadline: here a deadline is a vector push, and one that no longer
// matters is dropped when its time comes.
class Deadlines {
 public:
  Deadlines(Timeline& timeline, SimGridOps& ops) : timeline_(&timeline), ops_(&ops) {}
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // At `at_s`, ends `waiter`'s wait `token` if nothing else ended it first.
  void add(double at_s, Waiter& waiter, std::uint64_t token);
  SimGridOps& ops() { return *ops_; }
  double now() const { return timeline_->now(); }
  void note_actor_woken() { timeline_->note_actor_woken(); }
  template <typename F>
  void schedule(double at_s, F callback) {
    timeline_->schedule(at_s, callback);
  }

  // Continues `target`. Called while another continuation runs, it is queued and run when
  // that one returns: a chain of hand-overs (a pool's waiters, a join's last branch) is a
  // loop here, not a recursion as deep as the chain, and each continuation starts from a
  // consistent state, as an actor woken by a semaphore would.
  void resume(Resumable& target, bool signaled);

 private:
  struct Entry {
    double at_s;
    std::uint64_t sequence;  // ties expire in the order they were set
    Waiter* waiter;
    std::uint64_t token;
    bool operator>(const Entry& other) const {
      return at_s != other.at_s ? at_s > other.at_s : sequence > other.sequence;
    }
  };
  void expire_due();
  void arm_timer();
  void drop_decided();

  // Each actor waits for one thing at a time, so live entries are at most the actors; the
  // rest are waits already decided, dropped when the heap doubles (memory stays bounded by
  // the actors, not by calls times timeout).
  std::size_t drop_at_size_ = 1024;
  Timeline* timeline_;
  SimGridOps* ops_;
  std::vector<Entry> heap_;  // a min-heap by at_s
  std::uint64_t sequence_ = 0;
  // The timeline callback for the earliest deadline: one replaced by an earlier deadline
  // stays scheduled and finds its generation outdated.
  bool armed_ = false;
  std::uint64_t armed_generation_ = 0;
  double timer_at_s_ = 0.0;
  bool expiring_ = false;  // in expire_due: it arms the timer once, when done
  struct Ready {
    Resumable* target;
    bool signaled;
  };
  std::vector<Ready> ready_;  // continuations queued while one runs
  bool resuming_ = false;
};

// An actor waits for one thing at a time: a reply, a pooled connection, a task, a join, the
// end of its CPU work or of a delay. arm() starts a wait and returns its token; whoever
// completes it calls notify(token); a notify with an old token (the waiter gave up or moved
// on) is ignored. This is how a callee that finishes after its caller's timeout keeps working
// without waking anyone.
//
// A timeout is a Deadlines entry, not SimGrid's acquire_timeout: in 3.32 a timed wait or a
// sleep puts a sleep action into the CPU model, which every scheduling round then walks
// (docs/performance.md, "Twin engine"). The first of notify() and the deadline decides the
// wait; the other finds it decided and does nothing. A wait decided before the actor gets to
// wait() does not block at all.
class Waiter {
 public:
  explicit Waiter(Deadlines& deadlines) : deadlines_(&deadlines) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  std::uint64_t arm() {
    awaiting_ = ++sequence_;
    signaled_ = false;
    decided_ = false;
    resume_ = nullptr;
    return awaiting_;
  }
  void disarm() { awaiting_ = 0; }
  bool notify(std::uint64_t token) {
    if (token == 0 || token != awaiting_ || decided_) return false;
    decided_ = true;
    signaled_ = true;
    if (blocked_) {
      deadlines_->note_actor_woken();
      semaphore_->release();
    } else if (resume_ != nullptr) {
      resume_now();
    }
    return true;
  }
  // A reply: its payload is written only if the waiter still waits for it.
  bool notify_reply(std::uint64_t token, Outcome outcome, std::uint64_t version) {
    if (token == 0 || token != awaiting_ || decided_) return false;
    reply_outcome = outcome;
    reply_version = version;
    return notify(token);
  }
  bool waits_for(std::uint64_t token) const { return token == awaiting_ && !decided_; }
  // Deadlines calls it when the wait `token` reaches its deadline.
  void expire(std::uint64_t token) {
    if (token != awaiting_ || decided_) return;
    decided_ = true;
    if (blocked_) {
      deadlines_->note_actor_woken();
      semaphore_->release();
    } else if (resume_ != nullptr) {
      resume_now();
    }
  }
  // Blocks until notified or `timeout_s` passes (< 0: no timeout). True if notified.
  bool wait(double timeout_s) {
    if (!decided_ && timeout_s != 0) {
      if (timeout_s > 0) {
        deadlines_->add(deadlines_->now() + timeout_s, *this, awaiting_);
      }
      ++deadlines_->ops().actor_blocks;
      blocked_ = true;
      if (!semaphore_) semaphore_ = simgrid::s4u::Semaphore::create(0);
      semaphore_->acquire();
      blocked_ = false;
    }
    awaiting_ = 0;
    return signaled_;
  }
  // Blocks for `delay_s` of simulated time (a sleep without SimGrid's sleep action).
  void sleep(double delay_s) {
    if (delay_s <= 0) return;
    arm();
    wait(delay_s);
  }
  // wait() without an actor: when the wait armed last is notified or `timeout_s` passes
  // (< 0: no timeout), `target.resume(notified)` runs, from the notifier or the deadline,
  // through Deadlines::resume. Decided already, or a zero timeout: it runs now.
  void wait_then(double timeout_s, Resumable& target) {
    if (decided_ || timeout_s == 0) {
      awaiting_ = 0;
      deadlines_->resume(target, signaled_);
      return;
    }
    resume_ = &target;
    if (timeout_s > 0) {
      deadlines_->add(deadlines_->now() + timeout_s, *this, awaiting_);
    }
  }

  // A delay without an actor: arms a wait that only its end decides, and `target.resume(false)`
  // runs after `delay_s` (now when <= 0). A timeline callback of its own rather than a
  // deadline: nothing can end it earlier, so it never needs dropping, and the deadline heap
  // keeps the timeouts, which are rarely the earliest.
  void delay_then(double delay_s, Resumable& target) {
    const std::uint64_t token = arm();
    if (delay_s <= 0) {
      wait_then(0, target);
      return;
    }
    resume_ = &target;
    deadlines_->schedule(deadlines_->now() + delay_s, [this, token] { expire(token); });
  }

  // What the notifier hands over with a reply.
  Outcome reply_outcome = Outcome::ok;
  std::uint64_t reply_version = 0;

 private:
  void resume_now() {
    Resumable* target = resume_;
    resume_ = nullptr;
    awaiting_ = 0;
    deadlines_->resume(*target, signaled_);
  }

  Deadlines* deadlines_;
  // Created at the first blocking wait: waiters of callback-driven requests never block.
  simgrid::s4u::SemaphorePtr semaphore_;
  Resumable* resume_ = nullptr;  // wait_then's target while it waits
  std::uint64_t sequence_ = 0;
  std::uint64_t awaiting_ = 0;
  bool signaled_ = false;  // notified (not timed out)
  bool decided_ = false;   // notified or timed out
  bool blocked_ = false;   // the actor is in acquire(): a notify must release it
};

inline void Deadlines::add(double at_s, Waiter& waiter, std::uint64_t token) {
  if (heap_.size() >= drop_at_size_) drop_decided();
  heap_.push_back({at_s, ++sequence_, &waiter, token});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
  if (!expiring_ && (!armed_ || at_s < timer_at_s_)) arm_timer();
}

inline void Deadlines::expire_due() {
  const double now = timeline_->now();
  // Continuations run by an expiry may add deadlines: the timer is armed once, at the end.
  expiring_ = true;
  while (!heap_.empty() && heap_.front().at_s <= now) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
    const Entry due = heap_.back();
    heap_.pop_back();
    due.waiter->expire(due.token);
  }
  expiring_ = false;
  if (!heap_.empty()) arm_timer();
}

inline void Deadlines::resume(Resumable& target, bool signaled) {
  ready_.push_back({&target, signaled});
  if (resuming_) return;
  resuming_ = true;
  for (std::size_t i = 0; i < ready_.size(); ++i) {
    const Ready next = ready_[i];  // a copy: the continuation may queue more
    next.target->resume(next.signaled);
  }
  ready_.clear();
  resuming_ = false;
}

inline void Deadlines::drop_decided() {
  std::erase_if(heap_, [](const Entry& e) { return !e.waiter->waits_for(e.token); });
  std::make_heap(heap_.begin(), heap_.end(), std::greater<>{});
  drop_at_size_ = std::max<std::size_t>(1024, 2 * heap_.size());
}

inline void Deadlines::arm_timer() {
  const bool replacing = armed_;
  const double replaced_at_s = timer_at_s_;
  armed_ = true;
  ++armed_generation_;
  timer_at_s_ = heap_.front().at_s;
  timeline_->schedule_replaceable(timer_at_s_, armed_generation_, [this] {
    armed_ = false;
    expire_due();
  });
  if (replacing) timeline_->replaced(replaced_at_s);
}

struct Request;

// Per actor: its waiter and what it was handed to do next.
struct ActorContext {
  explicit ActorContext(Deadlines& deadlines) : waiter(deadlines) {}
  Waiter waiter;
  std::function<void(ActorContext&)> task;  // runners
  Request* assigned = nullptr;              // server workers
  int worker = 0;                           // server workers: index in the instance
};

// Reusable actors for entry requests and the branches of parallel calls: creating an actor
// costs two memory mappings and a stack, so finished runners wait for the next task instead.
// Beyond `max_actors` tasks wait in a backlog (SimGrid's ~32k actor ceiling, SIMGRID.md).
class RunnerPool {
 public:
  RunnerPool(simgrid::s4u::Host* host, std::size_t max_actors, Deadlines& deadlines)
      : host_(host), max_(max_actors), deadlines_(&deadlines) {}

  void submit(std::function<void(ActorContext&)> task) {
    if (!idle_.empty()) {
      ActorContext* runner = idle_.back();
      idle_.pop_back();
      runner->task = std::move(task);
      runner->waiter.notify(tokens_.back());
      tokens_.pop_back();
      return;
    }
    if (runners_.size() >= max_) {
      backlog_.push_back(std::move(task));
      ++backlogged_total_;
      return;
    }
    auto runner = std::make_unique<ActorContext>(*deadlines_);
    runner->task = std::move(task);
    ActorContext* raw = runner.get();
    runners_.push_back(std::move(runner));
    deadlines_->note_actor_woken();  // a new actor runs before any later instant
    simgrid::s4u::Actor::create("runner", host_, [this, raw] { loop(*raw); })->daemonize();
  }

  std::size_t size() const { return runners_.size(); }
  std::size_t busy() const { return runners_.size() - idle_.size(); }
  std::uint64_t backlogged_total() const { return backlogged_total_; }

 private:
  void loop(ActorContext& self) {
    while (true) {
      auto task = std::move(self.task);
      self.task = nullptr;
      task(self);
      if (!backlog_.empty()) {
        self.task = std::move(backlog_.front());
        backlog_.pop_front();
        continue;
      }
      idle_.push_back(&self);
      tokens_.push_back(self.waiter.arm());
      self.waiter.wait(-1);
    }
  }

  simgrid::s4u::Host* host_;
  std::size_t max_;
  Deadlines* deadlines_;
  std::vector<std::unique_ptr<ActorContext>> runners_;
  std::vector<ActorContext*> idle_;
  std::vector<std::uint64_t> tokens_;  // idle_[i] waits with tokens_[i]
  std::deque<std::function<void(ActorContext&)>> backlog_;
  std::uint64_t backlogged_total_ = 0;
};

}  // namespace doppel::twin::detail
