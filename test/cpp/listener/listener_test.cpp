// Tests for the native listener (src/listener) driven without Node, over real
// loopback sockets, as the addon's wrap (src/addon/listener_wrap.cpp) drives
// it: listening sockets opened on the "JS thread", startTask posted to each
// shard with Dispatcher::postTask, batches of Accepted reaching a Sink on the
// shard threads, then Admission::admit (or refuse) and Dispatcher::flush() on
// the "JS thread". Here the test thread is that JS thread: it pumps the
// Sink's queue while it waits for what the clients read.
//
// Meant for the sanitizers too: CI runs it under TSan (.ci/run), ctest's asan
// preset under ASan+UBSan. Every test checks at TearDown that
// Frame::liveCount() and /proc/self/fd are back to their values at SetUp;
// waits are bounded (kWait) and a watchdog aborts a test that hangs (a stop
// that never ends would otherwise hold the suite until ctest's timeout).
//
// The helpers shared with the I/O tests (waitFor, openFdCount, TestSink: a
// ShardSink recording disconnects and stops, eventFrame, chunk, printable)
// come from io/shard_fixture.hpp.
#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "acceptor.hpp"
#include "admission.hpp"
#include "core.hpp"
#include "dispatcher.hpp"
#include "io/shard_fixture.hpp"
#include "sockets.hpp"

namespace ssefanout::test {
namespace {

using listener::Accepted;
using namespace std::chrono_literals;

constexpr uint32_t kShards = 2;
// What a whole test may take before the watchdog aborts the run.
constexpr auto kTestBudget = std::chrono::seconds(120);

// The acceptors' way to the test's "JS thread": batches wait here under a
// mutex (any thread) until take() moves them out, as ListenerWrap::Channel
// holds them for its thread-safe function.
class QueueSink : public listener::Sink {
 public:
  void onAccepted(std::vector<Accepted>&& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (Accepted& a : batch) queue_.push_back(std::move(a));
    cv_.notify_all();
  }
  void onClosed() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++closed_;
    cv_.notify_all();
  }
  // What arrived, after waiting at most `wait` for something to.
  std::vector<Accepted> take(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, wait, [&] { return !queue_.empty() || closed_ > 0; });
    std::vector<Accepted> out;
    for (Accepted& a : queue_) out.push_back(std::move(a));
    queue_.clear();
    return out;
  }
  int closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Accepted> queue_;  // guarded
  int closed_ = 0;              // guarded
};

// Aborts the process when a test outlives its budget: a stop that never
// ends fails loudly instead of holding the run.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds budget) {
    thread_ = std::thread([this, budget] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, budget, [&] { return done_; })) {
        std::fprintf(stderr, "listener_test: a test ran past %lld s\n", static_cast<long long>(budget.count()));
        std::abort();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// 127.0.0.1 as the listener keys it (IPv4-mapped IPv6).
listener::IpKey loopbackKey() {
  listener::IpKey k;
  k.bytes[10] = 0xff;
  k.bytes[11] = 0xff;
  k.bytes[12] = 127;
  k.bytes[15] = 1;
  return k;
}

std::string streamRequest(std::string_view topics) {
  return "GET /events?topics=" + std::string(topics) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

// A loopback client; its fd is non-blocking, read with drain().
struct Client {
  int fd = -1;
  std::string in;  // every byte read so far
  bool eof = false;
  int err = 0;  // errno of a failed read (ECONNRESET after an abortive close)
  bool ended() const { return eof || err != 0; }
  // The bytes after the response head ("" while the head is incomplete).
  size_t headEnd() const {
    size_t at = in.find("\r\n\r\n");
    return at == std::string::npos ? 0 : at + 4;
  }
  std::string body() const { return headEnd() ? in.substr(headEnd()) : std::string(); }
};

// Reads whatever the client has without blocking.
void drain(Client& c) {
  char buf[16384];
  while (!c.ended()) {
    ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) {
      c.in.append(buf, static_cast<size_t>(r));
    } else if (r == 0) {
      c.eof = true;
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN && errno != EWOULDBLOCK) c.err = errno;
      return;
    }
  }
}

bool sendAll(int fd, std::string_view bytes) {
  const auto deadline = Clock::now() + kWait;
  while (!bytes.empty()) {
    ssize_t w = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w > 0) {
      bytes.remove_prefix(static_cast<size_t>(w));
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, remainingMs(deadline)) <= 0) return false;
    } else {
      return false;
    }
  }
  return true;
}

class ListenerTest : public ::testing::Test {
 protected:
  enum class Verdict { kAdmit, kRefuse };

  void SetUp() override {
    watchdog_ = std::make_unique<Watchdog>(kTestBudget);
    frames0_ = Frame::liveCount();
    fds0_ = openFdCount();
  }

  void TearDown() override {
    dispatcher_.reset();   // stops the shards (and their acceptors) and joins them
    queueSink_.take(0ms);  // requests nobody admitted close with their Accepted
    admission_.reset();
    if (core_) {
      EXPECT_EQ(core_->addresses(), 0u) << "an IpTicket outlived its connection";
      core_->detachSink();
    }
    core_.reset();
    for (Client& c : clients_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    clients_.clear();
    EXPECT_EQ(Frame::liveCount(), frames0_) << "frames leaked";
    EXPECT_EQ(openFdCount(), fds0_) << "fds leaked";
    watchdog_.reset();
  }

  HubOptions hubOptions() {
    HubOptions o;
    o.threads = kShards;
    o.maxConnections = maxConnections_;
    o.shard.heartbeatMs = 0;  // no timer-driven bytes: a client reads exactly what was sent
    return o;
  }

  // Starts the hub and the listener, as ListenerWrap's constructor and
  // JS_listen do, its sockets planned for `somaxconn`; returns the port.
  uint16_t listen(const listener::Options& options, uint32_t somaxconn = 4096) {
    dispatcher_ = std::make_unique<Dispatcher>(hubOptions(), &shardSink_);
    EXPECT_EQ(dispatcher_->start(), 0);
    core_ = std::make_shared<listener::Core>(options, kShards, &queueSink_);
    admission_ = std::make_unique<listener::Admission>(core_, dispatcher_.get());
    std::vector<std::vector<int>> fds;
    uint16_t port = 0;
    int err = listener::openListeners(options, dispatcher_->options().shard, kShards,
                                      listener::planSockets(options.backlog, kShards, somaxconn), &fds, &port);
    EXPECT_EQ(err, 0) << "listen: " << std::strerror(-err);
    if (err < 0) return 0;
    core_->expectAcceptors(kShards);
    sockets_ = 0;
    for (const auto& list : fds) sockets_ += list.size();
    for (uint32_t i = 0; i < kShards; ++i) dispatcher_->postTask(i, listener::startTask(core_, std::move(fds[i])));
    port_ = port;
    return port;
  }

  static listener::Options listenerOptions() {
    listener::Options o;
    o.host = "127.0.0.1";
    o.port = 0;
    return o;
  }

  // One turn of the "JS thread": takes what the acceptors handed over
  // (waiting at most `wait` for it), admits or refuses each request, flushes
  // the commands to the shards, then forgets the streams the shards reported
  // closed (as the hub's wrap does when it hands a disconnect to JS).
  void pumpOnce(std::chrono::milliseconds wait) {
    std::vector<Accepted> batch = queueSink_.take(wait);
    for (Accepted& a : batch) {
      core_->taken(a.shard);  // as the wrap does when it takes a request: room for the next
      if (verdict_ == Verdict::kRefuse) {
        admission_->refuse(std::move(a), 403, "ERR_SSE_FORBIDDEN", "refused by the test");
        continue;
      }
      listener::Grant g;
      g.topics = std::move(a.topics);
      admission_->admit(std::move(a), std::move(g), &opened_);
    }
    if (!batch.empty() && !holdRoom_) admission_->resumeAcceptors();
    if (dispatcher_) dispatcher_->flush();
    std::vector<DisconnectReport> reports = shardSink_.disconnects();
    for (; forgotten_ < reports.size(); ++forgotten_) {
      if (dispatcher_) dispatcher_->forget(reports[forgotten_].id);
    }
  }

  // Pumps until pred() holds, at most `timeout`.
  template <typename Pred>
  bool pumpUntil(Pred pred, std::chrono::milliseconds timeout = kWait) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
      if (Clock::now() >= deadline) return pred();
      pumpOnce(2ms);
    }
    return true;
  }

  // A new client connected to the listener (non-blocking connect: EINPROGRESS
  // is fine, the kernel completes it from the backlog).
  Client& connectClient() {
    Client c;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_GE(c.fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    EXPECT_TRUE(rc == 0 || errno == EINPROGRESS) << "connect: " << std::strerror(errno);
    clients_.push_back(std::move(c));
    return clients_.back();
  }

  void closeClient(Client& c) {
    ::close(c.fd);
    c.fd = -1;
  }

  // Whether a blocking connect to the listener's port is refused (nobody listens).
  bool connectRefused() const {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::close(fd);
    return rc != 0 && err == ECONNREFUSED;
  }

  // n clients, each sending `bytes` once its connect completed.
  std::vector<Client*> connectAndSend(size_t n, std::string_view bytes) {
    std::vector<Client*> out;
    for (size_t i = 0; i < n; ++i) {
      Client& c = connectClient();
      out.push_back(&c);
      pollfd p{c.fd, POLLOUT, 0};
      EXPECT_EQ(::poll(&p, 1, static_cast<int>(kWait.count())), 1);
      EXPECT_TRUE(sendAll(c.fd, bytes));
    }
    return out;
  }

  // A client whose request was admitted: it has read the stream's head.
  Client& openStream(std::string_view topics) {
    Client& c = connectClient();
    EXPECT_TRUE(sendAll(c.fd, streamRequest(topics)));
    EXPECT_TRUE(pumpUntil([&] {
      drain(c);
      return c.headEnd() > 0 || c.ended();
    }));
    EXPECT_EQ(c.in.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << printable(c.in);
    return c;
  }

  // Every shard has reported onStopped (after Dispatcher::close()).
  void stormOf(size_t clients);
  std::chrono::milliseconds serveEightPastARoomOfOne(bool tellAcceptors);

  bool shardsStopped() const {
    for (uint32_t i = 0; i < kShards; ++i) {
      if (shardSink_.stopped(i) != 1) return false;
    }
    return true;
  }

  std::unique_ptr<Watchdog> watchdog_;
  TestSink shardSink_;
  QueueSink queueSink_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::shared_ptr<listener::Core> core_;
  std::unique_ptr<listener::Admission> admission_;
  std::deque<Client> clients_;  // a deque: references stay valid as it grows
  std::vector<uint64_t> opened_;
  size_t forgotten_ = 0;
  Verdict verdict_ = Verdict::kAdmit;
  uint32_t maxConnections_ = Registry::kMaxSlots;  // the hub's, set before listen()
  uint16_t port_ = 0;
  bool holdRoom_ = false;  // pumpOnce() does not tell paused acceptors (the sweep must)
  size_t sockets_ = 0;     // listening sockets opened, over all shards
  int64_t frames0_ = 0;
  int fds0_ = 0;
};

// kClients connect at once to the listener started; each gets its head, then
// exactly the one event published.
void ListenerTest::stormOf(size_t kClients) {
  std::vector<Client*> storm;
  for (size_t i = 0; i < kClients; ++i) storm.push_back(&connectClient());
  // Each request goes out once its connect completed.
  std::vector<bool> sent(kClients, false);
  size_t nSent = 0;
  const auto deadline = Clock::now() + kWait;
  while (nSent < kClients && Clock::now() < deadline) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < kClients; ++i) {
      if (sent[i]) continue;
      fds.push_back({storm[i]->fd, POLLOUT, 0});
      which.push_back(i);
    }
    ASSERT_GE(::poll(fds.data(), fds.size(), 100), 0);
    for (size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLOUT | POLLERR | POLLHUP))) continue;
      ASSERT_TRUE(sendAll(fds[k].fd, streamRequest("news"))) << "client " << which[k] << ": " << std::strerror(errno);
      sent[which[k]] = true;
      ++nSent;
    }
  }
  ASSERT_EQ(nSent, kClients);

  ASSERT_TRUE(pumpUntil([&] {
    bool all = true;
    for (Client* c : storm) {
      drain(*c);
      all = all && (c->headEnd() > 0 || c->ended());
    }
    return all;
  })) << opened_.size()
      << " streams opened";
  EXPECT_EQ(opened_.size(), kClients);
  EXPECT_EQ(admission_->opened(), kClients);
  EXPECT_EQ(core_->accepted.load(), kClients);
  EXPECT_EQ(core_->streams.load(), kClients);
  EXPECT_EQ(core_->pending.load(), 0u);
  for (size_t i = 0; i < kClients; ++i) {
    const Client& c = *storm[i];
    ASSERT_FALSE(c.ended()) << "client " << i << " was closed: " << printable(c.in);
    EXPECT_EQ(c.in.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "client " << i << ": " << printable(c.in);
    EXPECT_NE(c.in.find("content-type: text/event-stream\r\n"), std::string::npos) << "client " << i;
    EXPECT_NE(c.in.find("transfer-encoding: chunked\r\n"), std::string::npos) << "client " << i;
    EXPECT_EQ(c.body(), "") << "client " << i << ": bytes before any event";
  }

  EventFields ev;
  ev.data = "storm";
  ASSERT_EQ(dispatcher_->publish("news", ev, nullptr), Status::kOk);
  dispatcher_->flush();
  // One event per client, exactly its chunk: no more, no less.
  const std::string want = chunk(eventFrame("storm")->view());
  ASSERT_TRUE(pumpUntil([&] {
    bool all = true;
    for (Client* c : storm) {
      drain(*c);
      all = all && (c->body().size() >= want.size() || c->ended());
    }
    return all;
  }));
  for (Client* c : storm) drain(*c);  // anything sent after the event would be here by now
  size_t events = 0;
  for (size_t i = 0; i < kClients; ++i) {
    EXPECT_EQ(printable(storm[i]->body()), printable(want)) << "client " << i;
    if (storm[i]->body() == want) ++events;
  }
  EXPECT_EQ(events, kClients);
  EXPECT_EQ(dispatcher_->stats().delivered, kClients);
}

TEST_F(ListenerTest, AConnectStormOf200ClientsAllGetTheHeadThenTheEvent) {
  listen(listenerOptions());
  // The default backlog (16384) at somaxconn 4096: two sockets per shard.
  EXPECT_EQ(sockets_, kShards * 2);
  stormOf(200);
}

TEST_F(ListenerTest, SocketsPlannedPastSomaxconnShareThePortAndAllServe) {
  // A backlog of 512 where a socket holds 32: 8 per thread, the most.
  listener::Options o = listenerOptions();
  o.backlog = 512;
  o.maxConnectionsPerIp = 0;  // every client is 127.0.0.1
  listen(o, 32);
  EXPECT_EQ(sockets_, kShards * listener::kMaxSocketsPerThread);
  stormOf(300);
}

TEST(ListenerSocketPlan, EnoughSocketsForTheBacklogWithinTheBounds) {
  using listener::planSockets;
  auto plan = planSockets(16384, 2, 4096);
  EXPECT_EQ(plan.perThread, 2u);
  EXPECT_EQ(plan.backlog, 4096u);
  plan = planSockets(511, 2, 4096);
  EXPECT_EQ(plan.perThread, 1u);
  EXPECT_EQ(plan.backlog, 256u);
  plan = planSockets(16384, 2, 128);  // an old kernel's somaxconn: capped at 8 per thread
  EXPECT_EQ(plan.perThread, listener::kMaxSocketsPerThread);
  EXPECT_EQ(plan.backlog, 128u);
  plan = planSockets(1, 4, 4096);
  EXPECT_EQ(plan.perThread, 1u);
  EXPECT_EQ(plan.backlog, 1u);
  plan = planSockets(0xffffffffu, 1, 0);  // nonsense somaxconn reads as 1
  EXPECT_EQ(plan.perThread, listener::kMaxSocketsPerThread);
  EXPECT_EQ(plan.backlog, 1u);
}

TEST_F(ListenerTest, PerAddressLimitRefusesTheFourthUntilOneCloses) {
  listener::Options o = listenerOptions();
  o.maxConnectionsPerIp = 3;
  listen(o);
  Client* held[3];
  for (Client*& c : held) c = &openStream("a");
  EXPECT_EQ(core_->addresses(), 1u);

  // The fourth is answered before it sends a byte, then closed.
  Client& fourth = connectClient();
  ASSERT_TRUE(pumpUntil([&] {
    drain(fourth);
    return fourth.ended();
  }));
  EXPECT_EQ(fourth.in.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0), 0u) << printable(fourth.in);
  EXPECT_NE(fourth.in.find("ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP"), std::string::npos) << printable(fourth.in);
  EXPECT_EQ(core_->refusedIp.load(), 1u);
  EXPECT_EQ(opened_.size(), 3u);

  // Once the shard has freed one stream (and its IpTicket with it), a new
  // connection is admitted. Core::admit probes the count: a ticket taken
  // here is released at once.
  closeClient(*held[0]);
  ASSERT_TRUE(pumpUntil([&] { return core_->admit(loopbackKey()) != nullptr; }))
      << "the closed stream's IpTicket was never released";
  Client& again = openStream("a");
  EXPECT_FALSE(again.ended());
  EXPECT_EQ(opened_.size(), 4u);
  EXPECT_EQ(core_->refusedIp.load(), 1u);

  closeClient(*held[1]);
  closeClient(*held[2]);
  closeClient(again);
  EXPECT_TRUE(pumpUntil([&] { return core_->addresses() == 0; })) << "IpTickets still held";
  EXPECT_EQ(shardSink_.disconnects().size(), 4u);
  for (const DisconnectReport& r : shardSink_.disconnects()) EXPECT_EQ(r.reason, DisconnectReason::kClient);
}

TEST_F(ListenerTest, HeaderTimeoutClosesAHalfSentHead) {
  listener::Options o = listenerOptions();
  o.headerTimeoutMs = 200;
  listen(o);
  Client& slow = connectClient();
  const auto sentAt = Clock::now();
  ASSERT_TRUE(sendAll(slow.fd, "GET /events?topics=a HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  // A client that completes its head in time is not touched by the timeout.
  Client& prompt = openStream("a");

  ASSERT_TRUE(pumpUntil([&] {
    drain(slow);
    return slow.ended();
  }));
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sentAt);
  EXPECT_EQ(slow.in, "") << "a timed-out request is closed without an answer";
  EXPECT_TRUE(slow.eof || slow.err == ECONNRESET) << std::strerror(slow.err);
  // The deadline counts from the loop's time at accept (which may lag the
  // clock a little); the sweep runs every headerTimeoutMs / 4.
  EXPECT_GE(waited.count(), 150) << "closed before the header timeout";
  EXPECT_LT(waited.count(), 5000);
  EXPECT_EQ(core_->timedOut.load(), 1u);
  EXPECT_EQ(core_->pending.load(), 0u);

  // The stream outlives several timeouts.
  pumpUntil([] { return false; }, 600ms);
  drain(prompt);
  EXPECT_FALSE(prompt.ended());
  EXPECT_EQ(core_->timedOut.load(), 1u);
  EXPECT_EQ(opened_.size(), 1u);
  EXPECT_EQ(core_->addresses(), 1u);  // the stream's ticket only
}

TEST_F(ListenerTest, ARefusalFromTheJsThreadIsWrittenThenClosed) {
  listen(listenerOptions());
  verdict_ = Verdict::kRefuse;
  Client& c = connectClient();
  ASSERT_TRUE(sendAll(c.fd, streamRequest("a")));
  ASSERT_TRUE(pumpUntil([&] {
    drain(c);
    return c.ended();
  }));
  EXPECT_TRUE(c.eof) << "the refusal is lingered over, not reset: " << std::strerror(c.err);
  EXPECT_EQ(c.in.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << printable(c.in);
  EXPECT_NE(c.in.find("connection: close\r\n"), std::string::npos);
  const std::string body = "{\"error\":\"ERR_SSE_FORBIDDEN\",\"message\":\"refused by the test\"}";
  EXPECT_EQ(c.body(), body);
  EXPECT_EQ(admission_->refused(), 1u);
  EXPECT_EQ(admission_->opened(), 0u);
  EXPECT_TRUE(opened_.empty());

  // The client's close ends the linger, and the ticket goes with it.
  closeClient(c);
  EXPECT_TRUE(pumpUntil([&] { return core_->addresses() == 0 && core_->pending.load() == 0; }));
}

TEST_F(ListenerTest, ARefusalAfterTheListenerClosedIsStillWritten) {
  listen(listenerOptions());
  verdict_ = Verdict::kRefuse;
  Client& c = connectClient();
  ASSERT_TRUE(sendAll(c.fd, streamRequest("a")));
  // Handed over (no pumping yet: the request waits in the sink), then the
  // acceptors stop before the "JS thread" answers it.
  ASSERT_TRUE(waitFor([&] { return core_->streams.load() == 1; }));
  for (uint32_t i = 0; i < kShards; ++i) dispatcher_->postTask(i, listener::stopTask(core_));
  ASSERT_TRUE(waitFor([&] { return queueSink_.closed() == 1; }));
  // The refusal finds no acceptor on its shard: one write, then the close.
  ASSERT_TRUE(pumpUntil([&] {
    drain(c);
    return c.ended();
  }));
  EXPECT_EQ(c.in.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << printable(c.in);
  EXPECT_NE(c.in.find("ERR_SSE_FORBIDDEN"), std::string::npos) << printable(c.in);
  EXPECT_EQ(admission_->refused(), 1u);
  EXPECT_TRUE(pumpUntil([&] { return core_->addresses() == 0; }));
  EXPECT_EQ(queueSink_.closed(), 1);
}

TEST_F(ListenerTest, AcceptingPausesAtMaxPendingPerThreadAndResumes) {
  constexpr size_t kClients = 6;
  listener::Options o = listenerOptions();
  o.maxPendingPerThread = 1;  // at most kShards requests being read at once
  listen(o);
  std::vector<Client*> all = connectAndSend(kClients, "GET /events?topics=a HTTP/1.1\r\n");
  // The rest wait in the kernel's backlog (their connects completed there).
  ASSERT_TRUE(pumpUntil([&] { return core_->pending.load() >= 1; }));
  pumpUntil([] { return false; }, 300ms);
  EXPECT_LE(core_->pending.load(), kShards);
  EXPECT_LE(core_->accepted.load(), kShards);

  // Each completed head makes room for the next connection.
  for (Client* c : all) ASSERT_TRUE(sendAll(c->fd, "Host: 127.0.0.1\r\n\r\n"));
  ASSERT_TRUE(pumpUntil([&] {
    bool done = true;
    for (Client* c : all) {
      drain(*c);
      done = done && (c->headEnd() > 0 || c->ended());
    }
    return done;
  })) << core_->accepted.load()
      << " accepted";
  for (size_t i = 0; i < kClients; ++i) {
    EXPECT_EQ(all[i]->in.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "client " << i << ": " << printable(all[i]->in);
  }
  EXPECT_EQ(core_->accepted.load(), kClients);
  EXPECT_EQ(opened_.size(), kClients);
  EXPECT_EQ(core_->pending.load(), 0u);
}

// Requests handed to the JS thread count against maxPendingPerThread until
// it takes them; once it has, the paused acceptor is told (roomTask) and
// resumes at once, not at its next sweep (every second here).
std::chrono::milliseconds ListenerTest::serveEightPastARoomOfOne(bool tellAcceptors) {
  constexpr size_t kClients = 8;
  listener::Options o = listenerOptions();
  o.maxPendingPerThread = 1;
  o.headerTimeoutMs = 60000;  // the sweep: every 1000 ms
  listen(o);
  holdRoom_ = !tellAcceptors;
  std::vector<Client*> all = connectAndSend(kClients, streamRequest("a"));
  const auto start = Clock::now();
  EXPECT_TRUE(pumpUntil([&] {
    bool done = true;
    for (Client* c : all) {
      drain(*c);
      done = done && c->headEnd() > 0;
    }
    return done;
  }));
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

TEST_F(ListenerTest, TakingRequestsResumesAPausedAcceptorBeforeTheSweep) {
  // 8 requests over 2 threads, one JS turn each: well within the first sweep.
  EXPECT_LT(serveEightPastARoomOfOne(true).count(), 900) << "waited for the sweep";
}

TEST_F(ListenerTest, UntoldAPausedAcceptorWaitsForItsSweep) {
  // The control: without roomTask at least three requests wait for a sweep.
  EXPECT_GE(serveEightPastARoomOfOne(false).count(), 900) << "resumed without roomTask or the sweep";
}

TEST_F(ListenerTest, AcceptRateSpreadsAStormOverTime) {
  constexpr size_t kClients = 10;
  constexpr uint32_t kRate = 4;  // a second's worth banked at start, then 4 a second
  listener::Options o = listenerOptions();
  o.acceptRate = kRate;
  listen(o);
  const auto start = Clock::now();
  std::vector<Client*> all = connectAndSend(kClients, streamRequest("a"));
  pumpUntil([&] { return core_->accepted.load() >= kRate; });
  pumpUntil([] { return false; }, 100ms);
  EXPECT_LE(core_->accepted.load(), kRate + 1) << "accepted past the banked tokens";
  ASSERT_TRUE(pumpUntil([&] {
    bool done = true;
    for (Client* c : all) {
      drain(*c);
      done = done && (c->headEnd() > 0 || c->ended());
    }
    return done;
  })) << core_->accepted.load()
      << " accepted";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  // The 6 past the bank need 1.5 s of tokens.
  EXPECT_GE(took.count(), 1000);
  for (size_t i = 0; i < kClients; ++i) {
    EXPECT_EQ(all[i]->in.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "client " << i << ": " << printable(all[i]->in);
  }
  EXPECT_EQ(opened_.size(), kClients);
}

TEST_F(ListenerTest, AStreamTheHubCannotTakeIsAnswered503AndKeepsItsTicket) {
  maxConnections_ = 1;
  listener::Options o = listenerOptions();
  o.maxConnectionsPerIp = 2;
  o.headerTimeoutMs = 1000;  // a third connection let in is closed soon (with nothing read)
  listen(o);
  Client& first = openStream("a");
  // Dispatcher::adopt refuses the second (kTooManyConnections): Admission
  // answers it on its shard.
  Client& second = connectClient();
  ASSERT_TRUE(sendAll(second.fd, streamRequest("a")));
  ASSERT_TRUE(pumpUntil([&] {
    drain(second);
    return second.headEnd() > 0 || second.ended();
  }));
  EXPECT_EQ(second.in.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << printable(second.in);
  EXPECT_NE(second.in.find("ERR_SSE_TOO_MANY_CONNECTIONS"), std::string::npos) << printable(second.in);
  EXPECT_EQ(admission_->refused(), 1u);
  EXPECT_EQ(opened_.size(), 1u);
  drain(first);
  EXPECT_FALSE(first.ended());

  // The refused request is lingering (its client has not closed): it still
  // holds its IpTicket ("from accept until the stream (or the refused
  // request) is freed", core.hpp), so a third connection from the address is
  // past maxConnectionsPerIp 2.
  Client& third = connectClient();
  ASSERT_TRUE(pumpUntil([&] {
    drain(third);
    return third.headEnd() > 0 || third.ended();
  }));
  EXPECT_EQ(third.in.rfind("HTTP/1.1 429 ", 0), 0u)
      << "the refused request's ticket was released before the request was freed: " << printable(third.in);

  closeClient(second);
  closeClient(third);
  closeClient(first);
  EXPECT_TRUE(pumpUntil([&] { return core_->addresses() == 0 && core_->pending.load() == 0; }));
}

TEST_F(ListenerTest, StoppingWhileClientsAreMidRequestLeaksNothing) {
  constexpr size_t kMidRequest = 50;
  constexpr size_t kStreams = 4;
  listen(listenerOptions());
  std::vector<Client*> streams;
  for (size_t i = 0; i < kStreams; ++i) streams.push_back(&openStream("a"));
  std::vector<Client*> halfway = connectAndSend(kMidRequest, "GET /events?topics=a HTTP/1.1\r\nHost: 12");
  // Every one of them is being read by an acceptor.
  ASSERT_TRUE(pumpUntil([&] { return core_->pending.load() == kMidRequest; })) << core_->pending.load();
  EXPECT_EQ(core_->accepted.load(), kMidRequest + kStreams);

  for (uint32_t i = 0; i < kShards; ++i) dispatcher_->postTask(i, listener::stopTask(core_));
  ASSERT_TRUE(pumpUntil([&] { return queueSink_.closed() > 0; }));
  EXPECT_TRUE(connectRefused()) << "a listening socket is still open";
  EXPECT_EQ(core_->pending.load(), 0u);

  // The streams are the hub's: they end with it.
  dispatcher_->close();
  ASSERT_TRUE(pumpUntil([&] { return shardsStopped(); }));
  dispatcher_->joinShards();
  EXPECT_EQ(queueSink_.closed(), 1) << "Sink::onClosed is called exactly once";
  for (uint32_t i = 0; i < kShards; ++i) EXPECT_EQ(core_->acceptorOf(i), nullptr);

  for (size_t i = 0; i < kMidRequest; ++i) {
    ReadResult r = readToEof(halfway[i]->fd);
    EXPECT_TRUE(r.eof || r.err == ECONNRESET) << "client " << i << ": " << std::strerror(r.err);
    EXPECT_EQ(r.bytes, "") << "client " << i;
  }
  for (size_t i = 0; i < kStreams; ++i) {
    ReadResult r = readToEof(streams[i]->fd);
    EXPECT_TRUE(r.eof) << "stream " << i << ": " << std::strerror(r.err);
    EXPECT_EQ(printable(r.bytes), printable(kTerminator)) << "stream " << i;
  }
  EXPECT_EQ(core_->addresses(), 0u);
  pumpOnce(0ms);
  EXPECT_EQ(shardSink_.disconnects().size(), kStreams);
  for (const DisconnectReport& r : shardSink_.disconnects()) EXPECT_EQ(r.reason, DisconnectReason::kShutdown);
  dispatcher_.reset();
  EXPECT_EQ(Frame::liveCount(), frames0_);
  EXPECT_EQ(queueSink_.closed(), 1);
}

TEST_F(ListenerTest, StopNowWhileTheAcceptorsListenEndsTheShards) {
  listen(listenerOptions());
  Client& stream = openStream("a");
  Client& halfway = connectClient();
  ASSERT_TRUE(sendAll(halfway.fd, "GET /ev"));
  ASSERT_TRUE(pumpUntil([&] { return core_->pending.load() == 1; }));

  // Environment teardown: no close(), no stopTask; the shards' ending stops
  // the acceptors (ShardService::onShardEnding). stopNow() joins them.
  dispatcher_->stopNow();
  EXPECT_EQ(queueSink_.closed(), 1);
  for (uint32_t i = 0; i < kShards; ++i) EXPECT_EQ(core_->acceptorOf(i), nullptr);
  EXPECT_EQ(core_->pending.load(), 0u);
  EXPECT_EQ(core_->addresses(), 0u);
  EXPECT_TRUE(connectRefused());
  for (Client* c : {&stream, &halfway}) {
    ReadResult r = readToEof(c->fd);
    EXPECT_TRUE(r.eof || r.err == ECONNRESET) << std::strerror(r.err);
  }
  dispatcher_.reset();
  EXPECT_EQ(Frame::liveCount(), frames0_);
}

TEST_F(ListenerTest, StopNowRightAfterListenStillReportsClosed) {
  // The start tasks may run (then the shard's ending stops the acceptors) or
  // be dropped unrun (then their destructors count the acceptors as done):
  // either way onClosed comes once and the listening sockets are closed.
  listen(listenerOptions());
  dispatcher_->stopNow();
  EXPECT_EQ(queueSink_.closed(), 1);
  EXPECT_TRUE(connectRefused());
}

// A stream of the listener costs no setsockopt: its socket inherits the
// stream options from the listening socket (Linux copies them at accept).
TEST(ListenerSockets, AcceptedConnectionsInheritTheStreamSocketOptions) {
  listener::Options o;
  o.host = "127.0.0.1";
  ShardOptions stream;
  stream.keepAliveMs = 30000;
  stream.tcpUserTimeoutMs = 5000;
  stream.sndbufBytes = 65536;
  std::vector<std::vector<int>> fds;
  uint16_t port = 0;
  ASSERT_EQ(listener::openListeners(o, stream, 1, listener::planSockets(64, 1, 4096), &fds, &port), 0);
  ASSERT_EQ(fds.size(), 1u);
  ASSERT_EQ(fds[0].size(), 1u);
  const int listenFd = fds[0][0];
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to), 0) << std::strerror(errno);
  pollfd p{listenFd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  int fd = accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  auto get = [fd](int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0) << std::strerror(errno);
    return v;
  };
  EXPECT_EQ(get(IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(get(SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPIDLE), 30);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPINTVL), 10);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPCNT), static_cast<int>(Shard::kKeepAliveProbes));
  EXPECT_EQ(static_cast<unsigned>(get(IPPROTO_TCP, TCP_USER_TIMEOUT)), 5000u);
  EXPECT_EQ(get(SOL_SOCKET, SO_SNDBUF), 2 * 65536);  // the kernel doubles what it is given
  ::close(fd);
  ::close(client);
  ::close(listenFd);
}

}  // namespace
}  // namespace ssefanout::test
