// The history's Node-API glue: its options from the Hub's options object, its
// stats, and the catch-up read (NativeHub.historyRead, lib/history/).
//
// JS thread only, like the Dispatcher that owns the History.
#pragma once

#include <napi.h>

#include <optional>

#include "history.hpp"

namespace ssefanout {

// options.history as lib/hub.js resolved and validated it ({ epoch,
// maxEvents, maxBytes, maxAgeMs, maxReplayEvents, resetEvent }), or nullopt
// when it is not an object (history off).
std::optional<history::HistoryOptions> historyOptionsOf(const Napi::Value& v);

// { epoch, events, bytes, oldest, latest, replays, replayedEvents,
//   resets: { unknown, epoch, expired, limit }, reads } or null when off.
Napi::Value historyStatsValue(Napi::Env env, const history::History* h);

// historyRead(since, topics, user, max) -> { reset, requested, oldest,
// latest, cursor, frames }: frames a flat [Buffer, topic | null, ...] of the
// events after `since` (a cursor string; undefined: the latest position)
// that a reader of `topics` (validated strings) and `user` matches, at most
// `max`. Buffers are external, over the history's own frames (no copy).
// reset (a reason name) when `since` cannot be placed; requested is then the
// re-formatted cursor for expired, else null. null when history is off.
Napi::Value historyRead(const Napi::CallbackInfo& info, history::History* h);

}  // namespace ssefanout
