// Tests for Outbox: cap accounting, HTTP chunk framing as separate iovecs,
// buildIov/consume with partial writes, zero copy and reference release.
// Streams are checked end to end with the independent decoders in
// test/cpp/sse_parser.hpp.
#include "outbox.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sse_encoder.hpp"
#include "sse_parser.hpp"

namespace ssefanout {
namespace {

using test::ChunkedDecoder;
using test::SseEvent;
using test::SseParser;
using namespace std::string_literals;

FrameRef event(std::string_view bytes) { return FrameRef(Frame::copyOf(bytes)); }
FrameRef raw(std::string_view bytes) { return FrameRef(Frame::copyOf(bytes, Frame::Kind::kRaw)); }

// What one frame must look like on the wire, computed here independently.
std::string wireOf(const FrameRef& f, bool chunked) {
  if (f->size() == 0) return "";
  if (!chunked || f->kind() == Frame::Kind::kRaw) return std::string(f->view());
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx\r\n", f->size());
  return hex + std::string(f->view()) + "\r\n";
}

std::string iovBytes(const struct iovec* iov, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return s;
}

size_t iovTotal(const struct iovec* iov, int n) {
  size_t t = 0;
  for (int i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// Writes everything out `writeSize` bytes at a time (0 = whole iov batch),
// checking progress, and returns the bytes "sent".
std::string drain(Outbox& box, int maxIov = 1024, size_t writeSize = 0) {
  std::string out;
  std::vector<struct iovec> iov(static_cast<size_t>(maxIov));
  for (int guard = 0; !box.empty(); ++guard) {
    if (guard > 1000000) {
      ADD_FAILURE() << "drain does not make progress";
      break;
    }
    int n = box.buildIov(iov.data(), maxIov);
    EXPECT_GT(n, 0) << "non-empty outbox produced no iovec";
    EXPECT_LE(n, maxIov);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) EXPECT_GT(iov[i].iov_len, 0u) << "zero-length iovec";
    std::string bytes = iovBytes(iov.data(), n);
    size_t w = writeSize == 0 ? bytes.size() : std::min(writeSize, bytes.size());
    out.append(bytes, 0, w);
    const size_t before = box.pendingBytes();
    box.consume(w);
    EXPECT_EQ(box.pendingBytes(), before - w);
  }
  EXPECT_EQ(box.pendingBytes(), 0u);
  return out;
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override { baseline_ = Frame::liveCount(); }
  void TearDown() override { EXPECT_EQ(Frame::liveCount(), baseline_) << "frames leaked or double-freed"; }
  int64_t baseline_ = 0;
};

// ---------------------------------------------------------------------------
// The reference chunked decoder.

TEST(ChunkedDecoderSelfTest, DecodesChunksExtensionsAndTrailers) {
  ChunkedDecoder d;
  d.feed("4\r\nWiki\r\n5;name=val\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n");
  EXPECT_FALSE(d.error()) << d.errorMessage();
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.body(), "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(d.chunkSizes(), (std::vector<size_t>{4, 5, 14}));
}

TEST(ChunkedDecoderSelfTest, ByteByByte) {
  const std::string s = "a\r\n0123456789\r\n1\r\n\n\r\n000\r\n\r\n";
  ChunkedDecoder d;
  for (char c : s) d.feed(std::string_view(&c, 1));
  EXPECT_FALSE(d.error()) << d.errorMessage();
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.body(), "0123456789\n");
}

TEST(ChunkedDecoderSelfTest, RejectsMalformedFraming) {
  for (std::string bad : {"4\nWiki\r\n0\r\n\r\n"s, "4\r\nWikiX\r\n0\r\n\r\n"s, "4\r\nWiki\n0\r\n\r\n"s, "g\r\n"s,
                          "\r\n"s, "0\r\n\r\nextra"s, "4\r\nWiki\r\n0\r\n\n"s}) {
    ChunkedDecoder d;
    d.feed(bad);
    EXPECT_TRUE(d.error()) << ::testing::PrintToString(bad);
  }
  ChunkedDecoder unfinished;
  unfinished.feed("4\r\nWiki\r\n");
  EXPECT_FALSE(unfinished.error());
  EXPECT_FALSE(unfinished.done());
}

// ---------------------------------------------------------------------------
// Push and accounting.

TEST_F(OutboxTest, EmptyOutbox) {
  Outbox box;
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(box.frames(), 0u);
  EXPECT_EQ(box.pendingBytes(), 0u);
  EXPECT_EQ(box.cap(), size_t{1} << 20);
  EXPECT_FALSE(box.chunked());
  struct iovec iov[4];
  EXPECT_EQ(box.buildIov(iov, 4), 0);
  EXPECT_EQ(box.consume(0), 0u);
  EXPECT_EQ(box.consume(100), 0u);
  EXPECT_EQ(box.pendingBytes(), 0u);
  box.clear();
  EXPECT_TRUE(box.empty());
}

TEST_F(OutboxTest, PushRetainsAndCountsUnchunkedWireBytes) {
  Outbox box;
  FrameRef a = event("data: a\n\n");
  FrameRef b = event("data: bb\n\n");
  EXPECT_TRUE(box.push(a));
  EXPECT_TRUE(box.push(b));
  EXPECT_EQ(a->refCount(), 2u);
  EXPECT_EQ(b->refCount(), 2u);
  EXPECT_EQ(box.frames(), 2u);
  EXPECT_EQ(box.pendingBytes(), 9u + 10u);
  EXPECT_FALSE(box.empty());
  EXPECT_EQ(drain(box), "data: a\n\ndata: bb\n\n");
  EXPECT_EQ(a->refCount(), 1u);
  EXPECT_EQ(b->refCount(), 1u);
}

TEST_F(OutboxTest, PushCountsChunkedWireBytes) {
  Outbox box;
  box.setChunked(true);
  EXPECT_TRUE(box.chunked());
  FrameRef a = event("data: a\n\n");            // "9\r\n" + 9 + "\r\n"
  FrameRef big = event(std::string(300, 'x'));  // "12c\r\n" + 300 + "\r\n"
  box.push(a);
  EXPECT_EQ(box.pendingBytes(), 14u);
  box.push(big);
  EXPECT_EQ(box.pendingBytes(), 14u + 5u + 300u + 2u);
  EXPECT_EQ(drain(box), "9\r\ndata: a\n\n\r\n12c\r\n" + std::string(300, 'x') + "\r\n");
}

TEST_F(OutboxTest, SameFrameTwiceIsSentTwice) {
  Outbox box;
  FrameRef a = event("x");
  box.push(a);
  box.push(a);
  EXPECT_EQ(a->refCount(), 3u);
  EXPECT_EQ(drain(box), "xx");
  EXPECT_EQ(a->refCount(), 1u);
}

TEST_F(OutboxTest, CapRefusesPastTheCapAndForceBypasses) {
  Outbox box(100);
  FrameRef f60 = event(std::string(60, 'a'));
  FrameRef f40 = event(std::string(40, 'b'));
  FrameRef f1 = event("c");
  EXPECT_TRUE(box.push(f60));
  EXPECT_FALSE(box.push(f60));  // 60 + 60 > 100
  EXPECT_EQ(box.frames(), 1u);
  EXPECT_EQ(box.pendingBytes(), 60u);
  EXPECT_EQ(f60->refCount(), 2u);  // the refused push took no reference
  EXPECT_TRUE(box.push(f40));      // 60 + 40 == cap: allowed
  EXPECT_EQ(box.pendingBytes(), 100u);
  EXPECT_FALSE(box.push(f1));
  EXPECT_TRUE(box.push(f1, /*force=*/true));
  EXPECT_EQ(box.pendingBytes(), 101u);
  EXPECT_EQ(box.frames(), 3u);

  // Writing frees room again.
  box.consume(60);
  EXPECT_EQ(box.pendingBytes(), 41u);
  EXPECT_TRUE(box.push(f40));
  EXPECT_EQ(drain(box), std::string(40, 'b') + "c" + std::string(40, 'b'));
}

TEST_F(OutboxTest, CapCountsChunkFraming) {
  FrameRef f = event(std::string(95, 'x'));  // chunked: "5f\r\n" + 95 + "\r\n" = 101
  Outbox plain(100);
  EXPECT_TRUE(plain.push(f));
  Outbox chunked(100);
  chunked.setChunked(true);
  EXPECT_FALSE(chunked.push(f));
  EXPECT_TRUE(chunked.empty());
  chunked.setCap(101);
  EXPECT_EQ(chunked.cap(), 101u);
  EXPECT_TRUE(chunked.push(f));
  EXPECT_EQ(chunked.pendingBytes(), 101u);
}

TEST_F(OutboxTest, FrameLargerThanCapRefusedEvenWhenEmpty) {
  Outbox box(10);
  FrameRef f = event(std::string(11, 'x'));
  EXPECT_FALSE(box.push(f));
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(f->refCount(), 1u);
}

TEST_F(OutboxTest, RawFramesAreNeverChunkFramed) {
  Outbox box;
  box.setChunked(true);
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  box.push(raw(head), true);
  box.push(event("data: a\n\n"));
  EXPECT_EQ(box.pendingBytes(), head.size() + 14u);
  EXPECT_EQ(drain(box), head + "9\r\ndata: a\n\n\r\n");
}

TEST_F(OutboxTest, EndOfBodyOnlyWhenChunked) {
  Outbox plain;
  plain.pushEndOfBody();
  EXPECT_TRUE(plain.empty());
  EXPECT_EQ(plain.pendingBytes(), 0u);

  Outbox box;
  box.setChunked(true);
  box.push(event("data: a\n\n"));
  box.pushEndOfBody();
  EXPECT_EQ(box.frames(), 2u);
  EXPECT_EQ(box.pendingBytes(), 14u + 5u);
  std::string wire = drain(box);
  EXPECT_EQ(wire, "9\r\ndata: a\n\n\r\n0\r\n\r\n");
  ChunkedDecoder d;
  d.feed(wire);
  EXPECT_FALSE(d.error()) << d.errorMessage();
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.body(), "data: a\n\n");
}

TEST_F(OutboxTest, EndOfBodyCanBePartiallyWritten) {
  Outbox box;
  box.setChunked(true);
  box.pushEndOfBody();
  struct iovec iov[2];
  ASSERT_EQ(box.buildIov(iov, 2), 1);
  EXPECT_EQ(iovBytes(iov, 1), "0\r\n\r\n");
  EXPECT_EQ(box.consume(2), 0u);
  ASSERT_EQ(box.buildIov(iov, 2), 1);
  EXPECT_EQ(iovBytes(iov, 1), "\n\r\n");
  EXPECT_EQ(box.consume(3), 1u);
  EXPECT_TRUE(box.empty());
}

TEST_F(OutboxTest, EmptyFramesPutNothingOnTheWire) {
  // A zero-size chunk is HTTP's last-chunk: queued as "0\r\n\r\n", an empty
  // frame would end the response body early.
  Outbox box;
  box.setChunked(true);
  box.push(event("data: a\n\n"));
  EXPECT_TRUE(box.push(event("")));
  box.push(event("data: b\n\n"));
  box.pushEndOfBody();
  std::string wire = drain(box);
  ChunkedDecoder d;
  d.feed(wire);
  EXPECT_FALSE(d.error()) << d.errorMessage() << " in " << ::testing::PrintToString(wire);
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.body(), "data: a\n\ndata: b\n\n");

  // Unchunked: an empty frame must not keep the outbox non-empty forever.
  Outbox plain;
  plain.push(event("x"));
  EXPECT_TRUE(plain.push(raw("")));
  EXPECT_TRUE(plain.push(event("")));
  EXPECT_EQ(drain(plain), "x");
  EXPECT_TRUE(plain.empty());
}

// ---------------------------------------------------------------------------
// buildIov: zero copy and iovec limits.

TEST_F(OutboxTest, IovecsPointIntoTheFrameItself) {
  FrameRef f = event("data: shared\n\n");
  Outbox chunked;
  chunked.setChunked(true);
  Outbox plain;
  chunked.push(f);
  plain.push(f);
  EXPECT_EQ(f->refCount(), 3u);

  struct iovec iov[8];
  ASSERT_EQ(chunked.buildIov(iov, 8), 3);
  // Chunk header: stored inside the Frame object, before its bytes.
  const char* header = static_cast<const char*>(iov[0].iov_base);
  EXPECT_EQ(header, f->chunkHeader().data());
  EXPECT_GE(header, reinterpret_cast<const char*>(f.get()));
  EXPECT_LT(header, f->data());
  EXPECT_EQ(std::string_view(header, iov[0].iov_len), "e\r\n");
  EXPECT_EQ(iov[1].iov_base, f->data());
  EXPECT_EQ(iov[1].iov_len, f->size());
  EXPECT_EQ(std::string_view(static_cast<const char*>(iov[2].iov_base), iov[2].iov_len), "\r\n");

  ASSERT_EQ(plain.buildIov(iov, 8), 1);
  EXPECT_EQ(iov[0].iov_base, f->data());
  EXPECT_EQ(iov[0].iov_len, f->size());

  // After a partial write the iovec still points into the same bytes.
  plain.consume(5);
  ASSERT_EQ(plain.buildIov(iov, 8), 1);
  EXPECT_EQ(iov[0].iov_base, f->data() + 5);
  EXPECT_EQ(iov[0].iov_len, f->size() - 5);
  chunked.consume(3 + 4);
  ASSERT_EQ(chunked.buildIov(iov, 8), 2);
  EXPECT_EQ(iov[0].iov_base, f->data() + 4);
}

TEST_F(OutboxTest, BuildIovStopsAtFrameBoundary) {
  Outbox box;
  box.setChunked(true);
  box.push(event("a"));
  box.push(event("bb"));
  box.push(event("ccc"));
  struct iovec iov[16];
  EXPECT_EQ(box.buildIov(iov, 0), 0);
  EXPECT_EQ(box.buildIov(iov, 3), 3);
  EXPECT_EQ(iovBytes(iov, 3), "1\r\na\r\n");
  EXPECT_EQ(box.buildIov(iov, 4), 3);  // a second frame needs 3 more
  EXPECT_EQ(box.buildIov(iov, 5), 3);
  EXPECT_EQ(box.buildIov(iov, 6), 6);
  EXPECT_EQ(iovBytes(iov, 6), "1\r\na\r\n2\r\nbb\r\n");
  EXPECT_EQ(box.buildIov(iov, 16), 9);
  EXPECT_EQ(iovBytes(iov, 9), "1\r\na\r\n2\r\nbb\r\n3\r\nccc\r\n");

  Outbox plain;
  plain.push(event("a"));
  plain.push(event("bb"));
  plain.push(event("ccc"));
  EXPECT_EQ(plain.buildIov(iov, 2), 2);
  EXPECT_EQ(iovBytes(iov, 2), "abb");
}

TEST_F(OutboxTest, PartlyWrittenFirstFrameNeedsFewerIovecs) {
  Outbox box;
  box.setChunked(true);
  box.push(event("aaaa"));
  box.push(event("b"));
  box.consume(3 + 2);  // header and half of "aaaa" written: 2 iovecs left
  struct iovec iov[8];
  ASSERT_EQ(box.buildIov(iov, 5), 5);
  EXPECT_EQ(iovBytes(iov, 5), "aa\r\n1\r\nb\r\n");
  ASSERT_EQ(box.buildIov(iov, 4), 2);
  EXPECT_EQ(iovBytes(iov, 2), "aa\r\n");
  ASSERT_EQ(box.buildIov(iov, 2), 2);
  EXPECT_EQ(iovBytes(iov, 2), "aa\r\n");
}

TEST_F(OutboxTest, FewerIovecsThanAChunkedFrameNeedsStillProgress) {
  // With maxIov 1 or 2 a chunked frame cannot be sent whole; returning no
  // iovec at all would stall the connection with bytes pending.
  for (int maxIov : {1, 2}) {
    SCOPED_TRACE(maxIov);
    Outbox box;
    box.setChunked(true);
    box.push(event("data: a\n\n"));
    box.push(event("data: b\n\n"));
    box.pushEndOfBody();
    struct iovec iov[2];
    int n = box.buildIov(iov, maxIov);
    ASSERT_EQ(n, maxIov);
    EXPECT_EQ(iovBytes(iov, n), std::string("9\r\ndata: a\n\n").substr(0, maxIov == 1 ? 3 : 12));
    EXPECT_EQ(drain(box, maxIov), "9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n0\r\n\r\n");
  }
}

// ---------------------------------------------------------------------------
// consume: partial writes anywhere.

TEST_F(OutboxTest, PartialConsumeAtEveryOffsetOfAChunkedFrame) {
  const std::string bytes = "data: x\n\n";
  const std::string wire = "9\r\n" + bytes + "\r\n";
  for (size_t k = 0; k <= wire.size(); ++k) {
    SCOPED_TRACE(k);
    FrameRef f = event(bytes);
    Outbox box;
    box.setChunked(true);
    box.push(f);
    EXPECT_EQ(box.consume(k), k == wire.size() ? 1u : 0u);
    EXPECT_EQ(box.pendingBytes(), wire.size() - k);
    EXPECT_EQ(f->refCount(), k == wire.size() ? 1u : 2u);
    struct iovec iov[3];
    int n = box.buildIov(iov, 3);
    EXPECT_EQ(iovBytes(iov, n), wire.substr(k));
    // Middle of the header, start/middle of the bytes, middle of the CRLF.
    int expectedIov = k < 3 ? 3 : k < 3 + bytes.size() ? 2 : k < wire.size() ? 1 : 0;
    EXPECT_EQ(n, expectedIov);
    if (k >= 3 && k < 3 + bytes.size()) {
      EXPECT_EQ(iov[0].iov_base, f->data() + (k - 3));
    }
    // The rest in one go.
    EXPECT_EQ(box.consume(wire.size() - k), k == wire.size() ? 0u : 1u);
    EXPECT_TRUE(box.empty());
    EXPECT_EQ(f->refCount(), 1u);
  }
}

TEST_F(OutboxTest, ConsumeAcrossFramesReturnsFramesCompleted) {
  Outbox box;
  box.setChunked(true);
  box.push(event("a"));    // 6 wire bytes
  box.push(event("bb"));   // 7
  box.push(event("ccc"));  // 8
  EXPECT_EQ(box.consume(5), 0u);
  EXPECT_EQ(box.consume(1 + 7 + 1), 2u);  // end of "a", all of "bb", 1 byte of "ccc"
  EXPECT_EQ(box.frames(), 1u);
  struct iovec iov[4];
  int n = box.buildIov(iov, 4);
  EXPECT_EQ(iovBytes(iov, n), "\r\nccc\r\n");
  EXPECT_EQ(box.consume(7), 1u);
  EXPECT_TRUE(box.empty());
}

TEST_F(OutboxTest, ConsumeMoreThanPendingEmptiesAndStaysConsistent) {
  Outbox box;
  box.push(event("abc"));
  EXPECT_EQ(box.consume(10), 1u);
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(box.pendingBytes(), 0u);
  box.push(event("de"));
  EXPECT_EQ(box.pendingBytes(), 2u);
  EXPECT_EQ(drain(box), "de");
}

TEST_F(OutboxTest, EveryIovLimitAndWriteSizeGivesTheSameBytes) {
  const std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  for (bool chunked : {false, true}) {
    std::string expected;
    std::vector<FrameRef> frames = {raw(head), event("data: 1\n\n"), event(std::string(40, 'x')), event("d"),
                                    event(": hb\n\n")};
    for (const auto& f : frames) expected += wireOf(f, chunked);
    if (chunked) expected += "0\r\n\r\n";
    for (int maxIov = 1; maxIov <= 8; ++maxIov) {
      for (size_t writeSize : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{7}, size_t{13}, size_t{0}}) {
        SCOPED_TRACE("chunked " + std::to_string(chunked) + " maxIov " + std::to_string(maxIov) + " write " +
                     std::to_string(writeSize));
        Outbox box;
        box.setChunked(chunked);
        for (const auto& f : frames) box.push(f, true);
        box.pushEndOfBody();
        EXPECT_EQ(box.pendingBytes(), expected.size());
        EXPECT_EQ(drain(box, maxIov, writeSize), expected);
      }
    }
    for (const auto& f : frames) EXPECT_EQ(f->refCount(), 1u);
  }
}

// ---------------------------------------------------------------------------
// Event prefix: a per-connection line in front of every event, its own iovec.

TEST_F(OutboxTest, EventPrefixGoesBeforeEveryEventOnly) {
  const std::string prefix = "id:abc\n";
  const std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  std::vector<FrameRef> frames = {raw(head), event("event:a\ndata:1\n\n"),
                                  FrameRef(Frame::copyOf(": hb\n\n", Frame::Kind::kControl)),
                                  event("event:b\ndata:" + std::string(40, 'x') + "\n\n")};
  for (bool chunked : {false, true}) {
    std::string expected;
    for (const auto& f : frames) {
      if (f->kind() == Frame::Kind::kEvent) {
        if (chunked) {
          expected += "7\r\n" + prefix + "\r\n";
        } else {
          expected += prefix;
        }
      }
      expected += wireOf(f, chunked);
    }
    if (chunked) expected += "0\r\n\r\n";
    for (int maxIov = 1; maxIov <= 9; ++maxIov) {
      for (size_t writeSize : {size_t{1}, size_t{3}, size_t{7}, size_t{0}}) {
        SCOPED_TRACE("chunked " + std::to_string(chunked) + " maxIov " + std::to_string(maxIov) + " write " +
                     std::to_string(writeSize));
        Outbox box;
        box.setChunked(chunked);
        box.setEventPrefix(prefix);
        for (const auto& f : frames) box.push(f, true);
        box.pushEndOfBody();
        EXPECT_EQ(box.pendingBytes(), expected.size());
        EXPECT_EQ(drain(box, maxIov, writeSize), expected);
      }
    }
    // What a client reads: each event carries the prefix's id, the comment none.
    std::string body = expected.substr(head.size());
    SseParser parser;
    if (chunked) {
      ChunkedDecoder d;
      d.feed(body);
      ASSERT_FALSE(d.error());
      EXPECT_TRUE(d.done());
      parser.feed(d.body());
    } else {
      parser.feed(body);
    }
    ASSERT_EQ(parser.events().size(), 2u);
    EXPECT_EQ(parser.events()[0], (SseEvent{"a", "1", "abc"}));
    EXPECT_EQ(parser.events()[1], (SseEvent{"b", std::string(40, 'x'), "abc"}));
  }
  for (const auto& f : frames) EXPECT_EQ(f->refCount(), 1u);
}

TEST_F(OutboxTest, EventPrefixIsOneSharedIovecNotACopy) {
  Outbox box;
  box.setChunked(true);
  box.setEventPrefix("id:xyz\n");
  FrameRef a = event("data:1\n\n");
  box.push(a);
  box.push(a);
  struct iovec iov[16];
  int n = box.buildIov(iov, 16);
  ASSERT_EQ(n, 8);
  EXPECT_EQ(iov[0].iov_base, box.eventPrefixWire().data());
  EXPECT_EQ(iov[4].iov_base, box.eventPrefixWire().data());
  EXPECT_EQ(iov[2].iov_base, a->data());
  EXPECT_EQ(iov[6].iov_base, a->data());
  EXPECT_EQ(iovBytes(iov, 1), "7\r\nid:xyz\n\r\n");
  box.clear();
}

TEST_F(OutboxTest, EventPrefixCountsAgainstTheCap) {
  Outbox box(40);
  box.setEventPrefix("id:0123456789\n");   // 14 bytes
  FrameRef a = event("data:1234567\n\n");  // 14 bytes: 28 with the prefix
  EXPECT_TRUE(box.push(a));
  EXPECT_EQ(box.pendingBytes(), 28u);
  EXPECT_FALSE(box.push(a));  // 56 > 40, though the frames alone (28) would fit
  EXPECT_EQ(box.pendingBytes(), 28u);
  box.clear();
}

TEST_F(OutboxTest, ChunkingDecidedWhenPushed) {
  // Frames queued before setChunked(true) keep the framing they were counted
  // with; the byte accounting and the bytes sent must agree.
  Outbox box;
  box.push(event("plain"));
  box.setChunked(true);
  box.push(event("framed"));
  EXPECT_EQ(box.pendingBytes(), 5u + 11u);
  EXPECT_EQ(drain(box, 1024, 3), "plain6\r\nframed\r\n");
}

// ---------------------------------------------------------------------------
// References.

TEST_F(OutboxTest, ClearAndDestructorReleaseQueuedFrames) {
  {
    Outbox box;
    box.setChunked(true);
    for (int i = 0; i < 50; ++i) box.push(event("frame " + std::to_string(i)));
    box.pushEndOfBody();
    EXPECT_EQ(Frame::liveCount(), baseline_ + 50);
    box.consume(20);  // first frame written, second partly
    EXPECT_EQ(Frame::liveCount(), baseline_ + 49);
    box.clear();
    EXPECT_EQ(Frame::liveCount(), baseline_);
    EXPECT_TRUE(box.empty());
    EXPECT_EQ(box.pendingBytes(), 0u);
    struct iovec iov[4];
    EXPECT_EQ(box.buildIov(iov, 4), 0);

    // Usable after clear, from a clean position.
    box.push(event("x"));
    EXPECT_EQ(drain(box), "1\r\nx\r\n");

    for (int i = 0; i < 10; ++i) box.push(event("y"));
    box.consume(2);
  }  // the destructor releases the rest
  EXPECT_EQ(Frame::liveCount(), baseline_);
}

TEST_F(OutboxTest, RingWrapsAndGrowsInOrder) {
  Outbox box;
  std::string expected;
  int next = 0;
  auto pushN = [&](int n) {
    for (int i = 0; i < n; ++i, ++next) {
      std::string s = "<" + std::to_string(next) + ">";
      box.push(event(s));
      expected += s;
    }
  };
  std::string got;
  pushN(6);
  got += drain(box, 5);  // drains up to 5 frames per write, head moves
  pushN(7);              // wraps around the initial ring
  struct iovec iov[3];
  int n = box.buildIov(iov, 3);
  got += iovBytes(iov, n);
  box.consume(iovTotal(iov, n));
  pushN(30);  // grows while the head is not at slot 0
  got += drain(box, 4, 5);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(Frame::liveCount(), baseline_);
}

// ---------------------------------------------------------------------------
// Randomized: two connections (chunked and not) share every published frame;
// random pushes against a cap, random iovec limits and random partial writes.
// The model is the expected byte stream of each connection; at the end the
// received bytes are decoded (HTTP head, chunked coding, SSE) and must give
// every accepted event exactly once, in order.

struct Connection {
  Outbox box;
  bool chunked = false;
  std::string expectedWire;                 // every byte ever queued, in order
  size_t written = 0;                       // prefix of expectedWire sent
  std::deque<std::pair<size_t, int>> ends;  // (end offset in expectedWire, seq or -1)
  std::string received;
  std::vector<int> accepted;
  int refused = 0;
};

void randomStream(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int64_t baseline = Frame::liveCount();
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

  Connection conns[2];
  conns[0].chunked = false;
  conns[1].chunked = true;
  std::vector<std::string> payloads;  // by seq: the data as published
  for (auto& c : conns) {
    c.box.setChunked(c.chunked);
    c.box.setCap(256 + rng() % 4096);
    FrameRef h = raw(head);
    EXPECT_TRUE(c.box.push(h, true));
    c.expectedWire += head;
    c.ends.emplace_back(c.expectedWire.size(), -1);
  }

  // Frames alive: each distinct published frame still queued somewhere, plus
  // the response heads still queued (one frame per connection).
  auto liveFrames = [&] {
    std::set<int> seqs;
    int64_t heads = 0;
    for (auto& c : conns) {
      for (auto& [end, seq] : c.ends) {
        if (seq >= 0) seqs.insert(seq);
        if (seq == -1) ++heads;
      }
    }
    return static_cast<int64_t>(seqs.size()) + heads;
  };

  auto writeSome = [&](Connection& c) {
    static constexpr int kLimits[] = {1, 2, 3, 4, 5, 7, 16, 64, 1024};
    const int maxIov = kLimits[rng() % std::size(kLimits)];
    std::vector<struct iovec> iov(static_cast<size_t>(maxIov));
    int n = c.box.buildIov(iov.data(), maxIov);
    ASSERT_LE(n, maxIov);
    if (c.box.empty()) {
      ASSERT_EQ(n, 0);
      return;
    }
    ASSERT_GT(n, 0) << "pending bytes but no iovec";
    std::string bytes = iovBytes(iov.data(), n);
    ASSERT_EQ(bytes, c.expectedWire.substr(c.written, bytes.size())) << "iovecs differ from the expected stream";
    size_t w;
    switch (rng() % 4) {
      case 0:
        w = bytes.size();
        break;
      case 1:
        w = 0;
        break;  // EAGAIN
      default:
        w = rng() % (bytes.size() + 1);
    }
    c.received.append(bytes, 0, w);
    c.written += w;
    size_t completed = 0;
    while (!c.ends.empty() && c.ends.front().first <= c.written) {
      c.ends.pop_front();
      ++completed;
    }
    ASSERT_EQ(c.box.consume(w), completed);
    ASSERT_EQ(c.box.pendingBytes(), c.expectedWire.size() - c.written);
    ASSERT_EQ(c.box.frames(), c.ends.size());
  };

  int seq = 0;
  for (int step = 0; step < 6000; ++step) {
    if (rng() % 3 == 0) {
      // Publish a burst: one encoded frame shared by both connections.
      for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k, ++seq) {
        std::string data = "seq " + std::to_string(seq) + "|";
        for (size_t len = rng() % 120; len > 0; --len) {
          const char pick[] = {'a', 'b', '\r', '\n', '\0', ':', ' ', '\xC3', '\xA9'};
          data += pick[rng() % sizeof pick];
        }
        payloads.push_back(data);
        EventFields ev;
        ev.event = "e";
        std::string id = std::to_string(seq);
        ev.id = id;
        ev.data = data;
        FrameRef f;
        ASSERT_EQ(encodeEvent(ev, &f), Status::kOk);
        for (auto& c : conns) {
          const size_t wire = f->wireSize(c.chunked);
          const bool force = rng() % 50 == 0;
          const bool fits = c.box.pendingBytes() + wire <= c.box.cap();
          const bool ok = c.box.push(f, force);
          ASSERT_EQ(ok, fits || force);
          if (!ok) {
            ++c.refused;
            continue;
          }
          c.expectedWire += wireOf(f, c.chunked);
          c.ends.emplace_back(c.expectedWire.size(), seq);
          c.accepted.push_back(seq);
          ASSERT_EQ(c.box.pendingBytes(), c.expectedWire.size() - c.written);
        }
      }
    } else {
      ASSERT_NO_FATAL_FAILURE(writeSome(conns[rng() % 2]));
    }
    ASSERT_EQ(Frame::liveCount() - baseline, liveFrames()) << "at step " << step;
  }

  for (auto& c : conns) {
    c.box.pushEndOfBody();
    if (c.chunked) {
      c.expectedWire += "0\r\n\r\n";
      c.ends.emplace_back(c.expectedWire.size(), -2);
    }
    while (!c.box.empty()) ASSERT_NO_FATAL_FAILURE(writeSome(c));
    EXPECT_EQ(c.received, c.expectedWire);
  }
  EXPECT_EQ(Frame::liveCount(), baseline);

  for (auto& c : conns) {
    SCOPED_TRACE(c.chunked ? "chunked" : "plain");
    EXPECT_GT(c.accepted.size(), 100u);
    ASSERT_EQ(c.received.compare(0, head.size(), head), 0);
    std::string body = c.received.substr(head.size());
    if (c.chunked) {
      ChunkedDecoder d;
      d.feed(body);
      ASSERT_FALSE(d.error()) << d.errorMessage();
      ASSERT_TRUE(d.done());
      ASSERT_EQ(d.chunkSizes().size(), c.accepted.size());
      body = d.takeBody();
    }
    SseParser p;
    for (size_t pos = 0; pos < body.size();) {
      size_t n = std::min<size_t>(1 + rng() % 300, body.size() - pos);
      p.feed(std::string_view(body).substr(pos, n));
      pos += n;
    }
    EXPECT_FALSE(p.hasPartialEvent());
    ASSERT_EQ(p.events().size(), c.accepted.size());
    for (size_t i = 0; i < c.accepted.size(); ++i) {
      const int s = c.accepted[i];
      const std::string want = test::normaliseLineEnds(payloads[static_cast<size_t>(s)]);
      ASSERT_EQ(p.events()[i], (SseEvent{"e", want, std::to_string(s)})) << "event " << i;
    }
  }
  // Some refusals happened for at least one connection, so the cap was exercised.
  EXPECT_GT(conns[0].refused + conns[1].refused, 0);
}

TEST_F(OutboxTest, RandomizedPartialWritesDeliverEveryFrameOnceInOrder) {
  for (uint64_t seed : {11u, 12u, 13u, 14u}) {
    randomStream(seed);
    if (HasFatalFailure()) return;
  }
}

TEST_F(OutboxTest, RandomizedClearMidStreamReleasesEverything) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 200; ++round) {
    {
      Outbox box(1 + rng() % 2000);
      box.setChunked(rng() % 2);
      for (int i = static_cast<int>(rng() % 40); i > 0; --i) {
        box.push(event(std::string(1 + rng() % 100, 'z')), rng() % 5 == 0);
        if (rng() % 3 == 0) box.consume(rng() % 50);
      }
      size_t endOfBody = 0;
      if (rng() % 2) {
        box.pushEndOfBody();
        endOfBody = box.chunked() ? 1 : 0;
      }
      // The outbox holds the only reference to each queued frame.
      ASSERT_EQ(Frame::liveCount() - baseline_, static_cast<int64_t>(box.frames() - endOfBody));
      if (rng() % 2) {
        box.clear();
        ASSERT_EQ(Frame::liveCount(), baseline_);
      }
    }
    ASSERT_EQ(Frame::liveCount(), baseline_);
  }
}

}  // namespace
}  // namespace ssefanout
