// Dense integer ids for the names the twin's records carry (services, operations, peers,
// routes, hosts, datastores), so that what a recorder does per span is array indexing rather
// than a string-keyed map lookup: at ~1M spans per 10-minute case those lookups were 8% of
// `doppel generate` (docs/performance.md).
//
// Records carry names as views that stay put for the whole run (twin/observer.hpp), so a name
// nearly always arrives at the same address. A small cache keyed by that address answers with
// one comparison of the bytes; a miss (another copy of the name, two addresses sharing a
// slot) falls back to a hash lookup by content. Ids therefore depend only on the order in
// which names are first seen, never on addresses: only the speed does.
//
// Not thread-safe (the cache is filled by lookups); one per recorder, as recorders are.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

namespace doppel::telemetry {

class NameIds {
 public:
  NameIds() = default;
  // Its index views into its own strings: a copy would view into the original's.
  NameIds(const NameIds&) = delete;
  NameIds& operator=(const NameIds&) = delete;
  NameIds(NameIds&&) = default;  // a deque's elements stay where they are when it moves
  NameIds& operator=(NameIds&&) = default;

  // The id of `name`: 0, 1, 2... in the order names are first seen.
  std::size_t id(std::string_view name) {
    const CacheSlot& slot = cache_[slot_of(name.data())];
    // The bytes are compared too: a view's address alone proves nothing if its owner reused
    // the storage (a test's temporary string, say).
    if (slot.data == name.data() && slot.size == name.size() &&
        same_bytes(slot.stored, name.data(), name.size())) {
      return slot.id;
    }
    return id_by_content(name);
  }

  std::string_view name(std::size_t id) const { return names_[id]; }
  std::size_t size() const { return names_.size(); }

 private:
  struct CacheSlot {
    const char* data = nullptr;
    std::size_t size = static_cast<std::size_t>(-1);  // no view is this long: an empty slot
    std::size_t id = 0;
    const char* stored = nullptr;  // names_[id]'s bytes
  };
  static constexpr std::size_t kCacheBits = 7;

  static std::size_t slot_of(const char* data) {
    // Fibonacci hashing of the address; its low bits are alignment, not identity.
    return static_cast<std::size_t>(
        (reinterpret_cast<std::uintptr_t>(data) * std::uint64_t{0x9E3779B97F4A7C15}) >>
        (64 - kCacheBits));
  }
  std::size_t id_by_content(std::string_view name);

  // Names are short (10-30 bytes): compared a word at a time, inline, rather than through a
  // call to memcmp on every lookup.
  static bool same_bytes(const char* a, const char* b, std::size_t size) {
    for (; size >= sizeof(std::uint64_t); size -= sizeof(std::uint64_t)) {
      std::uint64_t word_a = 0;
      std::uint64_t word_b = 0;
      std::memcpy(&word_a, a, sizeof word_a);
      std::memcpy(&word_b, b, sizeof word_b);
      if (word_a != word_b) return false;
      a += sizeof word_a;
      b += sizeof word_b;
    }
    for (; size > 0; --size) {
      if (*a++ != *b++) return false;
    }
    return true;
  }

  std::array<CacheSlot, std::size_t{1} << kCacheBits> cache_{};
  std::deque<std::string> names_;  // a deque: the keys below view into these strings
  std::unordered_map<std::string_view, std::size_t> ids_;
};

}  // namespace doppel::telemetry
