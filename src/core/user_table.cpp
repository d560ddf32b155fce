#include "user_table.hpp"

namespace ssefanout {

uint32_t UserTable::acquire(std::string_view name) {
  auto it = byName_.find(name);
  if (it != byName_.end()) {
    ++entries_[it->second].refs;
    return it->second;
  }
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  entries_[id].name.assign(name);
  entries_[id].refs = 1;
  byName_.emplace(entries_[id].name, id);
  return id;
}

void UserTable::release(uint32_t id) {
  if (id == kNoUser || id >= entries_.size() || entries_[id].refs == 0) return;
  if (--entries_[id].refs > 0) return;
  byName_.erase(entries_[id].name);
  entries_[id].name.clear();
  entries_[id].name.shrink_to_fit();
  free_.push_back(id);
}

uint32_t UserTable::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? kNoUser : it->second;
}

}  // namespace ssefanout
