// HistoryModel: a naive reference of History (src/history/history.hpp),
// written from its documented contract and not from its code, for the
// randomised test (history_test.cpp) and the fuzz target
// (fuzz/history_fuzz.cpp).
//
// The model keeps every event it holds in a std::deque (no ring, no
// arithmetic on positions), parses cursors with its own grammar reader,
// matches topics by walking every subscription of the reader, and answers
// replays and reads by filtering the whole deque. Each event keeps a
// FrameRef to the frame given to History::append, so a caller can compare
// frame identity (and reference counts: the model's and the history's).
//
// Times must not go backwards (the Dispatcher's clock is steady). appendAt and
// rebase follow the sequences-from-outside contract: the next sequence only;
// a rebase empties it and moves it to another epoch and position.
//
// Header-only, no GoogleTest; single-threaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frame.hpp"
#include "history.hpp"

namespace ssefanout::test {

// The cursor grammar read naively: "<epoch>-<seq>", epoch 1..32 bytes of
// [A-Za-z0-9] (before the first '-'), seq "0" or [1-9][0-9]* up to 2^53 - 1.
struct ModelCursor {
  enum class Form { kOurs, kForeign, kMalformed } form = Form::kMalformed;
  uint64_t seq = 0;
};

inline ModelCursor modelParseCursor(std::string_view text, std::string_view ourEpoch) {
  ModelCursor out;
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 32) return out;
  for (size_t i = 0; i < dash; ++i) {
    const char c = text[i];
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum) return out;
  }
  const std::string_view digits = text.substr(dash + 1);
  if (digits.empty() || digits.size() > 16) return out;  // 2^53 - 1 has 16 digits
  if (digits.size() > 1 && digits[0] == '0') return out;
  // Compare as decimal strings: no arithmetic that could overflow.
  for (char c : digits) {
    if (c < '0' || c > '9') return out;
  }
  constexpr std::string_view kMax = "9007199254740991";  // 2^53 - 1
  if (digits.size() == kMax.size() && digits > kMax) return out;
  uint64_t seq = 0;
  for (char c : digits) seq = seq * 10 + static_cast<uint64_t>(c - '0');
  out.seq = seq;
  out.form = text.substr(0, dash) == ourEpoch ? ModelCursor::Form::kOurs : ModelCursor::Form::kForeign;
  return out;
}

// TopicIndex's rule for one subscription: exact, or "p/*" matching every
// topic that begins with "p/" and is longer.
inline bool modelSubMatches(std::string_view sub, std::string_view topic) {
  if (sub.size() >= 2 && sub.substr(sub.size() - 2) == "/*") {
    const std::string_view prefix = sub.substr(0, sub.size() - 1);
    return topic.size() > prefix.size() && topic.substr(0, prefix.size()) == prefix;
  }
  return sub == topic;
}

inline bool modelMatchesAny(const std::vector<std::string>& subs, std::string_view topic) {
  for (const std::string& s : subs) {
    if (modelSubMatches(s, topic)) return true;
  }
  return false;
}

class HistoryModel {
 public:
  struct Event {
    uint64_t seq = 0;
    FrameRef frame;
    std::string topic;                              // empty: a broadcast
    std::optional<std::vector<std::string>> users;  // nullopt: anyone; else only these (maybe none)
    std::optional<std::string> id;                  // the publisher's own id (non-empty)
    uint64_t atMs = 0;
  };
  struct Place {
    history::ResetReason reason = history::ResetReason::kNone;
    uint64_t after = 0;
    std::optional<uint64_t> requested;
  };

  explicit HistoryModel(const history::HistoryOptions& o) : o_(o) {}

  uint64_t latest() const { return next_ - 1; }
  uint64_t oldest() const { return events_.empty() ? next_ : events_.front().seq; }
  size_t size() const { return events_.size(); }
  uint64_t bytes() const { return bytes_; }
  const std::deque<Event>& events() const { return events_; }
  const history::HistoryStats& counters() const { return stats_; }
  // The sequence an explicit id names now (the latest event that carried it
  // and is still held).
  std::optional<uint64_t> idSeq(const std::string& id) const {
    for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
      if (it->id && *it->id == id) return it->seq;
    }
    return std::nullopt;
  }

  uint64_t append(FrameRef frame, std::string topic, std::optional<std::vector<std::string>> users,
                  std::optional<std::string> id, uint64_t nowMs) {
    Event e;
    e.seq = next_++;
    bytes_ += frame->size();
    e.frame = std::move(frame);
    e.topic = std::move(topic);
    e.users = std::move(users);
    if (id && !id->empty()) e.id = std::move(id);
    e.atMs = nowMs;
    events_.push_back(std::move(e));
    while (!events_.empty() && (events_.size() > o_.maxEvents || bytes_ > o_.maxBytes)) pop();
    expire(nowMs);
    return next_ - 1;
  }

  // appendAt: only the next sequence, at most 2^53 - 1; else false, nothing changed.
  bool appendAt(uint64_t seq, FrameRef frame, std::string topic, std::optional<std::vector<std::string>> users,
                std::optional<std::string> id, uint64_t nowMs) {
    if (seq != next_ || seq > (uint64_t{1} << 53) - 1) return false;
    append(std::move(frame), std::move(topic), std::move(users), std::move(id), nowMs);
    return true;
  }

  // rebase: a valid epoch (1..32 of [A-Za-z0-9]) and a seq up to 2^53 - 1,
  // else false; then nothing is held and the next event is seq + 1.
  bool rebase(std::string_view epoch, uint64_t seq) {
    if (epoch.empty() || epoch.size() > 32 || seq > (uint64_t{1} << 53) - 1) return false;
    for (char c : epoch) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
    }
    events_.clear();
    bytes_ = 0;
    next_ = seq + 1;
    o_.epoch = std::string(epoch);
    ++stats_.rebases;
    return true;
  }
  const std::string& epoch() const { return o_.epoch; }

  void expire(uint64_t nowMs) {
    while (!events_.empty() && nowMs - events_.front().atMs > o_.maxAgeMs) pop();
  }

  Place locate(std::string_view cursor, uint64_t nowMs) {
    expire(nowMs);
    Place p;
    uint64_t seq = 0;
    if (std::optional<uint64_t> s = idSeq(std::string(cursor))) {
      seq = *s;
    } else {
      const ModelCursor c = modelParseCursor(cursor, o_.epoch);
      if (c.form == ModelCursor::Form::kMalformed) {
        p.reason = history::ResetReason::kUnknown;
        return p;
      }
      if (c.form == ModelCursor::Form::kForeign) {
        p.reason = history::ResetReason::kEpoch;
        return p;
      }
      seq = c.seq;
    }
    if (seq > latest()) {
      p.reason = history::ResetReason::kUnknown;
    } else if (seq < oldest() - 1) {
      // Events after seq are gone: the oldest held one is not seq + 1.
      p.reason = history::ResetReason::kExpired;
      p.requested = seq;
    } else {
      p.after = seq;
    }
    return p;
  }

  bool matches(const Event& e, const std::vector<std::string>& topics, std::optional<std::string_view> user) const {
    if (e.users) {
      if (!user) return false;
      if (std::find(e.users->begin(), e.users->end(), *user) == e.users->end()) return false;
    }
    return e.topic.empty() || modelMatchesAny(topics, e.topic);
  }

  // Every held event after `after` that the reader matches.
  std::vector<const Event*> matching(uint64_t after, const std::vector<std::string>& topics,
                                     std::optional<std::string_view> user) const {
    std::vector<const Event*> out;
    for (const Event& e : events_) {
      if (e.seq > after && matches(e, topics, user)) out.push_back(&e);
    }
    return out;
  }

  // kNone and the frames, or kLimit (more than maxReplayEvents matches, or
  // their bytes plus perFrame each past maxBytes) and none.
  history::ResetReason selectReplay(const Place& place, const std::vector<std::string>& topics,
                                    std::optional<std::string_view> user, uint64_t maxBytes, size_t perFrame,
                                    std::vector<const Frame*>* out) {
    std::vector<const Event*> m = matching(place.after, topics, user);
    uint64_t total = 0;
    for (const Event* e : m) total += e->frame->size() + perFrame;
    if (m.size() > o_.maxReplayEvents || total > maxBytes) return history::ResetReason::kLimit;
    for (const Event* e : m) out->push_back(e->frame.get());
    ++stats_.replays;
    stats_.replayedEvents += m.size();
    return history::ResetReason::kNone;
  }

  // At most `max` matching events after `after`, stopping after the
  // `stopAt`-th visited one (0: never); returns where to continue (the seq
  // of the last one visited when it stopped or reached max, else latest()).
  uint64_t read(uint64_t after, const std::vector<std::string>& topics, std::optional<std::string_view> user,
                size_t max, size_t stopAt, std::vector<std::pair<uint64_t, const Frame*>>* out) const {
    std::vector<const Event*> m = matching(after, topics, user);
    for (size_t i = 0; i < m.size(); ++i) {
      out->emplace_back(m[i]->seq, m[i]->frame.get());
      if (i + 1 == max || i + 1 == stopAt) return m[i]->seq;
    }
    return latest();
  }

  void countReset(history::ResetReason r) { ++stats_.resets[static_cast<size_t>(r)]; }
  void countRead() { ++stats_.reads; }

 private:
  void pop() {
    bytes_ -= events_.front().frame->size();
    events_.pop_front();
  }

  history::HistoryOptions o_;
  std::deque<Event> events_;
  uint64_t next_ = 1;
  uint64_t bytes_ = 0;
  history::HistoryStats stats_;
};

}  // namespace ssefanout::test
