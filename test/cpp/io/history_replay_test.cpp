// Resume with history on, through a real Dispatcher and its shards, meant for
// ThreadSanitizer as much as for the plain build: the replay a stream gets in
// its adopt command and the live events posted after it meet with no gap and
// no duplicate while another thread keeps publishing.
//
// One thread plays the JS thread: it publishes at full rate (exact topics,
// topics under "/*" patterns, broadcasts, private events, explicit ids,
// named events), adopts streams (socketpairs, chunked or not, and JS-
// transport streams) whose cursors point at random places behind the latest
// event (and some that cannot be placed), kicks some of them, and flushes
// once per "job" as lib/ does. Reader threads read the sockets; the test's
// sink records what JS-transport streams are handed. Every stream is then
// checked frame by frame against the publish log: [retry], the events after
// its cursor that its topics and user match (byte-identical, in order), the
// position frame "id: <epoch>-<latest at adopt>", or one reset event in their
// place, then exactly the matching live events up to its end, with position
// heartbeats ": \nid: <epoch>-<n>" anywhere after that, each n at least
// every event before it and below every event after it.
//
// SSE_HISTORY_OPS sets the number of events published (default 20000; CI
// runs more under TSan). The focused tests below it pin the reset reasons and
// the position heartbeats. Every test checks that no frame and no fd leaked.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dispatcher.hpp"
#include "history/history_model.hpp"
#include "shard_fixture.hpp"
#include "sse_parser.hpp"

namespace ssefanout::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kEpoch = "Rp1ay";

std::string cursorOf(uint64_t seq) { return std::string(kEpoch) + "-" + std::to_string(seq); }
std::string positionFrame(uint64_t seq) { return "id: " + cursorOf(seq) + "\n\n"; }
std::string positionHeartbeat(uint64_t seq) { return ": \nid: " + cursorOf(seq) + "\n\n"; }

std::string resetFrame(std::string_view reason, std::optional<uint64_t> requested, std::optional<uint64_t> oldest,
                       uint64_t latest) {
  auto json = [](std::optional<uint64_t> s) { return s ? "\"" + cursorOf(*s) + "\"" : std::string("null"); };
  return "event: reset\nid: " + cursorOf(latest) + "\ndata: {\"reason\":\"" + std::string(reason) +
         "\",\"requested\":" + json(requested) + ",\"oldest\":" + json(oldest) + ",\"latest\":" + json(latest) +
         "}\n\n";
}

long historyOps() {
  const char* v = std::getenv("SSE_HISTORY_OPS");
  if (v && *v) {
    long n = std::strtol(v, nullptr, 10);
    if (n > 0) return n;
  }
  return 20000;
}

// What was published, per sequence number (the JS thread's log).
struct Published {
  std::string topic;  // empty: a broadcast
  std::optional<std::vector<std::string>> users;
  std::string frame;  // the exact bytes every connection must get, written here by hand
};

bool reaches(const Published& p, const std::vector<std::string>& topics, const std::optional<std::string>& user) {
  if (p.users && (!user || std::find(p.users->begin(), p.users->end(), *user) == p.users->end())) return false;
  return p.topic.empty() || modelMatchesAny(topics, p.topic);
}

// One stream, and what the JS thread expects of it.
struct Stream {
  uint64_t id = 0;
  int peer = -1;  // -1: a JS-transport stream
  bool chunked = false;
  std::vector<std::string> topics;
  std::optional<std::string> user;
  std::optional<uint64_t> retryMs;
  std::string cursorText;  // what it resumed from ("" with hasCursor false: nothing)
  bool hasCursor = false;
  uint64_t adoptedAt = 0;  // latest sequence when adopted
  std::string reset;       // the expected reset frame, or empty: a replay
  std::vector<uint64_t> replay;
  bool kicked = false;
  uint64_t endedAt = 0;  // latest sequence when kicked (or at the close)
  bool verified = false;
  // Filled by its reader thread (native) or the sink (JS), then `done`.
  std::string bytes;
  std::vector<std::string> jsFrames;
  std::atomic<bool> done{false};
};

// Reader threads: each polls the peers handed to it and appends what it reads
// to the stream's bytes; at EOF it closes the peer and sets done.
class Reader {
 public:
  void give(std::shared_ptr<Stream> s) {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back(std::move(s));
  }
  void stop() { stop_ = true; }
  void run() {
    std::vector<std::shared_ptr<Stream>> mine;
    std::vector<pollfd> fds;
    char buf[65536];
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& s : inbox_) mine.push_back(std::move(s));
        inbox_.clear();
      }
      if (mine.empty()) {
        if (stop_) return;
        std::this_thread::sleep_for(1ms);
        continue;
      }
      fds.clear();
      for (auto& s : mine) fds.push_back({s->peer, POLLIN, 0});
      const int rc = ::poll(fds.data(), fds.size(), 5);
      if (rc <= 0) {
        if (stop_) break;  // the test gave up waiting: leave the rest unfinished
        continue;
      }
      for (size_t i = 0; i < mine.size(); ++i) {
        if (!fds[i].revents) continue;
        Stream& s = *mine[i];
        const ssize_t got = ::read(s.peer, buf, sizeof buf);
        if (got > 0) {
          s.bytes.append(buf, static_cast<size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(s.peer);
          s.peer = -2;
          s.done.store(true, std::memory_order_release);
        }
      }
      mine.erase(std::remove_if(mine.begin(), mine.end(), [](const auto& s) { return s->peer == -2; }), mine.end());
    }
    for (auto& s : mine) ::close(s->peer);
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Stream>> inbox_;
  std::atomic<bool> stop_{false};
};

struct Totals {
  size_t streams = 0, js = 0, replays = 0, replayed = 0, live = 0, heartbeats = 0, noCursor = 0, kicked = 0;
  size_t batches = 0;  // sequenced batches (publishSequenced) among the publishes
  std::map<std::string, size_t> resets;
};

class ReplayWorld {
 public:
  ReplayWorld(uint32_t seed, long ops) : rng_(seed), ops_(ops) {
    options_.threads = 3;
    options_.shard.heartbeatMs = 15;  // position heartbeats throughout
    options_.shard.maxQueueBytes = 8 << 20;
    options_.shard.closeTimeoutMs = 120000;
    history::HistoryOptions h;
    h.epoch = std::string(kEpoch);
    h.maxEvents = kMaxEvents;
    h.maxBytes = 256 << 20;
    h.maxAgeMs = 24 * 3600 * 1000;
    h.maxReplayEvents = kMaxReplay;
    options_.history = h;
    sink_.setRecordJs(false);
    sink_.onJsDeliverHook = [this](uint32_t, const FrameRef& f, const std::vector<uint64_t>& ids) {
      std::lock_guard<std::mutex> lock(jsMu_);
      for (uint64_t id : ids) {
        auto it = js_.find(id);
        if (it != js_.end()) it->second->jsFrames.emplace_back(f->view());
      }
    };
    sink_.onDisconnectHook = [this](uint32_t, uint64_t id, DisconnectReason) {
      std::lock_guard<std::mutex> lock(jsMu_);
      auto it = js_.find(id);
      if (it != js_.end()) it->second->done.store(true, std::memory_order_release);
    };
    log_.emplace_back();  // sequence 0: nothing
  }

  void run(Totals* totals) {
    Dispatcher d(options_, &sink_);
    ASSERT_EQ(d.start(), 0);
    d_ = &d;
    std::vector<std::thread> readerThreads;
    for (auto& r : readers_) readerThreads.emplace_back([&r] { r.run(); });

    long published = 0;
    while (published < ops_ && !::testing::Test::HasFatalFailure()) {
      if (chance(20)) {
        const int n = static_cast<int>(std::min<long>(pick(1, 16), ops_ - published));
        publishBatch(n);
        published += n;
      } else {
        for (int n = pick(1, 8); n > 0 && published < ops_; --n, ++published) publishOne();
      }
      if (chance(30)) adoptOne();
      if (chance(8) || live_.size() > 40) kickOne();
      d.flush();
      verifyDone(totals, false);
      throttle();
    }
    // A quiet spell before the close: the streams still open get position
    // heartbeats (a busy stream gets none: heartbeats fill silences only).
    const uint64_t beats = d.stats().heartbeats;
    EXPECT_TRUE(waitFor([&] { return d.stats().heartbeats >= beats + 2 * live_.size(); }))
        << "no position heartbeats while nothing was published";
    d.close();
    const bool stopped = waitFor([&] {
      for (uint32_t i = 0; i < d.shardCount(); ++i) {
        if (sink_.stopped(i) != 1) return false;
      }
      return true;
    });
    EXPECT_TRUE(stopped) << "the shards did not stop";
    d.joinShards();
    const uint64_t final = latest();
    for (auto& s : live_) s->endedAt = final;
    const bool ended = waitFor([&] {
      for (auto& s : all_) {
        if (!s->done.load(std::memory_order_acquire)) return false;
      }
      return true;
    });
    EXPECT_TRUE(ended) << "some streams never ended";
    for (auto& r : readers_) r.stop();
    for (auto& t : readerThreads) t.join();
    verifyDone(totals, true);
    for (auto& s : all_) {
      const std::optional<DisconnectReason> reason = sink_.reasonOf(s->id);
      ASSERT_TRUE(reason.has_value()) << "stream " << s->id;
      EXPECT_EQ(*reason, s->kicked ? DisconnectReason::kKicked : DisconnectReason::kShutdown)
          << "stream " << s->id << ": " << disconnectReasonName(*reason);
    }
    d_ = nullptr;
    totals->batches = batches_;
  }

 private:
  static constexpr uint64_t kMaxEvents = 1500;
  static constexpr uint64_t kMaxReplay = 400;
  static constexpr const char* kTopics[] = {"a", "b", "n/1", "n/2", "n/x/y", "m/1"};
  static constexpr const char* kSubs[] = {"a", "b", "n/1", "n/*", "n/x/*", "m/1", "m/*"};
  static constexpr const char* kUsers[] = {"u1", "u2", "u3", "u4"};

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(int percent) { return pick(0, 99) < percent; }
  uint64_t latest() const { return log_.size() - 1; }

  // One event to publish, and what every connection it reaches must get.
  struct Next {
    Published p;
    bool broadcast = false;
    bool named = false;
    bool skip = false;  // a sequenced batch's skipped sequence: nobody's event
    std::string data;
    std::optional<std::string> explicitId;
    std::vector<std::string_view> userViews;  // filled once the Next is in place (views of p.users)
    EventFields fields() {
      userViews.clear();
      if (p.users) {
        for (const std::string& u : *p.users) userViews.push_back(u);
      }
      EventFields ev;
      ev.data = data;
      if (named) ev.event = "tick";
      if (explicitId) ev.id = *explicitId;
      return ev;
    }
  };

  Next makeNext(uint64_t seq) {
    Next n;
    n.broadcast = chance(25);
    if (!n.broadcast) n.p.topic = kTopics[pick(0, 5)];
    if (chance(15)) {
      n.p.users.emplace();
      for (int k = pick(0, 2); k > 0; --k) n.p.users->push_back(kUsers[pick(0, 3)]);  // maybe none: nobody
    }
    n.data = "s=" + std::to_string(seq) + " t=" + (n.broadcast ? std::string("*") : n.p.topic);
    if (chance(10)) {
      n.explicitId = "x" + std::to_string(seq);
      ids_[*n.explicitId] = seq;
    }
    n.named = chance(20);
    n.p.frame = std::string(n.named ? "event: tick\n" : "") + "id: " + (n.explicitId ? *n.explicitId : cursorOf(seq)) +
                "\ndata: " + n.data + "\n\n";
    return n;
  }

  void publishOne() {
    const uint64_t seq = log_.size();
    Next n = makeNext(seq);
    const EventFields ev = n.fields();
    const Status s = n.broadcast ? d_->broadcast(ev, n.p.users ? &n.userViews : nullptr)
                                 : d_->publish(n.p.topic, ev, n.p.users ? &n.userViews : nullptr);
    ASSERT_EQ(s, Status::kOk);
    ASSERT_EQ(d_->history()->latest(), seq);
    log_.push_back(std::move(n.p));
  }

  // `count` events as one sequenced batch (the Redis bus's path), the
  // sequences the hub's own: now and then a skipped one (nobody's event).
  void publishBatch(int count) {
    const uint64_t first = log_.size();
    std::vector<Next> next;
    next.reserve(static_cast<size_t>(count));  // in place from here on: views of their strings stay valid
    for (int i = 0; i < count; ++i) {
      next.push_back(makeNext(first + static_cast<uint64_t>(i)));
      if (chance(5)) {
        next.back().skip = true;
        next.back().p.users.emplace();  // in the log: an event that reaches nobody
        next.back().p.frame.clear();
        ids_.erase("x" + std::to_string(first + static_cast<uint64_t>(i)));
      }
    }
    std::vector<Dispatcher::SequencedEvent> batch(next.size());
    for (size_t i = 0; i < next.size(); ++i) {
      Dispatcher::SequencedEvent& e = batch[i];
      e.skip = next[i].skip;
      e.topic = next[i].p.topic;
      e.event = next[i].fields();
      e.users = next[i].p.users ? &next[i].userViews : nullptr;
    }
    ASSERT_EQ(d_->publishSequenced(kEpoch, first, batch), Status::kOk);
    ASSERT_EQ(d_->history()->latest(), first + next.size() - 1);
    ASSERT_EQ(d_->history()->stats().rebases, 0u);
    for (Next& n : next) log_.push_back(std::move(n.p));
    batches_ += 1;
  }

  // Where a cursor places a stream, worked out here from the log alone.
  void expect(Stream& s) {
    const uint64_t a = latest();
    const uint64_t oldest = a >= kMaxEvents ? a - kMaxEvents + 1 : 1;
    s.adoptedAt = a;
    if (!s.hasCursor) return;
    uint64_t after = 0;
    auto id = ids_.find(s.cursorText);
    if (id != ids_.end() && id->second >= oldest) {
      after = id->second;
    } else {
      const ModelCursor c = modelParseCursor(s.cursorText, kEpoch);
      if (c.form == ModelCursor::Form::kMalformed || (c.form == ModelCursor::Form::kOurs && c.seq > a)) {
        s.reset = resetFrame("unknown", std::nullopt, a ? std::optional<uint64_t>(oldest) : std::nullopt, a);
        return;
      }
      if (c.form == ModelCursor::Form::kForeign) {
        s.reset = resetFrame("epoch", std::nullopt, a ? std::optional<uint64_t>(oldest) : std::nullopt, a);
        return;
      }
      after = c.seq;
      if (after + 1 < oldest) {
        s.reset = resetFrame("expired", after, oldest, a);
        return;
      }
    }
    for (uint64_t q = after + 1; q <= a; ++q) {
      if (reaches(log_[q], s.topics, s.user)) s.replay.push_back(q);
    }
    if (s.replay.size() > kMaxReplay) {
      s.replay.clear();
      s.reset = resetFrame("limit", after, oldest, a);
    }
  }

  void adoptOne() {
    auto s = std::make_shared<Stream>();
    for (int n = pick(0, 3); n > 0; --n) s->topics.push_back(kSubs[pick(0, 6)]);
    if (chance(50)) s->user = kUsers[pick(0, 3)];
    if (chance(20)) s->retryMs = static_cast<uint64_t>(pick(100, 5000));
    const uint64_t a = latest();
    const int kind = pick(0, 99);
    s->hasCursor = kind >= 10;
    if (kind < 10) {
      // no cursor
    } else if (kind < 65) {
      s->cursorText = cursorOf(a - static_cast<uint64_t>(pick(0, static_cast<int>(std::min<uint64_t>(a, 600)))));
    } else if (kind < 75) {
      // The explicit id of an event a little way back, when there is one.
      s->cursorText = cursorOf(a);
      for (uint64_t q = a, n = 0; q > 0 && n < 300; --q, ++n) {
        if (log_[q].frame.find("id: x") != std::string::npos && chance(30)) {
          s->cursorText = "x" + std::to_string(q);
          break;
        }
      }
    } else if (kind < 80) {
      s->cursorText = cursorOf(a > kMaxEvents + 10 ? a - kMaxEvents - static_cast<uint64_t>(pick(2, 10)) : a);
    } else if (kind < 85) {
      s->cursorText = "0ther-" + std::to_string(a);
    } else if (kind < 90) {
      static const char* const kBad[] = {"", "Rp1ay-", "Rp1ay-01", "Rp1ay-1e3", "garbage", "Rp1ay--1", "x"};
      s->cursorText = kBad[pick(0, 6)];
    } else if (kind < 95) {
      s->cursorText = cursorOf(a + static_cast<uint64_t>(pick(1, 5)));
    } else {
      s->cursorText = cursorOf(a > 1200 ? a - 1200 : 0);  // far back: often past maxReplayEvents
    }
    expect(*s);
    StreamOptions so;
    so.topics = s->topics;
    so.user = s->user;
    so.retryMs = s->retryMs;
    if (s->hasCursor) so.lastEventId = s->cursorText;
    uint64_t id = 0;
    if (chance(10)) {
      ASSERT_EQ(d_->attach(std::move(so), &id), Status::kOk);
      s->id = id;
      std::lock_guard<std::mutex> lock(jsMu_);  // before the flush that posts it
      js_[id] = s;
    } else {
      s->chunked = chance(50);
      int sv[2];
      ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
      s->peer = sv[1];
      ASSERT_EQ(d_->adopt(sv[0], s->chunked ? kChunkedHead : "", s->chunked, std::move(so), &id), Status::kOk);
      s->id = id;
      readers_[static_cast<size_t>(pick(0, 1))].give(s);
    }
    live_.push_back(s);
    all_.push_back(s);
  }

  void kickOne() {
    if (live_.empty()) return;
    const size_t i = static_cast<size_t>(pick(0, static_cast<int>(live_.size()) - 1));
    std::shared_ptr<Stream> s = live_[i];
    live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(i));
    s->kicked = true;
    s->endedAt = latest();
    ASSERT_EQ(d_->kick(s->id), Status::kOk);
  }

  // Keeps the shards' queues short, as a JS thread under backpressure would.
  void throttle() {
    auto pending = [&] {
      uint64_t n = 0;
      for (const ShardStats& s : d_->stats().threads) n += s.pendingCommands;
      return n;
    };
    if (pending() < 3000) return;
    waitFor([&] { return pending() < 500; }, 30000ms);
  }

  // Checks (and frees) every stream that ended; at the close, all of them.
  void verifyDone(Totals* totals, bool all) {
    for (auto& s : all_) {
      if (s->verified || !(s->kicked || all) || !s->done.load(std::memory_order_acquire)) continue;
      verify(*s, totals);
      s->verified = true;
      std::string().swap(s->bytes);
      std::lock_guard<std::mutex> lock(jsMu_);
      std::vector<std::string>().swap(s->jsFrames);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  void verify(const Stream& s, Totals* totals) {
    const std::string what = "stream " + std::to_string(s.id) +
                             (s.peer == -1 ? " js"
                              : s.chunked  ? " chunked"
                                           : "") +
                             " cursor \"" + s.cursorText + "\" adopted at " + std::to_string(s.adoptedAt) +
                             " ended at " + std::to_string(s.endedAt);
    std::vector<std::string> frames;
    if (s.peer == -1) {
      std::lock_guard<std::mutex> lock(jsMu_);
      frames = s.jsFrames;
      ++totals->js;
    } else {
      std::string body;
      if (s.chunked) {
        ASSERT_GE(s.bytes.size(), kChunkedHead.size()) << what;
        ASSERT_EQ(s.bytes.substr(0, kChunkedHead.size()), kChunkedHead) << what;
        ChunkedDecoder dec;
        dec.feed(std::string_view(s.bytes).substr(kChunkedHead.size()));
        ASSERT_FALSE(dec.error()) << what << ": " << dec.errorMessage();
        ASSERT_TRUE(dec.done()) << what << ": the body did not end with the last chunk";
        body = dec.takeBody();
      } else {
        body = s.bytes;
      }
      size_t pos = 0;
      while (pos < body.size()) {
        const size_t end = body.find("\n\n", pos);
        ASSERT_NE(end, std::string::npos) << what << ": a cut frame at the end: " << printable(body.substr(pos));
        frames.push_back(body.substr(pos, end + 2 - pos));
        pos = end + 2;
      }
    }
    size_t i = 0;
    auto next = [&]() -> std::string { return i < frames.size() ? frames[i++] : std::string("<nothing>"); };
    if (s.retryMs) {
      ASSERT_EQ(next(), "retry: " + std::to_string(*s.retryMs) + "\n\n") << what;
    }
    if (!s.reset.empty()) {
      ASSERT_EQ(printable(next()), printable(s.reset)) << what;
      const size_t q = s.reset.find("reason\":\"") + 9;
      ++totals->resets[s.reset.substr(q, s.reset.find('"', q) - q)];
    } else {
      for (uint64_t q : s.replay) ASSERT_EQ(printable(next()), printable(log_[q].frame)) << what << " replay of " << q;
      ASSERT_EQ(next(), positionFrame(s.adoptedAt)) << what;
      if (s.hasCursor) {
        ++totals->replays;
        totals->replayed += s.replay.size();
      } else {
        ++totals->noCursor;
      }
    }
    // Live: the matching events after adoptedAt up to endedAt, heartbeats between.
    uint64_t floor = s.adoptedAt;  // every heartbeat from here on names at least this
    uint64_t q = s.adoptedAt;
    auto nextLive = [&]() -> uint64_t {
      while (++q <= s.endedAt) {
        if (reaches(log_[q], s.topics, s.user)) return q;
      }
      return 0;
    };
    uint64_t want = nextLive();
    const std::string beat = ": \nid: " + std::string(kEpoch) + "-";
    while (i < frames.size()) {
      const std::string& f = frames[i++];
      if (f.compare(0, beat.size(), beat) == 0) {
        ++totals->heartbeats;
        const std::string digits = f.substr(beat.size(), f.size() - beat.size() - 2);
        ASSERT_EQ(f, positionHeartbeat(std::strtoull(digits.c_str(), nullptr, 10))) << what;
        const uint64_t n = std::strtoull(digits.c_str(), nullptr, 10);
        ASSERT_GE(n, floor) << what << ": a heartbeat behind what the stream already has";
        if (want) {
          ASSERT_LT(n, want) << what << ": a heartbeat past event " << want << " before it arrived";
        }
        floor = n;
        continue;
      }
      ASSERT_NE(want, 0u) << what << ": more than expected: " << printable(f);
      ASSERT_EQ(printable(f), printable(log_[want].frame)) << what << " live " << want;
      ++totals->live;
      floor = want;
      want = nextLive();
    }
    ASSERT_EQ(want, 0u) << what << ": event " << want << " never arrived";
    ++totals->streams;
    if (s.kicked) ++totals->kicked;
  }

  std::mt19937 rng_;
  const long ops_;
  size_t batches_ = 0;
  HubOptions options_;
  TestSink sink_;
  Dispatcher* d_ = nullptr;
  Reader readers_[2];
  std::vector<Published> log_;
  std::unordered_map<std::string, uint64_t> ids_;  // explicit id -> its sequence
  std::vector<std::shared_ptr<Stream>> live_;      // not kicked
  std::vector<std::shared_ptr<Stream>> all_;
  std::mutex jsMu_;
  std::unordered_map<uint64_t, std::shared_ptr<Stream>> js_;
};

TEST(HistoryReplayTest, ResumesWhilePublishingAtFullRate) {
  const long ops = historyOps();
  const int64_t frames0 = Frame::liveCount();
  const int fds0 = openFdCount();
  const auto t0 = Clock::now();
  Totals totals;
  {
    ReplayWorld world(20261203, ops);
    world.run(&totals);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::string resets;
  for (const auto& [reason, n] : totals.resets) resets += " " + reason + "=" + std::to_string(n);
  std::printf(
      "[ replay   ] %ld events published, %zu streams (%zu JS transport, %zu kicked): %zu replays of %zu events, "
      "%zu without a cursor, resets%s; %zu live events and %zu position heartbeats checked; %zu sequenced batches; "
      "%.1f s\n",
      ops, totals.streams, totals.js, totals.kicked, totals.replays, totals.replayed, totals.noCursor, resets.c_str(),
      totals.live, totals.heartbeats, totals.batches, secs);
  EXPECT_EQ(Frame::liveCount(), frames0) << "frames leaked";
  EXPECT_EQ(openFdCount(), fds0) << "fds leaked";
  if (ops >= 20000) {
    // The run covered every path (the seed is fixed; this guards the generator).
    EXPECT_GT(totals.replays, 100u);
    EXPECT_GT(totals.replayed, 1000u);
    EXPECT_GT(totals.heartbeats, 0u);
    EXPECT_GT(totals.js, 10u);
    EXPECT_GT(totals.batches, 100u);
    for (const char* r : {"unknown", "epoch", "expired", "limit"}) EXPECT_GT(totals.resets[r], 0u) << r;
  }
}

// ---------------------------------------------------------------------------
// Focused cases

class HistoryDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    frames0_ = Frame::liveCount();
    fds0_ = openFdCount();
  }
  void TearDown() override {
    d_.reset();
    for (int fd : peers_) ::close(fd);
    EXPECT_EQ(Frame::liveCount(), frames0_) << "frames leaked";
    EXPECT_EQ(openFdCount(), fds0_) << "fds leaked";
  }

  Dispatcher& start(uint32_t heartbeatMs, uint64_t maxEvents, uint64_t maxReplay, size_t maxQueueBytes = 1 << 20) {
    HubOptions o;
    o.threads = 2;
    o.shard.heartbeatMs = heartbeatMs;
    o.shard.maxQueueBytes = maxQueueBytes;
    history::HistoryOptions h;
    h.epoch = std::string(kEpoch);
    h.maxEvents = maxEvents;
    h.maxReplayEvents = maxReplay;
    o.history = h;
    d_ = std::make_unique<Dispatcher>(o, &sink_);
    EXPECT_EQ(d_->start(), 0);
    return *d_;
  }

  int adopt(StreamOptions so, uint64_t* id = nullptr) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peers_.push_back(sv[1]);
    uint64_t got = 0;
    EXPECT_EQ(d_->adopt(sv[0], "", false, std::move(so), &got), Status::kOk);
    if (id) *id = got;
    return sv[1];
  }

  static StreamOptions resumeFrom(std::optional<std::string> cursor, std::vector<std::string> topics = {"a"}) {
    StreamOptions so;
    so.topics = std::move(topics);
    so.lastEventId = std::move(cursor);
    return so;
  }

  void publish(std::string_view topic, std::string_view data, std::optional<std::string_view> id = std::nullopt,
               const std::vector<std::string_view>* users = nullptr) {
    EventFields ev;
    ev.data = data;
    ev.id = id;
    ASSERT_EQ(d_->publish(topic, ev, users), Status::kOk);
  }

  static std::string event(uint64_t seq, std::string_view data) {
    return "id: " + cursorOf(seq) + "\ndata: " + std::string(data) + "\n\n";
  }

  TestSink sink_;
  std::unique_ptr<Dispatcher> d_;
  std::vector<int> peers_;
  int64_t frames0_ = 0;
  int fds0_ = 0;
};

TEST_F(HistoryDispatcherTest, EveryResetReasonThenLiveEvents) {
  Dispatcher& d = start(/*heartbeatMs=*/0, /*maxEvents=*/5, /*maxReplay=*/2);
  // "a" 1 3 5 7, "b" 2 4 6 8; 7 has the publisher's id "seven"; 4..8 are held.
  for (int i = 1; i <= 8; ++i) {
    publish(i % 2 ? "a" : "b", "e" + std::to_string(i),
            i == 7 ? std::optional<std::string_view>("seven") : std::nullopt);
  }
  d.flush();
  struct Case {
    std::optional<std::string> cursor;
    std::string first;
  };
  const std::vector<Case> cases = {
      {"<script>alert(1)</script>", resetFrame("unknown", std::nullopt, 4, 8)},
      {"Rp1ay-9", resetFrame("unknown", std::nullopt, 4, 8)},
      {"gone-id", resetFrame("unknown", std::nullopt, 4, 8)},
      {"Rp1ay-007", resetFrame("unknown", std::nullopt, 4, 8)},
      {"Other-3", resetFrame("epoch", std::nullopt, 4, 8)},
      {"Rp1ay-2", resetFrame("expired", 2, 4, 8)},
      {"Rp1ay-0", resetFrame("expired", 0, 4, 8)},
      {"Rp1ay-3", resetFrame("limit", 3, 4, 8)},  // 4..8 for {"a", "b"}: more than maxReplayEvents 2
  };
  std::vector<int> peers;
  for (const Case& c : cases) peers.push_back(adopt(resumeFrom(c.cursor, {"a", "b"})));
  const int replayed = adopt(resumeFrom(std::string("Rp1ay-4")));
  const int byId = adopt(resumeFrom(std::string("seven"), {"a", "b"}));
  const int empty = adopt(resumeFrom(std::string("")));
  const int fresh = adopt(resumeFrom(std::nullopt));
  d.flush();
  publish("a", "live");
  d.flush();
  const std::string live = event(9, "live");
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_READ(peers[i], cases[i].first + live);
  }
  EXPECT_READ(replayed, event(5, "e5") + "id: seven\ndata: e7\n\n" + positionFrame(8) + live);
  EXPECT_READ(byId, event(8, "e8") + positionFrame(8) + live);
  EXPECT_READ(empty, resetFrame("unknown", std::nullopt, 4, 8) + live);
  EXPECT_READ(fresh, positionFrame(8) + live);
  for (int p : peers) EXPECT_EQ(readFor(p, 50ms), "");
  const history::HistoryStats s = d.history()->stats();
  EXPECT_EQ(s.resets[static_cast<size_t>(history::ResetReason::kUnknown)], 5u);
  EXPECT_EQ(s.resets[static_cast<size_t>(history::ResetReason::kEpoch)], 1u);
  EXPECT_EQ(s.resets[static_cast<size_t>(history::ResetReason::kExpired)], 2u);
  EXPECT_EQ(s.resets[static_cast<size_t>(history::ResetReason::kLimit)], 1u);
  EXPECT_EQ(s.replays, 2u);
  EXPECT_EQ(s.replayedEvents, 3u);
}

// A replay that would not fit the stream's queue (maxQueueBytes) is a
// "limit" reset, not a stream closed as slow; one that fits is sent whole.
TEST_F(HistoryDispatcherTest, AReplayPastMaxQueueBytesIsALimitReset) {
  Dispatcher& d = start(/*heartbeatMs=*/0, /*maxEvents=*/1000, /*maxReplay=*/1000, /*maxQueueBytes=*/4096);
  const std::string data(100, 'x');
  for (int i = 0; i < 40; ++i) publish("a", data);  // 40 frames of 120-121 bytes: about 4.8 kB
  d.flush();
  uint64_t tooMuchId = 0, fitsId = 0;
  const int tooMuch = adopt(resumeFrom(cursorOf(0)), &tooMuchId);
  const int fits = adopt(resumeFrom(cursorOf(30)), &fitsId);
  d.flush();
  publish("a", "live");
  d.flush();
  EXPECT_READ(tooMuch, resetFrame("limit", 0, 1, 40) + event(41, "live"));
  std::string replay;
  for (uint64_t seq = 31; seq <= 40; ++seq) replay += event(seq, data);
  EXPECT_READ(fits, replay + positionFrame(40) + event(41, "live"));
  EXPECT_FALSE(sink_.reasonOf(tooMuchId).has_value());
  EXPECT_FALSE(sink_.reasonOf(fitsId).has_value());
  EXPECT_EQ(d.history()->stats().resets[static_cast<size_t>(history::ResetReason::kLimit)], 1u);
}

TEST_F(HistoryDispatcherTest, HeartbeatsCarryThePosition) {
  Dispatcher& d = start(/*heartbeatMs=*/20, 100, 100);
  const int quiet = adopt(resumeFrom(std::nullopt, {"q"}));
  StreamOptions off = resumeFrom(std::nullopt, {"q"});
  off.history = false;
  const int optedOut = adopt(std::move(off));
  uint64_t jsId = 0;
  ASSERT_EQ(d.attach(resumeFrom(std::nullopt, {"q"}), &jsId), Status::kOk);
  d.flush();
  EXPECT_READ(quiet, positionFrame(0));
  EXPECT_READ(quiet, positionHeartbeat(0));
  EXPECT_READ(optedOut, std::string(kHeartbeat));  // no position frame, plain heartbeats
  publish("other", "1");
  publish("other", "2");
  // A private event for a user with no connection reaches no shard as an
  // event, but still moves every shard's position.
  const std::vector<std::string_view> nobody = {"ghost"};
  publish("q", "3", std::nullopt, &nobody);
  d.flush();
  EXPECT_TRUE(readsUntil(quiet, positionHeartbeat(3)));
  EXPECT_READ(optedOut, std::string(kHeartbeat));  // still plain: no position, no event
  EXPECT_TRUE(waitFor([&] {
    for (const JsDelivery& j : sink_.js()) {
      if (j.bytes == positionHeartbeat(3) && std::find(j.ids.begin(), j.ids.end(), jsId) != j.ids.end()) return true;
    }
    return false;
  })) << "the JS-transport stream never got a position heartbeat";
  const std::vector<JsDelivery> js = sink_.js();
  ASSERT_FALSE(js.empty());
  EXPECT_EQ(js.front().bytes, positionFrame(0));
}

// ---------------------------------------------------------------------------
// Sequences from outside (Dispatcher::publishSequenced, rebase)

std::string resetIn(std::string_view epoch, std::string_view reason, std::optional<uint64_t> requested,
                    std::optional<uint64_t> oldest, uint64_t latest) {
  auto at = [&](uint64_t seq) { return std::string(epoch) + "-" + std::to_string(seq); };
  auto json = [&](std::optional<uint64_t> s) { return s ? "\"" + at(*s) + "\"" : std::string("null"); };
  return "event: reset\nid: " + at(latest) + "\ndata: {\"reason\":\"" + std::string(reason) +
         "\",\"requested\":" + json(requested) + ",\"oldest\":" + json(oldest) + ",\"latest\":" + json(latest) +
         "}\n\n";
}

Dispatcher::SequencedEvent seqEvent(std::string_view topic, std::string_view data,
                                    const std::vector<std::string_view>* users = nullptr,
                                    std::optional<std::string_view> id = std::nullopt,
                                    std::optional<std::string_view> name = std::nullopt) {
  Dispatcher::SequencedEvent e;
  e.topic = topic;
  e.event.data = data;
  e.event.id = id;
  e.event.event = name;
  e.users = users;
  return e;
}

Dispatcher::SequencedEvent skipped() {
  Dispatcher::SequencedEvent e;
  e.skip = true;
  return e;
}

// The JS-transport frames handed for one connection, in order.
std::vector<std::string> jsFramesOf(const TestSink& sink, uint64_t id) {
  std::vector<std::string> out;
  for (const JsDelivery& j : sink.js()) {
    if (std::find(j.ids.begin(), j.ids.end(), id) != j.ids.end()) out.push_back(j.bytes);
  }
  return out;
}

// A stream connected across a rebase gets exactly one reset (the new
// position), then the batch's events with the caller's ids, in batch order,
// after every event posted before; a stream that takes no part in history
// gets no reset; resumes afterwards are placed in the new epoch.
TEST_F(HistoryDispatcherTest, ABatchOfAnotherEpochRebasesWithOneResetThenItsEvents) {
  Dispatcher& d = start(/*heartbeatMs=*/0, /*maxEvents=*/100, /*maxReplay=*/100);
  const int native = adopt(resumeFrom(std::nullopt));
  StreamOptions off = resumeFrom(std::nullopt);
  off.history = false;
  const int optedOut = adopt(std::move(off));
  uint64_t jsId = 0;
  ASSERT_EQ(d.attach(resumeFrom(std::nullopt), &jsId), Status::kOk);
  publish("a", "l1");
  const std::vector<std::string_view> ghost = {"ghost"};
  const std::vector<Dispatcher::SequencedEvent> batch = {
      seqEvent("a", "e10"),
      seqEvent("b", "e11"),
      seqEvent("a", "e12", &ghost),
      skipped(),
      seqEvent("a", "e14", nullptr, std::string_view("pub")),
      seqEvent("", "e15", nullptr, std::nullopt, std::string_view("tick")),
  };
  ASSERT_EQ(d.publishSequenced("Nw", 10, batch), Status::kOk);
  d.flush();
  const std::string events =
      "id: Nw-10\ndata: e10\n\n"
      "id: pub\ndata: e14\n\n"
      "event: tick\nid: Nw-15\ndata: e15\n\n";
  const std::string reset = resetIn("Nw", "epoch", std::nullopt, std::nullopt, 9);
  EXPECT_READ(native, positionFrame(0) + event(1, "l1") + reset + events);
  EXPECT_READ(optedOut, event(1, "l1") + events);
  EXPECT_TRUE(waitFor([&] { return jsFramesOf(sink_, jsId).size() >= 6; }));
  EXPECT_EQ(jsFramesOf(sink_, jsId),
            (std::vector<std::string>{positionFrame(0), event(1, "l1"), reset, "id: Nw-10\ndata: e10\n\n",
                                      "id: pub\ndata: e14\n\n", "event: tick\nid: Nw-15\ndata: e15\n\n"}));
  history::HistoryStats s = d.history()->stats();
  EXPECT_EQ(s.latest, 15u);
  EXPECT_EQ(s.oldest, 10u);
  EXPECT_EQ(s.events, 6u) << "the skipped sequence is held";
  EXPECT_EQ(s.rebases, 1u);
  EXPECT_EQ(d.history()->options().epoch, "Nw");
  EXPECT_EQ(d.stats().published, 1u + 5u) << "l1 and every event of the batch but the skipped one";

  // Resumes after the rebase.
  const int stale = adopt(resumeFrom(cursorOf(1)));
  const int fromGap = adopt(resumeFrom(std::string("Nw-9")));
  const int expired = adopt(resumeFrom(std::string("Nw-5")));
  const int byId = adopt(resumeFrom(std::string("pub")));
  d.flush();
  EXPECT_READ(stale, resetIn("Nw", "epoch", std::nullopt, 10, 15));
  EXPECT_READ(fromGap, events + "id: Nw-15\n\n");
  EXPECT_READ(expired, resetIn("Nw", "expired", 5, 10, 15));
  EXPECT_READ(byId, "event: tick\nid: Nw-15\ndata: e15\n\nid: Nw-15\n\n");
  // A local publish continues the caller's sequence.
  publish("a", "l16");
  d.flush();
  for (int fd : {native, optedOut, stale, fromGap, expired, byId}) EXPECT_READ(fd, "id: Nw-16\ndata: l16\n\n");
  for (int fd : {native, optedOut, stale, fromGap, expired, byId}) EXPECT_EQ(readFor(fd, 30ms), "");
}

TEST_F(HistoryDispatcherTest, AGapOrARebaseMovesThePositionHeartbeatsCarry) {
  Dispatcher& d = start(/*heartbeatMs=*/20, 100, 100);
  const int quiet = adopt(resumeFrom(std::nullopt, {"q"}));
  d.flush();
  EXPECT_READ(quiet, positionFrame(0));
  EXPECT_READ(quiet, positionHeartbeat(0));
  // An explicit rebase to another epoch: a reset, then heartbeats of the new position.
  ASSERT_EQ(d.rebase("Nw", 50), Status::kOk);
  d.flush();
  EXPECT_TRUE(readsUntil(quiet, resetIn("Nw", "epoch", std::nullopt, std::nullopt, 50) + ": \nid: Nw-50\n\n"));
  // A batch whose last event reaches nobody still moves the position.
  const std::vector<std::string_view> ghost = {"ghost"};
  ASSERT_EQ(d.publishSequenced("Nw", 51, {seqEvent("other", "x"), seqEvent("q", "private", &ghost), skipped()}),
            Status::kOk);
  d.flush();
  EXPECT_TRUE(readsUntil(quiet, ": \nid: Nw-53\n\n"));
  // A gap in the same epoch: reason "expired".
  ASSERT_EQ(d.publishSequenced("Nw", 60, {seqEvent("q", "e60")}), Status::kOk);
  d.flush();
  EXPECT_TRUE(readsUntil(
      quiet, resetIn("Nw", "expired", std::nullopt, std::nullopt, 59) + "id: Nw-60\ndata: e60\n\n: \nid: Nw-60\n\n"));
  EXPECT_EQ(d.history()->stats().rebases, 2u);
}

// rebase(..., reset = false) (the Redis bus's outage transitions): no reset
// to anyone; the history and later ids are those of
// the new epoch, and a resume with a cursor of the old one still gets its reset.
TEST_F(HistoryDispatcherTest, ARebaseWithoutResetSendsNoResetButMovesThePosition) {
  Dispatcher& d = start(/*heartbeatMs=*/0, 100, 100);
  const int quiet = adopt(resumeFrom(std::nullopt, {"q"}));
  uint64_t jsId = 0;
  ASSERT_EQ(d.attach(resumeFrom(std::nullopt, {"q"}), &jsId), Status::kOk);
  publish("q", "l1");
  d.flush();
  EXPECT_READ(quiet, positionFrame(0) + event(1, "l1"));
  ASSERT_EQ(d.rebase("Lc", 0, /*reset=*/false), Status::kOk);
  publish("q", "l2");
  d.flush();
  EXPECT_READ(quiet, "id: Lc-1\ndata: l2\n\n");
  EXPECT_EQ(readFor(quiet, 30ms), "") << "no reset";
  EXPECT_TRUE(waitFor([&] { return jsFramesOf(sink_, jsId).size() >= 3; }));
  EXPECT_EQ(jsFramesOf(sink_, jsId),
            (std::vector<std::string>{positionFrame(0), event(1, "l1"), "id: Lc-1\ndata: l2\n\n"}));
  history::HistoryStats s = d.history()->stats();
  EXPECT_EQ(s.rebases, 1u);
  EXPECT_EQ(s.latest, 1u);
  EXPECT_EQ(d.history()->options().epoch, "Lc");
  const int old = adopt(resumeFrom(cursorOf(1)));
  d.flush();
  EXPECT_READ(old, resetIn("Lc", "epoch", std::nullopt, 1, 1));
}

TEST_F(HistoryDispatcherTest, ARebaseReleasesTheFramesTheHistoryHeld) {
  Dispatcher& d = start(/*heartbeatMs=*/0, 100, 100);
  for (int i = 0; i < 5; ++i) publish("a", "x");
  d.flush();
  const int64_t held = Frame::liveCount();  // the 5 frames, once the shards have let go of theirs
  EXPECT_TRUE(waitFor([&] { return d.stats().pendingCommands == 0; }));
  ASSERT_EQ(d.rebase("Nw", 5), Status::kOk);
  d.flush();
  EXPECT_TRUE(waitFor([&] { return Frame::liveCount() <= held - 5; }))
      << Frame::liveCount() << " frames live, " << held << " before the rebase";
  EXPECT_EQ(d.history()->stats().bytes, 0u);
}

TEST_F(HistoryDispatcherTest, ABatchIsAllOrNothing) {
  HubOptions o;
  o.threads = 2;
  o.shard.heartbeatMs = 0;
  o.shard.maxQueueBytes = 4096;
  o.maxPendingCommands = 4;
  history::HistoryOptions h;
  h.epoch = std::string(kEpoch);
  o.history = h;
  d_ = std::make_unique<Dispatcher>(o, &sink_);
  ASSERT_EQ(d_->start(), 0);
  Dispatcher& d = *d_;
  const int peer = adopt(resumeFrom(std::nullopt));
  d.flush();
  EXPECT_READ(peer, positionFrame(0));
  const std::vector<Dispatcher::SequencedEvent> two = {seqEvent("a", "1"), seqEvent("a", "2")};
  std::vector<Dispatcher::SequencedEvent> tooMany(Dispatcher::kMaxBatchEvents + 1, seqEvent("a", "x"));
  const std::string big(5000, 'x');
  struct Case {
    const char* what;
    Status want;
    std::string epoch;
    uint64_t first;
    std::vector<Dispatcher::SequencedEvent> events;
  };
  const std::vector<Case> cases = {
      {"epoch with a dash", Status::kInvalidId, "a-b", 1, two},
      {"empty epoch", Status::kInvalidId, "", 1, two},
      {"33-byte epoch", Status::kInvalidId, std::string(33, 'e'), 1, two},
      {"first seq 0", Status::kInvalidId, "Nw", 0, two},
      {"past 2^53 - 1", Status::kInvalidId, "Nw", history::kMaxSeq, two},
      {"too many events", Status::kDataTooLarge, "Nw", 1, tooMany},
      {"a bad topic last", Status::kInvalidTopic, "Nw", 1, {seqEvent("a", "1"), seqEvent("a\nb", "2")}},
      {"a bad event name",
       Status::kInvalidEvent,
       "Nw",
       1,
       {seqEvent("a", "1"), seqEvent("a", "2", nullptr, std::nullopt, std::string_view("x\ny"))}},
      {"a bad id", Status::kInvalidId, "Nw", 1, {seqEvent("a", "1", nullptr, std::string_view("x\ry"))}},
      {"an event past maxQueueBytes", Status::kDataTooLarge, "Nw", 1, {seqEvent("a", "1"), seqEvent("a", big)}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(d.publishSequenced(c.epoch, c.first, c.events), c.want) << c.what;
    EXPECT_EQ(d.history()->latest(), 0u) << c.what;
    EXPECT_EQ(d.history()->options().epoch, kEpoch) << c.what;
    EXPECT_EQ(d.stats().pendingCommands, 0u) << c.what << ": nothing posted";
  }
  EXPECT_EQ(d.rebase("a-b", 1), Status::kInvalidId);
  EXPECT_EQ(d.rebase("Nw", history::kMaxSeq + 1), Status::kInvalidId);
  EXPECT_EQ(d.publishSequenced("Nw", 7, {}), Status::kOk) << "an empty batch";
  EXPECT_EQ(d.history()->options().epoch, kEpoch) << "an empty batch changes nothing";
  EXPECT_EQ(d.stats().published, 0u);

  // The pending bound: two commands wait in each shard's batch; three more
  // (and a rebase's) do not fit 4: nothing of the batch is taken.
  publish("a", "p1");
  publish("a", "p2");
  const uint64_t full = d.stats().queueFull;
  EXPECT_EQ(d.publishSequenced("Nw", 3, {seqEvent("a", "3"), seqEvent("a", "4"), seqEvent("a", "5")}),
            Status::kQueueFull);
  EXPECT_GT(d.stats().queueFull, full);
  EXPECT_EQ(d.history()->latest(), 2u);
  EXPECT_EQ(d.history()->options().epoch, kEpoch);
  EXPECT_EQ(d.history()->stats().rebases, 0u);
  d.flush();
  EXPECT_READ(peer, event(1, "p1") + event(2, "p2"));
  EXPECT_TRUE(waitFor([&] { return d.stats().pendingCommands == 0; }));
  EXPECT_EQ(d.publishSequenced("Nw", 3, {seqEvent("a", "3"), seqEvent("a", "4"), seqEvent("a", "5")}), Status::kOk);
  d.flush();
  EXPECT_READ(peer, resetIn("Nw", "epoch", std::nullopt, std::nullopt, 2) +
                        "id: Nw-3\ndata: 3\n\nid: Nw-4\ndata: 4\n\nid: Nw-5\ndata: 5\n\n");

  d.close();
  EXPECT_EQ(d.publishSequenced("Nw", 6, two), Status::kClosed);
  EXPECT_EQ(d.rebase("Nw", 6), Status::kClosed);
}

TEST(SequencedWithoutHistoryTest, IsRefused) {
  TestSink sink;
  HubOptions o;
  o.threads = 1;
  Dispatcher d(o, &sink);
  ASSERT_EQ(d.start(), 0);
  EXPECT_EQ(d.publishSequenced("Nw", 1, {seqEvent("a", "1")}), Status::kInvalidId);
  EXPECT_EQ(d.rebase("Nw", 1), Status::kInvalidId);
}

// ---- routed publishes (a protocol's events: Mercure) -------------------------

// Accepts the protocol tags that end with one of its characters.
class TailFilter final : public history::ReplayFilter {
 public:
  explicit TailFilter(std::string tails) : tails_(std::move(tails)) {}
  bool accepts(std::string_view tag) const override {
    return !tag.empty() && tails_.find(tag.back()) != std::string::npos;
  }

 private:
  std::string tails_;
};

std::string route(char c) { return std::string("\0r", 2) + c; }
std::string protocolTag(char c) { return std::string("\0T", 2) + c; }

Status publishRouted(Dispatcher& d, std::string_view id, std::string_view data, char tag,
                     std::vector<std::string> routes) {
  EventFields ev;
  ev.id = id;
  ev.data = data;
  return d.publishRouted(ev, protocolTag(tag), std::move(routes));
}

StreamOptions routedStream(std::vector<std::string> routes, const history::ReplayFilter* filter,
                           std::optional<std::string> cursor) {
  StreamOptions so;
  so.routes = std::move(routes);
  so.replayFilter = filter;
  so.positions = false;
  so.lastEventId = std::move(cursor);
  return so;
}

std::string idEvent(std::string_view id, std::string_view data) {
  return "id: " + std::string(id) + "\ndata: " + std::string(data) + "\n\n";
}

// One frame to every route's connections, each once (a connection on two of
// them too); replay through the filter only, no position, no reset, no
// broadcast; plain streams neither take nor replay a protocol's events.
TEST_F(HistoryDispatcherTest, RoutedEventsReachTheirRoutesOnceAndReplayThroughTheFilter) {
  Dispatcher& d = start(/*heartbeatMs=*/0, 100, 100);
  const TailFilter onlyX("x"), xOrY("xy");
  const int plain = adopt(resumeFrom(std::nullopt, {"a"}));
  const int r1 = adopt(routedStream({route('1')}, &onlyX, std::nullopt));
  const int r2 = adopt(routedStream({route('2')}, &xOrY, std::nullopt));
  const int both = adopt(routedStream({route('1'), route('2')}, &xOrY, std::nullopt));
  d.flush();
  EXPECT_READ(plain, positionFrame(0));
  ASSERT_EQ(publishRouted(d, "u1", "one", 'x', {route('1'), route('2')}), Status::kOk);
  publish("a", "plain");
  ASSERT_EQ(publishRouted(d, "u3", "three", 'y', {route('2')}), Status::kOk);
  ASSERT_EQ(publishRouted(d, "u4", "four", 'z', {}), Status::kOk);  // no route: a position only
  EventFields all;
  all.data = "all";
  ASSERT_EQ(d.broadcast(all, nullptr), Status::kOk);  // not to a protocol's streams
  d.flush();
  EXPECT_READ(r1, idEvent("u1", "one"));
  EXPECT_READ(r2, idEvent("u1", "one") + idEvent("u3", "three"));
  EXPECT_READ(both, idEvent("u1", "one") + idEvent("u3", "three"));
  EXPECT_READ(plain, event(2, "plain") + event(5, "all"));
  EXPECT_EQ(d.history()->latest(), 5u);

  // Resumes: from "u1", through each filter; a plain stream from 0 sees only
  // its own topic's event; a cursor the history cannot place replays nothing.
  const int resumedX = adopt(routedStream({route('9')}, &onlyX, std::string("Rp1ay-0")));
  const int resumedXY = adopt(routedStream({route('9')}, &xOrY, std::string("u1")));
  const int unknown = adopt(routedStream({route('9')}, &xOrY, std::string("nope")));
  // u3 ('y') is not onlyX's to know of: its id is an unknown cursor to it.
  const int probing = adopt(routedStream({route('9')}, &onlyX, std::string("u3")));
  // With cursorIdsOnly, only an id places a stream, not a cursor of the hub's own.
  StreamOptions idsOnly = routedStream({route('9')}, &xOrY, cursorOf(2));
  idsOnly.cursorIdsOnly = true;
  const int byCursor = adopt(std::move(idsOnly));
  const int plainResumed = adopt(resumeFrom(cursorOf(0), {"a"}));
  d.flush();
  ASSERT_EQ(publishRouted(d, "u5", "five", 'x', {route('9')}), Status::kOk);
  d.flush();
  EXPECT_READ(resumedX, idEvent("u1", "one") + idEvent("u5", "five"));
  EXPECT_READ(resumedXY, idEvent("u3", "three") + idEvent("u5", "five"));
  EXPECT_READ(unknown, idEvent("u5", "five"));
  EXPECT_READ(probing, idEvent("u5", "five"));
  EXPECT_READ(byCursor, idEvent("u5", "five"));
  EXPECT_READ(plainResumed, event(2, "plain") + event(5, "all") + positionFrame(5));
  for (int fd : {r1, r2, both, resumedX, resumedXY, unknown, probing, byCursor}) EXPECT_EQ(readFor(fd, 30ms), "");
  EXPECT_EQ(d.history()->stats().resets[static_cast<size_t>(history::ResetReason::kUnknown)], 3u);

  // The newest event a filter may see, never a newer one it may not.
  history::Reader rx;
  rx.filter = &onlyX;
  EXPECT_EQ(d.history()->newestMatching(rx, 100), std::optional<std::string>("u5"));
  const TailFilter onlyY("y"), none("");
  history::Reader ry;
  ry.filter = &onlyY;
  EXPECT_EQ(d.history()->newestMatching(ry, 100), std::optional<std::string>("u3"));
  EXPECT_EQ(d.history()->newestMatching(ry, 3), std::nullopt);  // only u4, the broadcast and u5 scanned
  history::Reader rn;
  rn.filter = &none;
  EXPECT_EQ(d.history()->newestMatching(rn, 100), std::nullopt);
}

// Past maxReplayEvents a protocol's stream (no reset event to tell it) gets
// the newest events that fit, in order, then live ones.
TEST_F(HistoryDispatcherTest, ARoutedReplayPastTheLimitGetsTheNewestThatFit) {
  Dispatcher& d = start(/*heartbeatMs=*/0, /*maxEvents=*/100, /*maxReplay=*/2);
  const TailFilter onlyX("x");
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(publishRouted(d, "u" + std::to_string(i), "d" + std::to_string(i), i == 4 ? 'y' : 'x', {}), Status::kOk);
  }
  const int all = adopt(routedStream({route('1')}, &onlyX, cursorOf(0)));
  const int two = adopt(routedStream({route('1')}, &onlyX, std::string("u2")));
  d.flush();
  ASSERT_EQ(publishRouted(d, "u6", "d6", 'x', {route('1')}), Status::kOk);
  d.flush();
  EXPECT_READ(all, idEvent("u3", "d3") + idEvent("u5", "d5") + idEvent("u6", "d6"));
  EXPECT_READ(two, idEvent("u3", "d3") + idEvent("u5", "d5") + idEvent("u6", "d6"));
  const history::HistoryStats s = d.history()->stats();
  EXPECT_EQ(s.resets[static_cast<size_t>(history::ResetReason::kLimit)], 1u);  // only the first was cut
  EXPECT_EQ(s.replays, 2u);
  EXPECT_EQ(s.replayedEvents, 4u);
}

TEST_F(HistoryDispatcherTest, ARoutedPublishIsCheckedBeforeAnythingChanges) {
  Dispatcher& d = start(/*heartbeatMs=*/0, 100, 100);
  EventFields ev;
  ev.data = "x";
  EXPECT_EQ(d.publishRouted(ev, "plain-tag", {route('1')}), Status::kInvalidTopic);
  EXPECT_EQ(d.publishRouted(ev, "", {route('1')}), Status::kInvalidTopic);
  EXPECT_EQ(d.publishRouted(ev, protocolTag('x'), {"app-topic"}), Status::kInvalidTopic);
  ev.event = "bad\nname";
  EXPECT_EQ(d.publishRouted(ev, protocolTag('x'), {route('1')}), Status::kInvalidEvent);
  EXPECT_EQ(d.history()->latest(), 0u);
  StreamOptions bad = routedStream({"not-internal"}, nullptr, std::nullopt);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  peers_.push_back(sv[1]);
  uint64_t id = 0;
  EXPECT_EQ(d.adopt(sv[0], "", false, std::move(bad), &id), Status::kInvalidTopic);  // takes and closes sv[0]
  d.close();
  ev.event.reset();
  EXPECT_EQ(d.publishRouted(ev, protocolTag('x'), {route('1')}), Status::kClosed);
}

// The replay and the live routed events meet with no gap and no duplicate
// while the JS thread keeps publishing and adopting (run under TSan in CI):
// every stream reads exactly the events after its cursor its filter takes
// (or, for a cursor naming an event it does not take, the events after its
// adopt).
TEST_F(HistoryDispatcherTest, RoutedResumesWhilePublishingMeetWithNoGapAndNoDuplicate) {
  constexpr int kEvents = 3000;
  constexpr int kEvery = 100;
  Dispatcher& d = start(/*heartbeatMs=*/0, /*maxEvents=*/kEvents, /*maxReplay=*/kEvents);
  const TailFilter filters[3] = {TailFilter("0"), TailFilter("1"), TailFilter("02")};
  const std::string tails[3] = {"0", "1", "02"};
  struct Resumed {
    int fd;
    int k;
    int after;
  };
  std::vector<Resumed> streams;
  std::mt19937 rng(7);
  auto tagOf = [](int i) { return static_cast<char>('0' + i % 3); };
  auto routesOf = [&](int i) {
    std::vector<std::string> r;
    for (int k = 0; k < 3; ++k) {
      if (tails[k].find(tagOf(i)) != std::string::npos) r.push_back(route(static_cast<char>('a' + k)));
    }
    return r;
  };
  for (int i = 1; i <= kEvents; ++i) {
    ASSERT_EQ(publishRouted(d, "u" + std::to_string(i), "d" + std::to_string(i), tagOf(i), routesOf(i)), Status::kOk);
    if (i % kEvery == 0) {
      const int k = static_cast<int>(streams.size() % 3);
      const int after = static_cast<int>(rng() % static_cast<unsigned>(i));  // u0 is unknown: none
      std::optional<std::string> cursor;
      if (after > 0) cursor = "u" + std::to_string(after);
      const int fd = adopt(routedStream({route(static_cast<char>('a' + k))}, &filters[k], cursor));
      streams.push_back({fd, k, after});
    }
    if (i % 7 == 0) d.flush();  // a "JS job"
  }
  d.flush();
  for (const Resumed& s : streams) {
    std::string want;
    // A stream with no cursor starts at its adopt (every kEvery events).
    const int adoptedAt = static_cast<int>((&s - streams.data() + 1) * kEvery);
    // A cursor naming an event the stream's filter does not take is unknown
    // to it (History::mayKnowOf): it starts at its adopt too.
    const bool known = s.after > 0 && tails[s.k].find(tagOf(s.after)) != std::string::npos;
    const int from = known ? s.after : adoptedAt;
    for (int i = from + 1; i <= kEvents; ++i) {
      if (tails[s.k].find(tagOf(i)) != std::string::npos)
        want += idEvent("u" + std::to_string(i), "d" + std::to_string(i));
    }
    EXPECT_READ(s.fd, want);
    EXPECT_EQ(readFor(s.fd, 10ms), "");
  }
}

}  // namespace
}  // namespace ssefanout::test
