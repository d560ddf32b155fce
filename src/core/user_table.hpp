// UserTable: interns user names into small integers, with reference counts.
//
// Connections accepted for a user carry its integer; a publish restricted to
// users carries the integers of those that have connections, so the I/O
// threads compare integers, not strings. An entry lives while a connection
// references it. Id 0 means "no user". Names may come from clients: they are
// hashed with KeyedHash (keyed_hash.hpp), so no one can precompute colliding ones.
//
// Owned by the JS thread; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keyed_hash.hpp"

namespace ssefanout {

class UserTable {
 public:
  static constexpr uint32_t kNoUser = 0;

  // Returns the user's id, creating it; adds one reference.
  uint32_t acquire(std::string_view name);
  // Drops one reference; forgets the user at zero.
  void release(uint32_t id);
  // The user's id, or kNoUser when no connection has that user.
  uint32_t find(std::string_view name) const;
  size_t size() const { return byName_.size(); }

 private:
  struct Entry {
    std::string name;
    uint32_t refs = 0;
  };
  std::unordered_map<std::string, uint32_t, KeyedHash, std::equal_to<>> byName_;
  std::vector<Entry> entries_{1};  // index 0 unused (kNoUser)
  std::vector<uint32_t> free_;
};

}  // namespace ssefanout
