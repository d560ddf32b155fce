// Tests for Shard: one I/O thread with its own uv_loop_t, driven only through
// Shard::post(), writing to real sockets.
//
// Sockets: socketpair(AF_UNIX, SOCK_STREAM) for most tests (the shard gets one
// end, the test reads the other); real loopback TCP on 127.0.0.1 where
// FIN/RDHUP/RST behaviour or SO_SNDBUF matter. Bytes on the wire are checked
// exactly, and decoded with the independent reference decoders of
// test/cpp/sse_parser.hpp where a stream is long.
//
// Every ShardTest checks at TearDown that Frame::liveCount() is back to its
// value at SetUp (no frame leaks) and that /proc/self/fd holds as many entries
// as before (no fd leaks). Waits are bounded (waitFor with a deadline).
//
// The STRESS test at the end is meant for ThreadSanitizer: several shards,
// several producer threads posting concurrently while consumer threads read
// and close peers, in epochs that end by every close path. SSE_STRESS_OPS
// sets the total number of producer operations (default 200000).
#include "shard.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "registry.hpp"
#include "sse_encoder.hpp"
#include "sse_parser.hpp"

namespace ssefanout {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::ChunkedDecoder;
using test::SseEvent;
using test::SseParser;

// Process set-up, before any test. The first uv_loop_init() of a process
// opens libuv's process-wide signal lock pipe, which stays open until exit;
// open it now so the per-test fd counts do not see it.
//
// SIGPIPE is deliberately left at its default (Node ignores it, this binary
// does not): the shard must never raise it, and if it did, the suite dies
// loudly. WritingToAVanishedPeerDoesNotRaiseSigpipe checks it head-on.
const bool kProcessSetUp = [] {
  uv_loop_t loop;
  if (uv_loop_init(&loop) == 0) uv_loop_close(&loop);
  return true;
}();

// Generous: sanitizer builds on a busy 2-core box are slow.
constexpr auto kWait = std::chrono::milliseconds(15000);

template <typename Pred>
bool waitFor(Pred pred, std::chrono::milliseconds timeout = kWait) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

int openFdCount() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory's own fd
}

bool fdIsClosed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

// ---------------------------------------------------------------------------
// Test sink and registry

struct DisconnectReport {
  uint32_t shard;
  uint64_t id;
  DisconnectReason reason;
};

struct JsDelivery {
  uint32_t shard;
  std::string bytes;
  const Frame* frame;  // identity only (never dereferenced after the call)
  std::vector<uint64_t> ids;
};

class TestSink : public ShardSink {
 public:
  // Optional, set before start(): called on the shard thread, outside the sink lock.
  std::function<void(uint32_t, uint64_t, DisconnectReason)> onDisconnectHook;
  std::function<void(uint32_t, const FrameRef&, const std::vector<uint64_t>&)> onJsDeliverHook;

  void onDisconnect(uint32_t shard, uint64_t id, DisconnectReason reason) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      disconnects_.push_back({shard, id, reason});
    }
    if (onDisconnectHook) onDisconnectHook(shard, id, reason);
  }
  void onJsDeliver(uint32_t shard, FrameRef frame, std::vector<uint64_t> ids) override {
    if (onJsDeliverHook) onJsDeliverHook(shard, frame, ids);
    std::lock_guard<std::mutex> lock(mu_);
    if (!recordJs_) return;
    js_.push_back({shard, std::string(frame->view()), frame.get(), std::move(ids)});
  }
  void onStopped(uint32_t shard) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++stopped_[shard];
  }

  void setRecordJs(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    recordJs_ = on;
  }
  std::vector<DisconnectReport> disconnects() const {
    std::lock_guard<std::mutex> lock(mu_);
    return disconnects_;
  }
  size_t reportsFor(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<size_t>(std::count_if(disconnects_.begin(), disconnects_.end(),
                                             [&](const DisconnectReport& r) { return r.id == id; }));
  }
  std::optional<DisconnectReason> reasonOf(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const DisconnectReport& r : disconnects_) {
      if (r.id == id) return r.reason;
    }
    return std::nullopt;
  }
  bool waitReason(uint64_t id) const {
    return waitFor([&] { return reasonOf(id).has_value(); });
  }
  std::vector<JsDelivery> js() const {
    std::lock_guard<std::mutex> lock(mu_);
    return js_;
  }
  size_t jsCount() const {
    std::lock_guard<std::mutex> lock(mu_);
    return js_.size();
  }
  int stopped(uint32_t shard) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stopped_.find(shard);
    return it == stopped_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::vector<DisconnectReport> disconnects_;
  std::vector<JsDelivery> js_;
  std::map<uint32_t, int> stopped_;
  bool recordJs_ = true;
};

// In the product only the JS thread touches the Registry; tests that issue or
// release ids from several threads go through this lock.
class TestRegistry {
 public:
  uint64_t acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t id = 0;
    EXPECT_EQ(reg_.acquire(&id), Status::kOk);
    return id;
  }
  bool release(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return reg_.release(id);
  }
  size_t live() {
    std::lock_guard<std::mutex> lock(mu_);
    return reg_.live();
  }

 private:
  std::mutex mu_;
  Registry reg_;
};

// ---------------------------------------------------------------------------
// Frames and commands

constexpr std::string_view kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view kPlainHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Connection: close\r\n\r\n";
constexpr std::string_view kHeartbeat = ": \n\n";
constexpr std::string_view kTerminator = "0\r\n\r\n";

FrameRef rawFrame(std::string_view bytes) { return FrameRef(Frame::copyOf(bytes, Frame::Kind::kRaw)); }

FrameRef eventFrame(std::string_view data, std::optional<std::string_view> event = std::nullopt) {
  EventFields ev;
  ev.data = data;
  ev.event = event;
  FrameRef f;
  EXPECT_EQ(encodeEvent(ev, &f), Status::kOk);
  return f;
}

// HTTP/1.1 chunk framing of one payload, written here independently.
std::string chunk(std::string_view payload) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx\r\n", payload.size());
  return hex + std::string(payload) + "\r\n";
}

std::string wire(std::string_view payload, bool chunked) { return chunked ? chunk(payload) : std::string(payload); }

Command adoptCmd(int fd, uint64_t id, std::vector<std::string> topics, bool chunked, uint32_t user = 0,
                 FrameRef first = FrameRef()) {
  Command c;
  c.op = Command::Op::kAdopt;
  c.fd = fd;
  c.id = id;
  c.user = user;
  c.topics = std::move(topics);
  c.frame = rawFrame(chunked ? kChunkedHead : kPlainHead);
  c.frame2 = std::move(first);
  if (chunked) c.flags |= Command::kChunked;
  return c;
}

Command attachJsCmd(uint64_t id, std::vector<std::string> topics, uint32_t user = 0, FrameRef first = FrameRef()) {
  Command c;
  c.op = Command::Op::kAttachJs;
  c.id = id;
  c.user = user;
  c.topics = std::move(topics);
  c.frame2 = std::move(first);
  return c;
}

Command publishCmd(std::string topic, FrameRef frame, std::vector<uint32_t> users = {}) {
  Command c;
  c.op = Command::Op::kPublish;
  c.topic = std::move(topic);
  c.frame = std::move(frame);
  c.users = std::move(users);
  return c;
}

Command broadcastCmd(FrameRef frame, std::vector<uint32_t> users = {}) {
  Command c;
  c.op = Command::Op::kBroadcast;
  c.frame = std::move(frame);
  c.users = std::move(users);
  return c;
}

Command sendCmd(uint64_t id, FrameRef frame) {
  Command c;
  c.op = Command::Op::kSend;
  c.id = id;
  c.frame = std::move(frame);
  return c;
}

Command topicsCmd(Command::Op op, uint64_t id, std::vector<std::string> topics) {
  Command c;
  c.op = op;
  c.id = id;
  c.topics = std::move(topics);
  return c;
}

Command idCmd(Command::Op op, uint64_t id, DisconnectReason reason = DisconnectReason::kClient) {
  Command c;
  c.op = op;
  c.id = id;
  c.reason = reason;
  return c;
}

Command opCmd(Command::Op op) {
  Command c;
  c.op = op;
  return c;
}

// ---------------------------------------------------------------------------
// Sockets

struct SocketPair {
  int shardEnd = -1;  // handed to the shard, which then owns it
  int peer = -1;      // the test's client end
};

SocketPair makeUnixPair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    ADD_FAILURE() << "socketpair: " << std::strerror(errno);
    return {};
  }
  return {sv[0], sv[1]};
}

// A real loopback TCP connection: the shard gets the accepted (server) side.
// clientRcvbuf > 0 sets the client's SO_RCVBUF before it connects (a small
// window that a peer which stops reading shuts quickly).
SocketPair makeTcpPair(int clientRcvbuf = 0) {
  int lst = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (lst < 0 || ::bind(lst, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lst, 4) != 0 ||
      ::getsockname(lst, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "listen: " << std::strerror(errno);
    if (lst >= 0) ::close(lst);
    return {};
  }
  int cli = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cli >= 0 && clientRcvbuf > 0) ::setsockopt(cli, SOL_SOCKET, SO_RCVBUF, &clientRcvbuf, sizeof clientRcvbuf);
  if (cli < 0 || ::connect(cli, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
    if (cli >= 0) ::close(cli);
    ::close(lst);
    return {};
  }
  int srv = ::accept4(lst, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(lst);
  if (srv < 0) {
    ADD_FAILURE() << "accept: " << std::strerror(errno);
    ::close(cli);
    return {};
  }
  return {srv, cli};
}

struct ReadResult {
  std::string bytes;
  bool eof = false;  // read() returned 0
  int err = 0;       // errno of a failed read (ECONNRESET after an abortive close)
};

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Reads until n bytes arrived, EOF, an error or the timeout.
ReadResult readN(int fd, size_t n, std::chrono::milliseconds timeout = kWait) {
  ReadResult r;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (r.bytes.size() < n) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, remainingMs(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    ssize_t got = ::read(fd, buf, std::min(sizeof buf, n - r.bytes.size()));
    if (got > 0) {
      r.bytes.append(buf, static_cast<size_t>(got));
    } else if (got == 0) {
      r.eof = true;
      break;
    } else if (errno != EINTR && errno != EAGAIN) {
      r.err = errno;
      break;
    }
  }
  return r;
}

// Reads until EOF (or an error, or the timeout).
ReadResult readToEof(int fd, std::chrono::milliseconds timeout = kWait) {
  ReadResult r;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, remainingMs(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got > 0) {
      r.bytes.append(buf, static_cast<size_t>(got));
    } else if (got == 0) {
      r.eof = true;
      break;
    } else if (errno != EINTR && errno != EAGAIN) {
      r.err = errno;
      break;
    }
  }
  return r;
}

// Whatever arrives within `window` (for "nothing more was sent" checks).
std::string readFor(int fd, std::chrono::milliseconds window) {
  ReadResult r = readN(fd, SIZE_MAX, window);
  return r.bytes;
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

#define EXPECT_BYTES(expected, actual) EXPECT_EQ(printable(expected), printable(actual))

// Reads as many bytes as `want` holds and expects exactly those.
#define EXPECT_READ(fd, want)                                 \
  do {                                                        \
    const std::string want_ = (want);                         \
    EXPECT_BYTES(want_, readN((fd), want_.size()).bytes);     \
  } while (0)

// ---------------------------------------------------------------------------
// Fixture

ShardOptions quietOptions() {
  ShardOptions o;
  o.heartbeatMs = 0;  // no timer-driven bytes unless a test asks for them
  return o;
}

class ShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    frames0_ = Frame::liveCount();
    fds0_ = openFdCount();
  }

  void TearDown() override {
    shards_.clear();  // stops (kStop) and joins whatever still runs
    for (int fd : peers_) ::close(fd);
    peers_.clear();
    EXPECT_EQ(Frame::liveCount(), frames0_) << "frames leaked";
    EXPECT_EQ(openFdCount(), fds0_) << "fds leaked";
  }

  Shard& startShard(const ShardOptions& o = quietOptions()) {
    auto s = std::make_unique<Shard>(static_cast<uint32_t>(shards_.size()), o, &sink_);
    EXPECT_EQ(s->start(), 0);
    shards_.push_back(std::move(s));
    return *shards_.back();
  }

  SocketPair unixPair() {
    SocketPair p = makeUnixPair();
    peers_.insert(p.peer);
    return p;
  }
  SocketPair tcpPair(int clientRcvbuf = 0) {
    SocketPair p = makeTcpPair(clientRcvbuf);
    peers_.insert(p.peer);
    return p;
  }
  void closePeer(int fd) {
    if (peers_.erase(fd)) ::close(fd);
  }

  // Adopts pair.shardEnd; returns the connection id.
  uint64_t adopt(Shard& s, const SocketPair& pair, std::vector<std::string> topics, bool chunked,
                 uint32_t user = 0) {
    uint64_t id = reg_.acquire();
    s.post(adoptCmd(pair.shardEnd, id, std::move(topics), chunked, user));
    return id;
  }

  // Reads the response head the shard writes first.
  void expectHead(int peer, bool chunked) {
    std::string_view head = chunked ? kChunkedHead : kPlainHead;
    EXPECT_BYTES(head, readN(peer, head.size()).bytes);
  }

  void shutdownAndJoin(Shard& s) {
    s.post(opCmd(Command::Op::kShutdown));
    EXPECT_TRUE(waitFor([&] { return sink_.stopped(s.index()) == 1; })) << "shard did not stop";
    s.join();
    EXPECT_EQ(sink_.stopped(s.index()), 1);
  }

  TestSink sink_;
  TestRegistry reg_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::set<int> peers_;
  int64_t frames0_ = 0;
  int fds0_ = 0;
};

// ---------------------------------------------------------------------------
// Functional tests

TEST_F(ShardTest, AdoptChunkedWritesHeadThenChunkFramedEvents) {
  Shard& s = startShard();
  SocketPair p = unixPair();
  uint64_t id = adopt(s, p, {"news"}, true);

  s.post(publishCmd("news", eventFrame("hello")));
  s.post(publishCmd("other", eventFrame("not for news")));
  s.post(publishCmd("news", eventFrame("line1\nline2", "update")));

  const std::string expected = std::string(kChunkedHead) + "d\r\ndata: hello\n\n\r\n" +
                               "27\r\nevent: update\ndata: line1\ndata: line2\n\n\r\n";
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

  FrameRef fa = eventFrame("on a"), fx = eventFrame("on x/1"), fb = eventFrame("to all"),
           fs = eventFrame("to j2"), fu = eventFrame("to user 2 only");
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
  for (auto [pair, isChunked, prefix] : {std::tuple{&chunked, true, "id:C1\n"}, std::tuple{&plain, false, "id:P2\n"},
                                         std::tuple{&other, false, ""}}) {
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

  closePeer(closing.peer);                   // FIN
  ::shutdown(halfClosing.peer, SHUT_WR);     // FIN, still reading: RDHUP
  struct linger lg = {1, 0};
  ::setsockopt(resetting.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  closePeer(resetting.peer);                 // RST

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
  const std::string chunked = std::string(kChunkedHead) + chunk("data: one\n\n") + chunk("data: two\n\n") +
                              std::string(kTerminator);
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
TEST(ShardDeathTest, WritingToAVanishedPeerDoesNotRaiseSigpipe) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
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

// ---------------------------------------------------------------------------
// Concurrency stress (run it under ThreadSanitizer)
//
// Producers post publish/broadcast/send/subscribe/unsubscribe/kick/detach and
// adopt new connections (socketpairs, some loopback TCP, some JS-transport)
// concurrently, directly and in batches; consumers read the peer ends, decode
// them and, at random, go away (close, or half-close and read on until the
// shard closes); a few send the shard bytes it must read and drop. The sink releases
// each id in the shared registry as its disconnect is reported, so slots are
// reused across shards. The heartbeat timer runs throughout.
//
// The run is cut into epochs, each with shards of its own, and the epochs end
// in turn by every close path: kShutdown once the producers are done;
// kShutdown posted while the producers still post (adopts land on a shutting
// down shard or on a closed queue, and post() races the loop's end); kStop
// (abortive) while they still post. SSE_STRESS_OPS sets the total number of
// producer operations (default 200000; CI runs 10M under TSan).
//
// Every event's data is "p=<producer> s=<seq> k=<kind> t=<topic> to=<id>
// u=<users>". A producer's seq grows with every command it posts, and each
// shard runs the commands of one producer in post order, so on every
// connection the seqs of one producer must strictly increase. A "send" must
// land on the connection it names (a misdelivery would be the fd-reuse bug
// class), a publish only on a connection that subscribed to a matching topic
// at some point, a users-filtered frame only on a listed user.
//
// At the end of each epoch: exactly one disconnect report per connection
// whose adopt was posted before the close began (at most one for the others,
// and none means post() refused it and closed its fd, which the peer saw);
// every peer saw its stream end; an orderly end (kick, shutdown) of a peer
// that stayed (and sent nothing) ends a chunked body with the last chunk and never cuts an
// event; no shard still counts a connection or a queued byte. At the very
// end: no frame and no fd leaked.

constexpr const char* kStressTopics[] = {"t0", "t1", "t2", "t3", "x/1", "x/2", "x/a/b", "y"};
constexpr const char* kStressSubs[] = {"t0", "t1", "t2", "t3", "x/1", "x/2", "x/a/b", "y", "x/*", "x/a/*"};
constexpr int kStressTopicCount = 8;
constexpr int kStressSubCount = 10;
constexpr int kStressMaxProducers = 8;

bool topicMatches(const std::string& sub, const std::string& topic) {
  if (TopicIndex::isPattern(sub)) {
    std::string prefix = sub.substr(0, sub.size() - 1);  // keeps the '/'
    return topic.size() > prefix.size() && topic.compare(0, prefix.size(), prefix) == 0;
  }
  return sub == topic;
}

// kSubsMatching[t]: the kStressSubs (as bits) that match kStressTopics[t].
const std::vector<uint32_t> kSubsMatching = [] {
  std::vector<uint32_t> m(kStressTopicCount, 0);
  for (int t = 0; t < kStressTopicCount; ++t) {
    for (int s = 0; s < kStressSubCount; ++s) {
      if (topicMatches(kStressSubs[s], kStressTopics[t])) m[t] |= 1u << s;
    }
  }
  return m;
}();

// The consumers' parsing (StressStream, parseStressData and the byte
// comparisons below) works on buffers private to one thread and shares
// nothing: TSan's per-byte bookkeeping there finds nothing and made up most
// of a consumer's time, so it is left uninstrumented. Everything any two
// threads touch (the shards, the sink, the registry, the connections'
// shared state) stays instrumented. The comparisons are by hand because
// memcmp goes through a TSan interceptor whatever the caller.
#if defined(__SANITIZE_THREAD__)
#define STRESS_PRIVATE_PARSING __attribute__((no_sanitize("thread")))
#else
#define STRESS_PRIVATE_PARSING
#endif

STRESS_PRIVATE_PARSING bool sameBytes(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}
STRESS_PRIVATE_PARSING bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && sameBytes(s.substr(0, prefix.size()), prefix);
}

int stressTopicIndex(std::string_view topic) {
  for (int t = 0; t < kStressTopicCount; ++t) {
    if (sameBytes(topic, kStressTopics[t])) return t;
  }
  return -1;
}

long stressOps() {
  const char* v = std::getenv("SSE_STRESS_OPS");
  if (v && *v) {
    long n = std::strtol(v, nullptr, 10);
    if (n > 0) return n;
  }
  return 200000;
}

// How an epoch ends.
enum class StressEnd { kShutdownAfter, kShutdownDuring, kStopDuring };

const char* stressEndName(StressEnd e) {
  switch (e) {
    case StressEnd::kShutdownAfter: return "shutdown after the producers";
    case StressEnd::kShutdownDuring: return "shutdown while producing";
    case StressEnd::kStopDuring: return "stop while producing";
  }
  return "?";
}

using SeqTable = std::array<uint64_t, kStressMaxProducers + 1>;  // last seq per producer

struct StressConn {
  uint64_t id = 0;
  uint32_t shard = 0;
  uint32_t user = 0;
  int shardFd = -1;
  int peer = -1;  // -1 for JS-transport connections
  bool chunked = false;
  bool tcp = false;
  bool lazy = false;  // never read until the close begins
  // Sends the shard a few bytes after the head (which it must read and drop).
  // Not held to an orderly end: a socket closed with unread input is reset.
  bool chatty = false;
  // Every kStressSubs entry (as a bit) it was ever subscribed to, set before
  // the command is posted: a superset of what the shard has.
  std::atomic<uint32_t> subs{0};
  // Set by its producer: the adopt was posted after the close had begun, so
  // the shard may never have seen it (post() refused it and closed its fd).
  bool lateAdopt = false;
  // Filled by the consumer (native) or the sink (JS):
  std::atomic<bool> closedByPeer{false};
  bool peerClosed = false;  // closedByPeer, and not half: it never reads the end
  uint64_t events = 0;
  bool ended = false;  // EOF or reset seen
  bool eof = false;
  bool reset = false;
  bool sawEndOfBody = false;  // chunked: the last-chunk arrived
  bool partialAtEnd = false;  // a half event (or head) at the end
  SeqTable lastSeq{};         // JS connections (native ones: the consumer's Peer)
};

// A view of one event's data; kind and topic point into it.
struct ParsedEvent {
  int producer = -1;
  uint64_t seq = 0;
  std::string_view kind, topic;
  uint64_t to = 0;
  std::vector<uint32_t> users;
};

// Parses "p=%d s=%llu k=%s t=%s to=%llu u=%s" exactly (no extra spaces, no
// trailing bytes); users is "-" or a comma-separated list.
struct StressCursor {
  std::string_view d;
  STRESS_PRIVATE_PARSING bool lit(std::string_view l) {
    if (!startsWith(d, l)) return false;
    d.remove_prefix(l.size());
    return true;
  }
  STRESS_PRIVATE_PARSING bool num(uint64_t* v) {
    size_t n = 0;
    uint64_t x = 0;
    while (n < d.size() && n < 19 && d[n] >= '0' && d[n] <= '9') x = x * 10 + static_cast<uint64_t>(d[n++] - '0');
    if (n == 0) return false;
    d.remove_prefix(n);
    *v = x;
    return true;
  }
  STRESS_PRIVATE_PARSING bool word(std::string_view* w) {
    size_t n = 0;
    while (n < d.size() && d[n] != ' ') ++n;
    if (n == 0) return false;
    *w = d.substr(0, n);
    d.remove_prefix(n);
    return true;
  }
};

STRESS_PRIVATE_PARSING bool parseStressData(std::string_view data, ParsedEvent* out) {
  StressCursor c{data};
  uint64_t p = 0;
  std::string_view users;
  if (!(c.lit("p=") && c.num(&p) && c.lit(" s=") && c.num(&out->seq) && c.lit(" k=") && c.word(&out->kind) &&
        c.lit(" t=") && c.word(&out->topic) && c.lit(" to=") && c.num(&out->to) && c.lit(" u=") && c.word(&users) &&
        c.d.empty())) {
    return false;
  }
  out->producer = static_cast<int>(std::min<uint64_t>(p, 1000));
  out->users.clear();
  if (sameBytes(users, "-")) return true;
  StressCursor u{users};
  for (;;) {
    uint64_t x = 0;
    if (!u.num(&x)) return false;
    out->users.push_back(static_cast<uint32_t>(x));
    if (u.d.empty()) break;
    if (!u.lit(",")) return false;
  }
  return true;
}

// A strict decoder of what stress peers receive after the head: a body of
// nothing but "data: <one line>\n\n" events and ": \n\n" heartbeats, exactly
// as the encoder writes them, chunked ("<hex>\r\n<bytes>\r\n", ended by
// "0\r\n\r\n") or not. Any other byte is an error. It is stricter than the
// general reference decoders of sse_parser.hpp, which accept any valid
// stream, and far cheaper under TSan (no per-byte calls, no allocation per
// event), which is what lets the test run 10M operations.
class StressStream {
 public:
  explicit StressStream(bool chunked) : chunked_(chunked) {}

  // Takes the next bytes; onEvent(data) for each complete event (the view
  // lives until onEvent returns). False, with error(), on a format error.
  template <typename F>
  STRESS_PRIVATE_PARSING bool feed(std::string_view bytes, F&& onEvent) {
    if (!error_.empty()) return false;
    if (chunked_) {
      if (!unchunk(bytes)) return false;
    } else {
      body_.append(bytes);
    }
    static constexpr std::string_view kData = "data: ", kBeat = ": \n\n";
    size_t pos = 0;
    for (;;) {
      std::string_view rest(body_.data() + pos, body_.size() - pos);
      if (rest.empty()) break;
      if (rest[0] == ':') {
        if (!startsWith(kBeat, rest.substr(0, kBeat.size()))) return fail("a comment that is not a heartbeat");
        if (rest.size() < kBeat.size()) break;
        pos += kBeat.size();
        continue;
      }
      if (!startsWith(kData, rest.substr(0, kData.size()))) {
        return fail("neither an event nor a heartbeat: " + printable(rest.substr(0, 40)));
      }
      size_t nl = 0;  // by hand, as the comparisons: memchr is intercepted
      while (nl < rest.size() && rest[nl] != '\n') ++nl;
      if (rest.size() < nl + 2) break;
      if (rest[nl + 1] != '\n') return fail("an event of more than one line: " + printable(rest.substr(0, nl + 2)));
      std::string_view data = rest.substr(kData.size(), nl - kData.size());
      for (char ch : data) {
        if (ch == '\r') return fail("a CR in an event");
      }
      onEvent(data);
      pos += nl + 2;
    }
    body_.erase(0, pos);
    return true;
  }

  bool partial() const { return !body_.empty() || !raw_.empty(); }  // an unfinished event or chunk
  bool endOfBody() const { return ended_; }                          // chunked: the last-chunk arrived
  const std::string& error() const { return error_; }

 private:
  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // the encoder writes lower-case hex
  }

  STRESS_PRIVATE_PARSING bool unchunk(std::string_view bytes) {
    if (ended_) return bytes.empty() || fail("bytes after the last chunk");
    raw_.append(bytes);
    size_t pos = 0;
    while (!ended_) {
      size_t crlf = pos;
      while (crlf + 1 < raw_.size() && !(raw_[crlf] == '\r' && raw_[crlf + 1] == '\n')) ++crlf;
      if (crlf + 1 >= raw_.size()) {
        if (raw_.size() - pos > 10) return fail("a chunk size line that does not end");
        break;
      }
      if (crlf == pos || crlf - pos > 8) return fail("a bad chunk size line");
      size_t n = 0;
      for (size_t i = pos; i < crlf; ++i) {
        int h = hex(raw_[i]);
        if (h < 0) return fail("a bad chunk size line");
        n = n * 16 + static_cast<size_t>(h);
      }
      if (raw_.size() < crlf + 2 + n + 2) break;
      if (raw_.compare(crlf + 2 + n, 2, "\r\n") != 0) return fail("chunk data not followed by CRLF");
      if (n == 0) {
        ended_ = true;  // "0\r\n\r\n": no trailers
      } else {
        body_.append(raw_, crlf + 2, n);
      }
      pos = crlf + 2 + n + 2;
    }
    raw_.erase(0, pos);
    if (ended_ && !raw_.empty()) return fail("bytes after the last chunk");
    return true;
  }

  const bool chunked_;
  std::string raw_;   // chunked: wire bytes not yet decoded
  std::string body_;  // body bytes not yet parsed
  bool ended_ = false;
  std::string error_;
};

class StressWorld {
 public:
  explicit StressWorld(int shards) {
    ShardOptions o;
    o.heartbeatMs = 20;          // the timer runs concurrently with everything else
    o.maxQueueBytes = 64 * 1024;
    o.sndbufBytes = 16 * 1024;
    // Kicked and shutting-down streams must end in order, and lazy peers only
    // start reading when the close begins, which may be minutes after a kick
    // (a long run under TSan on a loaded box): no stream may be reaped for
    // being slow to drain. (KickedPeerThatNeverReadsIsReapedAfterCloseTimeout
    // covers the reaping.)
    o.closeTimeoutMs = 3600 * 1000;
    sink.onDisconnectHook = [this](uint32_t shard, uint64_t id, DisconnectReason reason) {
      onDisconnect(shard, id, reason);
    };
    sink.onJsDeliverHook = [this](uint32_t shard, const FrameRef& f, const std::vector<uint64_t>& ids) {
      onJsDeliver(shard, f, ids);
    };
    sink.setRecordJs(false);
    for (int i = 0; i < shards; ++i) {
      this->shards.push_back(std::make_unique<Shard>(static_cast<uint32_t>(i), o, &sink));
    }
  }

  // Validation failures from any thread; reported at the end (a few in full).
  void fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(failMu);
    if (failures.size() < 20) failures.push_back(what);
    ++failureCount;
  }

  std::shared_ptr<StressConn> conn(uint64_t id) {
    std::lock_guard<std::mutex> lock(connMu);
    auto it = conns.find(id);
    return it == conns.end() ? nullptr : it->second;
  }

  void checkEvent(StressConn& c, const ParsedEvent& e, SeqTable& lastSeq) {
    ++c.events;
    if (e.producer < 1 || e.producer > kStressMaxProducers) {
      fail("conn " + std::to_string(c.id) + ": event of producer " + std::to_string(e.producer));
      return;
    }
    uint64_t& last = lastSeq[static_cast<size_t>(e.producer)];
    if (e.seq <= last) {
      fail("conn " + std::to_string(c.id) + ": producer " + std::to_string(e.producer) + " seq " +
           std::to_string(e.seq) + " after " + std::to_string(last));
    }
    last = e.seq;
    if (!e.users.empty() && !std::binary_search(e.users.begin(), e.users.end(), c.user)) {
      fail("conn " + std::to_string(c.id) + " of user " + std::to_string(c.user) + " got a frame for other users");
    }
    if (sameBytes(e.kind, "send")) {
      if (e.to != c.id) fail("send to " + std::to_string(e.to) + " delivered to " + std::to_string(c.id));
    } else if (sameBytes(e.kind, "pub")) {
      int t = stressTopicIndex(e.topic);
      if (t < 0) {
        fail("conn " + std::to_string(c.id) + " got unknown topic " + std::string(e.topic));
      } else if ((c.subs.load() & kSubsMatching[static_cast<size_t>(t)]) == 0) {
        fail("conn " + std::to_string(c.id) + " got topic " + std::string(e.topic) + " it never subscribed to");
      }
    } else if (!sameBytes(e.kind, "bc")) {
      fail("unknown kind " + std::string(e.kind));
    }
  }

  void onDisconnect(uint32_t shard, uint64_t id, DisconnectReason reason) {
    {
      std::lock_guard<std::mutex> lock(reportMu);
      reports[id].push_back(reason);
    }
    std::shared_ptr<StressConn> c = conn(id);
    if (!c) {
      fail("disconnect for unknown id " + std::to_string(id));
    } else if (c->shard != shard) {
      fail("disconnect for " + std::to_string(id) + " from the wrong shard");
    }
    // As the JS thread does on a report: the id is gone, its slot reusable.
    if (!registry.release(id)) fail("second release of " + std::to_string(id));
    live.fetch_sub(1);
  }

  void onJsDeliver(uint32_t shard, const FrameRef& f, const std::vector<uint64_t>& ids) {
    // A JS frame is one whole event or one heartbeat.
    StressStream stream(false);
    int events = 0;
    ParsedEvent e;
    bool ok = stream.feed(f->view(), [&](std::string_view data) {
      if (++events == 1 && !parseStressData(data, &e)) fail("bad JS frame " + printable(data));
    });
    if (!ok || stream.partial() || events > 1) {
      fail("a JS frame that is not one event or heartbeat: " + printable(f->view()) + " " + stream.error());
      return;
    }
    for (uint64_t id : ids) {
      std::shared_ptr<StressConn> c = conn(id);
      if (!c || c->peer != -1 || c->shard != shard) {
        fail("JS delivery to " + std::to_string(id) + " which is not a JS connection of this shard");
        continue;
      }
      if (events == 0) continue;  // heartbeat
      std::lock_guard<std::mutex> lock(jsMu);  // a JS connection's state, shared with the final check
      checkEvent(*c, e, c->lastSeq);
    }
  }

  std::vector<std::unique_ptr<Shard>> shards;
  TestSink sink;
  TestRegistry registry;
  std::atomic<int> live{0};

  std::mutex connMu;  // conns, allIds, jsIds
  std::unordered_map<uint64_t, std::shared_ptr<StressConn>> conns;
  std::vector<uint64_t> allIds;
  std::vector<uint64_t> jsIds;

  std::mutex reportMu;
  std::unordered_map<uint64_t, std::vector<DisconnectReason>> reports;

  std::mutex jsMu;
  std::mutex failMu;
  std::vector<std::string> failures;
  size_t failureCount = 0;

  std::atomic<bool> closing{false};       // set before the first close command is posted
  std::atomic<bool> shutdownBegun{false};  // lazy peers start reading
  std::atomic<bool> stopConsumers{false};
  std::atomic<uint64_t> postedPublishes{0};  // publish/broadcast/send commands posted
  std::atomic<long> opsDone{0};              // by all producers, in steps of 256
  std::atomic<int> producersDone{0};
};

// One consumer thread: reads its peers, validates, goes away at random.
class Consumer {
 public:
  Consumer(StressWorld& w, uint32_t seed) : w_(w), rng_(seed) {}

  void give(std::shared_ptr<StressConn> c) {
    std::lock_guard<std::mutex> lock(inboxMu_);
    inbox_.push_back(std::move(c));
  }

  void run() {
    std::vector<pollfd> pfds;
    std::vector<Peer*> polled;
    char buf[32768];
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(inboxMu_);
        for (auto& c : inbox_) peers_.push_back(std::make_unique<Peer>(std::move(c)));
        inbox_.clear();
      }
      // Peers that are done (their results are in their StressConn) leave the list.
      peers_.erase(std::remove_if(peers_.begin(), peers_.end(), [](const std::unique_ptr<Peer>& p) { return p->done; }),
                   peers_.end());
      const bool draining = w_.shutdownBegun.load();
      pfds.clear();
      polled.clear();
      for (auto& p : peers_) {
        if (p->conn->lazy && !draining) continue;
        pfds.push_back(pollfd{p->conn->peer, POLLIN, 0});
        polled.push_back(p.get());
      }
      if (pfds.empty()) {
        if (w_.stopConsumers.load() && peers_.empty() && inboxEmpty()) break;
        std::this_thread::sleep_for(1ms);
        continue;
      }
      int rc = ::poll(pfds.data(), pfds.size(), 10);
      if (rc < 0 && errno != EINTR) {
        w_.fail(std::string("poll: ") + std::strerror(errno));
        break;
      }
      for (size_t i = 0; rc > 0 && i < pfds.size(); ++i) {
        if (!pfds[i].revents) continue;
        Peer& p = *polled[i];
        ssize_t got = ::read(p.conn->peer, buf, sizeof buf);
        if (got > 0) {
          consume(p, std::string_view(buf, static_cast<size_t>(got)));
          if (p.done || draining || p.halfClosed) continue;
          if (p.conn->chatty && !p.chatted && p.headSeen == p.head.size()) {
            p.chatted = true;
            (void)!::send(p.conn->peer, "x\r\n", 3, MSG_NOSIGNAL | MSG_DONTWAIT);
          }
          int dice = std::uniform_int_distribution<int>(0, 1999)(rng_);
          if (dice < 3) {
            // The client goes away mid-stream: gone at once (the shard sees
            // a hang-up or a reset), or half-closed (the shard reads EOF)
            // while this side reads on until the shard closes.
            p.conn->closedByPeer = true;
            if (dice == 0) {
              p.halfClosed = true;
              ::shutdown(p.conn->peer, SHUT_WR);
            } else {
              p.conn->peerClosed = true;
              closePeer(p);
            }
          }
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          finish(p, got == 0);
        }
      }
      if (w_.stopConsumers.load() && peers_.empty() && inboxEmpty()) break;
    }
    for (auto& p : peers_) {
      if (!p->done) {
        w_.fail("conn " + std::to_string(p->conn->id) + " never ended");
        closePeer(*p);
      }
    }
  }

 private:
  struct Peer {
    explicit Peer(std::shared_ptr<StressConn> c)
        : conn(std::move(c)), head(conn->chunked ? kChunkedHead : kPlainHead), stream(conn->chunked) {}
    std::shared_ptr<StressConn> conn;
    std::string_view head;
    size_t headSeen = 0;
    StressStream stream;
    SeqTable lastSeq{};
    bool halfClosed = false;
    bool chatted = false;
    bool done = false;
  };

  bool inboxEmpty() {
    std::lock_guard<std::mutex> lock(inboxMu_);
    return inbox_.empty();
  }

  void consume(Peer& p, std::string_view bytes) {
    if (p.headSeen < p.head.size()) {
      size_t n = std::min(bytes.size(), p.head.size() - p.headSeen);
      if (bytes.substr(0, n) != p.head.substr(p.headSeen, n)) w_.fail("conn " + std::to_string(p.conn->id) + ": bad head");
      p.headSeen += n;
      bytes.remove_prefix(n);
    }
    if (bytes.empty()) return;
    bool ok = p.stream.feed(bytes, [&](std::string_view data) {
      ParsedEvent e;
      if (!parseStressData(data, &e)) {
        w_.fail("conn " + std::to_string(p.conn->id) + ": bad event data " + printable(data));
        return;
      }
      w_.checkEvent(*p.conn, e, p.lastSeq);
    });
    if (!ok) {
      w_.fail("conn " + std::to_string(p.conn->id) + ": " + p.stream.error());
      closePeer(p);
    }
  }

  void finish(Peer& p, bool eof) {
    p.conn->ended = true;
    p.conn->eof = eof;
    p.conn->reset = !eof;
    p.conn->sawEndOfBody = p.conn->chunked && p.stream.endOfBody();
    p.conn->partialAtEnd = p.stream.partial() || p.headSeen < p.head.size();
    closePeer(p);
  }

  void closePeer(Peer& p) {
    if (p.done) return;
    p.done = true;
    ::close(p.conn->peer);
  }

  StressWorld& w_;
  std::mt19937 rng_;
  std::mutex inboxMu_;
  std::vector<std::shared_ptr<StressConn>> inbox_;
  std::vector<std::unique_ptr<Peer>> peers_;  // this thread only
};

class Producer {
 public:
  Producer(StressWorld& w, std::vector<std::unique_ptr<Consumer>>& consumers, int index, long ops, uint32_t seed)
      : w_(w), consumers_(consumers), index_(index), ops_(ops), rng_(seed),
        batches_(w.shards.size()), batchAdopts_(w.shards.size()) {}

  void run() {
    const int maxLive = 40;
    for (long i = 0; i < ops_; ++i) {
      int r = pick(0, 999);
      if (r < 30 || w_.live.load(std::memory_order_relaxed) < 8) {
        if (w_.live.load(std::memory_order_relaxed) < maxLive) {
          adopt();
        } else {
          publish();
        }
      } else if (r < 580) {
        publish();
      } else if (r < 600) {
        broadcast();
      } else if (r < 680) {
        subscribe(Command::Op::kSubscribe);
      } else if (r < 780) {
        subscribe(Command::Op::kUnsubscribe);
      } else if (r < 950) {
        send();
      } else if (r < 962) {
        kick();
      } else if (r < 970) {
        detachJs();
      } else {
        flushSome();
      }
      if ((i & 255) == 255) {
        w_.opsDone.fetch_add(256);
        throttle();
      }
    }
    for (size_t s = 0; s < batches_.size(); ++s) flush(static_cast<uint32_t>(s));
    w_.producersDone.fetch_add(1);
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // Keeps the shards' queues bounded: wait (bounded) until each shard has
  // handled most of the publishes this producer posted to it. Once the close
  // has begun the shards handle nothing more: no waiting then.
  void throttle() {
    for (size_t s = 0; s < batches_.size(); ++s) flush(static_cast<uint32_t>(s));
    waitFor(
        [&] {
          if (w_.closing.load()) return true;
          uint64_t handled = 0;
          for (auto& s : w_.shards) handled += s->counters().published.load(std::memory_order_relaxed);
          return handled + 4000 * w_.shards.size() >= w_.postedPublishes.load();
        },
        2000ms);
  }

  // Posts to shard s, directly or through this producer's batch for s (the
  // batch is flushed before any direct post, so per-shard order holds).
  void post(uint32_t s, Command&& c, const std::shared_ptr<StressConn>& adopted = nullptr) {
    if (pick(0, 3) == 0) {
      batches_[s].push_back(std::move(c));
      if (adopted) batchAdopts_[s].push_back(adopted);
      if (batches_[s].size() >= 32) flush(s);
    } else {
      flush(s);
      w_.shards[s]->post(std::move(c));
      if (adopted) posted(*adopted);
    }
  }
  void flush(uint32_t s) {
    if (batches_[s].empty()) return;
    w_.shards[s]->post(batches_[s]);
    for (auto& c : batchAdopts_[s]) posted(*c);
    batchAdopts_[s].clear();
  }
  void flushSome() { flush(static_cast<uint32_t>(pick(0, static_cast<int>(batches_.size()) - 1))); }

  // After the post of an adopt returned: if the close had not begun yet, the
  // adopt is ahead of every close command in the shard's queue.
  void posted(StressConn& c) { c.lateAdopt = w_.closing.load(); }

  std::string data(const char* kind, const std::string& topic, uint64_t to, const std::vector<uint32_t>& users) {
    char u[64] = "-";
    size_t n = 0;
    for (uint32_t x : users) n += static_cast<size_t>(std::snprintf(u + n, sizeof u - n, n ? ",%u" : "%u", x));
    char buf[192];
    int len = std::snprintf(buf, sizeof buf, "p=%d s=%llu k=%s t=%s to=%llu u=%s", index_,
                            static_cast<unsigned long long>(++seq_), kind, topic.c_str(),
                            static_cast<unsigned long long>(to), u);
    return std::string(buf, static_cast<size_t>(len));
  }

  std::vector<uint32_t> maybeUsers() {
    std::vector<uint32_t> users;
    if (pick(0, 9) == 0) {
      for (uint32_t u = 1; u <= 4; ++u) {
        if (pick(0, 1)) users.push_back(u);
      }
      if (users.empty()) users.push_back(1);
    }
    return users;  // sorted
  }

  // Some subscriptions: names and their bits.
  std::vector<std::string> someSubs(int lo, int hi, uint32_t* bits) {
    std::vector<std::string> topics;
    *bits = 0;
    for (int n = pick(lo, hi); n > 0; --n) {
      int s = pick(0, kStressSubCount - 1);
      topics.push_back(kStressSubs[s]);
      *bits |= 1u << s;
    }
    return topics;
  }

  // Some target: usually a recent id (maybe already gone), sometimes 0.
  std::shared_ptr<StressConn> target(bool jsOnly = false) {
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(w_.connMu);
      const std::vector<uint64_t>& ids = jsOnly ? w_.jsIds : w_.allIds;
      if (ids.empty()) return nullptr;
      size_t window = std::min<size_t>(ids.size(), 96);
      id = ids[ids.size() - 1 - static_cast<size_t>(pick(0, static_cast<int>(window) - 1))];
    }
    return w_.conn(id);
  }

  void adopt() {
    auto c = std::make_shared<StressConn>();
    c->id = w_.registry.acquire();
    c->shard = static_cast<uint32_t>(pick(0, static_cast<int>(w_.shards.size()) - 1));
    c->user = static_cast<uint32_t>(pick(1, 4));
    int kind = pick(0, 99);
    const bool js = kind < 10;
    c->tcp = kind >= 10 && kind < 20;
    c->chunked = pick(0, 1) == 1;
    c->lazy = !js && pick(0, 99) < 4;
    c->chatty = !js && pick(0, 99) < 5;
    uint32_t bits = 0;
    std::vector<std::string> topics = someSubs(0, 3, &bits);
    c->subs.store(bits);
    if (!js) {
      SocketPair p = c->tcp ? makeTcpPair() : makeUnixPair();
      if (p.peer < 0) {
        w_.fail("could not make a socket pair");
        w_.registry.release(c->id);
        return;
      }
      c->shardFd = p.shardEnd;
      c->peer = p.peer;
    }
    {
      std::lock_guard<std::mutex> lock(w_.connMu);
      w_.conns[c->id] = c;
      w_.allIds.push_back(c->id);
      if (js) w_.jsIds.push_back(c->id);
    }
    w_.live.fetch_add(1);
    Command cmd = js ? attachJsCmd(c->id, std::move(topics), c->user)
                     : adoptCmd(c->shardFd, c->id, std::move(topics), c->chunked, c->user);
    if (!js) consumers_[static_cast<size_t>(pick(0, static_cast<int>(consumers_.size()) - 1))]->give(c);
    post(c->shard, std::move(cmd), c);
  }

  void publish() {
    int t = pick(0, kStressTopicCount - 1);
    std::string topic = kStressTopics[t];
    std::vector<uint32_t> users = maybeUsers();
    FrameRef f = eventFrame(data("pub", topic, 0, users));
    for (uint32_t s = 0; s < w_.shards.size(); ++s) post(s, publishCmd(topic, f, users));
    w_.postedPublishes.fetch_add(w_.shards.size());
  }

  void broadcast() {
    std::vector<uint32_t> users = maybeUsers();
    FrameRef f = eventFrame(data("bc", "-", 0, users));
    for (uint32_t s = 0; s < w_.shards.size(); ++s) post(s, broadcastCmd(f, users));
    w_.postedPublishes.fetch_add(w_.shards.size());
  }

  void send() {
    std::shared_ptr<StressConn> c = target();
    if (!c) return;
    post(c->shard, sendCmd(c->id, eventFrame(data("send", "-", c->id, {}))));
    w_.postedPublishes.fetch_add(1);
  }

  void subscribe(Command::Op op) {
    std::shared_ptr<StressConn> c = target();
    if (!c) return;
    uint32_t bits = 0;
    std::vector<std::string> topics = someSubs(1, 2, &bits);
    // Recorded before posting: the set is a superset of what the shard has.
    if (op == Command::Op::kSubscribe) c->subs.fetch_or(bits);
    post(c->shard, topicsCmd(op, c->id, std::move(topics)));
  }

  void kick() {
    std::shared_ptr<StressConn> c = target();
    if (c) post(c->shard, idCmd(Command::Op::kKick, c->id));
  }

  void detachJs() {
    std::shared_ptr<StressConn> c = target(/*jsOnly=*/true);
    if (c) post(c->shard, idCmd(Command::Op::kDetach, c->id, DisconnectReason::kClient));
  }

  StressWorld& w_;
  std::vector<std::unique_ptr<Consumer>>& consumers_;
  const int index_;
  const long ops_;
  std::mt19937 rng_;
  std::vector<std::vector<Command>> batches_;
  std::vector<std::vector<std::shared_ptr<StressConn>>> batchAdopts_;  // the adopts in batches_
  uint64_t seq_ = 0;
};

struct StressTotals {
  size_t adopted = 0, withEvents = 0, late = 0, dropped = 0;
  std::map<DisconnectReason, size_t> reasons;
  uint64_t events = 0;
};

// One epoch: fresh shards, producers and consumers; ends as `end` says.
void runStressEpoch(int epoch, long ops, StressEnd end, StressTotals* totals) {
  const int kShards = 3, kProducers = 3, kConsumers = 2;
  static_assert(kProducers <= kStressMaxProducers);
  StressWorld w(kShards);
  for (auto& s : w.shards) ASSERT_EQ(s->start(), 0);

  std::vector<std::unique_ptr<Consumer>> consumers;
  for (int i = 0; i < kConsumers; ++i) consumers.push_back(std::make_unique<Consumer>(w, 99u + 7u * epoch + i));
  std::vector<std::thread> consumerThreads;
  for (auto& c : consumers) consumerThreads.emplace_back([&c] { c->run(); });

  std::vector<std::unique_ptr<Producer>> producers;
  for (int i = 0; i < kProducers; ++i) {
    producers.push_back(
        std::make_unique<Producer>(w, consumers, i + 1, ops / kProducers, 1234u + 31u * epoch + static_cast<uint32_t>(i)));
  }
  std::vector<std::thread> producerThreads;
  for (auto& p : producers) producerThreads.emplace_back([&p] { p->run(); });

  // The close: posted to every shard, after the producers are done or while
  // they still post (somewhere in the second half of their operations).
  auto close = [&] {
    w.closing = true;
    w.shutdownBegun = true;  // lazy peers start reading
    for (auto& s : w.shards) s->post(opCmd(end == StressEnd::kStopDuring ? Command::Op::kStop : Command::Op::kShutdown));
  };
  if (end != StressEnd::kShutdownAfter) {
    const long at = (ops / kProducers) * kProducers * (50 + (epoch * 37) % 45) / 100;
    waitFor([&] { return w.opsDone.load() >= at || w.producersDone.load() == kProducers; },
            std::chrono::milliseconds(3600 * 1000));
    close();
  }
  for (auto& t : producerThreads) t.join();
  if (end == StressEnd::kShutdownAfter) close();

  bool stopped = waitFor(
      [&] {
        for (auto& s : w.shards) {
          if (w.sink.stopped(s->index()) != 1) return false;
        }
        return true;
      },
      120000ms);
  EXPECT_TRUE(stopped) << "epoch " << epoch << ": shards did not stop";
  for (auto& s : w.shards) s->join();
  w.stopConsumers = true;
  for (auto& t : consumerThreads) t.join();

  // One report per connection whose adopt the shard saw; the others were
  // refused by post(), which closed their fd.
  const bool orderly = end != StressEnd::kStopDuring;
  for (auto& [id, c] : w.conns) {
    ++totals->adopted;
    auto it = w.reports.find(id);
    size_t n = it == w.reports.end() ? 0 : it->second.size();
    const std::string what = "epoch " + std::to_string(epoch) + " (" + stressEndName(end) + ") id " +
                             std::to_string(id) + (c->peer < 0 ? " js" : c->tcp ? " tcp" : " unix") +
                             (c->lazy ? " lazy" : "") + (c->lateAdopt ? " late" : "") +
                             (c->chatty ? " chatty" : "") + (c->closedByPeer ? " closed-by-peer" : "");
    if (c->lateAdopt) {
      ++totals->late;
      EXPECT_LE(n, 1u) << what << " has " << n << " disconnect reports";
    } else {
      EXPECT_EQ(n, 1u) << what << " has " << n << " disconnect reports";
    }
    if (c->peer >= 0 && !c->peerClosed) {
      EXPECT_TRUE(c->ended) << what << ": the peer never saw the end";
    }
    if (n == 0) {
      // Never adopted: post() closed the fd; nothing reached the peer.
      ++totals->dropped;
      EXPECT_EQ(c->events, 0u) << what;
      w.registry.release(id);
      w.live.fetch_sub(1);
      continue;
    }
    DisconnectReason reason = it->second[0];
    ++totals->reasons[reason];
    if (c->events > 0) ++totals->withEvents;
    totals->events += c->events;
    EXPECT_NE(reason, DisconnectReason::kError) << what;
    EXPECT_NE(reason, DisconnectReason::kTimeout) << what;
    if (c->peer < 0) continue;  // JS transport: ordering was checked on delivery
    if (c->closedByPeer) continue;
    // The peer stayed: nobody may say it left.
    EXPECT_NE(reason, DisconnectReason::kClient) << what << ": reported as gone while its peer was open";
    // An orderly end (kick, shutdown) ends a chunked body with the last chunk
    // and never cuts an event; kStop cuts everything, and an adopt that
    // reached a shard already shutting down is closed before its head.
    if (orderly && !c->lateAdopt && !c->chatty &&
        (reason == DisconnectReason::kKicked || reason == DisconnectReason::kShutdown)) {
      EXPECT_TRUE(c->eof) << what << " reason " << disconnectReasonName(reason);
      if (c->chunked) {
        EXPECT_TRUE(c->sawEndOfBody) << what << " reason " << disconnectReasonName(reason);
      }
      EXPECT_FALSE(c->partialAtEnd) << what << " reason " << disconnectReasonName(reason);
    }
  }
  EXPECT_EQ(w.registry.live(), 0u) << "epoch " << epoch;
  EXPECT_EQ(w.live.load(), 0) << "epoch " << epoch;
  for (auto& s : w.shards) {
    EXPECT_EQ(w.sink.stopped(s->index()), 1);
    EXPECT_EQ(s->counters().connections.load(), 0u) << "epoch " << epoch;
    EXPECT_EQ(s->counters().queueBytes.load(), 0u) << "epoch " << epoch;
  }
  std::lock_guard<std::mutex> lock(w.failMu);
  EXPECT_EQ(w.failureCount, 0u) << "epoch " << epoch;
  for (const std::string& f : w.failures) ADD_FAILURE() << "epoch " << epoch << ": " << f;
}

TEST(ShardStressTest, ConcurrentProducersConsumersAndClosingPeers) {
  const long totalOps = stressOps();
  // Every close path several times; a new set of shards every ~250k operations.
  const int epochs = static_cast<int>(std::clamp<long>(totalOps / 250000, 3, 64));
  const int64_t frames0 = Frame::liveCount();
  const int fds0 = openFdCount();
  const auto t0 = Clock::now();
  StressTotals totals;
  const StressEnd ends[] = {StressEnd::kShutdownAfter, StressEnd::kShutdownDuring, StressEnd::kStopDuring};
  for (int e = 0; e < epochs; ++e) {
    long ops = totalOps / epochs + (e < totalOps % epochs ? 1 : 0);
    runStressEpoch(e, ops, ends[e % 3], &totals);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(totals.withEvents, totals.adopted / 4) << "too few connections saw events for the test to mean much";
  auto count = [&](DisconnectReason r) { return totals.reasons.count(r) ? totals.reasons.at(r) : size_t{0}; };
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "[ stress   ] %ld ops in %d epochs, %zu connections (%zu kicked, %zu slow, %zu client, %zu shutdown; "
      "%zu adopted while closing, %zu of them refused), %llu events checked, %.1f s\n",
      totalOps, epochs, totals.adopted, count(DisconnectReason::kKicked), count(DisconnectReason::kSlow),
      count(DisconnectReason::kClient), count(DisconnectReason::kShutdown), totals.late, totals.dropped,
      static_cast<unsigned long long>(totals.events), secs);
  EXPECT_EQ(Frame::liveCount(), frames0) << "frames leaked";
  EXPECT_EQ(openFdCount(), fds0) << "fds leaked";
}

}  // namespace
}  // namespace ssefanout
