// MercureWrap: NativeMercure, the native side of one MercureHub
// (lib/mercure/).
//
// Owns the Mercure subscription index (mercure::MercureIndex, src/mercure) and
// talks to the hub only through the Dispatcher's protocol API: streams
// adopted or attached with their profile's route and replay filter
// (StreamOptions::routes, replayFilter, no positions), publishRouted() for
// updates, and an Observer that drops a connection's profile reference when
// the hub forgets it. Each instance routes through a topic space of its own.
//
// Profiles are reference counted: acquire() takes one for the caller (JS
// releases it once the stream is adopted or refused), and every connection
// holds its own from adopt()/attach() until it is forgotten.
//
// Ownership: keeps the NativeHub alive while it lives and unregisters its
// observer when destroyed; if the hub goes first (environment teardown) it is
// told through Observer::onDetached and answers kClosed. JS thread only.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "dispatcher.hpp"
#include "mercure_index.hpp"

namespace ssefanout {

class MercureWrap : public Napi::ObjectWrap<MercureWrap>, public Dispatcher::Observer {
 public:
  static Napi::Function Define(Napi::Env env);
  // new NativeMercure(nativeHub, limits): limits holds MercureLimits under
  // their names (absent = default).
  explicit MercureWrap(const Napi::CallbackInfo& info);
  ~MercureWrap() override;

  void onForget(uint64_t id) override;
  void onDetached() override;

 private:
  // acquire(selectors[], claims[] | null) -> profile id, or -status.
  Napi::Value JS_acquire(const Napi::CallbackInfo& info);
  // release(profile): the reference acquire() took.
  Napi::Value JS_release(const Napi::CallbackInfo& info);
  // lastVisibleId(profile) -> the id of the newest update in the history the
  // profile may see (among the last maxReplayEvents), or null.
  Napi::Value JS_lastVisibleId(const Napi::CallbackInfo& info);
  // resumes(profile, cursor) -> true when a stream of the profile resuming
  // from `cursor` gets what followed it: the history places the cursor and
  // it names nothing the profile may not know of (History::mayKnowOf).
  Napi::Value JS_resumes(const Napi::CallbackInfo& info);
  // replayStart(profile, cursor) -> null when a stream of the profile
  // resuming from `cursor` (one resumes() accepts, or "earliest") replays
  // every update after it; else [id, cursor] of the newest update the replay
  // leaves out (past maxReplayEvents or the queue): the spec's Last-Event-ID
  // answer, and the cursor to resume from so the stream gets exactly the rest.
  Napi::Value JS_replayStart(const Napi::CallbackInfo& info);
  // adopt(fd, head, chunked, stream, profile) / attach(stream, profile): as
  // NativeHub's, the stream bound to the profile. stream.lastEventId
  // "earliest" replays the whole history.
  Napi::Value JS_adopt(const Napi::CallbackInfo& info);
  Napi::Value JS_attach(const Napi::CallbackInfo& info);
  // publish(topics[], data, private, id, type, retry) -> status.
  Napi::Value JS_publish(const Napi::CallbackInfo& info);
  // stats() -> { profiles, selectors, templates, references, connections }
  Napi::Value JS_stats(const Napi::CallbackInfo& info);

  static Status completeStream(void* self, const Napi::CallbackInfo& info, StreamOptions* stream);
  Napi::Value bind(Napi::Value result);

  Napi::ObjectReference hubRef_;
  Dispatcher* dispatcher_ = nullptr;  // null once the hub is gone
  std::unique_ptr<mercure::MercureIndex> index_;
  std::unordered_map<uint64_t, mercure::MercureIndex::ProfileId> connections_;
  mercure::MercureIndex::ProfileId pending_ = 0;  // the profile of the adopt/attach being made
};

// mercureSelectorMatches(selector, topic) -> boolean (the reference hub's
// rule, for the publish authorization in lib/mercure/auth.js).
Napi::Value MercureSelectorMatches(const Napi::CallbackInfo& info);

}  // namespace ssefanout
