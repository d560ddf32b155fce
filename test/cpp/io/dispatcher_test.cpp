// Tests for Dispatcher: the JS-thread state of a hub, driven as the addon
// drives it, with real shards writing to socketpairs.
//
// Streams are adopted unchunked with an empty head, so a peer reads exactly
// the encoded frames (their encoding is sse_encoder_test's business). Every
// test checks at TearDown that Frame::liveCount() and /proc/self/fd are back
// to their values at SetUp. Waits are bounded (waitFor with a deadline).
//
// The helpers shared with the Shard tests (the libuv signal-pipe set-up,
// waitFor, openFdCount, fdIsClosed, readN, readFor, eventFrame and TestSink)
// come from shard_fixture.hpp; what is here is the Dispatcher's own: hub
// options, stream options, an Observer and the DispatcherTest fixture.
#include "dispatcher.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shard_fixture.hpp"
#include "sse_encoder.hpp"

namespace ssefanout::test {
namespace {

using namespace std::chrono_literals;

class TestObserver : public Dispatcher::Observer {
 public:
  void onForget(uint64_t id) override { forgotten.push_back(id); }
  void onDetached() override { ++detached; }
  std::vector<uint64_t> forgotten;
  int detached = 0;
};

std::string encoded(std::string_view data, std::optional<std::string_view> event = std::nullopt) {
  return std::string(eventFrame(data, event)->view());
}

EventFields event(std::string_view data) {
  EventFields ev;
  ev.data = data;
  return ev;
}

StreamOptions stream(std::vector<std::string> topics, std::optional<std::string> user = std::nullopt) {
  StreamOptions s;
  s.topics = std::move(topics);
  s.user = std::move(user);
  return s;
}

// Named apart from the fixture's quietOptions() (a ShardOptions).
HubOptions quietHubOptions(uint32_t threads = 1) {
  HubOptions o;
  o.threads = threads;
  o.shard.heartbeatMs = 0;  // no timer-driven bytes
  return o;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    frames0_ = Frame::liveCount();
    fds0_ = openFdCount();
  }

  void TearDown() override {
    d_.reset();  // stops and joins the shards
    for (int fd : peers_) ::close(fd);
    EXPECT_EQ(Frame::liveCount(), frames0_) << "frames leaked";
    EXPECT_EQ(openFdCount(), fds0_) << "fds leaked";
  }

  Dispatcher& start(const HubOptions& o = quietHubOptions()) {
    d_ = std::make_unique<Dispatcher>(o, &sink_);
    EXPECT_EQ(d_->start(), 0);
    return *d_;
  }

  // Adopts one end of a new socketpair; returns the id and sets *peer to the test's end.
  uint64_t adopt(const StreamOptions& s, int* peer) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peers_.insert(sv[1]);
    *peer = sv[1];
    uint64_t id = 0;
    EXPECT_EQ(d_->adopt(sv[0], "", false, s, &id), Status::kOk);
    return id;
  }

  // Closes the dispatcher the graceful way and waits for every shard.
  void closeAndJoin() {
    d_->close();
    const uint32_t shards = static_cast<uint32_t>(d_->shardCount());
    EXPECT_TRUE(waitFor([&] {
      for (uint32_t i = 0; i < shards; ++i) {
        if (sink_.stopped(i) != 1) return false;
      }
      return true;
    }));
    d_->joinShards();
  }

  // The bytes the sink was handed for one JS-transport connection, in order.
  std::string jsBytes(uint64_t id) const {
    std::string out;
    for (const JsDelivery& j : sink_.js()) {
      if (std::find(j.ids.begin(), j.ids.end(), id) != j.ids.end()) out += j.bytes;
    }
    return out;
  }

  TestSink sink_;
  std::unique_ptr<Dispatcher> d_;
  std::set<int> peers_;
  int64_t frames0_ = 0;
  int fds0_ = 0;
};

TEST_F(DispatcherTest, PublishBroadcastAndSendReachTheRightSockets) {
  Dispatcher& d = start(quietHubOptions(2));
  int a, b, c;
  const uint64_t ia = adopt(stream({"news"}), &a);
  const uint64_t ib = adopt(stream({"sport"}), &b);
  const uint64_t ic = adopt(stream({"news", "sport"}), &c);
  EXPECT_NE(ia, ib);
  EXPECT_NE(ib, ic);
  uint32_t sa = 9, sb = 9;
  EXPECT_EQ(d.shardOf(ia, &sa), Status::kOk);
  EXPECT_EQ(d.shardOf(ib, &sb), Status::kOk);
  EXPECT_NE(sa, sb) << "connections are spread over the shards";

  EXPECT_EQ(d.publish("news", event("n1"), nullptr), Status::kOk);
  EXPECT_EQ(d.publish("sport", event("s1"), nullptr), Status::kOk);
  EXPECT_EQ(d.broadcast(event("all"), nullptr), Status::kOk);
  EXPECT_EQ(d.send(ib, event("only-b")), Status::kOk);
  d.flush();

  const std::string wantA = encoded("n1") + encoded("all");
  const std::string wantB = encoded("s1") + encoded("all") + encoded("only-b");
  const std::string wantC = encoded("n1") + encoded("s1") + encoded("all");
  EXPECT_EQ(readN(a, wantA.size()).bytes, wantA);
  EXPECT_EQ(readN(b, wantB.size()).bytes, wantB);
  EXPECT_EQ(readN(c, wantC.size()).bytes, wantC);
  EXPECT_EQ(readFor(a, 50ms), "");
  EXPECT_EQ(d.stats().published, 4u);
}

TEST_F(DispatcherTest, UsersFilterRestrictsPublishAndBroadcast) {
  Dispatcher& d = start();
  int a, b, guest;
  adopt(stream({"t"}, "alice"), &a);
  adopt(stream({"t"}, "bob"), &b);
  adopt(stream({"t"}), &guest);
  EXPECT_EQ(d.stats().users, 2u);

  std::vector<std::string_view> alice{"alice", "nobody"};
  std::vector<std::string_view> nobody{"nobody"};
  EXPECT_EQ(d.publish("t", event("for-alice"), &alice), Status::kOk);
  EXPECT_EQ(d.broadcast(event("for-nobody"), &nobody), Status::kOk);  // reaches no one, still counted
  EXPECT_EQ(d.broadcast(event("end"), nullptr), Status::kOk);
  d.flush();

  const std::string wantA = encoded("for-alice") + encoded("end");
  EXPECT_EQ(readN(a, wantA.size()).bytes, wantA);
  EXPECT_EQ(readN(b, encoded("end").size()).bytes, encoded("end"));
  EXPECT_EQ(readN(guest, encoded("end").size()).bytes, encoded("end"));
  EXPECT_EQ(d.stats().published, 3u);
}

TEST_F(DispatcherTest, JsTransportConnectionsAreDeliveredThroughTheSink) {
  Dispatcher& d = start();
  uint64_t id = 0;
  StreamOptions s = stream({"t"});
  s.retryMs = 1500;
  EXPECT_EQ(d.attach(s, &id), Status::kOk);
  EXPECT_EQ(d.publish("t", event("x"), nullptr), Status::kOk);
  d.flush();
  EXPECT_TRUE(waitFor([&] { return jsBytes(id).find("data: x") != std::string::npos; }));
  EXPECT_EQ(jsBytes(id).rfind("retry:", 0), 0u) << "the retry frame comes first";
  EXPECT_EQ(d.detach(id, DisconnectReason::kError), Status::kOk);
  d.flush();
  ASSERT_TRUE(sink_.waitReason(id));
  EXPECT_EQ(*sink_.reasonOf(id), DisconnectReason::kError);
}

TEST_F(DispatcherTest, StreamIdPrefixesEveryEventOfAnAdoptedStream) {
  Dispatcher& d = start();
  int p;
  StreamOptions s = stream({"t"});
  s.streamId = "abc";
  adopt(s, &p);
  EXPECT_EQ(d.publish("t", event("x"), nullptr), Status::kOk);
  d.flush();
  const std::string want = "id:abc\n" + encoded("x");
  EXPECT_EQ(readN(p, want.size()).bytes, want);
}

TEST_F(DispatcherTest, KickEndsTheStreamAndForgetTellsTheObservers) {
  Dispatcher& d = start();
  TestObserver seen, gone;
  d.addObserver(&seen);
  d.addObserver(&gone);
  d.removeObserver(&gone);
  int p;
  const uint64_t id = adopt(stream({"t"}, "u"), &p);
  EXPECT_EQ(d.kick(id), Status::kOk);
  d.flush();
  EXPECT_TRUE(readN(p, SIZE_MAX).eof);
  ASSERT_TRUE(sink_.waitReason(id));
  EXPECT_EQ(*sink_.reasonOf(id), DisconnectReason::kKicked);

  // Until the report reaches the JS thread, the id is still live.
  EXPECT_TRUE(d.has(id));
  d.forget(id);
  EXPECT_FALSE(d.has(id));
  EXPECT_EQ(d.subscriptions(id), nullptr);
  EXPECT_EQ(d.stats().connections, 0u);
  EXPECT_EQ(d.stats().users, 0u);
  d.forget(id);  // a second time: nothing
  EXPECT_EQ(seen.forgotten, std::vector<uint64_t>{id});
  EXPECT_TRUE(gone.forgotten.empty());
  EXPECT_EQ(d.kick(id), Status::kUnknownConnection);

  d.removeObserver(&seen);
  d_.reset();
  EXPECT_EQ(seen.detached, 0);
}

TEST_F(DispatcherTest, ObserversStillRegisteredAreDetachedWhenTheDispatcherGoes) {
  start();
  TestObserver o;
  d_->addObserver(&o);
  d_.reset();
  EXPECT_EQ(o.detached, 1);
}

TEST_F(DispatcherTest, UnknownConnectionsAnswerUnknownConnection) {
  Dispatcher& d = start();
  for (uint64_t id : {uint64_t{0}, uint64_t{12345}}) {
    EXPECT_EQ(d.subscribe(id, {"t"}), Status::kUnknownConnection);
    EXPECT_EQ(d.unsubscribe(id, {"t"}), Status::kUnknownConnection);
    EXPECT_EQ(d.send(id, event("x")), Status::kUnknownConnection);
    EXPECT_EQ(d.kick(id), Status::kUnknownConnection);
    EXPECT_EQ(d.detach(id, DisconnectReason::kClient), Status::kUnknownConnection);
    EXPECT_EQ(d.checkConnection(id), Status::kUnknownConnection);
    uint32_t shard;
    EXPECT_EQ(d.shardOf(id, &shard), Status::kUnknownConnection);
    EXPECT_EQ(d.changeTopics(id, {}, {"t"}), Status::kUnknownConnection);
    EXPECT_EQ(d.sendFrame(id, eventFrame("x"), true), Status::kUnknownConnection);
    EXPECT_FALSE(d.has(id));
    EXPECT_EQ(d.subscriptions(id), nullptr);
  }
}

TEST_F(DispatcherTest, ClosedAnswersClosedAndClosesAdoptedFds) {
  Dispatcher& d = start();
  int p;
  const uint64_t id = adopt(stream({"t"}), &p);
  closeAndJoin();
  EXPECT_TRUE(d.closing());
  EXPECT_TRUE(readN(p, SIZE_MAX).eof);

  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  uint64_t fresh = 0;
  EXPECT_EQ(d.adopt(sv[0], "", false, stream({}), &fresh), Status::kClosed);
  EXPECT_TRUE(fdIsClosed(sv[0])) << "adopt takes the fd whatever it answers";
  ::close(sv[1]);
  EXPECT_EQ(d.attach(stream({}), &fresh), Status::kClosed);
  EXPECT_EQ(d.subscribe(id, {"u"}), Status::kClosed);
  EXPECT_EQ(d.unsubscribe(id, {"t"}), Status::kClosed);
  EXPECT_EQ(d.publish("t", event("x"), nullptr), Status::kClosed);
  EXPECT_EQ(d.broadcast(event("x"), nullptr), Status::kClosed);
  EXPECT_EQ(d.send(id, event("x")), Status::kClosed);
  EXPECT_EQ(d.kick(id), Status::kClosed);
  EXPECT_EQ(d.checkConnection(id), Status::kClosed);
  EXPECT_EQ(d.changeTopics(id, {}, {"u"}), Status::kClosed);
  EXPECT_EQ(d.sendFrame(id, eventFrame("x"), true), Status::kClosed);
  std::vector<Delivery> deliveries;
  EXPECT_EQ(d.publishMany(deliveries), Status::kClosed);
  d.close();  // idempotent
}

TEST_F(DispatcherTest, SubscribeIsAllOrNothingUnderTheCap) {
  HubOptions o = quietHubOptions();
  o.shard.maxSubscriptions = 3;
  Dispatcher& d = start(o);
  uint64_t id = 0;
  EXPECT_EQ(d.attach(stream({"a", "b", "c", "d"}), &id), Status::kTooManySubscriptions);
  EXPECT_EQ(d.attach(stream({"a", "a", "b", "b"}), &id), Status::kOk) << "duplicates count once";
  EXPECT_EQ(*d.subscriptions(id), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.subscribe(id, {"c", "d"}), Status::kTooManySubscriptions);
  EXPECT_EQ(*d.subscriptions(id), (std::vector<std::string>{"a", "b"})) << "nothing changed";
  EXPECT_EQ(d.subscribe(id, {"x", std::string("bad\n")}), Status::kInvalidTopic);
  EXPECT_EQ(d.subscribe(id, {""}), Status::kInvalidTopic);
  EXPECT_EQ(*d.subscriptions(id), (std::vector<std::string>{"a", "b"})) << "nothing changed";
  EXPECT_EQ(d.subscribe(id, {"b", "c", "c"}), Status::kOk);
  EXPECT_EQ(*d.subscriptions(id), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(d.unsubscribe(id, {"a", "zzz"}), Status::kOk);
  EXPECT_EQ(*d.subscriptions(id), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(d.attach(stream({std::string(kMaxTopicBytes + 1, 't')}), &id), Status::kInvalidTopic);
}

TEST_F(DispatcherTest, TooManyConnectionsIsRefusedAndTheFdClosed) {
  HubOptions o = quietHubOptions();
  o.maxConnections = 1;
  Dispatcher& d = start(o);
  uint64_t id = 0;
  EXPECT_EQ(d.attach(stream({}), &id), Status::kOk);
  uint64_t other = 0;
  EXPECT_EQ(d.attach(stream({}), &other), Status::kTooManyConnections);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_EQ(d.adopt(sv[0], "", false, stream({}), &other), Status::kTooManyConnections);
  EXPECT_TRUE(fdIsClosed(sv[0]));
  ::close(sv[1]);
  EXPECT_EQ(d.stats().connections, 1u);
}

TEST_F(DispatcherTest, InvalidFieldsAndDataTooLarge) {
  HubOptions o = quietHubOptions();
  o.shard.maxQueueBytes = 100;
  Dispatcher& d = start(o);
  int p;
  const uint64_t id = adopt(stream({"t"}), &p);
  const std::string big(100, 'x');
  EXPECT_EQ(d.publish("t", event(big), nullptr), Status::kDataTooLarge);
  EXPECT_EQ(d.broadcast(event(big), nullptr), Status::kDataTooLarge);
  EXPECT_EQ(d.send(id, event(big)), Status::kDataTooLarge);
  // What fits an empty queue with its framing goes.
  const std::string fits(100 - Dispatcher::kQueueFraming - encoded("").size(), 'x');
  EXPECT_EQ(d.publish("t", event(fits), nullptr), Status::kOk);
  EventFields badEvent = event("x");
  badEvent.event = "a\nb";
  EXPECT_EQ(d.publish("t", badEvent, nullptr), Status::kInvalidEvent);
  EventFields badId = event("x");
  badId.id = std::string_view("1\r", 2);
  EXPECT_EQ(d.send(id, badId), Status::kInvalidId);
  EXPECT_EQ(d.publish("", event("x"), nullptr), Status::kInvalidTopic);
  EXPECT_EQ(d.publish(std::string_view("a\0b", 3), event("x"), nullptr), Status::kInvalidTopic);
  EXPECT_EQ(d.stats().published, 1u) << "refused events are not counted";
  d.flush();
  EXPECT_EQ(readN(p, encoded(fits).size()).bytes, encoded(fits));
}

TEST_F(DispatcherTest, PendingBoundRefusesWithQueueFullAndPostsNothing) {
  HubOptions o = quietHubOptions();
  o.maxPendingCommands = 1;
  Dispatcher& d = start(o);
  int p;
  const uint64_t id = adopt(stream({"t"}), &p);
  d.flush();
  ASSERT_TRUE(waitFor([&] { return d.stats().pendingCommands == 0; }));

  // An empty queue takes one command whatever the bound; the next waits.
  EXPECT_EQ(d.publish("t", event("first"), nullptr), Status::kOk);
  EXPECT_EQ(d.stats().pendingCommands, 1u);
  EXPECT_EQ(d.publish("t", event("refused"), nullptr), Status::kQueueFull);
  EXPECT_EQ(d.broadcast(event("refused"), nullptr), Status::kQueueFull);
  EXPECT_EQ(d.send(id, event("refused")), Status::kQueueFull);
  EXPECT_EQ(d.sendFrame(id, eventFrame("refused"), false), Status::kQueueFull);
  std::vector<Delivery> many;
  many.push_back({std::string("\0x", 2), eventFrame("refused")});
  EXPECT_EQ(d.publishMany(many), Status::kQueueFull);
  EXPECT_EQ(d.sendFrame(id, eventFrame("exempt"), true), Status::kOk) << "an exempt frame is posted anyway";
  const DispatcherStats s = d.stats();
  EXPECT_EQ(s.queueFull, 5u);
  EXPECT_EQ(s.published, 2u);
  EXPECT_EQ(s.pendingCommands, 2u);
  ASSERT_EQ(s.threads.size(), 1u);
  EXPECT_EQ(s.threads[0].pendingCommands, 2u);
  EXPECT_GT(s.pendingBytes, 0u);
  d.flush();
  const std::string want = encoded("first") + encoded("exempt");
  EXPECT_EQ(readN(p, want.size()).bytes, want);
  EXPECT_EQ(readFor(p, 50ms), "");
}

TEST_F(DispatcherTest, ProtocolTopicsAndPublishManyReachEveryShard) {
  Dispatcher& d = start(quietHubOptions(2));
  int a, b, c;
  const uint64_t ia = adopt(stream({"app"}), &a);
  const uint64_t ib = adopt(stream({}), &b);
  adopt(stream({}), &c);
  const std::string g1("\0p:1", 4), g2("\0p:2", 4);
  EXPECT_EQ(d.changeTopics(ia, {}, {g1}), Status::kOk);
  EXPECT_EQ(d.changeTopics(ib, {}, {g1, g2}), Status::kOk);
  EXPECT_EQ(*d.subscriptions(ia), std::vector<std::string>{"app"}) << "internal topics stay out of the mirror";
  std::vector<Delivery> many;
  many.push_back({g1, eventFrame("one")});
  many.push_back({g2, eventFrame("two")});
  EXPECT_EQ(d.publishMany(many), Status::kOk);
  EXPECT_EQ(d.changeTopics(ib, {g2}, {}), Status::kOk);
  std::vector<Delivery> again;
  again.push_back({g2, eventFrame("gone")});
  EXPECT_EQ(d.publishMany(again), Status::kOk);
  EXPECT_EQ(d.broadcast(event("end"), nullptr), Status::kOk);
  d.countPublished();
  d.flush();
  const std::string wantA = encoded("one") + encoded("end");
  const std::string wantB = encoded("one") + encoded("two") + encoded("end");
  EXPECT_EQ(readN(a, wantA.size()).bytes, wantA);
  EXPECT_EQ(readN(b, wantB.size()).bytes, wantB);
  EXPECT_EQ(readN(c, encoded("end").size()).bytes, encoded("end"));
  EXPECT_EQ(d.stats().published, 4u);
}

TEST_F(DispatcherTest, StatsSumTheShards) {
  Dispatcher& d = start(quietHubOptions(3));
  int p[3];
  for (int& fd : p) adopt(stream({"t", "u"}, "user"), &fd);
  EXPECT_EQ(d.publish("t", event("x"), nullptr), Status::kOk);
  d.flush();
  for (int fd : p) EXPECT_EQ(readN(fd, encoded("x").size()).bytes, encoded("x"));
  ASSERT_TRUE(waitFor([&] { return d.stats().delivered == 3; }));
  const DispatcherStats s = d.stats();
  EXPECT_EQ(s.connections, 3u);
  EXPECT_EQ(s.users, 1u);
  EXPECT_EQ(s.subscriptions, 6u);
  EXPECT_EQ(s.published, 1u);
  ASSERT_EQ(s.threads.size(), 3u);
  uint64_t connections = 0;
  for (const ShardStats& t : s.threads) {
    EXPECT_EQ(t.connections, 1u);
    EXPECT_EQ(t.published, 1u) << "each shard ran the publish";
    connections += t.connections;
  }
  EXPECT_EQ(connections, 3u);
  EXPECT_GT(s.bytesWritten, 0u);
}

TEST_F(DispatcherTest, ThreadsAreClampedAndStopNowEndsEverything) {
  HubOptions o = quietHubOptions(0);
  Dispatcher& d = start(o);
  EXPECT_EQ(d.shardCount(), 1u);
  int p;
  adopt(stream({"t"}), &p);
  EXPECT_EQ(d.publish("t", event("last"), nullptr), Status::kOk);
  d.stopNow(true);  // process exit: what was batched still goes out
  EXPECT_TRUE(d.closing());
  const ReadResult r = readN(p, SIZE_MAX);
  EXPECT_EQ(r.bytes, encoded("last"));
  EXPECT_TRUE(r.eof);
}

}  // namespace
}  // namespace ssefanout::test
