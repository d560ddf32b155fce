// The history's Node-API glue: its options from the Hub's options object, its
// stats, the catch-up read (NativeHub.historyRead, lib/history/), and
// sequences from outside (NativeHub.publishBatch and historyRebase, for the
// Redis bus through hubInternals(hub) in lib/hub.js).
//
// JS thread only, like the Dispatcher that owns the History.
#pragma once

#include <napi.h>

#include <optional>

#include "history.hpp"

namespace ssefanout {

class Dispatcher;

// Slots per event in publishBatch's flat array.
constexpr uint32_t kBatchSlots = 5;

// options.history as lib/hub.js resolved and validated it ({ epoch,
// maxEvents, maxBytes, maxAgeMs, maxReplayEvents, resetEvent }), or nullopt
// when it is not an object (history off).
std::optional<history::HistoryOptions> historyOptionsOf(const Napi::Value& v);

// { epoch, events, bytes, oldest, latest, replays, replayedEvents,
//   resets: { unknown, epoch, expired, limit }, reads } or null when off.
Napi::Value historyStatsValue(Napi::Env env, const history::History* h);

// historyRead(since, topics, user, max) -> { reset, requested, oldest,
// latest, cursor, frames, stored }: frames a flat [Buffer, topic | null, ...] of the
// events after `since` (a cursor string; undefined: the latest position)
// that a reader of `topics` (validated strings) and `user` matches, at most
// `max`. Buffers are external, over the history's own frames (no copy).
// stored: the indices (in events, not in frames) of those published with
// compress: false, which a compressed answer must not compress.
// reset (a reason name) when `since` cannot be placed; requested is then the
// re-formatted cursor for expired, else null. null when history is off.
Napi::Value historyRead(const Napi::CallbackInfo& info, history::History* h);

// publishBatch(epoch, firstSeq, entries) -> status: Dispatcher::
// publishSequenced in one call. entries is flat, kBatchSlots per event:
// [topic | null (a broadcast), data (string | Uint8Array; null: a skipped
// sequence), event | undefined, id | undefined, users (string[]) | undefined,
// ...]; event i takes sequence firstSeq + i. Arguments come validated from
// lib/ (lib/history/sequenced.js); here a wrong type is a status, never a
// crash: kInvalidId (epoch not a string, firstSeq not an integer in
// [1, 2^53 - 1]), kInvalidData (entries not an array of kBatchSlots-slot
// events, data or users of the wrong type), kInvalidTopic, kInvalidEvent.
Napi::Value publishBatch(const Napi::CallbackInfo& info, Dispatcher& d);
// historyRebase(epoch, seq, reset = true) -> status: Dispatcher::rebase
// (reset false: no reset event to connected streams).
Napi::Value historyRebase(const Napi::CallbackInfo& info, Dispatcher& d);

}  // namespace ssefanout
