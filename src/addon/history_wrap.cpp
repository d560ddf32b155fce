#include "history_wrap.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "args.hpp"
#include "dispatcher.hpp"

namespace ssefanout {
namespace {

Napi::Value cursorValue(Napi::Env env, const history::History& h, std::optional<uint64_t> seq) {
  if (!seq) return env.Null();
  return Napi::String::New(env, h.cursorOf(*seq));
}

uint64_t u64(const Napi::Object& o, const char* key, uint64_t fallback) {
  const double d = num(o.Get(key), -1);
  return d >= 0 ? static_cast<uint64_t>(d) : fallback;
}

}  // namespace

std::optional<history::HistoryOptions> historyOptionsOf(const Napi::Value& v) {
  if (!v.IsObject()) return std::nullopt;
  Napi::Object o = v.As<Napi::Object>();
  history::HistoryOptions h;
  h.epoch = stringArg(o.Get("epoch"));
  h.maxEvents = u64(o, "maxEvents", h.maxEvents);
  h.maxBytes = u64(o, "maxBytes", h.maxBytes);
  h.maxAgeMs = u64(o, "maxAgeMs", h.maxAgeMs);
  h.maxReplayEvents = u64(o, "maxReplayEvents", h.maxReplayEvents);
  if (o.Get("resetEvent").IsString()) h.resetEvent = stringArg(o.Get("resetEvent"));
  if (o.Get("positionEvent").IsString()) h.positionEvent = stringArg(o.Get("positionEvent"));
  if (!history::validEpoch(h.epoch)) return std::nullopt;  // lib/hub.js checked it
  return h;
}

Napi::Value historyStatsValue(Napi::Env env, const history::History* h) {
  if (!h) return env.Null();
  const history::HistoryStats s = h->stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("epoch", h->options().epoch);
  out.Set("events", static_cast<double>(s.events));
  out.Set("bytes", static_cast<double>(s.bytes));
  out.Set("oldest", cursorValue(env, *h, s.events > 0 ? std::optional<uint64_t>(s.oldest) : std::nullopt));
  out.Set("latest", cursorValue(env, *h, s.latest));
  out.Set("replays", static_cast<double>(s.replays));
  out.Set("replayedEvents", static_cast<double>(s.replayedEvents));
  Napi::Object resets = Napi::Object::New(env);
  for (size_t r = 1; r < static_cast<size_t>(history::ResetReason::kCount); ++r) {
    resets.Set(history::resetReasonName(static_cast<history::ResetReason>(r)), static_cast<double>(s.resets[r]));
  }
  out.Set("resets", resets);
  out.Set("reads", static_cast<double>(s.reads));
  return out;
}

Napi::Value historyRead(const Napi::CallbackInfo& info, history::History* h) {
  Napi::Env env = info.Env();
  if (!h) return env.Null();
  std::vector<std::string> topics;
  if (!topicsOf(info[1], &topics)) topics.clear();
  std::sort(topics.begin(), topics.end());
  history::Reader reader{&topics, std::nullopt};
  std::string user;
  if (info[2].IsString()) {
    user = info[2].As<Napi::String>().Utf8Value();
    reader.user = user;
  }
  const double maxArg = num(info[3], 1000);
  const size_t max = maxArg >= 1 ? static_cast<size_t>(maxArg) : 1;

  h->countRead();
  history::Place place;
  place.after = h->latest();
  if (info[0].IsString()) place = h->locate(info[0].As<Napi::String>().Utf8Value(), Dispatcher::nowMs());
  Napi::Object out = Napi::Object::New(env);
  Napi::Array frames = Napi::Array::New(env);
  uint64_t cursor = h->latest();
  if (place.reason != history::ResetReason::kNone) {
    h->countReset(place.reason);
    out.Set("reset", history::resetReasonName(place.reason));
    out.Set("requested", cursorValue(env, *h, place.requested));
  } else {
    uint32_t k = 0;
    cursor = h->read(place.after, reader, max, [&](uint64_t, Frame* f) {
      f->retain();
      // An external Buffer over the frame's bytes; the finalizer drops the reference.
      frames.Set(k++, Napi::Buffer<char>::New(
                          env, const_cast<char*>(f->data()), f->size(),
                          [](Napi::Env, char*, Frame* frame) { frame->release(); }, f));
      const std::string_view topic = f->tag();
      frames.Set(k++, topic.empty() ? env.Null() : Napi::String::New(env, topic.data(), topic.size()));
      return true;
    });
  }
  out.Set("oldest", cursorValue(env, *h, h->size() > 0 ? std::optional<uint64_t>(h->oldest()) : std::nullopt));
  out.Set("latest", cursorValue(env, *h, h->latest()));
  out.Set("cursor", cursorValue(env, *h, cursor));
  out.Set("frames", frames);
  return out;
}

}  // namespace ssefanout
