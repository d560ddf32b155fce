// queryValues (src/http/query) against URLSearchParams: the expected values
// below are Node 20's URLSearchParams#getAll on the same queries, printed by
// test/cpp/http/reference_outputs.js (pasted, not recomputed at test time).
#include "query.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

using namespace ssefanout::http;
using namespace std::literals;

namespace {

struct Row {
  std::string_view query, name;
  std::vector<std::string_view> values;
};

const Row kRows[] = {
    {"topics=a&topics=b", "topics", {"a"sv, "b"sv}},
    {"topics=a+b&topics=a%20b&topics=a%2Bb", "topics", {"a b"sv, "a b"sv, "a+b"sv}},
    {"topics=%2Fa%2F%7Bid%7D", "topics", {"/a/{id}"sv}},
    {"topics=%&topics=%2&topics=%zz&topics=%%41&topics=100%", "topics", {"%"sv, "%2"sv, "%zz"sv, "%A"sv, "100%"sv}},
    {"topics=%C3%A9&topics=%E2%82%AC&topics=%F0%9F%98%80",
     "topics",
     {"\xc3\xa9"sv, "\xe2\x82\xac"sv, "\xf0\x9f\x98\x80"sv}},
    {"topics=%FF&topics=%C3&topics=%C3%28&topics=%E2%82&topics=%ED%A0%80&topics=%F4%90%80%80",
     "topics",
     {"\xef\xbf\xbd"sv, "\xef\xbf\xbd"sv, "\xef\xbf\xbd("sv, "\xef\xbf\xbd"sv, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"sv,
      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"sv}},
    {"topics=%C0%AF&topics=%E0%80%AF&topics=%F0%80%80%AF&topics=%80%80&topics=a%FEb",
     "topics",
     {"\xef\xbf\xbd\xef\xbf\xbd"sv, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"sv,
      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"sv, "\xef\xbf\xbd\xef\xbf\xbd"sv,
      "a\xef\xbf\xbd"
      "b"sv}},
    {"topics=%EF%BB%BFx&topics=%00", "topics", {"\xef\xbb\xbfx"sv, "\x00"sv}},
    {"topics&topics=&=x&topics==&&topics=a=b", "topics", {""sv, ""sv, "="sv, "a=b"sv}},
    {"top%69cs=x&Topics=y&topics+=z&topics%20=w", "topics", {"x"sv}},
    {"a=1&b=2", "topics", {}},
    {"", "topics", {}},
    {"lastEventId=e-7&topics=x", "lastEventId", {"e-7"sv}},
    {"t%F0%9F%98%80=1&t%C3%A9=2&t%FF=3", "t\xf0\x9f\x98\x80", {"1"sv}},
    {"t%F0%9F%98%80=1&t%C3%A9=2&t%FF=3", "t\xc3\xa9", {"2"sv}},
    {"t%F0%9F%98%80=1&t%C3%A9=2&t%FF=3", "t\xef\xbf\xbd", {"3"sv}},
    {"topics=a%26b%3Dc&topics=%2B", "topics", {"a&b=c"sv, "+"sv}},
};

TEST(QueryTest, MatchesUrlSearchParams) {
  for (const Row& row : kRows) {
    std::vector<std::string> got;
    ASSERT_TRUE(queryValues(row.query, row.name, &got, 100, 10000)) << row.query;
    ASSERT_EQ(got.size(), row.values.size()) << row.query << " " << row.name;
    for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k], row.values[k]) << row.query << " value " << k;
  }
}

TEST(QueryTest, BoundedByCountAndBytes) {
  std::vector<std::string> got;
  EXPECT_TRUE(queryValues("t=a&t=b&t=c", "t", &got, 3, 3));
  EXPECT_EQ(got.size(), 3u);
  got.clear();
  EXPECT_FALSE(queryValues("t=a&t=b&t=c", "t", &got, 2, 100));
  got.clear();
  // Decoded bytes count: "%E2%82%AC" is 3 bytes, a lone %FF becomes U+FFFD (3 bytes).
  EXPECT_TRUE(queryValues("t=%E2%82%AC&x=long-ignored-value", "t", &got, 10, 3));
  got.clear();
  EXPECT_FALSE(queryValues("t=%E2%82%AC&t=%FF", "t", &got, 10, 5));
  got.clear();
  EXPECT_TRUE(queryValues("t=%E2%82%AC&t=%FF", "t", &got, 10, 6));
  // Values of other names count toward neither bound.
  got.clear();
  EXPECT_TRUE(queryValues("x=1&x=2&x=3&t=abc", "t", &got, 1, 3));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "abc");
}

TEST(QueryTest, DecodeFormComponent) {
  std::string out;
  decodeFormComponent("a+b%41%4g%", &out);
  EXPECT_EQ(out, "a bA%4g%");
}

}  // namespace
