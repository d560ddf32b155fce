#include "pb_index.hpp"

#include <algorithm>

#include "pb_json.hpp"
#include "sse_encoder.hpp"

namespace ssefanout::pb {
namespace {

// simdjson copies its input with memcpy, which must not be given a null
// pointer even for 0 bytes; an empty string_view may hold one.
const char* bytesOf(std::string_view s) { return s.empty() ? "" : s.data(); }

template <typename T>
void swapRemove(std::vector<T>& v, size_t i) {
  v[i] = std::move(v.back());
  v.pop_back();
}

}  // namespace

PbIndex::PbIndex() = default;

std::string PbIndex::topicFor(uint64_t key, uint64_t auth, uint64_t space) {
  std::string t(1, kInternalTopicMark);
  t += "pb";
  if (space != 0) t += std::to_string(space);
  t += ':';
  t += std::to_string(key);
  t += ':';
  t += std::to_string(auth);
  return t;
}

size_t PbIndex::groupCount() const {
  size_t n = 0;
  for (const auto& [id, key] : keys_) n += key.groups.size();
  return n;
}

const Filter* PbIndex::rule(const std::string& expr, std::string* error) {
  auto it = rules_.find(expr);
  if (it != rules_.end()) return &it->second;
  Filter f;
  if (!Filter::compile(expr, &f, error)) return nullptr;
  // References into an unordered_map survive inserts, not clear(): callers
  // holding one make room first (broadcastRecord).
  if (rules_.size() >= kMaxCachedRules) rules_.clear();
  return &rules_.emplace(expr, std::move(f)).first->second;
}

const PbIndex::Query PbIndex::kNoQuery{};

PbIndex::Key PbIndex::makeKey(std::string_view name) const {
  Key key;
  key.name = std::string(name);
  Subscription sub = parseSubscription(key.name);
  key.base = std::string(sub.base);
  key.hasQuery = key.name.find('?') != std::string::npos;
  if (!sub.options.empty()) {
    key.query = std::make_unique<Query>();
    Query& q = *key.query;
    q.options = std::move(sub.options);
    for (std::string_view param : {"filter", "sort"}) {
      const std::string* v = q.options.queryValue(param);
      if (v && (v->find("@request.") != std::string::npos || v->find("@collection.") != std::string::npos)) {
        key.superuserOnly = true;
      }
    }
    std::string err;
    const std::string* filter = q.options.queryValue("filter");
    if (!Filter::compile(filter ? *filter : std::string_view(), &q.filter, &err)) {
      key.valid = false;
      q.error = "filter: " + err;
    }
    const std::string* fields = q.options.queryValue("fields");
    if (key.valid && !FieldPicker::compile(fields ? *fields : std::string_view(), &q.fields, &err)) {
      // PocketBase sends the whole record when `fields` does not parse; so do
      // we, and say so.
      q.error = "fields: " + err + " (the whole record is sent)";
    }
    if (key.valid) key.filterNodes = static_cast<uint32_t>(q.filter.nodeCount());
  }
  key.bytes = estimateBytes(key);
  return key;
}

namespace {

// Heap bytes of a string beyond its object (libstdc++ keeps 15 in place).
size_t heapOf(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

// What a hash-table node costs beyond its value: the next pointer, the cached
// hash and malloc's header and rounding.
constexpr size_t kNodeOverhead = 32;

// What one selected name costs a FieldPicker beyond the name's own bytes: its
// node (the child list and the name string objects) with malloc's header.
constexpr size_t kFieldNodeBytes = 64;

size_t optionBytes(const std::vector<std::pair<std::string, std::string>>& entries) {
  size_t b = entries.capacity() * sizeof(entries[0]);
  for (const auto& [name, value] : entries) b += heapOf(name) + heapOf(value);
  return b;
}

}  // namespace

uint32_t PbIndex::estimateBytes(const Key& key) {
  size_t b = sizeof(Key) + sizeof(uint64_t) + kNodeOverhead;         // its node in keys_
  b += sizeof(std::string_view) + sizeof(uint64_t) + kNodeOverhead;  // keyByName_
  b += sizeof(uint64_t);                                             // its slot in keysByBase_
  b += heapOf(key.name) + heapOf(key.base);
  // Per holder: its group (with its topic), the group's groupPos_ entry and
  // the id in the connection's key list.
  b += sizeof(Group) + 2 * sizeof(uint64_t) + sizeof(uint32_t) + kNodeOverhead + sizeof(uint64_t);
  if (key.query) {
    const Query& q = *key.query;
    b += sizeof(Query) - sizeof(Filter) + q.filter.memoryBytes() + heapOf(q.error);
    b += optionBytes(q.options.query) + optionBytes(q.options.headers);
    // FieldPicker: a node (child list and name) per selected name.
    if (const std::string* fields = q.options.queryValue("fields")) {
      const auto separators =
          std::count_if(fields->begin(), fields->end(), [](char c) { return c == ',' || c == '.'; });
      b += fields->size() + kFieldNodeBytes * (1 + static_cast<size_t>(separators));
    }
  }
  return static_cast<uint32_t>(std::min<size_t>(b, UINT32_MAX));
}

PbIndex::Key* PbIndex::internKey(Key&& fresh) {
  fresh.id = nextKey_++;
  const uint64_t id = fresh.id;
  ++bookkeepingSteps_;
  auto& ids = keysByBase_[fresh.base];
  fresh.basePos = static_cast<uint32_t>(ids.size());
  ids.push_back(id);
  totalBytes_ += fresh.bytes;
  Key& stored = keys_.emplace(id, std::move(fresh)).first->second;
  keyByName_.emplace(stored.name, id);
  return &stored;
}

void PbIndex::joinGroup(Key& key, uint64_t auth) {
  ++key.refs;
  ++bookkeepingSteps_;
  auto [it, fresh] = groupPos_.try_emplace({key.id, auth}, static_cast<uint32_t>(key.groups.size()));
  if (!fresh) {
    ++key.groups[it->second].connections;
    return;
  }
  key.groups.push_back(Group{auth, 1, topicFor(key.id, auth, space_)});
}

void PbIndex::leaveGroup(Key& key, uint64_t auth) {
  --key.refs;
  ++bookkeepingSteps_;
  auto it = groupPos_.find({key.id, auth});
  if (it == groupPos_.end()) return;
  const uint32_t i = it->second;
  if (--key.groups[i].connections > 0) return;
  groupPos_.erase(it);
  if (i + 1 != key.groups.size()) groupPos_[{key.id, key.groups.back().auth}] = i;
  swapRemove(key.groups, i);
}

void PbIndex::releaseKey(uint64_t id) {
  auto it = keys_.find(id);
  if (it == keys_.end() || it->second.refs > 0) return;
  Key& key = it->second;
  ++bookkeepingSteps_;
  auto base = keysByBase_.find(key.base);
  if (base != keysByBase_.end()) {
    auto& ids = base->second;
    const uint32_t pos = key.basePos;
    if (pos + 1 != ids.size()) keys_.at(ids.back()).basePos = pos;
    swapRemove(ids, pos);
    if (ids.empty()) keysByBase_.erase(base);
  }
  keyByName_.erase(key.name);
  totalBytes_ -= key.bytes;
  keys_.erase(it);
}

bool PbIndex::checkInvariants() const {
  size_t groups = 0;
  for (const auto& [id, key] : keys_) {
    auto base = keysByBase_.find(key.base);
    if (base == keysByBase_.end() || key.basePos >= base->second.size() || base->second[key.basePos] != id) {
      return false;
    }
    auto name = keyByName_.find(key.name);
    if (name == keyByName_.end() || name->second != id) return false;
    uint32_t refs = 0;
    for (uint32_t i = 0; i < key.groups.size(); ++i) {
      auto pos = groupPos_.find({id, key.groups[i].auth});
      if (pos == groupPos_.end() || pos->second != i || key.groups[i].connections == 0) return false;
      refs += key.groups[i].connections;
    }
    if (refs != key.refs) return false;
    groups += key.groups.size();
  }
  size_t listed = 0;
  for (const auto& [base, ids] : keysByBase_) listed += ids.size();
  if (listed != keys_.size() || keyByName_.size() != keys_.size() || groupPos_.size() != groups ||
      authByIdentity_.size() != auths_.size()) {
    return false;
  }
  std::unordered_map<const Owner*, std::pair<uint32_t, PbUsage>> owned;
  for (const auto& [id, conn] : conns_) {
    PbUsage usage;
    for (uint64_t k : conn.keys) {
      auto key = keys_.find(k);
      if (key == keys_.end()) return false;
      usage += PbUsage{1, key->second.hasQuery, key->second.filterNodes, key->second.bytes};
    }
    if (!conn.owner || !(usage == conn.usage)) return false;
    auto& [connections, sum] = owned[conn.owner];
    ++connections;
    sum += usage;
  }
  if (owned.size() != owners_.size()) return false;
  for (const auto& [name, owner] : owners_) {
    auto it = owned.find(&owner);
    if (it == owned.end() || owner.name != &name || it->second.first != owner.connections ||
        !(it->second.second == owner.usage)) {
      return false;
    }
  }
  return true;
}

PbUsage PbIndex::ownerUsage(std::string_view owner) const {
  auto it = owners_.find(owner);
  return it == owners_.end() ? PbUsage{} : it->second.usage;
}

PbIndex::Owner* PbIndex::internOwner(std::string_view name) {
  ++bookkeepingSteps_;
  auto it = owners_.find(name);
  if (it == owners_.end()) {
    it = owners_.emplace(std::string(name), Owner{}).first;
    it->second.name = &it->first;
  }
  return &it->second;
}

void PbIndex::releaseOwner(Owner* owner) {
  ++bookkeepingSteps_;
  if (--owner->connections == 0) owners_.erase(*owner->name);
}

void PbIndex::releaseAuth(uint64_t id) {
  if (id == kGuest) return;
  auto it = auths_.find(id);
  if (it == auths_.end() || --it->second->refs > 0) return;
  authByIdentity_.erase(it->second->identity);
  auths_.erase(it);
}

Status PbIndex::setSubscriptions(uint64_t connId, std::string_view ownerName, std::string_view identity,
                                 std::string_view authJson, bool superuser, const std::vector<std::string>& subs,
                                 std::vector<std::string>* add, std::vector<std::string>* remove,
                                 std::vector<SubscriptionError>* errors) {
  // Everything is checked before anything changes: the auth record parses,
  // the new set fits the budgets.
  std::unique_ptr<Auth> parsedAuth;
  if (!identity.empty()) {
    parsedAuth = std::make_unique<Auth>();
    simdjson::dom::element root;
    auto e = parser_.parse_into_document(parsedAuth->doc, bytesOf(authJson), authJson.size()).get(root);
    if (e == simdjson::STRING_ERROR || e == simdjson::BIGINT_ERROR || e == simdjson::NUMBER_ERROR) {
      std::string_view text = authJson;
      bool changed = false;
      if (replaceLoneSurrogates(text, &repaired_)) {
        text = repaired_;
        changed = true;
      }
      if (widenBigIntegers(text, &widened_)) {
        text = widened_;
        changed = true;
      }
      if (changed) e = parser_.parse_into_document(parsedAuth->doc, bytesOf(text), text.size()).get(root);
    }
    if (e != simdjson::SUCCESS || !root.is_object()) return Status::kInvalidFilter;
  }

  // The distinct subscriptions in order: interned keys, or keys compiled now
  // and interned only when the whole set fits.
  struct Wanted {
    const Key* existing;
    size_t fresh;  // index in freshKeys when existing is null
  };
  std::vector<Wanted> wanted;
  std::vector<Key> freshKeys;
  std::unordered_map<std::string_view, size_t, KeyedHash, std::equal_to<>> seen;
  PbUsage usage;
  uint64_t freshBytes = 0;
  wanted.reserve(subs.size());
  for (const std::string& s : subs) {
    if (s.empty() || !seen.emplace(s, wanted.size()).second) continue;
    const Key* key;
    auto found = keyByName_.find(s);
    if (found != keyByName_.end()) {
      key = &keys_.at(found->second);
      wanted.push_back({key, 0});
    } else {
      freshKeys.push_back(makeKey(s));
      key = &freshKeys.back();
      freshBytes += key->bytes;
      wanted.push_back({nullptr, freshKeys.size() - 1});
    }
    usage += PbUsage{1, key->hasQuery, key->filterNodes, key->bytes};
  }
  if (usage.optionKeys > limits_.maxOptionSubscriptionsPerClient) return Status::kTooManyOptionSubscriptions;
  if (usage.filterNodes > limits_.maxFilterNodesPerClient) return Status::kClientFilterBudget;
  if (usage.bytes > limits_.maxCompiledBytesPerClient) return Status::kClientMemoryBudget;

  // The owner's sums with this set in place of the connection's old one.
  auto connIt = conns_.find(connId);
  const Conn* oldConn = connIt == conns_.end() ? nullptr : &connIt->second;
  auto ownerIt = owners_.find(ownerName);
  const PbUsage before = ownerIt == owners_.end() ? PbUsage{} : ownerIt->second.usage;
  PbUsage after = before;
  if (oldConn && ownerIt != owners_.end() && oldConn->owner == &ownerIt->second) after -= oldConn->usage;
  after += usage;
  auto passes = [](uint64_t sum, uint64_t was, uint64_t limit) { return sum > limit && sum > was; };
  if (passes(after.optionKeys, before.optionKeys, limits_.maxOptionSubscriptionsPerIp)) {
    return Status::kTooManyIpOptionSubscriptions;
  }
  if (passes(after.filterNodes, before.filterNodes, limits_.maxFilterNodesPerIp)) return Status::kIpFilterBudget;
  if (passes(after.bytes, before.bytes, limits_.maxCompiledBytesPerIp)) return Status::kIpMemoryBudget;
  if (passes(after.keys, before.keys, limits_.maxSubscriptionsPerIp)) return Status::kTooManyIpSubscriptions;
  if (keys_.size() + freshKeys.size() > limits_.maxDistinctSubscriptions) return Status::kTooManyDistinctSubscriptions;
  if (totalBytes_ + freshBytes > limits_.maxCompiledBytes) return Status::kSubscriptionMemoryBudget;

  uint64_t authId = kGuest;
  if (parsedAuth) {
    auto known = authByIdentity_.find(identity);
    if (known != authByIdentity_.end()) {
      // The same identity with a fresher record (PocketBase keeps the latest).
      Auth& a = *auths_.at(known->second);
      a.doc = std::move(parsedAuth->doc);
      a.superuser = superuser;
      authId = a.id;
    } else {
      parsedAuth->id = nextAuth_++;
      parsedAuth->identity = std::string(identity);
      parsedAuth->superuser = superuser;
      authId = parsedAuth->id;
      authByIdentity_.emplace(parsedAuth->identity, authId);
      auths_.emplace(authId, std::move(parsedAuth));
    }
  }

  std::vector<uint64_t> keys;
  keys.reserve(wanted.size());
  for (const Wanted& w : wanted) {
    const Key* key = w.existing ? w.existing : internKey(std::move(freshKeys[w.fresh]));
    if (errors && !key->q().error.empty()) errors->push_back({key->name, key->q().error});
    keys.push_back(key->id);
  }
  std::sort(keys.begin(), keys.end());

  Conn& conn = conns_[connId];
  // The owner's sums move with the connection's (interned only now: a
  // refused set leaves no owner behind).
  Owner* owner = internOwner(ownerName);
  if (conn.owner) {
    conn.owner->usage -= conn.usage;
    if (conn.owner != owner) {
      releaseOwner(conn.owner);
      conn.owner = nullptr;
    }
  }
  if (!conn.owner) {
    conn.owner = owner;
    ++owner->connections;
  }
  conn.usage = usage;
  owner->usage += usage;
  // Join before leaving, so a key in both sets never drops to zero.
  for (uint64_t k : keys) joinGroup(keys_.at(k), authId);
  if (authId != kGuest) ++auths_.at(authId)->refs;
  for (uint64_t k : conn.keys) leaveGroup(keys_.at(k), conn.auth);

  if (authId == conn.auth) {
    std::vector<uint64_t> gone, fresh;
    std::set_difference(conn.keys.begin(), conn.keys.end(), keys.begin(), keys.end(), std::back_inserter(gone));
    std::set_difference(keys.begin(), keys.end(), conn.keys.begin(), conn.keys.end(), std::back_inserter(fresh));
    for (uint64_t k : gone) remove->push_back(topicFor(k, conn.auth, space_));
    for (uint64_t k : fresh) add->push_back(topicFor(k, authId, space_));
  } else {
    for (uint64_t k : conn.keys) remove->push_back(topicFor(k, conn.auth, space_));
    for (uint64_t k : keys) add->push_back(topicFor(k, authId, space_));
  }
  std::vector<uint64_t> old = std::move(conn.keys);
  const uint64_t oldAuth = conn.auth;
  conn.keys = std::move(keys);
  conn.auth = authId;
  for (uint64_t k : old) releaseKey(k);
  releaseAuth(oldAuth);
  if (conn.keys.empty() && conn.auth == kGuest) {
    releaseOwner(conn.owner);
    conns_.erase(connId);
  }
  return Status::kOk;
}

void PbIndex::removeConnection(uint64_t connId) {
  auto it = conns_.find(connId);
  if (it == conns_.end()) return;
  Conn conn = std::move(it->second);
  conns_.erase(it);
  for (uint64_t k : conn.keys) leaveGroup(keys_.at(k), conn.auth);
  for (uint64_t k : conn.keys) releaseKey(k);
  releaseAuth(conn.auth);
  conn.owner->usage -= conn.usage;
  releaseOwner(conn.owner);
}

FrameRef PbIndex::encodeRecordFrame(const Key& key, simdjson::dom::element record, std::string_view action,
                                    std::string_view recordJson) {
  // PocketBase's message: {"record":...,"action":"..."}, record first.
  scratch_.clear();
  scratch_ += "{\"record\":";
  if (key.q().fields.all()) {
    scratch_ += recordJson;
  } else {
    key.q().fields.write(record, &scratch_);
  }
  scratch_ += ",\"action\":\"";
  scratch_ += action;
  scratch_ += "\"}";
  EventFields ev;
  ev.compact = true;
  ev.event = key.name;  // single-line: checked when subscribed
  ev.data = scratch_;
  Frame* f = Frame::allocate(encodedSize(ev));
  encodeInto(ev, f->mutableData());
  return FrameRef(f);
}

Status PbIndex::broadcastRecord(const Collection& collection, std::string_view action, std::string_view recordJson,
                                std::vector<Delivery>* out, std::string* error) {
  if (action != "create" && action != "update" && action != "delete") {
    *error = "action must be create, update or delete";
    return Status::kInvalidEvent;
  }
  if (rules_.size() + 2 > kMaxCachedRules) rules_.clear();
  const Filter* list = nullptr;
  const Filter* view = nullptr;
  if (collection.listRule && !(list = rule(*collection.listRule, error))) {
    *error = "listRule: " + *error;
    return Status::kInvalidFilter;
  }
  if (collection.viewRule && !(view = rule(*collection.viewRule, error))) {
    *error = "viewRule: " + *error;
    return Status::kInvalidFilter;
  }
  simdjson::dom::element record;
  auto e = parser_.parse(bytesOf(recordJson), recordJson.size()).get(record);
  if (e == simdjson::STRING_ERROR || e == simdjson::BIGINT_ERROR || e == simdjson::NUMBER_ERROR) {
    // Read as Go reads it. The frame carries the record as given, but for
    // lone surrogates (which PocketBase would send as U+FFFD).
    bool changed = false;
    if (replaceLoneSurrogates(recordJson, &repaired_)) {
      recordJson = repaired_;
      changed = true;
    }
    std::string_view parsed = recordJson;
    if (widenBigIntegers(recordJson, &widened_)) {
      parsed = widened_;
      changed = true;
    }
    if (changed) e = parser_.parse(bytesOf(parsed), parsed.size()).get(record);
  }
  if (e != simdjson::SUCCESS) {
    *error = std::string("record is not valid JSON: ") + simdjson::error_message(e);
    return Status::kInvalidFilter;
  }
  std::string_view recordId;
  if (!record.is_object() || record["id"].get_string().get(recordId) != simdjson::SUCCESS) {
    *error = "record must be a JSON object with a string id";
    return Status::kInvalidFilter;
  }

  // The keys a record event reaches, as PocketBase lists them: one record by
  // name or id (view rule), the whole collection (list rule), and the
  // deprecated bare collection name (list rule).
  struct Target {
    std::string base;
    const Filter* rule;
  };
  std::vector<Target> targets;
  auto addTarget = [&](std::string base, const Filter* r) {
    for (const Target& t : targets) {
      if (t.base == base) return;
    }
    targets.push_back({std::move(base), r});
  };
  for (std::string_view c : {collection.name, collection.id}) {
    if (c.empty()) continue;
    addTarget(std::string(c) + "/" + std::string(recordId), view);
    addTarget(std::string(c) + "/*", list);
    addTarget(std::string(c), list);
  }

  // Texts of JSON values are kept for this record only (its document is
  // reused by the next parse).
  jsonText_.clear();
  for (const Target& target : targets) {
    auto it = keysByBase_.find(target.base);
    if (it == keysByBase_.end()) continue;
    for (uint64_t keyId : it->second) {
      const Key& key = keys_.at(keyId);
      if (!key.valid) continue;
      FrameRef frame;
      // Rules and filters that do not read @request.auth give every group
      // of the key the same answer: evaluated once.
      int ruleOnce = -1;
      int filterOnce = -1;
      for (const Group& group : key.groups) {
        const uint64_t authId = group.auth;
        const Auth* auth = authId == kGuest ? nullptr : auths_.at(authId).get();
        simdjson::dom::element authRoot;
        EvalContext ctx;
        ctx.record = record;
        if (auth) {
          authRoot = auth->root();
          ctx.auth = &authRoot;
        }
        ctx.options = &key.q().options;
        ctx.jsonText = &jsonText_;
        bool ok;
        if (auth && auth->superuser) {
          ok = true;
        } else if (key.superuserOnly || !target.rule) {
          ok = false;  // a null rule or a filter naming @request./@collection.: superusers only
        } else if (target.rule->usesAuth()) {
          ok = target.rule->evaluate(ctx);
        } else {
          if (ruleOnce < 0) ruleOnce = target.rule->evaluate(ctx);
          ok = ruleOnce;
        }
        const Filter& filter = key.q().filter;
        if (ok && !filter.alwaysTrue()) {
          if (filter.usesAuth()) {
            ok = filter.evaluate(ctx);
          } else {
            if (filterOnce < 0) filterOnce = filter.evaluate(ctx);
            ok = filterOnce;
          }
        }
        if (!ok) continue;
        if (!frame) frame = encodeRecordFrame(key, record, action, recordJson);
        out->push_back({group.topic, frame});
      }
    }
  }
  jsonText_.clear();
  return Status::kOk;
}

void PbIndex::publish(std::string_view subscription, std::string_view event, std::string_view data,
                      std::vector<Delivery>* out) {
  auto it = keyByName_.find(subscription);
  if (it == keyByName_.end()) return;
  const Key& key = keys_.at(it->second);
  EventFields ev;
  ev.compact = true;
  ev.event = event;
  ev.data = data;
  FrameRef frame;
  if (encodeEvent(ev, &frame) != Status::kOk) return;
  for (const Group& group : key.groups) out->push_back({group.topic, frame});
}

}  // namespace ssefanout::pb
