#include "shard.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#if SSE_FANOUT_EPOLL
#include <sys/epoll.h>
#endif

#include "cursor.hpp"
#include "registry.hpp"
#include "sse_encoder.hpp"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0  // macOS: SO_NOSIGPIPE is set when the socket is adopted
#endif

namespace ssefanout {

struct Shard::Conn {
  Conn(Shard* s, size_t cap) : shard(s), outbox(cap) {}
  Shard* shard;
  uint64_t id = 0;
  uint32_t slot = 0;
  uint32_t user = 0;
  int fd = -1;                // -1: a JS-transport connection
  uint64_t lastFrameMs = 0;   // for heartbeats
  uint64_t lastEventMs = 0;   // for idleMs
  uint64_t bornMs = 0;        // for lifetimeMs
  uint64_t drainSinceMs = 0;  // when it was detached with bytes still to flush
  uint32_t idleMs = 0;
  uint32_t lifetimeMs = 0;
  bool positions = false;  // heartbeats carry the history position
  bool broadcasts = true;  // takes broadcasts (a protocol's stream does not)
  bool dirty = false;      // in dirty_ this turn
  bool writable = false;   // polling for UV_WRITABLE (the kernel buffer was full)
  bool ending = false;     // body ended: release once the outbox is empty
  bool detached = false;   // out of slots_ and the index, reported to the sink
  bool released = false;   // fd closing (or JS stream dropped); memory freed later
  Outbox outbox;
  // A compressed body (Content-Encoding): its checksum and length so far, and
  // the event prefix's own (the prefix goes out as a stored block).
  compress::StreamCoder coder;
  compress::Meta prefixMeta;
  std::unique_ptr<ConnHook> hook;  // Command::hook: dropped when the connection is freed
#if SSE_FANOUT_EPOLL
  bool watched = false;  // in the shard's epoll set
#else
  uv_poll_t poll;  // initialised only when fd >= 0
#endif
};

namespace {

// Counters have one writer (this shard's thread) and readers elsewhere: a
// relaxed load and store is enough and spares the locked read-modify-write.
inline void bump(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void drop(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

// A write failure that means the peer went away rather than something broke.
bool isPeerGone(int err) { return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ETIMEDOUT; }

// The maintenance timer sends heartbeats and reaps connections that never take
// their last bytes. It ticks a few times per period, so an idle connection
// waits at most ~1.25x heartbeatMs, and at least once a second.
uint64_t tickInterval(const ShardOptions& o) {
  uint64_t every = 1000;
  if (o.heartbeatMs > 0) every = std::min<uint64_t>(every, o.heartbeatMs / 4);
  if (o.closeTimeoutMs > 0) every = std::min<uint64_t>(every, o.closeTimeoutMs / 4);
  return std::max<uint64_t>(every, 10);
}

}  // namespace

// Dead peers: without keepalive a peer that vanished (power loss, a dropped
// NAT mapping) with nothing in flight holds its connection forever, and with
// data in flight until the kernel gives up retransmitting (~15 min on Linux).
// Failures are ignored: a socket that refuses an option keeps the default.
void setDeadPeerOptions(int fd, const ShardOptions& o) {
  if (o.keepAliveMs > 0) {
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    int idle = static_cast<int>(std::max<uint64_t>(1, (uint64_t{o.keepAliveMs} + 999) / 1000));
    int interval = std::max(1, idle / 3);
    int probes = Shard::kKeepAliveProbes;
#if defined(TCP_KEEPIDLE)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
#elif defined(TCP_KEEPALIVE)  // macOS
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPALIVE, &idle, sizeof idle);
#endif
#ifdef TCP_KEEPINTVL
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
#endif
#ifdef TCP_KEEPCNT
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
#endif
  }
#ifdef TCP_USER_TIMEOUT
  if (o.tcpUserTimeoutMs > 0) {
    unsigned int ms = o.tcpUserTimeoutMs;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
  }
#endif
}

void setStreamSocketOptions(int fd, const ShardOptions& o) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setDeadPeerOptions(fd, o);
  if (o.sndbufBytes > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.sndbufBytes, sizeof o.sndbufBytes);
#ifdef SO_NOSIGPIPE
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
}

Shard::Shard(uint32_t index, const ShardOptions& options, ShardSink* sink)
    : index_(index),
      options_(options),
      sink_(sink),
      topics_(options.maxSubscriptions),
      historyEpoch_(options.historyEpoch) {
  EventFields hb;
  hb.comment = std::string_view();
  encodeEvent(hb, &heartbeatFrame_, Frame::Kind::kControl);  // ": \n\n": a comment line and the blank line
}

void Shard::closeEpoll() {
#if SSE_FANOUT_EPOLL
  if (epfd_ >= 0) ::close(epfd_);
  epfd_ = -1;
#endif
}

Shard::~Shard() {
  if (started_ && !joined_) {
    Command stop;
    stop.op = Command::Op::kStop;
    post(std::move(stop));
    join();
  }
  closeEpoll();
  std::lock_guard<std::mutex> lock(mu_);
  for (Command& c : queue_) {
    if (c.fd >= 0) ::close(c.fd);
  }
}

int Shard::start() {
  int rc = uv_loop_init(&loop_);
  if (rc != 0) return rc;
  loop_.data = this;
  uv_async_init(&loop_, &async_, onAsync);
  async_.data = this;
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uint64_t every = tickInterval(options_);
  uv_timer_start(&tick_, onTick, every, every);
#if SSE_FANOUT_EPOLL
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  rc = epfd_ < 0 ? -errno : uv_poll_init(&loop_, &epoll_, epfd_);
  if (rc == 0) {
    epoll_.data = this;
    uv_poll_start(&epoll_, UV_READABLE, onEpoll);
    rc = uv_thread_create(&thread_, threadMain, this);
    if (rc != 0) uv_close(reinterpret_cast<uv_handle_t*>(&epoll_), nullptr);
  }
#else
  rc = uv_thread_create(&thread_, threadMain, this);
#endif
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return rc;
  }
  started_ = true;
  return 0;
}

void Shard::join() {
  if (started_ && !joined_) {
    uv_thread_join(&thread_);
    joined_ = true;
  }
}

void Shard::threadMain(void* arg) {
  auto* self = static_cast<Shard*>(arg);
  uv_run(&self->loop_, UV_RUN_DEFAULT);
  uv_loop_close(&self->loop_);
  // Connections released by the last callbacks.
  for (Conn* c : self->graveyard_) delete c;
  self->graveyard_.clear();
  self->closeEpoll();
  self->sink_->onStopped(self->index_);
}

void Shard::post(Command&& c) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) {
      if (c.fd >= 0) ::close(c.fd);  // never adopted: nobody else owns it
      return;
    }
    wake = queue_.empty();
    queuedCommands_.fetch_add(1, std::memory_order_relaxed);
    queuedBytes_.fetch_add(bytesOf(c), std::memory_order_relaxed);
    queue_.push_back(std::move(c));
    // Under the lock: endLoop() closes the async handle only after it has
    // stopped accepting, so no send can reach a closed handle.
    if (wake) uv_async_send(&async_);
  }
}

void Shard::post(std::vector<Command>& batch) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) {
      for (Command& c : batch) {
        if (c.fd >= 0) ::close(c.fd);
      }
      batch.clear();
      return;
    }
    wake = queue_.empty();
    uint64_t bytes = 0;
    for (Command& c : batch) {
      bytes += bytesOf(c);
      queue_.push_back(std::move(c));
    }
    queuedCommands_.fetch_add(batch.size(), std::memory_order_relaxed);
    queuedBytes_.fetch_add(bytes, std::memory_order_relaxed);
    if (wake && !queue_.empty()) uv_async_send(&async_);
  }
  batch.clear();
}

void Shard::onAsync(uv_async_t* handle) {
  auto* self = static_cast<Shard*>(handle->data);
  self->drain();
  self->afterCallback();
}

void Shard::drain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    work_.swap(queue_);
  }
  // The counts go down as commands run, in steps, so a producer sees room
  // come back while a long queue drains.
  constexpr size_t kStep = 64;
  uint64_t bytes = 0;
  size_t n = 0;
  for (Command& c : work_) {
    bytes += bytesOf(c);
    run(c);
    if (++n == kStep) {
      queuedCommands_.fetch_sub(n, std::memory_order_relaxed);
      queuedBytes_.fetch_sub(bytes, std::memory_order_relaxed);
      n = 0;
      bytes = 0;
    }
  }
  queuedCommands_.fetch_sub(n, std::memory_order_relaxed);
  queuedBytes_.fetch_sub(bytes, std::memory_order_relaxed);
  work_.clear();
}

// End of every loop callback: one flush per dirty connection, then free what
// was closed during the callback.
void Shard::afterCallback() {
  flushDirty();
  for (Conn* c : graveyard_) delete c;
  graveyard_.clear();
  if (shuttingDown_) finishIfDone();
  sink_->onTurnEnd(index_);
}

Shard::Conn* Shard::find(uint64_t id) {
  uint32_t slot = Registry::slotOf(id);
  if (slot >= slots_.size()) return nullptr;
  Conn* c = slots_[slot];
  return c && c->id == id && !c->detached ? c : nullptr;
}

void Shard::run(Command& c) {
  switch (c.op) {
    case Command::Op::kAdopt:
    case Command::Op::kAttachJs:
      adopt(c);
      break;
    case Command::Op::kSubscribe:
      if (Conn* conn = find(c.id)) {
        for (const std::string& t : c.topics) topics_.subscribe(conn->slot, t);
        counters_.subscriptions.store(topics_.totalSubscriptions(), std::memory_order_relaxed);
      }
      break;
    case Command::Op::kUnsubscribe:
      if (Conn* conn = find(c.id)) {
        for (const std::string& t : c.topics) topics_.unsubscribe(conn->slot, t);
        counters_.subscriptions.store(topics_.totalSubscriptions(), std::memory_order_relaxed);
      }
      break;
    case Command::Op::kPublish:
      bump(counters_.published, 1);
      if (c.seq) lastSeq_ = c.seq;
      fanOut(c, true);
      break;
    case Command::Op::kPublishRouted:
      bump(counters_.published, 1);
      if (c.seq) lastSeq_ = c.seq;
      fanOutRouted(c);
      break;
    case Command::Op::kBroadcast:
      bump(counters_.published, 1);
      if (c.seq) lastSeq_ = c.seq;
      fanOut(c, false);
      break;
    case Command::Op::kPosition:
      lastSeq_ = c.seq;
      break;
    case Command::Op::kRebase:
      rebase(c);
      break;
    case Command::Op::kSend:
      bump(counters_.published, 1);
      if (Conn* conn = find(c.id)) {
        if (conn->fd < 0) {
          conn->lastFrameMs = conn->lastEventMs = uv_now(&loop_);
          sink_->onJsDeliver(index_, std::move(c.frame), std::vector<uint64_t>{conn->id});
          bump(counters_.delivered, 1);
        } else {
          enqueue(conn, c.frame);
        }
      }
      break;
    case Command::Op::kKick:
      if (Conn* conn = find(c.id)) endStream(conn, DisconnectReason::kKicked);
      break;
    case Command::Op::kDetach:
      if (Conn* conn = find(c.id)) {
        if (c.reason == DisconnectReason::kSlow) bump(counters_.slow, 1);
        closeConn(conn, c.reason);
      }
      break;
    case Command::Op::kTask:
      if (c.task) c.task->run(*this);
      break;
    case Command::Op::kShutdown:
      beginShutdown();
      break;
    case Command::Op::kStop:
      if (c.flags & Command::kEndBodies) endEverythingNow();
      closeEverything();
      endLoop();
      break;
  }
}

void Shard::adopt(Command& c) {
  const bool native = c.op == Command::Op::kAdopt;
  if (shuttingDown_ || ending_) {
    if (c.fd >= 0) ::close(c.fd);
    sink_->onDisconnect(index_, c.id, DisconnectReason::kShutdown);
    return;
  }
  auto* conn = new Conn(this, options_.maxQueueBytes);
  conn->id = c.id;
  conn->slot = Registry::slotOf(c.id);
  conn->user = c.user;
  conn->lastFrameMs = conn->lastEventMs = conn->bornMs = uv_now(&loop_);
  conn->idleMs = c.idleMs;
  conn->lifetimeMs = c.lifetimeMs;
  conn->positions = (c.flags & Command::kPositions) != 0;
  conn->broadcasts = (c.flags & Command::kNoBroadcasts) == 0;
  conn->hook = std::move(c.hook);
  if (conn->slot >= slots_.size()) slots_.resize(conn->slot + 1, nullptr);
  slots_[conn->slot] = conn;
  ++live_;
  bump(counters_.connections, 1);

  for (const std::string& t : c.topics) topics_.subscribe(conn->slot, t);
  counters_.subscriptions.store(topics_.totalSubscriptions(), std::memory_order_relaxed);

  if (native) {
    conn->fd = c.fd;
    conn->outbox.setChunked(c.flags & Command::kChunked);
    conn->coder.start(c.coding);
    if (conn->coder.active()) {
      conn->outbox.setCodedSlack(true);  // never cut as slow for its coding
      conn->outbox.setEventPrefix(compress::storedBlocks(c.prefix));
      conn->prefixMeta = compress::metaOf(c.prefix);
      bump(counters_.codedConnections, 1);
    } else {
      conn->outbox.setEventPrefix(c.prefix);
    }
    // A socket of the native listener is non-blocking and has the options
    // already, from its listening socket: each would be a syscall per
    // stream, and a connect storm is made of those.
    if (!(c.flags & Command::kPreparedSocket)) {
      setStreamSocketOptions(conn->fd, options_);
      int flags = fcntl(conn->fd, F_GETFL);
      if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(conn->fd, F_SETFL, flags | O_NONBLOCK);
    }
    if (!watch(conn)) {
      // Not pollable (never the case for a socket): give it up as an error.
      conn->fd = -1;
      ::close(c.fd);
      closeConn(conn, DisconnectReason::kError);
      return;
    }
    if (c.frame) {
      conn->outbox.push(c.frame, true);  // the head is never refused
      bump(counters_.queueBytes, c.frame->size());
      enqueue(conn, FrameRef());
    }
    if (conn->coder.active()) enqueue(conn, conn->coder.header());
    if (c.frame2) enqueue(conn, c.frame2);
    // A replay within maxQueueBytes (the Dispatcher sends a reset instead
    // past it): a refusal here closes the connection as slow.
    for (const FrameRef& f : c.replay) {
      if (conn->detached) break;
      enqueue(conn, f);
    }
  } else {
    if (c.frame2) sink_->onJsDeliver(index_, std::move(c.frame2), std::vector<uint64_t>{conn->id});
    for (FrameRef& f : c.replay) {
      if (f->kind() == Frame::Kind::kEvent) bump(counters_.delivered, 1);
      sink_->onJsDeliver(index_, std::move(f), std::vector<uint64_t>{conn->id});
    }
  }
}

const FrameRef& Shard::positionHeartbeat() {
  if (positionHeartbeatSeq_ != lastSeq_) {
    const std::string id = history::formatCursor(historyEpoch_, lastSeq_);
    EventFields hb;
    hb.id = id;
    if (options_.positionEvent.empty()) {
      hb.comment = "";  // ": \nid: <epoch>-<seq>\n\n"
    } else {
      hb.event = options_.positionEvent;  // "event: <name>\nid: <epoch>-<seq>\ndata: \n\n"
      hb.data = std::string_view();
    }
    encodeEvent(hb, &positionHeartbeat_, Frame::Kind::kControl);
    positionHeartbeatSeq_ = lastSeq_;
  }
  return positionHeartbeat_;
}

// Queues frame (when given) and marks the connection for this turn's flush.
// A compressed stream gets the frame's coded variant instead (made by the
// first thread that needs it, compress::variantOf), and its checksum takes in
// what the variant stands for, the event prefix first.
void Shard::enqueue(Conn* conn, const FrameRef& given) {
  // The variant lives as long as the frame `given` holds: no reference of
  // our own is taken for the moment (the outbox takes one).
  Frame* coded = nullptr;
  if (given && conn->coder.active() && !given->coded() && given->kind() != Frame::Kind::kRaw) {
    coded = compress::variantOf(given.get(), options_.coding);
  }
  Frame* frame = coded ? coded : given.get();
  if (frame) {
    if (!conn->outbox.push(frame)) {
      bump(counters_.slow, 1);
      closeConn(conn, DisconnectReason::kSlow, true);
      return;
    }
    bump(counters_.queueBytes, frame->wireSize(conn->outbox.chunked()) +
                                   (frame->kind() == Frame::Kind::kEvent ? conn->outbox.eventPrefixWire().size() : 0));
    conn->lastFrameMs = uv_now(&loop_);
    if (frame->kind() == Frame::Kind::kEvent) conn->lastEventMs = conn->lastFrameMs;
    if (coded) {
      const bool prefixed = frame->kind() == Frame::Kind::kEvent && conn->prefixMeta.size > 0;
      if (prefixed) conn->coder.add(conn->prefixMeta);
      const compress::Meta m = compress::metaOfVariant(*frame);
      conn->coder.add(m);
      bump(counters_.codedIn, m.size + (prefixed ? conn->prefixMeta.size : 0));
      bump(counters_.codedOut, frame->size() + (prefixed ? conn->prefixMeta.size + 5 : 0));  // a stored block
    } else if (frame->coded()) {
      bump(counters_.codedOut, frame->size());
    }
  }
  if (!conn->dirty) {
    conn->dirty = true;
    dirty_.push_back(conn);
  }
}

void Shard::fanOut(const Command& c, bool useIndex) {
  targets_.clear();
  const std::vector<uint32_t>& users = c.users;
  auto visit = [&](Conn* conn) {
    if (!conn || conn->detached) return;
    if (!users.empty() && !std::binary_search(users.begin(), users.end(), conn->user)) return;
    targets_.push_back(conn);
  };
  if (useIndex) {
    topics_.match(c.topic, [&](uint32_t slot) { visit(slots_[slot]); });
  } else {
    for (Conn* conn : slots_) {
      if (conn && conn->broadcasts) visit(conn);
    }
  }
  // Only now: enqueue() closes a slow connection, which takes it out of the
  // topic index, and the index must not change while match() walks a bucket.
  enqueueTargets(c.frame);
}

// A routed publish: the connections subscribed to any of c.topics, each once
// (a protocol routes each connection through one topic, so the sort below
// only runs for a connection that holds several).
void Shard::fanOutRouted(const Command& c) {
  targets_.clear();
  for (const std::string& topic : c.topics) {
    topics_.match(topic, [&](uint32_t slot) {
      Conn* conn = slots_[slot];
      if (conn && !conn->detached) targets_.push_back(conn);
    });
  }
  if (c.topics.size() > 1) {
    std::sort(targets_.begin(), targets_.end());
    targets_.erase(std::unique(targets_.begin(), targets_.end()), targets_.end());
  }
  enqueueTargets(c.frame);
}

// Queues frame on every connection of targets_; those of the JS transport get
// it through the sink, in one call.
void Shard::enqueueTargets(const FrameRef& frame) {
  jsIds_.clear();
  for (Conn* conn : targets_) {
    if (conn->fd < 0) {
      jsIds_.push_back(conn->id);
      conn->lastFrameMs = conn->lastEventMs = uv_now(&loop_);
    } else {
      enqueue(conn, frame);
    }
  }
  if (!jsIds_.empty()) {
    bump(counters_.delivered, jsIds_.size());
    sink_->onJsDeliver(index_, frame, std::move(jsIds_));
    jsIds_ = std::vector<uint64_t>();
  }
}

// The history started over (Dispatcher::rebase): later heartbeats carry the
// new position, and every stream that takes part in history gets the reset
// event now, after every event posted before the rebase and before any after.
void Shard::rebase(Command& c) {
  historyEpoch_ = std::move(c.topic);
  lastSeq_ = c.seq;
  positionHeartbeatSeq_ = UINT64_MAX;  // the cached heartbeat names the old epoch
  if (!c.frame) return;                // a rebase without reset (Dispatcher::rebase)
  targets_.clear();
  for (Conn* conn : slots_) {
    if (conn && !conn->detached && conn->positions) targets_.push_back(conn);
  }
  // As in fanOut(): enqueue() may close a slow connection, so after the walk.
  enqueueTargets(c.frame);
}

void Shard::flushDirty() {
  // flush() may close connections; they stay allocated until afterCallback.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Conn* conn = dirty_[i];
    conn->dirty = false;
    if (!conn->released && !conn->writable) flush(conn);
  }
  dirty_.clear();
}

void Shard::flush(Conn* conn) {
  struct iovec iov[kMaxIov];
  while (!conn->outbox.empty()) {
    int n = conn->outbox.buildIov(iov, kMaxIov);
    size_t want = 0;
    for (int i = 0; i < n; ++i) want += iov[i].iov_len;
    // sendmsg is writev with flags: MSG_NOSIGNAL turns a vanished peer into
    // EPIPE instead of a process-killing SIGPIPE (Node ignores SIGPIPE, but
    // an embedding or test process may not).
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t w = ::sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      closeConn(conn, isPeerGone(errno) ? DisconnectReason::kClient : DisconnectReason::kError);
      return;
    }
    size_t events = 0;
    conn->outbox.consume(static_cast<size_t>(w), &events);
    drop(counters_.queueBytes, static_cast<uint64_t>(w));
    bump(counters_.bytesWritten, static_cast<uint64_t>(w));
    bump(counters_.delivered, events);
    if (static_cast<size_t>(w) < want) break;  // the kernel buffer is full
  }
  if (!conn->outbox.empty()) {
    setWritable(conn, true);
    return;
  }
  setWritable(conn, false);
  if (conn->ending) {
    // Body ended and flushed: half-close so the client sees EOF after the
    // last byte, then release the fd.
    ::shutdown(conn->fd, SHUT_WR);
    closeConn(conn, DisconnectReason::kShutdown);  // no-op detach when already detached
  }
}

// ---- watching the streams' sockets ------------------------------------------
//
// Linux: one epoll set of the shard's own, itself watched by the loop (an
// epoll fd is pollable): a stream costs one epoll_ctl to join it and one to
// leave, and one per switch of its write watch. A uv_poll_t per stream costs
// an ioctl and four epoll_ctl over its life (uv_poll_init tries the fd with
// an add and a delete, every uv_poll_start deletes it first) and about 150
// bytes of handle; in a connect storm those syscalls were a fifth of the
// shard's time. Elsewhere (macOS), and with SSE_FANOUT_UV_POLL (a CI build
// checks that variant), a uv_poll_t per stream.

#if SSE_FANOUT_EPOLL

namespace {
uint32_t epollEventsOf(bool writable) { return EPOLLIN | EPOLLRDHUP | (writable ? EPOLLOUT : 0); }
}  // namespace

bool Shard::watch(Conn* conn) {
  epoll_event ev{};
  ev.events = epollEventsOf(false);
  ev.data.ptr = conn;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, conn->fd, &ev) != 0) return false;
  conn->watched = true;
  return true;
}

void Shard::setWritable(Conn* conn, bool on) {
  if (conn->writable == on) return;
  conn->writable = on;
  epoll_event ev{};
  ev.events = epollEventsOf(on);
  ev.data.ptr = conn;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, conn->fd, &ev);
}

// The set has events: at most kEpollBatch of them per loop turn (the set
// stays readable while more wait, so timers and commands get their turns).
void Shard::onEpoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<Shard*>(handle->data);
  epoll_event ready[kEpollBatch];
  const int n = epoll_wait(self->epfd_, ready, kEpollBatch, 0);
  for (int i = 0; i < n; ++i) {
    auto* conn = static_cast<Conn*>(ready[i].data.ptr);
    // Released by an earlier event of this batch: still allocated (the
    // graveyard is freed in afterCallback()).
    if (conn->released) continue;
    const uint32_t e = ready[i].events;
    // As libuv reports them to a uv_poll_t: EPOLLERR as an error, a hang-up
    // as readable (the read finds the end or the error).
    int uvEvents = 0;
    if (e & (EPOLLIN | EPOLLHUP)) uvEvents |= UV_READABLE;
    if (e & EPOLLRDHUP) uvEvents |= UV_DISCONNECT;
    if (e & EPOLLOUT) uvEvents |= UV_WRITABLE;
    self->onConnEvents(conn, (e & EPOLLERR) ? UV_EBADF : 0, uvEvents);
  }
  self->afterCallback();
}

void Shard::unwatch(Conn* conn) {
  if (conn->watched) {
    // Explicitly: closing the fd would leave the registration in place
    // while another descriptor shares the socket.
    epoll_ctl(epfd_, EPOLL_CTL_DEL, conn->fd, nullptr);
    conn->watched = false;
  }
  ::close(conn->fd);  // only the owning thread closes
  conn->fd = -1;
  graveyard_.push_back(conn);
}

#else

bool Shard::watch(Conn* conn) {
  if (uv_poll_init(&loop_, &conn->poll, conn->fd) != 0) return false;
  conn->poll.data = conn;
  uv_poll_start(&conn->poll, UV_READABLE | UV_DISCONNECT, onPoll);
  return true;
}

void Shard::setWritable(Conn* conn, bool on) {
  if (conn->writable == on) return;
  conn->writable = on;
  uv_poll_start(&conn->poll, UV_READABLE | UV_DISCONNECT | (on ? UV_WRITABLE : 0), onPoll);
}

void Shard::onPoll(uv_poll_t* handle, int status, int events) {
  auto* conn = static_cast<Conn*>(handle->data);
  Shard* self = conn->shard;
  if (conn->released) return;
  self->onConnEvents(conn, status, events);
  self->afterCallback();
}

void Shard::unwatch(Conn* conn) {
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->poll), onPollClosed);  // stops it too
}

void Shard::onPollClosed(uv_handle_t* handle) {
  auto* conn = static_cast<Conn*>(handle->data);
  ::close(conn->fd);  // only the owning thread closes, and only now
  delete conn;
}

#endif

void Shard::onConnEvents(Conn* conn, int status, int events) {
  if (status < 0) {
    // libuv reports EPOLLERR as UV_EBADF whatever the socket's error is; the
    // real one (ECONNRESET when the client reset the connection) is SO_ERROR.
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    const bool gone = status == UV_ECONNRESET || status == UV_EPIPE || isPeerGone(err);
    closeConn(conn, gone ? DisconnectReason::kClient : DisconnectReason::kError);
    return;
  }
  if (events & UV_READABLE) readAndDiscard(conn);
  if (!conn->released && (events & UV_DISCONNECT)) closeConn(conn, DisconnectReason::kClient);
  // flush() stops watching for UV_WRITABLE once the outbox is empty; every
  // change of the watch is a syscall, so it is left alone while bytes remain.
  if (!conn->released && (events & UV_WRITABLE)) flush(conn);
}

// SSE clients send nothing after the request; whatever arrives is dropped. A
// zero-byte read is the client's FIN.
void Shard::readAndDiscard(Conn* conn) {
  char buf[4096];
  for (int i = 0; i < 16; ++i) {
    ssize_t r = ::read(conn->fd, buf, sizeof buf);
    if (r > 0) continue;
    if (r == 0) {
      closeConn(conn, DisconnectReason::kClient);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    closeConn(conn, isPeerGone(errno) ? DisconnectReason::kClient : DisconnectReason::kError);
    return;
  }
}

// Takes the connection out of the shard's view (slot, topics, counters) and
// reports it. Its fd may stay open a little longer (kick, shutdown: flushing
// the end of the body) and is then closed by release().
void Shard::detach(Conn* conn, DisconnectReason reason) {
  if (conn->detached) return;
  conn->detached = true;
  if (conn->slot < slots_.size() && slots_[conn->slot] == conn) slots_[conn->slot] = nullptr;
  topics_.unsubscribeAll(conn->slot);
  counters_.subscriptions.store(topics_.totalSubscriptions(), std::memory_order_relaxed);
  drop(counters_.connections, 1);
  if (conn->coder.active()) drop(counters_.codedConnections, 1);
  sink_->onDisconnect(index_, conn->id, reason);
  if (!conn->released && conn->fd >= 0) {
    conn->drainSinceMs = uv_now(&loop_);
    draining_.push_back(conn);
  }
}

// Drops what is queued and closes the fd once libuv has let go of the poll
// handle. `abortive` resets the connection (SO_LINGER 0) so a stalled peer's
// unsent data is dropped by the kernel at once instead of pinning memory.
void Shard::release(Conn* conn, bool abortive) {
  if (conn->released) return;
  conn->released = true;
  --live_;
  drop(counters_.queueBytes, conn->outbox.pendingBytes());
  conn->outbox.clear();
  if (conn->fd < 0) {
    graveyard_.push_back(conn);
    return;
  }
  auto it = std::find(draining_.begin(), draining_.end(), conn);
  if (it != draining_.end()) {
    *it = draining_.back();
    draining_.pop_back();
  }
  if (abortive) {
    struct linger lg = {1, 0};
    setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  unwatch(conn);
}

// Orderly end: what is queued is sent, the body ended, then the fd closed.
// The slot is given back at once (the registry may reuse it).
void Shard::endStream(Conn* conn, DisconnectReason reason) {
  if (conn->fd < 0) {
    closeConn(conn, reason);
  } else {
    detach(conn, reason);
    endBody(conn);
  }
}

// Queues the end of the body (the last chunk when chunked); flush() then
// half-closes and releases the connection.
void Shard::endBody(Conn* conn) {
  conn->ending = true;
  size_t before = conn->outbox.pendingBytes();
  // A compressed body ends with its final block and trailer (never refused).
  if (conn->coder.active()) conn->outbox.push(conn->coder.trailer(), true);
  conn->outbox.pushEndOfBody();
  bump(counters_.queueBytes, conn->outbox.pendingBytes() - before);
  enqueue(conn, FrameRef());
}

void Shard::closeEverything() {
  for (Conn* conn : slots_) {
    if (conn && !conn->detached) closeConn(conn, DisconnectReason::kShutdown, true);
  }
  while (!draining_.empty()) release(draining_.back(), true);
}

// Process exit: no later loop turn will flush anything, so every open stream
// gets what is queued and the end of its body now, in non-blocking writes, as
// far as its socket buffer takes them. A stream that took it all is half-
// closed and closed in order; closeEverything() resets the others.
void Shard::endEverythingNow() {
  for (Conn* conn : slots_) {
    if (conn && !conn->detached && conn->fd >= 0) endStream(conn, DisconnectReason::kShutdown);
  }
  std::vector<Conn*> pending(draining_);
  for (Conn* conn : pending) {
    if (!conn->released) flush(conn);
  }
}

void Shard::removeService(ShardService* service) {
  services_.erase(std::remove(services_.begin(), services_.end(), service), services_.end());
}

// Services close their handles (a service may remove itself meanwhile).
void Shard::endServices() {
  std::vector<ShardService*> all(services_);
  for (ShardService* s : all) s->onShardEnding(*this);
}

void Shard::beginShutdown() {
  if (shuttingDown_) return;
  shuttingDown_ = true;
  endServices();
  for (Conn* conn : slots_) {
    if (conn && !conn->detached) endStream(conn, DisconnectReason::kShutdown);
  }
}

void Shard::finishIfDone() {
  if (live_ == 0) endLoop();
}

void Shard::endLoop() {
  if (ending_) return;
  ending_ = true;
  endServices();
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
    for (Command& c : queue_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    // Dropped unrun; the commands of the current drain() count down there.
    uint64_t bytes = 0;
    for (const Command& c : queue_) bytes += bytesOf(c);
    queuedCommands_.fetch_sub(queue_.size(), std::memory_order_relaxed);
    queuedBytes_.fetch_sub(bytes, std::memory_order_relaxed);
    queue_.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
#if SSE_FANOUT_EPOLL
  uv_close(reinterpret_cast<uv_handle_t*>(&epoll_), nullptr);
#endif
}

void Shard::onTick(uv_timer_t* handle) {
  auto* self = static_cast<Shard*>(handle->data);
  const uint64_t now = uv_now(&self->loop_);
  const uint64_t limit = self->options_.closeTimeoutMs;
  for (size_t i = self->draining_.size(); i > 0; --i) {
    Conn* conn = self->draining_[i - 1];
    if (now - conn->drainSinceMs >= limit) self->release(conn, true);
  }
  const uint64_t idle = self->options_.heartbeatMs;
  std::vector<uint64_t> js;
  std::vector<uint64_t> jsPositions;
  for (Conn* conn : self->slots_) {
    if (!conn || conn->detached) continue;
    if ((conn->idleMs > 0 && now - conn->lastEventMs >= conn->idleMs) ||
        (conn->lifetimeMs > 0 && now - conn->bornMs >= conn->lifetimeMs)) {
      self->endStream(conn, DisconnectReason::kTimeout);
      continue;
    }
    if (idle == 0 || now - conn->lastFrameMs < idle) continue;
    bump(self->counters_.heartbeats, 1);
    if (conn->fd < 0) {
      (conn->positions ? jsPositions : js).push_back(conn->id);
      conn->lastFrameMs = now;
    } else {
      self->enqueue(conn, conn->positions ? self->positionHeartbeat() : self->heartbeatFrame_);
    }
  }
  if (!js.empty()) self->sink_->onJsDeliver(self->index_, self->heartbeatFrame_, std::move(js));
  if (!jsPositions.empty()) self->sink_->onJsDeliver(self->index_, self->positionHeartbeat(), std::move(jsPositions));
  self->afterCallback();
}

}  // namespace ssefanout
