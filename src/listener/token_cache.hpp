// TokenCache: the tokens an acceptor verified lately, with what they grant,
// so a storm reconnecting with the same tokens (a subscriber JWT shared by a
// page's visitors, each user's own on every reconnect) pays the signature
// once per I/O thread instead of once per connection (ES256 is about 60 µs).
//
// A hit is exactly what Verifier::verify() would answer now: the token's
// bytes are compared whole, the listener's keys never change (the cache is
// the listener's, one per acceptor), and the claims' exp and nbf are checked
// against the time on every hit (Verifier::timeRefusal: an expired entry is
// dropped and the token verified again, which refuses it). Only tokens that
// verified are kept, so a client sending junk or forged tokens never evicts
// anything and costs what verify() costs.
//
// Bounded: at most `maxEntries` tokens and `maxBytes` of tokens and claims
// (each entry's token, selectors and user, plus kEntryOverhead), the least
// recently used dropped first; an entry past maxBytes on its own is not
// kept. Keys hash with KeyedHash (SipHash, a per-process key).
//
// One thread (its acceptor's); not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "jwt.hpp"
#include "keyed_hash.hpp"

namespace ssefanout::listener {

class TokenCache {
 public:
  // What an entry costs beside its strings' bytes: the list node (the Claims'
  // own fields in it), the map node and its bucket, allocator headers.
  static constexpr size_t kEntryOverhead = 224;
  static constexpr size_t kStringOverhead = 16;  // a heap string's allocation beyond its bytes

  TokenCache(size_t maxEntries, size_t maxBytes) : maxEntries_(maxEntries), maxBytes_(maxBytes) {}
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  // The claims of `token` when it is kept and its dates hold at nowSec
  // (valid until the next insert() or find()); null otherwise (an entry
  // whose dates no longer hold is dropped).
  const auth::Claims* find(std::string_view token, const auth::Verifier& verifier, int64_t nowSec);

  // Keeps a token that verified, with its claims (replacing any entry of the
  // same token), dropping the least recently used past the bounds.
  void insert(std::string_view token, const auth::Claims& claims);

  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }

  static size_t costOf(std::string_view token, const auth::Claims& claims);

 private:
  struct Entry {
    std::string token;
    auth::Claims claims;
    size_t cost = 0;
  };
  void erase(std::list<Entry>::iterator it);

  size_t maxEntries_;
  size_t maxBytes_;
  size_t bytes_ = 0;
  std::list<Entry> entries_;  // most recently used first
  // Keys view the entries' own token strings (a list node never moves).
  std::unordered_map<std::string_view, std::list<Entry>::iterator, KeyedHash, std::equal_to<>> index_;
};

}  // namespace ssefanout::listener
