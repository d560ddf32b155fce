#include "realtime_wrap.hpp"

#include <algorithm>
#include <atomic>

#include "args.hpp"
#include "hub_wrap.hpp"
#include "sse_encoder.hpp"

namespace ssefanout {
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

// A record event's largest frame is the record plus what surrounds it: the
// longest subscription name (its event name), the action and the framing. A
// record within this much of maxQueueBytes is refused before it is parsed.
constexpr size_t kRecordFrameHeadroom = 4096;

// Every NativeRealtime in the process gets its own topic space (PbIndex).
std::atomic<uint64_t> nextTopicSpace{0};

pb::PbLimits limitsOf(const Napi::Value& v) {
  pb::PbLimits limits;
  if (!v.IsObject()) return limits;
  Napi::Object o = v.As<Napi::Object>();
  auto at = [&](const char* name, uint64_t fallback) { return budgetOf(o, name, fallback); };
  auto at32 = [&](const char* name, uint32_t fallback) { return budget32Of(o, name, fallback); };
  limits.maxOptionSubscriptionsPerClient =
      at32("maxOptionSubscriptionsPerClient", limits.maxOptionSubscriptionsPerClient);
  limits.maxFilterNodesPerClient = at32("maxFilterNodesPerClient", limits.maxFilterNodesPerClient);
  limits.maxCompiledBytesPerClient = at("maxCompiledBytesPerClient", limits.maxCompiledBytesPerClient);
  limits.maxDistinctSubscriptions = at("maxDistinctSubscriptions", limits.maxDistinctSubscriptions);
  limits.maxCompiledBytes = at("maxCompiledBytes", limits.maxCompiledBytes);
  limits.maxOptionSubscriptionsPerIp = at32("maxOptionSubscriptionsPerIp", limits.maxOptionSubscriptionsPerIp);
  limits.maxFilterNodesPerIp = at32("maxFilterNodesPerIp", limits.maxFilterNodesPerIp);
  limits.maxCompiledBytesPerIp = at("maxCompiledBytesPerIp", limits.maxCompiledBytesPerIp);
  limits.maxSubscriptionsPerIp = at("maxSubscriptionsPerIp", limits.maxSubscriptionsPerIp);
  return limits;
}

}  // namespace

Napi::Function RealtimeWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeRealtime",
                     {
                         InstanceMethod<&RealtimeWrap::JS_subscribe>("subscribe"),
                         InstanceMethod<&RealtimeWrap::JS_broadcastRecord>("broadcastRecord"),
                         InstanceMethod<&RealtimeWrap::JS_publish>("publish"),
                         InstanceMethod<&RealtimeWrap::JS_send>("send"),
                         InstanceMethod<&RealtimeWrap::JS_stats>("stats"),
                     });
}

RealtimeWrap::RealtimeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RealtimeWrap>(info) {
  dispatcher_ = HubWrap::attachProtocol(info, "NativeRealtime(nativeHub, budgets)", this, &hubRef_);
  if (!dispatcher_) return;
  pb_.setLimits(limitsOf(info[1]));
  pb_.setTopicSpace(nextTopicSpace.fetch_add(1, std::memory_order_relaxed));
}

RealtimeWrap::~RealtimeWrap() {
  if (dispatcher_) dispatcher_->removeObserver(this);
}

void RealtimeWrap::onForget(uint64_t id) { pb_.removeConnection(id); }

void RealtimeWrap::onDetached() { dispatcher_ = nullptr; }

Napi::Value RealtimeWrap::JS_subscribe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!dispatcher_) return statusValue(env, Status::kClosed);
  const uint64_t id = toId(info[0]);
  if (Status st = dispatcher_->checkConnection(id); st != Status::kOk) return statusValue(env, st);
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
  if (subs.size() > dispatcher_->options().shard.maxSubscriptions) {
    return statusValue(env, Status::kTooManySubscriptions);
  }
  std::vector<std::string> add, remove;
  std::vector<pb::SubscriptionError> errors;
  Status s = pb_.setSubscriptions(id, stringArg(info[1]), stringArg(info[2]), stringArg(info[3]),
                                  info[4].ToBoolean().Value(), subs, &add, &remove, &errors);
  if (s != Status::kOk) return statusValue(env, s);
  dispatcher_->changeTopics(id, std::move(remove), std::move(add));
  Napi::Array out = Napi::Array::New(env, errors.size());
  for (uint32_t i = 0; i < errors.size(); ++i) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, errors[i].subscription));
    pair.Set(1u, Napi::String::New(env, errors[i].message));
    out.Set(i, pair);
  }
  return out;
}

Napi::Value RealtimeWrap::JS_broadcastRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!dispatcher_ || dispatcher_->closing()) return statusValue(env, Status::kClosed);
  static thread_local std::string record;
  std::string_view recordView;
  if (!bytesOf(info[5], record, &recordView)) return Napi::String::New(env, "record must be a string");
  if (recordView.size() + kRecordFrameHeadroom > dispatcher_->options().shard.maxQueueBytes) {
    return statusValue(env, Status::kDataTooLarge);
  }
  std::string name = stringArg(info[0]), collectionId = stringArg(info[1]), action = stringArg(info[4]);
  std::string listRule, viewRule;
  pb::Collection collection;
  collection.name = name;
  collection.id = collectionId;
  if (info[2].IsString()) collection.listRule = &(listRule = info[2].As<Napi::String>().Utf8Value());
  if (info[3].IsString()) collection.viewRule = &(viewRule = info[3].As<Napi::String>().Utf8Value());
  std::vector<Delivery> deliveries;
  std::string error;
  if (pb_.broadcastRecord(collection, action, recordView, &deliveries, &error) != Status::kOk) {
    return Napi::String::New(env, error);
  }
  // The frames are known only now: the whole event is refused if they do
  // not fit (its evaluation is lost, but nothing is queued).
  return statusValue(env, dispatcher_->publishMany(deliveries));
}

// A message that could not fit an empty queue is refused (DATA_TOO_LARGE)
// rather than dropping every subscriber as slow; the size is the encoded
// one, so data of many short lines (one "data:" each) counts for what it
// becomes.
Napi::Value RealtimeWrap::JS_publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!dispatcher_ || dispatcher_->closing()) return statusValue(env, Status::kClosed);
  static thread_local std::string data;
  std::string_view dataView;
  if (!bytesOf(info[2], data, &dataView)) return statusValue(env, Status::kInvalidData);
  std::string event = stringArg(info[1]);
  if (!isSingleLine(event)) return statusValue(env, Status::kInvalidEvent);
  EventFields ev;
  ev.compact = true;  // as PbIndex::publish encodes it
  ev.event = event;
  ev.data = dataView;
  if (maxQueuedSize(encodedSize(ev)) > dispatcher_->options().shard.maxQueueBytes) {
    return statusValue(env, Status::kDataTooLarge);
  }
  std::vector<Delivery> deliveries;
  pb_.publish(stringArg(info[0]), event, dataView, &deliveries);
  return statusValue(env, dispatcher_->publishMany(deliveries));
}

// `connecting`: the PB_CONNECT of a connection being accepted, posted
// whatever the bound (as accept() posts the connection).
Napi::Value RealtimeWrap::JS_send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!dispatcher_) return statusValue(env, Status::kClosed);
  const uint64_t id = toId(info[0]);
  if (Status st = dispatcher_->checkConnection(id); st != Status::kOk) return statusValue(env, st);
  static thread_local std::string data;
  std::string_view dataView;
  if (!bytesOf(info[2], data, &dataView)) return statusValue(env, Status::kInvalidData);
  std::string event = stringArg(info[1]);
  EventFields ev;
  ev.compact = true;
  ev.event = event;
  ev.data = dataView;
  if (Status s = validateFields(ev); s != Status::kOk) return statusValue(env, s);
  if (maxQueuedSize(encodedSize(ev)) > dispatcher_->options().shard.maxQueueBytes) {
    return statusValue(env, Status::kDataTooLarge);
  }
  FrameRef frame;
  encodeEvent(ev, &frame);
  return statusValue(env, dispatcher_->sendFrame(id, std::move(frame), info[3].ToBoolean().Value()));
}

Napi::Value RealtimeWrap::JS_stats(const Napi::CallbackInfo& info) {
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
