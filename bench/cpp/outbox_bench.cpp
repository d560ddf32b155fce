// Micro-benchmarks of Outbox (src/core/outbox.hpp): one flush of one
// connection as src/io/shard.cpp does it.
//
// Each iteration pushes N shared frames (SSE events of 256 bytes of data,
// encoded once up front), then, as Shard::flush does, loops buildIov(iov, 512)
// and consume() of every byte the iovecs describe until the outbox is empty
// (the "kernel" takes everything; no syscall). The outbox is reused, as a
// connection's is, so its ring is already grown.
//
// Before timing, one flush is checked against a reference: the iovec bytes,
// concatenated, must equal the naive wire stream (each frame, or for chunked
// "<hex size>\r\n" + frame + "\r\n"), pendingBytes() must equal its length,
// consume() must report N frames and N events, and every frame must be back
// to one reference. On any difference the benchmark reports an error.
//
// Items/s are frames; bytes/s are wire bytes described by the iovecs.
//
//   BM_OutboxFlush/frames:N/chunked:C   N in {1, 16, 128}
//   BM_OutboxFlushPartial/...           the same, but each "writev" takes at
//                                       most 4 KiB, so frames are split and
//                                       buildIov runs several times per flush.
#include <benchmark/benchmark.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "frame.hpp"
#include "outbox.hpp"
#include "sse_encoder.hpp"

namespace {

using ssefanout::FrameRef;
using ssefanout::Outbox;

constexpr int kMaxIov = 512;  // Shard::kMaxIov
constexpr size_t kUnlimited = SIZE_MAX;

std::vector<FrameRef> makeFrames(size_t n) {
  std::vector<FrameRef> frames;
  for (size_t i = 0; i < n; ++i) {
    std::string data = R"({"type":"message","room":"chat/42","seq":)" + std::to_string(i) + R"(,"text":")";
    while (data.size() < 254) data += static_cast<char>('a' + data.size() % 26);
    data += R"("})";
    ssefanout::EventFields ev;
    ev.event = "message";
    std::string id = std::to_string(1000 + i);
    ev.id = id;
    ev.data = data;
    FrameRef f;
    if (ssefanout::encodeEvent(ev, &f) != ssefanout::Status::kOk) return {};
    frames.push_back(std::move(f));
  }
  return frames;
}

// The bytes a connection must receive, spelled out.
std::string naiveWire(const std::vector<FrameRef>& frames, bool chunked) {
  std::string out;
  for (const FrameRef& f : frames) {
    if (chunked) {
      char hex[32];
      std::snprintf(hex, sizeof hex, "%zx\r\n", f->size());
      out += hex;
      out += f->view();
      out += "\r\n";
    } else {
      out += f->view();
    }
  }
  return out;
}

// One flush: push every frame, then write (at most `writeLimit` bytes per
// writev) until empty. Appends the bytes written to `wire` when given.
struct FlushResult {
  size_t bytes = 0;
  size_t frames = 0;
  size_t events = 0;
  size_t writes = 0;
  bool pushed = true;
};

inline FlushResult flush(Outbox& ob, const std::vector<FrameRef>& frames, size_t writeLimit,
                         std::string* wire = nullptr) {
  FlushResult r;
  for (const FrameRef& f : frames) r.pushed &= ob.push(f);
  struct iovec iov[kMaxIov];
  while (!ob.empty()) {
    const int n = ob.buildIov(iov, kMaxIov);
    size_t want = 0;
    for (int i = 0; i < n; ++i) {
      size_t len = std::min(iov[i].iov_len, writeLimit - want);
      if (wire) wire->append(static_cast<const char*>(iov[i].iov_base), len);
      want += len;
      if (want == writeLimit) break;
    }
    benchmark::DoNotOptimize(iov);
    r.frames += ob.consume(want, &r.events);
    r.bytes += want;
    ++r.writes;
  }
  return r;
}

std::string check(const std::vector<FrameRef>& frames, bool chunked, size_t writeLimit) {
  if (frames.empty()) return "encodeEvent failed";
  const std::string want = naiveWire(frames, chunked);
  Outbox ob;
  ob.setChunked(chunked);
  for (int round = 0; round < 3; ++round) {  // the ring is reused after the first
    for (const FrameRef& f : frames) {
      if (!ob.push(f)) return "push refused a frame";
    }
    if (ob.pendingBytes() != want.size()) return "pendingBytes differs from the reference wire size";
    for (const FrameRef& f : frames) {
      if (f->refCount() != 2) return "push did not take exactly one reference";
    }
    // Undo the pushes and go through flush(), which pushes again.
    ob.clear();
    std::string got;
    FlushResult r = flush(ob, frames, writeLimit, &got);
    if (!r.pushed) return "push refused a frame";
    if (got != want) return "iovec bytes differ from the reference wire stream";
    if (r.frames != frames.size() || r.events != frames.size()) return "consume miscounted frames or events";
    if (!ob.empty() || ob.pendingBytes() != 0) return "outbox not empty after consuming everything";
    for (const FrameRef& f : frames) {
      if (f->refCount() != 1) return "consume did not release the outbox's reference";
    }
  }
  return {};
}

void run(benchmark::State& state, size_t writeLimit) {
  const size_t n = static_cast<size_t>(state.range(0));
  const bool chunked = state.range(1) != 0;
  const std::vector<FrameRef> frames = makeFrames(n);
  if (std::string err = check(frames, chunked, writeLimit); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  Outbox ob;
  ob.setChunked(chunked);
  flush(ob, frames, writeLimit);  // grow the ring once
  size_t bytes = 0;
  size_t done = 0;
  size_t writes = 0;
  bool ok = true;
  for (auto _ : state) {
    FlushResult r = flush(ob, frames, writeLimit);
    ok &= r.pushed && r.frames == n;
    bytes += r.bytes;
    done += r.frames;
    writes += r.writes;
  }
  if (!ok) {
    state.SkipWithError("a flush did not write every frame");
    return;
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(static_cast<int64_t>(done));
  state.counters["writes/flush"] = static_cast<double>(writes) / static_cast<double>(state.iterations());
}

void BM_OutboxFlush(benchmark::State& state) { run(state, kUnlimited); }
void BM_OutboxFlushPartial(benchmark::State& state) { run(state, 4096); }

BENCHMARK(BM_OutboxFlush)->ArgNames({"frames", "chunked"})->ArgsProduct({{1, 16, 128}, {0, 1}});
BENCHMARK(BM_OutboxFlushPartial)->ArgNames({"frames", "chunked"})->ArgsProduct({{16, 128}, {0, 1}});

}  // namespace
