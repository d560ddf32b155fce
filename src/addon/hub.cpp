#include "hub.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "sse_encoder.hpp"

// binding.gyp defines NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: while a worker
// is being terminated, a call still running on its thread (a queued flush()
// microtask, a report delivered to JS) finds every napi_* call failing with
// napi_pending_exception and no exception to throw. Without the define,
// node-addon-api turns that into a fatal error that aborts the whole process
// (seen once in CI, in test/js/worker.test.js under the sanitizers); with it,
// the call just returns and the worker ends as asked.

namespace ssefanout {
namespace {

uint32_t u32(const Napi::Object& o, const char* key, uint32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
}

double num(const Napi::Value& v, double fallback) { return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback; }

uint64_t toId(const Napi::Value& v) {
  if (!v.IsNumber()) return 0;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || std::floor(d) != d) return 0;
  return static_cast<uint64_t>(d);
}

// UTF-8 bytes of a JS string, or a view of a Buffer/Uint8Array. `scratch`
// backs the string case; the view is valid until the next call with it.
bool bytesOf(const Napi::Value& v, std::string& scratch, std::string_view* out) {
  if (v.IsString()) {
    napi_env env = v.Env();
    // The UTF-16 length is O(1) and bounds the UTF-8 size (3 bytes per unit),
    // which spares V8 a separate pass to measure the UTF-8 length.
    size_t units = 0;
    if (napi_get_value_string_utf16(env, v, nullptr, 0, &units) != napi_ok) return false;
    size_t cap = units * 3 + 1;
    if (scratch.size() < cap || scratch.size() > (cap << 4) + 4096) scratch.resize(cap);
    size_t len = 0;
    napi_get_value_string_utf8(env, v, scratch.data(), scratch.size(), &len);
    *out = std::string_view(scratch.data(), len);
    return true;
  }
  if (v.IsTypedArray()) {
    auto arr = v.As<Napi::TypedArray>();
    if (arr.TypedArrayType() != napi_uint8_array) return false;
    auto u8 = v.As<Napi::Uint8Array>();
    *out = std::string_view(reinterpret_cast<const char*>(u8.Data()), u8.ByteLength());
    return true;
  }
  return false;
}

bool topicsOf(const Napi::Value& v, std::vector<std::string>* out) {
  if (!v.IsArray()) return v.IsUndefined();
  auto arr = v.As<Napi::Array>();
  out->reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value t = arr.Get(i);
    if (!t.IsString()) return false;
    out->push_back(t.As<Napi::String>().Utf8Value());
    if (validateTopic(out->back()) != Status::kOk) return false;
  }
  return true;
}

Napi::Number statusValue(Napi::Env env, Status s) { return Napi::Number::New(env, static_cast<double>(s)); }

}  // namespace

Napi::Function Hub::Define(Napi::Env env) {
  return DefineClass(env, "NativeHub",
                     {
                         InstanceMethod<&Hub::JS_adopt>("adopt"),
                         InstanceMethod<&Hub::JS_attach>("attach"),
                         InstanceMethod<&Hub::JS_subscribe>("subscribe"),
                         InstanceMethod<&Hub::JS_unsubscribe>("unsubscribe"),
                         InstanceMethod<&Hub::JS_publish>("publish"),
                         InstanceMethod<&Hub::JS_broadcast>("broadcast"),
                         InstanceMethod<&Hub::JS_send>("send"),
                         InstanceMethod<&Hub::JS_kick>("kick"),
                         InstanceMethod<&Hub::JS_detach>("detach"),
                         InstanceMethod<&Hub::JS_has>("has"),
                         InstanceMethod<&Hub::JS_subscriptions>("subscriptions"),
                         InstanceMethod<&Hub::JS_stats>("stats"),
                         InstanceMethod<&Hub::JS_close>("close"),
                         InstanceMethod<&Hub::JS_ref>("ref"),
                         InstanceMethod<&Hub::JS_unref>("unref"),
                         InstanceMethod<&Hub::JS_flush>("flush"),
                         InstanceMethod<&Hub::JS_closeSync>("closeSync"),
                         InstanceMethod<&Hub::JS_pbSubscribe>("pbSubscribe"),
                         InstanceMethod<&Hub::JS_pbBroadcast>("pbBroadcast"),
                         InstanceMethod<&Hub::JS_pbPublish>("pbPublish"),
                         InstanceMethod<&Hub::JS_pbSend>("pbSend"),
                         InstanceMethod<&Hub::JS_pbStats>("pbStats"),
                     });
}

// new NativeHub(options, onReports)
Hub::Hub(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Hub>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "NativeHub(options, onReports)").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t threads = std::clamp<uint32_t>(u32(o, "threads", 1), 1, 64);
  options_.heartbeatMs = u32(o, "heartbeatMs", options_.heartbeatMs);
  options_.maxQueueBytes = static_cast<size_t>(num(o.Get("maxQueueBytes"), static_cast<double>(options_.maxQueueBytes)));
  options_.sndbufBytes = static_cast<int>(u32(o, "sndbufBytes", static_cast<uint32_t>(options_.sndbufBytes)));
  options_.maxSubscriptions = u32(o, "maxSubscriptions", options_.maxSubscriptions);
  options_.closeTimeoutMs = u32(o, "closeTimeoutMs", options_.closeTimeoutMs);
  options_.keepAliveMs = u32(o, "keepAliveMs", options_.keepAliveMs);
  options_.tcpUserTimeoutMs = u32(o, "tcpUserTimeoutMs", options_.tcpUserTimeoutMs);
  maxPendingCommands_ = static_cast<uint64_t>(num(o.Get("maxPendingCommands"), 0));
  maxPendingBytes_ = static_cast<uint64_t>(num(o.Get("maxPendingBytes"), 0));
  registry_ = Registry(u32(o, "maxConnections", Registry::kMaxSlots));

  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "sse-fanout", 0, 1);
  tsfn_.Unref(env);  // JS refs it while connections are open
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;

  batches_.resize(threads);
  batchBytes_.resize(threads);
  staged_.resize(threads);
  for (uint32_t i = 0; i < threads; ++i) {
    shards_.push_back(std::make_unique<Shard>(i, options_, this));
    int rc = shards_.back()->start();
    if (rc != 0) {
      shards_.pop_back();
      stopNow();
      Napi::Error::New(env, std::string("sse-fanout: cannot start an I/O thread: ") + uv_strerror(rc))
          .ThrowAsJavaScriptException();
      return;
    }
  }
}

Hub::~Hub() {
  stopNow();
  if (hookAdded_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

// Environment teardown (process exit, worker termination) with the hub still
// open: close every connection now and wait for the threads.
void Hub::CleanupHook(void* arg) {
  auto* self = static_cast<Hub*>(arg);
  self->hookAdded_ = false;
  self->stopNow();
}

void Hub::stopNow(bool endBodies) {
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    dead_ = true;
    reports_.clear();
  }
  for (auto& shard : shards_) {
    Command stop;
    stop.op = Command::Op::kStop;
    if (endBodies) stop.flags |= Command::kEndBodies;
    shard->post(std::move(stop));
  }
  for (auto& shard : shards_) shard->join();
  shards_.clear();
}

// ---- shard threads -------------------------------------------------------

void Hub::stage(Report&& r) { staged_[r.shard].push_back(std::move(r)); }

void Hub::publishStaged(uint32_t shard) {
  std::vector<Report>& mine = staged_[shard];
  if (mine.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (dead_) {
    mine.clear();
    return;
  }
  for (Report& r : mine) reports_.push_back(std::move(r));
  mine.clear();
  if (!scheduled_) {
    scheduled_ = true;
    tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function cb) { dispatch(env, cb); });
  }
}

void Hub::onDisconnect(uint32_t shard, uint64_t id, DisconnectReason reason) {
  Report r{Report::kDisconnect};
  r.shard = shard;
  r.id = id;
  r.reason = reason;
  stage(std::move(r));
}

void Hub::onJsDeliver(uint32_t shard, FrameRef frame, std::vector<uint64_t> ids) {
  Report r{Report::kDeliver};
  r.shard = shard;
  r.frame = std::move(frame);
  r.ids = std::move(ids);
  stage(std::move(r));
}

void Hub::onTurnEnd(uint32_t shard) { publishStaged(shard); }

void Hub::onStopped(uint32_t shard) {
  Report r{Report::kStopped};
  r.shard = shard;
  stage(std::move(r));
  publishStaged(shard);
}

// ---- JS thread -------------------------------------------------------------

// Hands a batch of reports to JS as one flat array:
//   [0, id, reasonIndex] disconnect, [1, Buffer, ids[]] deliver an event,
//   [3, Buffer, ids[]] deliver other bytes (a heartbeat), [2, shard, 0] stopped.
void Hub::dispatch(Napi::Env env, Napi::Function callback) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch_.swap(reports_);
    scheduled_ = false;
    if (dead_) batch_.clear();
  }
  if (batch_.empty() || env == nullptr) {
    batch_.clear();
    return;
  }
  Napi::HandleScope scope(env);
  Napi::Array out = Napi::Array::New(env, batch_.size() * 3);
  uint32_t k = 0;
  bool allStopped = false;
  for (Report& r : batch_) {
    const bool control = r.kind == Report::kDeliver && r.frame->kind() != Frame::Kind::kEvent;
    out.Set(k++, Napi::Number::New(env, control ? 3 : r.kind));
    switch (r.kind) {
      case Report::kDisconnect:
        forget(r.id);
        out.Set(k++, Napi::Number::New(env, static_cast<double>(r.id)));
        out.Set(k++, Napi::Number::New(env, static_cast<double>(r.reason)));
        break;
      case Report::kDeliver: {
        Frame* f = r.frame.detach();
        // An external Buffer over the frame's own bytes: no copy; the
        // finalizer drops the reference when V8 collects the Buffer.
        auto buf = Napi::Buffer<char>::New(env, const_cast<char*>(f->data()), f->size(),
                                           [](Napi::Env, char*, Frame* frame) { frame->release(); }, f);
        Napi::Array ids = Napi::Array::New(env, r.ids.size());
        for (uint32_t i = 0; i < r.ids.size(); ++i) ids.Set(i, Napi::Number::New(env, static_cast<double>(r.ids[i])));
        out.Set(k++, buf);
        out.Set(k++, ids);
        break;
      }
      case Report::kStopped:
        out.Set(k++, Napi::Number::New(env, r.shard));
        out.Set(k++, Napi::Number::New(env, 0));
        if (++stopped_ == shards_.size()) allStopped = true;
        break;
    }
  }
  batch_.clear();
  if (allStopped) {
    for (auto& shard : shards_) shard->join();
    // Every shard has reported its last word: nothing can call the tsfn now.
    if (!released_) {
      released_ = true;
      tsfn_.Release();
    }
  }
  callback.Call({out});
}

// The connection is gone from its shard: its id may never be used again.
void Hub::forget(uint64_t id) {
  Slot* s = slotFor(id);
  if (!s) return;
  pb_.removeConnection(id);
  users_.release(s->user);
  *s = Slot();
  registry_.release(id);
}

// The open connection named by info[0], or the status that says why there is none.
Status Hub::connectionArg(const Napi::CallbackInfo& info, uint64_t* id, Slot** slot) {
  if (closing_) return Status::kClosed;
  *id = toId(info[0]);
  *slot = slotFor(*id);
  return *slot ? Status::kOk : Status::kUnknownConnection;
}

Command Hub::connectionCommand(Command::Op op, uint64_t id) {
  Command c;
  c.op = op;
  c.id = id;
  return c;
}

void Hub::postTopics(uint32_t shard, Command::Op op, uint64_t id, std::vector<std::string>&& topics) {
  if (topics.empty()) return;
  Command c = connectionCommand(op, id);
  c.topics = std::move(topics);
  post(shard, std::move(c));
}

Hub::Slot* Hub::slotFor(uint64_t id) {
  if (id == 0 || !registry_.contains(id)) return nullptr;
  return &slots_[Registry::slotOf(id)];
}

Status Hub::addConnection(const Napi::CallbackInfo& info, size_t topicsArg, bool native, int fd, uint64_t* id) {
  if (closing_) return Status::kClosed;
  std::vector<std::string> topics;
  if (!topicsOf(info[topicsArg], &topics)) return Status::kInvalidTopic;
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  if (topics.size() > options_.maxSubscriptions) return Status::kTooManySubscriptions;
  FrameRef first;
  double retry = num(info[topicsArg + 2], -1);
  if (retry >= 0) {
    EventFields ev;
    ev.retryMs = static_cast<uint64_t>(retry);
    encodeEvent(ev, &first, Frame::Kind::kControl);
  }
  Status s = registry_.acquire(id);
  if (s != Status::kOk) return s;

  uint32_t slot = Registry::slotOf(*id);
  if (slot >= slots_.size()) slots_.resize(slot + 1);
  Slot& info_ = slots_[slot];
  info_.id = *id;
  info_.shard = nextShard_++ % static_cast<uint32_t>(shards_.size());
  Napi::Value user = info[topicsArg + 1];
  if (user.IsString()) info_.user = users_.acquire(user.As<Napi::String>().Utf8Value());
  info_.subs = topics;

  Command c;
  c.op = native ? Command::Op::kAdopt : Command::Op::kAttachJs;
  c.id = *id;
  c.fd = fd;
  c.user = info_.user;
  c.idleMs = static_cast<uint32_t>(num(info[topicsArg + 4], 0));
  c.lifetimeMs = static_cast<uint32_t>(num(info[topicsArg + 5], 0));
  // The JS transport writes the stream id itself (lib/hub.js).
  if (native && info[topicsArg + 3].IsString()) {
    std::string streamId = info[topicsArg + 3].As<Napi::String>().Utf8Value();
    // A parser drops one space after the colon: keep a leading one.
    if (!streamId.empty()) c.prefix = (streamId[0] == ' ' ? "id: " : "id:") + streamId + "\n";
  }
  c.topics = std::move(topics);
  c.frame2 = std::move(first);
  if (native) {
    std::string head;
    std::string_view headBytes;
    bytesOf(info[1], head, &headBytes);
    c.frame = FrameRef(Frame::copyOf(headBytes, Frame::Kind::kRaw));
    if (info[2].ToBoolean().Value()) c.flags |= Command::kChunked;
  }
  post(info_.shard, std::move(c));
  return Status::kOk;
}

// adopt(fd, head, chunked, topics, user, retryMs, streamId, idleMs, lifetimeMs) -> id, 0 when the socket
// cannot be duplicated (JS falls back to its transport), or -status.
Napi::Value Hub::JS_adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) return Napi::Number::New(env, -static_cast<double>(Status::kClosed));
  if (!info[0].IsNumber() || !info[1].IsString()) return Napi::Number::New(env, 0);
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) return Napi::Number::New(env, 0);
  // Our own reference to the socket: Node may now close its fd, the TCP
  // connection lives on through this one, and only the shard closes it.
  int mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (mine < 0) return Napi::Number::New(env, 0);
  uint64_t id = 0;
  Status s = addConnection(info, 3, true, mine, &id);
  if (s != Status::kOk) {
    ::close(mine);
    return Napi::Number::New(env, -static_cast<double>(s));
  }
  return Napi::Number::New(env, static_cast<double>(id));
}

// attach(topics, user, retryMs, streamId, idleMs, lifetimeMs) -> id or -status: a
// connection the JS thread writes.
Napi::Value Hub::JS_attach(const Napi::CallbackInfo& info) {
  uint64_t id = 0;
  Status s = addConnection(info, 0, false, -1, &id);
  return Napi::Number::New(info.Env(), s == Status::kOk ? static_cast<double>(id) : -static_cast<double>(s));
}

// subscribe(id, topics) -> status. All or nothing: the cap is checked first.
Napi::Value Hub::JS_subscribe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  Slot* s;
  if (Status st = connectionArg(info, &id, &s); st != Status::kOk) return statusValue(env, st);
  std::vector<std::string> topics;
  if (!topicsOf(info[1], &topics)) return statusValue(env, Status::kInvalidTopic);
  std::vector<std::string> fresh;
  for (std::string& t : topics) {
    if (!std::binary_search(s->subs.begin(), s->subs.end(), t)) fresh.push_back(std::move(t));
  }
  std::sort(fresh.begin(), fresh.end());
  fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
  if (s->subs.size() + fresh.size() > options_.maxSubscriptions) return statusValue(env, Status::kTooManySubscriptions);
  if (fresh.empty()) return statusValue(env, Status::kOk);
  std::vector<std::string> merged;
  merged.reserve(s->subs.size() + fresh.size());
  std::merge(s->subs.begin(), s->subs.end(), fresh.begin(), fresh.end(), std::back_inserter(merged));
  s->subs.swap(merged);
  postTopics(s->shard, Command::Op::kSubscribe, id, std::move(fresh));
  return statusValue(env, Status::kOk);
}

Napi::Value Hub::JS_unsubscribe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  Slot* s;
  if (Status st = connectionArg(info, &id, &s); st != Status::kOk) return statusValue(env, st);
  std::vector<std::string> topics;
  if (!topicsOf(info[1], &topics)) return statusValue(env, Status::kInvalidTopic);
  std::vector<std::string> gone;
  for (std::string& t : topics) {
    auto it = std::lower_bound(s->subs.begin(), s->subs.end(), t);
    if (it != s->subs.end() && *it == t) {
      s->subs.erase(it);
      gone.push_back(std::move(t));
    }
  }
  postTopics(s->shard, Command::Op::kUnsubscribe, id, std::move(gone));
  return statusValue(env, Status::kOk);
}

// Encodes info[dataArg] with event info[dataArg+1] and id info[dataArg+2].
Status Hub::encode(const Napi::CallbackInfo& info, size_t dataArg, FrameRef* out) {
  static thread_local std::string data, event, id;
  std::string_view dataView, eventView, idView;
  EventFields ev;
  if (!bytesOf(info[dataArg], data, &dataView)) return Status::kInvalidEvent;
  ev.data = dataView;
  if (info[dataArg + 1].IsString()) {
    bytesOf(info[dataArg + 1], event, &eventView);
    ev.event = eventView;
  }
  if (info[dataArg + 2].IsString()) {
    bytesOf(info[dataArg + 2], id, &idView);
    ev.id = idView;
  }
  Status s = validateFields(ev);
  if (s != Status::kOk) return s;
  if (encodedSize(ev) + 32 > options_.maxQueueBytes) return Status::kDataTooLarge;
  return encodeEvent(ev, out);
}

// Sorted ids of the users in v that have connections. False when v is an
// array and none of them has: the publish reaches nobody.
bool Hub::resolveUsers(const Napi::Value& v, std::vector<uint32_t>* users) {
  if (!v.IsArray()) return true;
  auto arr = v.As<Napi::Array>();
  std::string name;
  std::string_view view;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    if (!bytesOf(arr.Get(i), name, &view)) continue;
    uint32_t u = users_.find(view);
    if (u != UserTable::kNoUser) users->push_back(u);
  }
  if (users->empty()) return false;
  std::sort(users->begin(), users->end());
  users->erase(std::unique(users->begin(), users->end()), users->end());
  return true;
}

void Hub::postAll(Command::Op op, const std::string* topic, FrameRef frame, std::vector<uint32_t>&& users) {
  ++published_;
  for (size_t i = 0; i < shards_.size(); ++i) {
    Command c;
    c.op = op;
    if (topic) c.topic = *topic;
    c.frame = frame;
    if (i + 1 == shards_.size()) {
      c.users = std::move(users);
    } else {
      c.users = users;
    }
    post(static_cast<uint32_t>(i), std::move(c));
  }
}

// publish(topic, data, event, id, users) -> status
Napi::Value Hub::JS_publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) return statusValue(env, Status::kClosed);
  static thread_local std::string topic;
  std::string_view topicView;
  if (!bytesOf(info[0], topic, &topicView) || validateTopic(topicView) != Status::kOk) {
    return statusValue(env, Status::kInvalidTopic);
  }
  FrameRef frame;
  Status s = encode(info, 1, &frame);
  if (s != Status::kOk) return statusValue(env, s);
  std::vector<uint32_t> users;
  if (!resolveUsers(info[4], &users)) {
    ++published_;
    return statusValue(env, Status::kOk);
  }
  if (!roomFor(frame->size())) return statusValue(env, Status::kQueueFull);
  std::string t(topicView);
  postAll(Command::Op::kPublish, &t, std::move(frame), std::move(users));
  return statusValue(env, Status::kOk);
}

// broadcast(data, event, id, users) -> status
Napi::Value Hub::JS_broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) return statusValue(env, Status::kClosed);
  FrameRef frame;
  Status s = encode(info, 0, &frame);
  if (s != Status::kOk) return statusValue(env, s);
  std::vector<uint32_t> users;
  if (!resolveUsers(info[3], &users)) {
    ++published_;
    return statusValue(env, Status::kOk);
  }
  if (!roomFor(frame->size())) return statusValue(env, Status::kQueueFull);
  postAll(Command::Op::kBroadcast, nullptr, std::move(frame), std::move(users));
  return statusValue(env, Status::kOk);
}

// send(connId, data, event, id) -> status
Napi::Value Hub::JS_send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  Slot* slot;
  if (Status st = connectionArg(info, &id, &slot); st != Status::kOk) return statusValue(env, st);
  FrameRef frame;
  Status s = encode(info, 1, &frame);
  if (s != Status::kOk) return statusValue(env, s);
  if (!roomFor(slot->shard, frame->size())) return statusValue(env, Status::kQueueFull);
  ++published_;
  Command c = connectionCommand(Command::Op::kSend, id);
  c.frame = std::move(frame);
  post(slot->shard, std::move(c));
  return statusValue(env, Status::kOk);
}

Napi::Value Hub::JS_kick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  Slot* slot;
  if (Status st = connectionArg(info, &id, &slot); st != Status::kOk) return statusValue(env, st);
  Command c = connectionCommand(Command::Op::kKick, id);
  post(slot->shard, std::move(c));
  return statusValue(env, Status::kOk);
}

// detach(id, reasonIndex): a JS-transport connection ended on the JS side.
Napi::Value Hub::JS_detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = toId(info[0]);
  Slot* slot = slotFor(id);
  if (!slot || released_) return statusValue(env, Status::kUnknownConnection);
  uint32_t reason = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  Command c = connectionCommand(Command::Op::kDetach, id);
  c.reason = static_cast<DisconnectReason>(std::min<uint32_t>(reason, static_cast<uint32_t>(DisconnectReason::kCount) - 1));
  post(slot->shard, std::move(c));
  return statusValue(env, Status::kOk);
}

Napi::Value Hub::JS_has(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), slotFor(toId(info[0])) != nullptr);
}

Napi::Value Hub::JS_subscriptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Slot* slot = slotFor(toId(info[0]));
  if (!slot) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, slot->subs.size());
  for (uint32_t i = 0; i < slot->subs.size(); ++i) out.Set(i, Napi::String::New(env, slot->subs[i]));
  return out;
}

Napi::Value Hub::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array threads = Napi::Array::New(env, shards_.size());
  double sums[8] = {0};
  double pendingCommands = 0, pendingBytes = 0;
  const char* names[8] = {"connections", "subscriptions", "published", "delivered",
                          "bytesWritten", "slow",          "queueBytes", "heartbeats"};
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    const ShardCounters& c = shards_[i]->counters();
    double v[8] = {
        static_cast<double>(c.connections.load(std::memory_order_relaxed)),
        static_cast<double>(c.subscriptions.load(std::memory_order_relaxed)),
        static_cast<double>(c.published.load(std::memory_order_relaxed)),
        static_cast<double>(c.delivered.load(std::memory_order_relaxed)),
        static_cast<double>(c.bytesWritten.load(std::memory_order_relaxed)),
        static_cast<double>(c.slow.load(std::memory_order_relaxed)),
        static_cast<double>(c.queueBytes.load(std::memory_order_relaxed)),
        static_cast<double>(c.heartbeats.load(std::memory_order_relaxed)),
    };
    Napi::Object t = Napi::Object::New(env);
    for (int k = 0; k < 8; ++k) {
      t.Set(names[k], v[k]);
      sums[k] += v[k];
    }
    const double commands = static_cast<double>(batches_[i].size() + shards_[i]->queuedCommands());
    const double bytes = static_cast<double>(batchBytes_[i] + shards_[i]->queuedBytes());
    t.Set("pendingCommands", commands);
    t.Set("pendingBytes", bytes);
    pendingCommands += commands;
    pendingBytes += bytes;
    threads.Set(i, t);
  }
  out.Set("connections", static_cast<double>(registry_.live()));
  out.Set("subscriptions", sums[1]);
  out.Set("published", static_cast<double>(published_));
  out.Set("delivered", sums[3]);
  out.Set("bytesWritten", sums[4]);
  out.Set("slow", sums[5]);
  out.Set("queueBytes", sums[6]);
  out.Set("heartbeats", sums[7]);
  out.Set("pendingCommands", pendingCommands);
  out.Set("pendingBytes", pendingBytes);
  out.Set("queueFull", static_cast<double>(queueFull_));
  out.Set("users", static_cast<double>(users_.size()));
  out.Set("frames", static_cast<double>(Frame::liveCount()));
  out.Set("threads", threads);
  return out;
}

// close(): every shard flushes, ends its streams and stops; reports follow,
// the last being one "stopped" per shard.
Napi::Value Hub::JS_close(const Napi::CallbackInfo& info) {
  if (!closing_) {
    closing_ = true;
    tsfn_.Ref(info.Env());
    for (uint32_t i = 0; i < shards_.size(); ++i) {
      Command c;
      c.op = Command::Op::kShutdown;
      post(i, std::move(c));
    }
    flushAll();
  }
  return info.Env().Undefined();
}

void Hub::post(uint32_t shard, Command&& c) {
  std::vector<Command>& batch = batches_[shard];
  batchBytes_[shard] += Shard::bytesOf(c);
  batch.push_back(std::move(c));
  if (batch.size() >= kBatchLimit) postBatch(shard);
}

void Hub::postBatch(uint32_t shard) {
  if (batches_[shard].empty()) return;
  shards_[shard]->post(batches_[shard]);
  batchBytes_[shard] = 0;
}

void Hub::flushAll() {
  for (size_t i = 0; i < batches_.size(); ++i) postBatch(static_cast<uint32_t>(i));
}

bool Hub::roomFor(uint32_t shard, uint64_t bytes) { return roomForCommands(shard, 1, bytes); }

// An empty queue takes any one command (or one PocketBase event's commands),
// so a frame larger than maxPendingBytes (allowed up to maxQueueBytes), or a
// record event reaching more groups than maxPendingCommands, can still go.
bool Hub::roomForCommands(uint32_t shard, uint64_t count, uint64_t bytes) {
  const Shard& s = *shards_[shard];
  const uint64_t commands = batches_[shard].size() + s.queuedCommands();
  const uint64_t held = batchBytes_[shard] + s.queuedBytes();
  const bool full = (maxPendingCommands_ > 0 && commands > 0 && commands + count > maxPendingCommands_) ||
                    (maxPendingBytes_ > 0 && held > 0 && held + bytes > maxPendingBytes_);
  if (full) ++queueFull_;
  return !full;
}

// postDeliveries() posts every delivery to every shard: all of them must fit
// each shard, or nothing is posted.
bool Hub::roomForDeliveries(const std::vector<pb::Delivery>& deliveries) {
  if (deliveries.empty()) return true;
  uint64_t bytes = 0;
  for (const pb::Delivery& d : deliveries) bytes += d.frame->size();
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    if (!roomForCommands(i, deliveries.size(), bytes)) return false;
  }
  return true;
}

// A publish or broadcast goes to every shard or to none.
bool Hub::roomFor(uint64_t bytes) {
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    if (!roomFor(i, bytes)) return false;
  }
  return true;
}

// closeSync(): process exit. Ends every stream now (what is queued and the
// last chunk, in non-blocking writes, best effort) and stops the threads
// before returning; no report reaches JS after it.
Napi::Value Hub::JS_closeSync(const Napi::CallbackInfo& info) {
  closing_ = true;
  stopNow(true);
  if (!released_) {
    released_ = true;
    tsfn_.Release();
  }
  return info.Env().Undefined();
}

Napi::Value Hub::JS_flush(const Napi::CallbackInfo& info) {
  flushAll();
  return info.Env().Undefined();
}

Napi::Value Hub::JS_ref(const Napi::CallbackInfo& info) {
  if (!released_) tsfn_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value Hub::JS_unref(const Napi::CallbackInfo& info) {
  if (!released_ && !closing_) tsfn_.Unref(info.Env());
  return info.Env().Undefined();
}

// ---- PocketBase realtime ----------------------------------------------------

namespace {

std::string stringArg(const Napi::Value& v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); }

}  // namespace

void Hub::postDeliveries(std::vector<pb::Delivery>& deliveries) {
  for (pb::Delivery& d : deliveries) {
    for (size_t i = 0; i < shards_.size(); ++i) {
      Command c;
      c.op = Command::Op::kPublish;
      c.topic = i + 1 == shards_.size() ? std::move(d.topic) : d.topic;
      c.frame = d.frame;
      post(static_cast<uint32_t>(i), std::move(c));
    }
  }
}

// pbSubscribe(connId, owner, identity, authJson, superuser, subs[], budgets?)
// -> [[subscription, message]...] (subscriptions that will receive no record
// events) or a status number. owner is the client's address (the *PerIp
// budgets sum over its connections); subs arrive deduplicated and
// single-line (lib/pocketbase.js); budgets is
// [maxOptionSubscriptionsPerClient, maxFilterNodesPerClient,
// maxCompiledBytesPerClient, maxDistinctSubscriptions, maxCompiledBytes,
// maxOptionSubscriptionsPerIp, maxFilterNodesPerIp, maxCompiledBytesPerIp,
// maxSubscriptionsPerIp], validated by the Realtime constructor.
Napi::Value Hub::JS_pbSubscribe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  Slot* slot;
  if (Status st = connectionArg(info, &id, &slot); st != Status::kOk) return statusValue(env, st);
  if (info[6].IsArray()) {
    auto budgets = info[6].As<Napi::Array>();
    auto at = [&](uint32_t i, uint64_t fallback) {
      Napi::Value v = budgets.Get(i);
      if (!v.IsNumber()) return fallback;
      double d = v.As<Napi::Number>().DoubleValue();
      return d >= 0 && d < 9.0e15 ? static_cast<uint64_t>(d) : fallback;
    };
    auto at32 = [&](uint32_t i, uint32_t fallback) {
      return static_cast<uint32_t>(std::min<uint64_t>(at(i, fallback), UINT32_MAX));
    };
    pb::PbLimits limits;
    limits.maxOptionSubscriptionsPerClient = at32(0, limits.maxOptionSubscriptionsPerClient);
    limits.maxFilterNodesPerClient = at32(1, limits.maxFilterNodesPerClient);
    limits.maxCompiledBytesPerClient = at(2, limits.maxCompiledBytesPerClient);
    limits.maxDistinctSubscriptions = at(3, limits.maxDistinctSubscriptions);
    limits.maxCompiledBytes = at(4, limits.maxCompiledBytes);
    limits.maxOptionSubscriptionsPerIp = at32(5, limits.maxOptionSubscriptionsPerIp);
    limits.maxFilterNodesPerIp = at32(6, limits.maxFilterNodesPerIp);
    limits.maxCompiledBytesPerIp = at(7, limits.maxCompiledBytesPerIp);
    limits.maxSubscriptionsPerIp = at(8, limits.maxSubscriptionsPerIp);
    pb_.setLimits(limits);
  }
  if (!info[5].IsArray()) return statusValue(env, Status::kInvalidTopic);
  auto arr = info[5].As<Napi::Array>();
  std::vector<std::string> subs;
  subs.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) return statusValue(env, Status::kInvalidTopic);
    subs.push_back(v.As<Napi::String>().Utf8Value());
    if (!isSingleLine(subs.back())) return statusValue(env, Status::kInvalidTopic);
  }
  if (subs.size() > options_.maxSubscriptions) return statusValue(env, Status::kTooManySubscriptions);
  std::vector<std::string> add, remove;
  std::vector<pb::SubscriptionError> errors;
  Status s = pb_.setSubscriptions(id, stringArg(info[1]), stringArg(info[2]), stringArg(info[3]),
                                  info[4].ToBoolean().Value(), subs, &add, &remove, &errors);
  if (s != Status::kOk) return statusValue(env, s);
  postTopics(slot->shard, Command::Op::kUnsubscribe, id, std::move(remove));
  postTopics(slot->shard, Command::Op::kSubscribe, id, std::move(add));
  Napi::Array out = Napi::Array::New(env, errors.size());
  for (uint32_t i = 0; i < errors.size(); ++i) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, errors[i].subscription));
    pair.Set(1u, Napi::String::New(env, errors[i].message));
    out.Set(i, pair);
  }
  return out;
}

// pbBroadcast(name, id, listRule|null, viewRule|null, action, recordJson) -> 0,
// a status number, or a message (a rule or the record is invalid).
Napi::Value Hub::JS_pbBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) return statusValue(env, Status::kClosed);
  static thread_local std::string record;
  std::string_view recordView;
  if (!bytesOf(info[5], record, &recordView)) return Napi::String::New(env, "record must be a string");
  // The largest frame: the record, the longest subscription name, framing.
  if (recordView.size() + 4096 > options_.maxQueueBytes) return statusValue(env, Status::kDataTooLarge);
  std::string name = stringArg(info[0]), collectionId = stringArg(info[1]), action = stringArg(info[4]);
  std::string listRule, viewRule;
  pb::Collection collection;
  collection.name = name;
  collection.id = collectionId;
  if (info[2].IsString()) collection.listRule = &(listRule = info[2].As<Napi::String>().Utf8Value());
  if (info[3].IsString()) collection.viewRule = &(viewRule = info[3].As<Napi::String>().Utf8Value());
  std::vector<pb::Delivery> deliveries;
  std::string error;
  if (pb_.broadcastRecord(collection, action, recordView, &deliveries, &error) != Status::kOk) {
    return Napi::String::New(env, error);
  }
  // The frames are known only now: the whole event is refused if they do
  // not fit (its evaluation is lost, but nothing is queued).
  if (!roomForDeliveries(deliveries)) return statusValue(env, Status::kQueueFull);
  ++published_;
  postDeliveries(deliveries);
  return statusValue(env, Status::kOk);
}

namespace {

// What one PocketBase frame of `encoded` bytes can take of a connection's
// queue at most, counted as Outbox::push counts it: the frame with its chunk
// framing, plus the connection's event prefix "id:<streamId>\n" with its own.
// Realtime clients have 40-character ids; any stream id is at most
// kMaxStreamIdBytes (lib/hub.js), a leading space doubled.
constexpr size_t kMaxStreamIdBytes = 256;
constexpr size_t kMaxEventPrefix = 4 + kMaxStreamIdBytes + 1;  // "id: " + id + "\n"
constexpr size_t kChunkFraming = Frame::kMaxChunkHeader + 2;   // "<hex>\r\n" ... "\r\n"

size_t maxQueuedSize(size_t encoded) { return encoded + kChunkFraming + kMaxEventPrefix + kChunkFraming; }

}  // namespace

// pbPublish(subscription, event, data) -> status: a custom message. A message
// that could not fit an empty queue is refused (DATA_TOO_LARGE) rather than
// dropping every subscriber as slow; the size is the encoded one, so data of
// many short lines (one "data:" each) counts for what it becomes.
Napi::Value Hub::JS_pbPublish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) return statusValue(env, Status::kClosed);
  static thread_local std::string data;
  std::string_view dataView;
  if (!bytesOf(info[2], data, &dataView)) return statusValue(env, Status::kInvalidEvent);
  std::string event = stringArg(info[1]);
  if (!isSingleLine(event)) return statusValue(env, Status::kInvalidEvent);
  EventFields ev;
  ev.compact = true;  // as PbIndex::publish encodes it
  ev.event = event;
  ev.data = dataView;
  if (maxQueuedSize(encodedSize(ev)) > options_.maxQueueBytes) return statusValue(env, Status::kDataTooLarge);
  std::vector<pb::Delivery> deliveries;
  pb_.publish(stringArg(info[0]), event, dataView, &deliveries);
  if (!roomForDeliveries(deliveries)) return statusValue(env, Status::kQueueFull);
  ++published_;
  postDeliveries(deliveries);
  return statusValue(env, Status::kOk);
}

// pbSend(connId, event, data, connecting) -> status: one message in
// PocketBase's framing. `connecting`: the PB_CONNECT of a connection being
// accepted, posted whatever the bound (as accept() posts the connection).
Napi::Value Hub::JS_pbSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  Slot* slot;
  if (Status st = connectionArg(info, &id, &slot); st != Status::kOk) return statusValue(env, st);
  static thread_local std::string data;
  std::string_view dataView;
  if (!bytesOf(info[2], data, &dataView)) return statusValue(env, Status::kInvalidEvent);
  std::string event = stringArg(info[1]);
  EventFields ev;
  ev.compact = true;
  ev.event = event;
  ev.data = dataView;
  if (Status s = validateFields(ev); s != Status::kOk) return statusValue(env, s);
  if (maxQueuedSize(encodedSize(ev)) > options_.maxQueueBytes) return statusValue(env, Status::kDataTooLarge);
  FrameRef frame;
  encodeEvent(ev, &frame);
  const bool connecting = info[3].ToBoolean().Value();
  if (!connecting && !roomFor(slot->shard, frame->size())) return statusValue(env, Status::kQueueFull);
  ++published_;
  Command c = connectionCommand(Command::Op::kSend, id);
  c.frame = std::move(frame);
  post(slot->shard, std::move(c));
  return statusValue(env, Status::kOk);
}

Napi::Value Hub::JS_pbStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("clients", static_cast<double>(pb_.connectionCount()));
  out.Set("keys", static_cast<double>(pb_.keyCount()));
  out.Set("groups", static_cast<double>(pb_.groupCount()));
  out.Set("identities", static_cast<double>(pb_.authCount()));
  out.Set("compiledBytes", static_cast<double>(pb_.compiledBytes()));
  return out;
}

}  // namespace ssefanout
