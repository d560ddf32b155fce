// Shard: one I/O thread with its own uv_loop_t and the connections it owns.
//
// Ownership: a shard owns its connections outright — their fds (only this
// thread ever closes them), outboxes, topic index entries and timers. Nothing
// on the fan-out path is shared with other threads except refcounted Frames.
//
// Threads: post() may be called from any thread (in practice the JS thread);
// it appends to a mutex-guarded queue and wakes the loop with one
// uv_async_send when the queue was empty. Everything else runs on the shard's
// thread. ShardSink callbacks are made on the shard's thread. What waits in
// the queue is counted (queuedCommands(), queuedBytes(): raised by post(),
// lowered as the thread runs the commands) so a producer can bound it.
//
// Writes: commands drained in one loop turn only queue FrameRefs; at the end
// of the turn every connection with new frames is flushed with one writev
// (more only when more than kMaxIov iovecs are pending). A connection whose
// pending bytes would pass maxQueueBytes is closed with reason "slow".
//
// Timers: one maintenance tick (at most a second apart) sends heartbeats, ends
// streams past their idle or lifetime limit (reason "timeout") and cuts
// detached streams that never take their last bytes.
//
// Lifecycle: start() -> post()... -> post(kShutdown) -> (thread ends after
// every connection is flushed and closed, or after closeTimeoutMs) -> join().
#pragma once

#include <uv.h>

// The streams' sockets are watched through an epoll set of the shard's own
// on Linux (Shard::watch), through a uv_poll_t each elsewhere, or where
// SSE_FANOUT_UV_POLL is defined (a CI build checks that variant on Linux).
#if defined(__linux__) && !defined(SSE_FANOUT_UV_POLL)
#define SSE_FANOUT_EPOLL 1
#else
#define SSE_FANOUT_EPOLL 0
#endif

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "body_coding.hpp"
#include "command.hpp"
#include "outbox.hpp"
#include "topic_index.hpp"

namespace ssefanout {

struct ShardOptions {
  uint32_t heartbeatMs = 15000;  // 0 = no heartbeats
  size_t maxQueueBytes = 1 << 20;
  int sndbufBytes = 128 * 1024;  // 0 = leave the kernel's default
  uint32_t maxSubscriptions = TopicIndex::kDefaultMaxSubscriptions;
  uint32_t closeTimeoutMs = 5000;  // grace for kicked/closing streams to take their last bytes
  // Dead peers (adopted TCP sockets only; 0 = leave the kernel's default).
  // keepAliveMs: SO_KEEPALIVE, first probe after this long with nothing in
  // flight, then every keepAliveMs / 3 (at least 1 s), reset after
  // kKeepAliveProbes unanswered. tcpUserTimeoutMs: TCP_USER_TIMEOUT (Linux),
  // reset once sent data stays unacknowledged (or the peer's window stays
  // shut) this long.
  uint32_t keepAliveMs = 30000;
  uint32_t tcpUserTimeoutMs = 60000;
  // The history's epoch (empty: history off): heartbeats of connections
  // adopted with Command::kPositions carry "id: <epoch>-<seq>", seq the last
  // history event this shard has handled.
  std::string historyEpoch;
  // HistoryOptions::positionEvent: when not empty, those heartbeats are
  // "event: <name>\nid: <epoch>-<seq>\ndata: \n\n" (visible to EventSource).
  std::string positionEvent;
  // Compressed streams (adopted with Command::coding): how a frame's coded
  // variant is made when no variant was made at publish.
  compress::Settings coding;
};

// Receives what a shard reports. Called on the shard's thread.
class ShardSink {
 public:
  virtual ~ShardSink() = default;
  virtual void onDisconnect(uint32_t shard, uint64_t id, DisconnectReason reason) = 0;
  // A frame for JS-transport connections: the JS thread writes it to each id.
  virtual void onJsDeliver(uint32_t shard, FrameRef frame, std::vector<uint64_t> ids) = 0;
  // The end of one loop callback's worth of reports: a sink may hold the
  // reports of a turn and pass them on together here.
  virtual void onTurnEnd(uint32_t shard) {}
  // The shard's loop has ended; no further calls from this shard.
  virtual void onStopped(uint32_t shard) = 0;
};

struct ShardCounters {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> subscriptions{0};
  std::atomic<uint64_t> published{0};  // publish/broadcast/send commands handled
  std::atomic<uint64_t> delivered{0};  // frames written to sockets or handed to JS
  std::atomic<uint64_t> bytesWritten{0};
  std::atomic<uint64_t> slow{0};        // connections closed as slow consumers
  std::atomic<uint64_t> queueBytes{0};  // bytes waiting in outboxes
  std::atomic<uint64_t> heartbeats{0};
  // Compressed streams: the bytes of the frames they were sent, before
  // (codedIn) and after (codedOut) their body coding.
  std::atomic<uint64_t> codedIn{0};
  std::atomic<uint64_t> codedOut{0};
  std::atomic<uint64_t> codedConnections{0};
};

// Another layer living on a shard's loop (the native listener's acceptor,
// src/listener): told on the shard's thread when the shard begins to end, so
// it closes its handles (the loop ends only once every handle is closed).
// It registers itself with addService() and leaves with removeService(),
// both on the shard's thread.
class ShardService {
 public:
  virtual ~ShardService() = default;
  virtual void onShardEnding(Shard& shard) = 0;
};

// The options every stream's socket gets (TCP_NODELAY, keepalive and
// TCP_USER_TIMEOUT for dead peers, SO_SNDBUF): set on each adopted socket,
// or once on a listening socket, whose accepted sockets inherit them (Linux).
void setStreamSocketOptions(int fd, const ShardOptions& o);

class Shard {
 public:
  static constexpr int kMaxIov = 512;
  static constexpr int kKeepAliveProbes = 3;

  Shard(uint32_t index, const ShardOptions& options, ShardSink* sink);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Initialises the loop and starts the thread; returns 0 or a libuv error.
  int start();
  // Any thread. Commands posted after the loop ended are dropped (fds closed).
  void post(Command&& c);
  void post(std::vector<Command>& batch);
  // Waits for the thread to end (after kShutdown or kStop).
  void join();

  uint32_t index() const { return index_; }
  // Shard thread only (ShardTask::run, ShardService): the loop, and whether
  // the shard is ending (a service must not start then).
  uv_loop_t* loop() { return &loop_; }
  bool ending() const { return shuttingDown_ || ending_; }
  void addService(ShardService* service) { services_.push_back(service); }
  void removeService(ShardService* service);
  const ShardOptions& options() const { return options_; }
  const ShardCounters& counters() const { return counters_; }
  // Any thread: commands posted and not yet run, and the frame bytes they
  // hold (what a producer faster than this thread piles up; the Hub bounds
  // it with maxPendingCommands / maxPendingBytes).
  uint64_t queuedCommands() const { return queuedCommands_.load(std::memory_order_relaxed); }
  uint64_t queuedBytes() const { return queuedBytes_.load(std::memory_order_relaxed); }
  // The bytes a command holds for queuedBytes().
  static uint64_t bytesOf(const Command& c) {
    return (c.frame ? c.frame->size() : 0) + (c.frame2 ? c.frame2->size() : 0);
  }

 private:
  struct Conn;

  static void threadMain(void* arg);
  static void onAsync(uv_async_t* handle);
  static void onTick(uv_timer_t* handle);
#if SSE_FANOUT_EPOLL
  static constexpr int kEpollBatch = 256;
  static void onEpoll(uv_poll_t* handle, int status, int events);
#else
  static void onPoll(uv_poll_t* handle, int status, int events);
  static void onPollClosed(uv_handle_t* handle);
#endif
  bool watch(Conn* conn);
  void unwatch(Conn* conn);  // closes the fd; the Conn is freed later
  void onConnEvents(Conn* conn, int status, int events);
  void closeEpoll();

  void drain();
  void run(Command& c);
  void adopt(Command& c);
  Conn* find(uint64_t id);
  void enqueue(Conn* conn, const FrameRef& frame);
  void fanOut(const Command& c, bool useIndex);
  void fanOutRouted(const Command& c);
  void enqueueTargets(const FrameRef& frame);
  void rebase(Command& c);
  void flushDirty();
  void flush(Conn* conn);
  void setWritable(Conn* conn, bool on);
  void readAndDiscard(Conn* conn);
  void detach(Conn* conn, DisconnectReason reason);
  void release(Conn* conn, bool abortive);
  void closeConn(Conn* conn, DisconnectReason reason, bool abortive = false) {
    detach(conn, reason);
    release(conn, abortive);
  }
  void endBody(Conn* conn);
  void endStream(Conn* conn, DisconnectReason reason);
  void closeEverything();
  void endEverythingNow();
  void beginShutdown();
  void finishIfDone();
  void endLoop();
  void endServices();
  void afterCallback();

  const uint32_t index_;
  const ShardOptions options_;
  ShardSink* const sink_;
  ShardCounters counters_;

  uv_loop_t loop_;
  uv_async_t async_;
  uv_timer_t tick_;  // heartbeats and reaping
#if SSE_FANOUT_EPOLL
  int epfd_ = -1;    // the streams' sockets (see watch())
  uv_poll_t epoll_;  // the loop's watch on epfd_
#endif
  uv_thread_t thread_;
  bool started_ = false;
  bool joined_ = false;

  std::mutex mu_;
  std::vector<Command> queue_;  // guarded by mu_
  bool accepting_ = true;       // guarded by mu_: false once the loop is ending
  // Raised under mu_ by post(), lowered by this thread as it runs commands.
  std::atomic<uint64_t> queuedCommands_{0};
  std::atomic<uint64_t> queuedBytes_{0};

  // Shard thread only.
  std::vector<Conn*> slots_;      // by registry slot
  std::vector<Conn*> dirty_;      // connections with frames queued this turn
  std::vector<Conn*> graveyard_;  // connections to free after this turn (all of them, with epoll)
  std::vector<Conn*> draining_;   // detached (kicked, shutting down) but still flushing
  std::vector<Command> work_;
  std::vector<uint64_t> jsIds_;
  std::vector<Conn*> targets_;  // fanOut(): matched connections, enqueued after the walk
  TopicIndex topics_;
  FrameRef heartbeatFrame_;
  // History: its epoch (options_.historyEpoch until a kRebase), the last
  // sequence handled here, and the heartbeat that carries them.
  std::string historyEpoch_;
  FrameRef positionHeartbeat_;
  uint64_t lastSeq_ = 0;
  uint64_t positionHeartbeatSeq_ = UINT64_MAX;
  const FrameRef& positionHeartbeat();
  std::vector<ShardService*> services_;
  size_t live_ = 0;  // connections whose fd (or JS stream) is not yet released
  bool shuttingDown_ = false;
  bool ending_ = false;
};

}  // namespace ssefanout
