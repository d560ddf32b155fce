// Tests for History (src/history/history.hpp): the bounded ring of shared
// frames, cursors placed in it, replay selection, catch-up reads, the reset
// and position frames, and the stats.
//
// The unit tests pin the edges (limits by count, bytes and age at their
// boundaries; explicit ids, repeated and trimmed; the reset frame's exact
// bytes). The randomised test drives History and the naive HistoryModel
// (history_model.hpp) with the same thousands of operations under several
// seeds and checks every answer. matchesAny is cross-checked against
// TopicIndex::match on random topics and patterns. Every test checks at
// TearDown that Frame::liveCount() is back to its value at SetUp.
#include "history.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "frame.hpp"
#include "history/history_model.hpp"
#include "sse_encoder.hpp"
#include "topic_index.hpp"

namespace ssefanout::history {
namespace {

using test::HistoryModel;

constexpr std::string_view kEpoch = "Ep0ch";

HistoryOptions options(uint64_t maxEvents = 10000, uint64_t maxBytes = 1 << 20, uint64_t maxAgeMs = 300000,
                       uint64_t maxReplayEvents = 1000) {
  HistoryOptions o;
  o.epoch = std::string(kEpoch);
  o.maxEvents = maxEvents;
  o.maxBytes = maxBytes;
  o.maxAgeMs = maxAgeMs;
  o.maxReplayEvents = maxReplayEvents;
  return o;
}

// An event frame as the Dispatcher makes it: wire id, data, tagged with its topic.
FrameRef frameOf(std::string_view topic, std::string_view id, std::string_view data) {
  EventFields ev;
  ev.id = id;
  ev.data = data;
  FrameRef f;
  EXPECT_EQ(encodeEvent(ev, &f, Frame::Kind::kEvent, topic), Status::kOk);
  return f;
}

std::string cursor(uint64_t seq) { return std::string(kEpoch) + "-" + std::to_string(seq); }

// The reset event, written out from the contract (docs: history-api).
std::string expectedReset(std::string_view reason, std::optional<uint64_t> requested, std::optional<uint64_t> oldest,
                          uint64_t latest, std::string_view name = "reset") {
  auto json = [](std::optional<uint64_t> s) { return s ? "\"" + cursor(*s) + "\"" : std::string("null"); };
  return "event: " + std::string(name) + "\nid: " + cursor(latest) + "\ndata: {\"reason\":\"" + std::string(reason) +
         "\",\"requested\":" + json(requested) + ",\"oldest\":" + json(oldest) + ",\"latest\":" + json(latest) +
         "}\n\n";
}

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override { frames0_ = Frame::liveCount(); }
  void TearDown() override { EXPECT_EQ(Frame::liveCount(), frames0_) << "frames leaked"; }

  // Appends an event on `topic` with the next cursor as its wire id.
  uint64_t add(History& h, std::string_view topic, uint64_t now = 0,
               const std::vector<std::string_view>* users = nullptr, std::optional<std::string_view> id = std::nullopt,
               std::string_view data = "x") {
    const std::string wire = id ? std::string(*id) : h.cursorOf(h.nextSeq());
    return h.append(frameOf(topic, wire, data), users, id, now);
  }

  std::vector<std::string> replay(History& h, std::string_view from, const std::vector<std::string>& topics,
                                  std::optional<std::string_view> user = std::nullopt, ResetReason* reason = nullptr) {
    std::vector<FrameRef> out;
    Place p = h.locate(from, 0);
    ResetReason r = p.reason;
    if (r == ResetReason::kNone) r = h.selectReplay(p, Reader{&topics, user}, UINT64_MAX, 0, &out);
    if (reason) *reason = r;
    std::vector<std::string> ids;
    for (const FrameRef& f : out) ids.push_back(std::string(f->tag()) + "@" + std::string(f->view()));
    return ids;
  }

  int64_t frames0_ = 0;
};

TEST_F(HistoryTest, FrameTagTravelsWithTheFrameAndIsNeverSent) {
  FrameRef f = frameOf("chat/42", "e-1", "hello");
  EXPECT_EQ(f->tag(), "chat/42");
  EXPECT_EQ(f->view(), "id: e-1\ndata: hello\n\n");
  EXPECT_EQ(f->size(), f->view().size());
  EXPECT_EQ(f->wireSize(true), std::string_view("15\r\n").size() + f->size() + 2);
  FrameRef untagged = frameOf("", "e-2", "x");
  EXPECT_EQ(untagged->tag(), "");
  const std::string longest(Frame::kMaxTag, 't');
  FrameRef big(Frame::allocate(3, Frame::Kind::kEvent, longest));
  EXPECT_EQ(big->tag(), longest);
  EXPECT_EQ(big->size(), 3u);
  // A copy (copyOf) carries no tag.
  FrameRef copy(Frame::copyOf(f->view()));
  EXPECT_EQ(copy->tag(), "");
}

TEST_F(HistoryTest, EmptyHistory) {
  History h(options());
  EXPECT_EQ(h.latest(), 0u);
  EXPECT_EQ(h.oldest(), 1u);
  EXPECT_EQ(h.nextSeq(), 1u);
  EXPECT_EQ(h.size(), 0u);
  Place p = h.locate(cursor(0), 0);
  EXPECT_EQ(p.reason, ResetReason::kNone);
  EXPECT_EQ(p.after, 0u);
  EXPECT_EQ(h.locate(cursor(1), 0).reason, ResetReason::kUnknown);
  FrameRef pos = h.positionFrame();
  EXPECT_EQ(pos->view(), "id: Ep0ch-0\n\n");
  EXPECT_EQ(pos->kind(), Frame::Kind::kControl);
  Place bad;
  bad.reason = ResetReason::kUnknown;
  EXPECT_EQ(h.resetFrame(bad)->view(), expectedReset("unknown", std::nullopt, std::nullopt, 0));
  const HistoryStats s = h.stats();
  EXPECT_EQ(s.events, 0u);
  EXPECT_EQ(s.oldest, 0u);
  EXPECT_EQ(s.latest, 0u);
  EXPECT_EQ(s.resets[static_cast<size_t>(ResetReason::kUnknown)], 1u);
}

TEST_F(HistoryTest, LocatePlacesEveryKindOfCursor) {
  History h(options(/*maxEvents=*/5));
  for (int i = 0; i < 8; ++i) add(h, "a");  // holds 4..8
  EXPECT_EQ(h.oldest(), 4u);
  EXPECT_EQ(h.latest(), 8u);
  EXPECT_EQ(h.locate(cursor(8), 0).after, 8u);
  EXPECT_EQ(h.locate(cursor(3), 0).after, 3u);  // the next one, 4, is held: no gap
  Place expired = h.locate(cursor(2), 0);
  EXPECT_EQ(expired.reason, ResetReason::kExpired);
  EXPECT_EQ(expired.requested, 2u);
  EXPECT_EQ(h.locate(cursor(0), 0).reason, ResetReason::kExpired);
  Place future = h.locate(cursor(9), 0);
  EXPECT_EQ(future.reason, ResetReason::kUnknown);
  EXPECT_FALSE(future.requested);
  EXPECT_EQ(h.locate("other-5", 0).reason, ResetReason::kEpoch);
  EXPECT_EQ(h.locate("Ep0ch-05", 0).reason, ResetReason::kUnknown);
  EXPECT_EQ(h.locate("", 0).reason, ResetReason::kUnknown);
  EXPECT_EQ(h.locate("Ep0ch-9007199254740992", 0).reason, ResetReason::kUnknown);
  EXPECT_EQ(h.locate("Ep0ch-9007199254740991", 0).reason, ResetReason::kUnknown);
}

TEST_F(HistoryTest, ExplicitIdsAreCursorsUntilTheirEventIsTrimmed) {
  History h(options(/*maxEvents=*/4));
  add(h, "a", 0, nullptr, "first");                      // 1
  add(h, "a", 0, nullptr, "dup");                        // 2
  add(h, "a");                                           // 3
  add(h, "a", 0, nullptr, "dup");                        // 4: a repeated id names its latest event
  add(h, "a", 0, nullptr, std::string_view("Ep0ch-1"));  // 5: looks like a cursor; the id wins
  EXPECT_EQ(h.locate("dup", 0).after, 4u);
  EXPECT_EQ(h.locate("Ep0ch-1", 0).after, 5u);
  // "first" went with event 1 (maxEvents 4 holds 2..5); a text that is no cursor: unknown.
  EXPECT_EQ(h.locate("first", 0).reason, ResetReason::kUnknown);
  add(h, "a");  // 6: trims 2, whose "dup" is no longer the latest: 4 still answers
  EXPECT_EQ(h.locate("dup", 0).after, 4u);
  add(h, "a");
  add(h, "a");  // 8: trims 4
  EXPECT_EQ(h.locate("dup", 0).reason, ResetReason::kUnknown);
  add(h, "a");  // 9: trims 5, its id goes; the text is a cursor of ours again, and 1 is long gone
  Place p = h.locate("Ep0ch-1", 0);
  EXPECT_EQ(p.reason, ResetReason::kExpired);
  EXPECT_EQ(p.requested, 1u);
  // An empty explicit id is no key.
  add(h, "a", 0, nullptr, std::string_view(""));
  EXPECT_EQ(h.locate("", 0).reason, ResetReason::kUnknown);
}

TEST_F(HistoryTest, LimitsByCountBytesAndAge) {
  {
    History h(options(/*maxEvents=*/3));
    for (int i = 0; i < 10; ++i) add(h, "a");
    EXPECT_EQ(h.size(), 3u);
    EXPECT_EQ(h.oldest(), 8u);
  }
  {
    const size_t one = frameOf("a", cursor(1), "0123456789")->size();
    History h(options(10000, /*maxBytes=*/3 * one));
    for (int i = 1; i <= 3; ++i) add(h, "a", 0, nullptr, std::nullopt, "0123456789");
    EXPECT_EQ(h.size(), 3u);
    EXPECT_EQ(h.stats().bytes, 3 * one);  // at the limit: kept
    add(h, "a", 0, nullptr, std::nullopt, "0123456789");
    EXPECT_EQ(h.size(), 3u);
    EXPECT_EQ(h.oldest(), 2u);
    add(h, "a", 0, nullptr, std::nullopt, std::string(4 * one, 'z'));  // alone past the limit
    EXPECT_EQ(h.size(), 0u);
    EXPECT_EQ(h.latest(), 5u);
    EXPECT_EQ(h.stats().bytes, 0u);
  }
  {
    History h(options(10000, 1 << 20, /*maxAgeMs=*/100));
    add(h, "a", 1000);
    add(h, "a", 1050);
    h.expire(1100);  // exactly maxAgeMs old: kept
    EXPECT_EQ(h.size(), 2u);
    h.expire(1101);
    EXPECT_EQ(h.size(), 1u);
    EXPECT_EQ(h.locate(cursor(0), 1150).reason, ResetReason::kExpired);  // locate expires too
    EXPECT_EQ(h.locate(cursor(1), 1150).after, 1u);
    Place lost = h.locate(cursor(1), 1151);  // 2 is gone now: the reader at 1 missed it
    EXPECT_EQ(lost.reason, ResetReason::kExpired);
    EXPECT_EQ(lost.requested, 1u);
    EXPECT_EQ(h.size(), 0u);
    EXPECT_EQ(h.locate(cursor(2), 1151).after, 2u);
    add(h, "a", 5000);  // appending expires as well
    EXPECT_EQ(h.size(), 1u);
  }
  {
    History h(options(/*maxEvents=*/0));  // holds nothing, still numbers
    add(h, "a");
    add(h, "a");
    EXPECT_EQ(h.size(), 0u);
    EXPECT_EQ(h.latest(), 2u);
    EXPECT_EQ(h.locate(cursor(2), 0).after, 2u);
    EXPECT_EQ(h.locate(cursor(1), 0).reason, ResetReason::kExpired);
  }
}

TEST_F(HistoryTest, ReplaySelectsWhatTheReaderWouldHaveReceivedLive) {
  History h(options());
  const std::vector<std::string_view> alice = {"alice"};
  const std::vector<std::string_view> both = {"bob", "alice", "bob"};
  add(h, "chat/1", 0, nullptr, std::nullopt, "1");
  add(h, "chat/2/x", 0, nullptr, std::nullopt, "2");
  add(h, "", 0, nullptr, std::nullopt, "3");  // broadcast
  add(h, "chat/1", 0, &alice, std::nullopt, "4");
  add(h, "", 0, &both, std::nullopt, "5");
  add(h, "news", 0, nullptr, std::nullopt, "6");
  add(h, "chat", 0, nullptr, std::nullopt, "7");
  auto seqs = [&](const std::vector<std::string>& topics, std::optional<std::string_view> user) {
    std::vector<FrameRef> out;
    EXPECT_EQ(h.selectReplay(h.locate(cursor(0), 0), Reader{&topics, user}, UINT64_MAX, 0, &out), ResetReason::kNone);
    std::string s;
    for (const FrameRef& f : out) s += f->view().substr(f->view().size() - 3, 1);  // the data digit
    return s;
  };
  EXPECT_EQ(seqs({"chat/*"}, std::nullopt), "123");
  EXPECT_EQ(seqs({"chat/*"}, "alice"), "12345");
  EXPECT_EQ(seqs({"chat/*"}, "bob"), "1235");
  EXPECT_EQ(seqs({"chat/1"}, "carol"), "13");
  EXPECT_EQ(seqs({"chat", "news"}, std::nullopt), "367");
  EXPECT_EQ(seqs({}, std::nullopt), "3");
  EXPECT_EQ(seqs({"chat/2/*"}, std::nullopt), "23");
  EXPECT_EQ(seqs({"chat/2/x/*"}, std::nullopt), "3");
  const HistoryStats s = h.stats();
  EXPECT_EQ(s.replays, 8u);
  EXPECT_EQ(s.replayedEvents, 3u + 5 + 4 + 2 + 3 + 1 + 2 + 1);
}

// publish(..., { users: [] }) reaches nobody live (Dispatcher::resolveUsers);
// the history must not hand it to anyone either.
TEST_F(HistoryTest, AnEmptyUsersListIsPrivateToNobody) {
  History h(options());
  const std::vector<std::string_view> none;
  add(h, "a", 0, &none);
  add(h, "", 0, &none);
  const std::vector<std::string> topics = {"a"};
  EXPECT_TRUE(replay(h, cursor(0), topics).empty());
  EXPECT_TRUE(replay(h, cursor(0), topics, "alice").empty());
  EXPECT_TRUE(replay(h, cursor(0), topics, "").empty());
}

TEST_F(HistoryTest, ReplayLimitsByCountAndBytes) {
  History h(options(10000, 1 << 20, 300000, /*maxReplayEvents=*/3));
  for (int i = 0; i < 5; ++i) add(h, i % 2 ? "b" : "a", 0, nullptr, std::nullopt, "0123456789");
  const std::vector<std::string> a = {"a"}, ab = {"a", "b"};
  std::vector<FrameRef> out;
  out.push_back(h.positionFrame());  // something already there stays
  EXPECT_EQ(h.selectReplay(h.locate(cursor(0), 0), Reader{&a, std::nullopt}, UINT64_MAX, 0, &out),
            ResetReason::kNone);  // 3 of "a": exactly the limit
  EXPECT_EQ(out.size(), 4u);
  EXPECT_EQ(h.selectReplay(h.locate(cursor(0), 0), Reader{&ab, std::nullopt}, UINT64_MAX, 0, &out),
            ResetReason::kLimit);  // 5 > 3, and nothing added
  EXPECT_EQ(out.size(), 4u);
  EXPECT_EQ(h.selectReplay(h.locate(cursor(2), 0), Reader{&ab, std::nullopt}, UINT64_MAX, 0, &out), ResetReason::kNone);
  EXPECT_EQ(out.size(), 7u);
  // Bytes: every frame is the same size; the budget fits exactly two with their framing.
  const uint64_t size = out.back()->size();
  out.clear();
  EXPECT_EQ(h.selectReplay(h.locate(cursor(3), 0), Reader{&ab, std::nullopt}, 2 * (size + 7), 7, &out),
            ResetReason::kNone);
  EXPECT_EQ(out.size(), 2u);
  out.clear();
  EXPECT_EQ(h.selectReplay(h.locate(cursor(3), 0), Reader{&ab, std::nullopt}, 2 * (size + 7) - 1, 7, &out),
            ResetReason::kLimit);
  EXPECT_TRUE(out.empty());
  const HistoryStats s = h.stats();
  EXPECT_EQ(s.replays, 3u);
  EXPECT_EQ(s.replayedEvents, 3u + 3 + 2);
}

// What selectNewest would leave out: the newest match older than all it
// takes (its explicit id, else its cursor), and a resume from that cursor
// takes the same events.
TEST_F(HistoryTest, NewestLeftOutIsTheMatchBeforeTheNewestThatFit) {
  History h(options(10000, 1 << 20, 300000, /*maxReplayEvents=*/2));
  add(h, "a", 0, nullptr, "u1");
  add(h, "b");
  add(h, "a");
  add(h, "b");
  add(h, "a", 0, nullptr, "u5");
  const std::vector<std::string> a = {"a"};
  const Reader reader{&a, std::nullopt};
  EXPECT_EQ(h.newestLeftOut(h.locate(cursor(0), 0), reader, UINT64_MAX, 0),
            std::make_optional(std::make_pair(std::string("u1"), cursor(1))));              // takes 3 and 5
  EXPECT_EQ(h.newestLeftOut(h.locate(cursor(1), 0), reader, UINT64_MAX, 0), std::nullopt);  // all fit
  std::vector<FrameRef> out;
  h.selectNewest(h.locate(cursor(1), 0), reader, UINT64_MAX, 0, &out);
  EXPECT_EQ(out.size(), 2u);
  // Bytes: room for one frame only.
  out.clear();
  h.selectNewest(h.locate(cursor(0), 0), reader, UINT64_MAX, 0, &out);
  const uint64_t size = out.back()->size();
  EXPECT_EQ(h.newestLeftOut(h.locate(cursor(0), 0), reader, size, 0),
            std::make_optional(std::make_pair(cursor(3), cursor(3))));  // no explicit id: its cursor
}

TEST_F(HistoryTest, ReadPagesThroughMatchingEvents) {
  History h(options());
  for (int i = 1; i <= 10; ++i) add(h, i % 3 == 0 ? "other" : "a");  // "a": 1 2 4 5 7 8 10
  const std::vector<std::string> a = {"a"};
  std::vector<uint64_t> seen;
  auto visit = [&](uint64_t seq, Frame* f) {
    EXPECT_EQ(f->tag(), "a");
    seen.push_back(seq);
    return true;
  };
  EXPECT_EQ(h.read(0, Reader{&a, std::nullopt}, 3, visit), 4u);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(h.read(4, Reader{&a, std::nullopt}, 4, visit), 10u);  // exactly the last 4: ends on 10
  EXPECT_EQ(h.read(10, Reader{&a, std::nullopt}, 4, visit), 10u);
  seen.clear();
  EXPECT_EQ(h.read(8, Reader{&a, std::nullopt}, 5, visit), 10u);  // fewer than max: latest
  EXPECT_EQ(seen, (std::vector<uint64_t>{10}));
  seen.clear();
  // visit stops it: the sequence of the one it stopped at.
  EXPECT_EQ(h.read(0, Reader{&a, std::nullopt}, 100,
                   [&](uint64_t seq, Frame*) {
                     seen.push_back(seq);
                     return seq < 5;
                   }),
            5u);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 4, 5}));
  const std::vector<std::string> none = {"zzz"};
  EXPECT_EQ(h.read(0, Reader{&none, std::nullopt}, 3, visit), 10u);
}

TEST_F(HistoryTest, ResetAndPositionFrames) {
  HistoryOptions o = options(/*maxEvents=*/3);
  o.resetEvent = "gone";
  History h(o);
  for (int i = 0; i < 6; ++i) add(h, "a");
  Place p = h.locate(cursor(1), 0);
  ASSERT_EQ(p.reason, ResetReason::kExpired);
  FrameRef r = h.resetFrame(p);
  EXPECT_EQ(r->view(), expectedReset("expired", 1, 4, 6, "gone"));
  EXPECT_EQ(r->kind(), Frame::Kind::kEvent);
  Place limit;
  limit.reason = ResetReason::kLimit;
  limit.requested = 5;
  EXPECT_EQ(h.resetFrame(limit)->view(), expectedReset("limit", 5, 4, 6, "gone"));
  EXPECT_EQ(h.resetFrame(h.locate("zz-1", 0))->view(), expectedReset("epoch", std::nullopt, 4, 6, "gone"));
  EXPECT_EQ(h.resetFrame(h.locate("<script>", 0))->view(), expectedReset("unknown", std::nullopt, 4, 6, "gone"));
  const HistoryStats s = h.stats();
  for (ResetReason reason : {ResetReason::kUnknown, ResetReason::kEpoch, ResetReason::kExpired, ResetReason::kLimit}) {
    EXPECT_EQ(s.resets[static_cast<size_t>(reason)], 1u) << resetReasonName(reason);
  }
  FrameRef pos = h.positionFrame();
  EXPECT_EQ(pos->view(), "id: Ep0ch-6\n\n");
  EXPECT_EQ(h.positionFrame().get(), pos.get());  // cached until the next append
  add(h, "a");
  EXPECT_NE(h.positionFrame().get(), pos.get());
  EXPECT_EQ(h.positionFrame()->view(), "id: Ep0ch-7\n\n");
}

TEST_F(HistoryTest, PositionEventFramesAreEventsEventSourceDispatches) {
  HistoryOptions o = options();
  o.positionEvent = "sse-position";
  History h(o);
  EXPECT_EQ(h.positionFrame()->view(), "event: sse-position\nid: Ep0ch-0\ndata: \n\n");
  add(h, "a");
  add(h, "b");
  FrameRef pos = h.positionFrame();
  EXPECT_EQ(pos->view(), "event: sse-position\nid: Ep0ch-2\ndata: \n\n");
  EXPECT_EQ(pos->kind(), Frame::Kind::kControl);  // not counted as a delivered event
  EXPECT_EQ(h.positionFrame().get(), pos.get());
}

// ---------------------------------------------------------------------------
// matchesAny against TopicIndex::match

TEST_F(HistoryTest, MatchesAnyAgreesWithTopicIndex) {
  // Bytes around '*' (0x2a) and '/' (0x2f) in the sort order, and high bytes.
  static const std::string_view kPieces[] = {"a", "b", "/", "*", "/*", ")", "+", ".", "0", "\xff", "\x01", "a/", "/a"};
  std::mt19937 rng(99);
  auto piece = [&] { return kPieces[rng() % std::size(kPieces)]; };
  size_t hits = 0, checks = 0;
  for (int round = 0; round < 400; ++round) {
    TopicIndex index;
    std::vector<std::string> subs;
    for (int n = static_cast<int>(rng() % 12); n > 0; --n) {
      std::string s;
      for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) s += piece();
      if (rng() % 3 == 0) s += "/*";
      if (validateTopic(s) != Status::kOk) continue;
      ASSERT_EQ(index.subscribe(0, s), Status::kOk) << s;
      subs.push_back(s);
    }
    std::sort(subs.begin(), subs.end());
    subs.erase(std::unique(subs.begin(), subs.end()), subs.end());
    for (int t = 0; t < 200; ++t) {
      std::string topic;
      if (!subs.empty() && rng() % 3 == 0) {
        topic = subs[rng() % subs.size()];  // a subscription itself, or under it
        if (rng() % 2) topic += std::string(piece());
      }
      for (int k = static_cast<int>(rng() % 5); k > 0; --k) topic += piece();
      bool viaIndex = false;
      index.match(topic, [&](uint32_t conn) { viaIndex = conn == 0; });
      ASSERT_EQ(matchesAny(subs, topic), viaIndex) << "topic \"" << topic << "\"";
      ASSERT_EQ(test::modelMatchesAny(subs, topic), viaIndex) << "topic \"" << topic << "\"";
      hits += viaIndex;
      ++checks;
    }
  }
  EXPECT_GT(hits, checks / 10);
  EXPECT_LT(hits, checks - checks / 10);
}

TEST_F(HistoryTest, AppendAtTakesOnlyTheNextSequence) {
  History h(options());
  FrameRef f = frameOf("a", "x", "1");
  for (uint64_t wrong : {uint64_t{0}, uint64_t{2}, uint64_t{7}}) {
    EXPECT_FALSE(h.appendAt(wrong, f, nullptr, std::nullopt, 0)) << wrong;
  }
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(f->refCount(), 1u) << "a refused frame is not kept";
  EXPECT_TRUE(h.appendAt(1, f, nullptr, std::nullopt, 0));
  EXPECT_EQ(f->refCount(), 2u);
  EXPECT_FALSE(h.appendAt(1, frameOf("a", "x", "again"), nullptr, std::nullopt, 0));
  EXPECT_TRUE(h.appendAt(2, frameOf("a", "x", "2"), nullptr, std::string_view("pub"), 0));
  EXPECT_EQ(h.latest(), 2u);
  EXPECT_EQ(h.locate("pub", 0).after, 2u) << "a publisher id given with appendAt is a cursor";
  // The last sequence a cursor can name, and not one past it.
  ASSERT_TRUE(h.rebase(kEpoch, kMaxSeq - 1));
  EXPECT_TRUE(h.appendAt(kMaxSeq, frameOf("a", "x", "last"), nullptr, std::nullopt, 0));
  EXPECT_FALSE(h.appendAt(kMaxSeq + 1, frameOf("a", "x", "past"), nullptr, std::nullopt, 0));
  EXPECT_EQ(h.latest(), kMaxSeq);
}

TEST_F(HistoryTest, RebaseStartsOverAtAnotherEpochAndReleasesEveryFrame) {
  History h(options());
  std::vector<FrameRef> held;
  const std::vector<std::string_view> users = {"u1"};
  for (int i = 0; i < 5; ++i) {
    held.push_back(frameOf("a", h.cursorOf(h.nextSeq()), "x"));
    h.append(held.back(), i == 2 ? &users : nullptr, i == 3 ? std::optional<std::string_view>("pub") : std::nullopt, 0);
  }
  FrameRef oldPosition = h.positionFrame();
  for (const FrameRef& f : held) EXPECT_EQ(f->refCount(), 2u);
  // Refused: nothing changes.
  EXPECT_FALSE(h.rebase("", 9));
  EXPECT_FALSE(h.rebase("a-b", 9));
  EXPECT_FALSE(h.rebase(std::string(33, 'e'), 9));
  EXPECT_FALSE(h.rebase("New", kMaxSeq + 1));
  EXPECT_EQ(h.size(), 5u);
  EXPECT_EQ(h.stats().rebases, 0u);

  ASSERT_TRUE(h.rebase("New", 100));
  for (const FrameRef& f : held) EXPECT_EQ(f->refCount(), 1u) << "the history let go of its frames";
  const HistoryStats s = h.stats();
  EXPECT_EQ(s.events, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.oldest, 0u);
  EXPECT_EQ(s.latest, 100u);
  EXPECT_EQ(s.rebases, 1u);
  EXPECT_EQ(h.options().epoch, "New");
  EXPECT_EQ(h.cursorOf(7), "New-7");
  EXPECT_EQ(h.positionFrame()->view(), "id: New-100\n\n");
  EXPECT_NE(h.positionFrame().get(), oldPosition.get());
  // The old epoch's cursors and publisher ids no longer place anything.
  EXPECT_EQ(h.locate(cursor(3), 0).reason, ResetReason::kEpoch);
  EXPECT_EQ(h.locate("pub", 0).reason, ResetReason::kUnknown) << "\"pub\" is no id held any more";
  EXPECT_EQ(h.locate("New-100", 0).reason, ResetReason::kNone);
  const Place expired = h.locate("New-50", 0);
  EXPECT_EQ(expired.reason, ResetReason::kExpired);
  EXPECT_EQ(expired.requested, 50u);
  EXPECT_EQ(h.locate("New-101", 0).reason, ResetReason::kUnknown);
  // The next append is 101, whichever way it comes.
  EXPECT_FALSE(h.appendAt(100, frameOf("a", "New-100", "x"), nullptr, std::nullopt, 0));
  EXPECT_EQ(h.append(frameOf("a", "New-101", "x"), nullptr, std::nullopt, 0), 101u);
  EXPECT_TRUE(h.appendAt(102, frameOf("a", "New-102", "x"), nullptr, std::nullopt, 0));
  EXPECT_EQ(h.oldest(), 101u);
  // Back to the same epoch at a lower position: allowed (the caller's sequence rules).
  ASSERT_TRUE(h.rebase("New", 3));
  EXPECT_EQ(h.latest(), 3u);
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.stats().rebases, 2u);
  EXPECT_EQ(h.stats().resets[static_cast<size_t>(ResetReason::kEpoch)], 0u) << "rebases are not counted as resets";
}

TEST_F(HistoryTest, RebaseFrameNamesTheNewPosition) {
  HistoryOptions o = options();
  o.resetEvent = "gone";
  History h(o);
  add(h, "a");
  EXPECT_EQ(h.rebaseFrame("Other", 41, ResetReason::kEpoch)->view(),
            "event: gone\nid: Other-41\ndata: "
            "{\"reason\":\"epoch\",\"requested\":null,\"oldest\":null,\"latest\":\"Other-41\"}\n\n");
  EXPECT_EQ(h.rebaseFrame(kEpoch, 9, ResetReason::kExpired)->view(),
            "event: gone\nid: Ep0ch-9\ndata: "
            "{\"reason\":\"expired\",\"requested\":null,\"oldest\":null,\"latest\":\"Ep0ch-9\"}\n\n");
  EXPECT_EQ(h.latest(), 1u) << "building the frame changes nothing";
  EXPECT_EQ(h.stats().resets[static_cast<size_t>(ResetReason::kEpoch)], 0u);
}

// ---------------------------------------------------------------------------
// History against the model

struct RandomRun {
  explicit RandomRun(uint32_t seed) : rng(seed) {}

  std::mt19937 rng;
  uint64_t pick(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); }
  bool chance(int percent) { return static_cast<int>(pick(0, 99)) < percent; }
};

void expectSameStats(const History& h, const HistoryModel& m, const std::string& where) {
  const HistoryStats s = h.stats();
  const HistoryStats& c = m.counters();
  ASSERT_EQ(s.events, m.size()) << where;
  ASSERT_EQ(s.bytes, m.bytes()) << where;
  ASSERT_EQ(s.oldest, m.size() ? m.oldest() : 0) << where;
  ASSERT_EQ(s.latest, m.latest()) << where;
  ASSERT_EQ(s.replays, c.replays) << where;
  ASSERT_EQ(s.replayedEvents, c.replayedEvents) << where;
  ASSERT_EQ(s.reads, c.reads) << where;
  ASSERT_EQ(s.rebases, c.rebases) << where;
  for (size_t r = 0; r < static_cast<size_t>(ResetReason::kCount); ++r) {
    ASSERT_EQ(s.resets[r], c.resets[r]) << where << " reset " << r;
  }
  ASSERT_EQ(h.size(), m.size()) << where;
  ASSERT_EQ(h.oldest(), m.oldest()) << where;
  ASSERT_EQ(h.latest(), m.latest()) << where;
}

void runAgainstModel(uint32_t seed, int ops) {
  RandomRun r(seed);
  static const char* const kTopics[] = {"a", "b", "a/1", "a/2", "a/1/x", "b/c", "c"};
  static const char* const kSubs[] = {"a", "b", "a/1", "a/*", "a/1/*", "b/*", "c", "zzz"};
  static const char* const kUsers[] = {"u1", "u2", "u3"};

  HistoryOptions o;
  {
    static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    o.epoch.resize(r.pick(1, 32));
    for (char& c : o.epoch) c = kAlnum[r.pick(0, 61)];
    // Now and then a limit that holds (almost) nothing; mostly ones that hold a few hundred events.
    const uint64_t events[] = {0, 1, 5, 64, 200, 1000};
    o.maxEvents = r.chance(15) ? events[r.pick(0, 2)] : events[r.pick(3, 5)];
    o.maxBytes = r.chance(15) ? r.pick(0, 400) : (r.chance(50) ? 20000 : 1 << 20);
    o.maxAgeMs = r.chance(15) ? r.pick(0, 60) : (r.chance(50) ? 2000 : 1ull << 40);
    const uint64_t replays[] = {0, 1, 10, 100, 1000};
    o.maxReplayEvents = replays[r.pick(0, 4)];
  }
  SCOPED_TRACE("seed " + std::to_string(seed) + " epoch " + o.epoch + " maxEvents " + std::to_string(o.maxEvents) +
               " maxBytes " + std::to_string(o.maxBytes) + " maxAgeMs " + std::to_string(o.maxAgeMs) +
               " maxReplayEvents " + std::to_string(o.maxReplayEvents));
  History h(o);
  HistoryModel m(o);
  const std::string firstEpoch = o.epoch;  // a cursor of it is "epoch" once rebased away
  uint64_t now = 1000;
  std::vector<std::string> usedIds;
  size_t counts[9] = {};

  auto randomReader = [&](std::vector<std::string>* topics) -> std::optional<std::string_view> {
    for (int n = static_cast<int>(r.pick(0, 3)); n > 0; --n) topics->push_back(kSubs[r.pick(0, std::size(kSubs) - 1)]);
    std::sort(topics->begin(), topics->end());
    topics->erase(std::unique(topics->begin(), topics->end()), topics->end());
    if (r.chance(50)) return std::nullopt;
    return std::string_view(kUsers[r.pick(0, 2)]);
  };
  auto randomCursor = [&]() -> std::string {
    switch (r.pick(0, 9)) {
      case 0:
        return (r.chance(50) ? std::string("other") : firstEpoch) + "-" + std::to_string(r.pick(0, m.latest() + 2));
      case 1:
        return usedIds.empty() ? "nope" : usedIds[r.pick(0, usedIds.size() - 1)];
      case 2: {
        static const char* const kBad[] = {"", "-", "garbage", "1", "x-01", "x-", "\xff-1", "9007199254740992"};
        const std::string bad = kBad[r.pick(0, 7)];
        return bad == "x-01" || bad == "x-" ? m.epoch() + bad.substr(1) : bad;
      }
      case 3:
        return formatCursor(m.epoch(), m.latest() + r.pick(1, 3));  // in the future
      case 4:
        return formatCursor(m.epoch(), r.pick(0, 2));
      default: {
        // Somewhere around the held range (some just before the oldest).
        const uint64_t lo = m.oldest() > 3 ? m.oldest() - 3 : 0;
        return formatCursor(m.epoch(), r.pick(lo, m.latest()));
      }
    }
  };

  for (int i = 0; i < ops; ++i) {
    const std::string where = "op " + std::to_string(i);
    if (r.chance(3)) {
      now += r.pick(0, 5000);
    } else {
      now += r.pick(0, 20);
    }
    const uint64_t op = r.pick(0, 99);
    if (op < 50) {
      ++counts[0];
      // append
      std::string topic = r.chance(12) ? "" : kTopics[r.pick(0, std::size(kTopics) - 1)];
      std::optional<std::vector<std::string>> users;
      std::vector<std::string_view> userViews;
      if (r.chance(25)) {
        users.emplace();
        for (int n = static_cast<int>(r.pick(0, 3)); n > 0; --n) {
          const char* u = kUsers[r.pick(0, 2)];
          users->push_back(u);  // repeats on purpose
          userViews.push_back(u);
        }
      }
      std::optional<std::string> id;
      const uint64_t idKind = r.pick(0, 19);
      if (idKind < 3) {
        id = "id" + std::to_string(i);
      } else if (idKind < 5 && !usedIds.empty()) {
        id = usedIds[r.pick(0, usedIds.size() - 1)];  // repeated
      } else if (idKind == 5) {
        id = formatCursor(m.epoch(), r.pick(0, m.latest() + 2));  // looks like a cursor of ours
      } else if (idKind == 6) {
        id = "";
      }
      if (id && !id->empty()) usedIds.push_back(*id);
      const std::string wire = id ? *id : h.cursorOf(h.nextSeq());
      FrameRef f = frameOf(topic, wire, std::string(r.pick(0, 300), 'd'));
      if (r.chance(25)) {
        // A sequence from outside: mostly the next one, sometimes any other.
        ++counts[7];
        const uint64_t next = m.latest() + 1;
        const uint64_t choices[] = {next, next, next, next - 1, next + 1, 0, kMaxSeq + 1};
        const uint64_t seq = choices[r.pick(0, std::size(choices) - 1)];
        const bool took = h.appendAt(seq, f, users ? &userViews : nullptr, id, now);
        ASSERT_EQ(took, m.appendAt(seq, f, topic, users, id, now)) << where << " appendAt " << seq;
        ASSERT_EQ(took, seq == next && seq <= kMaxSeq) << where << " appendAt " << seq;
      } else {
        const uint64_t seq = h.append(f, users ? &userViews : nullptr, id, now);
        const uint64_t want = m.append(f, topic, users, id, now);
        ASSERT_EQ(seq, want) << where;
      }
    } else if (op < 75) {
      ++counts[1];
      // locate, then a replay or a reset
      const std::string c = randomCursor();
      const Place p = h.locate(c, now);
      const HistoryModel::Place q = m.locate(c, now);
      ASSERT_EQ(p.reason, q.reason) << where << " cursor \"" << c << "\"";
      ASSERT_EQ(p.requested, q.requested) << where << " cursor " << c;
      if (p.reason == ResetReason::kNone) {
        ++counts[2];
        ASSERT_EQ(p.after, q.after) << where << " cursor " << c;
        std::vector<std::string> topics;
        const std::optional<std::string_view> user = randomReader(&topics);
        const uint64_t maxBytes = r.chance(30) ? r.pick(0, 3000) : UINT64_MAX;
        const size_t perFrame = r.pick(0, 64);
        std::vector<FrameRef> out;
        const size_t before = r.pick(0, 2);
        for (size_t k = 0; k < before; ++k) out.push_back(h.positionFrame());
        std::vector<const Frame*> want;
        const ResetReason got = h.selectReplay(p, Reader{&topics, user}, maxBytes, perFrame, &out);
        ASSERT_EQ(got, m.selectReplay(q, topics, user, maxBytes, perFrame, &want)) << where << " cursor " << c;
        ASSERT_EQ(out.size(), before + want.size()) << where;
        for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(out[before + k].get(), want[k]) << where << " frame " << k;
        if (got == ResetReason::kLimit) {
          ++counts[3];
          Place limit = p;
          limit.reason = ResetReason::kLimit;
          limit.requested = p.after;
          h.resetFrame(limit);
          m.countReset(ResetReason::kLimit);
        }
      } else {
        ++counts[4];
        FrameRef reset = h.resetFrame(p);
        m.countReset(p.reason);
        const auto json = [&](std::optional<uint64_t> s) {
          return s ? "\"" + formatCursor(m.epoch(), *s) + "\"" : std::string("null");
        };
        const std::string reason = p.reason == ResetReason::kUnknown   ? "unknown"
                                   : p.reason == ResetReason::kEpoch   ? "epoch"
                                   : p.reason == ResetReason::kExpired ? "expired"
                                                                       : "limit";
        const std::string expected =
            "event: reset\nid: " + formatCursor(m.epoch(), m.latest()) + "\ndata: {\"reason\":\"" + reason +
            "\",\"requested\":" + json(q.requested) +
            ",\"oldest\":" + json(m.size() ? std::optional<uint64_t>(m.oldest()) : std::nullopt) +
            ",\"latest\":" + json(m.latest()) + "}\n\n";
        ASSERT_EQ(reset->view(), expected) << where;
      }
    } else if (op < 92) {
      ++counts[5];
      // a catch-up read
      const std::string c = r.chance(10) ? std::string() : randomCursor();
      h.countRead();
      m.countRead();
      Place p;
      p.after = h.latest();
      HistoryModel::Place q;
      q.after = m.latest();
      if (!c.empty()) {
        p = h.locate(c, now);
        q = m.locate(c, now);
      }
      ASSERT_EQ(p.reason, q.reason) << where << " cursor " << c;
      if (p.reason != ResetReason::kNone) continue;
      ASSERT_EQ(p.after, q.after) << where;
      std::vector<std::string> topics;
      const std::optional<std::string_view> user = randomReader(&topics);
      const size_t max = r.pick(1, 20);
      const size_t stopAt = r.chance(20) ? r.pick(1, 10) : 0;
      std::vector<std::pair<uint64_t, const Frame*>> got, want;
      const uint64_t next = h.read(p.after, Reader{&topics, user}, max, [&](uint64_t seq, Frame* f) {
        got.emplace_back(seq, f);
        return got.size() != stopAt;
      });
      ASSERT_EQ(next, m.read(q.after, topics, user, max, stopAt, &want)) << where;
      ASSERT_EQ(got, want) << where;
      counts[6] += got.size();
    } else if (op < 97) {
      h.expire(now);
      m.expire(now);
    } else if (op < 99) {
      // rebase: the same epoch or another (now and then one the grammar refuses), a seq anywhere.
      ++counts[8];
      std::string epoch = m.epoch();
      if (r.chance(60)) {
        static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        epoch.resize(r.pick(1, 32));
        for (char& c : epoch) c = kAlnum[r.pick(0, 61)];
      } else if (r.chance(15)) {
        static const char* const kBadEpochs[] = {"", "a-b", "e\n", "0123456789012345678901234567890123"};
        epoch = kBadEpochs[r.pick(0, 3)];
      }
      const uint64_t seqs[] = {m.latest(), m.latest() + r.pick(1, 50), r.pick(0, m.latest()), kMaxSeq - r.pick(0, 3),
                               kMaxSeq + 1};
      const uint64_t seq = seqs[r.chance(95) ? r.pick(0, 2) : r.pick(3, 4)];
      const std::string before = m.epoch();
      const bool done = h.rebase(epoch, seq);
      ASSERT_EQ(done, m.rebase(epoch, seq)) << where << " rebase " << epoch << " " << seq;
      if (done) {
        const ResetReason reason = epoch != before ? ResetReason::kEpoch : ResetReason::kExpired;
        const std::string json = "\"" + formatCursor(epoch, seq) + "\"";
        ASSERT_EQ(h.rebaseFrame(epoch, seq, reason)->view(),
                  "event: reset\nid: " + formatCursor(epoch, seq) + "\ndata: {\"reason\":\"" + resetReasonName(reason) +
                      "\",\"requested\":null,\"oldest\":null,\"latest\":" + json + "}\n\n")
            << where;
        ASSERT_EQ(h.positionFrame()->view(), "id: " + formatCursor(epoch, seq) + "\n\n") << where;
      }
    } else {
      FrameRef pos = h.positionFrame();
      ASSERT_EQ(pos->view(), "id: " + formatCursor(m.epoch(), m.latest()) + "\n\n") << where;
    }
    expectSameStats(h, m, where);
    if (::testing::Test::HasFatalFailure()) return;
    if (i % 64 == 0) {
      // Every event held is held once by each: the history and the model.
      for (const HistoryModel::Event& e : m.events()) ASSERT_EQ(e.frame->refCount(), 2u) << where << " seq " << e.seq;
    }
  }
  // The run reached every path often enough to mean something.
  EXPECT_GT(counts[0], static_cast<size_t>(ops) / 3);
  EXPECT_GT(counts[2], 20u);
  EXPECT_GT(counts[4], 20u);
  EXPECT_GT(counts[7], 100u);  // appendAt
  EXPECT_GT(counts[8], 5u);    // rebase
  std::printf(
      "[ model    ] seed %u: %zu appends (%zu at a given seq), %zu locates (%zu placed, %zu limit, %zu reset), %zu "
      "reads "
      "(%zu events), %zu rebases\n",
      seed, counts[0], counts[7], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6], counts[8]);
}

TEST_F(HistoryTest, AgreesWithTheModelUnderRandomOperations) {
  for (uint32_t seed = 1; seed <= 24; ++seed) {
    runAgainstModel(seed, 5000);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace ssefanout::history
