// The shared fixture of the Shard tests (shard_test.cpp, the unit tests, and
// shard_stress_test.cpp, the ThreadSanitizer stress test): socket pairs
// (AF_UNIX socketpairs and loopback TCP), a ShardSink that records what the
// shards report (TestSink), a locked Registry for ids issued from several
// threads (TestRegistry), command and frame builders, bounded reads of a peer
// end, and the ShardTest GoogleTest fixture.
//
// Threads: TestSink and TestRegistry may be called from any thread (each holds
// a lock); everything else belongs to the test thread that calls it. Ownership:
// a SocketPair's shardEnd goes to the shard with its adopt command; the peer
// stays with the test (ShardTest closes the peers it made at TearDown).
//
// Every ShardTest checks at TearDown that Frame::liveCount() is back to its
// value at SetUp (no frame leaks) and that /proc/self/fd holds as many entries
// as before (no fd leaks). Waits are bounded (waitFor with a deadline).
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "registry.hpp"
#include "shard.hpp"
#include "sse_encoder.hpp"

namespace ssefanout::test {

using Clock = std::chrono::steady_clock;

// Process set-up, before any test. The first uv_loop_init() of a process
// opens libuv's process-wide signal lock pipe, which stays open until exit;
// open it now so the per-test fd counts do not see it.
//
// SIGPIPE is deliberately left at its default (Node ignores it, this binary
// does not): the shard must never raise it, and if it did, the suite dies
// loudly. WritingToAVanishedPeerDoesNotRaiseSigpipe checks it head-on.
static const bool kProcessSetUp = [] {
  uv_loop_t loop;
  if (uv_loop_init(&loop) == 0) uv_loop_close(&loop);
  return true;
}();

// Generous: sanitizer builds on a busy 2-core box are slow.
constexpr auto kWait = std::chrono::milliseconds(15000);

template <typename Pred>
inline bool waitFor(Pred pred, std::chrono::milliseconds timeout = kWait) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline int openFdCount() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory's own fd
}

inline bool fdIsClosed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

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
    return static_cast<size_t>(
        std::count_if(disconnects_.begin(), disconnects_.end(), [&](const DisconnectReport& r) { return r.id == id; }));
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

inline FrameRef rawFrame(std::string_view bytes) { return FrameRef(Frame::copyOf(bytes, Frame::Kind::kRaw)); }

inline FrameRef eventFrame(std::string_view data, std::optional<std::string_view> event = std::nullopt) {
  EventFields ev;
  ev.data = data;
  ev.event = event;
  FrameRef f;
  EXPECT_EQ(encodeEvent(ev, &f), Status::kOk);
  return f;
}

// HTTP/1.1 chunk framing of one payload, written here independently.
inline std::string chunk(std::string_view payload) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx\r\n", payload.size());
  return hex + std::string(payload) + "\r\n";
}

inline std::string wire(std::string_view payload, bool chunked) {
  return chunked ? chunk(payload) : std::string(payload);
}

inline Command adoptCmd(int fd, uint64_t id, std::vector<std::string> topics, bool chunked, uint32_t user = 0,
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

inline Command attachJsCmd(uint64_t id, std::vector<std::string> topics, uint32_t user = 0,
                           FrameRef first = FrameRef()) {
  Command c;
  c.op = Command::Op::kAttachJs;
  c.id = id;
  c.user = user;
  c.topics = std::move(topics);
  c.frame2 = std::move(first);
  return c;
}

inline Command publishCmd(std::string topic, FrameRef frame, std::vector<uint32_t> users = {}) {
  Command c;
  c.op = Command::Op::kPublish;
  c.topic = std::move(topic);
  c.frame = std::move(frame);
  c.users = std::move(users);
  return c;
}

inline Command broadcastCmd(FrameRef frame, std::vector<uint32_t> users = {}) {
  Command c;
  c.op = Command::Op::kBroadcast;
  c.frame = std::move(frame);
  c.users = std::move(users);
  return c;
}

inline Command sendCmd(uint64_t id, FrameRef frame) {
  Command c;
  c.op = Command::Op::kSend;
  c.id = id;
  c.frame = std::move(frame);
  return c;
}

inline Command topicsCmd(Command::Op op, uint64_t id, std::vector<std::string> topics) {
  Command c;
  c.op = op;
  c.id = id;
  c.topics = std::move(topics);
  return c;
}

inline Command idCmd(Command::Op op, uint64_t id, DisconnectReason reason = DisconnectReason::kClient) {
  Command c;
  c.op = op;
  c.id = id;
  c.reason = reason;
  return c;
}

inline Command opCmd(Command::Op op) {
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

inline SocketPair makeUnixPair() {
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
inline SocketPair makeTcpPair(int clientRcvbuf = 0) {
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

inline int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Reads until n bytes arrived, EOF, an error or the timeout.
inline ReadResult readN(int fd, size_t n, std::chrono::milliseconds timeout = kWait) {
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
inline ReadResult readToEof(int fd, std::chrono::milliseconds timeout = kWait) {
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
inline std::string readFor(int fd, std::chrono::milliseconds window) {
  ReadResult r = readN(fd, SIZE_MAX, window);
  return r.bytes;
}

inline std::string printable(std::string_view s) {
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

// Reads until `want` has arrived (with whatever came around it, such as the
// heartbeats that follow it), at most kWait; false (and a test failure naming
// what did arrive) if it never does.
inline bool readsUntil(int fd, const std::string& want) {
  std::string got;
  const auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline) {
    got += readFor(fd, std::chrono::milliseconds(30));
    if (got.find(want) != std::string::npos) return true;
  }
  ADD_FAILURE() << "never saw " << printable(want) << " in " << printable(got);
  return false;
}

#define EXPECT_BYTES(expected, actual) EXPECT_EQ(printable(expected), printable(actual))

// Reads as many bytes as `want` holds and expects exactly those.
#define EXPECT_READ(fd, want)                             \
  do {                                                    \
    const std::string want_ = (want);                     \
    EXPECT_BYTES(want_, readN((fd), want_.size()).bytes); \
  } while (0)

// ---------------------------------------------------------------------------
// Fixture

inline ShardOptions quietOptions() {
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
  uint64_t adopt(Shard& s, const SocketPair& pair, std::vector<std::string> topics, bool chunked, uint32_t user = 0) {
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

}  // namespace ssefanout::test
