#include "hub_wrap.hpp"

#include <algorithm>

#include "addon_data.hpp"
#include "args.hpp"
#include "history_wrap.hpp"

// binding.gyp defines NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: while a worker
// is being terminated, a call still running on its thread (a queued flush()
// microtask, a report delivered to JS) finds every napi_* call failing with
// napi_pending_exception and no exception to throw. Without the define,
// node-addon-api turns that into a fatal error that aborts the whole process
// (seen once in CI, in test/js/hub-worker-threads.test.js under the sanitizers); with it,
// the call just returns and the worker ends as asked.

namespace ssefanout {

Napi::Function HubWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeHub",
                     {
                         InstanceMethod<&HubWrap::JS_adopt>("adopt"),
                         InstanceMethod<&HubWrap::JS_attach>("attach"),
                         InstanceMethod<&HubWrap::JS_subscribe>("subscribe"),
                         InstanceMethod<&HubWrap::JS_unsubscribe>("unsubscribe"),
                         InstanceMethod<&HubWrap::JS_publish>("publish"),
                         InstanceMethod<&HubWrap::JS_broadcast>("broadcast"),
                         InstanceMethod<&HubWrap::JS_send>("send"),
                         InstanceMethod<&HubWrap::JS_kick>("kick"),
                         InstanceMethod<&HubWrap::JS_detach>("detach"),
                         InstanceMethod<&HubWrap::JS_has>("has"),
                         InstanceMethod<&HubWrap::JS_subscriptions>("subscriptions"),
                         InstanceMethod<&HubWrap::JS_stats>("stats"),
                         InstanceMethod<&HubWrap::JS_close>("close"),
                         InstanceMethod<&HubWrap::JS_ref>("ref"),
                         InstanceMethod<&HubWrap::JS_unref>("unref"),
                         InstanceMethod<&HubWrap::JS_flush>("flush"),
                         InstanceMethod<&HubWrap::JS_closeSync>("closeSync"),
                         InstanceMethod<&HubWrap::JS_historyRead>("historyRead"),
                         InstanceMethod<&HubWrap::JS_publishBatch>("publishBatch"),
                         InstanceMethod<&HubWrap::JS_historyRebase>("historyRebase"),
                     });
}

HubWrap::HubWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HubWrap>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "NativeHub(options, onReports)").ThrowAsJavaScriptException();
    return;
  }
  HubOptions options = hubOptionsOf(info[0].As<Napi::Object>());
  channel_ = std::make_unique<ReportChannel>(std::clamp<uint32_t>(options.threads, 1, Dispatcher::kMaxThreads));
  dispatcher_ = std::make_unique<Dispatcher>(options, channel_.get());
  channel_->open(env, info[1].As<Napi::Function>(), dispatcher_.get());
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;
  if (int rc = dispatcher_->start(); rc != 0) {
    stopNow();
    Napi::Error::New(env, std::string("sse-fanout: cannot start an I/O thread: ") + uv_strerror(rc))
        .ThrowAsJavaScriptException();
  }
}

HubWrap::~HubWrap() {
  stopNow();
  if (hookAdded_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

// Environment teardown (process exit, worker termination) with the hub still
// open: close every connection now and wait for the threads.
void HubWrap::CleanupHook(void* arg) {
  auto* self = static_cast<HubWrap*>(arg);
  self->hookAdded_ = false;
  self->stopNow();
}

void HubWrap::stopNow(bool endBodies) {
  if (!dispatcher_) return;
  channel_->kill();  // before the shards stop: no report reaches JS after this
  dispatcher_->stopNow(endBodies);
}

Dispatcher* HubWrap::attachProtocol(const Napi::CallbackInfo& info, const char* usage, Dispatcher::Observer* observer,
                                    Napi::ObjectReference* hubRef) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!info[0].IsObject() || !data || !info[0].As<Napi::Object>().InstanceOf(data->hubClass.Value())) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::Object hub = info[0].As<Napi::Object>();
  HubWrap* wrap = HubWrap::Unwrap(hub);
  if (!wrap) return nullptr;
  *hubRef = Napi::Persistent(hub);
  Dispatcher* dispatcher = &wrap->dispatcher();
  dispatcher->addObserver(observer);
  return dispatcher;
}

// adopt(fd, head, chunked, stream) -> id, 0 when the socket cannot be
// duplicated (JS falls back to its transport), or -status. stream: see
// streamOptionsOf().
Napi::Value HubWrap::JS_adopt(const Napi::CallbackInfo& info) {
  return adoptCall(info, dispatcher_.get(), nullptr, nullptr);
}

// attach(stream) -> id or -status: a connection the JS thread writes.
Napi::Value HubWrap::JS_attach(const Napi::CallbackInfo& info) {
  return attachCall(info, dispatcher_.get(), nullptr, nullptr);
}

// subscribe(id, topics) -> status. All or nothing: the cap is checked first.
Napi::Value HubWrap::JS_subscribe(const Napi::CallbackInfo& info) {
  const uint64_t id = toId(info[0]);
  if (Status s = dispatcher_->checkConnection(id); s != Status::kOk) return statusValue(info.Env(), s);
  std::vector<std::string> topics;
  if (!topicsOf(info[1], &topics)) return statusValue(info.Env(), Status::kInvalidTopic);
  return statusValue(info.Env(), dispatcher_->subscribe(id, std::move(topics)));
}

Napi::Value HubWrap::JS_unsubscribe(const Napi::CallbackInfo& info) {
  const uint64_t id = toId(info[0]);
  if (Status s = dispatcher_->checkConnection(id); s != Status::kOk) return statusValue(info.Env(), s);
  std::vector<std::string> topics;
  if (!topicsOf(info[1], &topics)) return statusValue(info.Env(), Status::kInvalidTopic);
  return statusValue(info.Env(), dispatcher_->unsubscribe(id, std::move(topics)));
}

bool HubWrap::eventOf(const Napi::CallbackInfo& info, size_t dataArg, EventFields* ev) {
  static thread_local std::string data, event, id;
  std::string_view dataView, eventView, idView;
  if (!bytesOf(info[dataArg], data, &dataView)) return false;
  ev->data = dataView;
  if (info[dataArg + 1].IsString()) {
    bytesOf(info[dataArg + 1], event, &eventView);
    ev->event = eventView;
  }
  if (info[dataArg + 2].IsString()) {
    bytesOf(info[dataArg + 2], id, &idView);
    ev->id = idView;
  }
  // publish/broadcast/send take `compress` as the argument after the users
  // (send: after an unused one): false keeps the event out of compression.
  if (info[dataArg + 4].IsBoolean() && !info[dataArg + 4].As<Napi::Boolean>().Value()) ev->compress = false;
  return true;
}

const std::vector<std::string_view>* HubWrap::usersOf(const Napi::Value& v) {
  if (!v.IsArray()) return nullptr;
  static thread_local std::vector<std::string> names;
  static thread_local std::vector<std::string_view> views;
  auto arr = v.As<Napi::Array>();
  const uint32_t n = arr.Length();
  if (names.size() < n) names.resize(n);
  views.clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view view;
    if (bytesOf(arr.Get(i), names[i], &view)) views.push_back(view);
  }
  return &views;
}

// publish(topic, data, event, id, users, compress) -> status
Napi::Value HubWrap::JS_publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (dispatcher_->closing()) return statusValue(env, Status::kClosed);
  static thread_local std::string topic;
  std::string_view topicView;
  if (!bytesOf(info[0], topic, &topicView) || validateTopic(topicView) != Status::kOk) {
    return statusValue(env, Status::kInvalidTopic);
  }
  EventFields ev;
  if (!eventOf(info, 1, &ev)) return statusValue(env, Status::kInvalidData);
  return statusValue(env, dispatcher_->publish(topicView, ev, usersOf(info[4])));
}

// broadcast(data, event, id, users, compress) -> status
Napi::Value HubWrap::JS_broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (dispatcher_->closing()) return statusValue(env, Status::kClosed);
  EventFields ev;
  if (!eventOf(info, 0, &ev)) return statusValue(env, Status::kInvalidData);
  return statusValue(env, dispatcher_->broadcast(ev, usersOf(info[3])));
}

// send(connId, data, event, id, unused, compress) -> status
Napi::Value HubWrap::JS_send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t id = toId(info[0]);
  if (Status s = dispatcher_->checkConnection(id); s != Status::kOk) return statusValue(env, s);
  EventFields ev;
  if (!eventOf(info, 1, &ev)) return statusValue(env, Status::kInvalidData);
  return statusValue(env, dispatcher_->send(id, ev));
}

Napi::Value HubWrap::JS_kick(const Napi::CallbackInfo& info) {
  return statusValue(info.Env(), dispatcher_->kick(toId(info[0])));
}

// detach(id, reasonIndex): a JS-transport connection ended on the JS side.
Napi::Value HubWrap::JS_detach(const Napi::CallbackInfo& info) {
  if (channel_->released()) return statusValue(info.Env(), Status::kUnknownConnection);
  uint32_t reason = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  reason = std::min<uint32_t>(reason, static_cast<uint32_t>(DisconnectReason::kCount) - 1);
  return statusValue(info.Env(), dispatcher_->detach(toId(info[0]), static_cast<DisconnectReason>(reason)));
}

Napi::Value HubWrap::JS_has(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), dispatcher_->has(toId(info[0])));
}

Napi::Value HubWrap::JS_subscriptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<std::string>* subs = dispatcher_->subscriptions(toId(info[0]));
  if (!subs) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, subs->size());
  for (uint32_t i = 0; i < subs->size(); ++i) out.Set(i, Napi::String::New(env, (*subs)[i]));
  return out;
}

Napi::Value HubWrap::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DispatcherStats s = dispatcher_->stats();
  // Key order as lib/hub.js has always seen it.
  auto setCounters = [](Napi::Object o, uint64_t connections, uint64_t published, const auto& c) {
    o.Set("connections", static_cast<double>(connections));
    o.Set("subscriptions", static_cast<double>(c.subscriptions));
    o.Set("published", static_cast<double>(published));
    o.Set("delivered", static_cast<double>(c.delivered));
    o.Set("bytesWritten", static_cast<double>(c.bytesWritten));
    o.Set("slow", static_cast<double>(c.slow));
    o.Set("queueBytes", static_cast<double>(c.queueBytes));
    o.Set("heartbeats", static_cast<double>(c.heartbeats));
    o.Set("pendingCommands", static_cast<double>(c.pendingCommands));
    o.Set("pendingBytes", static_cast<double>(c.pendingBytes));
  };
  Napi::Array threads = Napi::Array::New(env, s.threads.size());
  for (uint32_t i = 0; i < s.threads.size(); ++i) {
    const ShardStats& t = s.threads[i];
    Napi::Object o = Napi::Object::New(env);
    setCounters(o, t.connections, t.published, t);
    threads.Set(i, o);
  }
  Napi::Object out = Napi::Object::New(env);
  setCounters(out, s.connections, s.published, s);
  out.Set("queueFull", static_cast<double>(s.queueFull));
  out.Set("users", static_cast<double>(s.users));
  out.Set("frames", static_cast<double>(Frame::liveCount()));
  Napi::Object coded = Napi::Object::New(env);
  coded.Set("connections", static_cast<double>(s.codedConnections));
  coded.Set("bytesIn", static_cast<double>(s.codedIn));
  coded.Set("bytesOut", static_cast<double>(s.codedOut));
  out.Set("compression", coded);
  out.Set("threads", threads);
  out.Set("history", historyStatsValue(env, dispatcher_->history()));
  return out;
}

// close(): every shard flushes, ends its streams and stops; reports follow,
// the last being one "stopped" per shard.
Napi::Value HubWrap::JS_close(const Napi::CallbackInfo& info) {
  if (!dispatcher_->closing()) {
    channel_->ref(info.Env());
    dispatcher_->close();
  }
  return info.Env().Undefined();
}

// closeSync(): process exit. Ends every stream now (what is queued and the
// last chunk, in non-blocking writes, best effort) and stops the threads
// before returning; no report reaches JS after it.
Napi::Value HubWrap::JS_closeSync(const Napi::CallbackInfo& info) {
  stopNow(true);
  channel_->release();
  return info.Env().Undefined();
}

// historyRead(since, topics, user, max): see history_wrap.hpp.
Napi::Value HubWrap::JS_historyRead(const Napi::CallbackInfo& info) {
  return historyRead(info, dispatcher_->history());
}

// publishBatch(epoch, firstSeq, entries) -> status: see history_wrap.hpp.
Napi::Value HubWrap::JS_publishBatch(const Napi::CallbackInfo& info) { return publishBatch(info, *dispatcher_); }

// historyRebase(epoch, seq, reset) -> status: see history_wrap.hpp.
Napi::Value HubWrap::JS_historyRebase(const Napi::CallbackInfo& info) { return historyRebase(info, *dispatcher_); }

Napi::Value HubWrap::JS_flush(const Napi::CallbackInfo& info) {
  dispatcher_->flush();
  return info.Env().Undefined();
}

Napi::Value HubWrap::JS_ref(const Napi::CallbackInfo& info) {
  channel_->ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value HubWrap::JS_unref(const Napi::CallbackInfo& info) {
  if (!dispatcher_->closing()) channel_->unref(info.Env());
  return info.Env().Undefined();
}

}  // namespace ssefanout
