// ListenerWrap: NativeListener, the native listener of one hub
// (src/listener, lib/listener.js, docs/listener.md).
//
//   new NativeListener(nativeHub, options, onBatch)
//   listen() -> the bound port; throws with the system's error
//   close()  -> stops accepting; onBatch('closed') once every thread has
//   grant(token, topics, user, lastEventId) / deny(token, status, code, message)
//   stats()  -> the listener's counters
//   expire(timeoutMs) -> answers 503 to requests the hook left waiting longer
//
// onBatch(kind, list) on the JS thread, once per batch of accepted requests:
// 'opened' with the ids of the streams opened natively (no JS object per
// connection), 'authorize' with one plain object per request when an
// authorize hook is set ({ token, method, path, query, headers,
// remoteAddress, remotePort }), 'closed' at the end.
//
// Ownership: the wrap keeps the NativeHub alive. The thread-safe function
// owns the Channel that acceptors hand batches to; the Channel outlives the
// wrap until the function is finalized, so no call reaches a freed wrap.
// JS thread for all but the Channel's Sink methods.
#pragma once

#include <napi.h>

#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "admission.hpp"
#include "core.hpp"
#include "dispatcher.hpp"

namespace ssefanout {

class ListenerWrap : public Napi::ObjectWrap<ListenerWrap>, public Dispatcher::Observer {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ListenerWrap(const Napi::CallbackInfo& info);
  ~ListenerWrap() override;

  void onForget(uint64_t id) override {}
  // The thread-safe function's finalizer freed the Channel (JS thread).
  void channelFinalized() {
    channel_ = nullptr;
    released_ = true;
  }
  void onDetached() override;

  // Requests handled per call on the JS thread; the rest wait for the next
  // call, so one storm never holds the event loop for long.
  static constexpr size_t kPerTurn = 128;
  // Requests waiting for the authorize hook's answer, at most, and their
  // heads' bytes together.
  static constexpr size_t kMaxAuthorizing = 4096;
  static constexpr size_t kMaxAuthorizingBytes = 8 << 20;

 private:
  class Channel;

  Napi::Value JS_listen(const Napi::CallbackInfo& info);
  Napi::Value JS_close(const Napi::CallbackInfo& info);
  Napi::Value JS_grant(const Napi::CallbackInfo& info);
  Napi::Value JS_deny(const Napi::CallbackInfo& info);
  Napi::Value JS_stats(const Napi::CallbackInfo& info);
  Napi::Value JS_expire(const Napi::CallbackInfo& info);
  Napi::Value JS_ref(const Napi::CallbackInfo& info);
  Napi::Value JS_unref(const Napi::CallbackInfo& info);

  void dispatch(Napi::Env env, Napi::Function callback);
  Napi::Object requestObject(Napi::Env env, uint32_t token, const listener::Accepted& a);
  void release();

  Napi::ObjectReference hubRef_;
  Dispatcher* dispatcher_ = nullptr;  // null once the hub is gone
  std::shared_ptr<listener::Core> core_;
  std::unique_ptr<listener::Admission> admission_;
  Channel* channel_ = nullptr;  // owned by tsfn_ (its finalizer frees it); null once released
  Napi::ThreadSafeFunction tsfn_;
  bool listening_ = false;
  uint32_t sockets_ = 0;  // listening sockets, over all threads
  bool closing_ = false;
  bool released_ = false;
  uint32_t nextToken_ = 1;
  struct Waiting {
    listener::Accepted request;
    uint64_t sinceMs = 0;
  };
  std::unordered_map<uint32_t, Waiting> authorizing_;
  size_t authorizingBytes_ = 0;
  uint64_t authorizeTimeouts_ = 0;
  void denyAllWaiting(uint16_t status, const char* code, const char* message);
  bool takeWaiting(uint32_t token, listener::Accepted* out);
  std::deque<listener::Accepted> queue_;  // taken from the Channel, not yet handled
  uint64_t deniedByHook_ = 0;
};

}  // namespace ssefanout
