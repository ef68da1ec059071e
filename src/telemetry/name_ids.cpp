#include "doppel/telemetry/name_ids.hpp"

namespace doppel::telemetry {

std::size_t NameIds::id_by_content(std::string_view name) {
  std::size_t id = 0;
  if (const auto found = ids_.find(name); found != ids_.end()) {
    id = found->second;
  } else {
    id = names_.size();
    names_.emplace_back(name);
    ids_.emplace(names_.back(), id);
  }
  cache_[slot_of(name.data())] = CacheSlot{name.data(), name.size(), id, names_[id].data()};
  return id;
}

}  // namespace doppel::telemetry
