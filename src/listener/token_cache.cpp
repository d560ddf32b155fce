#include "token_cache.hpp"

namespace ssefanout::listener {

size_t TokenCache::costOf(std::string_view token, const auth::Claims& claims) {
  size_t cost = kEntryOverhead + kStringOverhead + token.size();
  cost += claims.selectors.capacity() * sizeof(std::string);
  for (const std::string& s : claims.selectors) cost += s.size() + kStringOverhead;
  if (claims.user) cost += claims.user->size() + kStringOverhead;
  return cost;
}

const auth::Claims* TokenCache::find(std::string_view token, const auth::Verifier& verifier, int64_t nowSec) {
  auto found = index_.find(token);
  if (found == index_.end()) return nullptr;
  auto it = found->second;
  if (verifier.timeRefusal(it->claims, nowSec) != nullptr) {
    erase(it);
    return nullptr;
  }
  entries_.splice(entries_.begin(), entries_, it);  // iterators stay valid
  return &it->claims;
}

void TokenCache::insert(std::string_view token, const auth::Claims& claims) {
  const size_t cost = costOf(token, claims);
  if (maxEntries_ == 0 || cost > maxBytes_) return;
  if (auto found = index_.find(token); found != index_.end()) erase(found->second);
  while (!entries_.empty() && (entries_.size() >= maxEntries_ || bytes_ + cost > maxBytes_)) {
    erase(std::prev(entries_.end()));
  }
  entries_.push_front(Entry{std::string(token), claims, cost});
  index_.emplace(std::string_view(entries_.front().token), entries_.begin());
  bytes_ += cost;
}

void TokenCache::erase(std::list<Entry>::iterator it) {
  index_.erase(std::string_view(it->token));
  bytes_ -= it->cost;
  entries_.erase(it);
}

}  // namespace ssefanout::listener
