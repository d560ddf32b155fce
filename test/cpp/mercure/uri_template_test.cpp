// UriTemplate and selectorMatches (src/mercure/): the reference hub's
// verdicts (design §2's table: Go tests, the spec, the conformance suite),
// yosida95/uritemplate's RFC 6570 regexp cases, parse failures, the bounds,
// and a random differential check against the Go regexp text run by std::regex
// (test/cpp/uri_template_reference.hpp). Every fixed case is also checked
// against that reference, so the reference is pinned to the Go verdicts too.
#include "uri_template.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "selector.hpp"
#include "uri_template_reference.hpp"

// Counts every allocation in this binary, for the no-allocation test below.
static std::atomic<size_t> gAllocations{0};

void* operator new(size_t size) {
  gAllocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC would see free() on what `new` returned and warn.
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

using ssefanout::mercure::selectorMatches;
using ssefanout::mercure::UriTemplate;
using ssefanout::test::uriTemplateReference;
using ssefanout::test::uriTemplateReferenceMatch;

// The hub's four steps with the reference matcher in the last one.
bool referenceSelectorMatches(std::string_view selector, std::string_view topic) {
  if (selector == "*" || selector == topic) return true;
  if (selector.find('{') == std::string_view::npos) return false;
  const auto ref = uriTemplateReference(selector);
  if (!ref.ok) return false;
  const auto m = uriTemplateReferenceMatch(ref.pattern, topic);
  EXPECT_TRUE(m.has_value()) << "std::regex gave up on " << ref.pattern;
  return m.value_or(false);
}

struct Case {
  const char* selector;
  const char* topic;
  bool match;
};

void expectCases(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    EXPECT_EQ(selectorMatches(c.selector, c.topic), c.match) << c.selector << " vs " << c.topic;
    EXPECT_EQ(referenceSelectorMatches(c.selector, c.topic), c.match)
        << "reference: " << c.selector << " vs " << c.topic;
  }
}

TEST(MercureSelector, DesignTableRows1To11) {
  expectCases({
      {"https://example.com/{foo}/bar", "https://example.com/foo/bar", true},  // 1
      {"https://example.com/{foo}/bar", "https://example.com/foo/bar/baz", false},
      {"https://example.com/{fistname}/{lastname}", "https://example.com/kevin/dunglas", true},  // 2
      {"*", "https://example.com/foo/bar", true},                                                // 3
      {"foo", "foo", true},                                                                      // 4
      {"bar", "foo", false},
      {"https://example.com/{x}", "https://other.com/a", false},                // 5
      {"https://example.com/books/{id}", "https://example.com/books/1", true},  // 6
      {"https://example.com/books/{id}", "https://example.com/books/", true},
      {"https://example.com/books/{id}", "https://example.com/books/1,2", true},
      {"https://example.com/books/{id}", "https://example.com/books/1/reviews", false},
      {"https://example.com/books/{id}", "https://example.com/books/1?x=1", false},
      {"https://example.com/books/{id}", "https://example.com/books/caf%C3%A9", true},  // 7
      {"https://example.com/books/{id}", "https://example.com/books/caf\xC3\xA9", false},
      {"https://example.com/books/{id}", "https://example.com/books/a b", false},
      {"https://example.com/books/{id}", "https://example.com/books/%zz", false},
      {"https://example.com/users/foo/{?topic}",  // 8
       "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", true},
      {"https://example.com/users/foo/{?topic}", "https://example.com/users/foo/?topic=https://example.com/books/1",
       false},
      {"https://example.com/users/foo/{?topic}",
       "https://example.com/users/bar/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", false},
      {"https://example.com/users/foo/{?topic}", "https://example.com/users/foo/", true},
      {"https://example.com/foo{?bar}", "https://example.com/foobaz", false},  // 9
      {"https://example.com/foo{?bar}", "https://example.com/foo?bar=1&baz=2", false},
      {"https://example.com/foo{?bar,baz}", "https://example.com/foo?bar=1&baz=2", true},  // 10
      {"https://example.com/foo{?bar,baz}", "https://example.com/foo?bar=1&baz=2&qux=3", false},
      {"https://example.com/foo{?bar*}", "https://example.com/foo?bar=1&baz=2&qux=3", true},  // 11
  });
}

TEST(MercureSelector, DesignTableRows12To23) {
  expectCases({
      {"https://example.com{/path*}", "https://example.com/a/b/c", true},  // 12
      {"https://example.com{/path}", "https://example.com/a/b", false},
      {"https://example.com{/a,b}", "https://example.com/x/y", true},  // 13
      {"https://example.com{/a,b}", "https://example.com/x/y/z", false},
      {"https://example.com/{+rest}", "https://example.com/a/b?c=d#e", true},  // 14
      {"https://example.com/{+rest}", "https://example.com/a b", false},
      {"https://example.com/{#frag}", "https://example.com/#x/y", true},  // 15
      {"https://example.com/{#frag}", "https://example.com/x", false},
      {"https://example.com/{var:3}", "https://example.com/abcdef", true},  // 16: the prefix is ignored
      {"www{.dom*}", "www.example.com", true},                              // 17
      {"X{;count*}", "X;count=one;count=two", true},
      {"https://example.com/{id}", "https://EXAMPLE.com/1", false},  // 18
      {"https://example.com/{id}", "HTTPS://example.com/1", false},
      {"https://example.com/{id}", "https://example.com/1%2F2", true},
      {"https://example.com/books/{id", "https://example.com/books/1", false},   // 19: not a template
      {"https://example.com/books/{id", "https://example.com/books/{id", true},  // identical strings
      {"https://example.com/{id}", "https://example.com/{id}", true},
      {"https://example.com/{a b}", "https://example.com/x", false},  // 20: not templates
      {"https://example.com/{id}|x", "https://example.com/1|x", false},
      {"https://example.com/{id}.json", "https://example.com/1.json", true},  // 21: '.' is in the class
      {"https://example.com/{id}.json", "https://example.com/1", false},
      {"https://example.com/caf%C3%A9/{id}", "https://example.com/caf%c3%a9/1", false},  // 22
      {"https://example.com/caf%C3%A9/{id}", "https://example.com/caf%C3%A9/1", true},
      {"/.well-known/mercure/subscriptions{/topic}{/subscriber}",  // 23
       "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%7Bselector%7D/"
       "urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6",
       true},
  });
}

// yosida95/uritemplate's TestTemplateRegexp: each RFC 6570 example expansion
// matches its template's regexp; and Example_Regexp.
TEST(MercureSelector, Rfc6570ExpansionsMatch) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"'{count}'", "'one,two,three'"},
      {"{count}", "one,two,three"},
      {"{count*}", "one,two,three"},
      {"{/count}", "/one,two,three"},
      {"{/count*}", "/one/two/three"},
      {"{;count}", ";count=one,two,three"},
      {"{;count*}", ";count=one;count=two;count=three"},
      {"{?count}", "?count=one,two,three"},
      {"{?count*}", "?count=one&count=two&count=three"},
      {"{&count*}", "&count=one&count=two&count=three"},
      {"{var}", "value"},
      {"{hello}", "Hello%20World%21"},
      {"{half}", "50%25"},
      {"O{empty}X", "OX"},
      {"O{undef}X", "OX"},
      {"{x,y}", "1024,768"},
      {"{x,hello,y}", "1024,Hello%20World%21,768"},
      {"?{x,empty}", "?1024,"},
      {"?{x,undef}", "?1024"},
      {"?{undef,y}", "?768"},
      {"{var:3}", "val"},
      {"{var:30}", "value"},
      {"{list}", "red,green,blue"},
      {"{list*}", "red,green,blue"},
      {"{keys}", "semi,%3B,dot,.,comma,%2C"},
      {"{keys*}", "semi=%3B,dot=.,comma=%2C"},
      {"{+var}", "value"},
      {"{+hello}", "Hello%20World!"},
      {"{+half}", "50%25"},
      {"{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex"},
      {"{+base}index", "http://example.com/home/index"},
      {"O{+empty}X", "OX"},
      {"O{+undef}X", "OX"},
      {"{+path}/here", "/foo/bar/here"},
      {"here?ref={+path}", "here?ref=/foo/bar"},
      {"up{+path}{var}/here", "up/foo/barvalue/here"},
      {"{+x,hello,y}", "1024,Hello%20World!,768"},
      {"{+path,x}/here", "/foo/bar,1024/here"},
      {"{+path:6}/here", "/foo/b/here"},
      {"{+list}", "red,green,blue"},
      {"{+list*}", "red,green,blue"},
      {"{+keys}", "semi,;,dot,.,comma,,"},
      {"{+keys*}", "semi=;,dot=.,comma=,"},
      {"{#var}", "#value"},
      {"{#hello}", "#Hello%20World!"},
      {"{#half}", "#50%25"},
      {"foo{#empty}", "foo#"},
      {"foo{#undef}", "foo"},
      {"{#x,hello,y}", "#1024,Hello%20World!,768"},
      {"{#path,x}/here", "#/foo/bar,1024/here"},
      {"{#path:6}/here", "#/foo/b/here"},
      {"{#list}", "#red,green,blue"},
      {"{#list*}", "#red,green,blue"},
      {"{#keys}", "#semi,;,dot,.,comma,,"},
      {"{#keys*}", "#semi=;,dot=.,comma=,"},
      {"{.who}", ".fred"},
      {"{.who,who}", ".fred.fred"},
      {"{.half,who}", ".50%25.fred"},
      {"www{.dom*}", "www.example.com"},
      {"X{.var}", "X.value"},
      {"X{.empty}", "X."},
      {"X{.undef}", "X"},
      {"X{.var:3}", "X.val"},
      {"X{.list}", "X.red,green,blue"},
      {"X{.list*}", "X.red.green.blue"},
      {"X{.keys}", "X.semi,%3B,dot,.,comma,%2C"},
      {"X{.keys*}", "X.semi=%3B.dot=..comma=%2C"},
      {"X{.empty_keys}", "X"},
      {"X{.empty_keys*}", "X"},
      {"{/who}", "/fred"},
      {"{/who,who}", "/fred/fred"},
      {"{/half,who}", "/50%25/fred"},
      {"{/who,dub}", "/fred/me%2Ftoo"},
      {"{/var}", "/value"},
      {"{/var,empty}", "/value/"},
      {"{/var,undef}", "/value"},
      {"{/var,x}/here", "/value/1024/here"},
      {"{/var:1,var}", "/v/value"},
      {"{/list}", "/red,green,blue"},
      {"{/list*}", "/red/green/blue"},
      {"{/list*,path:4}", "/red/green/blue/%2Ffoo"},
      {"{/keys}", "/semi,%3B,dot,.,comma,%2C"},
      {"{/keys*}", "/semi=%3B/dot=./comma=%2C"},
      {"{;who}", ";who=fred"},
      {"{;half}", ";half=50%25"},
      {"{;empty}", ";empty"},
      {"{;v,empty,who}", ";v=6;empty;who=fred"},
      {"{;v,bar,who}", ";v=6;who=fred"},
      {"{;x,y}", ";x=1024;y=768"},
      {"{;x,y,empty}", ";x=1024;y=768;empty"},
      {"{;x,y,undef}", ";x=1024;y=768"},
      {"{;hello:5}", ";hello=Hello"},
      {"{;list}", ";list=red,green,blue"},
      {"{;list*}", ";list=red;list=green;list=blue"},
      {"{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"},
      {"{;keys*}", ";semi=%3B;dot=.;comma=%2C"},
      {"{?who}", "?who=fred"},
      {"{?half}", "?half=50%25"},
      {"{?x,y}", "?x=1024&y=768"},
      {"{?x,y,empty}", "?x=1024&y=768&empty="},
      {"{?x,y,undef}", "?x=1024&y=768"},
      {"{?var:3}", "?var=val"},
      {"{?list}", "?list=red,green,blue"},
      {"{?list*}", "?list=red&list=green&list=blue"},
      {"{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"},
      {"{?keys*}", "?semi=%3B&dot=.&comma=%2C"},
      {"{&who}", "&who=fred"},
      {"{&half}", "&half=50%25"},
      {"?fixed=yes{&x}", "?fixed=yes&x=1024"},
      {"{&x,y,empty}", "&x=1024&y=768&empty="},
      {"{&x,y,undef}", "&x=1024&y=768"},
      {"{&var:3}", "&var=val"},
      {"{&list}", "&list=red,green,blue"},
      {"{&list*}", "&list=red&list=green&list=blue"},
      {"{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"},
      {"{&keys*}", "&semi=%3B&dot=.&comma=%2C"},
      {"{special_chars}", "2001%3Adb8%3A%3A35"},
  };
  for (const auto& [tpl, topic] : cases) {
    const auto t = UriTemplate::compile(tpl);
    ASSERT_TRUE(t.has_value()) << tpl;
    EXPECT_TRUE(t->matches(topic)) << tpl << " vs " << topic;
    const auto ref = uriTemplateReference(tpl);
    ASSERT_TRUE(ref.ok) << tpl;
    EXPECT_EQ(uriTemplateReferenceMatch(ref.pattern, topic), true) << ref.pattern << " vs " << topic;
  }
  expectCases({
      {"https://example.com/dictionary/{term:1}/{term}", "https://example.com/dictionary/c/cat", true},
      {"https://example.com/dictionary/{term:1}/{term}", "https://example.com/dictionary/c/a/cat", false},
  });
}

TEST(MercureSelector, OperatorsClassesAndRepetitions) {
  expectCases({
      // One plain variable: no separator group, but ',' is in the class.
      {"a{/x}", "a/1,2", true},
      {"a{/x}", "a/1/2", false},
      // {0,n-1}: n values at most.
      {"a{/x,y,z}", "a/1/2/3", true},
      {"a{/x,y,z}", "a/1/2/3/4", false},
      {"a{/x,y,z}", "a", true},
      {"a{/x,y,z}", "a/", true},
      {"a{/x,y,z}", "a///", true},
      {"a{/x,y,z}", "a////", false},
      // '=' only when named or exploded.
      {"a{x}", "ax=1", false},
      {"a{x*}", "ax=1", true},
      {"a{x,y*}", "ax=1", false},   // V0 is not exploded: no '=' in it...
      {"a{x,y*}", "a1,y=2", true},  // ...but after a separator
      {"a{/x}", "a/x=1", false},
      {"a{;x}", "a;x=1", true},
      {"a{&x}", "a&x=1", true},
      {"a{&x}", "a&x=1&y=2", false},
      {"a{&x,y}", "a&x=1&y=2", true},
      {"a{.x}", "a.b.c", true},  // '.' is in U
      {"a{.x}", "a.b/c", false},
      {"a{#x}", "a#/b?c", true},
      {"a{#x}", "a/b", false},
      {"a{+x}", "a!#$&'()*+,/:;=?@[]", true},
      {"a{x}", "a!", false},
      {"a{x}", "a-._~09AZaz", true},
      // The variable names do not take part, nor do the prefixes.
      {"a{?x}", "a?y=1", true},
      {"a{?x:1}", "a?x=123", true},
      // %XX: any case of hex digits in the topic; a bare or short % never.
      {"a{x}", "a%2f%2F", true},
      {"a{x}", "a%", false},
      {"a{x}", "a%2", false},
      {"a{x}", "a%2g", false},
      {"a{+x}", "a%", false},
      // Non-ASCII bytes never inside a value; a literal matches itself.
      {"\xC3\xA9{x}", "\xC3\xA9z", true},
      {"a{+x}", "a\xC3\xA9", false},
      {"a{x}", "a\xFF", false},
      // Expressions next to each other.
      {"{x}{y}", "", true},
      {"{x}{/y}", "ab/cd", true},
      {"{x}{/y}", "ab/cd/e", false},
      {"{/x}{/y}", "/a/b", true},
      {"{/x}{/y}", "/a/b/c", false},
      {"{/x*}{?q}", "/a/b/c?q=1", true},
      {"{x}.{y}", "a.b.c", true},
      {"'{x}'", "'a'", true},
  });
}

TEST(MercureSelector, ParseFailuresAreExactOnly) {
  const std::vector<std::string> bad = {
      "{",
      "a{",
      "a{x",
      "a{x,",
      "a{x:",
      "}",
      "a}{x}",
      "{}",
      "{+}",
      "{x,}",
      "{,x}",
      "{x y}",
      "a {x}",
      "a\"{x}",
      "a<{x}",
      "a>{x}",
      "a\\{x}",
      "a^{x}",
      "a`{x}",
      "a|{x}",
      "a\x7f{x}",
      "a\t{x}",
      "a\xC2\x80{x}",  // U+0080: a C1 control, not ucschar
      "{=x}",
      "{,x}",
      "{!x}",
      "{@x}",
      "{|x}",
      "{x:0}",
      "{x:01}",
      "{x:10000}",
      "{x:3*}",
      "{x*:3}",
      "{x**}",
      "{.x.}",
      "{..x}",
      "{x..y}",
      "{.}",
      "{x%}",
      "{x%2}",
      "{x%zz}",
      "a%{x}",
      "a%2{x}",
      "a%g0{x}",
      "{x}\xC3",
      "{x}\xC0\x80",          // overlong
      "{x}\xED\xA0\x80",      // a surrogate
      "{x}\xF4\x90\x80\x80",  // over U+10FFFF
      "{x}\xEF\xBF\xBD",      // U+FFFD, refused by Go's decoder loop
      "{x}\xEF\xB7\x90",      // U+FDD0, a noncharacter
      "{\xC3\xA9}",
      "no braces at all",  // not a template either
      "",
  };
  for (const auto& s : bad) {
    EXPECT_FALSE(UriTemplate::compile(s).has_value()) << s;
    if (s.find('{') != std::string::npos) {
      EXPECT_FALSE(uriTemplateReference(s).ok) << "reference: " << s;
    }
    // Exact-only: the selector matches itself and nothing else.
    EXPECT_TRUE(selectorMatches(s, s));
    EXPECT_FALSE(selectorMatches(s, s + "x"));
  }
  const std::vector<std::string> good = {
      "{x:9999}",        "{x:1}",
      "{x.y}",           "{x.y.z_9}",
      "{%41b}",          "{x,y*,z:2}",
      "'{x}'",           "a%2F{x}",
      "{x}#$&()*+",      "{x}\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80",
      "{x}\xEE\x80\x80", "{;x}{?y}{&z}{#w}",
  };
  for (const auto& s : good) {
    EXPECT_TRUE(UriTemplate::compile(s).has_value()) << s;
    EXPECT_TRUE(uriTemplateReference(s).ok) << "reference: " << s;
  }
}

TEST(MercureSelector, Bounds) {
  // The template: 1024 bytes, 16 expressions, 32 variables.
  std::string longTpl = "a{x}";
  longTpl += std::string(UriTemplate::kMaxTemplateBytes - longTpl.size(), 'b');
  ASSERT_EQ(longTpl.size(), UriTemplate::kMaxTemplateBytes);
  EXPECT_TRUE(UriTemplate::compile(longTpl).has_value());
  EXPECT_FALSE(UriTemplate::compile(longTpl + "b").has_value());
  EXPECT_TRUE(selectorMatches(longTpl + "b", longTpl + "b"));

  std::string exprs;
  for (size_t i = 0; i < UriTemplate::kMaxExpressions; ++i) exprs += "{/x}";
  EXPECT_TRUE(UriTemplate::compile(exprs).has_value());
  EXPECT_FALSE(UriTemplate::compile(exprs + "{/x}").has_value());
  EXPECT_TRUE(uriTemplateReference(exprs + "{/x}").ok);  // Go would take it: a documented departure

  std::string vars = "{/v";
  for (size_t i = 1; i < UriTemplate::kMaxVariables; ++i) vars += ",v";
  const auto t32 = UriTemplate::compile(vars + "}");
  ASSERT_TRUE(t32.has_value());
  std::string topic;
  for (size_t i = 0; i < UriTemplate::kMaxVariables; ++i) topic += "/v";
  EXPECT_TRUE(t32->matches(topic));
  EXPECT_FALSE(t32->matches(topic + "/v"));
  EXPECT_FALSE(UriTemplate::compile(vars + ",v}").has_value());

  // The topic: 4096 bytes at most.
  const auto any = UriTemplate::compile("{+x}");
  ASSERT_TRUE(any.has_value());
  EXPECT_TRUE(any->matches(std::string(UriTemplate::kMaxTopicBytes, 'a')));
  EXPECT_FALSE(any->matches(std::string(UriTemplate::kMaxTopicBytes + 1, 'a')));
  const auto exploded = UriTemplate::compile("{/x*}");
  std::string slashes(UriTemplate::kMaxTopicBytes, '/');
  EXPECT_TRUE(exploded->matches(slashes));
  slashes.back() = ' ';
  EXPECT_FALSE(exploded->matches(slashes));
}

TEST(MercureSelector, PrechecksAndAccessors) {
  const auto t = UriTemplate::compile("https://ex.com/rooms/{room}/t{?x}.json");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->literalPrefix(), "https://ex.com/rooms/");
  EXPECT_EQ(t->minLength(), std::string_view("https://ex.com/rooms//t.json").size());
  EXPECT_TRUE(t->matches("https://ex.com/rooms//t.json"));
  EXPECT_TRUE(t->matches("https://ex.com/rooms/r1/t?x=1.json"));
  EXPECT_FALSE(t->matches("https://ex.com/rooms//t.jso"));
  EXPECT_FALSE(t->matches("https://ex.com/room/r1/t.json"));
  EXPECT_FALSE(t->matches("https://ex.com/rooms/r1/t.jsonx"));
  EXPECT_EQ(UriTemplate::compile("{x}/a")->literalPrefix(), "");
  // A literal that recurs inside the topic: KMP over many reachable positions.
  const auto k = UriTemplate::compile("{+x}abab{+y}aab");
  ASSERT_TRUE(k.has_value());
  EXPECT_TRUE(k->matches("aaababaaabaab"));
  EXPECT_FALSE(k->matches("aaabaabaab"));
  EXPECT_TRUE(k->matches("abababab" + std::string(100, 'a') + "aab"));
}

// matches() allocates nothing: its position sets live on the stack.
TEST(MercureSelector, MatchesDoesNotAllocate) {
  const auto t = UriTemplate::compile("https://ex.com/{+a}aab{+b}aab{/c*}{?d,e}.json");
  ASSERT_TRUE(t.has_value());
  std::string longTopic = "https://ex.com/";
  while (longTopic.size() < 4000) longTopic += "aab/";
  const std::vector<std::string> topics = {"https://ex.com/aabaab.json", "https://ex.com/x/aab/yaab/p/q?d=1&e=2.json",
                                           longTopic + ".json", longTopic, "nope"};
  size_t hits = 0;
  const size_t before = gAllocations.load();
  for (int i = 0; i < 100; ++i) {
    for (const auto& topic : topics) hits += t->matches(topic) ? 1 : 0;
  }
  const size_t after = gAllocations.load();
  EXPECT_EQ(after, before);
  EXPECT_EQ(hits, 300u);
}

// A literal after an expression that reaches many positions goes through KMP:
// occurrences that overlap, restart inside a partial match, or end the topic.
TEST(MercureSelector, LiteralsAfterExpressionsFindEveryOccurrence) {
  std::mt19937 rng(15);
  auto word = [&](size_t maxLen) {
    std::string w(rng() % (maxLen + 1), 'a');
    for (auto& c : w) c = "ab"[rng() % 2];
    return w;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string lit = word(6);
    if (lit.empty()) lit = "a";
    const std::string topic = word(24);
    const bool occurs = topic.find(lit) != std::string::npos;
    const bool ends = topic.size() >= lit.size() && topic.compare(topic.size() - lit.size(), lit.size(), lit) == 0;
    const size_t first = topic.find(lit);
    const bool twice = occurs && ends && first + 2 * lit.size() <= topic.size();
    // No '/' in the topic: {/y} must be empty, so the literal must end it.
    EXPECT_EQ(UriTemplate::compile("{+x}" + lit + "{+y}")->matches(topic), occurs) << lit << " in " << topic;
    EXPECT_EQ(UriTemplate::compile("{+x}" + lit + "{/y}")->matches(topic), ends) << lit << " ends " << topic;
    EXPECT_EQ(UriTemplate::compile("{+x}" + lit + "{x}" + lit + "{/y}")->matches(topic), twice)
        << lit << " twice in " << topic;
  }
}

// Random short templates and topics: UriTemplate (compile and matches) agrees
// with the Go regexp run by std::regex. Topics are mostly made by expanding
// the template with random values, so matches and near misses both occur.
TEST(MercureSelector, AgreesWithTheRegexpReference) {
  std::mt19937 rng(20261204);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> tplTokens = {
      "a",       "b",     "/",        ".",     ",",      "=",       "?",     "&",     ";",     "#",      "%2F",
      "%",       "'",     "\xC3\xA9", " ",     "}",      "{",       "*",     ":",     "{x}",   "{+x}",   "{#x}",
      "{.x}",    "{/x}",  "{;x}",     "{?x}",  "{&x}",   "{x*}",    "{/x*}", "{?x*}", "{x,y}", "{/x,y}", "{?x,y,z}",
      "{.x,y*}", "{x:3}", "{+x,y}",   "{#x*}", "{;x,y}", "{&x*,y}", "{x:0}", "{=x}",  "{x.}"};
  const std::vector<std::string> valueTokens = {"a", "B", "1", "-", ".",   "_",   "~", ",",  "=", "/",        "?", "&",
                                                ";", "#", "!", ":", "%2F", "%2f", "%", "%z", " ", "\xC3\xA9", "*"};
  size_t templates = 0, compared = 0, matched = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string tpl;
    const int tokens = 1 + static_cast<int>(rng() % 5);
    for (int i = 0; i < tokens; ++i) tpl += pick(tplTokens);
    const auto ref = uriTemplateReference(tpl);
    const auto got = UriTemplate::compile(tpl);
    const bool refTemplate = ref.ok && ref.expressions > 0;
    ASSERT_EQ(got.has_value(), refTemplate) << tpl;
    if (!got) continue;
    ++templates;
    const auto re = ssefanout::test::uriTemplateReferenceRegex(ref.pattern);
    ASSERT_TRUE(re.has_value()) << ref.pattern;
    for (int k = 0; k < 12; ++k) {
      std::string topic;
      if (k < 8) {
        // Expand: literal bytes kept (sometimes mutated), each {...} replaced by random values.
        for (size_t i = 0; i < tpl.size();) {
          if (tpl[i] == '{') {
            const size_t end = tpl.find('}', i);
            const int n = static_cast<int>(rng() % 5);
            for (int j = 0; j < n; ++j) topic += pick(valueTokens);
            i = end + 1;
          } else {
            topic += (rng() % 16 == 0) ? pick(valueTokens) : std::string(1, tpl[i]);
            ++i;
          }
        }
      } else {
        const int n = static_cast<int>(rng() % 8);
        for (int j = 0; j < n; ++j) topic += pick(valueTokens);
      }
      const auto want = uriTemplateReferenceMatch(*re, topic);
      ASSERT_TRUE(want.has_value()) << ref.pattern;
      ASSERT_EQ(got->matches(topic), *want) << tpl << " vs " << topic << " (regexp " << ref.pattern << ")";
      ++compared;
      matched += *want ? 1 : 0;
    }
  }
  std::printf("differential: %zu templates, %zu topics, %zu matches\n", templates, compared, matched);
  // The generator must reach both verdicts often.
  EXPECT_GT(templates, 5000u);
  EXPECT_GT(matched, compared / 10);
  EXPECT_LT(matched, compared * 9 / 10);
}

}  // namespace
