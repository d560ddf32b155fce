// PbIndex: the PocketBase realtime subscriptions of a hub, grouped so that a
// record event costs one rule/filter evaluation and one encode per distinct
// subscription key, not per connection.
//
// A key is one subscription string as posted ("posts/*?options=..."): its
// base ("posts/*"), its options, its compiled filter and field list. The
// connections holding a key are split by identity (guest, or one auth
// record) into groups; every group is an internal topic of the topic index
// ("\0pb:<key>:<auth>" in topic space 0, see status.hpp and setTopicSpace()),
// so the I/O threads fan a frame out to
// a group with the index they already have. Rules depend on the identity,
// filters and projections on the key: a group receives a key's frame when
// the collection rule passes for its identity and the key's filter passes.
// As in PocketBase, a key whose options.query filter or sort text holds
// "@request." or "@collection." reaches superusers only (a client could
// otherwise probe its own auth record, e.g. a password hash, with LIKE).
//
// Key and auth numbers are never reused, so a topic name can never come to
// mean another group while a stale subscription is still on its way.
//
// Owned by the JS thread (one per NativeRealtime, src/addon/realtime_wrap); not thread-safe. Frames it makes
// are shared with the I/O threads through their refcounts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "delivery.hpp"
#include "frame.hpp"
#include "keyed_hash.hpp"
#include "pb_field_picker.hpp"
#include "pb_filter.hpp"
#include "pb_subscription.hpp"
#include "simdjson.h"
#include "status.hpp"

namespace ssefanout::pb {

// A frame for every connection subscribed to `topic` (an internal topic).
using Delivery = ssefanout::Delivery;

// The collection of a record event: rules are PocketBase filter strings;
// nullptr = superusers only, "" = everyone.
struct Collection {
  std::string_view name;
  std::string_view id;
  const std::string* listRule = nullptr;
  const std::string* viewRule = nullptr;
};

// A subscription that will receive no record events, and why.
struct SubscriptionError {
  std::string subscription;
  std::string message;
};

// Budgets against memory amplification and evaluation cost, checked by
// setSubscriptions() for the whole new set at once (a refused set changes
// nothing). A key's bytes are an estimate of what it holds: its strings,
// options, compiled filter and field list, and its table entries
// (estimateBytes, within 2% of the heap measured for filtered keys: a plain
// "posts/<15-char id>" about 0.4 KB, a 2.5 KB subscription 7 to 23 KB as its
// filter repeats or varies its operands). A key shared
// by several connections counts fully for each. Filter nodes bound the work
// one client adds to a broadcast: each comparison may scan a field of the
// record once (LIKE is linear, pb_like.hpp), so 200 nodes on a 10 KB field
// are about 200 scans of 10 KB.
//
// The per-client budgets are also summed over every connection of one owner
// (the client's address): one address may open many streams (the hub's
// maxConnectionsPerIp, 256 by default), and without the *PerIp sums each
// would bring a full client budget (256 x 100 keys of 10 KB frames held
// the JS thread 1.2 s per broadcast). Keys count per holder there too.
// A NAT'd office shares one address: the *PerIp budgets are a few clients'
// worth, which covers dozens of SDK apps (fewer than 20 subscriptions each).
//
// Hub-wide, what it takes to fill each budget with the defaults (keys only
// count once there, so each address must bring distinct ones):
// maxDistinctSubscriptions 1,000,000 / maxSubscriptionsPerIp 5,000 = 200
// addresses; maxCompiledBytes 256 MiB / maxCompiledBytesPerIp 4 MiB = 64.
struct PbLimits {
  uint32_t maxOptionSubscriptionsPerClient = 100;  // distinct subscriptions holding '?'
  uint32_t maxFilterNodesPerClient = 200;          // nodes of the filters a client holds
  uint64_t maxCompiledBytesPerClient = 1 << 20;    // bytes of the keys a client holds
  uint64_t maxDistinctSubscriptions = 1000000;     // keys in the index
  uint64_t maxCompiledBytes = 256u << 20;          // bytes of every key
  // Sums over the connections of one owner: 2x a client's option keys and
  // filter nodes (the work one address adds to a broadcast stays ~2x a
  // client's, a few ms on a 10 KB record); 4x its bytes (200 keys of up to
  // 20 KB); 5 clients' worth of keys with or without options (memory only:
  // a record event reaches at most three plain keys per collection name).
  uint32_t maxOptionSubscriptionsPerIp = 200;
  uint32_t maxFilterNodesPerIp = 400;
  uint64_t maxCompiledBytesPerIp = 4u << 20;
  uint64_t maxSubscriptionsPerIp = 5000;
};

// What a connection or an owner holds, in the units of the budgets.
struct PbUsage {
  uint64_t keys = 0;         // distinct subscriptions
  uint64_t optionKeys = 0;   // of them, holding '?'
  uint64_t filterNodes = 0;  // Filter::nodeCount() of their filters
  uint64_t bytes = 0;        // estimateBytes() of their keys

  PbUsage& operator+=(const PbUsage& o) {
    keys += o.keys;
    optionKeys += o.optionKeys;
    filterNodes += o.filterNodes;
    bytes += o.bytes;
    return *this;
  }
  PbUsage& operator-=(const PbUsage& o) {
    keys -= o.keys;
    optionKeys -= o.optionKeys;
    filterNodes -= o.filterNodes;
    bytes -= o.bytes;
    return *this;
  }
  bool operator==(const PbUsage& o) const {
    return keys == o.keys && optionKeys == o.optionKeys && filterNodes == o.filterNodes && bytes == o.bytes;
  }
};

class PbIndex {
 public:
  static constexpr uint32_t kGuest = 0;
  // Cached compiled rules; the cache starts over past this many.
  static constexpr size_t kMaxCachedRules = 1024;

  PbIndex();
  explicit PbIndex(const PbLimits& limits) : limits_(limits) {}
  PbIndex(const PbIndex&) = delete;
  PbIndex& operator=(const PbIndex&) = delete;

  // Replaces conn's subscriptions and identity. `owner` names the client's
  // address: the budgets *PerIp sum over the connections of one owner (an
  // empty owner is an owner like any other). `identity` is empty for a
  // guest, else a stable name of the auth record ("<collectionId>/<id>");
  // authJson is that record (an object), superuser whether it is one. Puts
  // in *add/*remove the internal topics the connection's shard must
  // subscribe/unsubscribe, and in *errors the subscriptions whose filter or
  // fields do not compile. Both are kept: one with a bad filter receives
  // only custom messages, one with bad fields the whole record (PocketBase's
  // behaviour in both cases).
  // Strings must be single-line (checked by the caller). Returns
  // kInvalidFilter when authJson is not a JSON object, and a budget's status
  // (kTooManyOptionSubscriptions, kClientFilterBudget, kClientMemoryBudget,
  // then kTooManyIpOptionSubscriptions, kIpFilterBudget, kIpMemoryBudget,
  // kTooManyIpSubscriptions, then kTooManyDistinctSubscriptions,
  // kSubscriptionMemoryBudget) when the new set would pass one of the
  // limits; nothing changes then. An owner's sum counts the connection's new
  // set in place of its old one, and a sum the new set does not grow never
  // refuses it (a client may always shrink its set, even past a lowered
  // limit). The hub-wide budgets are checked before the connection's old
  // keys are released.
  Status setSubscriptions(uint64_t conn, std::string_view owner, std::string_view identity, std::string_view authJson,
                          bool superuser, const std::vector<std::string>& subs, std::vector<std::string>* add,
                          std::vector<std::string>* remove, std::vector<SubscriptionError>* errors);
  // The connection is gone (its shard dropped its topics already).
  void removeConnection(uint64_t conn);

  // A record event: parses recordJson once and appends a delivery per group
  // that may see it. Lone surrogate escapes (JSON.stringify's "\ud800")
  // become U+FFFD, as PocketBase's decoder makes them; integers beyond 64
  // bits are read as doubles (Go's float64), here and in auth records.
  // Returns kInvalidFilter with *error set when the record is not a JSON
  // object with a string "id" or a rule does not compile, kInvalidEvent
  // when the action is not create, update or delete.
  Status broadcastRecord(const Collection& collection, std::string_view action, std::string_view recordJson,
                         std::vector<Delivery>* out, std::string* error);
  // A custom message to every connection subscribed to exactly `subscription`.
  void publish(std::string_view subscription, std::string_view event, std::string_view data,
               std::vector<Delivery>* out);

  // Compiles (with the cache) a rule or filter; nullptr with *error set when
  // it does not compile.
  const Filter* rule(const std::string& expr, std::string* error);

  void setLimits(const PbLimits& limits) { limits_ = limits; }
  const PbLimits& limits() const { return limits_; }

  size_t keyCount() const { return keys_.size(); }
  uint64_t compiledBytes() const { return totalBytes_; }  // estimateBytes() of every key
  size_t connectionCount() const { return conns_.size(); }
  size_t authCount() const { return auths_.size(); }
  size_t ownerCount() const { return owners_.size(); }
  // What the connections of `owner` hold (zero for an unknown owner).
  PbUsage ownerUsage(std::string_view owner) const;
  size_t groupCount() const;
  // Entries examined by key and group bookkeeping (interning, joining,
  // leaving, releasing) since construction: constant per operation, so a
  // test can check that no path turned linear. Test-only.
  uint64_t bookkeepingSteps() const { return bookkeepingSteps_; }
  // Walks every table and checks that they agree (positions, group index,
  // reference counts, each connection's usage against its keys, each
  // owner's against its connections); false on the first disagreement.
  // O(everything), test-only.
  bool checkInvariants() const;

  // Several indexes may feed one hub (two Realtimes sharing it): each names
  // its groups in a topic space of its own, so that key and auth numbers
  // (which every index starts at 1) never make the same topic. Set before
  // the first subscription; space 0 is "\0pb:<key>:<auth>", space n
  // "\0pb<n>:<key>:<auth>".
  void setTopicSpace(uint64_t space) { space_ = space; }
  uint64_t topicSpace() const { return space_; }
  static std::string topicFor(uint64_t key, uint64_t auth, uint64_t space = 0);

 private:
  struct Group {
    uint64_t auth;
    uint32_t connections;
    std::string topic;  // topicFor(key, auth), made once
  };
  // What a subscription with ?options= holds; plain keys ("posts/*",
  // "posts/ID") have none.
  struct Query {
    SubscriptionOptions options;
    Filter filter;
    FieldPicker fields;
    std::string error;  // why the filter or the fields did not compile
  };
  static const Query kNoQuery;  // no options: always true, every field
  struct Key {
    uint64_t id = 0;
    std::string name;      // the subscription string: the event name of its frames
    std::string base;      // before the first '?'
    uint32_t basePos = 0;  // index in keysByBase_[base]
    uint32_t refs = 0;
    uint32_t bytes = 0;        // estimateBytes(): what each holder is charged
    uint32_t filterNodes = 0;  // of a filter that compiled
    bool hasQuery = false;     // the name holds '?' (counts against maxOptionSubscriptionsPerClient)
    bool valid = true;         // the filter compiled
    // The filter or sort names "@request." or "@collection.": only
    // superusers receive record events (PocketBase's
    // checkForSuperuserOnlyRuleFields, a plain substring test).
    bool superuserOnly = false;
    std::unique_ptr<Query> query;
    std::vector<Group> groups;
    const Query& q() const { return query ? *query : kNoQuery; }
  };
  struct Auth {
    uint64_t id = 0;
    std::string identity;
    bool superuser = false;
    uint32_t refs = 0;
    simdjson::dom::document doc;
    simdjson::dom::element root() const { return doc.root(); }
  };
  struct Owner {
    const std::string* name = nullptr;  // its key in owners_
    uint32_t connections = 0;           // entries of conns_ naming it
    PbUsage usage;                      // the sum of their usage
  };
  struct Conn {
    uint64_t auth = kGuest;
    Owner* owner = nullptr;      // never null in conns_
    PbUsage usage;               // of keys
    std::vector<uint64_t> keys;  // sorted
  };

  Key makeKey(std::string_view name) const;  // compiled, not interned
  static uint32_t estimateBytes(const Key& key);
  Key* internKey(Key&& fresh);
  void joinGroup(Key& key, uint64_t auth);
  void leaveGroup(Key& key, uint64_t auth);
  void releaseKey(uint64_t id);
  void releaseAuth(uint64_t id);
  Owner* internOwner(std::string_view name);
  void releaseOwner(Owner* owner);
  FrameRef encodeRecordFrame(const Key& key, simdjson::dom::element record, std::string_view action,
                             std::string_view recordJson);

  simdjson::dom::parser parser_;
  simdjson::dom::document record_;  // the record of the broadcast in progress
  std::string scratch_;
  JsonTextCache jsonText_;  // JSON values of the broadcast in progress, serialized once
  std::string repaired_;    // a record whose lone surrogates were replaced
  std::string widened_;     // a record whose integers beyond 64 bits were made doubles
  uint64_t space_ = 0;      // setTopicSpace()
  uint64_t nextKey_ = 1;
  uint64_t nextAuth_ = 1;
  // Client-chosen strings are hashed with a per-process random key
  // (keyed_hash.hpp), so no one can precompute colliding names.
  template <typename T>
  using StringMap = std::unordered_map<std::string, T, KeyedHash, std::equal_to<>>;
  struct GroupIdHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& g) const {
      uint64_t x = g.first * 0x9E3779B97F4A7C15ULL ^ (g.second + 0x632BE59BD9B4E019ULL);
      x ^= x >> 31;
      x *= 0xBF58476D1CE4E5B9ULL;
      return static_cast<size_t>(x ^ (x >> 29));
    }
  };

  std::unordered_map<uint64_t, Key> keys_;
  // Views of Key::name (a key's address is stable in keys_): the name is stored once.
  std::unordered_map<std::string_view, uint64_t, KeyedHash, std::equal_to<>> keyByName_;
  StringMap<std::vector<uint64_t>> keysByBase_;
  // (key, auth) -> index of its group in the key's groups.
  std::unordered_map<std::pair<uint64_t, uint64_t>, uint32_t, GroupIdHash> groupPos_;
  std::unordered_map<uint64_t, std::unique_ptr<Auth>> auths_;
  StringMap<uint64_t> authByIdentity_;
  std::unordered_map<uint64_t, Conn> conns_;
  // Client addresses, interned while a connection names them (a node's
  // address is stable, so a Conn holds a pointer).
  StringMap<Owner> owners_;
  StringMap<Filter> rules_;
  uint64_t bookkeepingSteps_ = 0;
  uint64_t totalBytes_ = 0;  // estimateBytes() of every key
  PbLimits limits_;
};

}  // namespace ssefanout::pb
