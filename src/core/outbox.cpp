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

bool Outbox::push(const FrameRef& frame, bool force) {
  size_t wire = frame->wireSize(chunked_);
  if (!force && pending_ + wire > cap_) return false;
  frame->retain();
  append(Entry{frame.get(), static_cast<uint32_t>(wire)});
  return true;
}

void Outbox::pushEndOfBody() {
  if (chunked_) append(Entry{nullptr, static_cast<uint32_t>(kLastChunk.size())});
}

int Outbox::buildIov(struct iovec* iov, int maxIov) const {
  int n = 0;
  size_t skip = headOffset_;
  auto add = [&](std::string_view part) {
    // Drops the already-written prefix of the first entry, part by part.
    if (skip >= part.size()) {
      skip -= part.size();
      return;
    }
    iov[n].iov_base = const_cast<char*>(part.data() + skip);
    iov[n].iov_len = part.size() - skip;
    skip = 0;
    ++n;
  };
  for (size_t i = 0; i < count_; ++i) {
    const Entry& e = at(i);
    const bool framed = e.frame && chunked_ && e.frame->kind() == Frame::Kind::kEvent;
    const int need = framed ? 3 : 1;
    if (n + need > maxIov) break;
    if (!e.frame) {
      add(kLastChunk);
    } else if (framed) {
      add(e.frame->chunkHeader());
      add(e.frame->view());
      add(kCrlf);
    } else {
      add(e.frame->view());
    }
  }
  return n;
}

size_t Outbox::consume(size_t n) {
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
    if (e.frame) e.frame->release();
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
