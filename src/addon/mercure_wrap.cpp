#include "mercure_wrap.hpp"

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "args.hpp"
#include "hub_wrap.hpp"
#include "selector.hpp"

namespace ssefanout {
namespace {

// Every NativeMercure in the process routes through a topic space of its own.
std::atomic<uint64_t> nextTopicSpace{0};

mercure::MercureLimits limitsOf(const Napi::Value& v) {
  mercure::MercureLimits limits;
  if (!v.IsObject()) return limits;
  Napi::Object o = v.As<Napi::Object>();
  auto at = [&](const char* name, uint64_t fallback) { return budgetOf(o, name, fallback, 1); };
  auto at32 = [&](const char* name, uint32_t fallback) { return budget32Of(o, name, fallback, 1); };
  limits.maxSelectorsPerSubscriber = at32("maxSelectorsPerSubscriber", limits.maxSelectorsPerSubscriber);
  limits.maxClaimSelectors = at32("maxClaimSelectors", limits.maxClaimSelectors);
  limits.maxDistinctSelectors = at("maxDistinctSelectors", limits.maxDistinctSelectors);
  limits.maxDistinctTemplates = at("maxDistinctTemplates", limits.maxDistinctTemplates);
  limits.maxExpressionsPerSubscriber = at32("maxExpressionsPerSubscriber", limits.maxExpressionsPerSubscriber);
  limits.maxTopicsPerUpdate = at32("maxTopicsPerUpdate", limits.maxTopicsPerUpdate);
  return limits;
}

constexpr std::string_view kEarliest = "earliest";

// Where a Mercure subscriber's Last-Event-ID puts it: "earliest" before the
// oldest update held; otherwise only an update's id, never a cursor of the
// hub's own ("<epoch>-<seq>": its readers were never given one, and placing
// it would let them probe positions).
history::Place placeOf(history::History* history, const std::string& cursor) {
  if (cursor == kEarliest) return history->locate(history->cursorOf(history->oldest() - 1), Dispatcher::nowMs());
  return history->locate(cursor, Dispatcher::nowMs(), /*idsOnly=*/true);
}

mercure::MercureIndex::ProfileId profileArg(const Napi::Value& v) {
  if (!v.IsNumber()) return 0;
  const double d = v.As<Napi::Number>().DoubleValue();
  return d >= 1 && d <= UINT32_MAX ? static_cast<mercure::MercureIndex::ProfileId>(d) : 0;
}

}  // namespace

Napi::Function MercureWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeMercure",
                     {
                         InstanceMethod<&MercureWrap::JS_acquire>("acquire"),
                         InstanceMethod<&MercureWrap::JS_release>("release"),
                         InstanceMethod<&MercureWrap::JS_lastVisibleId>("lastVisibleId"),
                         InstanceMethod<&MercureWrap::JS_resumes>("resumes"),
                         InstanceMethod<&MercureWrap::JS_replayStart>("replayStart"),
                         InstanceMethod<&MercureWrap::JS_adopt>("adopt"),
                         InstanceMethod<&MercureWrap::JS_attach>("attach"),
                         InstanceMethod<&MercureWrap::JS_publish>("publish"),
                         InstanceMethod<&MercureWrap::JS_stats>("stats"),
                     });
}

MercureWrap::MercureWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MercureWrap>(info) {
  dispatcher_ = HubWrap::attachProtocol(info, "NativeMercure(nativeHub, limits)", this, &hubRef_);
  if (!dispatcher_) return;
  index_ = std::make_unique<mercure::MercureIndex>(limitsOf(info[1]),
                                                   nextTopicSpace.fetch_add(1, std::memory_order_relaxed));
}

MercureWrap::~MercureWrap() {
  if (dispatcher_) dispatcher_->removeObserver(this);
}

void MercureWrap::onForget(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  index_->release(it->second);
  connections_.erase(it);
}

void MercureWrap::onDetached() { dispatcher_ = nullptr; }

Napi::Value MercureWrap::JS_acquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto refused = [&](Status s) { return Napi::Number::New(env, -static_cast<double>(s)); };
  if (!dispatcher_ || dispatcher_->closing() || !index_) return refused(Status::kClosed);
  std::vector<std::string> selectors, claims;
  if (!info[0].IsArray() || !topicsOf(info[0], &selectors)) return refused(Status::kInvalidTopic);
  const bool withClaims = info[1].IsArray();
  if (withClaims && !topicsOf(info[1], &claims)) return refused(Status::kInvalidTopic);
  mercure::MercureIndex::ProfileId id = 0;
  if (Status s = index_->acquire(selectors, withClaims ? &claims : nullptr, &id); s != Status::kOk) return refused(s);
  return Napi::Number::New(env, id);
}

Napi::Value MercureWrap::JS_release(const Napi::CallbackInfo& info) {
  if (index_) index_->release(profileArg(info[0]));
  return info.Env().Undefined();
}

Napi::Value MercureWrap::JS_lastVisibleId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto profile = profileArg(info[0]);
  if (!dispatcher_ || !index_ || !index_->has(profile)) return env.Null();
  history::History* history = dispatcher_->history();
  if (!history) return env.Null();
  history::Reader reader;
  reader.filter = index_->replayFilterOf(profile, *history);
  const std::optional<std::string> id = history->newestMatching(reader, history->options().maxReplayEvents);
  return id ? Napi::String::New(env, *id) : env.Null();
}

Napi::Value MercureWrap::JS_resumes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto profile = profileArg(info[0]);
  if (!dispatcher_ || !index_ || !index_->has(profile) || !info[1].IsString()) return Napi::Boolean::New(env, false);
  history::History* history = dispatcher_->history();
  if (!history) return Napi::Boolean::New(env, false);
  const history::Place place = placeOf(history, info[1].As<Napi::String>().Utf8Value());
  history::Reader reader;
  reader.filter = index_->replayFilterOf(profile, *history);
  return Napi::Boolean::New(env,
                            place.reason == history::ResetReason::kNone && history->mayKnowOf(place.after, reader));
}

Napi::Value MercureWrap::JS_replayStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto profile = profileArg(info[0]);
  if (!dispatcher_ || !index_ || !index_->has(profile) || !info[1].IsString()) return env.Null();
  history::History* history = dispatcher_->history();
  if (!history) return env.Null();
  const history::Place place = placeOf(history, info[1].As<Napi::String>().Utf8Value());
  if (place.reason != history::ResetReason::kNone) return env.Null();
  history::Reader reader;
  reader.filter = index_->replayFilterOf(profile, *history);
  // The budget Dispatcher::resume() gives the replay, less room for a head
  // as large as a request's (16 KiB): a resume from the cursor returned
  // then takes every update after it.
  const uint64_t cap = dispatcher_->options().shard.maxQueueBytes;
  const uint64_t reserved = 16 * 1024 + 4 * Dispatcher::kQueueFraming + 256;
  const auto left =
      history->newestLeftOut(place, reader, cap > reserved ? cap - reserved : 0, Dispatcher::kQueueFraming);
  if (!left) return env.Null();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::String::New(env, left->first));
  out.Set(uint32_t{1}, Napi::String::New(env, left->second));
  return out;
}

// The profile's part of a stream: its route, its replay filter, no
// positions; "earliest" as a cursor before the oldest event held.
Status MercureWrap::completeStream(void* self, const Napi::CallbackInfo&, StreamOptions* stream) {
  auto* w = static_cast<MercureWrap*>(self);
  if (!w->index_ || !w->index_->has(w->pending_)) return Status::kInvalidTopic;
  stream->routes.push_back(w->index_->routeOf(w->pending_));
  history::History* history = w->dispatcher_->history();
  stream->replayFilter = history ? w->index_->replayFilterOf(w->pending_, *history) : w->index_->filterOf(w->pending_);
  stream->positions = false;
  if (history && stream->lastEventId && *stream->lastEventId == kEarliest) {
    stream->lastEventId = history->cursorOf(history->oldest() - 1);
  } else {
    stream->cursorIdsOnly = true;  // Mercure ids are all its publishers' (or urn:uuid)
  }
  return Status::kOk;
}

// After adopt/attach: a new connection holds its own profile reference.
Napi::Value MercureWrap::bind(Napi::Value result) {
  const double id = result.As<Napi::Number>().DoubleValue();
  if (id > 0) {
    // The hub issues an id once (Registry generations): never already bound.
    index_->retain(pending_);
    connections_[static_cast<uint64_t>(id)] = pending_;
  }
  pending_ = 0;
  return result;
}

Napi::Value MercureWrap::JS_adopt(const Napi::CallbackInfo& info) {
  pending_ = profileArg(info[4]);
  return bind(adoptCall(info, dispatcher_, &MercureWrap::completeStream, this));
}

Napi::Value MercureWrap::JS_attach(const Napi::CallbackInfo& info) {
  pending_ = profileArg(info[1]);
  return bind(attachCall(info, dispatcher_, &MercureWrap::completeStream, this));
}

Napi::Value MercureWrap::JS_publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!dispatcher_ || dispatcher_->closing() || !index_) return statusValue(env, Status::kClosed);
  if (!info[0].IsArray()) return statusValue(env, Status::kInvalidTopic);
  static thread_local std::vector<std::string> topics;
  static thread_local std::vector<std::string_view> views;
  static thread_local std::vector<std::string> routes;
  static thread_local std::string tag, data, id, type;
  auto arr = info[0].As<Napi::Array>();
  const uint32_t n = arr.Length();
  if (n == 0 || n > index_->limits().maxTopicsPerUpdate) return statusValue(env, Status::kInvalidTopic);
  if (topics.size() < n) topics.resize(n);
  views.clear();
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value t = arr.Get(i);
    if (!t.IsString()) return statusValue(env, Status::kInvalidTopic);
    topics[i] = t.As<Napi::String>().Utf8Value();
    views.push_back(topics[i]);
  }
  EventFields ev;
  std::string_view dataView, idView, typeView;
  if (!bytesOf(info[1], data, &dataView)) return statusValue(env, Status::kInvalidData);
  ev.data = dataView;
  if (info[3].IsString()) {
    bytesOf(info[3], id, &idView);
    ev.id = idView;
  }
  if (info[4].IsString()) {
    bytesOf(info[4], type, &typeView);
    ev.event = typeView;
  }
  if (info[5].IsNumber()) {
    const double retry = info[5].As<Napi::Number>().DoubleValue();
    if (!(retry >= 0 && retry < 9.0e15) || retry != static_cast<double>(static_cast<uint64_t>(retry))) {
      return statusValue(env, Status::kInvalidRetry);
    }
    ev.retryMs = static_cast<uint64_t>(retry);
  }
  routes.clear();
  if (Status s = index_->route(views, info[2].ToBoolean().Value(), &routes, &tag); s != Status::kOk) {
    return statusValue(env, s);
  }
  return statusValue(env, dispatcher_->publishRouted(ev, tag, std::move(routes)));
}

Napi::Value MercureWrap::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const mercure::MercureIndex::Stats s = index_ ? index_->stats() : mercure::MercureIndex::Stats();
  out.Set("profiles", static_cast<double>(s.profiles));
  out.Set("selectors", static_cast<double>(s.selectors));
  out.Set("templates", static_cast<double>(s.templates));
  out.Set("references", static_cast<double>(s.references));
  out.Set("connections", static_cast<double>(connections_.size()));
  return out;
}

Napi::Value MercureSelectorMatches(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(
      env, mercure::selectorMatches(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value()));
}

}  // namespace ssefanout
