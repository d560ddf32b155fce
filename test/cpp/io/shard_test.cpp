// Unit tests for Shard: one I/O thread with its own uv_loop_t, driven only
// through Shard::post(), writing to real sockets.
//
// Sockets: socketpair(AF_UNIX, SOCK_STREAM) for most tests (the shard gets one
// end, the test reads the other); real loopback TCP on 127.0.0.1 where
// FIN/RDHUP/RST behaviour or SO_SNDBUF matter. Bytes on the wire are checked
// exactly, and decoded with the independent reference decoders of
// test/cpp/sse_parser.hpp where a stream is long.
//
// The fixture (sockets, the test sink, command builders, ShardTest with its
// frame and fd leak checks) is shard_fixture.hpp; the concurrency stress test
// meant for ThreadSanitizer is shard_stress_test.cpp.
#include "shard.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "registry.hpp"
#include "shard_fixture.hpp"
#include "sse_encoder.hpp"
#include "sse_parser.hpp"

namespace ssefanout::test {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Functional tests

TEST_F(ShardTest, AdoptChunkedWritesHeadThenChunkFramedEvents) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = adopt(s, p, {"news"}, true);

  s.post(publishCmd("news", eventFrame("hello")));
  s.post(publishCmd("other", eventFrame("not for news")));
  s.post(publishCmd("news", eventFrame("line1\nline2", "update")));

  const std::string expected =
      std::string(kChunkedHead) + "d\r\ndata: hello\n\n\r\n" + "27\r\nevent: update\ndata: line1\ndata: line2\n\n\r\n";
  EXPECT_BYTES(expected, readN(p.peer, expected.size()).bytes);
  EXPECT_EQ(readFor(p.peer, 50ms), "");

  EXPECT_EQ(s.counters().connections.load(), 1u);
  EXPECT_EQ(s.counters().subscriptions.load(), 1u);
  EXPECT_EQ(s.counters().published.load(), 3u);

  shutdownAndJoin(s);
  ReadResult end = readToEof(p.peer);
  EXPECT_BYTES(kTerminator, end.bytes);
  EXPECT_TRUE(end.eof);
  EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kShutdown);
  EXPECT_EQ(sink_.reportsFor(id), 1u);
  EXPECT_EQ(s.counters().connections.load(), 0u);
  EXPECT_EQ(s.counters().queueBytes.load(), 0u);
  EXPECT_EQ(s.counters().delivered.load(), 2u);  // events only: not the head, not the last chunk
  EXPECT_EQ(s.counters().bytesWritten.load(), expected.size() + kTerminator.size());
}

TEST_F(ShardTest, UnchunkedWritesFramesVerbatimAndEndsWithEof) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = adopt(s, p, {"news"}, false);
  s.post(publishCmd("news", eventFrame("a")));
  s.post(publishCmd("news", eventFrame("b\r\nc")));
  const std::string expected = std::string(kPlainHead) + "data: a\n\n" + "data: b\ndata: c\n\n";
  EXPECT_BYTES(expected, readN(p.peer, expected.size()).bytes);

  shutdownAndJoin(s);
  ReadResult end = readToEof(p.peer);
  EXPECT_EQ(end.bytes, "");  // no chunk terminator on an unchunked body
  EXPECT_TRUE(end.eof);
  EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kShutdown);
}

TEST_F(ShardTest, EmptyHeadWritesOnlyEvents) {
  // Node already sent the head: the hub hands over an empty raw frame.
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = reg_.acquire();
  Command c = adoptCmd(p.shardEnd, id, {"t"}, true);
  c.frame = rawFrame("");
  s.post(std::move(c));
  s.post(publishCmd("t", eventFrame("x")));
  EXPECT_READ(p.peer, chunk("data: x\n\n"));
  shutdownAndJoin(s);
  EXPECT_BYTES(kTerminator, readToEof(p.peer).bytes);
}

TEST_F(ShardTest, FirstEventFollowsTheHead) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = reg_.acquire();
  EventFields retry;
  retry.retryMs = 3000;
  FrameRef first;
  ASSERT_EQ(encodeEvent(retry, &first), Status::kOk);
  s.post(adoptCmd(p.shardEnd, id, {"t"}, true, 0, std::move(first)));
  s.post(publishCmd("t", eventFrame("x")));
  const std::string expected = std::string(kChunkedHead) + chunk("retry: 3000\n\n") + chunk("data: x\n\n");
  EXPECT_BYTES(expected, readN(p.peer, expected.size()).bytes);
  shutdownAndJoin(s);
}

TEST_F(ShardTest, PatternSubscriptionMatchesTopicsUnderThePrefix) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  adopt(s, p, {"x/*"}, false);
  for (const char* t : {"x/1", "x", "x/", "xy/1", "y/x/1", "x/a/b", "x/*"}) {
    s.post(publishCmd(t, eventFrame(t)));
  }
  // Only topics strictly under "x/" match ("x/*" as a published topic is just
  // a topic under the prefix).
  const std::string expected = std::string(kPlainHead) + "data: x/1\n\n" + "data: x/a/b\n\n" + "data: x/*\n\n";
  EXPECT_BYTES(expected, readN(p.peer, expected.size()).bytes);
  EXPECT_EQ(readFor(p.peer, 50ms), "");

  // Exact and pattern subscriptions that both match deliver once.
  SocketPair q = unixPair();
  adopt(s, q, {"x/*", "x/2", "x/2/*"}, false);
  s.post(publishCmd("x/2", eventFrame("once")));
  const std::string once = std::string(kPlainHead) + "data: once\n\n";
  EXPECT_BYTES(once, readN(q.peer, once.size()).bytes);
  EXPECT_READ(p.peer, "data: once\n\n");
  EXPECT_EQ(readFor(q.peer, 50ms), "");
  shutdownAndJoin(s);
}

TEST_F(ShardTest, UsersFilterRestrictsPublishAndBroadcast) {
  Shard& s = startShard();
  SocketPair p[4];
  uint64_t id[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = unixPair();
    id[i] = adopt(s, p[i], {"t"}, true, /*user=*/static_cast<uint32_t>(i + 1));
  }
  s.post(publishCmd("t", eventFrame("to 1 and 3"), {1, 3}));
  s.post(broadcastCmd(eventFrame("bc to 2 and 4"), {2, 4}));
  s.post(publishCmd("t", eventFrame("to 4"), {4}));
  s.post(publishCmd("t", eventFrame("to nobody"), {7, 9}));
  s.post(publishCmd("t", eventFrame("all")));
  auto expect = [&](int i, std::vector<std::string_view> events) {
    std::string want(kChunkedHead);
    for (std::string_view e : events) want += chunk(std::string("data: ") + std::string(e) + "\n\n");
    EXPECT_BYTES(want, readN(p[i].peer, want.size()).bytes) << "user " << i + 1;
  };
  expect(0, {"to 1 and 3", "all"});
  expect(1, {"bc to 2 and 4", "all"});
  expect(2, {"to 1 and 3", "all"});
  expect(3, {"bc to 2 and 4", "to 4", "all"});
  for (auto& pp : p) EXPECT_EQ(readFor(pp.peer, 20ms), "");
  shutdownAndJoin(s);
  for (uint64_t i : id) EXPECT_EQ(sink_.reasonOf(i), DisconnectReason::kShutdown);
}

TEST_F(ShardTest, BroadcastReachesEveryConnectionWithOrWithoutSubscriptions) {
  Shard& s = startShard();
  SocketPair a = unixPair(), b = unixPair(), c = tcpPair();
  adopt(s, a, {}, true);
  adopt(s, b, {"t"}, false);
  adopt(s, c, {"x/*"}, true);
  FrameRef f = eventFrame("everyone");
  s.post(broadcastCmd(f));
  EXPECT_READ(a.peer, std::string(kChunkedHead) + chunk("data: everyone\n\n"));
  EXPECT_READ(b.peer, std::string(kPlainHead) + "data: everyone\n\n");
  EXPECT_READ(c.peer, std::string(kChunkedHead) + chunk("data: everyone\n\n"));
  shutdownAndJoin(s);
  // Shared, not copied: the test's reference is the only one left.
  EXPECT_EQ(f->refCount(), 1u);
}

TEST_F(ShardTest, SendReachesOnlyItsConnectionAndStaleIdsAreDropped) {
  Shard& s = startShard();
  SocketPair a = unixPair(), b = unixPair();
  uint64_t ida = adopt(s, a, {"t"}, false);
  uint64_t idb = adopt(s, b, {"t"}, false);
  expectHead(a.peer, false);
  expectHead(b.peer, false);

  s.post(sendCmd(ida, eventFrame("for a")));
  s.post(sendCmd(idb, eventFrame("for b")));
  // Same slot as ida, another generation: never delivered.
  s.post(sendCmd(ida + (uint64_t{1} << Registry::kSlotBits), eventFrame("stale generation")));
  s.post(sendCmd(12345, eventFrame("unknown slot")));
  s.post(sendCmd(ida, eventFrame("a again")));
  EXPECT_READ(a.peer, "data: for a\n\ndata: a again\n\n");
  EXPECT_READ(b.peer, "data: for b\n\n");
  EXPECT_EQ(readFor(b.peer, 30ms), "");
  EXPECT_EQ(s.counters().published.load(), 5u);
  shutdownAndJoin(s);
}

TEST_F(ShardTest, SubscribeAndUnsubscribeTakeEffectInPostOrder) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = adopt(s, p, {}, true);
  s.post(publishCmd("t", eventFrame("before subscribe")));
  s.post(topicsCmd(Command::Op::kSubscribe, id, {"t", "u/*"}));
  s.post(publishCmd("t", eventFrame("subscribed t")));
  s.post(publishCmd("u/1", eventFrame("subscribed u/1")));
  s.post(topicsCmd(Command::Op::kSubscribe, id, {"t"}));  // idempotent
  s.post(publishCmd("t", eventFrame("t once")));
  s.post(topicsCmd(Command::Op::kUnsubscribe, id, {"t", "not-subscribed"}));
  s.post(publishCmd("t", eventFrame("after unsubscribe")));
  s.post(publishCmd("u/2", eventFrame("u/2 still")));
  s.post(topicsCmd(Command::Op::kUnsubscribe, id, {"u/*"}));
  s.post(publishCmd("u/3", eventFrame("gone")));
  s.post(sendCmd(id, eventFrame("sentinel")));
  std::string want(kChunkedHead);
  for (const char* e : {"subscribed t", "subscribed u/1", "t once", "u/2 still", "sentinel"}) {
    want += chunk(std::string("data: ") + e + "\n\n");
  }
  EXPECT_BYTES(want, readN(p.peer, want.size()).bytes);
  EXPECT_TRUE(waitFor([&] { return s.counters().subscriptions.load() == 0; }));
  // Commands for an unknown id change nothing.
  s.post(topicsCmd(Command::Op::kSubscribe, id + 1, {"t"}));
  s.post(sendCmd(id, eventFrame("sync")));
  EXPECT_READ(p.peer, chunk("data: sync\n\n"));
  EXPECT_EQ(s.counters().subscriptions.load(), 0u);
  shutdownAndJoin(s);
}

TEST_F(ShardTest, PublishPostedBeforeAdoptNeverReachesIt) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = reg_.acquire();
  std::vector<Command> batch;
  batch.push_back(publishCmd("t", eventFrame("too early")));
  batch.push_back(adoptCmd(p.shardEnd, id, {"t"}, false));
  batch.push_back(publishCmd("t", eventFrame("in time")));
  s.post(batch);
  EXPECT_TRUE(batch.empty());
  const std::string want = std::string(kPlainHead) + "data: in time\n\n";
  EXPECT_BYTES(want, readN(p.peer, want.size()).bytes);
  EXPECT_EQ(readFor(p.peer, 30ms), "");
  shutdownAndJoin(s);
}

TEST_F(ShardTest, ManyFramesInOneTurnAreAllWrittenInOrder) {
  // More iovecs than kMaxIov in one turn, a small socket buffer and a reader
  // that lags: the writable path must resume exactly where the kernel stopped.
  ShardOptions o = quietOptions();
  o.sndbufBytes = 4096;
  o.maxQueueBytes = 8 << 20;
  Shard& s = startShard(o);
  SocketPair a = unixPair(), b = tcpPair();
  adopt(s, a, {"t"}, true);
  adopt(s, b, {"t"}, false);
  std::vector<Command> batch;
  std::string wantA(kChunkedHead), wantB(kPlainHead);
  for (int i = 0; i < 3 * Shard::kMaxIov; ++i) {
    std::string data = "frame " + std::to_string(i) + std::string(static_cast<size_t>(i % 97), 'x');
    FrameRef f = eventFrame(data);
    wantA += chunk(f->view());
    wantB += std::string(f->view());
    batch.push_back(publishCmd("t", std::move(f)));
  }
  s.post(batch);
  std::this_thread::sleep_for(20ms);  // let both kernel buffers fill first
  EXPECT_BYTES(wantA, readN(a.peer, wantA.size()).bytes);
  EXPECT_BYTES(wantB, readN(b.peer, wantB.size()).bytes);
  EXPECT_TRUE(waitFor([&] { return s.counters().queueBytes.load() == 0; }));
  shutdownAndJoin(s);
  EXPECT_EQ(s.counters().slow.load(), 0u);
}

TEST_F(ShardTest, JsConnectionsAreDeliveredThroughTheSink) {
  Shard& s = startShard();
  uint64_t j1 = reg_.acquire(), j2 = reg_.acquire();
  FrameRef hello = eventFrame("hello j1");
  s.post(attachJsCmd(j1, {"a"}, /*user=*/1, hello));
  s.post(attachJsCmd(j2, {"x/*"}, /*user=*/2));
  SocketPair n = unixPair();
  uint64_t idn = adopt(s, n, {"a"}, false, 1);

  FrameRef fa = eventFrame("on a"), fx = eventFrame("on x/1"), fb = eventFrame("to all"), fs = eventFrame("to j2"),
           fu = eventFrame("to user 2 only");
  s.post(publishCmd("a", fa));
  s.post(publishCmd("x/1", fx));
  s.post(broadcastCmd(fb));
  s.post(sendCmd(j2, fs));
  s.post(broadcastCmd(fu, {2}));
  s.post(publishCmd("nobody", eventFrame("nobody")));
  ASSERT_TRUE(waitFor([&] { return sink_.jsCount() == 6; })) << sink_.jsCount();
  std::vector<JsDelivery> js = sink_.js();
  auto sorted = [](std::vector<uint64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  ASSERT_EQ(js.size(), 6u);
  EXPECT_EQ(js[0].bytes, "data: hello j1\n\n");
  EXPECT_EQ(js[0].frame, hello.get());
  EXPECT_EQ(js[0].ids, std::vector<uint64_t>{j1});
  EXPECT_EQ(js[1].frame, fa.get());  // the published frame itself, not a copy
  EXPECT_EQ(js[1].ids, std::vector<uint64_t>{j1});
  EXPECT_EQ(js[2].frame, fx.get());
  EXPECT_EQ(js[2].ids, std::vector<uint64_t>{j2});
  EXPECT_EQ(js[3].frame, fb.get());
  EXPECT_EQ(sorted(js[3].ids), sorted({j1, j2}));
  EXPECT_EQ(js[4].frame, fs.get());
  EXPECT_EQ(js[4].ids, std::vector<uint64_t>{j2});
  EXPECT_EQ(js[5].frame, fu.get());
  EXPECT_EQ(js[5].ids, std::vector<uint64_t>{j2});
  for (const JsDelivery& d : js) EXPECT_EQ(d.shard, s.index());

  const std::string want = std::string(kPlainHead) + "data: on a\n\n" + "data: to all\n\n";
  EXPECT_BYTES(want, readN(n.peer, want.size()).bytes);

  // The JS thread lost j1: reported with the reason it gave, then no more frames.
  s.post(idCmd(Command::Op::kDetach, j1, DisconnectReason::kError));
  s.post(publishCmd("a", eventFrame("after detach")));
  EXPECT_TRUE(sink_.waitReason(j1));
  EXPECT_EQ(sink_.reasonOf(j1), DisconnectReason::kError);
  EXPECT_READ(n.peer, "data: after detach\n\n");
  EXPECT_EQ(sink_.jsCount(), 6u);

  // Kick on a JS connection reports kicked at once.
  s.post(idCmd(Command::Op::kKick, j2));
  EXPECT_TRUE(sink_.waitReason(j2));
  EXPECT_EQ(sink_.reasonOf(j2), DisconnectReason::kKicked);
  EXPECT_EQ(s.counters().connections.load(), 1u);

  uint64_t j3 = reg_.acquire();
  s.post(attachJsCmd(j3, {"a"}));
  shutdownAndJoin(s);
  EXPECT_EQ(sink_.reasonOf(j3), DisconnectReason::kShutdown);
  EXPECT_EQ(sink_.reasonOf(idn), DisconnectReason::kShutdown);
  for (uint64_t id : {j1, j2, j3, idn}) EXPECT_EQ(sink_.reportsFor(id), 1u);
}

TEST_F(ShardTest, StreamPrefixGoesBeforeEveryEventButNotHeartbeats) {
  ShardOptions o = quietOptions();
  o.heartbeatMs = 40;
  Shard& s = startShard(o);
  SocketPair chunked = unixPair(), plain = unixPair(), other = unixPair();
  for (auto [pair, isChunked, prefix] :
       {std::tuple{&chunked, true, "id:C1\n"}, std::tuple{&plain, false, "id:P2\n"}, std::tuple{&other, false, ""}}) {
    Command c = adoptCmd(pair->shardEnd, reg_.acquire(), {"t"}, isChunked);
    c.prefix = prefix;
    s.post(std::move(c));
  }
  s.post(publishCmd("t", eventFrame("one", "e")));
  const std::string wantChunked = std::string(kChunkedHead) + chunk("id:C1\n") + chunk("event: e\ndata: one\n\n");
  EXPECT_BYTES(wantChunked, readN(chunked.peer, wantChunked.size()).bytes);
  const std::string wantPlain = std::string(kPlainHead) + "id:P2\nevent: e\ndata: one\n\n";
  EXPECT_BYTES(wantPlain, readN(plain.peer, wantPlain.size()).bytes);
  const std::string wantOther = std::string(kPlainHead) + "event: e\ndata: one\n\n";
  EXPECT_BYTES(wantOther, readN(other.peer, wantOther.size()).bytes);
  // Heartbeats (comments) go out without the id line.
  EXPECT_BYTES(": \n\n", readN(plain.peer, 4).bytes);
  EXPECT_BYTES(chunk(": \n\n"), readN(chunked.peer, chunk(": \n\n").size()).bytes);
  s.post(opCmd(Command::Op::kStop));
  s.join();
}

TEST_F(ShardTest, IdleAndLifetimeLimitsEndStreamsWithReasonTimeout) {
  ShardOptions o = quietOptions();
  o.closeTimeoutMs = 400;  // ticks every 100 ms
  Shard& s = startShard(o);
  SocketPair idle = unixPair(), busy = unixPair(), lifetime = unixPair(), forever = unixPair();
  auto adoptWith = [&](SocketPair& p, uint32_t idleMs, uint32_t lifetimeMs) {
    uint64_t id = reg_.acquire();
    Command c = adoptCmd(p.shardEnd, id, {"t"}, true);
    c.idleMs = idleMs;
    c.lifetimeMs = lifetimeMs;
    s.post(std::move(c));
    return id;
  };
  const auto start = Clock::now();
  uint64_t idIdle = adoptWith(idle, 300, 0);
  uint64_t idBusy = adoptWith(busy, 300, 0);
  uint64_t idLifetime = adoptWith(lifetime, 0, 700);
  uint64_t idForever = adoptWith(forever, 0, 0);
  // Events to `busy` (and `lifetime`) every 100 ms keep `busy` open past its idle limit.
  for (int i = 0; i < 9; ++i) {
    std::this_thread::sleep_for(100ms);
    s.post(sendCmd(idBusy, eventFrame("tick")));
    s.post(sendCmd(idLifetime, eventFrame("tick")));
  }
  ASSERT_TRUE(sink_.waitReason(idIdle));
  EXPECT_EQ(sink_.reasonOf(idIdle), DisconnectReason::kTimeout);
  ASSERT_TRUE(sink_.waitReason(idLifetime));
  EXPECT_EQ(sink_.reasonOf(idLifetime), DisconnectReason::kTimeout);
  EXPECT_GE(Clock::now() - start, 700ms);
  EXPECT_EQ(sink_.reportsFor(idBusy), 0u) << "events reset the idle clock";
  EXPECT_EQ(sink_.reportsFor(idForever), 0u);
  // A timed-out stream ends properly: head, its events, the last chunk, EOF.
  ReadResult r = readToEof(idle.peer);
  EXPECT_BYTES(std::string(kChunkedHead) + std::string(kTerminator), r.bytes);
  EXPECT_TRUE(r.eof);
  ReadResult rl = readToEof(lifetime.peer);
  EXPECT_TRUE(rl.eof);
  EXPECT_TRUE(rl.bytes.size() > kChunkedHead.size() + kTerminator.size());
  EXPECT_EQ(rl.bytes.substr(rl.bytes.size() - kTerminator.size()), kTerminator);
  // Without events, `busy` times out too.
  ASSERT_TRUE(sink_.waitReason(idBusy));
  EXPECT_EQ(sink_.reasonOf(idBusy), DisconnectReason::kTimeout);
  EXPECT_EQ(sink_.reportsFor(idForever), 0u);
  shutdownAndJoin(s);
  EXPECT_EQ(sink_.reasonOf(idForever), DisconnectReason::kShutdown);
}

TEST_F(ShardTest, JsConnectionsTimeOutToo) {
  ShardOptions o = quietOptions();
  o.closeTimeoutMs = 200;
  Shard& s = startShard(o);
  uint64_t id = reg_.acquire();
  Command c = attachJsCmd(id, {"t"});
  c.idleMs = 150;
  s.post(std::move(c));
  ASSERT_TRUE(sink_.waitReason(id));
  EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kTimeout);
  shutdownAndJoin(s);
  EXPECT_EQ(sink_.reportsFor(id), 1u);
}

TEST_F(ShardTest, HeartbeatCommentsArriveOnIdleConnections) {
  ShardOptions o = quietOptions();
  o.heartbeatMs = 50;
  Shard& s = startShard(o);
  SocketPair a = unixPair(), b = tcpPair();
  adopt(s, a, {}, false);
  adopt(s, b, {}, true);
  uint64_t j = reg_.acquire();
  s.post(attachJsCmd(j, {}));
  const std::string wantA = std::string(kPlainHead) + std::string(kHeartbeat) + std::string(kHeartbeat);
  const std::string wantB = std::string(kChunkedHead) + chunk(kHeartbeat) + chunk(kHeartbeat);
  auto t0 = Clock::now();
  EXPECT_BYTES(wantA, readN(a.peer, wantA.size(), 5000ms).bytes);
  EXPECT_BYTES(wantB, readN(b.peer, wantB.size(), 5000ms).bytes);
  // Two heartbeats take at least ~two periods.
  EXPECT_GE(Clock::now() - t0, 90ms);
  ASSERT_TRUE(waitFor([&] { return sink_.jsCount() >= 2; }));
  for (const JsDelivery& d : sink_.js()) {
    EXPECT_EQ(d.bytes, kHeartbeat);
    EXPECT_EQ(d.ids, std::vector<uint64_t>{j});
  }
  EXPECT_GE(s.counters().heartbeats.load(), 6u);
  EXPECT_EQ(s.counters().delivered.load(), 0u);  // heartbeats are not events
  // The comment is a comment to an SSE parser: no event.
  SseParser parser;
  parser.feed(std::string(kHeartbeat) + std::string(kHeartbeat));
  EXPECT_TRUE(parser.events().empty());
  EXPECT_EQ(parser.comments().size(), 2u);
  shutdownAndJoin(s);
}

TEST_F(ShardTest, PeerCloseReportsClientAndClosesTheFd) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = adopt(s, p, {"t"}, true);
  expectHead(p.peer, true);
  closePeer(p.peer);
  ASSERT_TRUE(sink_.waitReason(id));
  EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kClient);
  EXPECT_TRUE(waitFor([&] { return fdIsClosed(p.shardEnd); })) << "the shard did not close its fd";
  EXPECT_EQ(s.counters().connections.load(), 0u);
  EXPECT_EQ(s.counters().subscriptions.load(), 0u);
  // Later commands for the id are dropped.
  s.post(sendCmd(id, eventFrame("late")));
  s.post(idCmd(Command::Op::kKick, id));
  shutdownAndJoin(s);
  EXPECT_EQ(sink_.reportsFor(id), 1u);
}

TEST_F(ShardTest, TcpPeerCloseHalfCloseAndResetReportClient) {
  Shard& s = startShard();
  SocketPair closing = tcpPair(), halfClosing = tcpPair(), resetting = tcpPair();
  uint64_t idClose = adopt(s, closing, {"t"}, true);
  uint64_t idHalf = adopt(s, halfClosing, {"t"}, true);
  uint64_t idReset = adopt(s, resetting, {"t"}, true);
  expectHead(closing.peer, true);
  expectHead(halfClosing.peer, true);
  expectHead(resetting.peer, true);

  closePeer(closing.peer);                // FIN
  ::shutdown(halfClosing.peer, SHUT_WR);  // FIN, still reading: RDHUP
  struct linger lg = {1, 0};
  ::setsockopt(resetting.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  closePeer(resetting.peer);  // RST

  for (uint64_t id : {idClose, idHalf, idReset}) {
    ASSERT_TRUE(sink_.waitReason(id)) << id;
    EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kClient) << id;
  }
  EXPECT_TRUE(waitFor([&] {
    return fdIsClosed(closing.shardEnd) && fdIsClosed(halfClosing.shardEnd) && fdIsClosed(resetting.shardEnd);
  }));
  ReadResult half = readToEof(halfClosing.peer);
  EXPECT_TRUE(half.eof || half.err == ECONNRESET);
  s.post(publishCmd("t", eventFrame("nobody left")));
  shutdownAndJoin(s);
  for (uint64_t id : {idClose, idHalf, idReset}) EXPECT_EQ(sink_.reportsFor(id), 1u);
}

TEST_F(ShardTest, PeerThatNeverReadsIsClosedAsSlow) {
  ShardOptions o = quietOptions();
  o.maxQueueBytes = 16 * 1024;
  o.sndbufBytes = 4096;
  Shard& s = startShard(o);
  SocketPair u = unixPair(), t = tcpPair(), fine = unixPair();
  uint64_t idu = adopt(s, u, {"t"}, true);
  uint64_t idt = adopt(s, t, {"t"}, false);
  uint64_t idFine = adopt(s, fine, {"other"}, false);
  std::string wantU(kChunkedHead), wantT(kPlainHead);
  const std::string pad(1000, 'p');
  for (int i = 0; i < 400 && !(sink_.reasonOf(idu) && sink_.reasonOf(idt)); ++i) {
    FrameRef f = eventFrame(std::to_string(i) + pad);
    wantU += chunk(f->view());
    wantT += std::string(f->view());
    s.post(publishCmd("t", std::move(f)));
    if (i % 16 == 15) std::this_thread::sleep_for(1ms);  // let the kernel buffers fill first
  }
  ASSERT_TRUE(sink_.waitReason(idu));
  ASSERT_TRUE(sink_.waitReason(idt));
  EXPECT_EQ(sink_.reasonOf(idu), DisconnectReason::kSlow);
  EXPECT_EQ(sink_.reasonOf(idt), DisconnectReason::kSlow);
  EXPECT_TRUE(waitFor([&] { return fdIsClosed(u.shardEnd) && fdIsClosed(t.shardEnd); }));
  EXPECT_EQ(s.counters().slow.load(), 2u);
  // What did arrive is an exact prefix of the stream; then the end (EOF, or
  // RST on TCP: the slow close is abortive).
  ReadResult ru = readToEof(u.peer), rt = readToEof(t.peer);
  EXPECT_TRUE(ru.eof || ru.err == ECONNRESET);
  EXPECT_TRUE(rt.eof || rt.err == ECONNRESET);
  EXPECT_LE(ru.bytes.size(), wantU.size());
  EXPECT_BYTES(wantU.substr(0, ru.bytes.size()), ru.bytes);
  EXPECT_LE(rt.bytes.size(), wantT.size());
  EXPECT_BYTES(wantT.substr(0, rt.bytes.size()), rt.bytes);
  EXPECT_FALSE(sink_.reasonOf(idFine));
  shutdownAndJoin(s);
  EXPECT_EQ(sink_.reasonOf(idFine), DisconnectReason::kShutdown);
  EXPECT_EQ(s.counters().queueBytes.load(), 0u);
}

TEST_F(ShardTest, SlowSubscribersClosedDuringOneFanOutDoNotDisturbTheOthers) {
  // Several subscribers of one topic overflow in the same publish and are
  // closed while that topic's subscriber list is being walked; the readers
  // interleaved with them in the same list must still get every frame.
  ShardOptions o = quietOptions();
  o.maxQueueBytes = 32 * 1024;
  o.sndbufBytes = 4096;
  Shard& s = startShard(o);
  std::vector<SocketPair> stalled, readers;
  std::vector<uint64_t> stalledIds, readerIds;
  for (int i = 0; i < 9; ++i) {
    SocketPair p = unixPair();
    bool reads = i % 3 == 1;
    uint64_t id = adopt(s, p, {"news", "news/*"}, false);
    (reads ? readers : stalled).push_back(p);
    (reads ? readerIds : stalledIds).push_back(id);
  }
  for (const SocketPair& r : readers) expectHead(r.peer, false);
  const std::string pad(3000, 'q');
  for (int i = 0; i < 64; ++i) {
    FrameRef f = eventFrame(std::to_string(i) + pad);
    const std::string want(f->view());
    s.post(publishCmd(i % 2 ? "news" : "news/x", std::move(f)));
    // The readers keep up frame by frame; the stalled ones fill up together.
    for (size_t r = 0; r < readers.size(); ++r) {
      std::string got = readN(readers[r].peer, want.size()).bytes;
      ASSERT_TRUE(got == want) << "reader " << r << " frame " << i;
    }
  }
  for (uint64_t id : stalledIds) {
    ASSERT_TRUE(sink_.waitReason(id));
    EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kSlow);
  }
  EXPECT_EQ(s.counters().slow.load(), stalledIds.size());
  EXPECT_EQ(s.counters().subscriptions.load(), 2 * readers.size());
  s.post(publishCmd("news", eventFrame("after")));
  for (const SocketPair& r : readers) EXPECT_READ(r.peer, "data: after\n\n");
  shutdownAndJoin(s);
  for (size_t r = 0; r < readers.size(); ++r) {
    EXPECT_TRUE(readToEof(readers[r].peer).eof);
    EXPECT_EQ(sink_.reasonOf(readerIds[r]), DisconnectReason::kShutdown);
  }
}

TEST_F(ShardTest, KickSendsWhatIsQueuedThenTheLastChunkThenEof) {
  Shard& s = startShard();
  SocketPair u = unixPair(), t = tcpPair(), plain = unixPair();
  uint64_t idu = adopt(s, u, {"t"}, true);
  uint64_t idt = adopt(s, t, {"t"}, true);
  uint64_t idp = adopt(s, plain, {"t"}, false);
  std::vector<Command> batch;
  batch.push_back(publishCmd("t", eventFrame("one")));
  batch.push_back(publishCmd("t", eventFrame("two")));
  batch.push_back(idCmd(Command::Op::kKick, idu));
  batch.push_back(idCmd(Command::Op::kKick, idt));
  batch.push_back(idCmd(Command::Op::kKick, idp));
  batch.push_back(publishCmd("t", eventFrame("after kick")));
  batch.push_back(sendCmd(idu, eventFrame("after kick")));
  s.post(batch);
  const std::string chunked =
      std::string(kChunkedHead) + chunk("data: one\n\n") + chunk("data: two\n\n") + std::string(kTerminator);
  for (const SocketPair* p : {&u, &t}) {
    ReadResult r = readToEof(p->peer);
    EXPECT_BYTES(chunked, r.bytes);
    EXPECT_TRUE(r.eof);
  }
  ReadResult rp = readToEof(plain.peer);
  EXPECT_BYTES(std::string(kPlainHead) + "data: one\n\ndata: two\n\n", rp.bytes);
  EXPECT_TRUE(rp.eof);
  for (uint64_t id : {idu, idt, idp}) {
    ASSERT_TRUE(sink_.waitReason(id));
    EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kKicked);
  }
  EXPECT_TRUE(waitFor([&] { return fdIsClosed(u.shardEnd) && fdIsClosed(t.shardEnd) && fdIsClosed(plain.shardEnd); }));

  // The slot may be reused at once; the old id stays dead.
  ASSERT_TRUE(reg_.release(idu));
  SocketPair again = unixPair();
  uint64_t idAgain = adopt(s, again, {"t"}, false);
  EXPECT_EQ(Registry::slotOf(idAgain), Registry::slotOf(idu));
  s.post(sendCmd(idu, eventFrame("to the old id")));
  s.post(idCmd(Command::Op::kKick, idu));
  s.post(sendCmd(idAgain, eventFrame("to the new id")));
  const std::string want = std::string(kPlainHead) + "data: to the new id\n\n";
  EXPECT_BYTES(want, readN(again.peer, want.size()).bytes);
  shutdownAndJoin(s);
  for (uint64_t id : {idu, idt, idp, idAgain}) EXPECT_EQ(sink_.reportsFor(id), 1u) << id;
  EXPECT_EQ(sink_.reasonOf(idAgain), DisconnectReason::kShutdown);
}

TEST_F(ShardTest, KickedPeerThatReadsSlowlyStillGetsEverything) {
  ShardOptions o = quietOptions();
  o.sndbufBytes = 4096;
  o.maxQueueBytes = 4 << 20;
  Shard& s = startShard(o);
  SocketPair t = tcpPair();
  uint64_t id = adopt(s, t, {"t"}, true);
  std::vector<Command> batch;
  std::string want(kChunkedHead);
  for (int i = 0; i < 300; ++i) {
    FrameRef f = eventFrame(std::to_string(i) + std::string(2000, 'k'));
    want += chunk(f->view());
    batch.push_back(publishCmd("t", std::move(f)));
  }
  batch.push_back(idCmd(Command::Op::kKick, id));
  s.post(batch);
  ASSERT_TRUE(sink_.waitReason(id));  // reported at once, before the bytes are out
  EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kKicked);
  want += kTerminator;
  ReadResult r = readToEof(t.peer);
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.bytes.size(), want.size());
  EXPECT_TRUE(r.bytes == want);
  EXPECT_TRUE(waitFor([&] { return fdIsClosed(t.shardEnd); }));
  shutdownAndJoin(s);
  EXPECT_EQ(sink_.reportsFor(id), 1u);
}

TEST_F(ShardTest, KickedPeerThatNeverReadsIsReapedAfterCloseTimeout) {
  ShardOptions o = quietOptions();
  o.sndbufBytes = 4096;
  o.maxQueueBytes = 4 << 20;
  o.closeTimeoutMs = 200;
  Shard& s = startShard(o);
  SocketPair t = tcpPair();
  uint64_t id = adopt(s, t, {"t"}, true);
  std::vector<Command> batch;
  std::string want(kChunkedHead);
  for (int i = 0; i < 200; ++i) {
    FrameRef f = eventFrame(std::to_string(i) + std::string(2000, 'r'));
    want += chunk(f->view());
    batch.push_back(publishCmd("t", std::move(f)));
  }
  batch.push_back(idCmd(Command::Op::kKick, id));
  s.post(batch);
  ASSERT_TRUE(sink_.waitReason(id));
  auto t0 = Clock::now();
  EXPECT_TRUE(waitFor([&] { return fdIsClosed(t.shardEnd); })) << "the stalled kicked connection was never reaped";
  EXPECT_GE(Clock::now() - t0, 100ms);
  EXPECT_TRUE(waitFor([&] { return s.counters().queueBytes.load() == 0; }));
  ReadResult r = readToEof(t.peer);
  EXPECT_TRUE(r.eof || r.err == ECONNRESET);
  EXPECT_LT(r.bytes.size(), want.size());
  EXPECT_TRUE(want.compare(0, r.bytes.size(), r.bytes) == 0) << "not a prefix of the stream";
  shutdownAndJoin(s);
  EXPECT_EQ(sink_.reportsFor(id), 1u);
}

int intOption(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, level, name, &v, &len) != 0) return -1000 - errno;
  return v;
}

TEST_F(ShardTest, AdoptedTcpSocketsGetKeepAliveAndUserTimeout) {
  struct Case {
    uint32_t keepAliveMs, userTimeoutMs;
    int keepAlive, idle, interval, count, userTimeout;  // what getsockopt must read back
  };
  const ShardOptions defaults;
  const Case cases[] = {
      {defaults.keepAliveMs, defaults.tcpUserTimeoutMs, 1, 30, 10, Shard::kKeepAliveProbes, 60000},
      {9000, 4500, 1, 9, 3, Shard::kKeepAliveProbes, 4500},
      {1500, 1, 1, 2, 1, Shard::kKeepAliveProbes, 1},  // seconds round up; the interval is at least 1 s
      {0, 0, 0, -1, -1, -1, 0},                        // 0: the kernel's defaults, keepalive off
  };
  for (const Case& c : cases) {
    ShardOptions o = quietOptions();
    o.keepAliveMs = c.keepAliveMs;
    o.tcpUserTimeoutMs = c.userTimeoutMs;
    Shard& s = startShard(o);
    SocketPair t = tcpPair();
    // The same socket through a second fd: the shard owns and closes t.shardEnd.
    int probe = ::fcntl(t.shardEnd, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(probe, 0);
    uint64_t id = adopt(s, t, {"t"}, true);
    expectHead(t.peer, true);  // adopted: the options are set before the head is written
    SCOPED_TRACE(testing::Message() << "keepAliveMs " << c.keepAliveMs << ", tcpUserTimeoutMs " << c.userTimeoutMs);
    EXPECT_EQ(intOption(probe, SOL_SOCKET, SO_KEEPALIVE), c.keepAlive);
#ifdef TCP_USER_TIMEOUT
    EXPECT_EQ(intOption(probe, IPPROTO_TCP, TCP_USER_TIMEOUT), c.userTimeout);
#endif
    if (c.keepAlive) {
#ifdef TCP_KEEPIDLE
      EXPECT_EQ(intOption(probe, IPPROTO_TCP, TCP_KEEPIDLE), c.idle);
#endif
      EXPECT_EQ(intOption(probe, IPPROTO_TCP, TCP_KEEPINTVL), c.interval);
      EXPECT_EQ(intOption(probe, IPPROTO_TCP, TCP_KEEPCNT), c.count);
    }
    ::close(probe);
    shutdownAndJoin(s);
    EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kShutdown);
  }
}

#ifdef TCP_USER_TIMEOUT
// A peer that stops reading shuts its window; the kernel then probes it and
// it answers, so it never looks dead and, with the kernel's defaults, holds
// its connection until maxQueueBytes is reached (here: never). With
// tcpUserTimeoutMs the kernel gives up once the window stayed shut that long
// (Linux >= 5.11 counts zero-window probes against TCP_USER_TIMEOUT), the
// same path that cuts a peer which vanished with data in flight.
TEST_F(ShardTest, PeerWhoseWindowStaysShutIsCutAfterTcpUserTimeout) {
  ShardOptions o = quietOptions();
  o.maxQueueBytes = 64 << 20;
  o.sndbufBytes = 4096;
  o.keepAliveMs = 0;
  ShardOptions cut = o;
  cut.tcpUserTimeoutMs = 300;
  ShardOptions kept = o;
  kept.tcpUserTimeoutMs = 0;
  Shard& sCut = startShard(cut);
  Shard& sKept = startShard(kept);
  SocketPair a = tcpPair(4096), b = tcpPair(4096);
  uint64_t ida = adopt(sCut, a, {"t"}, true);
  uint64_t idb = adopt(sKept, b, {"t"}, true);
  expectHead(a.peer, true);
  expectHead(b.peer, true);
  // Far more than both socket buffers hold; neither peer reads again.
  for (Shard* s : {&sCut, &sKept}) {
    std::vector<Command> batch;
    for (int i = 0; i < 200; ++i) batch.push_back(publishCmd("t", eventFrame(std::string(4000, 'w'))));
    s->post(batch);
  }
  const auto t0 = Clock::now();
  ASSERT_TRUE(sink_.waitReason(ida)) << "the stalled peer was never cut";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_EQ(sink_.reasonOf(ida), DisconnectReason::kClient);  // ETIMEDOUT: the peer is gone as far as TCP knows
  EXPECT_LT(took.count(), 5000) << "cut after " << took.count() << " ms";
  EXPECT_TRUE(waitFor([&] { return fdIsClosed(a.shardEnd); }));
  std::printf("[ INFO     ] stalled peer cut %lld ms after the last publish (tcpUserTimeoutMs 300)\n",
              static_cast<long long>(took.count()));
  // The same peer without the option is still held.
  EXPECT_FALSE(sink_.reasonOf(idb).has_value());
  EXPECT_GT(sKept.counters().queueBytes.load(), 0u);
  sKept.post(opCmd(Command::Op::kStop));
  ASSERT_TRUE(waitFor([&] { return sink_.stopped(sKept.index()) == 1; }));
  shutdownAndJoin(sCut);
  EXPECT_EQ(sink_.reportsFor(ida), 1u);
  EXPECT_EQ(sink_.reportsFor(idb), 1u);
}
#endif

TEST_F(ShardTest, ShutdownFlushesEverythingEndsEveryBodyAndStopsOnce) {
  Shard& s = startShard();
  struct Peer {
    SocketPair pair;
    bool chunked;
    uint64_t id;
    std::string want;
  };
  std::vector<Peer> peers;
  for (int i = 0; i < 6; ++i) {
    Peer p;
    p.pair = i % 2 ? tcpPair() : unixPair();
    p.chunked = i % 3 != 2;
    p.id = adopt(s, p.pair, {"t"}, p.chunked);
    p.want = p.chunked ? std::string(kChunkedHead) : std::string(kPlainHead);
    peers.push_back(std::move(p));
  }
  uint64_t js = reg_.acquire();
  s.post(attachJsCmd(js, {"t"}));
  for (int i = 0; i < 10; ++i) {
    FrameRef f = eventFrame("early " + std::to_string(i));
    for (Peer& p : peers) p.want += wire(f->view(), p.chunked);
    s.post(publishCmd("t", std::move(f)));
  }
  // The last frames travel in the same batch as the shutdown, and an adopt
  // queued behind it is refused with reason "shutdown".
  SocketPair late = unixPair();
  uint64_t lateId = reg_.acquire();
  std::vector<Command> batch;
  FrameRef last = eventFrame("last");
  for (Peer& p : peers) p.want += wire(last->view(), p.chunked) + (p.chunked ? std::string(kTerminator) : "");
  batch.push_back(publishCmd("t", std::move(last)));
  batch.push_back(opCmd(Command::Op::kShutdown));
  batch.push_back(adoptCmd(late.shardEnd, lateId, {"t"}, true));
  batch.push_back(publishCmd("t", eventFrame("after shutdown")));
  batch.push_back(opCmd(Command::Op::kShutdown));  // twice is harmless
  s.post(batch);

  for (Peer& p : peers) {
    ReadResult r = readToEof(p.pair.peer);
    EXPECT_BYTES(p.want, r.bytes);
    EXPECT_TRUE(r.eof);
  }
  ReadResult rl = readToEof(late.peer);
  EXPECT_EQ(rl.bytes, "");
  EXPECT_TRUE(rl.eof);
  ASSERT_TRUE(waitFor([&] { return sink_.stopped(s.index()) >= 1; }));
  s.join();
  EXPECT_EQ(sink_.stopped(s.index()), 1);
  for (Peer& p : peers) {
    EXPECT_EQ(sink_.reasonOf(p.id), DisconnectReason::kShutdown);
    EXPECT_EQ(sink_.reportsFor(p.id), 1u);
    EXPECT_TRUE(fdIsClosed(p.pair.shardEnd));
  }
  EXPECT_EQ(sink_.reasonOf(js), DisconnectReason::kShutdown);
  EXPECT_EQ(sink_.reasonOf(lateId), DisconnectReason::kShutdown);
  EXPECT_EQ(sink_.reportsFor(lateId), 1u);
  EXPECT_EQ(sink_.disconnects().size(), peers.size() + 2);
  EXPECT_TRUE(fdIsClosed(late.shardEnd));

  // After the loop ended: an adopt is refused and its fd closed (no leak).
  SocketPair after = unixPair();
  s.post(adoptCmd(after.shardEnd, reg_.acquire(), {"t"}, true));
  EXPECT_TRUE(fdIsClosed(after.shardEnd));
  ReadResult ra = readToEof(after.peer);
  EXPECT_TRUE(ra.eof);
  EXPECT_EQ(ra.bytes, "");
  std::vector<Command> afterBatch;
  SocketPair after2 = unixPair();
  afterBatch.push_back(adoptCmd(after2.shardEnd, reg_.acquire(), {}, false));
  afterBatch.push_back(publishCmd("t", eventFrame("dropped")));
  s.post(afterBatch);
  EXPECT_TRUE(afterBatch.empty());
  EXPECT_TRUE(fdIsClosed(after2.shardEnd));
  EXPECT_EQ(sink_.stopped(s.index()), 1);
}

TEST_F(ShardTest, ShutdownWaitsForASlowReaderAndReapsAStalledOne) {
  ShardOptions o = quietOptions();
  o.sndbufBytes = 4096;
  o.maxQueueBytes = 4 << 20;
  o.closeTimeoutMs = 1500;
  Shard& s = startShard(o);
  SocketPair reading = tcpPair(), stalled = tcpPair();
  adopt(s, reading, {"t"}, true);
  adopt(s, stalled, {"t"}, true);
  std::vector<Command> batch;
  std::string want(kChunkedHead);
  for (int i = 0; i < 100; ++i) {
    FrameRef f = eventFrame(std::to_string(i) + std::string(1000, 's'));
    want += chunk(f->view());
    batch.push_back(publishCmd("t", std::move(f)));
  }
  want += kTerminator;
  batch.push_back(opCmd(Command::Op::kShutdown));
  s.post(batch);
  // Read the first stream in small steps, well within the close timeout.
  std::string got;
  ReadResult r;
  while (!(r = readN(reading.peer, 4096, 2000ms)).bytes.empty()) got += r.bytes;
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
  EXPECT_TRUE(r.eof);
  ASSERT_TRUE(waitFor([&] { return sink_.stopped(s.index()) == 1; })) << "stalled peer kept the shard alive";
  s.join();
  ReadResult rs = readToEof(stalled.peer);
  EXPECT_TRUE(rs.eof || rs.err == ECONNRESET);
  EXPECT_TRUE(want.compare(0, rs.bytes.size(), rs.bytes) == 0);
  EXPECT_TRUE(fdIsClosed(stalled.shardEnd));
}

TEST_F(ShardTest, StopClosesEverythingAtOnce) {
  Shard& s = startShard();
  SocketPair a = unixPair(), b = tcpPair();
  uint64_t ida = adopt(s, a, {"t"}, true);
  uint64_t idb = adopt(s, b, {"t"}, true);
  uint64_t js = reg_.acquire();
  s.post(attachJsCmd(js, {"t"}));
  expectHead(a.peer, true);
  expectHead(b.peer, true);
  SocketPair late = unixPair();
  uint64_t lateId = reg_.acquire();
  std::vector<Command> batch;
  batch.push_back(opCmd(Command::Op::kStop));
  batch.push_back(adoptCmd(late.shardEnd, lateId, {"t"}, true));
  s.post(batch);
  ASSERT_TRUE(waitFor([&] { return sink_.stopped(s.index()) == 1; }));
  s.join();
  for (uint64_t id : {ida, idb, js, lateId}) {
    EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kShutdown) << id;
    EXPECT_EQ(sink_.reportsFor(id), 1u) << id;
  }
  for (const SocketPair* p : {&a, &b, &late}) {
    EXPECT_TRUE(fdIsClosed(p->shardEnd));
    ReadResult r = readToEof(p->peer);
    EXPECT_TRUE(r.eof || r.err == ECONNRESET);
  }
  // The adopt dropped unrun behind kStop is counted out too.
  EXPECT_EQ(s.queuedCommands(), 0u);
  EXPECT_EQ(s.queuedBytes(), 0u);
}

TEST_F(ShardTest, StopWithEndBodiesWritesWhatIsQueuedAndTheLastChunkWhereTheSocketTakesIt) {
  ShardOptions o = quietOptions();
  o.sndbufBytes = 4096;
  o.maxQueueBytes = 4 << 20;
  Shard& s = startShard(o);
  SocketPair reading = unixPair(), stalled = tcpPair(4096);
  uint64_t idr = adopt(s, reading, {"r"}, true);
  uint64_t ids = adopt(s, stalled, {"s"}, true);
  uint64_t js = reg_.acquire();
  s.post(attachJsCmd(js, {"r"}));
  expectHead(reading.peer, true);
  expectHead(stalled.peer, true);
  std::vector<Command> batch;
  std::string want;
  for (int i = 0; i < 3; ++i) {
    FrameRef f = eventFrame("last words " + std::to_string(i));
    want += chunk(f->view());
    batch.push_back(publishCmd("r", std::move(f)));
  }
  for (int i = 0; i < 200; ++i) batch.push_back(publishCmd("s", eventFrame(std::string(4000, 's'))));
  Command stop = opCmd(Command::Op::kStop);
  stop.flags |= Command::kEndBodies;
  batch.push_back(std::move(stop));
  s.post(batch);  // one drain: no loop turn flushes anything before the stop
  ASSERT_TRUE(waitFor([&] { return sink_.stopped(s.index()) == 1; }));
  s.join();
  ReadResult r = readToEof(reading.peer);
  EXPECT_TRUE(r.eof);
  EXPECT_BYTES(want + std::string(kTerminator), r.bytes);
  // The stalled one could not take it all: cut, never a clean end.
  ReadResult st = readToEof(stalled.peer);
  EXPECT_TRUE(st.eof || st.err == ECONNRESET);
  EXPECT_FALSE(st.bytes.size() >= kTerminator.size() &&
               st.bytes.compare(st.bytes.size() - kTerminator.size(), kTerminator.size(), kTerminator) == 0);
  for (uint64_t id : {idr, ids, js}) {
    EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kShutdown) << id;
    EXPECT_EQ(sink_.reportsFor(id), 1u) << id;
  }
  EXPECT_TRUE(fdIsClosed(reading.shardEnd));
  EXPECT_TRUE(fdIsClosed(stalled.shardEnd));
  EXPECT_EQ(s.queuedCommands(), 0u);
}

TEST_F(ShardTest, QueuedCommandsCountWhatIsPostedAndNotYetRun) {
  FrameRef f = eventFrame("x");
  const uint64_t size = f->size();
  Command send = sendCmd(1, f);
  EXPECT_EQ(Shard::bytesOf(send), size);
  EXPECT_EQ(Shard::bytesOf(opCmd(Command::Op::kKick)), 0u);
  Shard& s = startShard();
  // Held back behind a command that blocks the loop until the counts are read.
  std::atomic<bool> entered{false}, release{false};
  sink_.onJsDeliverHook = [&](uint32_t, const FrameRef&, const std::vector<uint64_t>&) {
    entered = true;
    while (!release.load()) std::this_thread::sleep_for(1ms);
  };
  uint64_t js = reg_.acquire();
  FrameRef first = eventFrame("blocks the loop");
  const uint64_t firstSize = first->size();
  s.post(attachJsCmd(js, {"t"}, 0, std::move(first)));
  ASSERT_TRUE(waitFor([&] { return entered.load(); }));  // the attach is running, still counted
  std::vector<Command> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(publishCmd("u", f));
  s.post(batch);
  s.post(broadcastCmd(f, {12345}));
  s.post(idCmd(Command::Op::kKick, 999));
  EXPECT_EQ(s.queuedCommands(), 13u);
  EXPECT_EQ(s.queuedBytes(), firstSize + 11 * size);
  release = true;
  EXPECT_TRUE(waitFor([&] { return s.queuedCommands() == 0 && s.queuedBytes() == 0; }))
      << s.queuedCommands() << " commands, " << s.queuedBytes() << " bytes still counted";
  shutdownAndJoin(s);
}

TEST_F(ShardTest, DestroyingARunningShardStopsItAndClosesItsFds) {
  auto s = std::make_unique<Shard>(7, quietOptions(), &sink_);
  ASSERT_EQ(s->start(), 0);
  SocketPair a = unixPair();
  uint64_t id = adopt(*s, a, {"t"}, false);
  expectHead(a.peer, false);
  s.reset();
  EXPECT_EQ(sink_.stopped(7), 1);
  EXPECT_EQ(sink_.reasonOf(id), DisconnectReason::kShutdown);
  EXPECT_TRUE(fdIsClosed(a.shardEnd));
  EXPECT_TRUE(readToEof(a.peer).eof);

  // Never started: the destructor has nothing to stop.
  { Shard idle(8, quietOptions(), &sink_); }
  EXPECT_EQ(sink_.stopped(8), 0);
}

TEST_F(ShardTest, ShardsAreIndependent) {
  Shard& s0 = startShard();
  Shard& s1 = startShard();
  SocketPair a = unixPair(), b = unixPair();
  adopt(s0, a, {"t"}, false);
  uint64_t idb = adopt(s1, b, {"t"}, false);
  FrameRef f = eventFrame("both");
  s0.post(publishCmd("t", f));
  s1.post(publishCmd("t", f));
  s0.post(sendCmd(idb, eventFrame("wrong shard")));  // idb lives on s1
  const std::string want = std::string(kPlainHead) + "data: both\n\n";
  EXPECT_BYTES(want, readN(a.peer, want.size()).bytes);
  EXPECT_BYTES(want, readN(b.peer, want.size()).bytes);
  EXPECT_EQ(readFor(a.peer, 30ms), "");
  shutdownAndJoin(s0);
  EXPECT_EQ(sink_.stopped(s1.index()), 0);
  s1.post(sendCmd(idb, eventFrame("still alive")));
  EXPECT_READ(b.peer, "data: still alive\n\n");
  shutdownAndJoin(s1);
}

// A write that races with the peer's close must fail with EPIPE, not kill the
// process with SIGPIPE: the shard must not depend on the embedder ignoring
// the signal (Node does; a plain C++ binary such as this suite or the
// benchmarks does not).
//
// The death-test style: "threadsafe" re-executes the binary, which a process
// that already ran tests with threads needs (the TSan step runs the whole
// suite in one process). Under ASan the re-executed child parses its flags in
// the uninstrumented libgtest with this binary's instrumented
// std::vector<std::string> code (_GLIBCXX_SANITIZE_VECTOR): a false
// container-overflow report. CTest runs each test in a process of its own, so
// "fast" (fork, no re-exec) is safe there, and is what ASan builds use.
#if defined(__SANITIZE_ADDRESS__)
constexpr const char* kDeathTestStyle = "fast";
#else
constexpr const char* kDeathTestStyle = "threadsafe";
#endif

TEST(ShardDeathTest, WritingToAVanishedPeerDoesNotRaiseSigpipe) {
  GTEST_FLAG_SET(death_test_style, kDeathTestStyle);
  EXPECT_EXIT(
      {
        ::signal(SIGPIPE, SIG_DFL);
        TestSink sink;
        Shard shard(0, quietOptions(), &sink);
        if (shard.start() != 0) std::_Exit(2);
        SocketPair p = makeUnixPair();
        ::close(p.peer);  // gone before the shard's first write
        std::vector<Command> batch;
        batch.push_back(adoptCmd(p.shardEnd, 1 << Registry::kSlotBits, {"t"}, true));
        batch.push_back(publishCmd("t", eventFrame("x")));
        shard.post(batch);
        bool reported = waitFor([&] { return sink.reasonOf(1 << Registry::kSlotBits).has_value(); }, 5000ms);
        shard.post(opCmd(Command::Op::kShutdown));
        shard.join();
        std::_Exit(reported && sink.reasonOf(1 << Registry::kSlotBits) == DisconnectReason::kClient ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ssefanout::test
