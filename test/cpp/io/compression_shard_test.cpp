// Compressed streams in the Shard (Command::coding, src/compress): a stream
// adopted with a body coding gets the coding's header, every frame's coded
// variant (its event prefix as stored blocks), and at the end of the body the
// trailer. Each test adopts it beside an identity *twin*: the same topics,
// prefix and framing, no coding. The compressed body, de-chunked and
// inflated by zlib (test/cpp/zlib_inflate.hpp), must be byte for byte the
// twin's body, at every moment (each event decodes as soon as it arrives) and
// at the end (Z_STREAM_END: the trailer's checksum and length are right).
//
// Sockets, the sink and the leak checks (frames and fds, at TearDown) come
// from shard_fixture.hpp.
#include <gtest/gtest.h>
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "body_coding.hpp"
#include "shard.hpp"
#include "shard_fixture.hpp"
#include "sse_encoder.hpp"
#include "sse_parser.hpp"
#include "zlib_inflate.hpp"

namespace ssefanout::test {
namespace {

using namespace std::chrono_literals;
using compress::Coding;

std::string headFor(Coding coding, bool chunked) {
  std::string h = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
  if (coding != Coding::kIdentity) {
    h += "Content-Encoding: " + std::string(compress::codingName(coding)) + "\r\nVary: accept-encoding\r\n";
  }
  h += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Connection: close\r\n\r\n";
  return h;
}

// Compressible JSON-ish text (deflated variants) of about n bytes.
std::string jsonData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) {
    s += "{\"id\":" + std::to_string(rng() % 100000) + ",\"topic\":\"room/" + std::to_string(rng() % 50) +
         "\",\"text\":\"hello from user " + std::to_string(rng() % 1000) + "\"},";
  }
  s.resize(n);
  return s;
}

// Printable bytes without line breaks that DEFLATE hardly shrinks.
std::string noisyData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, ' ');
  for (char& c : s) c = static_cast<char>(0x21 + rng() % 94);
  return s;
}

FrameRef eventOf(std::string_view data, bool compress = true, std::optional<std::string_view> name = std::nullopt) {
  EventFields ev;
  ev.data = data;
  ev.event = name;
  ev.compress = compress;
  FrameRef f;
  EXPECT_EQ(encodeEvent(ev, &f), Status::kOk);
  return f;
}

// The client end of one stream, read as bytes arrive: the response head, the
// body (de-chunked when chunked) and, for a compressed stream, its inflate.
class PeerStream {
 public:
  PeerStream(int fd, Coding coding, bool chunked) : fd_(fd), chunked_(chunked), head_(headFor(coding, chunked)) {
    if (coding == Coding::kGzip) inflater_ = std::make_unique<Inflater>(31);
    if (coding == Coding::kDeflate) inflater_ = std::make_unique<Inflater>(15);
  }

  // Takes what arrives within `window`.
  void pump(std::chrono::milliseconds window = 5ms) {
    if (eof_) return;
    ReadResult r = readN(fd_, SIZE_MAX, window);
    eof_ = r.eof || r.err != 0;
    take(r.bytes);
  }

  const std::string& body() const { return body_; }  // the body's bytes (compressed for a coded stream)
  const std::string& plain() const { return inflater_ ? inflater_->out() : body_; }
  bool eof() const { return eof_; }
  bool headOk() const { return raw_.compare(0, head_.size(), head_) == 0; }
  const ChunkedDecoder& chunks() const { return dec_; }
  const Inflater* inflater() const { return inflater_.get(); }

 private:
  void take(std::string_view bytes) {
    raw_ += bytes;
    if (raw_.size() <= head_.size()) return;
    const std::string_view fresh = std::string_view(raw_).substr(std::max(head_.size(), raw_.size() - bytes.size()));
    std::string decoded;
    if (chunked_) {
      dec_.feed(fresh);
      decoded = dec_.takeBody();
    } else {
      decoded = std::string(fresh);
    }
    body_ += decoded;
    if (inflater_) inflater_->feed(decoded);
  }

  int fd_;
  bool chunked_;
  std::string head_;
  std::string raw_;
  std::string body_;
  bool eof_ = false;
  ChunkedDecoder dec_;
  std::unique_ptr<Inflater> inflater_;
};

size_t countOf(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string_view::npos; at = hay.find(needle, at + needle.size())) ++n;
  return n;
}

class CompressedStreamTest : public ShardTest, public ::testing::WithParamInterface<std::tuple<Coding, bool>> {
 protected:
  Coding coding() const { return std::get<0>(GetParam()); }
  bool chunked() const { return std::get<1>(GetParam()); }
  size_t trailerSize() const { return coding() == Coding::kGzip ? 10 : 6; }

  // The adopt command of a stream with the given coding and event prefix;
  // frame2 is its first frame (a retry line), as the Dispatcher sends it.
  Command codedAdopt(const SocketPair& p, Coding coding, const std::string& prefix, FrameRef first, uint64_t* id) {
    *id = reg_.acquire();
    Command c = adoptCmd(p.shardEnd, *id, {"t", "room/*"}, chunked(), 0, std::move(first));
    c.frame = rawFrame(headFor(coding, chunked()));
    c.coding = coding;
    c.prefix = prefix;
    return c;
  }

  // Adopts a compressed stream and its identity twin in one batch: one loop
  // turn, one clock reading, so their heartbeats fall due in the same ticks
  // (every later command that reaches both is posted as one command or one
  // batch for the same reason).
  void adoptPair(Shard& s, const SocketPair& coded, const SocketPair& twin, const std::string& prefix, FrameRef first,
                 uint64_t* idCoded, uint64_t* idTwin) {
    std::vector<Command> batch;
    batch.push_back(codedAdopt(coded, coding(), prefix, first, idCoded));
    batch.push_back(codedAdopt(twin, Coding::kIdentity, prefix, first, idTwin));
    s.post(batch);
  }

  // Reads both until the twin has received `want` (after `from`) and the
  // compressed stream has decoded to exactly the twin's bytes.
  bool catchUp(PeerStream& coded, PeerStream& twin, std::string_view want, size_t from) {
    return waitFor([&] {
      coded.pump();
      twin.pump();
      return twin.plain().find(want, from) != std::string::npos && coded.plain() == twin.plain();
    });
  }
};

TEST_P(CompressedStreamTest, InflatesToTheIdentityTwin) {
  ShardOptions o = quietOptions();
  o.heartbeatMs = 60;
  Shard& s = startShard(o);
  SocketPair pc = unixPair(), pt = unixPair();
  const std::string prefix = "id:C7c2Kq0z\n";
  EventFields retry;
  retry.retryMs = 2500;
  FrameRef first;
  ASSERT_EQ(encodeEvent(retry, &first), Status::kOk);
  uint64_t idc = 0, idt = 0;
  adoptPair(s, pc, pt, prefix, first, &idc, &idt);
  PeerStream coded(pc.peer, coding(), chunked()), twin(pt.peer, Coding::kIdentity, chunked());
  ASSERT_TRUE(catchUp(coded, twin, "retry: 2500\n\n", 0));
  const std::string_view header = coding() == Coding::kGzip ? std::string_view("\x1f\x8b\x08\0\0\0\0\0\0\xff", 10)
                                                            : std::string_view("\x78\x9c", 2);
  EXPECT_EQ(std::string_view(coded.body()).substr(0, header.size()), header);

  // Events of every kind of variant, some made at publish (as
  // Dispatcher::precode does), the others by the shard on first use.
  std::vector<FrameRef> events = {
      eventOf("small"),
      eventOf(jsonData(3000, 1), true, "record"),
      eventOf(jsonData(3000, 2), /*compress=*/false),
      eventOf(noisyData(2000, 3)),
      eventOf(jsonData(150 * 1024, 4)),
      eventOf(noisyData(150 * 1024, 5)),
      eventOf(jsonData(500, 6)),
  };
  for (size_t i = 0; i < events.size(); ++i) {
    const FrameRef& f = events[i];
    if (i % 2 == 1) compress::variantOf(f.get(), o.coding);
    const size_t from = twin.plain().size();
    switch (i % 4) {
      case 0:
        s.post(publishCmd("t", f));
        break;
      case 1:
        s.post(publishCmd("room/7", f));
        break;
      case 2:
        s.post(broadcastCmd(f));
        break;
      case 3: {
        std::vector<Command> both;
        both.push_back(sendCmd(idc, f));
        both.push_back(sendCmd(idt, f));
        s.post(both);
        break;
      }
    }
    s.post(publishCmd("elsewhere", eventOf("for nobody here")));
    const std::string want = prefix + std::string(f->view());
    ASSERT_TRUE(catchUp(coded, twin, want, from)) << "event " << i << " did not decode as it arrived";
    EXPECT_TRUE(coded.inflater()->ok()) << coded.inflater()->message();
  }
  // Heartbeats are per connection too: a stored comment on the compressed one.
  const size_t beats = countOf(twin.plain(), ": \n\n");
  ASSERT_TRUE(waitFor([&] {
    coded.pump();
    twin.pump();
    return countOf(twin.plain(), ": \n\n") >= beats + 2 && coded.plain() == twin.plain();
  }));
  EXPECT_EQ(s.counters().codedConnections.load(), 1u);
  EXPECT_EQ(s.counters().connections.load(), 2u);

  // The end: kick both in one batch, each gets what is queued and its end.
  std::vector<Command> batch;
  batch.push_back(publishCmd("t", eventOf("last")));
  batch.push_back(idCmd(Command::Op::kKick, idc));
  batch.push_back(idCmd(Command::Op::kKick, idt));
  s.post(batch);
  ASSERT_TRUE(waitFor([&] {
    coded.pump();
    twin.pump();
    return coded.eof() && twin.eof();
  }));
  EXPECT_TRUE(coded.headOk());
  EXPECT_TRUE(twin.headOk());
  if (chunked()) {
    EXPECT_TRUE(coded.chunks().done()) << coded.chunks().errorMessage();
    EXPECT_TRUE(twin.chunks().done()) << twin.chunks().errorMessage();
    EXPECT_FALSE(coded.chunks().error()) << coded.chunks().errorMessage();
  }
  ASSERT_TRUE(coded.inflater()->ended()) << "no Z_STREAM_END: " << coded.inflater()->message();
  EXPECT_EQ(coded.inflater()->trailing(), 0u);
  EXPECT_TRUE(coded.plain() == twin.plain())
      << "inflated " << coded.plain().size() << " bytes, twin got " << twin.plain().size();
  EXPECT_NE(twin.plain().find(prefix + "data: last\n\n"), std::string::npos);
  EXPECT_LT(coded.body().size(), twin.body().size());
  // The SSE the client sees: every event, with the prefix's id.
  SseParser parser;
  parser.feed(coded.plain());
  ASSERT_EQ(parser.events().size(), events.size() + 1);
  EXPECT_EQ(parser.events()[1].type, "record");
  for (const SseEvent& e : parser.events()) EXPECT_EQ(e.lastEventId, "C7c2Kq0z");
  EXPECT_EQ(parser.reconnectionTime(), 2500u);

  for (uint64_t id : {idc, idt}) {
    ASSERT_TRUE(sink_.waitReason(id));
    EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kKicked);
  }
  // Before and after coding: the inflated bytes; the body's bytes but for
  // the trailer, which endBody() queues outside Shard::enqueue.
  EXPECT_EQ(s.counters().codedIn.load(), coded.plain().size());
  EXPECT_LE(s.counters().codedOut.load(), coded.body().size());
  EXPECT_GE(s.counters().codedOut.load() + trailerSize(), coded.body().size());
  EXPECT_EQ(s.counters().codedConnections.load(), 0u);
  shutdownAndJoin(s);
}

TEST_P(CompressedStreamTest, ShutdownEndsTheBodyWithItsTrailer) {
  Shard& s = startShard();
  SocketPair pc = unixPair(), pt = unixPair();
  uint64_t idc = 0, idt = 0;
  adoptPair(s, pc, pt, "", FrameRef(), &idc, &idt);
  // A JS-transport stream on the same shard gets the plain frame.
  const uint64_t js = reg_.acquire();
  s.post(attachJsCmd(js, {"t"}));
  PeerStream coded(pc.peer, coding(), chunked()), twin(pt.peer, Coding::kIdentity, chunked());
  FrameRef big = eventOf(jsonData(20000, 9));
  s.post(publishCmd("t", big));
  s.post(publishCmd("t", eventOf("tail")));
  ASSERT_TRUE(catchUp(coded, twin, "data: tail\n\n", 0));
  ASSERT_TRUE(waitFor([&] { return sink_.jsCount() == 2; }));
  EXPECT_EQ(sink_.js()[0].frame, big.get());
  EXPECT_EQ(sink_.js()[0].bytes, big->view());
  s.post(opCmd(Command::Op::kShutdown));
  ASSERT_TRUE(waitFor([&] {
    coded.pump();
    twin.pump();
    return coded.eof() && twin.eof();
  }));
  ASSERT_TRUE(coded.inflater()->ended()) << coded.inflater()->message();
  EXPECT_TRUE(coded.plain() == twin.plain());
  EXPECT_EQ(twin.plain(), std::string(big->view()) + "data: tail\n\n");
  if (chunked()) {
    EXPECT_TRUE(coded.chunks().done());
  }
  ASSERT_TRUE(waitFor([&] { return sink_.stopped(s.index()) == 1; }));
  s.join();
}

TEST_P(CompressedStreamTest, SlowConsumerIsResetWithoutATrailerAndLeaksNothing) {
  ShardOptions o = quietOptions();
  o.maxQueueBytes = 16 * 1024;
  o.sndbufBytes = 4096;
  Shard& s = startShard(o);
  SocketPair stalled = unixPair(), reader = unixPair();
  uint64_t ids = 0, idr = 0;
  s.post(codedAdopt(stalled, coding(), "id:slow\n", FrameRef(), &ids));
  s.post(codedAdopt(reader, coding(), "id:fine\n", FrameRef(), &idr));
  PeerStream fine(reader.peer, coding(), chunked());
  std::string expected;  // what the stalled stream would have decoded to
  {
    std::vector<FrameRef> sent;
    for (int i = 0; i < 400 && !sink_.reasonOf(ids); ++i) {
      // Hardly compressible, so the variants fill the queue.
      FrameRef f = eventOf(std::to_string(i) + noisyData(1500, static_cast<uint32_t>(i)), i % 5 != 0);
      if (i % 2) compress::variantOf(f.get(), o.coding);
      expected += "id:slow\n" + std::string(f->view());
      s.post(publishCmd("t", f));
      sent.push_back(std::move(f));
      // The reader keeps up event by event; only the stalled one fills up.
      ASSERT_TRUE(waitFor([&] {
        fine.pump(1ms);
        return countOf(fine.plain(), "id:fine\n") == static_cast<size_t>(i + 1);
      })) << "event "
          << i;
    }
    ASSERT_TRUE(sink_.waitReason(ids));
    EXPECT_EQ(sink_.reasonOf(ids), DisconnectReason::kSlow);
    EXPECT_EQ(s.counters().slow.load(), 1u);
    EXPECT_EQ(s.counters().codedConnections.load(), 1u);
    EXPECT_TRUE(waitFor([&] { return fdIsClosed(stalled.shardEnd); }));
  }
  // What did arrive is the start of a valid compressed body, cut short: no
  // trailer, so no end.
  ReadResult r = readToEof(stalled.peer);
  ChunkedDecoder dec;
  std::string head = headFor(coding(), chunked());
  ASSERT_GE(r.bytes.size(), head.size());
  EXPECT_EQ(r.bytes.substr(0, head.size()), head);
  std::string body = r.bytes.substr(head.size());
  if (chunked()) {
    dec.feed(body);
    EXPECT_FALSE(dec.error()) << dec.errorMessage();
    EXPECT_FALSE(dec.done()) << "a slow consumer is reset, not ended";
    body = dec.body();
  }
  Inflater in(coding() == Coding::kGzip ? 31 : 15);
  in.feed(body);
  EXPECT_TRUE(in.ok()) << in.message();
  EXPECT_FALSE(in.ended());
  EXPECT_LE(in.out().size(), expected.size());
  EXPECT_TRUE(expected.compare(0, in.out().size(), in.out()) == 0) << "not a prefix of the stream";

  // The reader got everything, and its body ends properly.
  s.post(opCmd(Command::Op::kShutdown));
  ASSERT_TRUE(waitFor([&] {
    fine.pump();
    return fine.eof();
  }));
  ASSERT_TRUE(waitFor([&] { return sink_.stopped(s.index()) == 1; }));
  s.join();
  EXPECT_TRUE(fine.inflater()->ended()) << fine.inflater()->message();
  EXPECT_EQ(countOf(fine.plain(), "id:fine\n"), static_cast<size_t>(countOf(expected, "id:slow\n")));
  EXPECT_EQ(sink_.reasonOf(idr), DisconnectReason::kShutdown);
  EXPECT_EQ(s.counters().queueBytes.load(), 0u);
  // Every frame and variant is gone once the shard (and its heartbeat frame)
  // is; TearDown checks the fds too.
  shards_.clear();
  EXPECT_EQ(Frame::liveCount(), frames0_) << "frames or variants leaked";
}

// The memory of an idle compressed stream: no more heap than an identity one.
// A compressed stream keeps no compressor, only its checksum state inside the
// connection (32 bytes of sizeof(Conn), which both kinds have); the coding's
// header frame and the variants of what it was sent are freed once written.
// glibc's count of heap bytes in use (mallinfo2, every arena) is read after
// kStreams of each kind are adopted and have written their first bytes; per
// stream, the compressed ones may hold at most 64 bytes more (the goal of
// issue 16), allocator rounding included. One batch of 400 of each kind read
// anywhere from -68 to +155 bytes apart (a container doubling inside one
// batch); two rounds of 1000 in opposite orders read about -50 (the mean of
// gzip 670 and 576 against identity 658 and 731). The count is the whole
// process's: ctest runs each test in a process of its own (npm test), where
// it is exact; after other tests in one process, the containers they grew
// (libuv's watcher array, the registry) may double inside one of the two
// batches and blur it. Under the sanitizers mallinfo2 counts nothing (their
// allocator is not glibc's), so there the check passes without meaning.
class CompressedStreamMemoryTest : public ShardTest {};

TEST_F(CompressedStreamMemoryTest, AnIdleCompressedStreamHoldsNoMoreHeapThanAnIdentityOne) {
  constexpr int kStreams = 1000;
  Shard& s = startShard();
  // Every socket pair first (the fixture keeps their peers), so that only
  // what the shard holds per stream is counted.
  std::vector<SocketPair> pairs;
  for (int i = 0; i < 4 * kStreams + 2; ++i) pairs.push_back(unixPair());
  const size_t head = std::string_view(kChunkedHead).size();
  const size_t gzipHeader = chunk(std::string(10, 'x')).size();
  auto adopt = [&](int i, Coding coding) {
    Command c = adoptCmd(pairs[i].shardEnd, reg_.acquire(), {"t"}, true);
    c.coding = coding;
    s.post(std::move(c));
  };
  // Read once the shard has run every command and released what it wrote
  // (a peer may read the bytes before the writing thread drops its frames).
  auto heapInUse = [] {
    std::this_thread::sleep_for(200ms);
    return static_cast<double>(mallinfo2().uordblks);
  };
  // One stream of each kind takes an event first: the thread's compressors
  // and the topic index's first entries are not counted against either kind.
  adopt(0, Coding::kIdentity);
  adopt(1, Coding::kGzip);
  EXPECT_EQ(readN(pairs[0].peer, head).bytes.size(), head);
  EXPECT_EQ(readN(pairs[1].peer, head + gzipHeader).bytes.size(), head + gzipHeader);
  s.post(publishCmd("t", eventOf(jsonData(1000, 3))));
  EXPECT_GT(readN(pairs[0].peer, 1000).bytes.size(), 0u);
  EXPECT_GT(readN(pairs[1].peer, 100).bytes.size(), 0u);

  // Two rounds in opposite orders (gzip then identity, identity then gzip):
  // a container that doubles inside one batch (the shard's slot vector,
  // libuv's watcher array) lands on each kind once, and the mean of the two
  // differences cancels it.
  int next = 2;
  auto batch = [&](Coding coding) {
    const double before = heapInUse();
    const int first = next;
    for (int k = 0; k < kStreams; ++k) adopt(next++, coding);
    const size_t bytes = head + (coding == Coding::kIdentity ? 0 : gzipHeader);
    for (int i = first; i < next; ++i) EXPECT_EQ(readN(pairs[i].peer, bytes).bytes.size(), bytes);
    return (heapInUse() - before) / kStreams;
  };
  const double gzip1 = batch(Coding::kGzip);
  const double identity1 = batch(Coding::kIdentity);
  const double identity2 = batch(Coding::kIdentity);
  const double gzip2 = batch(Coding::kGzip);
  const double gzipPer = (gzip1 + gzip2) / 2;
  const double identityPer = (identity1 + identity2) / 2;
  std::printf("[ heap     ] rounds: gzip %.0f, %.0f; identity %.0f, %.0f\n", gzip1, gzip2, identity1, identity2);
  std::printf("[ heap     ] per idle stream: identity %.0f bytes, gzip %.0f bytes\n", identityPer, gzipPer);
  EXPECT_LE(gzipPer - identityPer, 64.0);
  shutdownAndJoin(s);
}

INSTANTIATE_TEST_SUITE_P(Codings, CompressedStreamTest,
                         ::testing::Combine(::testing::Values(Coding::kGzip, Coding::kDeflate), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<CompressedStreamTest::ParamType>& info) {
                           return std::string(compress::codingName(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_chunked" : "_plain");
                         });

}  // namespace
}  // namespace ssefanout::test
