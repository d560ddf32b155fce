// TopicIndex: which connections of one shard subscribe to which topics.
//
// A subscription is an exact topic ("chat/42") or a prefix pattern ending in
// "/*" ("chat/*") that matches every topic under the prefix ("chat/42",
// "chat/a/b"; not "chat" or "chat/" itself). Internal topics (status.hpp,
// isInternalTopic) are exact topics like any other. Connections are small dense
// integers (the registry slot, below kMaxConnections) chosen by the caller;
// per-connection arrays are sized to the largest one seen.
//
// match(topic) costs one hash lookup for the exact topic plus one per '/' in
// the topic (the candidate pattern prefixes), whatever the number of topics
// and subscribers in the index; each subscriber is visited once even when
// several of its subscriptions match. Subscribe and unsubscribe find an
// existing subscription by scanning the smaller of the topic's bucket and the
// connection's own list (bounded by the cap); removal itself is O(1) (buckets
// keep back-pointers for swap-removal).
//
// Topics are often chosen by clients: the maps hash them with KeyedHash
// (keyed_hash.hpp, a per-process random key), so no one can precompute topics
// that share a bucket and turn those lookups linear.
//
// Owned by one thread; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keyed_hash.hpp"
#include "status.hpp"

namespace ssefanout {

class TopicIndex {
 public:
  static constexpr uint32_t kDefaultMaxSubscriptions = 1000;
  // Equal to Registry::kMaxSlots (test/cpp/core/topic_index_test.cpp checks).
  static constexpr uint32_t kMaxConnections = uint32_t{1} << 21;

  explicit TopicIndex(uint32_t maxSubscriptionsPerConnection = kDefaultMaxSubscriptions)
      : maxSubs_(maxSubscriptionsPerConnection) {}
  TopicIndex(const TopicIndex&) = delete;
  TopicIndex& operator=(const TopicIndex&) = delete;

  static bool isPattern(std::string_view topic) { return topic.size() >= 2 && topic.substr(topic.size() - 2) == "/*"; }

  // Idempotent: subscribing twice to the same topic is one subscription.
  // kUnknownConnection when conn >= kMaxConnections.
  Status subscribe(uint32_t conn, std::string_view topic);
  // Returns whether the subscription existed.
  bool unsubscribe(uint32_t conn, std::string_view topic);
  void unsubscribeAll(uint32_t conn);

  // Calls visit(conn) once for every connection with a subscription matching topic.
  template <typename F>
  void match(std::string_view topic, F&& visit);

  size_t subscriptionCount(uint32_t conn) const { return conn < subs_.size() ? subs_[conn].size() : 0; }
  size_t totalSubscriptions() const { return total_; }
  size_t topicCount() const { return exact_.size() + patterns_.size(); }
  // The connection's subscriptions, patterns with their "/*".
  std::vector<std::string> subscriptionsOf(uint32_t conn) const;

 private:
  struct Member {
    uint32_t conn;
    uint32_t sub;  // index into subs_[conn]
  };
  struct Bucket {
    std::vector<Member> members;
  };
  using Map = std::unordered_map<std::string, Bucket, KeyedHash, std::equal_to<>>;
  struct Sub {
    Map::iterator bucket;  // node-based map: stays valid across rehashing
    uint32_t pos;          // index into bucket->second.members
    bool pattern;
  };

  void removeSub(uint32_t conn, uint32_t subIndex);
  // Index in subs_[conn] of conn's subscription in bucket it, or -1.
  int64_t findSub(uint32_t conn, Map::const_iterator it, bool pattern) const;
  template <typename F>
  void visitBucket(const Map& map, std::string_view key, F& visit);

  uint32_t maxSubs_;
  Map exact_;
  Map patterns_;                        // key: the prefix including its trailing '/'
  std::vector<std::vector<Sub>> subs_;  // per connection
  std::vector<uint64_t> seen_;          // per connection: last match epoch
  uint64_t epoch_ = 0;
  size_t total_ = 0;
};

template <typename F>
void TopicIndex::visitBucket(const Map& map, std::string_view key, F& visit) {
  auto it = map.find(key);
  if (it == map.end()) return;
  for (const Member& m : it->second.members) {
    if (seen_[m.conn] == epoch_) continue;
    seen_[m.conn] = epoch_;
    visit(m.conn);
  }
}

template <typename F>
void TopicIndex::match(std::string_view topic, F&& visit) {
  ++epoch_;
  visitBucket(exact_, topic, visit);
  if (patterns_.empty()) return;
  for (size_t i = 0; i < topic.size(); ++i) {
    if (topic[i] == '/' && i + 1 < topic.size()) visitBucket(patterns_, topic.substr(0, i + 1), visit);
  }
}

}  // namespace ssefanout
