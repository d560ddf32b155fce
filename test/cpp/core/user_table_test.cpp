// UserTable: interning with reference counts, id reuse after the last
// release, kNoUser, and a randomized check against a map of refcounts.
#include "user_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace ssefanout {
namespace {

TEST(UserTableTest, EmptyTableFindsNobody) {
  UserTable users;
  EXPECT_EQ(users.size(), 0u);
  EXPECT_EQ(users.find("alice"), UserTable::kNoUser);
  EXPECT_EQ(users.find(""), UserTable::kNoUser);
  EXPECT_EQ(UserTable::kNoUser, 0u);
}

TEST(UserTableTest, AcquireFindReleaseCountsReferences) {
  UserTable users;
  const uint32_t alice = users.acquire("alice");
  EXPECT_NE(alice, UserTable::kNoUser);
  EXPECT_EQ(users.find("alice"), alice);
  EXPECT_EQ(users.acquire("alice"), alice);
  EXPECT_EQ(users.acquire("alice"), alice);
  EXPECT_EQ(users.size(), 1u);

  users.release(alice);
  users.release(alice);
  EXPECT_EQ(users.find("alice"), alice);  // one reference left
  EXPECT_EQ(users.size(), 1u);
  users.release(alice);
  EXPECT_EQ(users.find("alice"), UserTable::kNoUser);
  EXPECT_EQ(users.size(), 0u);
}

TEST(UserTableTest, DistinctNamesGetDistinctIds) {
  UserTable users;
  const std::vector<std::string> names = {
      "alice", "Alice", "alic", "alice ", std::string("alice\0x", 7), std::string("alice\0y", 7), "\xc3\xa9", "u1"};
  std::set<uint32_t> ids;
  for (const std::string& n : names) {
    const uint32_t id = users.acquire(n);
    EXPECT_NE(id, UserTable::kNoUser);
    EXPECT_TRUE(ids.insert(id).second) << n;
  }
  EXPECT_EQ(users.size(), names.size());
  for (const std::string& n : names) EXPECT_NE(users.find(n), UserTable::kNoUser) << n;
  EXPECT_EQ(users.find(std::string("alice\0z", 7)), UserTable::kNoUser);
}

TEST(UserTableTest, NameIsCopied) {
  UserTable users;
  std::string name = "bob";
  const uint32_t id = users.acquire(name);
  name = "xyz-and-something-longer-than-the-small-string-buffer";
  EXPECT_EQ(users.find("bob"), id);
  EXPECT_EQ(users.find(name), UserTable::kNoUser);
}

TEST(UserTableTest, IdIsReusedOnlyAfterFullRelease) {
  UserTable users;
  const uint32_t a = users.acquire("a");
  const uint32_t b = users.acquire("b");
  users.acquire("a");
  users.release(a);
  const uint32_t c = users.acquire("c");
  EXPECT_NE(c, a);  // "a" still has a reference
  EXPECT_NE(c, b);
  users.release(a);
  EXPECT_EQ(users.find("a"), UserTable::kNoUser);
  const uint32_t d = users.acquire("d");
  EXPECT_EQ(d, a);  // the freed id comes back instead of a new one
  EXPECT_EQ(users.find("d"), a);
  EXPECT_EQ(users.find("a"), UserTable::kNoUser);
  EXPECT_EQ(users.find("b"), b);
  EXPECT_EQ(users.find("c"), c);
  EXPECT_EQ(users.size(), 3u);

  // The same name acquired again after its full release works too.
  users.release(b);
  const uint32_t b2 = users.acquire("b");
  EXPECT_NE(b2, UserTable::kNoUser);
  EXPECT_EQ(users.find("b"), b2);
}

TEST(UserTableTest, BogusReleasesAreIgnored) {
  UserTable users;
  users.release(UserTable::kNoUser);
  users.release(1);  // never issued
  users.release(UINT32_MAX);
  const uint32_t a = users.acquire("a");
  users.release(UserTable::kNoUser);
  users.release(a + 1);
  EXPECT_EQ(users.find("a"), a);
  users.release(a);
  // Extra releases of a freed id must not free it twice: two later users
  // would then share one id.
  users.release(a);
  users.release(a);
  const uint32_t x = users.acquire("x");
  const uint32_t y = users.acquire("y");
  const uint32_t z = users.acquire("z");
  EXPECT_NE(x, y);
  EXPECT_NE(y, z);
  EXPECT_NE(x, z);
  EXPECT_EQ(users.find("x"), x);
  EXPECT_EQ(users.find("y"), y);
  EXPECT_EQ(users.find("z"), z);
  EXPECT_EQ(users.size(), 3u);
}

TEST(UserTableTest, ManyUsers) {
  UserTable users;
  constexpr uint32_t kUsers = 100000;
  std::vector<uint32_t> ids(kUsers);
  std::set<uint32_t> distinct;
  for (uint32_t i = 0; i < kUsers; ++i) {
    const std::string name = "user-" + std::to_string(i);
    ids[i] = users.acquire(name);
    for (uint32_t k = 0; k < i % 3; ++k) ASSERT_EQ(users.acquire(name), ids[i]);
    ASSERT_NE(ids[i], UserTable::kNoUser);
    distinct.insert(ids[i]);
  }
  EXPECT_EQ(distinct.size(), kUsers);
  EXPECT_EQ(users.size(), kUsers);
  for (uint32_t i = 0; i < kUsers; ++i) ASSERT_EQ(users.find("user-" + std::to_string(i)), ids[i]);

  for (uint32_t i = 0; i < kUsers; ++i) {
    for (uint32_t k = 0; k <= i % 3; ++k) users.release(ids[i]);
  }
  EXPECT_EQ(users.size(), 0u);
  EXPECT_EQ(users.find("user-0"), UserTable::kNoUser);

  // New users reuse the freed ids: the table does not grow without bound.
  const uint32_t maxId = *distinct.rbegin();
  for (uint32_t i = 0; i < kUsers; ++i) {
    const uint32_t id = users.acquire("again-" + std::to_string(i));
    ASSERT_NE(id, UserTable::kNoUser);
    ASSERT_LE(id, maxId);
  }
  EXPECT_EQ(users.size(), kUsers);
}

TEST(UserTableTest, RandomizedAgainstRefcountModel) {
  std::mt19937_64 rng(99);
  UserTable users;
  std::map<std::string, uint32_t> refs;            // model
  std::unordered_map<std::string, uint32_t> idOf;  // ids handed out for live names
  for (int op = 0; op < 100000; ++op) {
    const std::string name = "n" + std::to_string(rng() % 300);
    auto it = refs.find(name);
    if (rng() % 2 == 0 || it == refs.end()) {
      const uint32_t id = users.acquire(name);
      ASSERT_NE(id, UserTable::kNoUser) << "op " << op;
      if (it != refs.end()) {
        ASSERT_EQ(id, idOf[name]) << "op " << op;
        ++it->second;
      } else {
        for (const auto& [other, otherId] : idOf) ASSERT_NE(otherId, id) << "op " << op << " " << other;
        refs[name] = 1;
        idOf[name] = id;
      }
    } else {
      users.release(idOf[name]);
      if (--it->second == 0) {
        refs.erase(it);
        idOf.erase(name);
      }
    }
    ASSERT_EQ(users.size(), refs.size()) << "op " << op;
    const auto found = idOf.find(name);
    ASSERT_EQ(users.find(name), found == idOf.end() ? UserTable::kNoUser : found->second) << "op " << op;
  }
}

}  // namespace
}  // namespace ssefanout
