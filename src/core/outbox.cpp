#include "outbox.hpp"

#include <algorithm>

namespace ssefanout {

void Outbox::append(Entry e) {
  if (count_ == ring_.size()) {
    std::vector<Entry> bigger(ring_.empty() ? 8 : ring_.size() * 2);
    for (size_t i = 0; i < count_; ++i) bigger[i] = at(i);
    ring_.swap(bigger);
    head_ = 0;
  }
  at(count_) = e;
  ++count_;
  pending_ += e.wire;
}

void Outbox::setEventPrefix(std::string_view prefix) {
  prefixWire_.clear();
  if (prefix.empty()) return;
  if (chunked_) {
    char header[Frame::kMaxChunkHeader];
    prefixWire_.append(header, Frame::writeChunkHeader(prefix.size(), header));
    prefixWire_.append(prefix);
    prefixWire_.append(kCrlf);
  } else {
    prefixWire_.assign(prefix);
  }
}

bool Outbox::push(Frame* frame, bool force) {
  size_t wire = frame->wireSize(chunked_);
  // An empty frame has no bytes; as a chunk it would be "0\r\n\r\n", the end
  // of the body, and as a zero-wire entry consume() would never pop it.
  if (wire == 0) return true;
  if (frame->kind() == Frame::Kind::kEvent) wire += prefixWire_.size();
  const size_t limit = cap_ + (codedSlack_ ? codedSlack(count_ + 1) : 0);
  if (!force && pending_ + wire > limit) return false;
  frame->retain();
  append(Entry{frame, wire});
  return true;
}

void Outbox::pushEndOfBody() {
  if (chunked_) append(Entry{nullptr, kLastChunk.size()});
}

int Outbox::buildIov(struct iovec* iov, int maxIov) const {
  int n = 0;
  for (size_t i = 0; i < count_ && n < maxIov; ++i) {
    const Entry& e = at(i);
    // The framing is the one counted at push time (wire), not chunked_ now.
    std::string_view parts[4];
    int count = 0;
    size_t framing = e.wire;
    if (e.frame && e.frame->kind() == Frame::Kind::kEvent && !prefixWire_.empty()) {
      parts[count++] = prefixWire_;
      framing -= prefixWire_.size();
    }
    if (!e.frame) {
      parts[count++] = kLastChunk;
    } else if (framing != e.frame->size()) {
      parts[count++] = e.frame->chunkHeader();
      parts[count++] = e.frame->view();
      parts[count++] = kCrlf;
    } else {
      parts[count++] = e.frame->view();
    }
    // Drop the already-written prefix of the first entry. Parts are never
    // empty and headOffset_ < wire, so this stops inside a part.
    int first = 0;
    if (i == 0) {
      size_t skip = headOffset_;
      while (skip >= parts[first].size()) skip -= parts[first++].size();
      parts[first].remove_prefix(skip);
    }
    int need = count - first;
    if (n + need > maxIov) {
      // Whole entries only, so a write ends on a frame boundary; but the first
      // entry goes out in pieces rather than not at all, or a maxIov below 3
      // would stall a chunked connection for good.
      if (n > 0) break;
      need = maxIov;
    }
    for (int k = first; k < first + need; ++k) {
      iov[n].iov_base = const_cast<char*>(parts[k].data());
      iov[n].iov_len = parts[k].size();
      ++n;
    }
  }
  return n;
}

size_t Outbox::consume(size_t n, size_t* events) {
  size_t done = 0;
  pending_ -= std::min(n, pending_);
  while (n > 0 && count_ > 0) {
    Entry& e = at(0);
    size_t left = e.wire - headOffset_;
    if (n < left) {
      headOffset_ += n;
      return done;
    }
    n -= left;
    headOffset_ = 0;
    if (e.frame) {
      if (events && e.frame->kind() == Frame::Kind::kEvent) ++*events;
      e.frame->release();
    }
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
    ++done;
  }
  return done;
}

void Outbox::clear() {
  for (size_t i = 0; i < count_; ++i) {
    if (at(i).frame) at(i).frame->release();
  }
  head_ = count_ = headOffset_ = pending_ = 0;
  ring_.clear();
  ring_.shrink_to_fit();
}

}  // namespace ssefanout
