// Fuzz target: likeMatch (pb_like.hpp), the linear SQL LIKE matcher.
//
// Input: one mode byte, then text NUL pattern. The text is repeated
// (mode % 8) + 1 times, so short inputs reach long texts. Asserted:
//  - on valid UTF-8 (every text and pattern a filter sees), the result
//    equals the backtracking reference matcher (test/cpp/like_reference.hpp)
//    when n x m is small enough for it to run fast;
//  - on any bytes, for a pattern that likePatternBounded() accepts (every
//    literal a filter compiles), the counted work is at most
//    kLikeStepsPerByte * (n + m) + kLikeStepsConstant;
//  - a refused pattern still matches within ceil(L / 64) word steps a
//    character, plus sorting its characters (checked loosely:
//    3 * n * words + m * log2(m) + the linear bound).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "like_reference.hpp"
#include "pb_like.hpp"
#include "simdjson.h"

using namespace ssefanout::pb;
using fuzzutil::show;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const unsigned mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nul = in.find('\0');
  std::string_view once = in.substr(0, nul);
  std::string_view pattern = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  std::string text;
  for (unsigned k = 0; k <= mode % 8; ++k) text.append(once);

  uint64_t steps = 0;
  bool got = likeMatch(text, pattern, &steps);
  const uint64_t n = text.size(), m = pattern.size();
  std::string why;
  if (likePatternBounded(pattern, &why)) {
    FUZZ_CHECK(steps <= kLikeStepsPerByte * (n + m) + kLikeStepsConstant,
               "likeMatch(%s, %s): %llu steps for n=%llu m=%llu", show(text).c_str(), show(pattern).c_str(),
               static_cast<unsigned long long>(steps), static_cast<unsigned long long>(n),
               static_cast<unsigned long long>(m));
  } else {
    const uint64_t words = (m + 63) / 64;
    uint64_t log2m = 1;
    while ((uint64_t{1} << log2m) < m) ++log2m;
    FUZZ_CHECK(steps <= 3 * n * words + m * log2m + kLikeStepsPerByte * (n + m) + kLikeStepsConstant,
               "likeMatch(%s, %s): %llu steps for a refused pattern", show(text).c_str(), show(pattern).c_str(),
               static_cast<unsigned long long>(steps));
  }
  // The reference is O(n x m): compared where that stays fast.
  if (n * (m + 1) <= (uint64_t{1} << 22) && simdjson::validate_utf8(text.data(), text.size()) &&
      simdjson::validate_utf8(pattern.data(), pattern.size())) {
    bool want = ssefanout::test::likeReference(text, pattern);
    FUZZ_CHECK(got == want, "likeMatch(%s, %s) = %d, reference %d", show(text).c_str(), show(pattern).c_str(), got,
               want);
  }
  return 0;
}
