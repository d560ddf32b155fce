#include "topic_index.hpp"

namespace ssefanout {

Status TopicIndex::subscribe(uint32_t conn, std::string_view topic) {
  // Guards the resize below: conn + 1 wraps to 0 at UINT32_MAX, and a huge conn
  // would size the per-connection arrays to gigabytes.
  if (conn >= kMaxConnections) return Status::kUnknownConnection;
  Status s = validateIndexTopic(topic);
  if (s != Status::kOk) return s;
  const bool pattern = isPattern(topic);
  // A pattern is stored under its prefix with the trailing '/': "chat/*" -> "chat/".
  std::string_view key = pattern ? topic.substr(0, topic.size() - 1) : topic;
  Map& map = pattern ? patterns_ : exact_;

  if (conn >= subs_.size()) {
    subs_.resize(conn + 1);
    seen_.resize(conn + 1, 0);
  }
  std::vector<Sub>& mine = subs_[conn];
  auto it = map.find(key);
  if (it != map.end() && findSub(conn, it, pattern) >= 0) return Status::kOk;
  if (mine.size() >= maxSubs_) return Status::kTooManySubscriptions;
  if (it == map.end()) it = map.emplace(std::string(key), Bucket{}).first;
  auto& members = it->second.members;
  mine.push_back(Sub{it, static_cast<uint32_t>(members.size()), pattern});
  members.push_back(Member{conn, static_cast<uint32_t>(mine.size() - 1)});
  ++total_;
  return Status::kOk;
}

int64_t TopicIndex::findSub(uint32_t conn, Map::const_iterator it, bool pattern) const {
  // Scan the smaller side: a popular topic has many members, a busy connection
  // many subscriptions. `it` comes from the map `pattern` selects, so a member
  // of its bucket is necessarily a subscription of that kind.
  const std::vector<Sub>& mine = subs_[conn];
  const std::vector<Member>& members = it->second.members;
  if (members.size() < mine.size()) {
    for (const Member& m : members) {
      if (m.conn == conn) return m.sub;
    }
    return -1;
  }
  for (uint32_t i = 0; i < mine.size(); ++i) {
    if (mine[i].pattern == pattern && mine[i].bucket == it) return i;
  }
  return -1;
}

void TopicIndex::removeSub(uint32_t conn, uint32_t subIndex) {
  std::vector<Sub>& mine = subs_[conn];
  Sub sub = mine[subIndex];
  Map& map = sub.pattern ? patterns_ : exact_;
  auto& members = sub.bucket->second.members;

  // Swap-remove from the bucket and fix the moved member's back-pointer.
  Member moved = members.back();
  members[sub.pos] = moved;
  subs_[moved.conn][moved.sub].pos = sub.pos;
  members.pop_back();
  if (members.empty()) map.erase(sub.bucket);

  // Swap-remove from the connection's list and fix the moved sub's member.
  Sub last = mine.back();
  mine[subIndex] = last;
  mine.pop_back();
  if (subIndex < mine.size()) last.bucket->second.members[last.pos].sub = subIndex;
  --total_;
}

bool TopicIndex::unsubscribe(uint32_t conn, std::string_view topic) {
  if (conn >= subs_.size() || validateIndexTopic(topic) != Status::kOk) return false;
  const bool pattern = isPattern(topic);
  std::string_view key = pattern ? topic.substr(0, topic.size() - 1) : topic;
  const Map& map = pattern ? patterns_ : exact_;
  auto it = map.find(key);
  if (it == map.end()) return false;
  int64_t i = findSub(conn, it, pattern);
  if (i < 0) return false;
  removeSub(conn, static_cast<uint32_t>(i));
  return true;
}

void TopicIndex::unsubscribeAll(uint32_t conn) {
  if (conn >= subs_.size()) return;
  while (!subs_[conn].empty()) removeSub(conn, static_cast<uint32_t>(subs_[conn].size() - 1));
  subs_[conn].shrink_to_fit();
}

std::vector<std::string> TopicIndex::subscriptionsOf(uint32_t conn) const {
  std::vector<std::string> out;
  if (conn >= subs_.size()) return out;
  for (const Sub& sub : subs_[conn]) out.push_back(sub.pattern ? sub.bucket->first + "*" : sub.bucket->first);
  return out;
}

}  // namespace ssefanout
