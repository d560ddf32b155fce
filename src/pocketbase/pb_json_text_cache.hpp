// JsonTextCache: the JSON text of the array and object values that filters
// read during one record broadcast, so that a field compared or LIKE-matched
// by many filter nodes is serialized once per broadcast, not once per node
// (a guest's 200 nodes on a 10 KB JSON field would otherwise serialize it 200
// times).
//
// A value is known by its simdjson element (its document and its position on
// that document's tape), so the cache is only valid while every document it
// has seen stays unchanged: PbIndex clears it at the start and the end of each
// broadcastRecord (the record's document is reused by the next parse).
//
// Bounded whatever the record and the filters hold: only texts of at least
// kMinBytes are kept (smaller ones cost less to serialize again than to
// look up among many), at most kMaxEntries of them and kMaxBytes in all; a
// value that does not fit is serialized on every read, as without the cache.
// Lookups are a scan of at most kMaxEntries keys, so no attacker-chosen
// string is hashed.
//
// Owned by one thread (the JS thread's PbIndex); views it returns stay valid
// until clear().
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "simdjson.h"

namespace ssefanout::pb {

class JsonTextCache {
 public:
  static constexpr size_t kMinBytes = 256;
  static constexpr size_t kMaxEntries = 64;
  static constexpr size_t kMaxBytes = 4u << 20;

  JsonTextCache() { entries_.reserve(kMaxEntries); }  // never reallocated: kept texts do not move
  JsonTextCache(const JsonTextCache&) = delete;
  JsonTextCache& operator=(const JsonTextCache&) = delete;

  // The kept text of e, or nullptr.
  const std::string* find(simdjson::dom::element e) const {
    const Key k = keyOf(e);
    for (const Entry& entry : entries_) {
      if (entry.key.doc == k.doc && entry.key.index == k.index) return &entry.text;
    }
    return nullptr;
  }

  // Keeps `text`, the JSON text of e, when it is large enough and fits;
  // returns the kept copy, else `text` itself.
  std::string_view keep(simdjson::dom::element e, std::string_view text) {
    if (text.size() < kMinBytes || entries_.size() == kMaxEntries || bytes_ + text.size() > kMaxBytes) return text;
    entries_.push_back({keyOf(e), std::string(text)});
    bytes_ += text.size();
    return entries_.back().text;
  }

  void clear() {
    entries_.clear();
    bytes_ = 0;
  }

  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  // An element is a (document, tape position) pair; simdjson keeps it
  // private, so its bytes are the key.
  struct Key {
    uint64_t doc;
    uint64_t index;
  };
  static_assert(std::is_trivially_copyable_v<simdjson::dom::element> && sizeof(simdjson::dom::element) == sizeof(Key),
                "simdjson::dom::element is expected to be a (document pointer, tape index) pair");
  static Key keyOf(simdjson::dom::element e) {
    Key k;
    std::memcpy(&k, &e, sizeof k);
    return k;
  }

  struct Entry {
    Key key;
    std::string text;
  };
  std::vector<Entry> entries_;
  size_t bytes_ = 0;
};

}  // namespace ssefanout::pb
