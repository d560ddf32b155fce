// Registry: issues connection ids that are never reused.
//
// An id packs a slot (a small dense index, reused) and the slot's generation
// (bumped on every release): id = generation * 2^kSlotBits + slot. A stale id
// (its connection released) no longer matches its slot's generation, so a late
// command can never reach the connection that took the slot over. A slot whose
// generation is exhausted is retired rather than wrapped, so no id is ever
// issued twice. Ids stay below 2^53 and are exact JS numbers.
//
// Released slots are reused oldest-first, which spreads generations evenly.
// Owned by the JS thread; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "status.hpp"

namespace ssefanout {

class Registry {
 public:
  static constexpr unsigned kSlotBits = 21;
  static constexpr uint32_t kMaxSlots = 1u << kSlotBits;
  static constexpr uint64_t kMaxGeneration = (uint64_t{1} << 32) - 1;

  explicit Registry(uint32_t maxSlots = kMaxSlots);

  static uint32_t slotOf(uint64_t id) { return static_cast<uint32_t>(id & (kMaxSlots - 1)); }
  static uint64_t generationOf(uint64_t id) { return id >> kSlotBits; }

  // Issues a fresh id in *id; kTooManyConnections when no slot is free.
  Status acquire(uint64_t* id);
  // True while id was issued and not yet released.
  bool contains(uint64_t id) const;
  // Releases a live id; returns false (and changes nothing) for any other id.
  bool release(uint64_t id);

  size_t live() const { return live_; }
  size_t retired() const { return retired_; }
  uint32_t slotCapacity() const { return static_cast<uint32_t>(gen_.size()); }

  // For tests: start fresh slots at this generation (to reach exhaustion fast).
  void setInitialGenerationForTesting(uint64_t g) { initialGen_ = g; }

 private:
  uint32_t maxSlots_;
  uint64_t initialGen_ = 1;    // generation 0 never issued: id 0 is never valid
  std::vector<uint64_t> gen_;  // current generation per slot
  std::vector<bool> used_;
  std::deque<uint32_t> free_;
  size_t live_ = 0;
  size_t retired_ = 0;
};

}  // namespace ssefanout
