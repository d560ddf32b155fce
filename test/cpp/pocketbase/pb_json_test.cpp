// Tests for widenBigIntegers: only integer tokens beyond 64 bits, outside
// strings, change; the limits themselves stay integers.
#include "pb_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ssefanout::pb {
namespace {

std::string widen(std::string_view in) {
  std::string out;
  return widenBigIntegers(in, &out) ? out : std::string(in);
}

TEST(PbJsonTest, OnlyIntegersBeyond64BitsBecomeDoubles) {
  EXPECT_EQ(widen("[18446744073709551616]"), "[18446744073709551616.0]");
  EXPECT_EQ(widen("[18446744073709551615,-9223372036854775808]"), "[18446744073709551615,-9223372036854775808]");
  EXPECT_EQ(widen("[-9223372036854775809,99999999999999999999999]"),
            "[-9223372036854775809.0,99999999999999999999999.0]");
  EXPECT_EQ(widen(R"({"a":1e400,"b":18446744073709551616.5,"c":1844674407370955161600e-2})"),
            R"({"a":1e400,"b":18446744073709551616.5,"c":1844674407370955161600e-2})")
      << "numbers with a fraction or exponent are already doubles";
}

TEST(PbJsonTest, StringsAreLeftAlone) {
  EXPECT_EQ(
      widen(R"({"k18446744073709551616":"18446744073709551616\" 18446744073709551616","n":18446744073709551616})"),
      R"({"k18446744073709551616":"18446744073709551616\" 18446744073709551616","n":18446744073709551616.0})");
  std::string out;
  EXPECT_FALSE(widenBigIntegers(R"(["\\",1,"99999999999999999999999"])", &out));
  EXPECT_FALSE(widenBigIntegers("", &out));
  EXPECT_FALSE(widenBigIntegers("\"unterminated 99999999999999999999999", &out));
}

}  // namespace
}  // namespace ssefanout::pb
