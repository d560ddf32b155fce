// Tests for the SSE encoder, checked against the independent parser in
// test/cpp/sse_parser.hpp (itself checked here against the spec's examples).
#include "sse_encoder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "sse_parser.hpp"

namespace ssefanout {
namespace {

using test::parseSse;
using test::SseEvent;
using test::SseParser;
using namespace std::string_literals;

// Encodes ev, asserting success, and returns the frame's bytes.
std::string encode(const EventFields& ev) {
  FrameRef f;
  Status s = encodeEvent(ev, &f);
  EXPECT_EQ(s, Status::kOk) << statusName(s);
  if (!f) return "<no frame>";
  EXPECT_EQ(f->size(), encodedSize(ev));
  EXPECT_EQ(f->kind(), Frame::Kind::kEvent);
  return std::string(f->view());
}

EventFields dataOnly(std::string_view data) {
  EventFields ev;
  ev.data = data;
  return ev;
}

using test::normaliseLineEnds;

SseEvent message(std::string data, std::string id = "", std::string type = "message") {
  return SseEvent{std::move(type), std::move(data), std::move(id)};
}

// ---------------------------------------------------------------------------
// The reference parser against the examples of WHATWG HTML 9.2.6.

TEST(SseParserSpec, MultiLineDataExample) {
  EXPECT_EQ(parseSse("data: YHOO\ndata: +2\ndata: 10\n\n"), std::vector<SseEvent>{message("YHOO\n+2\n10")});
}

TEST(SseParserSpec, CommentsIdsAndMissingFinalBlankLine) {
  SseParser p;
  p.feed(": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n");
  EXPECT_EQ(p.events(), (std::vector<SseEvent>{message("first event", "1"), message("second event", "")}));
  EXPECT_EQ(p.comments(), std::vector<std::string>{" test stream"});
  EXPECT_TRUE(p.hasPartialEvent());  // " third event" waits for its blank line
  p.feed("\n");
  ASSERT_EQ(p.events().size(), 3u);
  EXPECT_EQ(p.events()[2], message(" third event", ""));
}

TEST(SseParserSpec, EmptyDataExample) {
  EXPECT_EQ(parseSse("data\n\ndata\ndata\n\ndata:"), (std::vector<SseEvent>{message(""), message("\n")}));
}

TEST(SseParserSpec, SpaceAfterColonIsOptional) {
  EXPECT_EQ(parseSse("data:test\n\ndata: test\n\n"), (std::vector<SseEvent>{message("test"), message("test")}));
}

TEST(SseParserSpec, OnlyOneSpaceIsStripped) {
  EXPECT_EQ(parseSse("data:   x \n\n"), std::vector<SseEvent>{message("  x ")});
  EXPECT_EQ(parseSse("event:  e\ndata: x\n\n"), std::vector<SseEvent>{message("x", "", " e")});
}

TEST(SseParserSpec, AllLineEndsAreEquivalent) {
  const std::vector<SseEvent> want{message("a\nb", "1", "t"), message("c", "1")};
  for (std::string eol : {"\n"s, "\r"s, "\r\n"s}) {
    std::string s = "event: t" + eol + "id: 1" + eol + "data: a" + eol + "data: b" + eol + eol + "data: c" + eol + eol;
    EXPECT_EQ(parseSse(s), want) << "eol size " << eol.size();
  }
  // Mixed within one stream.
  EXPECT_EQ(parseSse("event: t\rid: 1\r\ndata: a\ndata: b\r\r\ndata: c\n\r"), want);
}

TEST(SseParserSpec, CrlfSplitAcrossChunksIsOneLineEnd) {
  // Were the LF taken as a second line end, "a" would be dispatched alone.
  SseParser p;
  p.feed("data: a\r");
  p.feed("\ndata: b\r");
  p.feed("\n");
  EXPECT_TRUE(p.events().empty());
  p.feed("\r");
  p.feed("\n");
  EXPECT_EQ(p.events(), std::vector<SseEvent>{message("a\nb")});
}

TEST(SseParserSpec, LfCrIsTwoLineEnds) { EXPECT_EQ(parseSse("data: a\n\r"), std::vector<SseEvent>{message("a")}); }

TEST(SseParserSpec, LeadingBomIgnoredOnceEvenWhenSplit) {
  const std::string bom = "\xEF\xBB\xBF";
  EXPECT_EQ(parseSse(bom + "data: x\n\n"), std::vector<SseEvent>{message("x")});
  SseParser p;
  p.feed("\xEF");
  p.feed("\xBB");
  p.feed(
      "\xBF"
      "data: y\n\n");
  EXPECT_EQ(p.events(), std::vector<SseEvent>{message("y")});
  // A second BOM is part of the field name "\uFEFFdata", an unknown field.
  EXPECT_TRUE(parseSse(bom + bom + "data: x\n\n").empty());
  // A BOM-like prefix that diverges is ordinary input.
  EXPECT_EQ(parseSse("\xEF\xBB"
                     "data: z\n\n")
                .size(),
            0u);
  EXPECT_EQ(parseSse("data: \xEF\xBB\xBF\n\n"), std::vector<SseEvent>{message(bom)});
}

TEST(SseParserSpec, LineWithoutColonIsFieldWithEmptyValue) {
  EXPECT_EQ(parseSse("event: e\nevent\ndata\n\n"), std::vector<SseEvent>{message("")});
  SseParser p;
  p.feed("id: 5\ndata: a\n\nid\ndata: b\n\n");
  EXPECT_EQ(p.events(), (std::vector<SseEvent>{message("a", "5"), message("b", "")}));
}

TEST(SseParserSpec, IdWithNulIsIgnoredAndIdsPersist) {
  SseParser p;
  p.feed("id: 1\ndata: a\n\ndata: b\n\n"s + "id: x\0y\ndata: c\n\n"s);
  EXPECT_EQ(p.events(), (std::vector<SseEvent>{message("a", "1"), message("b", "1"), message("c", "1")}));
}

TEST(SseParserSpec, IdSetEvenWithoutDispatch) {
  SseParser p;
  p.feed("id: 9\n\ndata: a\n\n");
  EXPECT_EQ(p.events(), std::vector<SseEvent>{message("a", "9")});
}

TEST(SseParserSpec, EventTypeResetAfterEachBlock) {
  EXPECT_EQ(parseSse("event: e\n\ndata: a\n\nevent: f\ndata: b\n\ndata: c\n\n"),
            (std::vector<SseEvent>{message("a"), message("b", "", "f"), message("c")}));
}

TEST(SseParserSpec, RetryOnlyAsciiDigits) {
  auto retryOf = [](std::string_view s) {
    SseParser p;
    p.feed(s);
    return p.reconnectionTime();
  };
  EXPECT_EQ(retryOf("retry: 1500\n"), 1500u);
  EXPECT_EQ(retryOf("retry:0\n"), 0u);
  EXPECT_EQ(retryOf("retry: 18446744073709551615\n"), UINT64_MAX);
  EXPECT_FALSE(retryOf("retry: 15a\n"));
  EXPECT_FALSE(retryOf("retry:  15\n"));
  EXPECT_FALSE(retryOf("retry: -1\n"));
  EXPECT_FALSE(retryOf("retry: 1.5\n"));
  EXPECT_FALSE(retryOf("retry:\n"));
  EXPECT_EQ(retryOf("retry: 10\nretry: x\n"), 10u);
}

TEST(SseParserSpec, UnknownAndMiscasedFieldsIgnored) {
  EXPECT_TRUE(parseSse("Data: x\n\nDATA: y\n\nfoo: bar\n\n").empty());
  EXPECT_EQ(parseSse("foo: bar\ndata: x\n\n"), std::vector<SseEvent>{message("x")});
}

TEST(SseParserSpec, EveryChunkingGivesTheSameEvents) {
  const std::string s =
      "\xEF\xBB\xBF: hi\r\nevent: e\rid: 3\r\ndata: a\r\ndata:b\r\rdata\n\nretry: 7\nid: 4\ndata: \xC3\xA9\r\n\r\n";
  const auto want = parseSse(s);
  ASSERT_EQ(want.size(), 3u);
  for (size_t i = 0; i <= s.size(); ++i) {
    for (size_t j = i; j <= s.size(); ++j) {
      SseParser p;
      p.feed(std::string_view(s).substr(0, i));
      p.feed(std::string_view(s).substr(i, j - i));
      p.feed(std::string_view(s).substr(j));
      ASSERT_EQ(p.events(), want) << "split at " << i << "," << j;
      ASSERT_EQ(p.reconnectionTime(), 7u);
    }
  }
}

// ---------------------------------------------------------------------------
// Exact bytes.

TEST(SseEncoder, ExactBytesDataOnly) { EXPECT_EQ(encode(dataOnly("hello")), "data: hello\n\n"); }

TEST(SseEncoder, ExactBytesAllFieldsInOrder) {
  EventFields ev;
  ev.comment = "c";
  ev.event = "E";
  ev.id = "7";
  ev.retryMs = 1000;
  ev.data = "a\nb";
  EXPECT_EQ(encode(ev), ": c\nevent: E\nid: 7\nretry: 1000\ndata: a\ndata: b\n\n");
}

TEST(SseEncoder, CompactModeWritesNoSpaceAfterTheColon) {
  EventFields ev;
  ev.compact = true;
  ev.event = "PB_CONNECT";
  ev.data = "{\"clientId\":\"abc\"}";
  EXPECT_EQ(encode(ev), "event:PB_CONNECT\ndata:{\"clientId\":\"abc\"}\n\n");
  ev.comment = "c";
  ev.id = "7";
  ev.retryMs = 10;
  ev.data = "a\n\nb";
  EXPECT_EQ(encode(ev), ":c\nevent:PB_CONNECT\nid:7\nretry:10\ndata:a\ndata:\ndata:b\n\n");
}

TEST(SseEncoder, CompactModeKeepsValuesThatBeginWithASpace) {
  EventFields ev;
  ev.compact = true;
  ev.event = " e";
  ev.data = " one\ntwo\n  three";
  const std::string bytes = encode(ev);
  EXPECT_EQ(bytes, "event:  e\ndata:  one\ndata:two\ndata:   three\n\n");
  SseParser p;
  p.feed(bytes);
  ASSERT_EQ(p.events().size(), 1u);
  EXPECT_EQ(p.events()[0].type, " e");
  EXPECT_EQ(p.events()[0].data, " one\ntwo\n  three");
}

TEST(SseEncoder, ExactBytesWithoutData) {
  EventFields none;
  EXPECT_EQ(encode(none), "\n");

  EventFields heartbeat;
  heartbeat.comment = "";
  EXPECT_EQ(encode(heartbeat), ": \n\n");

  EventFields idOnly;
  idOnly.id = "42";
  EXPECT_EQ(encode(idOnly), "id: 42\n\n");

  EventFields retryOnly;
  retryOnly.retryMs = 3000;
  EXPECT_EQ(encode(retryOnly), "retry: 3000\n\n");
}

TEST(SseEncoder, FrameWithoutDataDispatchesNothingButSetsIdAndRetry) {
  EventFields ev;
  ev.event = "ping";
  ev.id = "5";
  ev.retryMs = 250;
  SseParser p;
  p.feed(encode(ev));
  EXPECT_TRUE(p.events().empty());
  EXPECT_EQ(p.lastEventIdBuffer(), "5");
  EXPECT_EQ(p.reconnectionTime(), 250u);
  // The event name of a data-less frame must not leak into the next event.
  p.feed(encode(dataOnly("x")));
  EXPECT_EQ(p.events(), std::vector<SseEvent>{message("x", "5")});
}

// ---------------------------------------------------------------------------
// Data boundaries: bytes, then what a client reads.

struct DataCase {
  std::string data;
  std::string bytes;   // exact frame
  std::string parsed;  // data the client sees
};

TEST(SseEncoder, DataBoundaries) {
  const std::vector<DataCase> cases = {
      {"", "data: \n\n", ""},
      {"\n", "data: \ndata: \n\n", "\n"},
      {"\r", "data: \ndata: \n\n", "\n"},
      {"\r\n", "data: \ndata: \n\n", "\n"},
      {"\r\r", "data: \ndata: \ndata: \n\n", "\n\n"},
      {"\n\r", "data: \ndata: \ndata: \n\n", "\n\n"},
      {"\n\n", "data: \ndata: \ndata: \n\n", "\n\n"},
      {"\r\n\r\n", "data: \ndata: \ndata: \n\n", "\n\n"},
      {"a\n", "data: a\ndata: \n\n", "a\n"},
      {"a\r", "data: a\ndata: \n\n", "a\n"},
      {"\na", "data: \ndata: a\n\n", "\na"},
      {" a", "data:  a\n\n", " a"},
      {"  two", "data:   two\n\n", "  two"},
      {":colon", "data: :colon\n\n", ":colon"},
      {"a\r\nb\rc\nd", "data: a\ndata: b\ndata: c\ndata: d\n\n", "a\nb\nc\nd"},
      {"a\r\r\nb", "data: a\ndata: \ndata: b\n\n", "a\n\nb"},
      {"nul\0inside"s, "data: nul\0inside\n\n"s, "nul\0inside"s},
      {"data: forged\n\nevent: x", "data: data: forged\ndata: \ndata: event: x\n\n", "data: forged\n\nevent: x"},
      {"h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80\nzwei",
       "data: h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80\ndata: zwei\n\n",
       "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80\nzwei"},
      {"\xEF\xBB\xBF", "data: \xEF\xBB\xBF\n\n", "\xEF\xBB\xBF"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.data));
    std::string bytes = encode(dataOnly(c.data));
    EXPECT_EQ(bytes, c.bytes);
    EXPECT_EQ(parseSse(bytes), std::vector<SseEvent>{message(c.parsed)});
    EXPECT_EQ(c.parsed, normaliseLineEnds(c.data));
  }
}

TEST(SseEncoder, VeryLongSingleLine) {
  std::string data(1 << 20, 'x');
  data[12345] = '\xE2';  // arbitrary non-ASCII byte in the middle
  std::string bytes = encode(dataOnly(data));
  EXPECT_EQ(bytes.size(), 6 + data.size() + 2);
  EXPECT_EQ(parseSse(bytes), std::vector<SseEvent>{message(data)});
}

TEST(SseEncoder, ManyLines) {
  std::string data;
  for (int i = 0; i < 100000; ++i) {
    data += std::to_string(i);
    data += (i % 3 == 0) ? "\r\n" : (i % 3 == 1) ? "\n" : "\r";
  }
  EventFields ev = dataOnly(data);
  std::string bytes = encode(ev);
  EXPECT_EQ(bytes.size(), encodedSize(ev));
  EXPECT_EQ(parseSse(bytes), std::vector<SseEvent>{message(normaliseLineEnds(data))});
}

TEST(SseEncoder, MultiLineCommentStaysComment) {
  EventFields ev;
  ev.comment = "a\nb\r\nc\r\ndata: forged\n\nid: 666";
  std::string bytes = encode(ev);
  EXPECT_EQ(bytes, ": a\n: b\n: c\n: data: forged\n: \n: id: 666\n\n");
  SseParser p;
  p.feed(bytes);
  EXPECT_TRUE(p.events().empty());
  EXPECT_EQ(p.lastEventIdBuffer(), "");
  EXPECT_EQ(p.comments(), (std::vector<std::string>{" a", " b", " c", " data: forged", " ", " id: 666"}));
}

TEST(SseEncoder, CommentBeforeDataEvent) {
  EventFields ev;
  ev.comment = "note";
  ev.data = "x";
  std::string bytes = encode(ev);
  EXPECT_EQ(bytes, ": note\ndata: x\n\n");
  EXPECT_EQ(parseSse(bytes), std::vector<SseEvent>{message("x")});
}

TEST(SseEncoder, RetryBoundaries) {
  for (uint64_t r : {uint64_t{0}, uint64_t{1}, uint64_t{9}, uint64_t{10}, uint64_t{99}, uint64_t{100}, uint64_t{999},
                     uint64_t{1000}, uint64_t{4294967295u}, uint64_t{4294967296u}, uint64_t{9999999999999999999u},
                     uint64_t{10000000000000000000u}, UINT64_MAX}) {
    EventFields ev;
    ev.retryMs = r;
    std::string bytes = encode(ev);
    EXPECT_EQ(bytes, "retry: " + std::to_string(r) + "\n\n");
    SseParser p;
    p.feed(bytes);
    EXPECT_EQ(p.reconnectionTime(), r);
  }
}

TEST(SseEncoder, EventAndIdValuesKeptExactly) {
  EventFields ev;
  ev.event = " spaced:name";
  ev.id = " id:with:colons ";
  ev.data = "x";
  std::string bytes = encode(ev);
  EXPECT_EQ(bytes, "event:  spaced:name\nid:  id:with:colons \ndata: x\n\n");
  EXPECT_EQ(parseSse(bytes), std::vector<SseEvent>{message("x", " id:with:colons ", " spaced:name")});
}

TEST(SseEncoder, UnicodeEventAndId) {
  EventFields ev;
  ev.event = "\xC3\xA9v\xC3\xA9nement";
  ev.id = "\xF0\x9F\x94\x91";
  ev.data = "\xE2\x9C\x93";
  EXPECT_EQ(parseSse(encode(ev)),
            std::vector<SseEvent>{message("\xE2\x9C\x93", "\xF0\x9F\x94\x91", "\xC3\xA9v\xC3\xA9nement")});
}

TEST(SseEncoder, EmptyEventNameAndEmptyId) {
  SseParser p;
  p.feed(encode([] {
    EventFields ev;
    ev.id = "1";
    ev.data = "a";
    return ev;
  }()));
  p.feed(encode([] {
    EventFields ev;
    ev.event = "";
    ev.id = "";  // resets the last event id
    ev.data = "b";
    return ev;
  }()));
  EXPECT_EQ(p.events(), (std::vector<SseEvent>{message("a", "1"), message("b", "")}));
}

// ---------------------------------------------------------------------------
// Sizes.

TEST(SseEncoder, EncodedSizeMatchesBytesWrittenWithoutOverrun) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "ab \r\n:\0\xC3\xA9"s;
  auto randomText = [&](size_t maxLen) {
    std::string s(rng() % (maxLen + 1), ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    std::string comment = randomText(20), event = randomText(10), id = randomText(10), data = randomText(60);
    EventFields ev;
    if (rng() % 2) ev.comment = comment;
    if (rng() % 2) ev.event = event;  // may be invalid: encodeInto does not validate
    if (rng() % 2) ev.id = id;
    if (rng() % 2) ev.retryMs = rng() >> (rng() % 64);
    if (rng() % 4) ev.data = data;
    const size_t n = encodedSize(ev);
    std::vector<char> buf(n + 64, '\x5A');
    ASSERT_EQ(encodeInto(ev, buf.data()), n);
    for (size_t k = n; k < buf.size(); ++k) ASSERT_EQ(buf[k], '\x5A') << "overrun at " << k;
    ASSERT_EQ(buf[n - 1], '\n');
  }
}

// ---------------------------------------------------------------------------
// Injection: event and id are single-line.

TEST(SseEncoder, EventOrIdWithLineBreakOrNulIsRefused) {
  const int64_t live = Frame::liveCount();
  const std::vector<std::string> bad = {"\n",
                                        "\r",
                                        "\0"s,
                                        "a\nb",
                                        "a\rb",
                                        "a\0b"s,
                                        "\r\n",
                                        "x\n",
                                        "\ny",
                                        "x\r",
                                        "\ry",
                                        "x\0"s,
                                        "\0y"s,
                                        "a\n\ndata: forged",
                                        "ok\r\nevent: x"};
  for (const auto& b : bad) {
    SCOPED_TRACE(::testing::PrintToString(b));
    EventFields ev;
    ev.data = "payload";
    ev.event = b;
    EXPECT_EQ(validateFields(ev), Status::kInvalidEvent);
    FrameRef out;
    EXPECT_EQ(encodeEvent(ev, &out), Status::kInvalidEvent);
    EXPECT_FALSE(out);

    EventFields ev2;
    ev2.data = "payload";
    ev2.id = b;
    EXPECT_EQ(validateFields(ev2), Status::kInvalidId);
    EXPECT_EQ(encodeEvent(ev2, &out), Status::kInvalidId);
    EXPECT_FALSE(out);

    ev2.event = b;  // both bad: the event name is reported
    EXPECT_EQ(encodeEvent(ev2, &out), Status::kInvalidEvent);
    EXPECT_FALSE(out);
  }
  EXPECT_EQ(Frame::liveCount(), live);
}

TEST(SseEncoder, RefusalLeavesExistingFrameUntouched) {
  FrameRef out;
  ASSERT_EQ(encodeEvent(dataOnly("first"), &out), Status::kOk);
  Frame* before = out.get();
  EventFields bad;
  bad.id = "1\n";
  EXPECT_EQ(encodeEvent(bad, &out), Status::kInvalidId);
  EXPECT_EQ(out.get(), before);
  EXPECT_EQ(out->view(), "data: first\n\n");
}

TEST(SseEncoder, EncodeReplacesAndReleasesPreviousFrame) {
  const int64_t live = Frame::liveCount();
  FrameRef out;
  ASSERT_EQ(encodeEvent(dataOnly("one"), &out), Status::kOk);
  EXPECT_EQ(Frame::liveCount(), live + 1);
  ASSERT_EQ(encodeEvent(dataOnly("two"), &out), Status::kOk);
  EXPECT_EQ(Frame::liveCount(), live + 1);
  EXPECT_EQ(out->refCount(), 1u);
  EXPECT_EQ(out->view(), "data: two\n\n");
  out = FrameRef();
  EXPECT_EQ(Frame::liveCount(), live);
}

TEST(SseEncoder, DataAndCommentMayHoldAnyByte) {
  const std::string anyBytes = "\r\n\0"s;
  EventFields ev;
  ev.comment = anyBytes;
  ev.data = anyBytes;
  EXPECT_EQ(validateFields(ev), Status::kOk);
  EXPECT_EQ(parseSse(encode(ev)), std::vector<SseEvent>{message("\n\0"s)});
}

// ---------------------------------------------------------------------------
// Randomized round trip: encode thousands of events, concatenate the frames,
// parse the stream in random chunks; the client must see exactly the events
// published (line ends normalised), with ids and retry as sent, and nothing
// else.

class RandomEvents {
 public:
  explicit RandomEvents(uint64_t seed) : rng_(seed) {}

  std::string bytes(size_t maxLen, bool allowBreaks) {
    size_t len = rng_() % 16 == 0 ? rng_() % (maxLen * 8 + 1) : rng_() % (maxLen + 1);
    std::string s(len, ' ');
    for (char& c : s) {
      switch (rng_() % 10) {
        case 0:
          c = allowBreaks ? '\r' : 'r';
          break;
        case 1:
          c = allowBreaks ? '\n' : 'n';
          break;
        case 2:
          c = allowBreaks ? '\0' : '0';
          break;
        case 3:
          c = ':';
          break;
        case 4:
          c = ' ';
          break;
        case 5:
          c = static_cast<char>(0x80 + rng_() % 0x80);
          break;  // high bytes, BOM parts
        default:
          c = static_cast<char>(rng_() % 256);
          if (!allowBreaks && (c == '\r' || c == '\n' || c == '\0')) c = 'x';
      }
    }
    return s;
  }

  uint64_t next() { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

void roundTrip(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  RandomEvents gen(seed);
  std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ull);

  std::vector<std::string> storage;  // keeps string_views in EventFields valid
  std::vector<SseEvent> expected;
  std::optional<uint64_t> expectedRetry;
  std::string lastId;
  std::string stream;
  const int64_t live = Frame::liveCount();

  for (int i = 0; i < 3000; ++i) {
    EventFields ev;
    std::string comment = gen.bytes(12, true), event = gen.bytes(12, false), id = gen.bytes(12, false),
                data = gen.bytes(40, true);
    if (rng() % 5 == 0) ev.comment = comment;
    if (rng() % 2) ev.event = event;
    if (rng() % 3 == 0) ev.id = id;
    if (rng() % 10 == 0) ev.retryMs = rng() >> (rng() % 64);
    if (rng() % 8 != 0) ev.data = data;

    FrameRef f;
    ASSERT_EQ(encodeEvent(ev, &f), Status::kOk);
    ASSERT_EQ(f->size(), encodedSize(ev));
    stream += f->view();

    if (ev.id) lastId = *ev.id;
    if (ev.retryMs) expectedRetry = ev.retryMs;
    if (ev.data) {
      std::string type = ev.event && !ev.event->empty() ? std::string(*ev.event) : "message";
      expected.push_back(SseEvent{type, normaliseLineEnds(*ev.data), lastId});
    }
  }
  EXPECT_EQ(Frame::liveCount(), live);

  SseParser whole;
  whole.feed(stream);
  ASSERT_EQ(whole.events().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(whole.events()[i], expected[i]) << "event " << i;
  EXPECT_EQ(whole.reconnectionTime(), expectedRetry);
  EXPECT_FALSE(whole.hasPartialEvent());

  SseParser chunked;
  size_t pos = 0;
  while (pos < stream.size()) {
    size_t n = rng() % 4 == 0 ? 1 + rng() % 3 : 1 + rng() % 200;
    n = std::min(n, stream.size() - pos);
    chunked.feed(std::string_view(stream).substr(pos, n));
    pos += n;
  }
  ASSERT_EQ(chunked.events(), expected);
  EXPECT_EQ(chunked.reconnectionTime(), expectedRetry);
}

TEST(SseEncoderRandom, RoundTripThroughIndependentParser) {
  for (uint64_t seed : {1u, 2u, 3u, 20240601u}) roundTrip(seed);
}

TEST(SseEncoderRandom, InjectionAttemptsAreRefusedOthersRoundTrip) {
  RandomEvents gen(99);
  std::mt19937_64 rng(100);
  for (int i = 0; i < 5000; ++i) {
    std::string event = gen.bytes(10, true), id = gen.bytes(10, true);
    EventFields ev;
    ev.event = event;
    ev.id = id;
    ev.data = "d";
    const bool eventOk = isSingleLine(event), idOk = isSingleLine(id);
    FrameRef f;
    Status s = encodeEvent(ev, &f);
    if (!eventOk) {
      ASSERT_EQ(s, Status::kInvalidEvent);
      ASSERT_FALSE(f);
    } else if (!idOk) {
      ASSERT_EQ(s, Status::kInvalidId);
      ASSERT_FALSE(f);
    } else {
      ASSERT_EQ(s, Status::kOk);
      auto events = parseSse(f->view());
      ASSERT_EQ(events.size(), 1u);
      ASSERT_EQ(events[0], (SseEvent{event.empty() ? "message" : event, "d", id}));
    }
  }
}

}  // namespace
}  // namespace ssefanout
