#include "history.hpp"

#include <algorithm>
#include <utility>

#include "sse_encoder.hpp"

namespace ssefanout::history {
namespace {

// `stored` equals prefix + "*".
bool isPatternOf(std::string_view stored, std::string_view prefix) {
  return stored.size() == prefix.size() + 1 && stored.back() == '*' && stored.substr(0, prefix.size()) == prefix;
}

bool containsPattern(const std::vector<std::string>& sorted, std::string_view prefix) {
  // The first element not less than prefix + "*".
  auto it = std::lower_bound(sorted.begin(), sorted.end(), prefix, [](const std::string& s, std::string_view p) {
    const int c = std::string_view(s).substr(0, p.size()).compare(p);
    if (c != 0) return c < 0;
    // s begins with p: s < p + "*" when s is p itself or continues with a byte below '*'.
    return s.size() == p.size() || static_cast<unsigned char>(s[p.size()]) < static_cast<unsigned char>('*');
  });
  return it != sorted.end() && isPatternOf(*it, prefix);
}

void appendJsonCursor(std::string* out, std::string_view epoch, std::optional<uint64_t> seq) {
  if (!seq) {
    out->append("null");
    return;
  }
  out->push_back('"');
  out->append(formatCursor(epoch, *seq));  // [A-Za-z0-9-] only: nothing to escape
  out->push_back('"');
}

}  // namespace

bool matchesAny(const std::vector<std::string>& sorted, std::string_view topic) {
  if (std::binary_search(sorted.begin(), sorted.end(), topic, std::less<>())) return true;
  for (size_t i = 0; i + 1 < topic.size(); ++i) {
    if (topic[i] == '/' && containsPattern(sorted, topic.substr(0, i + 1))) return true;
  }
  return false;
}

History::History(HistoryOptions options) : options_(std::move(options)) {}

History::~History() {
  while (size_ > 0) popOldest();
  releaseRetired();
}

void History::releaseRetired() {
  if (!retired_.empty()) ++frameGeneration_;
  for (Frame* f : retired_) f->release();
  retired_.clear();
}

void History::grow() {
  std::vector<Entry> bigger(ring_.empty() ? 64 : ring_.size() * 2);
  for (size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
  ring_.swap(bigger);
  head_ = 0;
}

uint64_t History::append(FrameRef frame, const std::vector<std::string_view>* users, std::optional<std::string_view> id,
                         uint64_t nowMs) {
  const uint64_t seq = next_++;
  if (size_ == ring_.size()) grow();
  Entry& e = ring_[(head_ + size_) & (ring_.size() - 1)];
  ++size_;
  bytes_ += frame->size();
  e.frame = frame.detach();
  e.atMs = nowMs;
  e.extra = nullptr;
  if (users || (id && !id->empty())) {
    e.extra = new Extra();
    if (users) {
      e.extra->restricted = true;
      e.extra->users.assign(users->begin(), users->end());
      std::sort(e.extra->users.begin(), e.extra->users.end());
      e.extra->users.erase(std::unique(e.extra->users.begin(), e.extra->users.end()), e.extra->users.end());
    }
    if (id && !id->empty()) {
      e.extra->id.emplace(*id);
      ids_.insert_or_assign(std::string(*id), seq);  // a repeated id names its latest event
    }
  }
  while (size_ > 0 && (size_ > options_.maxEvents || bytes_ > options_.maxBytes)) popOldest();
  expire(nowMs);
  if (retired_.size() >= kReleaseBatch) releaseRetired();
  return seq;
}

bool History::appendAt(uint64_t seq, FrameRef frame, const std::vector<std::string_view>* users,
                       std::optional<std::string_view> id, uint64_t nowMs) {
  if (seq != next_ || seq > kMaxSeq) return false;
  append(std::move(frame), users, id, nowMs);
  return true;
}

bool History::rebase(std::string_view epoch, uint64_t seq) {
  if (!validEpoch(epoch) || seq > kMaxSeq) return false;
  while (size_ > 0) popOldest();
  releaseRetired();
  ids_.clear();  // emptied by the pops already; cleared for good measure
  head_ = 0;
  next_ = seq + 1;
  options_.epoch.assign(epoch.data(), epoch.size());
  position_ = FrameRef();
  ++stats_.rebases;
  return true;
}

void History::popOldest() {
  Entry& e = ring_[head_];
  const uint64_t seq = oldest();
  bytes_ -= e.frame->size();
  // Most often the last reference: the frame is freed here, on the thread
  // that allocated it (measured cheaper than handing it to an I/O thread).
  retired_.push_back(e.frame);
  if (e.extra) {
    if (e.extra->id) {
      auto it = ids_.find(*e.extra->id);
      if (it != ids_.end() && it->second == seq) ids_.erase(it);
    }
    delete e.extra;
  }
  e = Entry();
  head_ = (head_ + 1) & (ring_.size() - 1);
  --size_;
}

void History::expire(uint64_t nowMs) {
  while (size_ > 0 && nowMs - ring_[head_].atMs > options_.maxAgeMs) popOldest();
}

Place History::locate(std::string_view cursor, uint64_t nowMs, bool idsOnly) {
  expire(nowMs);
  Place p;
  uint64_t seq;
  if (auto it = ids_.find(cursor); it != ids_.end()) {
    seq = it->second;
  } else if (idsOnly) {
    p.reason = ResetReason::kUnknown;
    return p;
  } else {
    const ParsedCursor c = parseCursor(cursor, options_.epoch);
    if (c.form == CursorForm::kMalformed) {
      p.reason = ResetReason::kUnknown;
      return p;
    }
    if (c.form == CursorForm::kForeign) {
      p.reason = ResetReason::kEpoch;
      return p;
    }
    seq = c.seq;
  }
  if (seq > latest()) {
    p.reason = ResetReason::kUnknown;
  } else if (seq + 1 < oldest()) {
    p.reason = ResetReason::kExpired;
    p.requested = seq;
  } else {
    p.after = seq;
  }
  return p;
}

bool History::matches(const Entry& e, const Reader& reader) const {
  if (e.extra && e.extra->restricted) {
    if (!reader.user ||
        !std::binary_search(e.extra->users.begin(), e.extra->users.end(), *reader.user, std::less<>())) {
      return false;
    }
  }
  const std::string_view topic = e.frame->tag();
  if (reader.filter) return isProtocolTag(topic) && reader.filter->accepts(topic);
  if (isProtocolTag(topic)) return false;
  return topic.empty() || (reader.topics && matchesAny(*reader.topics, topic));
}

bool History::mayKnowOf(uint64_t seq, const Reader& reader) const {
  if (!reader.filter || seq < oldest() || seq > latest()) return true;
  const std::string_view tag = at(seq).frame->tag();
  return isProtocolTag(tag) && reader.filter->mayKnow(tag);
}

std::optional<std::string> History::newestMatching(const Reader& reader, size_t maxScan) const {
  const uint64_t last = latest();
  const uint64_t stop = last - std::min<uint64_t>(maxScan, size_);
  for (uint64_t seq = last; seq > stop; --seq) {
    const Entry& e = at(seq);
    if (!matches(e, reader)) continue;
    if (e.extra && e.extra->id) return *e.extra->id;
    return cursorOf(seq);
  }
  return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> History::newestLeftOut(const Place& place, const Reader& reader,
                                                                          uint64_t maxBytes, size_t perFrame) const {
  uint64_t bytes = 0;
  size_t taken = 0;
  const uint64_t first = std::max(place.after + 1, oldest());
  for (uint64_t seq = latest(); seq >= first && seq > 0; --seq) {
    const Entry& e = at(seq);
    if (!matches(e, reader)) continue;
    if (taken >= options_.maxReplayEvents || bytes + e.frame->size() + perFrame > maxBytes) {
      return std::make_pair(e.extra && e.extra->id ? *e.extra->id : cursorOf(seq), cursorOf(seq));
    }
    bytes += e.frame->size() + perFrame;
    ++taken;
  }
  return std::nullopt;
}

ResetReason History::selectReplay(const Place& place, const Reader& reader, uint64_t maxBytes, size_t perFrame,
                                  std::vector<FrameRef>* out) {
  const size_t start = out->size();
  uint64_t bytes = 0;
  bool over = false;
  read(place.after, reader, SIZE_MAX, [&](uint64_t, Frame* f) {
    bytes += f->size() + perFrame;
    over = out->size() - start >= options_.maxReplayEvents || bytes > maxBytes;
    if (!over) out->push_back(FrameRef::share(f));
    return !over;
  });
  if (over) {
    out->resize(start);
    return ResetReason::kLimit;
  }
  ++stats_.replays;
  stats_.replayedEvents += out->size() - start;
  return ResetReason::kNone;
}

ResetReason History::selectNewest(const Place& place, const Reader& reader, uint64_t maxBytes, size_t perFrame,
                                  std::vector<FrameRef>* out) {
  const size_t start = out->size();
  uint64_t bytes = 0;
  bool full = false;
  const uint64_t first = std::max(place.after + 1, oldest());
  for (uint64_t seq = latest(); seq >= first && seq > 0; --seq) {
    const Entry& e = at(seq);
    if (!matches(e, reader)) continue;
    if (out->size() - start >= options_.maxReplayEvents || bytes + e.frame->size() + perFrame > maxBytes) {
      full = true;
      break;
    }
    bytes += e.frame->size() + perFrame;
    out->push_back(FrameRef::share(e.frame));
  }
  std::reverse(out->begin() + static_cast<std::ptrdiff_t>(start), out->end());
  ++stats_.replays;
  stats_.replayedEvents += out->size() - start;
  if (!full) return ResetReason::kNone;
  countReset(ResetReason::kLimit);
  return ResetReason::kLimit;
}

FrameRef History::resetFrame(const Place& place) {
  countReset(place.reason);
  return encodeReset(options_.epoch, place, size_ > 0 ? std::optional<uint64_t>(oldest()) : std::nullopt, latest());
}

FrameRef History::rebaseFrame(std::string_view epoch, uint64_t seq, ResetReason reason) const {
  Place place;
  place.reason = reason;
  return encodeReset(epoch, place, std::nullopt, seq);
}

FrameRef History::encodeReset(std::string_view epoch, const Place& place, std::optional<uint64_t> oldestSeq,
                              uint64_t latestSeq) const {
  std::string data = "{\"reason\":\"";
  data.append(resetReasonName(place.reason));
  data.append("\",\"requested\":");
  appendJsonCursor(&data, epoch, place.requested);
  data.append(",\"oldest\":");
  appendJsonCursor(&data, epoch, oldestSeq);
  data.append(",\"latest\":");
  appendJsonCursor(&data, epoch, latestSeq);
  data.push_back('}');
  const std::string id = formatCursor(epoch, latestSeq);
  EventFields ev;
  ev.event = options_.resetEvent;
  ev.id = id;
  ev.data = data;
  FrameRef frame;
  encodeEvent(ev, &frame);  // valid by construction: the event name was checked by the caller
  return frame;
}

FrameRef History::positionFrame() {
  if (!position_ || positionSeq_ != latest()) {
    const std::string id = cursorOf(latest());
    EventFields ev;
    ev.id = id;
    if (!options_.positionEvent.empty()) {
      ev.event = options_.positionEvent;
      ev.data = std::string_view();
    }
    encodeEvent(ev, &position_, Frame::Kind::kControl);  // valid: the name was checked by the caller
    positionSeq_ = latest();
  }
  return position_;
}

HistoryStats History::stats() const {
  HistoryStats s = stats_;
  s.events = size_;
  s.bytes = bytes_;
  s.oldest = size_ > 0 ? oldest() : 0;
  s.latest = latest();
  return s;
}

}  // namespace ssefanout::history
