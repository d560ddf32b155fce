// Fuzz target: Outbox (outbox.hpp): HTTP/1.1 chunk framing, event prefixes
// and iovec building under random pushes, caps, iov limits and partial writes.
//
// A connection is chunked or not, may start with a raw response head and may
// carry an event prefix ("id:<clientId>\n", as PocketBase sets it). Random
// event / control / raw / empty frames are pushed (some forced past the cap),
// the end of body is queued, and random writes take buildIov()'s iovecs with
// random maxIov and a random number of bytes, then consume() them. Asserted
// at every step: push() accepts exactly what the cap allows; pendingBytes()
// and frames() follow the model; buildIov() uses 1..maxIov non-empty iovecs,
// never more bytes than pending, stops on a frame boundary unless the first
// frame needs more iovecs than allowed, and its bytes are the next bytes of
// the stream; consume() reports the frames and events it completed. At the
// end everything is written and the bytes must decode (ChunkedDecoder from
// the RFC, then the WHATWG SseParser) to exactly the frames pushed, in order,
// ending where the end of body was queued. No frame may leak.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/uio.h>

#include <cinttypes>
#include <deque>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "outbox.hpp"
#include "sse_encoder.hpp"
#include "sse_parser.hpp"

using namespace ssefanout;
using fuzzutil::show;

namespace {

std::string hexSize(size_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx\r\n", v);
  return buf;
}

std::string singleLine(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n' || c == '\0') c = '.';
  }
  return s;
}

struct Pending {
  size_t end;  // offset in the wire stream where this entry ends
  bool event;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int64_t live0 = Frame::liveCount();
  {
    const bool chunked = fdp.ConsumeBool();
    const bool clearAtEnd = fdp.ConsumeIntegralInRange<int>(0, 7) == 0;
    size_t cap = fdp.ConsumeIntegralInRange<size_t>(0, 2048);
    Outbox ob(cap);
    ob.setChunked(chunked);

    std::string wire;  // every byte the connection must eventually send, in order
    size_t written = 0;
    std::string out;  // what "the kernel" took
    std::deque<Pending> queue;
    size_t pending = 0;
    std::string head;
    std::string body;  // the de-chunked SSE bytes expected
    std::vector<size_t> chunkSizes;
    std::vector<test::SseEvent> events;
    std::string lastId;
    bool ended = false;
    size_t eventsConsumed = 0, eventsExpected = 0;

    auto push = [&](const FrameRef& f, bool force, std::string_view prefixWire, std::string_view prefixBody) {
      const bool raw = f->kind() == Frame::Kind::kRaw;
      const bool ev = f->kind() == Frame::Kind::kEvent;
      size_t w = prefixWire.size() + f->size() + (chunked && !raw ? hexSize(f->size()).size() + 2 : 0);
      const bool accept = force || pending + w <= cap;
      const bool ok = ob.push(f, force);
      FUZZ_CHECK(ok == accept, "push of %zu wire bytes with %zu pending, cap %zu, force %d: %d", w, pending, cap, force,
                 ok);
      if (!ok) return false;
      wire += prefixWire;
      if (chunked && !raw) wire += hexSize(f->size());
      wire.append(f->view());
      if (chunked && !raw) wire += "\r\n";
      pending += w;
      queue.push_back({wire.size(), ev});
      if (ev) ++eventsExpected;
      if (!raw) {
        body += prefixBody;
        body.append(f->view());
        if (chunked) {
          if (!prefixBody.empty()) chunkSizes.push_back(prefixBody.size());
          chunkSizes.push_back(f->size());
        }
      }
      return true;
    };

    if (fdp.ConsumeBool()) {
      head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n";
      head += chunked ? "transfer-encoding: chunked\r\n\r\n" : "\r\n";
      FrameRef f(Frame::copyOf(head, Frame::Kind::kRaw));
      push(f, true, {}, {});  // forced: a response head is never refused
    }

    std::string prefix, clientId;
    if (fdp.ConsumeBool()) {
      clientId = singleLine(fdp.ConsumeRandomLengthString(40));
      // Built as the addon builds it ("id:" + streamId + "\n", src/io/dispatcher.cpp),
      // where a client reads a leading space of the id as the field separator;
      // PocketBase client ids never start with one.
      if (!clientId.empty() && clientId[0] == ' ') clientId[0] = '_';
      prefix = "id:" + clientId + "\n";
      ob.setEventPrefix(prefix);
      std::string want = chunked ? hexSize(prefix.size()) + prefix + "\r\n" : prefix;
      FUZZ_CHECK(ob.eventPrefixWire() == want, "event prefix on the wire %s, expected %s",
                 show(ob.eventPrefixWire()).c_str(), show(want).c_str());
    } else if (fdp.ConsumeBool()) {
      ob.setEventPrefix({});
      FUZZ_CHECK(ob.eventPrefixWire().empty(), "empty prefix has wire bytes");
    }
    const std::string prefixWire(ob.eventPrefixWire());

    while (fdp.remaining_bytes() > 0) {
      const int op = fdp.ConsumeIntegralInRange<int>(0, 13);
      if (op <= 3 && !ended) {  // an event
        EventFields ev;
        std::string name, id, text;
        const auto flags = fdp.ConsumeIntegral<uint8_t>();
        if (flags & 1) ev.event = name = singleLine(fdp.ConsumeRandomLengthString(16));
        if (flags & 2) ev.id = id = singleLine(fdp.ConsumeRandomLengthString(16));
        if (flags & 4) ev.data = text = fdp.ConsumeRandomLengthString(300);
        ev.compact = flags & 8;
        const bool force = (flags & 0x70) == 0x70;
        FrameRef f;
        FUZZ_CHECK(encodeEvent(ev, &f) == Status::kOk, "encoding failed");
        if (push(f, force, prefixWire, prefix)) {
          if (!prefix.empty()) lastId = clientId;
          if (ev.id) lastId = id;
          if (ev.data) {
            events.push_back({name.empty() ? "message" : name, test::normaliseLineEnds(text), lastId});
          }
        }
      } else if (op == 4 && !ended) {  // a control frame: heartbeat comment or retry
        EventFields ev;
        if (fdp.ConsumeBool())
          ev.comment = "hb";
        else
          ev.retryMs = fdp.ConsumeIntegral<uint16_t>();
        FrameRef f;
        FUZZ_CHECK(encodeEvent(ev, &f, Frame::Kind::kControl) == Status::kOk, "encoding failed");
        push(f, fdp.ConsumeIntegralInRange<int>(0, 3) == 0, {}, {});
      } else if (op == 5 && !ended && !chunked) {  // raw bytes (valid SSE, so the stream still parses)
        FrameRef f(Frame::copyOf(": raw " + singleLine(fdp.ConsumeRandomLengthString(20)) + "\n\n", Frame::Kind::kRaw));
        std::string before = body;
        if (push(f, false, {}, {})) body = before + std::string(f->view());
      } else if (op == 6 && !ended) {  // an empty frame: nothing to send, not queued
        static constexpr Frame::Kind kKinds[] = {Frame::Kind::kEvent, Frame::Kind::kControl, Frame::Kind::kRaw};
        FrameRef f(Frame::allocate(0, kKinds[fdp.ConsumeIntegralInRange<int>(0, 2)]));
        const size_t frames = ob.frames();
        FUZZ_CHECK(ob.push(f, fdp.ConsumeBool()), "empty frame refused");
        FUZZ_CHECK(ob.frames() == frames && ob.pendingBytes() == pending, "empty frame queued");
      } else if (op == 7 && !ended) {
        ob.pushEndOfBody();
        if (chunked) {
          ended = true;
          wire += "0\r\n\r\n";
          pending += 5;
          queue.push_back({wire.size(), false});
        }
      } else if (op == 8) {
        cap = fdp.ConsumeIntegralInRange<size_t>(0, 4096);
        ob.setCap(cap);
      } else {  // a write
        static constexpr int kLimits[] = {1, 2, 3, 4, 5, 7, 16, 1024};
        const int maxIov = kLimits[fdp.ConsumeIntegralInRange<int>(0, 7)];
        std::vector<struct iovec> iov(static_cast<size_t>(maxIov) + 1, iovec{nullptr, 12345});
        const int n = ob.buildIov(iov.data(), maxIov);
        FUZZ_CHECK(iov[static_cast<size_t>(maxIov)].iov_len == 12345, "buildIov wrote past maxIov");
        if (queue.empty()) {
          FUZZ_CHECK(n == 0 && ob.empty(), "buildIov on an empty outbox gave %d iovecs", n);
          continue;
        }
        FUZZ_CHECK(n >= 1 && n <= maxIov, "buildIov(%d) returned %d with %zu frames pending", maxIov, n, queue.size());
        std::string bytes;
        for (int i = 0; i < n; ++i) {
          FUZZ_CHECK(iov[i].iov_len > 0, "empty iovec %d", i);
          bytes.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        }
        FUZZ_CHECK(bytes.size() <= pending, "iovecs hold %zu bytes, %zu pending", bytes.size(), pending);
        FUZZ_CHECK(std::string_view(wire).substr(written, bytes.size()) == bytes,
                   "iovec bytes %s are not the next bytes of the stream %s", show(bytes).c_str(),
                   show(std::string_view(wire).substr(written, bytes.size())).c_str());
        const size_t stop = written + bytes.size();
        bool boundary = false;
        for (const Pending& p : queue) boundary |= p.end == stop;
        FUZZ_CHECK(boundary || stop < queue.front().end, "iovecs end inside a frame that is not the first");
        if (static_cast<size_t>(maxIov) >= 4 * queue.size()) {
          FUZZ_CHECK(bytes.size() == pending, "maxIov %d enough for %zu frames, yet %zu of %zu bytes", maxIov,
                     queue.size(), bytes.size(), pending);
        }
        size_t k = fdp.ConsumeBool() ? bytes.size() : fdp.ConsumeIntegralInRange<size_t>(0, bytes.size());
        size_t evs = 0;
        const size_t done = ob.consume(k, &evs);
        out.append(bytes, 0, k);
        written += k;
        pending -= k;
        size_t wantDone = 0, wantEvents = 0;
        while (!queue.empty() && queue.front().end <= written) {
          ++wantDone;
          wantEvents += queue.front().event;
          queue.pop_front();
        }
        FUZZ_CHECK(done == wantDone && evs == wantEvents,
                   "consume(%zu) completed %zu frames / %zu events, model %zu / %zu", k, done, evs, wantDone,
                   wantEvents);
        eventsConsumed += evs;
      }
      FUZZ_CHECK(ob.pendingBytes() == pending, "pendingBytes() = %zu, model %zu", ob.pendingBytes(), pending);
      FUZZ_CHECK(ob.frames() == queue.size(), "frames() = %zu, model %zu", ob.frames(), queue.size());
      FUZZ_CHECK(ob.empty() == queue.empty(), "empty() disagrees");
    }

    if (clearAtEnd) {
      ob.clear();
      FUZZ_CHECK(ob.empty() && ob.pendingBytes() == 0 && ob.frames() == 0, "clear() left something");
    } else {
      // Drain: whole writes until nothing is left.
      for (int guard = 0; !ob.empty(); ++guard) {
        FUZZ_CHECK(guard < 100000, "outbox does not drain");
        struct iovec iov[64];
        int n = ob.buildIov(iov, 64);
        FUZZ_CHECK(n > 0, "no progress with frames pending");
        size_t k = 0;
        for (int i = 0; i < n; ++i) {
          out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
          k += iov[i].iov_len;
        }
        size_t evs = 0;
        ob.consume(k, &evs);
        eventsConsumed += evs;
      }
      FUZZ_CHECK(ob.pendingBytes() == 0, "drained outbox has %zu pending", ob.pendingBytes());
      FUZZ_CHECK(out == wire, "bytes out differ from the stream pushed");
      FUZZ_CHECK(eventsConsumed == eventsExpected, "%zu events reported written, %zu pushed", eventsConsumed,
                 eventsExpected);

      // Decode independently: head, chunked coding, SSE.
      FUZZ_CHECK(std::string_view(out).substr(0, head.size()) == head, "response head not first");
      std::string_view rest = std::string_view(out).substr(head.size());
      std::string decoded;
      if (chunked) {
        test::ChunkedDecoder dec;
        size_t pos = 0;
        while (pos < rest.size()) {
          size_t piece = std::min<size_t>(rest.size() - pos, 1 + (pos * 7919 % 97));
          dec.feed(rest.substr(pos, piece));
          pos += piece;
        }
        FUZZ_CHECK(!dec.error(), "chunked decoding failed: %s in %s", dec.errorMessage().c_str(),
                   show(rest, 400).c_str());
        FUZZ_CHECK(dec.done() == ended, "end of body %s", ended ? "missing" : "where none was queued");
        FUZZ_CHECK(dec.chunkSizes() == chunkSizes, "chunk sizes differ from the frames pushed");
        decoded = dec.body();
      } else {
        decoded = std::string(rest);
      }
      FUZZ_CHECK(decoded == body, "decoded body %s, expected %s", show(decoded, 300).c_str(), show(body, 300).c_str());
      test::SseParser parser;
      parser.feed(decoded);
      const auto& got = parser.events();
      FUZZ_CHECK(got.size() == events.size(), "parsed %zu events, %zu pushed", got.size(), events.size());
      for (size_t i = 0; i < got.size(); ++i) {
        FUZZ_CHECK(got[i] == events[i], "event %zu: parsed type=%s data=%s id=%s, pushed type=%s data=%s id=%s", i,
                   show(got[i].type).c_str(), show(got[i].data).c_str(), show(got[i].lastEventId).c_str(),
                   show(events[i].type).c_str(), show(events[i].data).c_str(), show(events[i].lastEventId).c_str());
      }
      FUZZ_CHECK(!parser.hasPartialEvent(), "stream ends inside an event");
    }
  }
  FUZZ_CHECK(Frame::liveCount() == live0, "frames leaked: %lld live, %lld before",
             static_cast<long long>(Frame::liveCount()), static_cast<long long>(live0));
  return 0;
}
