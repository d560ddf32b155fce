// Dispatcher: the JS-thread state of a hub, in plain C++ (no Node-API).
//
// Owns the Registry (connection ids), the UserTable, the per-slot mirror of
// each connection's subscriptions (so caps are checked synchronously, before
// anything is posted) and the shards, which it creates, starts and stops.
// Every method answers a Status; the addon (src/addon/hub_wrap) only converts
// arguments and turns statuses into numbers for lib/hub.js.
//
// Commands are batched per shard and handed over by flush() (once per JS job)
// or when a batch reaches kBatchLimit. What waits for a shard (its batch here
// plus its queue) is bounded by maxPendingCommands / maxPendingBytes: publish,
// broadcast, send, publishMany and sendFrame answer kQueueFull past it and
// post nothing. A publish or broadcast goes to every shard or to none.
//
// Sequences from outside (the Redis bus): publishSequenced() publishes a
// batch of events whose epoch and sequence numbers the caller assigned (one
// sequence shared by many hubs), and rebase() starts the history over at
// another epoch or position, with one reset event to every stream that takes
// part in history, in order with the events around it.
//
// Protocols (PocketBase's realtime wrap today) use the small named API at the
// end: shardOf(), changeTopics(), publishMany(), sendFrame(),
// countPublished(), and an Observer told when a connection is forgotten.
//
// Threads: every method runs on one thread (the JS thread). The shards call
// the ShardSink given to the constructor on their own threads; the sink must
// outlive the dispatcher (or stopNow()). The sink calls forget() on the
// dispatcher's thread when it hands a disconnect to JS.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "command.hpp"
#include "delivery.hpp"
#include "history.hpp"
#include "registry.hpp"
#include "shard.hpp"
#include "sse_encoder.hpp"
#include "user_table.hpp"

namespace ssefanout {

struct HubOptions {
  ShardOptions shard;
  uint32_t threads = 1;  // clamped to [1, kMaxThreads]
  uint32_t maxConnections = Registry::kMaxSlots;
  uint64_t maxPendingCommands = 0;  // 0 = no bound
  uint64_t maxPendingBytes = 0;     // 0 = no bound
  // History and resume (src/history): off when absent.
  std::optional<history::HistoryOptions> history;
};

// What a new stream starts with (lib/hub.js accept() options, validated there).
struct StreamOptions {
  std::vector<std::string> topics;  // each must pass validateTopic()
  std::optional<std::string> user;
  std::optional<uint64_t> retryMs;      // a "retry:" frame sent first
  std::optional<std::string> streamId;  // "id:" before every event (adopted streams only)
  uint32_t idleMs = 0;                  // 0 = never
  uint32_t lifetimeMs = 0;              // 0 = never
  // With history on: where the client resumes (its Last-Event-ID), and
  // whether the stream takes part at all (false: no replay, no position
  // frames; PocketBase's streams).
  std::optional<std::string> lastEventId;
  bool history = true;
  // A protocol's stream (Mercure): `routes` are internal topics
  // (isInternalTopic) it is subscribed to besides `topics`, kept out of the
  // subscription mirror and its cap (the protocol's business, as with
  // changeTopics()); `replayFilter` chooses what it replays (history::Reader);
  // with positions false it gets no position frame, no reset event and plain
  // heartbeats (a position would tell it how many events it did not see),
  // and a replay past maxReplayEvents or its queue gives it the newest
  // events that fit (History::selectNewest), not a reset.
  // A stream with a replayFilter takes no broadcast (live or replayed: a
  // broadcast has no topic its protocol could authorize).
  std::vector<std::string> routes;
  const history::ReplayFilter* replayFilter = nullptr;
  bool positions = true;
  bool cursorIdsOnly = false;  // lastEventId places it only as a publisher's id (History::locate)
  // Adopted streams: the body's Content-Encoding (the head must say so).
  // Every frame then goes out as its coded variant (src/compress).
  compress::Coding coding = compress::Coding::kIdentity;
  // Adopted streams: the fd is non-blocking and carries the stream socket
  // options already (setStreamSocketOptions; the native listener's sockets).
  bool preparedSocket = false;
};

struct ShardStats {
  uint64_t connections = 0;
  uint64_t subscriptions = 0;
  uint64_t published = 0;
  uint64_t delivered = 0;
  uint64_t bytesWritten = 0;
  uint64_t slow = 0;
  uint64_t queueBytes = 0;
  uint64_t heartbeats = 0;
  uint64_t codedConnections = 0;
  uint64_t codedIn = 0;          // compressed streams: frame bytes before their coding
  uint64_t codedOut = 0;         // and after
  uint64_t pendingCommands = 0;  // in its batch here and in its queue
  uint64_t pendingBytes = 0;
};

struct DispatcherStats {
  uint64_t connections = 0;  // live ids
  uint64_t subscriptions = 0;
  uint64_t published = 0;  // publish/broadcast/send (and protocol events) accepted here
  uint64_t delivered = 0;
  uint64_t bytesWritten = 0;
  uint64_t slow = 0;
  uint64_t queueBytes = 0;
  uint64_t heartbeats = 0;
  uint64_t codedConnections = 0;  // compressed streams
  uint64_t codedIn = 0;           // their frame bytes before the coding
  uint64_t codedOut = 0;          // and after
  uint64_t pendingCommands = 0;
  uint64_t pendingBytes = 0;
  uint64_t queueFull = 0;  // refusals at the pending bound
  uint64_t users = 0;
  std::vector<ShardStats> threads;
};

class Dispatcher {
 public:
  static constexpr uint32_t kMaxThreads = 64;
  // Commands wait in a per-shard batch until flush() or until the batch is
  // this large: one lock and one wake-up per batch instead of per call.
  static constexpr size_t kBatchLimit = 256;
  // What queueing adds to an event frame: the chunk header and its closing
  // CRLF (at most Frame::kMaxChunkHeader + 2 = 20 bytes), rounded up. An event
  // whose encoding plus this passes maxQueueBytes could never be queued.
  static constexpr size_t kQueueFraming = 32;

  // Told on the dispatcher's thread when a connection is forgotten (its
  // disconnect is handed to JS): a protocol index drops what it holds for it.
  class Observer {
   public:
    virtual ~Observer() = default;
    virtual void onForget(uint64_t id) = 0;
    // The dispatcher is being destroyed with this observer still registered.
    virtual void onDetached() {}
  };

  Dispatcher(const HubOptions& options, ShardSink* sink);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // With history on (HubOptions::history), every publish and broadcast takes
  // the next sequence number of the History, and its frame (its wire id the
  // cursor "<epoch>-<seq>" unless the publisher gave one) is kept there; a
  // new stream gets, in its adopt command, the frames it missed after its
  // lastEventId (or a reset event) and the position frame. The adopt command
  // follows every publish already posted and precedes every later one in its
  // shard's queue, so the replay and the live events meet with no gap and no
  // duplicate.

  // Creates and starts the shards: 0, or the libuv error of the one that
  // failed (the caller then stops those already running with stopNow()).
  int start();

  // A socket to be written by a shard. Takes `fd` in every case: closed here
  // when the status is not kOk. `head` is written first (the HTTP response
  // head), chunked frames every event as an HTTP/1.1 chunk.
  // `*hook` (when given) is kept by the connection until it is freed
  // (ConnHook). With keepOnRefusal the fd and *hook stay the caller's when
  // the status is not kOk (the native listener answers the refusal on it,
  // still counting its address).
  Status adopt(int fd, std::string_view head, bool chunked, StreamOptions stream, uint64_t* id,
               std::unique_ptr<ConnHook>* hook = nullptr, bool keepOnRefusal = false);
  // Posts a task to one shard (ShardTask), whatever the pending bound.
  void postTask(uint32_t shard, std::unique_ptr<ShardTask> task);
  Shard* shard(uint32_t index) { return index < shards_.size() ? shards_[index].get() : nullptr; }
  // A stream the JS thread writes (frames come back through onJsDeliver).
  Status attach(StreamOptions stream, uint64_t* id);
  // All or nothing: the cap is checked before anything changes.
  Status subscribe(uint64_t id, std::vector<std::string> topics);
  Status unsubscribe(uint64_t id, std::vector<std::string> topics);
  // users: nullptr = no restriction; else only connections of these users
  // (unknown names ignored; none known = delivered to nobody, counted).
  Status publish(std::string_view topic, const EventFields& event, const std::vector<std::string_view>* users);
  Status broadcast(const EventFields& event, const std::vector<std::string_view>* users);
  Status send(uint64_t id, const EventFields& event);
  Status kick(uint64_t id);
  // A JS-transport stream ended on the JS side (no kClosed check: the
  // connection must still be reported).
  Status detach(uint64_t id, DisconnectReason reason);
  bool has(uint64_t id) const { return slotFor(id) != nullptr; }
  // Sorted; nullptr for an unknown connection.
  const std::vector<std::string>* subscriptions(uint64_t id) const;
  DispatcherStats stats() const;

  // Every shard flushes, ends its streams and stops; the sink's onStopped
  // follows once per shard. Idempotent.
  void close();
  bool closing() const { return closing_; }
  void flush();
  // Stops every shard now and waits for them (environment teardown; with
  // endBodies, process exit: what was batched still goes out, and the end of
  // every body, best effort). Closes the fds of adoptions not yet posted;
  // the dispatcher is closed after it.
  void stopNow(bool endBodies = false);
  // Joins the shards after each reported onStopped.
  void joinShards();
  size_t shardCount() const { return shards_.size(); }
  // The connection is gone from its shard: its id is released (and never
  // issued again) and the observers are told.
  void forget(uint64_t id);

  // ---- sequences from outside (the Redis bus) --------------------------------
  // One event of a sequenced batch: a publish on `topic` (empty: a
  // broadcast) as publish()/broadcast() take it; or, with `skip`, a sequence
  // number that delivers nothing (an entry the bus could not decode): the
  // history keeps it as an event nobody may read, so it stays contiguous.
  struct SequencedEvent {
    std::string_view topic;
    EventFields event;
    const std::vector<std::string_view>* users = nullptr;
    bool skip = false;
  };
  // The most events one publishSequenced() takes: what one call may hold
  // the JS thread (encoding, the history), whatever the pending bound.
  static constexpr size_t kMaxBatchEvents = 4096;
  // Publishes events[i] with sequence firstSeq + i of `epoch` (history on
  // only), in order, each as publish()/broadcast() would with history on
  // (wire id the publisher's, else "<epoch>-<seq>"). When `epoch` is not the
  // history's or firstSeq is not its latest() + 1, rebases to (epoch,
  // firstSeq - 1) first (rebase() below), in the same all-or-nothing step.
  // All or nothing: kClosed; kInvalidId (history off, an epoch that is not
  // validEpoch(), firstSeq 0, or a sequence past history::kMaxSeq: the ids
  // "<epoch>-<seq>" could not be cursors); kDataTooLarge (more than
  // kMaxBatchEvents events); kInvalidTopic, kInvalidEvent, kInvalidId,
  // kDataTooLarge of an event (as publish() answers them); kQueueFull when
  // the whole batch (its commands and frame bytes, and the rebase's command)
  // does not fit every shard's pending bound. An empty batch changes nothing.
  Status publishSequenced(std::string_view epoch, uint64_t firstSeq, const std::vector<SequencedEvent>& events);
  // History::rebase(epoch, seq) (every event dropped, latest() = seq), then
  // one command per shard, after everything posted before: later heartbeats
  // carry the new position, and every connected stream that takes part in
  // history (StreamOptions::history) gets one reset event, reason "epoch"
  // when the epoch changes, else "expired", requested and oldest null,
  // latest "<epoch>-<seq>". Posted whatever the pending bound (one command per
  // shard; refusing it would leave the hub serving a history its caller has
  // declared stale). kClosed; kInvalidId as for publishSequenced().
  // reset false: no reset event (the Redis bus's outage transitions, where
  // nothing was missed): connected streams only see ids of the new epoch
  // from then on; the rest is the same.
  Status rebase(std::string_view epoch, uint64_t seq, bool reset = true);

  // ---- for protocols -------------------------------------------------------
  // kOk while the hub is open and id names a live connection, else kClosed or
  // kUnknownConnection.
  Status checkConnection(uint64_t id) const;
  // The shard of a live connection (kUnknownConnection otherwise).
  Status shardOf(uint64_t id, uint32_t* shard) const;
  // Posts the removal of `remove` then the addition of `add` (internal
  // topics: the subscription mirror and its cap are the protocol's business).
  Status changeTopics(uint64_t id, std::vector<std::string>&& remove, std::vector<std::string>&& add);
  // Posts every (topic, frame) to every shard: all of them fit each shard's
  // bound or nothing is posted (kQueueFull). Counts one published event.
  Status publishMany(std::vector<Delivery>& deliveries);
  // A protocol's event (Mercure's updates): encoded once, tagged with `tag`
  // (a protocol tag, history::isProtocolTag: only a reader with a
  // ReplayFilter replays it) and posted to every shard with `routes`, the
  // internal topics whose connections take it, each connection once. With
  // history on it takes the next sequence (wire id event.id when given,
  // else the cursor) and with no route the shards still get the position.
  // All or nothing under the pending bound (kQueueFull). kInvalidTopic: a
  // tag that is not a protocol tag, or a route that is not internal;
  // kInvalidEvent, kInvalidId, kDataTooLarge as publish() answers them.
  Status publishRouted(const EventFields& event, std::string_view tag, std::vector<std::string>&& routes);
  // A pre-encoded frame to one connection. `exempt`: posted whatever the
  // bound (a protocol's greeting, posted as the connection itself was).
  Status sendFrame(uint64_t id, FrameRef frame, bool exempt);
  void countPublished() { ++published_; }
  // The history (nullptr when off): read-only use (catch-up reads, stats)
  // from the dispatcher's thread.
  history::History* history() { return history_.get(); }
  static uint64_t nowMs();
  void addObserver(Observer* observer);
  void removeObserver(Observer* observer);
  const HubOptions& options() const { return options_; }

 private:
  struct Slot {
    uint64_t id = 0;
    uint32_t shard = 0;
    uint32_t user = UserTable::kNoUser;
    std::vector<std::string> subs;  // sorted
  };

  Status addConnection(StreamOptions&& stream, Command&& c, uint64_t* id);
  // The replay (or reset) and position frames of a new stream, into c.replay.
  void resume(const StreamOptions& stream, const std::vector<std::string>& topics, size_t headBytes, Command* c);
  Slot* slotFor(uint64_t id);
  const Slot* slotFor(uint64_t id) const;
  Status openSlot(uint64_t id, Slot** slot);
  Status encode(const EventFields& event, FrameRef* out, std::string_view tag = {}) const;
  bool resolveUsers(const std::vector<std::string_view>* names, std::vector<uint32_t>* users) const;
  void post(uint32_t shard, Command&& c);
  void postBatch(uint32_t shard);
  void postTopics(uint32_t shard, Command::Op op, uint64_t id, std::vector<std::string>&& topics);
  void postAll(Command::Op op, std::string_view topic, FrameRef frame, std::vector<uint32_t>&& users, uint64_t seq);
  // What publish and broadcast share once their own checks passed: encodes the
  // event, resolves the users filter (none known: counted, posted nowhere),
  // checks every shard's bound (kQueueFull) and posts to every shard.
  Status postEventToAll(Command::Op op, std::string_view topic, const EventFields& event,
                        const std::vector<std::string_view>* users);
  // The bound on commands waiting for a shard: true when `count` more holding
  // `bytes` fit. Counts a refusal in queueFull_.
  bool roomFor(uint32_t shard, uint64_t count, uint64_t bytes);
  bool roomForAll(uint64_t count, uint64_t bytes);
  // A rebase once its checks passed and its reset frame is built.
  void postRebase(std::string_view epoch, uint64_t seq, FrameRef reset);

  HubOptions options_;
  ShardSink* const sink_;
  Registry registry_;
  UserTable users_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::vector<Command>> batches_;  // per shard
  std::vector<uint64_t> batchBytes_;           // per shard: Shard::bytesOf() of its batch
  std::vector<Observer*> observers_;
  std::unique_ptr<history::History> history_;
  // What the history keeps for a skipped sequence (an empty frame, made on
  // first use), and the frames and users of the batch publishSequenced() is
  // checking (kept between calls: no allocation per batch once warm).
  FrameRef skipFrame_;
  std::vector<FrameRef> batchFrames_;
  std::vector<std::vector<uint32_t>> batchUsers_;
  uint64_t queueFull_ = 0;
  uint64_t published_ = 0;
  uint32_t nextShard_ = 0;
  bool closing_ = false;
};

}  // namespace ssefanout
