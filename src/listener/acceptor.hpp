// Acceptor: the native listener on one shard's loop.
//
// Polls its listening sockets (SO_REUSEPORT: the kernel spreads connections
// over every socket of the listener, several per thread when the backlog
// asks for more than one socket's queue may hold), accepts under the global accept
// rate and the per-address limit (both before reading a byte), then reads
// and parses each request (src/http) within the header timeout and the
// limits. What it answers itself: parse errors, other paths, OPTIONS (CORS
// preflight), HEAD. A stream request leaves the acceptor as an Accepted,
// batched once per loop turn to the JS thread (Core::deliver); a refusal
// from there comes back through refuse().
//
// Budgets per thread: maxPendingPerThread requests being read or waiting
// for the JS thread (accepting pauses at the bound, so the kernel's backlog
// holds the rest), each with at
// most maxHeadBytes buffered, headerTimeoutMs to send a complete head, at
// most kMaxRequestsPerConnection requests on one connection, and a bounded
// linger after an error answer.
//
// Thread: the shard's, for everything. Lifetime: created by startTask,
// deleted by itself once stop() has closed every handle.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "core.hpp"
#include "shard.hpp"
#include "token_cache.hpp"

namespace ssefanout::listener {

class Acceptor : public ShardService {
 public:
  static constexpr uint32_t kMaxRequestsPerConnection = 100;
  static constexpr uint32_t kLingerMs = 2000;
  static constexpr size_t kMaxLingerBytes = 64 * 1024;
  static constexpr int kAcceptsPerWake = 128;

  Acceptor(std::shared_ptr<Core> core, Shard& shard, std::vector<int> listenFds);
  void start();
  void stop();
  void onShardEnding(Shard& shard) override { stop(); }
  // The JS thread took requests of this shard (roomTask).
  void roomMade();
  // A request the JS thread refused: `response` written, then closed.
  void refuse(Accepted&& request, std::string response);

 private:
  struct Pending;
  // One listening socket and its poll handle (never moved once polled).
  struct Listening {
    Acceptor* owner = nullptr;
    int fd = -1;
    uv_poll_t poll;
  };
  ~Acceptor() override;

  static void onListen(uv_poll_t* handle, int status, int events);
  static void onPending(uv_poll_t* handle, int status, int events);
  static void onSweep(uv_timer_t* handle);
  static void onResume(uv_timer_t* handle);
  static void onCheck(uv_check_t* handle);
  static void onHandleClosed(uv_handle_t* handle);
  static void onPendingClosed(uv_handle_t* handle);

  void acceptSome(int listenFd);
  void pause(uint64_t resumeInMs);
  void resume();
  Pending* track(int fd, std::unique_ptr<ConnHook> ticket, const sockaddr_storage* addr);
  void readFrom(Pending* p);
  void parseBuffered(Pending* p);
  void handle(Pending* p, size_t headEnd);
  void respond(Pending* p, std::string bytes, bool close);
  void writeOut(Pending* p);
  void linger(Pending* p);
  void handOver(Pending* p, Accepted&& a);
  void drop(Pending* p, bool abortive);
  void watch(Pending* p);
  void release(Pending* p);
  void freeReleased();
  void untrack(Pending* p);
  bool alive(const Pending* p) const;
  bool hasRoom() const;
  static constexpr size_t kGone = SIZE_MAX;
  void closeHandle(uv_handle_t* h);
  uint64_t now() const;

  std::shared_ptr<Core> core_;
  Shard& shard_;
  const Options& options_;
  std::vector<std::unique_ptr<Listening>> listens_;
  uv_timer_t sweep_;
  uv_timer_t resume_;
  uv_check_t check_;
  bool paused_ = false;
  bool pausedForRoom_ = false;
  bool stopped_ = false;
  int openHandles_ = 0;
  std::vector<Pending*> pending_;
  // Requests released without a poll handle, freed once the turn's calls
  // that may still read them have returned (at the check phase).
  std::vector<Pending*> released_;
  std::vector<Accepted> ready_;
  TokenCache tokenCache_;  // the token path's verified tokens (this thread's)
};

}  // namespace ssefanout::listener
