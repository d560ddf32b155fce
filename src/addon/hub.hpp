// Hub (native): the JS-thread side of the fan-out, wrapped for lib/hub.js.
//
// Owns the Registry (connection ids), the UserTable, the per-slot mirror of
// each connection's subscriptions (so caps are checked synchronously) and the
// shards. Methods named JS_* are the whole native surface; arguments arrive
// validated by lib/hub.js, so C++ checks only what protects memory and
// answers with Status codes that JS turns into SseErrors.
//
// Commands are batched per shard and handed over when JS calls flush(). What
// waits for a shard (its batch here plus its queue) is bounded by
// maxPendingCommands / maxPendingBytes: publish, broadcast and send, and the
// PocketBase pbBroadcast, pbPublish and pbSend, answer kQueueFull past it and
// post nothing.
//
// Shards report back through ShardSink on their threads; reports are queued
// under a mutex and handed to JS in batches through one thread-safe function.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pb_index.hpp"
#include "registry.hpp"
#include "shard.hpp"
#include "user_table.hpp"

namespace ssefanout {

class Hub : public Napi::ObjectWrap<Hub>, public ShardSink {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Hub(const Napi::CallbackInfo& info);
  ~Hub() override;

  // ShardSink (shard threads)
  void onDisconnect(uint32_t shard, uint64_t id, DisconnectReason reason) override;
  void onJsDeliver(uint32_t shard, FrameRef frame, std::vector<uint64_t> ids) override;
  void onTurnEnd(uint32_t shard) override;
  void onStopped(uint32_t shard) override;

 private:
  struct Slot {
    uint64_t id = 0;
    uint32_t shard = 0;
    uint32_t user = UserTable::kNoUser;
    std::vector<std::string> subs;  // sorted
  };
  struct Report {
    enum Kind : uint8_t { kDisconnect = 0, kDeliver = 1, kStopped = 2 } kind;
    uint32_t shard = 0;
    uint64_t id = 0;
    DisconnectReason reason = DisconnectReason::kClient;
    FrameRef frame;
    std::vector<uint64_t> ids;
  };

  Napi::Value JS_adopt(const Napi::CallbackInfo& info);
  Napi::Value JS_attach(const Napi::CallbackInfo& info);
  Napi::Value JS_subscribe(const Napi::CallbackInfo& info);
  Napi::Value JS_unsubscribe(const Napi::CallbackInfo& info);
  Napi::Value JS_publish(const Napi::CallbackInfo& info);
  Napi::Value JS_broadcast(const Napi::CallbackInfo& info);
  Napi::Value JS_send(const Napi::CallbackInfo& info);
  Napi::Value JS_kick(const Napi::CallbackInfo& info);
  Napi::Value JS_detach(const Napi::CallbackInfo& info);
  Napi::Value JS_has(const Napi::CallbackInfo& info);
  Napi::Value JS_subscriptions(const Napi::CallbackInfo& info);
  Napi::Value JS_stats(const Napi::CallbackInfo& info);
  Napi::Value JS_close(const Napi::CallbackInfo& info);
  Napi::Value JS_ref(const Napi::CallbackInfo& info);
  Napi::Value JS_unref(const Napi::CallbackInfo& info);
  Napi::Value JS_flush(const Napi::CallbackInfo& info);
  Napi::Value JS_closeSync(const Napi::CallbackInfo& info);
  // PocketBase realtime (lib/pocketbase.js)
  Napi::Value JS_pbSubscribe(const Napi::CallbackInfo& info);
  Napi::Value JS_pbBroadcast(const Napi::CallbackInfo& info);
  Napi::Value JS_pbPublish(const Napi::CallbackInfo& info);
  Napi::Value JS_pbSend(const Napi::CallbackInfo& info);
  Napi::Value JS_pbStats(const Napi::CallbackInfo& info);

  Status addConnection(const Napi::CallbackInfo& info, size_t topicsArg, bool native, int fd, uint64_t* id);
  Slot* slotFor(uint64_t id);
  Status connectionArg(const Napi::CallbackInfo& info, uint64_t* id, Slot** slot);
  static Command connectionCommand(Command::Op op, uint64_t id);
  void postTopics(uint32_t shard, Command::Op op, uint64_t id, std::vector<std::string>&& topics);
  Status encode(const Napi::CallbackInfo& info, size_t dataArg, FrameRef* out);
  bool resolveUsers(const Napi::Value& v, std::vector<uint32_t>* users);
  // Commands wait in a per-shard batch until JS calls flush() (once per JS
  // job, from a microtask) or the batch is large: one lock and one wake-up
  // per batch instead of per call.
  static constexpr size_t kBatchLimit = 256;
  void post(uint32_t shard, Command&& c);
  void postBatch(uint32_t shard);
  void flushAll();
  // The bound on commands waiting for a shard (in its batch here and in its
  // queue): true when one more holding `bytes` fits every shard (all), or
  // `shard`; roomForDeliveries when a PocketBase event's deliveries (each
  // posted to every shard) fit every shard. Counts a refusal in queueFull_.
  bool roomFor(uint64_t bytes);
  bool roomFor(uint32_t shard, uint64_t bytes);
  bool roomForCommands(uint32_t shard, uint64_t commands, uint64_t bytes);
  bool roomForDeliveries(const std::vector<pb::Delivery>& deliveries);
  void postAll(Command::Op op, const std::string* topic, FrameRef frame, std::vector<uint32_t>&& users);
  void postDeliveries(std::vector<pb::Delivery>& deliveries);
  void stage(Report&& r);
  void publishStaged(uint32_t shard);
  void dispatch(Napi::Env env, Napi::Function callback);
  void forget(uint64_t id);
  void stopNow(bool endBodies = false);
  static void CleanupHook(void* arg);

  ShardOptions options_;
  Registry registry_;
  UserTable users_;
  pb::PbIndex pb_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::vector<Command>> batches_;  // per shard, JS thread only
  std::vector<uint64_t> batchBytes_;           // per shard: Shard::bytesOf() of its batch
  uint64_t maxPendingCommands_ = 0;            // 0 = no bound
  uint64_t maxPendingBytes_ = 0;
  uint64_t queueFull_ = 0;                     // publish/broadcast/send refused at the bound
  uint32_t nextShard_ = 0;
  uint32_t stopped_ = 0;
  uint64_t published_ = 0;
  bool closing_ = false;
  bool released_ = false;
  bool hookAdded_ = false;
  napi_env env_ = nullptr;
  Napi::ThreadSafeFunction tsfn_;

  std::mutex mu_;
  std::vector<Report> reports_;  // guarded by mu_
  bool scheduled_ = false;       // guarded by mu_: a tsfn call is on its way
  bool dead_ = false;            // guarded by mu_: the environment is going away
  std::vector<Report> batch_;    // JS thread only
  // Per shard, touched only by that shard's thread: the reports of the current
  // loop turn, handed over together (one lock, one JS call per turn), so that
  // the JS transport writes everything of a turn to a socket at once.
  std::vector<std::vector<Report>> staged_;
};

}  // namespace ssefanout
