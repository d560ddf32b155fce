// parseSubscription and snakecase: strings the PocketBase JS SDK really sends
// (computed with its encodeURIComponent(JSON.stringify({query, headers}))),
// Go's url.Parse / ParseQuery / json.Unmarshal corner cases, and PocketBase's
// own inflector test table.
#include "pb_subscription.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ssefanout::pb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

// "posts/*" with {filter: 'status = "active"', fields: 'id,title', headers: {'X-Token': 'abc'}}.
constexpr std::string_view kSdkBasic =
    "posts/*?options=%7B%22query%22%3A%7B%22filter%22%3A%22status%20%3D%20%5C%22active%5C%22%22%2C%22fields%22%3A%"
    "22id%2Ctitle%22%7D%2C%22headers%22%3A%7B%22X-Token%22%3A%22abc%22%7D%7D";

// "posts/RECORD_ID" with query {filter: "views > 10 && title ~ 'café & co'", n: 5, f: 1.5, big: 1e21,
// small: 1e-7, b: true, z: null, o: {a: 1}, arr: [1, 2]} and headers
// {'X-Custom-Header': 'v1', myTestDB: 'v2', authorization: 'tok'}.
constexpr std::string_view kSdkTypes =
    "posts/RECORD_ID?options=%7B%22query%22%3A%7B%22filter%22%3A%22views%20%3E%2010%20%26%26%20title%20~%20'caf%"
    "C3%A9%20%26%20co'%22%2C%22n%22%3A5%2C%22f%22%3A1.5%2C%22big%22%3A1e%2B21%2C%22small%22%3A1e-7%2C%22b%22%"
    "3Atrue%2C%22z%22%3Anull%2C%22o%22%3A%7B%22a%22%3A1%7D%2C%22arr%22%3A%5B1%2C2%5D%7D%2C%22headers%22%3A%7B%"
    "22X-Custom-Header%22%3A%22v1%22%2C%22myTestDB%22%3A%22v2%22%2C%22authorization%22%3A%22tok%22%7D%7D";

// A topic that already holds '?': the SDK appends "&options=".
constexpr std::string_view kSdkAmp =
    "chat?room=1&options=%7B%22query%22%3A%7B%22filter%22%3A%22a%20%3D%201%20%2B%202%22%7D%7D";

TEST(PbSubscriptionTest, SdkStringWithFilterFieldsAndHeader) {
  Subscription sub = parseSubscription(kSdkBasic);
  EXPECT_EQ(sub.base, "posts/*");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("fields", "id,title"), Pair("filter", "status = \"active\"")));
  EXPECT_THAT(sub.options.headers, ElementsAre(Pair("x_token", "abc")));
  ASSERT_NE(sub.options.queryValue("filter"), nullptr);
  EXPECT_EQ(*sub.options.queryValue("filter"), "status = \"active\"");
  ASSERT_NE(sub.options.headerValue("x_token"), nullptr);
  EXPECT_EQ(*sub.options.headerValue("x_token"), "abc");
  EXPECT_EQ(sub.options.queryValue("expand"), nullptr);
  EXPECT_EQ(sub.options.headerValue("X-Token"), nullptr);  // lookups take the snake_cased name
}

TEST(PbSubscriptionTest, ValuesAreCastToStringsAsPocketBaseDoes) {
  Subscription sub = parseSubscription(kSdkTypes);
  EXPECT_EQ(sub.base, "posts/RECORD_ID");
  EXPECT_THAT(sub.options.query,
              ElementsAre(Pair("arr", ""), Pair("b", "true"), Pair("big", "1000000000000000000000"), Pair("f", "1.5"),
                          Pair("filter", "views > 10 && title ~ 'caf\xC3\xA9 & co'"), Pair("n", "5"), Pair("o", ""),
                          Pair("small", "0.0000001"), Pair("z", "")));
  EXPECT_THAT(sub.options.headers,
              ElementsAre(Pair("authorization", "tok"), Pair("my_test_db", "v2"), Pair("x_custom_header", "v1")));
}

TEST(PbSubscriptionTest, IntegersBeyond64BitsAreFloatsAsInGo) {
  // {"query":{"filter":"x = 1","n":18446744073709551616,"m":-18446744073709551616}}: Go reads float64s.
  Subscription sub = parseSubscription(
      "posts/"
      "*?options=%7B%22query%22%3A%7B%22filter%22%3A%22x%20%3D%201%22%2C%22n%22%3A18446744073709551616%2C%22m%22%3A-"
      "18446744073709551616%7D%7D");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("filter", "x = 1"), Pair("m", "-18446744073709551616"),
                                             Pair("n", "18446744073709551616")));
}

TEST(PbSubscriptionTest, TopicWithItsOwnQuery) {
  Subscription sub = parseSubscription(kSdkAmp);
  EXPECT_EQ(sub.base, "chat");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("filter", "a = 1 + 2")));  // %2B is '+', not a space
  EXPECT_THAT(sub.options.headers, IsEmpty());
}

TEST(PbSubscriptionTest, NoOptions) {
  for (std::string_view s : {"posts/*", "posts/abc", "", "*", "posts/*?", "posts/*?other=1", "@oauth2"}) {
    Subscription sub = parseSubscription(s);
    EXPECT_EQ(sub.base, s.substr(0, s.find('?'))) << s;
    EXPECT_TRUE(sub.options.empty()) << s;
  }
}

TEST(PbSubscriptionTest, PlusIsASpaceInTheQuery) {
  Subscription sub = parseSubscription("t?options={\"query\":{\"filter\":\"a+=+1\"}}");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("filter", "a = 1")));
}

TEST(PbSubscriptionTest, FirstWellFormedOptionsPairWins) {
  EXPECT_THAT(parseSubscription("t?options={\"query\":{\"a\":\"1\"}}&options={\"query\":{\"a\":\"2\"}}").options.query,
              ElementsAre(Pair("a", "1")));
  // A pair with a bad escape is skipped by ParseQuery, so the next one is first.
  EXPECT_THAT(parseSubscription("t?options=%zz&options={\"query\":{\"a\":\"2\"}}").options.query,
              ElementsAre(Pair("a", "2")));
  // The key is unescaped too.
  EXPECT_THAT(parseSubscription("t?%6Fptions={\"query\":{\"a\":\"3\"}}").options.query, ElementsAre(Pair("a", "3")));
  // A pair holding ';' is refused by Go (>= 1.17).
  EXPECT_TRUE(parseSubscription("t?options={\"query\":{\"a\":\"x;y\"}}").options.empty());
  // An empty options value means no options.
  EXPECT_TRUE(parseSubscription("t?options=&options={\"query\":{\"a\":\"1\"}}").options.empty());
}

TEST(PbSubscriptionTest, InvalidOptionsGiveEmptyOptions) {
  const char* cases[] = {
      "t?options=%7B%22query%22%3A%7B%22a%22%3A%221%22%7D%7",  // bad escape at the end
      "t?options=%GG",                                         // bad escape
      "t?options={\"query\":",                                 // truncated JSON
      "t?options={\"query\":{\"a\":1}} x",                     // trailing garbage
      "t?options=[1,2]",                                       // not an object
      "t?options=\"str\"",
      "t?options=null",
      "t?options={\"query\":\"x\"}",  // query not an object
      "t?options={\"query\":[1]}",
      "t?options={\"query\":{\"a\":1e400}}",  // simdjson refuses out-of-range numbers
      "t?options={\"other\":{\"a\":\"1\"}}",  // unknown member only
  };
  for (const char* s : cases) {
    Subscription sub = parseSubscription(s);
    EXPECT_EQ(sub.base, "t") << s;
    EXPECT_TRUE(sub.options.empty()) << s;
  }
}

TEST(PbSubscriptionTest, WrongTypedMemberIsSkippedOthersKept) {
  // encoding/json saves the type error and goes on decoding.
  Subscription sub = parseSubscription("t?options={\"query\":\"x\",\"headers\":{\"A\":\"1\"}}");
  EXPECT_THAT(sub.options.query, IsEmpty());
  EXPECT_THAT(sub.options.headers, ElementsAre(Pair("a", "1")));
}

TEST(PbSubscriptionTest, MemberNamesAreCaseInsensitiveAndMerge) {
  Subscription sub = parseSubscription(
      "t?options={\"QUERY\":{\"a\":\"1\",\"b\":\"x\"},\"Query\":{\"b\":\"2\"},\"HeAdErS\":{\"X-A\":1}}");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("a", "1"), Pair("b", "2")));
  EXPECT_THAT(sub.options.headers, ElementsAre(Pair("x_a", "1")));
  // null resets the map, later members add to the new one.
  sub = parseSubscription("t?options={\"query\":{\"a\":\"1\"},\"query\":null,\"query\":{\"b\":\"2\"}}");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("b", "2")));
}

TEST(PbSubscriptionTest, DuplicateNamesLastWins) {
  Subscription sub = parseSubscription(
      "t?options={\"query\":{\"a\":\"1\",\"a\":\"2\"},\"headers\":{\"X-Token\":\"1\",\"x_token\":\"2\"}}");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("a", "2")));
  EXPECT_THAT(sub.options.headers, ElementsAre(Pair("x_token", "2")));
}

TEST(PbSubscriptionTest, InvalidUtf8BecomesReplacementCharacter) {
  Subscription sub = parseSubscription("t?options={\"query\":{\"a\":\"x%FFy\"}}");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("a", "x\xEF\xBF\xBDy")));
  // A lone continuation byte and a truncated sequence.
  sub = parseSubscription("t?options={\"query\":{\"a\":\"%80%C3\"}}");
  EXPECT_THAT(sub.options.query, ElementsAre(Pair("a", "\xEF\xBF\xBD\xEF\xBF\xBD")));
  // Outside a string it is still a syntax error.
  EXPECT_TRUE(parseSubscription("t?options={\"query\":{\"a\":\"1\"}%FF}").options.empty());
}

TEST(PbSubscriptionTest, StringsGoRefusesCarryNoOptions) {
  const std::string opts = "?options={\"query\":{\"a\":\"1\"}}";
  const char* refused[] = {
      ":posts",       // missing protocol scheme
      "1a:b/c",       // colon in the first path segment without a scheme
      "a b:c",        // same: ' ' ends the scheme scan
      "po%zzsts/*",   // bad escape in the path
      "posts/\x01*",  // control byte
      "posts/\x7f",
  };
  for (const char* base : refused) {
    Subscription sub = parseSubscription(std::string(base) + opts);
    EXPECT_TRUE(sub.options.empty()) << base;
  }
  // A bad escape in the fragment fails the whole parse.
  EXPECT_TRUE(parseSubscription("t" + opts + "#%zz").options.empty());
  // Accepted: a scheme (opaque, kept raw), escapes in the path, a fragment.
  const char* accepted[] = {"posts:x/*", "mailto:%zz", "posts/%41*", "/abs/path"};
  for (const char* base : accepted) {
    Subscription sub = parseSubscription(std::string(base) + opts);
    EXPECT_THAT(sub.options.query, ElementsAre(Pair("a", "1"))) << base;
  }
  EXPECT_THAT(parseSubscription("t" + opts + "#frag").options.query, ElementsAre(Pair("a", "1")));
  // '#' before '?': the query is inside the fragment.
  EXPECT_TRUE(parseSubscription("t#x" + opts).options.empty());
}

TEST(PbSubscriptionTest, BaseIsAViewIntoTheInput) {
  std::string s(kSdkBasic);
  Subscription sub = parseSubscription(s);
  EXPECT_EQ(sub.base.data(), s.data());
  EXPECT_EQ(sub.base.size(), 7u);
}

TEST(PbSubscriptionTest, RandomInputsNeverCrash) {
  std::mt19937 rng(12345);
  const std::string alphabet = "posts/*?&=;%7B%22query%7D{}[]\":,abcXY-_+#\x01\xff\xc3\xa9 0123456789";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    size_t len = rng() % 60;
    for (size_t i = 0; i < len; ++i) s.push_back(alphabet[rng() % alphabet.size()]);
    if (rng() % 2) s = "t?options={\"query\":{" + s;
    Subscription sub = parseSubscription(s);
    EXPECT_LE(sub.base.size(), s.size());
    for (size_t i = 1; i < sub.options.query.size(); ++i) {
      EXPECT_LT(sub.options.query[i - 1].first, sub.options.query[i].first);
    }
  }
}

// PocketBase tools/inflector/inflector_test.go TestSnakecase, plus a few more.
TEST(PbSubscriptionTest, SnakecaseMatchesPocketBaseTable) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},
      {"  ", ""},
      {"!@#$%^", ""},
      {"...", ""},
      {"_", ""},
      {"John Doe", "john_doe"},
      {"John_Doe", "john_doe"},
      {".a!b@c#d$e%123. ", "a_b_c_d_e_123"},
      {"HelloWorld", "hello_world"},
      {"HelloWorld1HelloWorld2", "hello_world1_hello_world2"},
      {"TEST", "test"},
      {"testABR", "test_abr"},
      // Beyond PocketBase's table:
      {"X-Token", "x_token"},
      {"myTestDB", "my_test_db"},
      {"x_token", "x_token"},
      {"Content-Type", "content_type"},
      {"ABCdef", "abcdef"},  // upper after upper: no '_'
      {"aB", "a_b"},
      {"a1B", "a1_b"},
      {"caf\xC3\xA9-Bar", "caf_bar"},  // non-ASCII bytes separate words
      {"\xff"
       "A",
       "a"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(snakecase(in), want) << in;
}

TEST(PbSubscriptionTest, GoFloatFormatting) {
  const std::pair<double, const char*> cases[] = {
      {0, "0"},
      {5, "5"},
      {-5, "-5"},
      {1.5, "1.5"},
      {0.1, "0.1"},
      {1e21, "1000000000000000000000"},
      {1e-7, "0.0000001"},
      {123456789.125, "123456789.125"},
      {-0.0, "-0"},
  };
  for (const auto& [d, want] : cases) {
    std::string out;
    appendGoFloat(d, &out);
    EXPECT_EQ(out, want);
  }
}

}  // namespace
}  // namespace ssefanout::pb
