// ReportChannel: what the shards report, carried to JS.
//
// The ShardSink of a hub's Dispatcher. Shards call it on their threads: each
// shard stages the reports of one loop turn (disconnects, frames for
// JS-transport connections, its stop) and hands them over together at the
// end of the turn, under one mutex, so the JS transport writes everything of
// a turn to a socket at once. One thread-safe function call carries every
// batch waiting: dispatch() runs on the JS thread, forgets the disconnected
// ids in the Dispatcher and calls onReports with one flat array.
//
// Lifecycle: open() with the callback, then the Dispatcher starts its shards;
// kill() before the shards are stopped for good (nothing reaches JS after
// it); release() once no shard can call any more. JS thread for all but the
// ShardSink methods.
#pragma once

#include <napi.h>

#include <mutex>
#include <vector>

#include "dispatcher.hpp"
#include "shard.hpp"

namespace ssefanout {

class ReportChannel : public ShardSink {
 public:
  explicit ReportChannel(uint32_t shards) : staged_(shards) {}

  void open(Napi::Env env, Napi::Function onReports, Dispatcher* dispatcher);
  // No report reaches JS after this; pending ones are dropped.
  void kill();
  // Lets the thread-safe function go (idempotent); false when it already was.
  bool release();
  bool released() const { return released_; }
  void ref(Napi::Env env);
  void unref(Napi::Env env);

  // ShardSink (shard threads)
  void onDisconnect(uint32_t shard, uint64_t id, DisconnectReason reason) override;
  void onJsDeliver(uint32_t shard, FrameRef frame, std::vector<uint64_t> ids) override;
  void onTurnEnd(uint32_t shard) override;
  void onStopped(uint32_t shard) override;

 private:
  struct Report {
    enum Kind : uint8_t { kDisconnect = 0, kDeliver = 1, kStopped = 2 } kind;
    uint32_t shard = 0;
    uint64_t id = 0;
    DisconnectReason reason = DisconnectReason::kClient;
    FrameRef frame;
    std::vector<uint64_t> ids;
  };

  void stage(Report&& r);
  void publishStaged(uint32_t shard);
  void dispatch(Napi::Env env, Napi::Function callback);

  Dispatcher* dispatcher_ = nullptr;
  Napi::ThreadSafeFunction tsfn_;
  bool opened_ = false;
  bool released_ = false;
  uint32_t stopped_ = 0;

  std::mutex mu_;
  std::vector<Report> reports_;  // guarded by mu_
  bool scheduled_ = false;       // guarded by mu_: a tsfn call is on its way
  bool dead_ = false;            // guarded by mu_: the environment is going away
  std::vector<Report> batch_;    // JS thread only
  // Per shard, touched only by that shard's thread: the reports of the
  // current loop turn.
  std::vector<std::vector<Report>> staged_;
};

}  // namespace ssefanout
