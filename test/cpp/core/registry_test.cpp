// Registry: ids are nonzero, below 2^53, never issued twice; stale ids are
// rejected; slots are reused oldest-first and retired when their generation
// runs out. The randomized test predicts every id from a reference model.
#include "registry.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

namespace ssefanout {
namespace {

constexpr uint64_t kTwoTo53 = uint64_t{1} << 53;

uint64_t mustAcquire(Registry& r) {
  uint64_t id = 0;
  EXPECT_EQ(r.acquire(&id), Status::kOk);
  return id;
}

TEST(RegistryTest, FreshIdsAreNonzeroDistinctAndLive) {
  Registry r;
  std::set<uint64_t> ids;
  std::set<uint32_t> slots;
  for (int i = 0; i < 1000; ++i) {
    uint64_t id = mustAcquire(r);
    EXPECT_NE(id, 0u);
    EXPECT_LT(id, kTwoTo53);
    EXPECT_GE(Registry::generationOf(id), 1u);
    EXPECT_TRUE(r.contains(id));
    ids.insert(id);
    slots.insert(Registry::slotOf(id));
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(slots.size(), 1000u);
  EXPECT_EQ(*slots.rbegin(), 999u);  // dense slots
  EXPECT_EQ(r.live(), 1000u);
  EXPECT_EQ(r.retired(), 0u);
  EXPECT_EQ(r.slotCapacity(), 1000u);
}

TEST(RegistryTest, IdPacksGenerationAndSlot) {
  for (uint64_t gen : {uint64_t{1}, uint64_t{12345}, Registry::kMaxGeneration}) {
    for (uint32_t slot : {0u, 1u, Registry::kMaxSlots - 1}) {
      const uint64_t id = (gen << Registry::kSlotBits) | slot;
      EXPECT_EQ(Registry::slotOf(id), slot);
      EXPECT_EQ(Registry::generationOf(id), gen);
      EXPECT_LT(id, kTwoTo53);
    }
  }
  EXPECT_EQ(Registry::kMaxSlots, 1u << 21);
}

TEST(RegistryTest, ContainsAndRelease) {
  Registry r;
  const uint64_t a = mustAcquire(r);
  const uint64_t b = mustAcquire(r);
  EXPECT_TRUE(r.release(a));
  EXPECT_FALSE(r.contains(a));
  EXPECT_TRUE(r.contains(b));
  EXPECT_EQ(r.live(), 1u);
  EXPECT_FALSE(r.release(a));  // twice
  EXPECT_EQ(r.live(), 1u);
  EXPECT_TRUE(r.release(b));
  EXPECT_FALSE(r.release(b));
  EXPECT_EQ(r.live(), 0u);
}

TEST(RegistryTest, IdsNeverIssuedAreRejected) {
  Registry r;
  const uint64_t a = mustAcquire(r);
  const uint32_t slot = Registry::slotOf(a);
  const uint64_t gen = Registry::generationOf(a);
  const std::vector<uint64_t> bogus = {
      0,
      slot,                                       // generation 0
      ((gen + 1) << Registry::kSlotBits) | slot,  // a future generation
      ((gen + Registry::kMaxSlots) << Registry::kSlotBits) | slot,
      (gen << Registry::kSlotBits) | (slot + 1),  // slot never handed out
      (gen << Registry::kSlotBits) | (Registry::kMaxSlots - 1),
      a + (uint64_t{1} << 53),  // same low bits, huge generation
      UINT64_MAX,
  };
  for (uint64_t id : bogus) {
    EXPECT_FALSE(r.contains(id)) << id;
    EXPECT_FALSE(r.release(id)) << id;
  }
  EXPECT_TRUE(r.contains(a));
  EXPECT_EQ(r.live(), 1u);
}

TEST(RegistryTest, StaleIdIsRejectedAfterItsSlotIsReused) {
  Registry r(1);
  const uint64_t a = mustAcquire(r);
  ASSERT_TRUE(r.release(a));
  const uint64_t b = mustAcquire(r);
  EXPECT_NE(a, b);
  EXPECT_EQ(Registry::slotOf(a), Registry::slotOf(b));
  EXPECT_EQ(Registry::generationOf(b), Registry::generationOf(a) + 1);
  EXPECT_FALSE(r.contains(a));
  EXPECT_FALSE(r.release(a));  // the late command for a must not close b
  EXPECT_TRUE(r.contains(b));
  EXPECT_EQ(r.live(), 1u);
}

TEST(RegistryTest, MaxSlotsExhaustion) {
  Registry r(4);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(mustAcquire(r));
  uint64_t id = 0;
  EXPECT_EQ(r.acquire(&id), Status::kTooManyConnections);
  EXPECT_EQ(r.acquire(&id), Status::kTooManyConnections);
  EXPECT_EQ(r.live(), 4u);
  EXPECT_EQ(r.slotCapacity(), 4u);
  for (uint64_t x : ids) EXPECT_TRUE(r.contains(x));

  ASSERT_TRUE(r.release(ids[2]));
  const uint64_t again = mustAcquire(r);
  EXPECT_EQ(Registry::slotOf(again), Registry::slotOf(ids[2]));
  EXPECT_EQ(r.acquire(&id), Status::kTooManyConnections);
}

TEST(RegistryTest, MaxSlotsIsClamped) {
  Registry zero(0);  // at least one slot
  uint64_t id = 0;
  EXPECT_EQ(zero.acquire(&id), Status::kOk);
  EXPECT_EQ(zero.acquire(&id), Status::kTooManyConnections);
}

TEST(RegistryTest, FullDefaultRegistryNearTheLastGenerationStaysBelow2To53) {
  // Every slot at the last generation: the largest id the registry can ever
  // issue is 2^53 - 1, an exact JS number.
  Registry r(UINT32_MAX);  // clamped to kMaxSlots
  r.setInitialGenerationForTesting(Registry::kMaxGeneration);
  uint64_t maxId = 0;
  for (uint32_t i = 0; i < Registry::kMaxSlots; ++i) {
    uint64_t id = 0;
    ASSERT_EQ(r.acquire(&id), Status::kOk) << i;
    ASSERT_LT(id, kTwoTo53);
    ASSERT_EQ(static_cast<uint64_t>(static_cast<double>(id)), id);
    maxId = std::max(maxId, id);
  }
  EXPECT_EQ(maxId, kTwoTo53 - 1);
  EXPECT_EQ(r.slotCapacity(), Registry::kMaxSlots);
  uint64_t id = 0;
  EXPECT_EQ(r.acquire(&id), Status::kTooManyConnections);

  // Releasing them all retires every slot: nothing can be issued again.
  for (uint32_t slot = 0; slot < Registry::kMaxSlots; ++slot) {
    ASSERT_TRUE(r.release((Registry::kMaxGeneration << Registry::kSlotBits) | slot)) << slot;
  }
  EXPECT_EQ(r.live(), 0u);
  EXPECT_EQ(r.retired(), Registry::kMaxSlots);
  EXPECT_EQ(r.acquire(&id), Status::kTooManyConnections);
}

TEST(RegistryTest, ReleasedSlotsAreReusedOldestFirstBeforeNewOnes) {
  Registry r(100);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(mustAcquire(r));
  for (int i : {5, 2, 7, 0}) ASSERT_TRUE(r.release(ids[i]));
  for (uint32_t want : {5u, 2u, 7u, 0u}) {
    const uint64_t id = mustAcquire(r);
    EXPECT_EQ(Registry::slotOf(id), want);
    EXPECT_EQ(Registry::generationOf(id), 2u);
  }
  EXPECT_EQ(r.slotCapacity(), 8u);  // no new slot while old ones were free
  EXPECT_EQ(Registry::slotOf(mustAcquire(r)), 8u);
}

TEST(RegistryTest, GenerationExhaustionRetiresTheSlot) {
  Registry r(2);
  r.setInitialGenerationForTesting(Registry::kMaxGeneration - 2);
  std::set<uint64_t> issued;
  // Slot 0 goes through its last three generations.
  for (uint64_t g = Registry::kMaxGeneration - 2; g <= Registry::kMaxGeneration; ++g) {
    const uint64_t id = mustAcquire(r);
    EXPECT_EQ(Registry::slotOf(id), 0u);
    EXPECT_EQ(Registry::generationOf(id), g);
    EXPECT_LT(id, kTwoTo53);
    EXPECT_TRUE(issued.insert(id).second);
    EXPECT_EQ(r.retired(), 0u);
    ASSERT_TRUE(r.release(id));
  }
  EXPECT_EQ(r.retired(), 1u);
  EXPECT_EQ(r.live(), 0u);

  // The retired slot is never handed out again: slot 1 serves from now on.
  for (uint64_t g = Registry::kMaxGeneration - 2; g <= Registry::kMaxGeneration; ++g) {
    const uint64_t id = mustAcquire(r);
    EXPECT_EQ(Registry::slotOf(id), 1u);
    EXPECT_EQ(Registry::generationOf(id), g);
    EXPECT_TRUE(issued.insert(id).second);
    ASSERT_TRUE(r.release(id));
  }
  EXPECT_EQ(r.retired(), 2u);
  uint64_t id = 0;
  EXPECT_EQ(r.acquire(&id), Status::kTooManyConnections);
  for (uint64_t x : issued) {
    EXPECT_FALSE(r.contains(x));
    EXPECT_FALSE(r.release(x));
  }
  EXPECT_EQ(r.retired(), 2u);
}

TEST(RegistryTest, LastGenerationIdIsLiveUntilReleased) {
  Registry r(1);
  r.setInitialGenerationForTesting(Registry::kMaxGeneration);
  const uint64_t id = mustAcquire(r);
  EXPECT_EQ(Registry::generationOf(id), Registry::kMaxGeneration);
  EXPECT_TRUE(r.contains(id));
  EXPECT_EQ(r.retired(), 0u);
  EXPECT_TRUE(r.release(id));
  EXPECT_FALSE(r.release(id));
  EXPECT_EQ(r.retired(), 1u);
}

uint64_t seedFromEnv(uint64_t fallback) {
  const char* s = std::getenv("SSE_FANOUT_TEST_SEED");
  return s ? std::strtoull(s, nullptr, 10) : fallback;
}

// Predicts each id exactly: FIFO reuse of released slots, new slots only when
// none is free, generation bumped on release, retirement at kMaxGeneration.
struct RegistryModel {
  uint32_t maxSlots;
  uint64_t initialGen;
  std::vector<uint64_t> gen;
  std::deque<uint32_t> free;
  size_t retired = 0;

  bool next(uint64_t* id) {
    uint32_t slot;
    if (!free.empty()) {
      slot = free.front();
    } else if (gen.size() < maxSlots) {
      slot = static_cast<uint32_t>(gen.size());
    } else {
      return false;
    }
    *id = (slot < gen.size() ? gen[slot] : initialGen) * Registry::kMaxSlots + slot;
    return true;
  }
  // The id next() predicted was issued.
  void took() {
    if (!free.empty()) {
      free.pop_front();
    } else {
      gen.push_back(initialGen);
    }
  }
  void released(uint64_t id) {
    const uint32_t slot = static_cast<uint32_t>(id % Registry::kMaxSlots);
    if (gen[slot] == Registry::kMaxGeneration) {
      ++retired;
      return;
    }
    ++gen[slot];
    free.push_back(slot);
  }
};

void runRandomized(uint32_t maxSlots, uint64_t initialGen, int ops, uint64_t seed, size_t* issuedCount,
                   size_t* refusals, size_t* retiredCount) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set SSE_FANOUT_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  Registry r(maxSlots);
  r.setInitialGenerationForTesting(initialGen);
  RegistryModel model{maxSlots, initialGen, {}, {}};
  std::unordered_set<uint64_t> issued;
  std::vector<uint64_t> live;
  std::vector<uint64_t> dead;  // a sample of released ids, to try again
  issued.reserve(static_cast<size_t>(ops));
  *refusals = 0;

  for (int op = 0; op < ops; ++op) {
    // Drift the acquire probability so the live count sweeps from empty to full.
    const unsigned phase = static_cast<unsigned>((op / 50000) % 2);
    const unsigned acquirePct = phase ? 40 : 60;
    const unsigned roll = static_cast<unsigned>(rng() % 100);
    if (roll < acquirePct || live.empty()) {
      uint64_t want = 0;
      const bool expectOk = model.next(&want);
      uint64_t id = 0;
      const Status s = r.acquire(&id);
      if (!expectOk) {
        ASSERT_EQ(s, Status::kTooManyConnections) << "op " << op;
        ++*refusals;
        continue;
      }
      ASSERT_EQ(s, Status::kOk) << "op " << op;
      ASSERT_EQ(id, want) << "op " << op;
      ASSERT_NE(id, 0u) << "op " << op;
      ASSERT_LT(id, kTwoTo53) << "op " << op;
      ASSERT_TRUE(issued.insert(id).second) << "op " << op << ": id " << id << " issued twice";
      ASSERT_TRUE(r.contains(id)) << "op " << op;
      model.took();
      live.push_back(id);
    } else if (roll < 97) {
      const size_t k = static_cast<size_t>(rng() % live.size());
      const uint64_t id = live[k];
      live[k] = live.back();
      live.pop_back();
      ASSERT_TRUE(r.release(id)) << "op " << op;
      ASSERT_FALSE(r.contains(id)) << "op " << op;
      model.released(id);
      if (dead.size() < 4096) {
        dead.push_back(id);
      } else {
        dead[static_cast<size_t>(rng() % dead.size())] = id;
      }
    } else if (!dead.empty()) {
      // A stale id: never valid again, whatever took its slot over.
      const uint64_t id = dead[static_cast<size_t>(rng() % dead.size())];
      ASSERT_FALSE(r.contains(id)) << "op " << op;
      ASSERT_FALSE(r.release(id)) << "op " << op;
    }
    ASSERT_EQ(r.live(), live.size()) << "op " << op;
    ASSERT_EQ(r.retired(), model.retired) << "op " << op;
  }
  for (uint64_t id : live) ASSERT_TRUE(r.contains(id));
  *issuedCount = issued.size();
  *retiredCount = r.retired();
}

TEST(RegistryTest, RandomizedMillionOpsNeverIssueAnIdTwice) {
  size_t issued = 0, refusals = 0, retired = 0;
  runRandomized(1000, 1, 1000000, seedFromEnv(7), &issued, &refusals, &retired);
  if (HasFatalFailure()) return;
  EXPECT_GT(issued, 400000u);
  EXPECT_GT(refusals, 0u);  // the live count reached the slot limit
  EXPECT_EQ(retired, 0u);
}

TEST(RegistryTest, RandomizedWithGenerationExhaustion) {
  // 64 slots with 51 generations left each: slots retire one after another
  // until the registry refuses everything.
  size_t issued = 0, refusals = 0, retired = 0;
  runRandomized(64, Registry::kMaxGeneration - 50, 200000, seedFromEnv(11), &issued, &refusals, &retired);
  if (HasFatalFailure()) return;
  EXPECT_EQ(retired, 64u);
  EXPECT_EQ(issued, 64u * 51u);
  EXPECT_GT(refusals, 0u);
}

}  // namespace
}  // namespace ssefanout
