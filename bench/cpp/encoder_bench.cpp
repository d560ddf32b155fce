// Micro-benchmarks of the SSE encoder (src/core/sse_encoder.hpp).
//
// Every benchmark first encodes its input once and compares the bytes with a
// naive reference encoder written below (character by character, std::string
// appends); on any difference it reports an error instead of a time. Bytes/s
// count the encoded output (the frame), items/s count events.
//
//   BM_EncodeEvent: encodeEvent() as a publish calls it: validate the event and
//                   id, size the frame, allocate it, encode, and (in the loop)
//                   free it again.
//   BM_EncodeInto:  encodedSize() + encodeInto() into a reused buffer: the same
//                   work without validation, malloc and free.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "frame.hpp"
#include "sse_encoder.hpp"

namespace {

using ssefanout::EventFields;
using ssefanout::FrameRef;
using ssefanout::Status;

constexpr std::string_view kEventName = "message";
constexpr std::string_view kEventId = "1718000000000-42";

// Obviously-correct reference: the event stream format spelled out. Every CR,
// LF or CRLF in data ends one "data:" line; event and id are single lines.
std::string naiveEncode(std::string_view event, std::string_view id, std::string_view data) {
  std::string out;
  out += "event: ";
  out += event;
  out += "\n";
  out += "id: ";
  out += id;
  out += "\n";
  std::string line;
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (c == '\r' || c == '\n') {
      out += "data: " + line + "\n";
      line.clear();
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    } else {
      line += c;
    }
  }
  out += "data: " + line + "\n";
  out += "\n";
  return out;
}

// A JSON-like payload of exactly `size` bytes on one line:
// {"type":"message","room":"chat/42","seq":17,"text":"lorem ipsum ... "}
std::string jsonLike(size_t size) {
  const std::string head = R"({"type":"message","room":"chat/42","seq":1234567,"user":"alice","text":")";
  const std::string tail = R"("})";
  static constexpr std::string_view kWords = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do ";
  std::string s = head;
  while (s.size() + tail.size() < size) s += kWords[(s.size() - head.size()) % kWords.size()];
  s += tail;
  s.resize(size);  // only shortens when size < head + tail, which no case uses
  return s;
}

// The same payload with a '\n' as every 40th byte: lines of 39 bytes.
std::string multiLine(size_t size) {
  std::string s = jsonLike(size);
  for (size_t i = 39; i < s.size(); i += 40) s[i] = '\n';
  return s;
}

enum class Payload { kJson, kMultiLine };

std::string payload(Payload kind, size_t size) { return kind == Payload::kJson ? jsonLike(size) : multiLine(size); }

EventFields fieldsFor(std::string_view data) {
  EventFields ev;
  ev.event = kEventName;
  ev.id = kEventId;
  ev.data = data;
  return ev;
}

// Encodes once with the core and compares with the reference; returns an
// error message, or empty when they agree.
std::string check(std::string_view data) {
  const EventFields ev = fieldsFor(data);
  const std::string want = naiveEncode(kEventName, kEventId, data);
  FrameRef frame;
  if (ssefanout::encodeEvent(ev, &frame) != Status::kOk || !frame) return "encodeEvent failed";
  if (frame->view() != want) return "encodeEvent output differs from the reference encoder";
  if (ssefanout::encodedSize(ev) != want.size()) return "encodedSize differs from the reference size";
  std::string buf(want.size() + 16, '\xAA');
  if (ssefanout::encodeInto(ev, buf.data()) != want.size() || std::string_view(buf).substr(0, want.size()) != want)
    return "encodeInto output differs from the reference encoder";
  if (buf[want.size()] != '\xAA') return "encodeInto wrote past encodedSize";
  return {};
}

void BM_EncodeEvent(benchmark::State& state, Payload kind, size_t size) {
  const std::string data = payload(kind, size);
  if (std::string err = check(data); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  const EventFields ev = fieldsFor(data);
  size_t frameBytes = 0;
  for (auto _ : state) {
    FrameRef frame;
    Status s = ssefanout::encodeEvent(ev, &frame);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(frame->data());
    frameBytes += frame->size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(frameBytes));
  state.SetItemsProcessed(state.iterations());
  state.counters["frame_bytes"] = static_cast<double>(ssefanout::encodedSize(ev));
  state.counters["data_lines"] = static_cast<double>(1 + std::count(data.begin(), data.end(), '\n'));
}

void BM_EncodeInto(benchmark::State& state, Payload kind, size_t size) {
  const std::string data = payload(kind, size);
  if (std::string err = check(data); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  const EventFields ev = fieldsFor(data);
  std::vector<char> buf(ssefanout::encodedSize(ev));
  size_t frameBytes = 0;
  for (auto _ : state) {
    // encodeEvent sizes before it encodes; so does a caller of encodeInto.
    benchmark::DoNotOptimize(ssefanout::encodedSize(ev));
    size_t n = ssefanout::encodeInto(ev, buf.data());
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
    frameBytes += n;
  }
  state.SetBytesProcessed(static_cast<int64_t>(frameBytes));
  state.SetItemsProcessed(state.iterations());
  state.counters["frame_bytes"] = static_cast<double>(buf.size());
}

BENCHMARK_CAPTURE(BM_EncodeEvent, json_256, Payload::kJson, 256);
BENCHMARK_CAPTURE(BM_EncodeEvent, json_4k, Payload::kJson, 4096);
BENCHMARK_CAPTURE(BM_EncodeEvent, multiline40_256, Payload::kMultiLine, 256);
BENCHMARK_CAPTURE(BM_EncodeEvent, multiline40_4k, Payload::kMultiLine, 4096);

BENCHMARK_CAPTURE(BM_EncodeInto, json_256, Payload::kJson, 256);
BENCHMARK_CAPTURE(BM_EncodeInto, json_4k, Payload::kJson, 4096);
BENCHMARK_CAPTURE(BM_EncodeInto, multiline40_256, Payload::kMultiLine, 256);
BENCHMARK_CAPTURE(BM_EncodeInto, multiline40_4k, Payload::kMultiLine, 4096);

}  // namespace
