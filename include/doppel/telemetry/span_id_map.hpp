// A map from span id to what a recorder keeps about that span while it is in flight.
//
// Recorders that pair spans up (a client span with the server span that served it) look ids
// up a few times per span, ~1M spans per 10-minute case. std::unordered_map spends that on a
// modulo by a prime and a node allocation per entry; this is open addressing over a
// power-of-two table (linear probing, backward-shift deletion, no tombstones). It is never
// iterated, so its layout cannot leak into any output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace doppel::telemetry::detail {

template <typename Value>
class SpanIdMap {
 public:
  SpanIdMap() { rehash(16); }

  std::size_t size() const { return size_; }

  // The value kept for `key`, or null. Valid until the next insertion or erasure.
  Value* find(std::uint64_t key) {
    for (std::size_t i = home(key);; i = next(i)) {
      Slot& slot = slots_[i];
      if (!slot.used) return nullptr;
      if (slot.key == key) return &slot.value;
    }
  }

  // The value kept for `key`, default-constructed first if there is none; `inserted` says
  // which. Valid until the next insertion or erasure.
  Value& get(std::uint64_t key, bool& inserted) {
    if (2 * (size_ + 1) > slots_.size()) rehash(2 * slots_.size());
    for (std::size_t i = home(key);; i = next(i)) {
      Slot& slot = slots_[i];
      if (slot.used && slot.key == key) {
        inserted = false;
        return slot.value;
      }
      if (!slot.used) {
        slot.used = true;
        slot.key = key;
        slot.value = Value{};
        ++size_;
        inserted = true;
        return slot.value;
      }
    }
  }
  Value& operator[](std::uint64_t key) {
    bool inserted = false;
    return get(key, inserted);
  }

  // Drops `key` if present.
  void erase(std::uint64_t key) {
    for (std::size_t i = home(key);; i = next(i)) {
      if (!slots_[i].used) return;
      if (slots_[i].key == key) {
        erase_at(i);
        return;
      }
    }
  }

  void clear() {
    slots_.clear();
    size_ = 0;
    rehash(16);
  }

 private:
  struct Slot {
    std::uint64_t key = 0;
    bool used = false;
    Value value{};
  };

  // Span ids are counters: multiply to spread consecutive ids, keep the top bits.
  std::size_t home(std::uint64_t key) const {
    return static_cast<std::size_t>((key * std::uint64_t{0x9E3779B97F4A7C15}) >> shift_);
  }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void rehash(std::size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    size_ = 0;
    for (Slot& slot : old) {
      if (!slot.used) continue;
      bool inserted = false;
      get(slot.key, inserted) = std::move(slot.value);
    }
  }

  // Linear probing keeps every key reachable from its home slot through used slots: close
  // the hole by pulling later entries back when their home allows it.
  void erase_at(std::size_t hole) {
    for (std::size_t i = next(hole);; i = next(i)) {
      Slot& slot = slots_[i];
      if (!slot.used) break;
      const std::size_t wanted = home(slot.key);
      // The entry may fill the hole unless its home lies cyclically in (hole, i].
      const bool stays =
          hole <= i ? (hole < wanted && wanted <= i) : (hole < wanted || wanted <= i);
      if (stays) continue;
      slots_[hole].key = slot.key;
      slots_[hole].value = std::move(slot.value);
      hole = i;
    }
    slots_[hole].used = false;
    slots_[hole].value = Value{};
    --size_;
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  int shift_ = 60;
};

}  // namespace doppel::telemetry::detail
