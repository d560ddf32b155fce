#include "registry.hpp"

#include <algorithm>

namespace ssefanout {

Registry::Registry(uint32_t maxSlots) : maxSlots_(std::min(std::max<uint32_t>(maxSlots, 1), kMaxSlots)) {}

Status Registry::acquire(uint64_t* id) {
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.front();
    free_.pop_front();
  } else if (gen_.size() < maxSlots_) {
    slot = static_cast<uint32_t>(gen_.size());
    gen_.push_back(initialGen_);
    used_.push_back(false);
  } else {
    return Status::kTooManyConnections;
  }
  used_[slot] = true;
  ++live_;
  *id = (gen_[slot] << kSlotBits) | slot;
  return Status::kOk;
}

bool Registry::contains(uint64_t id) const {
  uint32_t slot = slotOf(id);
  return slot < gen_.size() && used_[slot] && gen_[slot] == generationOf(id);
}

bool Registry::release(uint64_t id) {
  if (!contains(id)) return false;
  uint32_t slot = slotOf(id);
  used_[slot] = false;
  --live_;
  if (gen_[slot] >= kMaxGeneration) {
    ++retired_;  // never handed out again: its next id would repeat an old one
    return true;
  }
  ++gen_[slot];
  free_.push_back(slot);
  return true;
}

}  // namespace ssefanout
