// Micro-benchmarks of History (src/history/history.hpp): what the history
// costs the JS thread per publish and per resume, and the memory an entry
// holds beyond its shared frame.
//
//   BM_HistoryAppend               append() into a full history of 10,000 events
//                                  (the default maxEvents): every append evicts
//                                  the oldest, as in steady traffic. Items/s are
//                                  appends.
//   BM_PublishFrame/history:H      encode a fresh frame and drop it (H = 0) or
//                                  append it to a full history (H = 1, with its
//                                  wire id and topic tag; the oldest frame is
//                                  freed): what history adds to a publish in C++.
//   BM_HistoryResume/back:B        locate() a cursor B events back and
//                                  selectReplay() for a reader of one exact
//                                  topic that every event matches, B in {1, 100,
//                                  1000}: the JS-thread work of one resume.
//                                  Items/s are events replayed.
//   BM_HistoryEntryBytes/events:N  fills a history with N events and reports
//                                  bytes_per_entry: the bytes the history itself
//                                  allocated (its ring, grown by doubling, and
//                                  side records; counted by this program's
//                                  operator new, at malloc_usable_size) divided
//                                  by N. The frames are not counted: they are
//                                  the shared frames the fan-out made anyway
//                                  (Frame::allocate mallocs them); with history
//                                  on each carries its topic as a tag, reported
//                                  as tag_bytes_per_entry; frame_header_bytes and
//                                  frame_block_bytes (its malloc block, usable
//                                  size) beside frame_bytes_per_entry (its wire
//                                  bytes) tell what a frame holds beyond the
//                                  bytes hub.stats().history.bytes counts.
//   BM_PublishSequenced/events:N/batch:B
//                                  N events (256 bytes of data on one topic,
//                                  history on) through a running Dispatcher
//                                  (one I/O thread, no connection: each event
//                                  is one command to post): B = 1 one
//                                  publishSequenced() batch (the Redis bus's
//                                  path, sequences given), B = 0 N publish()
//                                  calls; then the flush. N in {64, 512}.
//                                  Items/s are events. The I/O thread drains
//                                  its queue between iterations (not timed).
//                                  In C++ both pay the same encoding, history
//                                  and posting; what a batch saves in the
//                                  addon is the N - 1 JS-to-native crossings,
//                                  which this does not see.
//
// Each benchmark checks its history against the reference before it is timed
// (size, oldest/latest, the replayed frames are the last B appended, in
// order) and reports an error on any difference.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dispatcher.hpp"
#include "frame.hpp"
#include "history.hpp"
#include "sse_encoder.hpp"

// Live bytes allocated through operator new (the history's ring, its side
// records and maps); malloc'd frames are not counted.
static std::atomic<int64_t> g_newBytes{0};

void* operator new(size_t size) {
  void* p = std::malloc(size ? size : 1);
  if (!p) std::abort();
  g_newBytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  g_newBytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, size_t) noexcept { operator delete(p); }

namespace {

using ssefanout::FrameRef;
using ssefanout::history::History;
using ssefanout::history::HistoryOptions;
using ssefanout::history::Place;
using ssefanout::history::Reader;
using ssefanout::history::ResetReason;

constexpr uint64_t kDefaultEvents = 10000;
const char kTopic[] = "chat/42";

// Events of 256 bytes of data, each tagged with kTopic, as publish() makes them.
std::vector<FrameRef> makeFrames(size_t n) {
  std::vector<FrameRef> frames;
  std::string data(256, 'x');
  for (size_t i = 0; i < n; ++i) {
    ssefanout::EventFields ev;
    std::string id = "bench-" + std::to_string(i + 1);
    ev.id = id;
    ev.data = data;
    FrameRef f;
    if (ssefanout::encodeEvent(ev, &f, ssefanout::Frame::Kind::kEvent, kTopic) != ssefanout::Status::kOk) return {};
    frames.push_back(std::move(f));
  }
  return frames;
}

HistoryOptions options(uint64_t maxEvents) {
  HistoryOptions o;
  o.epoch = "bench";
  o.maxEvents = maxEvents;
  o.maxBytes = uint64_t{1} << 40;
  o.maxReplayEvents = 1000;
  return o;
}

void BM_HistoryAppend(benchmark::State& state) {
  std::vector<FrameRef> frames = makeFrames(1024);
  History h(options(kDefaultEvents));
  for (uint64_t i = 0; i < 2 * kDefaultEvents; ++i) h.append(frames[i % frames.size()], nullptr, std::nullopt, 0);
  if (frames.empty() || h.size() != kDefaultEvents || h.latest() != 2 * kDefaultEvents ||
      h.oldest() != kDefaultEvents + 1) {
    state.SkipWithError("history does not hold the newest maxEvents events");
    return;
  }
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(h.append(frames[i++ & 1023], nullptr, std::nullopt, 0));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_HistoryAppend);

// What history adds to a publish in C++: encode a fresh frame (256 bytes of
// data, the wire id "<epoch>-<seq>" with history on) and drop it (history off:
// the fan-out's last reference goes, on another thread in the addon), or append
// it to a full history of 10,000 events, which releases the oldest frame (cold
// in cache by then) on this thread.
void BM_PublishFrame(benchmark::State& state) {
  const bool on = state.range(0) != 0;
  History h(options(kDefaultEvents));
  const std::string data(256, 'x');
  auto publish = [&] {
    ssefanout::EventFields ev;
    std::string cursor;
    if (on) {
      cursor = h.cursorOf(h.nextSeq());
      ev.id = cursor;
    }
    ev.data = data;
    FrameRef f;
    if (ssefanout::encodeEvent(ev, &f, ssefanout::Frame::Kind::kEvent, on ? kTopic : "") != ssefanout::Status::kOk) {
      return false;
    }
    if (on) h.append(std::move(f), nullptr, std::nullopt, 0);
    return true;
  };
  for (uint64_t i = 0; i < 2 * kDefaultEvents; ++i) {
    if (!publish()) {
      state.SkipWithError("encodeEvent failed");
      return;
    }
  }
  if (on && (h.size() != kDefaultEvents || h.latest() != 2 * kDefaultEvents)) {
    state.SkipWithError("history does not hold the newest maxEvents events");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(publish());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PublishFrame)->ArgName("history")->Arg(0)->Arg(1);

void BM_HistoryResume(benchmark::State& state) {
  const uint64_t back = static_cast<uint64_t>(state.range(0));
  std::vector<FrameRef> frames = makeFrames(kDefaultEvents);
  History h(options(kDefaultEvents));
  for (const FrameRef& f : frames) h.append(f, nullptr, std::nullopt, 0);
  const std::vector<std::string> topics = {kTopic};
  Reader reader;
  reader.topics = &topics;
  const std::string cursor = h.cursorOf(h.latest() - back);
  std::vector<FrameRef> out;
  out.reserve(back);
  {
    Place place = h.locate(cursor, 0);
    ResetReason r =
        place.reason == ResetReason::kNone ? h.selectReplay(place, reader, UINT64_MAX, 0, &out) : place.reason;
    bool same = r == ResetReason::kNone && out.size() == back;
    for (size_t k = 0; same && k < back; ++k) same = out[k].get() == frames[frames.size() - back + k].get();
    if (!same) {
      state.SkipWithError("the replay is not the last B events in order");
      return;
    }
  }
  for (auto _ : state) {
    out.clear();
    Place place = h.locate(cursor, 0);
    benchmark::DoNotOptimize(h.selectReplay(place, reader, UINT64_MAX, 0, &out));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * back));
}
BENCHMARK(BM_HistoryResume)->ArgName("back")->Arg(1)->Arg(100)->Arg(1000);

void BM_HistoryEntryBytes(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  std::vector<FrameRef> frames = makeFrames(n);  // made first: not the history's
  double perEntry = 0;
  for (auto _ : state) {
    const int64_t before = g_newBytes.load();
    {
      History h(options(n));
      for (const FrameRef& f : frames) h.append(f, nullptr, std::nullopt, 0);
      if (h.size() != n || frames.size() != n) {
        state.SkipWithError("history does not hold every event");
        return;
      }
      perEntry = static_cast<double>(g_newBytes.load() - before) / static_cast<double>(n);
    }
  }
  state.counters["bytes_per_entry"] = perEntry;
  state.counters["tag_bytes_per_entry"] = static_cast<double>(sizeof(kTopic) - 1);
  state.counters["frame_bytes_per_entry"] = static_cast<double>(frames.empty() ? 0 : frames[0]->size());
  // The frame's own header and its malloc block (header, bytes, tag, rounding):
  // part of the shared frame, but not of what hub.stats().history.bytes counts.
  state.counters["frame_header_bytes"] = static_cast<double>(sizeof(ssefanout::Frame));
  state.counters["frame_block_bytes"] = static_cast<double>(frames.empty() ? 0 : malloc_usable_size(frames[0].get()));
}
BENCHMARK(BM_HistoryEntryBytes)->ArgName("events")->Arg(10000)->Arg(65536)->Arg(100000)->Iterations(1);

// The sink of the benchmark's Dispatcher: nothing is connected, nothing reported.
class NullSink : public ssefanout::ShardSink {
 public:
  void onDisconnect(uint32_t, uint64_t, ssefanout::DisconnectReason) override {}
  void onJsDeliver(uint32_t, FrameRef, std::vector<uint64_t>) override {}
  void onStopped(uint32_t) override {}
};

void BM_PublishSequenced(benchmark::State& state) {
  using ssefanout::Dispatcher;
  const size_t n = static_cast<size_t>(state.range(0));
  const bool batched = state.range(1) != 0;
  NullSink sink;
  ssefanout::HubOptions o;
  o.threads = 1;
  o.shard.heartbeatMs = 0;
  o.history = options(kDefaultEvents);
  Dispatcher d(o, &sink);
  if (d.start() != 0) {
    state.SkipWithError("cannot start the I/O thread");
    return;
  }
  const std::string data(256, 'x');
  std::vector<Dispatcher::SequencedEvent> batch(n);
  for (Dispatcher::SequencedEvent& e : batch) {
    e.topic = kTopic;
    e.event.data = data;
  }
  ssefanout::EventFields single;
  single.data = data;
  auto round = [&] {
    if (batched) return d.publishSequenced("bench", d.history()->nextSeq(), batch) == ssefanout::Status::kOk;
    for (size_t i = 0; i < n; ++i) {
      if (d.publish(kTopic, single, nullptr) != ssefanout::Status::kOk) return false;
    }
    return true;
  };
  auto drain = [&] {
    d.flush();
    while (d.stats().pendingCommands != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  };
  // The reference: each round takes the next n sequences of one epoch, n
  // events published, no rebase; a full history after enough rounds.
  for (size_t r = 0; r * n < 2 * kDefaultEvents; ++r) {
    const uint64_t before = d.history()->latest();
    const uint64_t published = d.stats().published;
    if (!round() || d.history()->latest() != before + n || d.stats().published != published + n ||
        d.history()->stats().rebases != 0 || d.history()->options().epoch != "bench") {
      state.SkipWithError("a round did not publish n events with the next sequences");
      return;
    }
    drain();
  }
  if (d.history()->size() != kDefaultEvents) {
    state.SkipWithError("history does not hold the newest maxEvents events");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(round());
    d.flush();
    state.PauseTiming();
    drain();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_PublishSequenced)->ArgNames({"events", "batch"})->ArgsProduct({{64, 512}, {0, 1}});

}  // namespace
