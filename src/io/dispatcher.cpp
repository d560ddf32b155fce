#include "dispatcher.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iterator>

namespace ssefanout {
namespace {

Command connectionCommand(Command::Op op, uint64_t id) {
  Command c;
  c.op = op;
  c.id = id;
  return c;
}

}  // namespace

Dispatcher::Dispatcher(const HubOptions& options, ShardSink* sink)
    : options_(options), sink_(sink), registry_(options.maxConnections) {
  options_.threads = std::clamp<uint32_t>(options_.threads, 1, kMaxThreads);
  if (options_.history) {
    history_ = std::make_unique<history::History>(*options_.history);
    options_.shard.historyEpoch = options_.history->epoch;
    options_.shard.positionEvent = options_.history->positionEvent;
  }
}

uint64_t Dispatcher::nowMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

Dispatcher::~Dispatcher() {
  stopNow();
  for (Observer* o : observers_) o->onDetached();
}

int Dispatcher::start() {
  batches_.resize(options_.threads);
  batchBytes_.resize(options_.threads);
  for (uint32_t i = 0; i < options_.threads; ++i) {
    shards_.push_back(std::make_unique<Shard>(i, options_.shard, sink_));
    int rc = shards_.back()->start();
    if (rc != 0) {
      shards_.pop_back();
      return rc;
    }
  }
  return 0;
}

void Dispatcher::stopNow(bool endBodies) {
  closing_ = true;
  for (size_t i = 0; i < batches_.size(); ++i) {
    if (endBodies && i < shards_.size()) {
      postBatch(static_cast<uint32_t>(i));  // what was published still goes out first
      continue;
    }
    for (Command& c : batches_[i]) {
      if (c.fd >= 0) ::close(c.fd);  // adopted by no shard yet
    }
    batches_[i].clear();
    batchBytes_[i] = 0;
  }
  for (auto& shard : shards_) {
    Command stop;
    stop.op = Command::Op::kStop;
    if (endBodies) stop.flags |= Command::kEndBodies;
    shard->post(std::move(stop));
  }
  joinShards();
  shards_.clear();
}

void Dispatcher::joinShards() {
  for (auto& shard : shards_) shard->join();
}

void Dispatcher::close() {
  if (closing_) return;
  closing_ = true;
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    Command c;
    c.op = Command::Op::kShutdown;
    post(i, std::move(c));
  }
  flush();
}

void Dispatcher::flush() {
  for (size_t i = 0; i < batches_.size(); ++i) postBatch(static_cast<uint32_t>(i));
}

// ---- connections -------------------------------------------------------------

Dispatcher::Slot* Dispatcher::slotFor(uint64_t id) {
  if (id == 0 || !registry_.contains(id)) return nullptr;
  return &slots_[Registry::slotOf(id)];
}

const Dispatcher::Slot* Dispatcher::slotFor(uint64_t id) const {
  if (id == 0 || !registry_.contains(id)) return nullptr;
  return &slots_[Registry::slotOf(id)];
}

Status Dispatcher::openSlot(uint64_t id, Slot** slot) {
  if (closing_) return Status::kClosed;
  *slot = slotFor(id);
  return *slot ? Status::kOk : Status::kUnknownConnection;
}

Status Dispatcher::checkConnection(uint64_t id) const {
  if (closing_) return Status::kClosed;
  return slotFor(id) ? Status::kOk : Status::kUnknownConnection;
}

Status Dispatcher::shardOf(uint64_t id, uint32_t* shard) const {
  const Slot* slot = slotFor(id);
  if (!slot) return Status::kUnknownConnection;
  *shard = slot->shard;
  return Status::kOk;
}

Status Dispatcher::addConnection(StreamOptions&& stream, Command&& c, uint64_t* id) {
  if (closing_) return Status::kClosed;
  std::vector<std::string>& topics = stream.topics;
  for (const std::string& t : topics) {
    if (validateTopic(t) != Status::kOk) return Status::kInvalidTopic;
  }
  for (const std::string& t : stream.routes) {
    if (!isInternalTopic(t)) return Status::kInvalidTopic;
  }
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  if (topics.size() > options_.shard.maxSubscriptions) return Status::kTooManySubscriptions;
  FrameRef first;
  if (stream.retryMs) {
    EventFields ev;
    ev.retryMs = *stream.retryMs;
    encodeEvent(ev, &first, Frame::Kind::kControl);
  }
  Status s = registry_.acquire(id);
  if (s != Status::kOk) return s;

  uint32_t index = Registry::slotOf(*id);
  if (index >= slots_.size()) slots_.resize(index + 1);
  Slot& slot = slots_[index];
  slot.id = *id;
  slot.shard = nextShard_++ % static_cast<uint32_t>(shards_.size());
  if (stream.user) slot.user = users_.acquire(*stream.user);
  slot.subs = topics;  // the mirror keeps a copy; the shard takes the original

  c.id = *id;
  c.user = slot.user;
  c.idleMs = stream.idleMs;
  c.lifetimeMs = stream.lifetimeMs;
  if (history_ && stream.history) {
    resume(stream, topics, c.frame ? c.frame->size() : 0, &c);
    if (stream.positions) c.flags |= Command::kPositions;
  }
  if (stream.replayFilter) c.flags |= Command::kNoBroadcasts;
  c.topics = std::move(topics);
  for (std::string& route : stream.routes) c.topics.push_back(std::move(route));
  c.frame2 = std::move(first);
  post(slot.shard, std::move(c));
  return Status::kOk;
}

// What a stream gets from the history before live events: the frames after
// its cursor that it matches (within maxReplayEvents and maxQueueBytes, less
// the head and room for the frames around them) then the position frame; or,
// when the cursor cannot be placed or the replay would not fit, one reset
// event (its id is the position). No cursor: the position frame alone, so a
// client that drops before its first event still resumes from here.
void Dispatcher::resume(const StreamOptions& stream, const std::vector<std::string>& topics, size_t headBytes,
                        Command* c) {
  if (!stream.lastEventId) {
    if (stream.positions) c->replay.push_back(history_->positionFrame());
    return;
  }
  history::Place place = history_->locate(*stream.lastEventId, nowMs(), stream.cursorIdsOnly);
  if (place.reason == history::ResetReason::kNone && stream.replayFilter &&
      !history_->mayKnowOf(place.after, history::Reader{nullptr, std::nullopt, stream.replayFilter})) {
    place.reason = history::ResetReason::kUnknown;  // a cursor naming what the stream may not know of
  }
  if (place.reason == history::ResetReason::kNone) {
    history::Reader reader{&topics, std::nullopt, stream.replayFilter};
    if (stream.user) reader.user = *stream.user;
    const uint64_t cap = options_.shard.maxQueueBytes;
    const uint64_t reserved = headBytes + 4 * kQueueFraming + 256;  // the head, retry, position and prefix lines
    const uint64_t budget = cap > reserved ? cap - reserved : 0;
    const size_t perFrame = kQueueFraming + (stream.streamId ? stream.streamId->size() + 5 : 0);
    if (!stream.positions) {
      // No reset can tell such a stream it missed events: past the limits
      // it gets the newest that fit (as from a smaller history).
      history_->selectNewest(place, reader, budget, perFrame, &c->replay);
      return;
    }
    place.reason = history_->selectReplay(place, reader, budget, perFrame, &c->replay);
    if (place.reason == history::ResetReason::kLimit) place.requested = place.after;
  }
  if (!stream.positions) {
    // No frame tells such a stream where the history is: a cursor that
    // cannot be placed replays nothing (counted as the reset it would get).
    if (place.reason != history::ResetReason::kNone) history_->countReset(place.reason);
    return;
  }
  c->replay.push_back(place.reason == history::ResetReason::kNone ? history_->positionFrame()
                                                                  : history_->resetFrame(place));
}

Status Dispatcher::adopt(int fd, std::string_view head, bool chunked, StreamOptions stream, uint64_t* id,
                         std::unique_ptr<ConnHook>* hook, bool keepOnRefusal) {
  Command c;
  c.op = Command::Op::kAdopt;
  c.fd = fd;
  if (hook) c.hook = std::move(*hook);
  // The JS transport writes the stream id itself (lib/hub.js), so only
  // adopted streams carry it. A parser drops one space after the colon:
  // keep a leading one.
  if (stream.streamId && !stream.streamId->empty()) {
    c.prefix = ((*stream.streamId)[0] == ' ' ? "id: " : "id:") + *stream.streamId + "\n";
  }
  c.frame = FrameRef(Frame::copyOf(head, Frame::Kind::kRaw));
  if (chunked) c.flags |= Command::kChunked;
  c.coding = stream.coding;
  if (stream.preparedSocket) c.flags |= Command::kPreparedSocket;
  Status s = addConnection(std::move(stream), std::move(c), id);
  if (s != Status::kOk) {
    // addConnection() moves the command only when it posts it.
    if (!keepOnRefusal) {
      ::close(fd);
    } else if (hook) {
      *hook = std::move(c.hook);
    }
  }
  return s;
}

void Dispatcher::postTask(uint32_t shard, std::unique_ptr<ShardTask> task) {
  Command c;
  c.op = Command::Op::kTask;
  c.task = std::move(task);
  post(shard, std::move(c));
  postBatch(shard);
}

Status Dispatcher::attach(StreamOptions stream, uint64_t* id) {
  Command c;
  c.op = Command::Op::kAttachJs;
  return addConnection(std::move(stream), std::move(c), id);
}

void Dispatcher::forget(uint64_t id) {
  Slot* s = slotFor(id);
  if (!s) return;
  for (Observer* o : observers_) o->onForget(id);
  users_.release(s->user);
  *s = Slot();
  registry_.release(id);
}

void Dispatcher::addObserver(Observer* observer) { observers_.push_back(observer); }

void Dispatcher::removeObserver(Observer* observer) {
  observers_.erase(std::remove(observers_.begin(), observers_.end(), observer), observers_.end());
}

// ---- subscriptions -----------------------------------------------------------

Status Dispatcher::subscribe(uint64_t id, std::vector<std::string> topics) {
  Slot* s;
  if (Status st = openSlot(id, &s); st != Status::kOk) return st;
  std::vector<std::string> fresh;
  for (std::string& t : topics) {
    if (validateTopic(t) != Status::kOk) return Status::kInvalidTopic;
    if (!std::binary_search(s->subs.begin(), s->subs.end(), t)) fresh.push_back(std::move(t));
  }
  std::sort(fresh.begin(), fresh.end());
  fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
  if (s->subs.size() + fresh.size() > options_.shard.maxSubscriptions) return Status::kTooManySubscriptions;
  if (fresh.empty()) return Status::kOk;
  std::vector<std::string> merged;
  merged.reserve(s->subs.size() + fresh.size());
  std::merge(s->subs.begin(), s->subs.end(), fresh.begin(), fresh.end(), std::back_inserter(merged));
  s->subs.swap(merged);
  postTopics(s->shard, Command::Op::kSubscribe, id, std::move(fresh));
  return Status::kOk;
}

Status Dispatcher::unsubscribe(uint64_t id, std::vector<std::string> topics) {
  Slot* s;
  if (Status st = openSlot(id, &s); st != Status::kOk) return st;
  for (const std::string& t : topics) {
    if (validateTopic(t) != Status::kOk) return Status::kInvalidTopic;
  }
  std::vector<std::string> gone;
  for (std::string& t : topics) {
    auto it = std::lower_bound(s->subs.begin(), s->subs.end(), t);
    if (it != s->subs.end() && *it == t) {
      s->subs.erase(it);
      gone.push_back(std::move(t));
    }
  }
  postTopics(s->shard, Command::Op::kUnsubscribe, id, std::move(gone));
  return Status::kOk;
}

const std::vector<std::string>* Dispatcher::subscriptions(uint64_t id) const {
  const Slot* slot = slotFor(id);
  return slot ? &slot->subs : nullptr;
}

Status Dispatcher::changeTopics(uint64_t id, std::vector<std::string>&& remove, std::vector<std::string>&& add) {
  Slot* s;
  if (Status st = openSlot(id, &s); st != Status::kOk) return st;
  postTopics(s->shard, Command::Op::kUnsubscribe, id, std::move(remove));
  postTopics(s->shard, Command::Op::kSubscribe, id, std::move(add));
  return Status::kOk;
}

// ---- events ------------------------------------------------------------------

Status Dispatcher::encode(const EventFields& event, FrameRef* out, std::string_view tag) const {
  Status s = validateFields(event);
  if (s != Status::kOk) return s;
  if (encodedSize(event) + kQueueFraming > options_.shard.maxQueueBytes) return Status::kDataTooLarge;
  return encodeEvent(event, out, Frame::Kind::kEvent, tag);
}

// Sorted ids of the named users that have connections. False when a list is
// given and none of them has: the event reaches nobody.
bool Dispatcher::resolveUsers(const std::vector<std::string_view>* names, std::vector<uint32_t>* users) const {
  if (!names) return true;
  for (std::string_view name : *names) {
    uint32_t u = users_.find(name);
    if (u != UserTable::kNoUser) users->push_back(u);
  }
  if (users->empty()) return false;
  std::sort(users->begin(), users->end());
  users->erase(std::unique(users->begin(), users->end()), users->end());
  return true;
}

Status Dispatcher::postEventToAll(Command::Op op, std::string_view topic, const EventFields& event,
                                  const std::vector<std::string_view>* users) {
  FrameRef frame;
  if (!history_) {
    if (Status s = encode(event, &frame); s != Status::kOk) return s;
  } else {
    // The wire id is the cursor unless the publisher gave one; the frame is
    // tagged with its topic (empty: a broadcast) for replay matching.
    char cursor[history::kMaxCursorBytes];
    EventFields stamped = event;
    if (!event.id) {
      const std::string& epoch = history_->options().epoch;
      stamped.id = std::string_view(cursor, history::formatCursorInto(epoch, history_->nextSeq(), cursor));
    }
    if (Status s = encode(stamped, &frame, topic); s != Status::kOk) return s;
  }
  std::vector<uint32_t> ids;
  const bool reachesSomeone = resolveUsers(users, &ids);
  // With history on, an event for nobody connected still posts a kPosition
  // command to every shard: bounded like the rest.
  if ((reachesSomeone || history_) && !roomForAll(1, reachesSomeone ? frame->size() : 0)) return Status::kQueueFull;
  uint64_t seq = 0;
  if (history_) {
    // Kept even when no named user is connected now: they may resume later.
    seq = history_->append(frame, users, event.id, nowMs());
  }
  if (!reachesSomeone) {
    countPublished();
    if (seq != 0) {
      for (uint32_t i = 0; i < shards_.size(); ++i) {
        Command c;
        c.op = Command::Op::kPosition;
        c.seq = seq;
        post(i, std::move(c));
      }
    }
    return Status::kOk;
  }
  postAll(op, topic, std::move(frame), std::move(ids), seq);
  return Status::kOk;
}

Status Dispatcher::publish(std::string_view topic, const EventFields& event,
                           const std::vector<std::string_view>* users) {
  if (closing_) return Status::kClosed;
  if (validateTopic(topic) != Status::kOk) return Status::kInvalidTopic;
  return postEventToAll(Command::Op::kPublish, topic, event, users);
}

Status Dispatcher::broadcast(const EventFields& event, const std::vector<std::string_view>* users) {
  if (closing_) return Status::kClosed;
  return postEventToAll(Command::Op::kBroadcast, std::string_view(), event, users);
}

// ---- sequences from outside (the Redis bus) ----------------------------------

Status Dispatcher::publishSequenced(std::string_view epoch, uint64_t firstSeq,
                                    const std::vector<SequencedEvent>& events) {
  if (closing_) return Status::kClosed;
  if (!history_ || !history::validEpoch(epoch) || firstSeq == 0 || firstSeq > history::kMaxSeq ||
      events.size() > history::kMaxSeq - firstSeq + 1) {
    return Status::kInvalidId;
  }
  if (events.size() > kMaxBatchEvents) return Status::kDataTooLarge;
  if (events.empty()) return Status::kOk;
  // Everything is encoded and checked before anything changes: a refusal
  // leaves the history, the shards and the counters as they were.
  const size_t n = events.size();
  batchFrames_.clear();
  batchFrames_.resize(n);
  if (batchUsers_.size() < n) batchUsers_.resize(n);
  uint64_t commands = 0, bytes = 0;
  bool lastReaches = false;
  char cursor[history::kMaxCursorBytes];
  for (size_t i = 0; i < n; ++i) {
    const SequencedEvent& e = events[i];
    batchUsers_[i].clear();
    lastReaches = false;
    if (e.skip) continue;
    if (!e.topic.empty() && validateTopic(e.topic) != Status::kOk) {
      batchFrames_.clear();
      return Status::kInvalidTopic;
    }
    EventFields stamped = e.event;
    if (!e.event.id) stamped.id = std::string_view(cursor, history::formatCursorInto(epoch, firstSeq + i, cursor));
    if (Status s = encode(stamped, &batchFrames_[i], e.topic); s != Status::kOk) {
      batchFrames_.clear();
      return s;
    }
    lastReaches = resolveUsers(e.users, &batchUsers_[i]);
    if (lastReaches) {
      ++commands;
      bytes += batchFrames_[i]->size();
    }
  }
  const bool rebasing = epoch != history_->options().epoch || firstSeq != history_->nextSeq();
  // The last event's position reaches the shards with it, or with a
  // kPosition when it reaches no connection: the heartbeats carry it.
  commands += (rebasing ? 1 : 0) + (lastReaches ? 0 : 1);
  if (!roomForAll(commands, bytes)) {
    batchFrames_.clear();
    return Status::kQueueFull;
  }
  if (rebasing) {
    const history::ResetReason reason =
        epoch != history_->options().epoch ? history::ResetReason::kEpoch : history::ResetReason::kExpired;
    postRebase(epoch, firstSeq - 1, history_->rebaseFrame(epoch, firstSeq - 1, reason));
  }
  const uint64_t now = nowMs();
  static const std::vector<std::string_view> kNobody;
  for (size_t i = 0; i < n; ++i) {
    const SequencedEvent& e = events[i];
    const uint64_t seq = firstSeq + i;
    if (e.skip) {
      if (!skipFrame_) skipFrame_ = FrameRef(Frame::allocate(0, Frame::Kind::kControl));
      history_->appendAt(seq, skipFrame_, &kNobody, std::nullopt, now);  // seq is nextSeq(): taken
      continue;
    }
    // Kept even when no named user is connected now: they may resume later.
    history_->appendAt(seq, batchFrames_[i], e.users, e.event.id, now);
    if (!e.users || !batchUsers_[i].empty()) {
      postAll(e.topic.empty() ? Command::Op::kBroadcast : Command::Op::kPublish, e.topic, std::move(batchFrames_[i]),
              std::move(batchUsers_[i]), seq);
    } else {
      countPublished();  // for nobody connected now, as publish() counts it
    }
  }
  if (!lastReaches) {
    for (uint32_t i = 0; i < shards_.size(); ++i) {
      Command c;
      c.op = Command::Op::kPosition;
      c.seq = firstSeq + n - 1;
      post(i, std::move(c));
    }
  }
  batchFrames_.clear();
  return Status::kOk;
}

Status Dispatcher::rebase(std::string_view epoch, uint64_t seq, bool reset) {
  if (closing_) return Status::kClosed;
  if (!history_ || !history::validEpoch(epoch) || seq > history::kMaxSeq) return Status::kInvalidId;
  if (!reset) {
    postRebase(epoch, seq, FrameRef());  // a null frame: the shards send nothing
    return Status::kOk;
  }
  const history::ResetReason reason =
      epoch != history_->options().epoch ? history::ResetReason::kEpoch : history::ResetReason::kExpired;
  postRebase(epoch, seq, history_->rebaseFrame(epoch, seq, reason));
  return Status::kOk;
}

void Dispatcher::postRebase(std::string_view epoch, uint64_t seq, FrameRef reset) {
  history_->rebase(epoch, seq);  // checked by the callers: cannot fail
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    Command c;
    c.op = Command::Op::kRebase;
    c.topic.assign(epoch.data(), epoch.size());
    c.seq = seq;
    c.frame = reset;
    post(i, std::move(c));
  }
}

Status Dispatcher::send(uint64_t id, const EventFields& event) {
  Slot* slot;
  if (Status st = openSlot(id, &slot); st != Status::kOk) return st;
  FrameRef frame;
  if (Status s = encode(event, &frame); s != Status::kOk) return s;
  return sendFrame(id, std::move(frame), false);
}

Status Dispatcher::sendFrame(uint64_t id, FrameRef frame, bool exempt) {
  Slot* slot;
  if (Status st = openSlot(id, &slot); st != Status::kOk) return st;
  if (!exempt && !roomFor(slot->shard, 1, frame->size())) return Status::kQueueFull;
  countPublished();
  Command c = connectionCommand(Command::Op::kSend, id);
  c.frame = std::move(frame);
  post(slot->shard, std::move(c));
  return Status::kOk;
}

Status Dispatcher::publishMany(std::vector<Delivery>& deliveries) {
  if (closing_) return Status::kClosed;
  if (!deliveries.empty()) {
    uint64_t bytes = 0;
    for (const Delivery& d : deliveries) bytes += d.frame->size();
    if (!roomForAll(deliveries.size(), bytes)) return Status::kQueueFull;
  }
  countPublished();
  for (Delivery& d : deliveries) {
    for (size_t i = 0; i < shards_.size(); ++i) {
      Command c;
      c.op = Command::Op::kPublish;
      c.topic = i + 1 == shards_.size() ? std::move(d.topic) : d.topic;
      c.frame = d.frame;
      post(static_cast<uint32_t>(i), std::move(c));
    }
  }
  return Status::kOk;
}

Status Dispatcher::publishRouted(const EventFields& event, std::string_view tag, std::vector<std::string>&& routes) {
  if (closing_) return Status::kClosed;
  if (!history::isProtocolTag(tag) || tag.size() > Frame::kMaxTag) return Status::kInvalidTopic;
  for (const std::string& r : routes) {
    if (!isInternalTopic(r)) return Status::kInvalidTopic;
  }
  FrameRef frame;
  if (!history_) {
    if (Status s = encode(event, &frame, tag); s != Status::kOk) return s;
  } else {
    char cursor[history::kMaxCursorBytes];
    EventFields stamped = event;
    if (!event.id) {
      stamped.id =
          std::string_view(cursor, history::formatCursorInto(history_->options().epoch, history_->nextSeq(), cursor));
    }
    if (Status s = encode(stamped, &frame, tag); s != Status::kOk) return s;
  }
  // With history on, an event no route takes still moves every shard's
  // position (a kPosition each): bounded like the rest.
  const bool routed = !routes.empty();
  if ((routed || history_) && !roomForAll(1, routed ? frame->size() : 0)) return Status::kQueueFull;
  uint64_t seq = 0;
  if (history_) seq = history_->append(frame, nullptr, event.id, nowMs());
  countPublished();
  if (!routed && seq == 0) return Status::kOk;
  for (size_t i = 0; i < shards_.size(); ++i) {
    Command c;
    c.seq = seq;
    if (!routed) {
      c.op = Command::Op::kPosition;
    } else {
      c.op = Command::Op::kPublishRouted;
      c.frame = frame;
      if (i + 1 == shards_.size()) {
        c.topics = std::move(routes);
      } else {
        c.topics = routes;
      }
    }
    post(static_cast<uint32_t>(i), std::move(c));
  }
  return Status::kOk;
}

Status Dispatcher::kick(uint64_t id) {
  Slot* slot;
  if (Status st = openSlot(id, &slot); st != Status::kOk) return st;
  post(slot->shard, connectionCommand(Command::Op::kKick, id));
  return Status::kOk;
}

Status Dispatcher::detach(uint64_t id, DisconnectReason reason) {
  Slot* slot = slotFor(id);
  if (!slot) return Status::kUnknownConnection;
  Command c = connectionCommand(Command::Op::kDetach, id);
  c.reason = reason;
  post(slot->shard, std::move(c));
  return Status::kOk;
}

// ---- batches and the pending bound ------------------------------------------

void Dispatcher::post(uint32_t shard, Command&& c) {
  std::vector<Command>& batch = batches_[shard];
  batchBytes_[shard] += Shard::bytesOf(c);
  batch.push_back(std::move(c));
  if (batch.size() >= kBatchLimit) postBatch(shard);
}

void Dispatcher::postBatch(uint32_t shard) {
  if (batches_[shard].empty()) return;
  shards_[shard]->post(batches_[shard]);
  batchBytes_[shard] = 0;
}

void Dispatcher::postTopics(uint32_t shard, Command::Op op, uint64_t id, std::vector<std::string>&& topics) {
  if (topics.empty()) return;
  Command c = connectionCommand(op, id);
  c.topics = std::move(topics);
  post(shard, std::move(c));
}

void Dispatcher::postAll(Command::Op op, std::string_view topic, FrameRef frame, std::vector<uint32_t>&& users,
                         uint64_t seq) {
  countPublished();
  for (size_t i = 0; i < shards_.size(); ++i) {
    Command c;
    c.op = op;
    c.seq = seq;
    c.topic = topic;
    c.frame = frame;
    if (i + 1 == shards_.size()) {
      c.users = std::move(users);
    } else {
      c.users = users;
    }
    post(static_cast<uint32_t>(i), std::move(c));
  }
}

// An empty queue takes any one command (or one protocol event's commands), so
// a frame larger than maxPendingBytes (allowed up to maxQueueBytes), or a
// record event reaching more groups than maxPendingCommands, can still go.
bool Dispatcher::roomFor(uint32_t shard, uint64_t count, uint64_t bytes) {
  const Shard& s = *shards_[shard];
  const uint64_t commands = batches_[shard].size() + s.queuedCommands();
  const uint64_t held = batchBytes_[shard] + s.queuedBytes();
  const uint64_t maxCommands = options_.maxPendingCommands, maxBytes = options_.maxPendingBytes;
  const bool full = (maxCommands > 0 && commands > 0 && commands + count > maxCommands) ||
                    (maxBytes > 0 && held > 0 && held + bytes > maxBytes);
  if (full) ++queueFull_;
  return !full;
}

bool Dispatcher::roomForAll(uint64_t count, uint64_t bytes) {
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    if (!roomFor(i, count, bytes)) return false;
  }
  return true;
}

DispatcherStats Dispatcher::stats() const {
  DispatcherStats out;
  out.threads.resize(shards_.size());
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    const ShardCounters& c = shards_[i]->counters();
    ShardStats& t = out.threads[i];
    t.connections = c.connections.load(std::memory_order_relaxed);
    t.subscriptions = c.subscriptions.load(std::memory_order_relaxed);
    t.published = c.published.load(std::memory_order_relaxed);
    t.delivered = c.delivered.load(std::memory_order_relaxed);
    t.bytesWritten = c.bytesWritten.load(std::memory_order_relaxed);
    t.slow = c.slow.load(std::memory_order_relaxed);
    t.queueBytes = c.queueBytes.load(std::memory_order_relaxed);
    t.heartbeats = c.heartbeats.load(std::memory_order_relaxed);
    t.codedConnections = c.codedConnections.load(std::memory_order_relaxed);
    t.codedIn = c.codedIn.load(std::memory_order_relaxed);
    t.codedOut = c.codedOut.load(std::memory_order_relaxed);
    t.pendingCommands = batches_[i].size() + shards_[i]->queuedCommands();
    t.pendingBytes = batchBytes_[i] + shards_[i]->queuedBytes();
    out.subscriptions += t.subscriptions;
    out.delivered += t.delivered;
    out.bytesWritten += t.bytesWritten;
    out.slow += t.slow;
    out.queueBytes += t.queueBytes;
    out.heartbeats += t.heartbeats;
    out.codedConnections += t.codedConnections;
    out.codedIn += t.codedIn;
    out.codedOut += t.codedOut;
    out.pendingCommands += t.pendingCommands;
    out.pendingBytes += t.pendingBytes;
  }
  out.connections = registry_.live();
  out.published = published_;
  out.queueFull = queueFull_;
  out.users = users_.size();
  return out;
}

}  // namespace ssefanout
