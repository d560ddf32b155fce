// The native listener (issue 17, docs/listener.md): the hub's I/O threads
// accept SSE requests themselves, read and parse them (src/http) and hand the
// streams to the Dispatcher, with no JS object per connection.
//
// Core is what the parts share, on every thread: the options (immutable once
// started), the count of open connections per client address (an IpTicket
// per connection, held from accept to the connection's end), the global
// accept rate, each shard's Acceptor (set and read on that shard's thread
// only), and the Sink that carries accepted requests to the JS thread.
//
// Threads: acceptors run on their shards' threads; Admission (admission.hpp)
// on the JS thread; Core's own methods on any thread, under its mutex. Core
// never calls out (Sink, Shard::post) while holding that mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "accept_encoding.hpp"
#include "command.hpp"
#include "jwt.hpp"
#include "request.hpp"

namespace ssefanout::listener {

constexpr uint32_t kMaxSocketsPerThread = 8;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // Connections the kernel may hold before they are accepted, over all the
  // listener's sockets: each socket's queue is capped at
  // net.core.somaxconn, so the listener opens as many SO_REUSEPORT sockets
  // per thread as this needs (at most kMaxSocketsPerThread).
  uint32_t backlog = 16384;
  std::string path = "/events";
  std::string topicsParam = "topics";  // ?topics=a,b (repeatable)
  http::Limits limits;
  uint32_t headerTimeoutMs = 10000;     // from accept (or the previous response) to a complete head
  uint32_t maxConnectionsPerIp = 256;   // 0: no limit; requests being read count too
  uint32_t acceptRate = 0;              // connections per second over all threads; 0: no limit
  uint32_t maxPendingPerThread = 4096;  // requests being read or waiting for JS, per thread
  // CORS: none when corsOrigins is empty; "*" allows any origin.
  std::vector<std::string> corsOrigins;
  bool corsCredentials = false;
  uint32_t corsMaxAgeS = 600;
  bool compression = false;  // gzip or deflate by Accept-Encoding
  bool authorize = false;    // every stream request goes to JS first
  // The token path (token.hpp): set, every stream request needs a JWT this
  // verifies, checked on the I/O thread (exclusive with authorize).
  std::shared_ptr<const auth::Verifier> token;
  std::string tokenCookie = "mercureAuthorization";  // "" : no cookie token
  std::string tokenQuery = "authorization";          // "" : no query token
  // Verified tokens each acceptor keeps (token_cache.hpp): at most this
  // many, in at most tokenCacheBytes; 0 entries: none kept.
  uint32_t tokenCacheEntries = 1024;
  size_t tokenCacheBytes = 1 << 20;
  // What each stream starts with (as hub.accept's options).
  std::optional<uint64_t> retryMin, retryMax;
  uint32_t idleMs = 0;
  uint32_t lifetimeMs = 0;
  bool history = true;
  uint32_t maxTopics = 64;      // topics one request may name
  size_t maxTopicBytes = 4096;  // their decoded bytes together
};

// A client address, IPv4 as IPv4-mapped IPv6.
struct IpKey {
  uint8_t bytes[16] = {};
  bool operator==(const IpKey& o) const;
};
struct IpKeyHash {
  size_t operator()(const IpKey& k) const;
};

class Core;

// One open connection of an address, from accept until the stream (or the
// refused request) is freed.
class IpTicket : public ConnHook {
 public:
  IpTicket(std::shared_ptr<Core> core, const IpKey& key) : core_(std::move(core)), key_(key) {}
  ~IpTicket() override;
  const IpKey& key() const { return key_; }

 private:
  std::shared_ptr<Core> core_;
  IpKey key_;
};

// A stream request read and parsed on a shard, on its way to the JS thread.
struct Accepted {
  int fd = -1;
  uint32_t shard = 0;
  std::unique_ptr<ConnHook> ticket;
  uint8_t minor = 1;  // HTTP/1.<minor>
  std::vector<std::string> topics;
  std::optional<std::string> lastEventId;
  std::optional<std::string> user;  // from a verified token's claims
  http::Coding coding = http::Coding::kIdentity;
  std::string allowOrigin;  // Access-Control-Allow-Origin to send ("" none)
  bool varyOrigin = false;
  // With Options::authorize: the whole request head and the client address.
  std::string head;
  std::string remoteAddress;
  uint16_t remotePort = 0;
  Accepted() = default;
  // A moved-from request no longer owns the fd (a defaulted move would copy it).
  Accepted(Accepted&& o) noexcept;
  Accepted& operator=(Accepted&& o) noexcept;
  Accepted(const Accepted&) = delete;
  Accepted& operator=(const Accepted&) = delete;
  ~Accepted();
};

// Receives what the acceptors produce. Any thread; onClosed() may run while
// a shard holds its queue's lock (a start task dropped unrun), so a Sink
// never posts to a shard from these calls.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void onAccepted(std::vector<Accepted>&& batch) = 0;
  // Every acceptor has closed its listening socket (or never started).
  virtual void onClosed() = 0;
};

class Acceptor;

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(Options options, uint32_t shards, Sink* sink);

  const Options& options() const { return options_; }
  uint32_t shards() const { return static_cast<uint32_t>(acceptors_.size()); }

  // A ticket for one more connection from `key`, or null past
  // maxConnectionsPerIp.
  std::unique_ptr<IpTicket> admit(const IpKey& key);
  void releaseIp(const IpKey& key);
  size_t addresses() const;
  // One accept under acceptRate: true, or false with *waitMs until a token.
  bool takeAcceptToken(uint64_t nowMs, uint64_t* waitMs);
  // A token taken for an accept that found no connection.
  void refundAcceptToken();

  // The shard thread's own slot.
  Acceptor*& acceptorOf(uint32_t shard) { return acceptors_[shard]; }

  // Requests a shard handed over that the JS thread has not taken yet: they
  // count against maxPendingPerThread with those being read (any thread).
  void handedOver(uint32_t shard) { waiting_[shard].fetch_add(1, std::memory_order_relaxed); }
  void taken(uint32_t shard) { waiting_[shard].fetch_sub(1, std::memory_order_relaxed); }
  uint32_t waiting(uint32_t shard) const { return waiting_[shard].load(std::memory_order_relaxed); }
  // A shard's acceptor paused for room: the JS thread, once it has taken
  // requests of that shard, posts roomTask() there (takeRoomWanted() says
  // whether to), so accepting resumes within a batch, not at the next sweep.
  // The fences pair as Dekker's: an acceptor stores wantRoom then reads
  // waiting(), the JS thread lowers waiting (taken) then reads the flag, so
  // at least one sees the other's write and no wake-up is lost; the acceptor
  // looks at its room again after wantRoom().
  void wantRoom(uint32_t shard) {
    roomWanted_[shard].store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  bool takeRoomWanted(uint32_t shard) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return roomWanted_[shard].load(std::memory_order_relaxed) &&
           roomWanted_[shard].exchange(false, std::memory_order_acq_rel);
  }

  // Sink calls, until detachSink() (then dropped: the JS side is gone).
  void deliver(std::vector<Accepted>&& batch);
  // One acceptor (or a start that never ran) is done; the last one tells the sink.
  void acceptorDone();
  void expectAcceptors(uint32_t n) { remaining_.store(n); }
  void detachSink();

  // Counters (any thread).
  std::atomic<uint64_t> accepted{0};        // TCP connections accepted
  std::atomic<uint64_t> streams{0};         // requests handed on as streams
  std::atomic<uint64_t> refusedIp{0};       // closed past maxConnectionsPerIp
  std::atomic<uint64_t> badRequests{0};     // answered with a 4xx/5xx by the parser or routing
  std::atomic<uint64_t> timedOut{0};        // closed by the header timeout
  std::atomic<uint64_t> preflights{0};      // OPTIONS answered
  std::atomic<uint64_t> tokenRefused{0};    // 401/403/400 from the token path
  std::atomic<uint64_t> tokenCacheHits{0};  // tokens taken from a TokenCache, not verified again
  std::atomic<uint64_t> pending{0};         // being read or waiting for JS

 private:
  const Options options_;
  std::vector<Acceptor*> acceptors_;  // each slot: its shard's thread only
  std::unique_ptr<std::atomic<uint32_t>[]> waiting_;
  std::unique_ptr<std::atomic<bool>[]> roomWanted_;

  mutable std::mutex mu_;
  std::unordered_map<IpKey, uint32_t, IpKeyHash> perIp_;  // guarded
  double tokens_ = 0;                                     // guarded
  uint64_t refillMs_ = 0;                                 // guarded
  // Guarded by sinkMu_, held across sink calls so detachSink() waits for a
  // call in progress (a sink never calls back into Core).
  std::mutex sinkMu_;
  Sink* sink_ = nullptr;
  std::atomic<uint32_t> remaining_{0};
};

// Starts the acceptor of one shard on its listening sockets (run on that
// shard's thread); its destructor, when it never ran, closes them and counts
// the acceptor as done.
std::unique_ptr<ShardTask> startTask(std::shared_ptr<Core> core, std::vector<int> listenFds);
// Closes the acceptor of one shard.
std::unique_ptr<ShardTask> stopTask(std::shared_ptr<Core> core);
// Resumes the shard's acceptor if it paused for room and has some again.
std::unique_ptr<ShardTask> roomTask(std::shared_ptr<Core> core);
// Writes `response` to a refused request's connection on its shard (lingering
// for the client to read it), then closes it.
std::unique_ptr<ShardTask> refuseTask(std::shared_ptr<Core> core, Accepted&& request, std::string response);

}  // namespace ssefanout::listener
