// The Shard concurrency stress test, meant for ThreadSanitizer: several
// shards, several producer threads posting concurrently while consumer
// threads read and close peers, in epochs that end by every close path.
// SSE_STRESS_OPS sets the total number of producer operations (default
// 200000, as npm test runs it; CI runs 10M under TSan). The unit tests of
// Shard are shard_test.cpp; the fixture both use is shard_fixture.hpp.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "shard.hpp"
#include "shard_fixture.hpp"
#include "topic_index.hpp"

namespace ssefanout::test {
namespace {

using namespace std::chrono_literals;

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
    case StressEnd::kShutdownAfter:
      return "shutdown after the producers";
    case StressEnd::kShutdownDuring:
      return "shutdown while producing";
    case StressEnd::kStopDuring:
      return "stop while producing";
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
  bool endOfBody() const { return ended_; }                         // chunked: the last-chunk arrived
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
    o.heartbeatMs = 20;  // the timer runs concurrently with everything else
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
      if (events == 0) continue;               // heartbeat
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

  std::atomic<bool> closing{false};        // set before the first close command is posted
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
      if (bytes.substr(0, n) != p.head.substr(p.headSeen, n))
        w_.fail("conn " + std::to_string(p.conn->id) + ": bad head");
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
      : w_(w),
        consumers_(consumers),
        index_(index),
        ops_(ops),
        rng_(seed),
        batches_(w.shards.size()),
        batchAdopts_(w.shards.size()) {}

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
    producers.push_back(std::make_unique<Producer>(w, consumers, i + 1, ops / kProducers,
                                                   1234u + 31u * epoch + static_cast<uint32_t>(i)));
  }
  std::vector<std::thread> producerThreads;
  for (auto& p : producers) producerThreads.emplace_back([&p] { p->run(); });

  // The close: posted to every shard, after the producers are done or while
  // they still post (somewhere in the second half of their operations).
  auto close = [&] {
    w.closing = true;
    w.shutdownBegun = true;  // lazy peers start reading
    for (auto& s : w.shards)
      s->post(opCmd(end == StressEnd::kStopDuring ? Command::Op::kStop : Command::Op::kShutdown));
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
                             std::to_string(id) +
                             (c->peer < 0 ? " js"
                              : c->tcp    ? " tcp"
                                          : " unix") +
                             (c->lazy ? " lazy" : "") + (c->lateAdopt ? " late" : "") + (c->chatty ? " chatty" : "") +
                             (c->closedByPeer ? " closed-by-peer" : "");
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
}  // namespace ssefanout::test
