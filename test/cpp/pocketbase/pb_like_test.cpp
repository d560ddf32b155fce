// likeMatch: equal to the backtracking reference (test/cpp/like_reference.hpp)
// on random valid UTF-8 patterns and texts with escapes, and within its work
// bound (counted steps, not time) on the patterns that made the reference
// quadratic; likePatternBounded's limit.
#include "pb_like.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "like_reference.hpp"

namespace ssefanout::pb {
namespace {

uint64_t bound(size_t n, size_t m) { return kLikeStepsPerByte * (n + m) + kLikeStepsConstant; }

bool match(std::string_view text, std::string_view pattern, uint64_t* steps) {
  bool r = likeMatch(text, pattern, steps);
  EXPECT_EQ(r, test::likeReference(text, pattern)) << '"' << text << "\" ~ \"" << pattern << '"';
  return r;
}

TEST(PbLikeMatcherTest, RandomPatternsAgreeWithTheReference) {
  std::mt19937 rng(11);
  // Pieces of valid UTF-8: letters in both cases, the three special bytes,
  // two- three- and four-byte characters.
  const std::vector<std::string> textPieces = {
      "a", "b", "A", "B", "%", "_", "\\", "\xC3\xA9", "\xC3\x89", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "~"};
  const std::vector<std::string> patternPieces = {"a",
                                                  "b",
                                                  "A",
                                                  "%",
                                                  "%",
                                                  "_",
                                                  "_",
                                                  "\\%",
                                                  "\\_",
                                                  "\\\\",
                                                  "\\a",
                                                  "\xC3\xA9",
                                                  "\\\xC3\xA9",
                                                  "\xE2\x82\xAC",
                                                  "\xF0\x9F\x98\x80"};
  uint64_t matched = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string text, pattern;
    for (size_t k = rng() % 14; k > 0; --k) text += textPieces[rng() % textPieces.size()];
    for (size_t k = rng() % 9; k > 0; --k) pattern += patternPieces[rng() % patternPieces.size()];
    if (rng() % 8 == 0) pattern += '\\';  // a trailing lone backslash
    uint64_t steps = 0;
    matched += match(text, pattern, &steps);
    std::string why;
    if (likePatternBounded(pattern, &why)) {
      ASSERT_LE(steps, bound(text.size(), pattern.size())) << text << " ~ " << pattern;
    }
  }
  EXPECT_GT(matched, 5000u) << "the generator makes matches too";
}

TEST(PbLikeMatcherTest, MiddleCoresWithWildcardsAgreeWithTheReference) {
  // Longer cores with several _ between literals, found at their leftmost
  // occurrence, where a greedy bug would show.
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const char* pieces[] = {"a", "b", "\xC3\xA9", "B"};
    for (size_t k = rng() % 40; k > 0; --k) text += pieces[rng() % 4];
    std::string pattern = "%";
    for (size_t k = 1 + rng() % 8; k > 0; --k) pattern += "ab_\xC3"[rng() % 3];
    if (rng() % 2) pattern += "%";
    for (size_t k = rng() % 4; k > 0; --k) pattern += "a_b"[rng() % 3];
    pattern += rng() % 2 ? "%" : "";
    uint64_t steps = 0;
    match(text, pattern, &steps);
  }
}

TEST(PbLikeMatcherTest, AttackPatternsTakeLinearSteps) {
  const std::string body(10000, 'x');
  struct Attack {
    std::string text, pattern;
  };
  std::vector<Attack> attacks = {
      {body, "%" + std::string(2400, '_') + "~%"},  // the issue's: 30 ms a key with backtracking
      {body, "%" + std::string(2400, '_') + "x~%"},
      {std::string(10000, 'a'), "%" + std::string(1000, 'a') + "b%"},      // KMP, not restarts
      {std::string(10000, 'a'), "%" + std::string(60, 'a') + "_" + "b%"},  // Shift-And, one word
      {std::string(10000, 'a'), std::string(800, '%') + std::string(1200, 'a') + "%b"},
      {body, "%x%x%x%x%x%x%x%x%x%x%y%"},
      {std::string(5000, 'a') + "b", "%a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_ab%"},
      {std::string(3000, '\xC3') + std::string(3000, '\xA9'), "%\xC3\xA9_\xC3\xA9%"},
  };
  for (const Attack& a : attacks) {
    std::string why;
    ASSERT_TRUE(likePatternBounded(a.pattern, &why)) << why;
    uint64_t steps = 0;
    match(a.text, a.pattern, &steps);
    EXPECT_LE(steps, bound(a.text.size(), a.pattern.size())) << a.pattern.substr(0, 40);
    std::printf("[ figures  ] n=%zu m=%zu steps=%llu (%.2f per byte)\n", a.text.size(), a.pattern.size(),
                static_cast<unsigned long long>(steps), double(steps) / double(a.text.size() + a.pattern.size()));
  }
}

TEST(PbLikeMatcherTest, LongWildcardCoresFromFieldsCostTextTimesWords) {
  // What a column or @request.* value on the right can make: refused in a
  // literal, matched here in n x ceil(L / 64) word steps.
  std::string core;
  for (int i = 0; i < 1000; ++i) core += i % 2 ? "_" : "a";
  const std::string pattern = "%" + core + "b%";
  std::string why;
  EXPECT_FALSE(likePatternBounded(pattern, &why));
  EXPECT_NE(why.find("1001 characters"), std::string::npos) << why;
  const std::string text = std::string(10000, 'a') + "b";
  uint64_t steps = 0;
  likeMatch(text, pattern, &steps);
  const uint64_t words = (core.size() + 1 + 63) / 64;
  EXPECT_LE(steps, 3 * text.size() * words + 8 * (text.size() + pattern.size()));
  EXPECT_EQ(likeMatch(text, pattern), test::likeReference(text, pattern));
  std::printf("[ figures  ] run-time core of %zu characters, n=%zu: steps=%llu (%llu words)\n", core.size() + 1,
              text.size(), static_cast<unsigned long long>(steps), static_cast<unsigned long long>(words));
}

TEST(PbLikeMatcherTest, OnlyMiddleCoresWithWildcardsAreLimited) {
  std::string why;
  const std::string w64 = "a" + std::string(62, '_') + "b";
  const std::string w65 = "a" + std::string(63, '_') + "b";
  EXPECT_TRUE(likePatternBounded("%" + w64 + "%", &why));
  EXPECT_FALSE(likePatternBounded("%" + w65 + "%", &why));
  EXPECT_TRUE(likePatternBounded(w65 + "%", &why)) << "the first part is matched in place";
  EXPECT_TRUE(likePatternBounded("%" + w65, &why)) << "the last part is matched in place";
  EXPECT_TRUE(likePatternBounded("%" + std::string(5000, '_') + "%", &why)) << "runs of _ are skips";
  EXPECT_TRUE(likePatternBounded("%" + std::string(5000, 'a') + "%", &why)) << "a literal core: KMP";
  EXPECT_TRUE(likePatternBounded("%\\_" + std::string(100, 'a') + "%", &why)) << "an escaped _ is a literal";
  std::string wide = "%";  // 65 characters of two bytes: counted in characters
  for (int i = 0; i < 65; ++i) wide += i == 1 ? "_" : "\xC3\xA9";
  wide += "%";
  EXPECT_FALSE(likePatternBounded(wide, &why));
}

}  // namespace
}  // namespace ssefanout::pb
