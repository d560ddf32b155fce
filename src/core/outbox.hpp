// Outbox: one connection's queue of frames waiting to be written.
//
// Holds FrameRefs, never copies of frame bytes. Counts the wire bytes still to
// send (chunk framing included) against a cap: push() refuses a frame that
// would take the queue past it, and the owner then closes the connection as a
// slow consumer. buildIov() describes everything pending (from the partial
// position of the first frame) as iovecs for a single writev; consume() then
// drops what the kernel took.
//
// A connection may carry an event prefix (PocketBase's "id:<clientId>\n"):
// bytes sent in front of every event frame as their own iovec (their own
// chunk when chunked), so the shared frame is never copied per connection.
//
// Owned by one I/O thread; not thread-safe.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frame.hpp"

namespace ssefanout {

class Outbox {
 public:
  explicit Outbox(size_t capBytes = 1 << 20) : cap_(capBytes) {}
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  ~Outbox() { clear(); }

  // When chunked, event frames go out as HTTP/1.1 chunks; raw frames never do.
  void setChunked(bool chunked) { chunked_ = chunked; }
  bool chunked() const { return chunked_; }
  void setCap(size_t capBytes) { cap_ = capBytes; }
  // A compressed stream's queue (src/compress) holds frames' coded variants,
  // which may be a few bytes larger than the frames: stored blocks add 5
  // bytes per 65,535, the event prefix's stored block 5, a longer chunk
  // header 1, the coding's own header 10. With `on`, the cap allows for
  // that (codedSlack(): 16 bytes per queued frame, 5 per 65,535), so a stream
  // is never refused a frame for its coding that it would take as identity.
  void setCodedSlack(bool on) { codedSlack_ = on; }
  size_t codedSlack(size_t frames) const { return 16 * frames + 5 * (cap_ / 65535 + 1); }
  // Bytes to send before every kEvent frame pushed from now on. Set it once,
  // after setChunked() and before the first event is pushed: queued entries
  // are framed with the prefix in force when they are built.
  void setEventPrefix(std::string_view prefix);
  std::string_view eventPrefixWire() const { return prefixWire_; }
  size_t cap() const { return cap_; }

  // Queues a reference to frame, framed as chunked() says now (changing it
  // later does not affect queued frames). Returns false, queueing nothing,
  // when the pending bytes would exceed the cap; `force` bypasses the cap
  // (used for the response head and the terminating chunk, which must never
  // be refused). An empty frame has nothing to send and is not queued.
  bool push(const FrameRef& frame, bool force = false) { return push(frame.get(), force); }
  // The same, for a frame the caller holds a reference to by other means
  // (the outbox takes its own).
  bool push(Frame* frame, bool force = false);
  // Queues the zero-length chunk that ends a chunked body (no-op otherwise).
  void pushEndOfBody();

  // Fills up to maxIov iovecs with pending bytes, in order (an event with a
  // prefix takes one iovec more). Returns the number used. Stops at a frame boundary when iovecs run out, except that
  // the first frame is always started (in pieces if it needs more than maxIov), so any maxIov >= 1 makes progress.
  int buildIov(struct iovec* iov, int maxIov) const;
  // Marks n bytes as written; frames fully written are released. Returns the
  // number of whole frames completed.
  // When `events` is given, adds the number of completed kEvent frames to it.
  size_t consume(size_t n, size_t* events = nullptr);

  bool empty() const { return count_ == 0; }
  size_t frames() const { return count_; }
  size_t pendingBytes() const { return pending_; }
  void clear();

 private:
  struct Entry {
    Frame* frame;  // one reference owned by the outbox; null = end-of-body chunk
    size_t wire;   // bytes this entry puts on the wire; != frame->size() when chunk-framed
  };
  Entry& at(size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  const Entry& at(size_t i) const { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  void append(Entry e);

  std::vector<Entry> ring_;  // capacity a power of two
  size_t head_ = 0;
  size_t count_ = 0;
  size_t headOffset_ = 0;  // bytes of the first entry already written
  size_t pending_ = 0;     // unwritten wire bytes
  size_t cap_;
  bool chunked_ = false;
  bool codedSlack_ = false;
  std::string prefixWire_;  // the event prefix as it goes on the wire (chunk-framed when chunked)
};

}  // namespace ssefanout
