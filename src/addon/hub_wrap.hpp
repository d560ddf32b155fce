// HubWrap: NativeHub, the native side of lib/hub.js.
//
// Glue only: converts arguments (args.hpp), calls the Dispatcher (the
// JS-thread state: registry, users, subscriptions, batches, the pending
// bound) and answers Status numbers that lib/hub.js turns into SseErrors.
// The ReportChannel carries what the shards report back to JS. Methods named
// JS_* are the whole native surface. Protocol wraps (RealtimeWrap,
// MercureWrap) reach the Dispatcher through attachProtocol() and keep this
// object alive while they do.
//
// Lifecycle: constructed -> close() (graceful; "stopped" reports follow) or
// closeSync() (process exit) or environment teardown (cleanup hook). JS
// thread only.
#pragma once

#include <napi.h>

#include <memory>

#include "dispatcher.hpp"
#include "report_channel.hpp"

namespace ssefanout {

class HubWrap : public Napi::ObjectWrap<HubWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new NativeHub(options, onReports)
  explicit HubWrap(const Napi::CallbackInfo& info);
  ~HubWrap() override;

  Dispatcher& dispatcher() { return *dispatcher_; }

  // A protocol wrap's constructor: info[0] must be a NativeHub (else a
  // TypeError naming `usage` is thrown and nullptr answered); it is kept
  // alive in *hubRef and `observer` is registered on its dispatcher, which
  // is returned.
  static Dispatcher* attachProtocol(const Napi::CallbackInfo& info, const char* usage, Dispatcher::Observer* observer,
                                    Napi::ObjectReference* hubRef);

 private:
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
  Napi::Value JS_historyRead(const Napi::CallbackInfo& info);
  Napi::Value JS_publishBatch(const Napi::CallbackInfo& info);
  Napi::Value JS_historyRebase(const Napi::CallbackInfo& info);

  // Reads data, event and id from info[dataArg..dataArg+2]; false when data
  // is neither a string nor a Uint8Array.
  static bool eventOf(const Napi::CallbackInfo& info, size_t dataArg, EventFields* ev);
  // The user names of v (an array), or nullptr when v is not an array.
  static const std::vector<std::string_view>* usersOf(const Napi::Value& v);
  void stopNow(bool endBodies = false);
  static void CleanupHook(void* arg);

  // Declared first, destroyed last: the shards call it until they are joined.
  std::unique_ptr<ReportChannel> channel_;
  std::unique_ptr<Dispatcher> dispatcher_;
  napi_env env_ = nullptr;
  bool hookAdded_ = false;
};

}  // namespace ssefanout
