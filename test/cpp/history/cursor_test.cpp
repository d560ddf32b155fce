// Tests for the cursor grammar (src/history/cursor.hpp): validEpoch,
// parseCursor at its edges (leading zeros, 2^53 - 1 and 2^53, 32- and
// 33-byte epochs, empty parts, non-ASCII bytes, bytes just past the view),
// formatCursor round trips, and parseCursor against the naive reader of
// history_model.hpp on random strings.
#include "cursor.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "history/history_model.hpp"

namespace ssefanout::history {
namespace {

using test::ModelCursor;
using test::modelParseCursor;

constexpr std::string_view kEpoch = "k3J9aQ2x";

void expectOurs(std::string_view text, uint64_t seq) {
  const ParsedCursor c = parseCursor(text, kEpoch);
  EXPECT_EQ(c.form, CursorForm::kOurs) << text;
  EXPECT_EQ(c.seq, seq) << text;
}

void expectForeign(std::string_view text, uint64_t seq) {
  const ParsedCursor c = parseCursor(text, kEpoch);
  EXPECT_EQ(c.form, CursorForm::kForeign) << text;
  EXPECT_EQ(c.seq, seq) << text;
}

void expectMalformed(std::string_view text) {
  EXPECT_EQ(parseCursor(text, kEpoch).form, CursorForm::kMalformed) << "\"" << text << "\" (" << text.size() << ")";
}

TEST(CursorTest, ValidEpochIsOneTo32AsciiLettersAndDigits) {
  EXPECT_TRUE(validEpoch("a"));
  EXPECT_TRUE(validEpoch("Z"));
  EXPECT_TRUE(validEpoch("0"));
  EXPECT_TRUE(validEpoch("azAZ09"));
  EXPECT_TRUE(validEpoch(std::string(32, 'x')));
  EXPECT_FALSE(validEpoch(""));
  EXPECT_FALSE(validEpoch(std::string(33, 'x')));
  for (std::string_view bad : {"a-b", "a_b", "a b", "a.b", "a/b", "\xc3\xa9", "a\xff", "@", "[", "`", "{", "/", ":"}) {
    EXPECT_FALSE(validEpoch(bad)) << bad;
  }
  EXPECT_FALSE(validEpoch(std::string_view("a\0b", 3)));
}

TEST(CursorTest, OursAndForeign) {
  expectOurs("k3J9aQ2x-0", 0);
  expectOurs("k3J9aQ2x-1", 1);
  expectOurs("k3J9aQ2x-42", 42);
  expectForeign("other-42", 42);
  expectForeign("K3J9AQ2X-7", 7);  // the epoch is case-sensitive
  expectForeign("k3J9aQ2-7", 7);   // a prefix of ours
  expectForeign("k3J9aQ2xx-7", 7);
  expectForeign("0-0", 0);
}

TEST(CursorTest, SequenceDigits) {
  expectMalformed("k3J9aQ2x-00");
  expectMalformed("k3J9aQ2x-01");
  expectMalformed("k3J9aQ2x-007");
  expectMalformed("k3J9aQ2x-");
  expectMalformed("k3J9aQ2x-+1");
  expectMalformed("k3J9aQ2x--1");
  expectMalformed("k3J9aQ2x- 1");
  expectMalformed("k3J9aQ2x-1 ");
  expectMalformed("k3J9aQ2x-1a");
  expectMalformed("k3J9aQ2x-0x10");
  expectMalformed("k3J9aQ2x-1e3");
  expectMalformed("k3J9aQ2x-1-2");
  expectMalformed("k3J9aQ2x-\xef\xbc\x91");  // a fullwidth digit one
  expectMalformed(std::string_view("k3J9aQ2x-1\0", 11));
  expectMalformed(
      std::string_view("k3J9aQ2x-\0"
                       "1",
                       11));
}

TEST(CursorTest, SequenceLimitIsTwoToThe53MinusOne) {
  static_assert(kMaxSeq == 9007199254740991ull);
  expectOurs("k3J9aQ2x-9007199254740991", kMaxSeq);
  expectForeign("b-9007199254740991", kMaxSeq);
  expectMalformed("k3J9aQ2x-9007199254740992");  // 2^53
  expectMalformed("k3J9aQ2x-9007199254740993");
  expectMalformed("k3J9aQ2x-9999999999999999");   // 16 digits, past the limit
  expectMalformed("k3J9aQ2x-10000000000000000");  // 17 digits
  expectMalformed("k3J9aQ2x-18446744073709551615");
  expectMalformed("k3J9aQ2x-18446744073709551616");  // would wrap a uint64_t
  expectMalformed("k3J9aQ2x-" + std::string(40, '9'));
  expectOurs("k3J9aQ2x-1000000000000000", 1000000000000000ull);  // 16 digits within it
}

TEST(CursorTest, EpochLengthAndBytes) {
  const std::string e32(32, 'Q'), e33(33, 'Q');
  const ParsedCursor ours = parseCursor(e32 + "-5", e32);
  EXPECT_EQ(ours.form, CursorForm::kOurs);
  EXPECT_EQ(ours.seq, 5u);
  EXPECT_EQ(parseCursor(e32 + "-5", kEpoch).form, CursorForm::kForeign);
  // The longest valid cursor: a 32-byte epoch and 2^53 - 1.
  const std::string longest = e32 + "-9007199254740991";
  EXPECT_EQ(longest.size(), kMaxCursorBytes);
  EXPECT_EQ(parseCursor(longest, e32).form, CursorForm::kOurs);
  EXPECT_EQ(parseCursor(e33 + "-5", e33).form, CursorForm::kMalformed);
  EXPECT_EQ(parseCursor(e33 + "-5", kEpoch).form, CursorForm::kMalformed);
  expectMalformed("-5");
  expectMalformed("-");
  expectMalformed("");
  expectMalformed("k3J9aQ2x");
  expectMalformed("42");
  expectMalformed("k3J9_aQ2x-5");
  expectMalformed("k3J9 aQ2x-5");
  expectMalformed("\xc3\xa9-5");
  expectMalformed("k3J9aQ2x\xff-5");
  expectMalformed(std::string_view("k3J9aQ2x\0-5", 11));
  expectMalformed(" k3J9aQ2x-5");
}

TEST(CursorTest, ReadsNothingPastTheView) {
  const std::string buffer = "k3J9aQ2x-1234";
  const std::string_view all(buffer);
  expectOurs(all.substr(0, 12), 123);
  expectOurs(all.substr(0, 10), 1);
  expectMalformed(all.substr(0, 9));  // "k3J9aQ2x-": the digits lie past the end
  expectMalformed(all.substr(0, 8));  // no dash within the view
  // A heap copy of exactly the view's bytes: ASan reports any read past it.
  for (size_t n = 0; n <= buffer.size(); ++n) {
    char* exact = new char[n ? n : 1];
    for (size_t i = 0; i < n; ++i) exact[i] = buffer[i];
    const ParsedCursor c = parseCursor(std::string_view(exact, n), kEpoch);
    EXPECT_EQ(c.form, n >= 10 ? CursorForm::kOurs : CursorForm::kMalformed) << n;
    delete[] exact;
  }
}

TEST(CursorTest, FormatRoundTrips) {
  EXPECT_EQ(formatCursor(kEpoch, 0), "k3J9aQ2x-0");
  EXPECT_EQ(formatCursor(kEpoch, 42), "k3J9aQ2x-42");
  EXPECT_EQ(formatCursor(kEpoch, kMaxSeq), "k3J9aQ2x-9007199254740991");
  // One past the grammar formats, and is refused on the way back in.
  EXPECT_EQ(parseCursor(formatCursor(kEpoch, kMaxSeq + 1), kEpoch).form, CursorForm::kMalformed);

  std::mt19937_64 rng(12);
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int i = 0; i < 20000; ++i) {
    std::string epoch(1 + rng() % 32, 'a');
    for (char& c : epoch) c = kAlnum[rng() % 62];
    uint64_t seq;
    switch (rng() % 4) {
      case 0:
        seq = rng() % 10;
        break;
      case 1:
        seq = kMaxSeq - rng() % 10;
        break;
      default:
        seq = rng() & kMaxSeq;
    }
    const std::string text = formatCursor(epoch, seq);
    const ParsedCursor ours = parseCursor(text, epoch);
    ASSERT_EQ(ours.form, CursorForm::kOurs) << text;
    ASSERT_EQ(ours.seq, seq) << text;
    std::string other = epoch;
    other[0] = other[0] == 'z' ? 'y' : 'z';
    const ParsedCursor foreign = parseCursor(text, other);
    ASSERT_EQ(foreign.form, CursorForm::kForeign) << text;
    ASSERT_EQ(foreign.seq, seq) << text;
    ASSERT_EQ(formatCursor(epoch, ours.seq), text);
  }
}

// Random strings over an alphabet where the grammar's edges are frequent:
// parseCursor and the naive reader agree on every one.
TEST(CursorTest, AgreesWithTheNaiveReaderOnRandomStrings) {
  static const std::string_view kPieces[] = {"k3J9aQ2x",
                                             "k3J9aQ2x-",
                                             "-",
                                             "0",
                                             "1",
                                             "9",
                                             "00",
                                             "9007199254740991",
                                             "9007199254740992",
                                             "x",
                                             "Q",
                                             " ",
                                             "\xc3\xa9",
                                             std::string_view("\0", 1),
                                             "+",
                                             "k3J9aQ2xk3J9aQ2xk3J9aQ2xk3J9aQ2x"};
  std::mt19937 rng(7);
  size_t counts[3] = {};
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    for (int n = static_cast<int>(rng() % 6); n > 0; --n) s += kPieces[rng() % std::size(kPieces)];
    const ParsedCursor c = parseCursor(s, kEpoch);
    const ModelCursor m = modelParseCursor(s, kEpoch);
    const CursorForm want = m.form == ModelCursor::Form::kOurs      ? CursorForm::kOurs
                            : m.form == ModelCursor::Form::kForeign ? CursorForm::kForeign
                                                                    : CursorForm::kMalformed;
    ASSERT_EQ(c.form, want) << "\"" << s << "\"";
    if (want != CursorForm::kMalformed) {
      ASSERT_EQ(c.seq, m.seq) << s;
      ASSERT_LE(c.seq, kMaxSeq);
    }
    ++counts[static_cast<size_t>(want)];
  }
  // The alphabet reaches every form often enough for the comparison to mean something.
  EXPECT_GT(counts[0], 300u);
  EXPECT_GT(counts[1], 300u);
  EXPECT_GT(counts[2], 300u);
}

}  // namespace
}  // namespace ssefanout::history
