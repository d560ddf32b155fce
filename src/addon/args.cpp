#include "args.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "history_wrap.hpp"

namespace ssefanout {
namespace {

// bytesOf()'s scratch is sized for the string at hand; one far larger than
// needed (more than 16 times, plus this slack so small strings never churn)
// is shrunk so one huge event does not pin its memory for good.
constexpr size_t kScratchSlack = 4096;

}  // namespace

uint64_t budgetOf(const Napi::Object& o, const char* key, uint64_t fallback, uint64_t min) {
  Napi::Value n = o.Get(key);
  if (!n.IsNumber()) return fallback;
  const double d = n.As<Napi::Number>().DoubleValue();
  return d >= static_cast<double>(min) && d < 9.0e15 ? static_cast<uint64_t>(d) : fallback;
}

uint32_t budget32Of(const Napi::Object& o, const char* key, uint32_t fallback, uint64_t min) {
  return static_cast<uint32_t>(std::min<uint64_t>(budgetOf(o, key, fallback, min), UINT32_MAX));
}

uint32_t u32(const Napi::Object& o, const char* key, uint32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
}

double num(const Napi::Value& v, double fallback) {
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

uint64_t toId(const Napi::Value& v) {
  if (!v.IsNumber()) return 0;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || std::floor(d) != d) return 0;
  return static_cast<uint64_t>(d);
}

std::string stringArg(const Napi::Value& v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); }

bool bytesOf(const Napi::Value& v, std::string& scratch, std::string_view* out) {
  if (v.IsString()) {
    napi_env env = v.Env();
    // The UTF-16 length is O(1) and bounds the UTF-8 size (3 bytes per unit),
    // which spares V8 a separate pass to measure the UTF-8 length.
    size_t units = 0;
    if (napi_get_value_string_utf16(env, v, nullptr, 0, &units) != napi_ok) return false;
    size_t cap = units * 3 + 1;
    if (scratch.size() < cap || scratch.size() > (cap << 4) + kScratchSlack) scratch.resize(cap);
    size_t len = 0;
    napi_get_value_string_utf8(env, v, scratch.data(), scratch.size(), &len);
    *out = std::string_view(scratch.data(), len);
    return true;
  }
  if (v.IsTypedArray()) {
    auto arr = v.As<Napi::TypedArray>();
    if (arr.TypedArrayType() != napi_uint8_array) return false;
    auto u8 = v.As<Napi::Uint8Array>();
    *out = std::string_view(reinterpret_cast<const char*>(u8.Data()), u8.ByteLength());
    return true;
  }
  return false;
}

bool topicsOf(const Napi::Value& v, std::vector<std::string>* out) {
  if (!v.IsArray()) return v.IsUndefined();
  auto arr = v.As<Napi::Array>();
  out->reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value t = arr.Get(i);
    if (!t.IsString()) return false;
    out->push_back(t.As<Napi::String>().Utf8Value());
    if (validateTopic(out->back()) != Status::kOk) return false;
  }
  return true;
}

Napi::Number statusValue(Napi::Env env, Status s) { return Napi::Number::New(env, static_cast<double>(s)); }

HubOptions hubOptionsOf(const Napi::Object& o) {
  HubOptions h;
  ShardOptions& s = h.shard;
  h.threads = u32(o, "threads", 1);
  s.heartbeatMs = u32(o, "heartbeatMs", s.heartbeatMs);
  s.maxQueueBytes = static_cast<size_t>(num(o.Get("maxQueueBytes"), static_cast<double>(s.maxQueueBytes)));
  s.sndbufBytes = static_cast<int>(u32(o, "sndbufBytes", static_cast<uint32_t>(s.sndbufBytes)));
  s.maxSubscriptions = u32(o, "maxSubscriptions", s.maxSubscriptions);
  s.closeTimeoutMs = u32(o, "closeTimeoutMs", s.closeTimeoutMs);
  s.keepAliveMs = u32(o, "keepAliveMs", s.keepAliveMs);
  s.tcpUserTimeoutMs = u32(o, "tcpUserTimeoutMs", s.tcpUserTimeoutMs);
  h.maxPendingCommands = static_cast<uint64_t>(num(o.Get("maxPendingCommands"), 0));
  h.maxPendingBytes = static_cast<uint64_t>(num(o.Get("maxPendingBytes"), 0));
  h.maxConnections = u32(o, "maxConnections", Registry::kMaxSlots);
  h.history = historyOptionsOf(o.Get("history"));
  // compression: { level, minBytes } (lib/hub.js validates it; absent = the defaults).
  if (o.Get("compression").IsObject()) {
    Napi::Object c = o.Get("compression").As<Napi::Object>();
    s.coding.level = static_cast<int>(u32(c, "level", static_cast<uint32_t>(s.coding.level)));
    s.coding.minBytes = u32(c, "minBytes", s.coding.minBytes);
  }
  return h;
}

bool streamOptionsOf(const Napi::Value& v, StreamOptions* out) {
  if (!v.IsObject()) return v.IsUndefined();
  Napi::Object o = v.As<Napi::Object>();
  if (!topicsOf(o.Get("topics"), &out->topics)) return false;
  Napi::Value user = o.Get("user");
  if (user.IsString()) out->user = user.As<Napi::String>().Utf8Value();
  double retry = num(o.Get("retryMs"), -1);
  if (retry >= 0) out->retryMs = static_cast<uint64_t>(retry);
  Napi::Value streamId = o.Get("streamId");
  if (streamId.IsString()) out->streamId = streamId.As<Napi::String>().Utf8Value();
  out->idleMs = static_cast<uint32_t>(num(o.Get("idleMs"), 0));
  out->lifetimeMs = static_cast<uint32_t>(num(o.Get("lifetimeMs"), 0));
  Napi::Value lastEventId = o.Get("lastEventId");
  if (lastEventId.IsString()) out->lastEventId = lastEventId.As<Napi::String>().Utf8Value();
  out->history = o.Get("history").ToBoolean().Value() || o.Get("history").IsUndefined();
  // coding: 1 gzip, 2 deflate (lib/compression.js negotiates it; adopted streams only).
  const double coding = num(o.Get("coding"), 0);
  if (coding == 1) out->coding = compress::Coding::kGzip;
  if (coding == 2) out->coding = compress::Coding::kDeflate;
  return true;
}

Napi::Value adoptCall(const Napi::CallbackInfo& info, Dispatcher* dispatcher, StreamCompletion complete, void* self) {
  Napi::Env env = info.Env();
  auto refused = [&](Status s) { return Napi::Number::New(env, -static_cast<double>(s)); };
  if (!dispatcher || dispatcher->closing()) return refused(Status::kClosed);
  if (!info[0].IsNumber() || !info[1].IsString()) return Napi::Number::New(env, 0);
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) return Napi::Number::New(env, 0);
  StreamOptions stream;
  if (!streamOptionsOf(info[3], &stream)) return refused(Status::kInvalidTopic);
  if (complete) {
    if (Status s = complete(self, info, &stream); s != Status::kOk) return refused(s);
  }
  // Our own reference to the socket: Node may now close its fd, the TCP
  // connection lives on through this one, and only the shard closes it.
  int mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (mine < 0) return Napi::Number::New(env, 0);
  std::string head;
  std::string_view headBytes;
  bytesOf(info[1], head, &headBytes);
  uint64_t id = 0;
  Status s = dispatcher->adopt(mine, headBytes, info[2].ToBoolean().Value(), std::move(stream), &id);  // takes `mine`
  return s == Status::kOk ? Napi::Number::New(env, static_cast<double>(id)) : refused(s);
}

Napi::Value attachCall(const Napi::CallbackInfo& info, Dispatcher* dispatcher, StreamCompletion complete, void* self) {
  StreamOptions stream;
  uint64_t id = 0;
  Status s = Status::kOk;
  if (!dispatcher || dispatcher->closing()) {
    s = Status::kClosed;
  } else if (!streamOptionsOf(info[0], &stream)) {
    s = Status::kInvalidTopic;
  } else if (complete && (s = complete(self, info, &stream)) != Status::kOk) {
    // refused by the protocol
  } else {
    s = dispatcher->attach(std::move(stream), &id);
  }
  return Napi::Number::New(info.Env(), s == Status::kOk ? static_cast<double>(id) : -static_cast<double>(s));
}

}  // namespace ssefanout
