// Argument helpers for the wraps: JS values to C++ values and statuses back.
//
// Arguments arrive validated by lib/ (lib/validate.js wording), so these only
// protect memory: a value of the wrong type reads as absent or gives a status,
// never a crash. JS thread only.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dispatcher.hpp"
#include "status.hpp"

namespace ssefanout {

// A number property of o, else fallback.
uint32_t u32(const Napi::Object& o, const char* key, uint32_t fallback);
// A budget property of a protocol's limits (lib/ checked it): an integer in
// [min, 9e15), else fallback; budget32Of() clamps it to 32 bits.
uint64_t budgetOf(const Napi::Object& o, const char* key, uint64_t fallback, uint64_t min = 0);
uint32_t budget32Of(const Napi::Object& o, const char* key, uint32_t fallback, uint64_t min = 0);
// A number, else fallback.
double num(const Napi::Value& v, double fallback);
// A connection id (an integer in [1, 2^53)), else 0.
uint64_t toId(const Napi::Value& v);
// A string's UTF-8, else "".
std::string stringArg(const Napi::Value& v);
// UTF-8 bytes of a JS string, or a view of a Buffer/Uint8Array. `scratch`
// backs the string case; the view is valid until the next call with it.
bool bytesOf(const Napi::Value& v, std::string& scratch, std::string_view* out);
// An array of valid topics (undefined = none); false for anything else.
bool topicsOf(const Napi::Value& v, std::vector<std::string>* out);
Napi::Number statusValue(Napi::Env env, Status s);

// new NativeHub(options): threads, heartbeatMs, maxQueueBytes, sndbufBytes,
// maxSubscriptions, closeTimeoutMs, keepAliveMs, tcpUserTimeoutMs,
// maxPendingCommands, maxPendingBytes, maxConnections (absent = default).
HubOptions hubOptionsOf(const Napi::Object& o);
// { topics, user, retryMs, streamId, idleMs, lifetimeMs } (absent = none);
// false when topics is not an array of valid topics.
bool streamOptionsOf(const Napi::Value& v, StreamOptions* out);

// adopt(fd, head, chunked, stream, ...) -> id, 0 when the socket cannot be
// duplicated, or -status; attach(stream, ...) -> id or -status. Shared by
// NativeHub and the protocols' wraps: `complete(&stream)` adds a protocol's
// part of the stream (routes, replay filter) and may refuse it with a status.
using StreamCompletion = Status (*)(void* self, const Napi::CallbackInfo& info, StreamOptions* stream);
Napi::Value adoptCall(const Napi::CallbackInfo& info, Dispatcher* dispatcher, StreamCompletion complete, void* self);
Napi::Value attachCall(const Napi::CallbackInfo& info, Dispatcher* dispatcher, StreamCompletion complete, void* self);

}  // namespace ssefanout
