// Transfers of the flow network, without an actor waiting for them, and without SimGrid for
// those that share no link with another. Private to src/twin: it includes SimGrid.
//
// SimGrid's CM02 model gives a transfer its latency, then a rate from max-min sharing of the
// links on its way, each link a constraint: weight 1 on the way there and, for the TCP
// acknowledgements, 0.05 on the way back (network/crosstraffic). Its rate is bounded by the
// narrowest link and by the TCP window (TCP-gamma / (2 x the route's latency)). A transfer
// that no other one shares a link with (either direction, there or back) gets exactly that
// bound, so it ends at latency + bytes / bound: computed here, it costs two timeline callbacks
// instead of a SimGrid comm (~15,000 instructions of SimGrid per comm in 3.32, measured).
// Every transfer pays its latency on the timeline; when its bytes start to flow it is
// computed if it is alone on its links. If not, it and every computed transfer on those links
// become SimGrid comms of their remaining bytes, and SimGrid shares them from then on, as it
// would have from the start; a link's latency or bandwidth changing (a fault) moves every
// computed transfer into SimGrid first. So the shortcut only ever applies where SimGrid's
// answer is the closed form.
//
// Two approximations, both below SimGrid's own precision of 1e-9 s for ordinary sizes: a
// comm started here has already paid its latency, so SimGrid's latency factor is set to 1e-9
// (not 0, which would also drop the latency from the comm's share weight: CM02 weighs shares
// by latency); and a transfer moved midway carries its remaining bytes rounded to a whole
// byte (SimGrid's sizes are integers).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <xbt/config.hpp>

#include <simgrid/kernel/resource/Action.hpp>
#include <simgrid/kernel/resource/NetworkModelIntf.hpp>
#include <simgrid/s4u/Comm.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Host.hpp>
#include <simgrid/s4u/Link.hpp>
#include <simgrid/s4u/NetZone.hpp>

#include "doppel/twin/twin.hpp"

#include "twin/sim_primitives.hpp"
#include "twin/timeline.hpp"

namespace doppel::twin::detail {

class FlowTransfers {
 public:
  // SimGrid's latency factor for the comms started here (see above).
  static constexpr double kPaidLatencyFactor = 1e-9;

  FlowTransfers(Timeline& timeline, SimGridOps& ops) : timeline_(&timeline), ops_(&ops) {}
  FlowTransfers(const FlowTransfers&) = delete;
  FlowTransfers& operator=(const FlowTransfers&) = delete;

  // Once per process, before the platform exists: subscribes to SimGrid's reports.
  void connect();
  // Once the platform is sealed: the routes between `hosts` (by host index) as SimGrid has
  // them, and the latency factor. With `shortcut` false every transfer is a SimGrid comm
  // (after its latency, paid here all the same): the reference the shortcut is tested against.
  // With `run_ahead`, the timeline may run ahead of SimGrid's clock while no SimGrid comm is
  // in flight (nothing in SimGrid can happen then). A transfer that becomes a comm while it is
  // ahead holds its links at once, as a comm would, and its comm starts at the same instant
  // once SimGrid's clock has caught up, before anything else happens.
  void prepare(const std::vector<simgrid::s4u::Host*>& hosts, bool shortcut, bool run_ahead);

  // Starts `bytes` from host `from` to host `to` (different hosts, both on). When they arrive,
  // `waiter`'s wait `token` is notified with Outcome::ok as its reply, or Outcome::unavailable
  // if SimGrid failed the transfer. Returns the transfer's id for cancel().
  std::size_t start(int from, int to, std::uint64_t bytes, Waiter& waiter, std::uint64_t token);
  // Gives up transfer `id` (its waiter timed out): nobody is notified.
  void cancel(std::size_t id);
  // Before any link's latency or bandwidth changes: computed transfers move into SimGrid,
  // which applies the change to them.
  void before_link_change();

 private:
  enum class Phase { free, latency, computed, pending, simgrid };  // pending: a comm to start
  struct Slot {
    Phase phase = Phase::free;
    std::uint64_t generation = 0;  // moves on when the slot is released or its phase ends
    int from = 0;
    int to = 0;
    double bytes = 0.0;
    double rate = 0.0;   // computed: bytes per second
    double end_s = 0.0;  // computed: when the last byte arrives
    Waiter* waiter = nullptr;
    std::uint64_t token = 0;
    simgrid::s4u::CommPtr comm;
  };
  struct Route {
    std::vector<simgrid::s4u::Link*> there;  // SimGrid's links from one host to the other
    std::vector<int> touched;  // indices of the links there and back (crosstraffic), once each
    std::vector<simgrid::s4u::Link*> back;
  };
  struct LinkUse {
    int flows = 0;      // transfers whose bytes flow over it (either direction), any kind
    int computed = -1;  // the computed one among them (then the only one), or -1
  };
  struct Ended {
    std::size_t id;
    bool failed;
  };

  const Route& route(int from, int to) const {
    return routes_[static_cast<std::size_t>(from) * hosts_.size() + static_cast<std::size_t>(to)];
  }
  double latency_s(const Route& r) const;
  double bound(const Route& r) const;  // the rate of a transfer alone on its links

  void begin_flowing(std::size_t id);
  void end_computed(std::size_t id);
  void to_simgrid(std::size_t id, double bytes);
  void start_comm(std::size_t id);
  void start_pending();
  void move_to_simgrid(std::size_t id);
  void occupy(std::size_t id, bool computed);
  void vacate(std::size_t id);
  void release(std::size_t id);
  void on_state_change(const simgrid::kernel::resource::Action& action);
  void flush();

  Timeline* timeline_;
  SimGridOps* ops_;
  bool shortcut_ = true;
  bool run_ahead_ = false;
  int in_simgrid_ = 0;  // transfers that are SimGrid comms now, or pending
  std::vector<std::pair<std::size_t, std::uint64_t>> pending_;  // id, generation
  double tcp_gamma_ = 0.0;
  bool crosstraffic_ = true;
  std::vector<simgrid::s4u::Host*> hosts_;
  std::vector<Route> routes_;  // by from * hosts + to
  std::vector<LinkUse> links_;
  std::vector<Slot> slots_;
  std::vector<std::size_t> free_;
  // Looked up only, never iterated: its order cannot leak into the simulation.
  std::unordered_map<const simgrid::kernel::activity::ActivityImpl*, std::size_t> by_activity_;
  std::vector<Ended> ended_;
  std::vector<Ended> ending_;  // what flush() hands over (a buffer kept for its capacity)
  // A comm is released one simulated instant after it ended: SimGrid finishes it (posts its
  // activity) after this instant's callbacks, and it must still exist then.
  std::vector<simgrid::s4u::CommPtr> retired_;
  double retired_at_s_ = -1.0;
};

inline void FlowTransfers::connect() {
  by_activity_.reserve(4096);
  // SimGrid reports every network action's change of state in the middle of its model update,
  // where nothing may start or cancel an activity: the ends are collected there and handed to
  // their waiters when the update is over (on_time_advance, the end of SimGrid's solve),
  // before the kernel timers and actors of the same instant run.
  simgrid::s4u::Engine::on_time_advance_cb([this](double) {
    if (!ended_.empty()) flush();
  });
  simgrid::s4u::Link::on_communication_state_change_cb(
      [this](simgrid::kernel::resource::NetworkAction& action,
             simgrid::kernel::resource::Action::State) {
        // NetworkAction's definition is not installed; it derives from Action alone, so the
        // reference is one to its Action.
        on_state_change(reinterpret_cast<simgrid::kernel::resource::Action&>(action));
      });
}

inline void FlowTransfers::prepare(const std::vector<simgrid::s4u::Host*>& hosts, bool shortcut,
                                   bool run_ahead) {
  shortcut_ = shortcut;
  run_ahead_ = run_ahead;
  timeline_->allow_running_ahead(run_ahead_);
  timeline_->on_caught_up([this] {
    if (!pending_.empty()) start_pending();
  });
  hosts_ = hosts;
  tcp_gamma_ = simgrid::config::get_value<double>("network/TCP-gamma");
  crosstraffic_ = simgrid::config::get_value<bool>("network/crosstraffic");
  simgrid::s4u::Engine::get_instance()->get_netzone_root()->get_network_model()->set_lat_factor_cb(
      [](double, const simgrid::s4u::Host*, const simgrid::s4u::Host*,
         const std::vector<simgrid::s4u::Link*>&,
         const std::unordered_set<simgrid::s4u::NetZone*>&) { return kPaidLatencyFactor; });
  std::unordered_map<const simgrid::s4u::Link*, int> index;
  auto index_of = [&](const simgrid::s4u::Link* link) {
    auto [it, added] = index.emplace(link, static_cast<int>(links_.size()));
    if (added) links_.emplace_back();
    return it->second;
  };
  routes_.assign(hosts_.size() * hosts_.size(), Route{});
  for (std::size_t a = 0; a < hosts_.size(); ++a) {
    for (std::size_t b = 0; b < hosts_.size(); ++b) {
      if (a == b) continue;
      Route& r = routes_[a * hosts_.size() + b];
      hosts_[a]->route_to(hosts_[b], r.there, nullptr);
      if (crosstraffic_) hosts_[b]->route_to(hosts_[a], r.back, nullptr);
      for (const auto* links : {&r.there, &r.back}) {
        for (const auto* link : *links) {
          const int i = index_of(link);
          if (std::find(r.touched.begin(), r.touched.end(), i) == r.touched.end())
            r.touched.push_back(i);
        }
      }
    }
  }
}

inline double FlowTransfers::latency_s(const Route& r) const {
  double latency = 0.0;
  for (const auto* link : r.there) latency += link->get_latency();
  return latency;
}

inline double FlowTransfers::bound(const Route& r) const {
  // CM02 with its factors at 1: the narrowest link there, 1/0.05 of the narrowest back, and
  // the TCP window over the round trip.
  double rate = std::numeric_limits<double>::infinity();
  for (const auto* link : r.there) rate = std::min(rate, link->get_bandwidth());
  for (const auto* link : r.back) rate = std::min(rate, link->get_bandwidth() / 0.05);
  const double latency = latency_s(r);
  if (latency > 0 && tcp_gamma_ > 0) rate = std::min(rate, tcp_gamma_ / (2.0 * latency));
  return rate;
}

inline std::size_t FlowTransfers::start(int from, int to, std::uint64_t bytes, Waiter& waiter,
                                        std::uint64_t token) {
  std::size_t id = slots_.size();
  if (free_.empty()) {
    slots_.emplace_back();
  } else {
    id = free_.back();
    free_.pop_back();
  }
  Slot& slot = slots_[id];
  slot.phase = Phase::latency;
  slot.from = from;
  slot.to = to;
  slot.bytes = static_cast<double>(bytes);
  slot.waiter = &waiter;
  slot.token = token;
  const std::uint64_t generation = slot.generation;
  timeline_->schedule(timeline_->now() + latency_s(route(from, to)), [this, id, generation] {
    if (slots_[id].generation == generation && slots_[id].phase == Phase::latency)
      begin_flowing(id);
  });
  return id;
}

inline void FlowTransfers::begin_flowing(std::size_t id) {
  Slot& slot = slots_[id];
  const Route& r = route(slot.from, slot.to);
  bool alone = shortcut_;
  for (int i : r.touched) alone = alone && links_[static_cast<std::size_t>(i)].flows == 0;
  if (!alone) {
    // Whatever computed transfer shares a link with it now shares by SimGrid's rules.
    for (int i : r.touched) {
      const int other = links_[static_cast<std::size_t>(i)].computed;
      if (other >= 0) move_to_simgrid(static_cast<std::size_t>(other));
    }
    to_simgrid(id, slot.bytes);
    return;
  }
  ++ops_->computed_transfers;
  slot.phase = Phase::computed;
  slot.rate = bound(r);
  slot.end_s = timeline_->now() + slot.bytes / slot.rate;
  occupy(id, true);
  const std::uint64_t generation = ++slot.generation;
  timeline_->schedule(slot.end_s, [this, id, generation] {
    if (slots_[id].generation == generation && slots_[id].phase == Phase::computed)
      end_computed(id);
  });
}

inline void FlowTransfers::end_computed(std::size_t id) {
  Waiter* waiter = slots_[id].waiter;
  const std::uint64_t token = slots_[id].token;
  vacate(id);
  release(id);
  waiter->notify_reply(token, Outcome::ok, 0);
}

inline void FlowTransfers::move_to_simgrid(std::size_t id) {
  Slot& slot = slots_[id];
  const double left = std::max(0.0, slot.end_s - timeline_->now()) * slot.rate;
  vacate(id);
  ++slot.generation;  // its computed end is void
  to_simgrid(id, left);
}

inline void FlowTransfers::to_simgrid(std::size_t id, double bytes) {
  Slot& slot = slots_[id];
  occupy(id, false);
  if (in_simgrid_++ == 0) timeline_->allow_running_ahead(false);
  slot.bytes = bytes;
  if (timeline_->ahead()) {
    slot.phase = Phase::pending;
    pending_.emplace_back(id, slot.generation);
    if (pending_.size() == 1) {
      // SimGrid's clock must come here before anything else happens: the comms start first
      // then (Timeline::on_caught_up), as they would have now.
      timeline_->hand_back();
      timeline_->schedule(timeline_->now(), [this] { start_pending(); });
    }
    return;
  }
  start_comm(id);
}

inline void FlowTransfers::start_pending() {
  if (timeline_->ahead()) return;  // at the catch-up
  for (const auto& [id, generation] : pending_) {
    if (slots_[id].generation == generation && slots_[id].phase == Phase::pending) start_comm(id);
  }
  pending_.clear();
}

inline void FlowTransfers::start_comm(std::size_t id) {
  Slot& slot = slots_[id];
  slot.phase = Phase::simgrid;
  ++ops_->comms;
  slot.comm = simgrid::s4u::Comm::sendto_async(
      hosts_[static_cast<std::size_t>(slot.from)], hosts_[static_cast<std::size_t>(slot.to)],
      static_cast<std::uint64_t>(std::llround(slot.bytes)));
  by_activity_[slot.comm->get_impl()] = id;
}

inline void FlowTransfers::occupy(std::size_t id, bool computed) {
  const Slot& slot = slots_[id];
  for (int i : route(slot.from, slot.to).touched) {
    auto& use = links_[static_cast<std::size_t>(i)];
    ++use.flows;
    if (computed) use.computed = static_cast<int>(id);
  }
}

inline void FlowTransfers::vacate(std::size_t id) {
  const Slot& slot = slots_[id];
  for (int i : route(slot.from, slot.to).touched) {
    auto& use = links_[static_cast<std::size_t>(i)];
    --use.flows;
    if (use.computed == static_cast<int>(id)) use.computed = -1;
  }
}

inline void FlowTransfers::release(std::size_t id) {
  Slot& slot = slots_[id];
  if (slot.phase == Phase::simgrid || slot.phase == Phase::pending) {
    if (--in_simgrid_ == 0) timeline_->allow_running_ahead(run_ahead_);
  }
  if (slot.comm) {
    const double now = simgrid::s4u::Engine::get_clock();  // a comm ends in SimGrid's time
    if (now > retired_at_s_) {
      retired_.clear();
      retired_at_s_ = now;
    }
    retired_.push_back(std::move(slot.comm));
    slot.comm = nullptr;
  }
  slot.phase = Phase::free;
  ++slot.generation;
  slot.waiter = nullptr;
  free_.push_back(id);
}

inline void FlowTransfers::cancel(std::size_t id) {
  Slot& slot = slots_[id];
  switch (slot.phase) {
    case Phase::free:
      return;
    case Phase::latency:
      break;
    case Phase::computed:
    case Phase::pending:
      vacate(id);
      break;
    case Phase::simgrid:
      vacate(id);
      by_activity_.erase(slot.comm->get_impl());
      slot.comm->cancel();
      break;
  }
  release(id);
}

inline void FlowTransfers::before_link_change() {
  for (std::size_t id = 0; id < slots_.size(); ++id) {
    if (slots_[id].phase == Phase::computed) move_to_simgrid(id);
  }
}

inline void FlowTransfers::on_state_change(const simgrid::kernel::resource::Action& action) {
  using State = simgrid::kernel::resource::Action::State;
  const State state = action.get_state();
  if (state != State::FINISHED && state != State::FAILED) return;
  auto it = by_activity_.find(action.get_activity());
  if (it == by_activity_.end()) return;  // not ours, or given up
  ended_.push_back({it->second, state == State::FAILED});
  by_activity_.erase(it);
}

inline void FlowTransfers::flush() {
  // Notifying may start (or cancel) other transfers: work on what ended until now.
  ending_.swap(ended_);
  for (const auto& e : ending_) {
    Waiter* waiter = slots_[e.id].waiter;
    const std::uint64_t token = slots_[e.id].token;
    vacate(e.id);
    release(e.id);
    waiter->notify_reply(token, e.failed ? Outcome::unavailable : Outcome::ok, 0);
  }
  ending_.clear();
}

}  // namespace doppel::twin::detail
