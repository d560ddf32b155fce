// Fuzz target: the SSE frame encoder (sse_encoder.hpp, frame.hpp).
//
// Random events (any bytes in every field, compact or not, event or control
// frames) are encoded one by one into a stream that the independent WHATWG
// parser in test/cpp/sse_parser.hpp reads back in random pieces. Asserted:
//  - a name or id holding CR, LF or NUL is refused with the matching status
//    and nothing is encoded; everything else encodes;
//  - encodedSize() is the exact frame size, encodeInto() writes no more, the
//    frame holds no CR and its only blank line is the final one;
//  - the parsed events are exactly the encoded events with data, in order
//    (type, data with CR/LF/CRLF read as LF, last event id), so no field value
//    can forge an extra event or field; comments and retry come back too;
//  - each frame's chunk header is its size in lowercase hex + CRLF;
//  - no frame leaks.
#include <fuzzer/FuzzedDataProvider.h>

#include <cinttypes>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "frame.hpp"
#include "fuzz_check.hpp"
#include "sse_encoder.hpp"
#include "sse_parser.hpp"

using namespace ssefanout;
using fuzzutil::show;

namespace {

std::string hexHeader(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIx64 "\r\n", v);
  return buf;
}

// Lines of a value as the encoder must split it (CR, LF, CRLF).
std::vector<std::string> linesOf(std::string_view s) {
  const std::string text = test::normaliseLineEnds(s);
  std::vector<std::string> out;
  for (std::string_view l : fuzzutil::split(text, '\n')) out.emplace_back(l);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int64_t live0 = Frame::liveCount();

  {
    // writeChunkHeader against printf for any size.
    uint64_t v = fdp.ConsumeIntegral<uint64_t>() >> fdp.ConsumeIntegralInRange<int>(0, 63);
    char out[Frame::kMaxChunkHeader];
    size_t n = Frame::writeChunkHeader(v, out);
    FUZZ_CHECK(std::string(out, n) == hexHeader(v), "writeChunkHeader(%" PRIu64 ") = %s", v,
               show(std::string_view(out, n)).c_str());
  }

  std::deque<std::string> strings;  // keeps the views of EventFields alive
  auto takeString = [&]() -> std::string_view {
    strings.push_back(fdp.ConsumeRandomLengthString(512));
    return strings.back();
  };

  std::string stream;
  std::vector<test::SseEvent> expected;
  std::vector<std::string> expectedComments;
  std::optional<uint64_t> expectedRetry;
  std::string lastId;
  std::vector<FrameRef> frames;

  const int count = fdp.ConsumeIntegralInRange<int>(1, 8);
  for (int i = 0; i < count && fdp.remaining_bytes() > 0; ++i) {
    const auto flags = fdp.ConsumeIntegral<uint8_t>();
    EventFields ev;
    if (flags & 1) ev.event = takeString();
    if (flags & 2) ev.id = takeString();
    if (flags & 4) ev.retryMs = fdp.ConsumeIntegral<uint64_t>() >> fdp.ConsumeIntegralInRange<int>(0, 63);
    if (flags & 8) ev.comment = takeString();
    if (flags & 16) ev.data = takeString();
    ev.compact = flags & 32;
    const Frame::Kind kind = (flags & 64) ? Frame::Kind::kControl : Frame::Kind::kEvent;

    FrameRef f;
    Status s = encodeEvent(ev, &f, kind);
    const bool badEvent = ev.event && fuzzutil::hasLineBreakOrNul(*ev.event);
    const bool badId = ev.id && fuzzutil::hasLineBreakOrNul(*ev.id);
    FUZZ_CHECK(validateFields(ev) == s, "validateFields disagrees with encodeEvent");
    if (badEvent) {
      FUZZ_CHECK(s == Status::kInvalidEvent && !f, "event name %s not refused", show(*ev.event).c_str());
      continue;
    }
    if (badId) {
      FUZZ_CHECK(s == Status::kInvalidId && !f, "id %s not refused", show(*ev.id).c_str());
      continue;
    }
    FUZZ_CHECK(s == Status::kOk && f, "valid fields refused: status %d", static_cast<int>(s));

    const std::string_view bytes = f->view();
    const size_t predicted = encodedSize(ev);
    FUZZ_CHECK(bytes.size() == predicted, "frame is %zu bytes, encodedSize() said %zu", bytes.size(), predicted);
    FUZZ_CHECK(f->kind() == kind, "wrong frame kind");
    FUZZ_CHECK(f->chunkHeader() == hexHeader(bytes.size()), "chunk header %s for %zu bytes",
               show(f->chunkHeader()).c_str(), bytes.size());
    {
      std::string buf(predicted + 16, '\x5a');
      size_t n = encodeInto(ev, buf.data());
      FUZZ_CHECK(n == predicted, "encodeInto wrote %zu bytes, expected %zu", n, predicted);
      FUZZ_CHECK(buf.compare(predicted, 16, std::string(16, '\x5a')) == 0, "encodeInto wrote past the frame");
      FUZZ_CHECK(std::string_view(buf).substr(0, n) == bytes, "encodeInto and encodeEvent differ");
    }
    FUZZ_CHECK(bytes.find('\r') == std::string_view::npos, "CR in frame %s", show(bytes).c_str());
    FUZZ_CHECK(!bytes.empty() && bytes.back() == '\n', "frame does not end its event: %s", show(bytes).c_str());
    const size_t blank = bytes.find("\n\n");
    FUZZ_CHECK(bytes == "\n" || blank == bytes.size() - 2, "blank line inside frame %s", show(bytes).c_str());
    FUZZ_CHECK(bytes[0] != '\n' || bytes.size() == 1, "frame starts with a blank line: %s", show(bytes).c_str());

    // The model: what a client must read from this frame.
    if (ev.comment) {
      for (const std::string& line : linesOf(*ev.comment)) expectedComments.push_back(line);
    }
    if (ev.id) lastId = std::string(*ev.id);
    if (ev.retryMs) expectedRetry = *ev.retryMs;
    if (ev.data) {
      std::string type = ev.event && !ev.event->empty() ? std::string(*ev.event) : "message";
      expected.push_back(test::SseEvent{type, test::normaliseLineEnds(*ev.data), lastId});
    }
    stream.append(bytes);
    frames.push_back(std::move(f));
  }

  // Parse the whole stream back in random pieces.
  test::SseParser parser;
  size_t pos = 0;
  while (pos < stream.size()) {
    size_t n = fdp.ConsumeIntegralInRange<size_t>(1, 64);
    n = std::min(n, stream.size() - pos);
    parser.feed(std::string_view(stream).substr(pos, n));
    pos += n;
  }
  const auto& got = parser.events();
  FUZZ_CHECK(got.size() == expected.size(), "parsed %zu events from %zu encoded; stream %s", got.size(),
             expected.size(), show(stream, 400).c_str());
  for (size_t i = 0; i < got.size(); ++i) {
    FUZZ_CHECK(got[i] == expected[i], "event %zu: parsed type=%s data=%s id=%s, encoded type=%s data=%s id=%s", i,
               show(got[i].type).c_str(), show(got[i].data).c_str(), show(got[i].lastEventId).c_str(),
               show(expected[i].type).c_str(), show(expected[i].data).c_str(), show(expected[i].lastEventId).c_str());
  }
  FUZZ_CHECK(!parser.hasPartialEvent(), "stream ends inside an event: %s", show(stream, 400).c_str());
  FUZZ_CHECK(parser.lastEventIdBuffer() == lastId, "last event id %s, expected %s",
             show(parser.lastEventIdBuffer()).c_str(), show(lastId).c_str());
  FUZZ_CHECK(parser.reconnectionTime() == expectedRetry, "retry not read back");
  const auto& comments = parser.comments();
  FUZZ_CHECK(comments.size() == expectedComments.size(), "%zu comment lines parsed, %zu encoded", comments.size(),
             expectedComments.size());
  for (size_t i = 0; i < comments.size(); ++i) {
    // The parser keeps the text after ':' as it is; the encoder may put one
    // space in front (always, or in compact mode when the line starts with one).
    std::string_view c = comments[i];
    if (!c.empty() && c[0] == ' ') c.remove_prefix(1);
    FUZZ_CHECK(c == expectedComments[i], "comment %zu: parsed %s, encoded %s", i, show(comments[i]).c_str(),
               show(expectedComments[i]).c_str());
  }

  frames.clear();
  FUZZ_CHECK(Frame::liveCount() == live0, "frames leaked: %lld live, %lld before",
             static_cast<long long>(Frame::liveCount()), static_cast<long long>(live0));
  return 0;
}
