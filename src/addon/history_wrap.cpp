#include "history_wrap.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
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

// A sequence number: an integer in [lo, kMaxSeq], else false.
bool seqOf(const Napi::Value& v, uint64_t lo, uint64_t* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(history::kMaxSeq)) || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// An epoch string (at most a little more than the grammar allows is read:
// the Dispatcher checks the grammar), else false.
bool epochOf(const Napi::Value& v, std::string* out) {
  if (!v.IsString()) return false;
  *out = v.As<Napi::String>().Utf8Value();
  return true;
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
  out.Set("rebases", static_cast<double>(s.rebases));
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
  Napi::Array stored = Napi::Array::New(env);  // indices of events published with compress: false
  uint64_t cursor = h->latest();
  if (place.reason != history::ResetReason::kNone) {
    h->countReset(place.reason);
    out.Set("reset", history::resetReasonName(place.reason));
    out.Set("requested", cursorValue(env, *h, place.requested));
  } else {
    uint32_t k = 0;
    uint32_t s = 0;
    cursor = h->read(place.after, reader, max, [&](uint64_t, Frame* f) {
      if (f->noCompress()) stored.Set(s++, k / 2);
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
  out.Set("stored", stored);
  return out;
}

namespace {

// A scratch string larger than this is given back after its batch: one batch
// of large events must not pin its size for the life of the thread.
constexpr size_t kKeepScratchBytes = 64 << 10;

// What publishBatch reads a batch into. The bytes of its strings live in
// `strings` until the call returns (a deque: a new one never moves the
// others, so the views stay valid); the strings are reused by the next batch,
// as bytesOf()'s scratch is elsewhere.
struct BatchScratch {
  std::deque<std::string> strings;
  size_t used = 0;
  std::vector<std::vector<std::string_view>> users;
  std::vector<Dispatcher::SequencedEvent> events;

  bool bytes(const Napi::Value& v, std::string_view* out) {
    if (used == strings.size()) strings.emplace_back();
    return bytesOf(v, strings[used++], out);
  }
  void done() {
    events.clear();
    for (size_t i = 0; i < used; ++i) {
      if (strings[i].capacity() > kKeepScratchBytes) std::string().swap(strings[i]);
    }
    used = 0;
  }
};

// The n events of `entries` (kBatchSlots each) into b->events.
Status readBatch(const Napi::Array& entries, size_t n, BatchScratch* b) {
  if (b->users.size() < n) b->users.resize(n);
  b->events.assign(n, Dispatcher::SequencedEvent());
  for (size_t i = 0; i < n; ++i) {
    // The handles of one event at a time (a batch has up to 20480 slots).
    // What outlives them is copied (strings) or a view of a Uint8Array that
    // `entries` still holds.
    Napi::HandleScope scope(entries.Env());
    Dispatcher::SequencedEvent& e = b->events[i];
    const uint32_t at = static_cast<uint32_t>(i * kBatchSlots);
    const Napi::Value topic = entries.Get(at);
    if (!topic.IsNull() && !topic.IsUndefined()) {
      if (!topic.IsString() || !b->bytes(topic, &e.topic) || e.topic.empty()) return Status::kInvalidTopic;
    }
    const Napi::Value data = entries.Get(at + 1);
    if (data.IsNull()) {
      e.skip = true;
      continue;
    }
    std::string_view view;
    if (!b->bytes(data, &view)) return Status::kInvalidData;
    e.event.data = view;
    const Napi::Value event = entries.Get(at + 2);
    if (event.IsString()) {
      b->bytes(event, &view);
      e.event.event = view;
    } else if (!event.IsUndefined()) {
      return Status::kInvalidEvent;
    }
    const Napi::Value id = entries.Get(at + 3);
    if (id.IsString()) {
      b->bytes(id, &view);
      e.event.id = view;
    } else if (!id.IsUndefined()) {
      return Status::kInvalidId;
    }
    const Napi::Value names = entries.Get(at + 4);
    if (names.IsArray()) {
      auto list = names.As<Napi::Array>();
      std::vector<std::string_view>& mine = b->users[i];
      mine.clear();
      for (uint32_t k = 0; k < list.Length(); ++k) {
        const Napi::Value name = list.Get(k);
        if (!name.IsString() || !b->bytes(name, &view)) return Status::kInvalidData;
        mine.push_back(view);
      }
      e.users = &mine;
    } else if (!names.IsUndefined()) {
      return Status::kInvalidData;
    }
  }
  return Status::kOk;
}

}  // namespace

Napi::Value publishBatch(const Napi::CallbackInfo& info, Dispatcher& d) {
  Napi::Env env = info.Env();
  if (d.closing()) return statusValue(env, Status::kClosed);
  std::string epoch;
  uint64_t firstSeq = 0;
  if (!epochOf(info[0], &epoch) || !seqOf(info[1], 1, &firstSeq)) return statusValue(env, Status::kInvalidId);
  if (!info[2].IsArray()) return statusValue(env, Status::kInvalidData);
  auto entries = info[2].As<Napi::Array>();
  const uint32_t length = entries.Length();
  if (length % kBatchSlots != 0) return statusValue(env, Status::kInvalidData);
  const size_t n = length / kBatchSlots;
  if (n > Dispatcher::kMaxBatchEvents) return statusValue(env, Status::kDataTooLarge);
  static thread_local BatchScratch scratch;
  Status s = readBatch(entries, n, &scratch);
  if (s == Status::kOk) s = d.publishSequenced(epoch, firstSeq, scratch.events);
  scratch.done();
  return statusValue(env, s);
}

Napi::Value historyRebase(const Napi::CallbackInfo& info, Dispatcher& d) {
  Napi::Env env = info.Env();
  if (d.closing()) return statusValue(env, Status::kClosed);
  std::string epoch;
  uint64_t seq = 0;
  if (!epochOf(info[0], &epoch) || !seqOf(info[1], 0, &seq)) return statusValue(env, Status::kInvalidId);
  // reset: true unless false is given (lib/history/sequenced.js passes a boolean).
  const bool reset = !(info.Length() > 2 && info[2].IsBoolean() && !info[2].As<Napi::Boolean>().Value());
  return statusValue(env, d.rebase(epoch, seq, reset));
}

}  // namespace ssefanout
