// RealtimeWrap: NativeRealtime, the native side of one PocketBase Realtime
// (lib/pocketbase/native-index.js).
//
// Owns the PocketBase subscription index (pb::PbIndex, src/pocketbase) of one
// Realtime and talks to the hub only through the Dispatcher's protocol API:
// checkConnection(), changeTopics(), publishMany(), sendFrame() and an
// Observer that drops a connection from the index when the hub forgets it.
// Each instance names its groups in a topic space of its own, so several
// Realtimes may share one hub without receiving each other's records.
//
// Ownership: keeps the NativeHub alive (a strong reference) while it lives
// and unregisters its observer when destroyed; if the hub goes first
// (environment teardown) it is told through Observer::onDetached and answers
// kClosed. Budgets (PbLimits) are set once, by the constructor. JS thread only.
#pragma once

#include <napi.h>

#include "dispatcher.hpp"
#include "pb_index.hpp"

namespace ssefanout {

class RealtimeWrap : public Napi::ObjectWrap<RealtimeWrap>, public Dispatcher::Observer {
 public:
  static Napi::Function Define(Napi::Env env);
  // new NativeRealtime(nativeHub, budgets): budgets holds the nine PbLimits
  // under their Realtime option names (absent = the PbLimits default).
  explicit RealtimeWrap(const Napi::CallbackInfo& info);
  ~RealtimeWrap() override;

  // Dispatcher::Observer
  void onForget(uint64_t id) override;
  void onDetached() override;

 private:
  // subscribe(connId, owner, identity, authJson, superuser, subs[]) ->
  // [[subscription, message]...] (subscriptions that will receive no record
  // events) or a status number. owner is the client's address (the *PerIp
  // budgets sum over its connections); subs arrive deduplicated and
  // single-line (lib/pocketbase/realtime.js).
  Napi::Value JS_subscribe(const Napi::CallbackInfo& info);
  // broadcastRecord(name, id, listRule|null, viewRule|null, action,
  // recordJson) -> 0, a status number, or a message (a rule or the record is
  // invalid).
  Napi::Value JS_broadcastRecord(const Napi::CallbackInfo& info);
  // publish(subscription, event, data) -> status: a custom message.
  Napi::Value JS_publish(const Napi::CallbackInfo& info);
  // send(connId, event, data, connecting) -> status: one message in
  // PocketBase's framing.
  Napi::Value JS_send(const Napi::CallbackInfo& info);
  // stats() -> { clients, keys, groups, identities, compiledBytes }
  Napi::Value JS_stats(const Napi::CallbackInfo& info);

  Napi::ObjectReference hubRef_;
  Dispatcher* dispatcher_ = nullptr;  // null once the hub is gone
  pb::PbIndex pb_;
};

}  // namespace ssefanout
