// Filter: every operator on strings, numbers, bools, null and missing values;
// PocketBase's null/"" equality; precedence and parentheses; @request.* for a
// guest and a user; every refused construct with its message; malformed and
// oversized input; a randomized check of && / || grouping against a reference
// model; and random token soup that must never crash.
#include "pb_filter.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "json_doc.hpp"

namespace ssefanout::pb {
namespace {

using ::testing::HasSubstr;

using test::Json;

constexpr std::string_view kRecord = R"({
  "id": "r1", "collectionName": "posts", "title": "Hello World", "status": "active",
  "views": 12, "score": 4.5, "neg": -3, "zero": 0, "active": true, "archived": false,
  "empty": "", "nil": null, "owner": "u1", "noOwner": "", "numstr": "10", "padstr": " 10",
  "tags": ["a", "b"], "none": [],
  "data": {"s": "v", "n": 7, "list": ["x", "y"], "deep": {"k": "z"}, "nil": null, "empty": ""},
  "percent": "save 50% now", "under": "h_llo", "accent": "Caf\u00e9 AU LAIT",
  "big": 9007199254740993, "big2": 9007199254740992, "huge": 18446744073709551615,
  "created": "2024-05-01 10:00:00.000Z", "sub": "ell", "subw": "e_l"
})";

constexpr std::string_view kUser = R"({
  "id": "u1", "collectionName": "users", "email": "a@b.c", "verified": true, "name": "",
  "roles": ["editor", "admin"], "profile": {"level": 3, "team": null}
})";

class PbFilterTest : public ::testing::Test {
 protected:
  bool eval(std::string_view expr, const Json* auth = nullptr, const SubscriptionOptions* options = nullptr) {
    return evalOn(expr, record_, auth, options);
  }

  static bool evalOn(std::string_view expr, const Json& record, const Json* auth = nullptr,
                     const SubscriptionOptions* options = nullptr) {
    Filter f;
    std::string err;
    bool ok = Filter::compile(expr, &f, &err);
    EXPECT_TRUE(ok) << expr << " -> " << err;
    EvalContext ctx;
    ctx.record = record.root();
    simdjson::dom::element authEl;
    if (auth) {
      authEl = auth->root();
      ctx.auth = &authEl;
    }
    ctx.options = options;
    return f.evaluate(ctx);
  }

  static std::string error(std::string_view expr) {
    Filter f;
    std::string err;
    EXPECT_FALSE(Filter::compile(expr, &f, &err)) << expr;
    EXPECT_TRUE(f.alwaysTrue()) << expr;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    return err;
  }

  Json record_{kRecord};
  Json user_{kUser};
};

TEST_F(PbFilterTest, EmptyExpressionIsAlwaysTrue) {
  Filter f;
  std::string err;
  ASSERT_TRUE(Filter::compile("", &f, &err)) << err;
  EXPECT_TRUE(f.alwaysTrue());
  EXPECT_FALSE(f.usesAuth());
  EXPECT_FALSE(f.usesRequest());
  EvalContext ctx;
  ctx.record = record_.root();
  EXPECT_TRUE(f.evaluate(ctx));
  Filter d;
  EXPECT_TRUE(d.alwaysTrue());  // default-constructed
}

// PocketBase refuses an expression of only whitespace and comments
// (fexpr.ErrEmpty), so such a rule or filter lets nothing through there.
TEST_F(PbFilterTest, OnlyWhitespaceOrCommentsIsRefused) {
  for (std::string_view e : {" ", "\t\r\n", "// only a comment", "  // c1\n// c2\n"}) {
    EXPECT_EQ(error(e), "empty expression: only whitespace or comments") << e;
  }
}

TEST_F(PbFilterTest, StringOperators) {
  EXPECT_TRUE(eval(R"(status = "active")"));
  EXPECT_FALSE(eval(R"(status = "Active")"));  // = is case-sensitive
  EXPECT_FALSE(eval(R"(status != "active")"));
  EXPECT_TRUE(eval(R"(status != "draft")"));
  EXPECT_TRUE(eval(R"(status > "a")"));
  EXPECT_TRUE(eval(R"(status >= "active")"));
  EXPECT_FALSE(eval(R"(status > "active")"));
  EXPECT_TRUE(eval(R"(status < "b")"));
  EXPECT_TRUE(eval(R"(status <= "active")"));
  EXPECT_FALSE(eval(R"(status < "Z")"));  // byte order: 'a' > 'Z'
  EXPECT_TRUE(eval(R"(created > "2024-01-01 00:00:00.000Z")"));
  EXPECT_TRUE(eval(R"(created < "2024-05-01 10:00:00.001Z")"));
  EXPECT_TRUE(eval(R"(title ~ "world")"));
  EXPECT_TRUE(eval(R"(title ~ "WORLD")"));  // LIKE is ASCII case-insensitive
  EXPECT_FALSE(eval(R"(title ~ "word")"));
  EXPECT_TRUE(eval(R"(title !~ "word")"));
  EXPECT_FALSE(eval(R"(title !~ "hello")"));
  EXPECT_TRUE(eval(R"("active" = status)"));  // literal on the left
  EXPECT_FALSE(eval(R"(owner = id)"));
  EXPECT_TRUE(eval(R"(title = title)"));
}

TEST_F(PbFilterTest, NumberOperators) {
  EXPECT_TRUE(eval("views = 12"));
  EXPECT_TRUE(eval("views = 12.0"));
  EXPECT_FALSE(eval("views = 13"));
  EXPECT_TRUE(eval("views != 13"));
  EXPECT_TRUE(eval("views > 10"));
  EXPECT_FALSE(eval("views > 12"));
  EXPECT_TRUE(eval("views >= 12"));
  EXPECT_TRUE(eval("views < 12.5"));
  EXPECT_TRUE(eval("views <= 12"));
  EXPECT_TRUE(eval("score = 4.5"));
  EXPECT_TRUE(eval("score > 4 && score < 5"));
  EXPECT_TRUE(eval("neg = -3"));
  EXPECT_TRUE(eval("neg < -2.5"));
  EXPECT_TRUE(eval("neg > -4"));
  EXPECT_TRUE(eval("zero = 0"));
  EXPECT_TRUE(eval("views > score"));
  EXPECT_TRUE(eval("-3 = neg"));
  // int64 values compare exactly, beyond double precision.
  EXPECT_FALSE(eval("big = big2"));
  EXPECT_TRUE(eval("big > big2"));
  EXPECT_TRUE(eval("big = 9007199254740993"));
  EXPECT_TRUE(eval("huge > big"));  // uint64 beyond int64 compares as a double
}

TEST_F(PbFilterTest, BoolsAreOneAndZero) {
  EXPECT_TRUE(eval("active = true"));
  EXPECT_FALSE(eval("active = false"));
  EXPECT_TRUE(eval("active != false"));
  EXPECT_TRUE(eval("archived = false"));
  EXPECT_TRUE(eval("active = TRUE && archived = False"));  // keywords in any case
  EXPECT_TRUE(eval("active = 1"));
  EXPECT_TRUE(eval("archived = 0"));
  EXPECT_TRUE(eval("active > archived"));
  EXPECT_TRUE(eval("active > 0"));
  EXPECT_FALSE(eval(R"(active = "true")"));  // as SQLite: 1 is not the text 'true'
  EXPECT_TRUE(eval(R"(active = "1")"));
  EXPECT_TRUE(eval("true = 1"));
  EXPECT_FALSE(eval("true = false"));
}

TEST_F(PbFilterTest, NullAndEmptyStringAreEqualForTopLevelFields) {
  EXPECT_TRUE(eval(R"(missing = "")"));
  EXPECT_TRUE(eval("missing = null"));
  EXPECT_FALSE(eval(R"(missing != "")"));
  EXPECT_FALSE(eval("missing != null"));
  EXPECT_TRUE(eval(R"(nil = "")"));
  EXPECT_TRUE(eval("nil = null"));
  EXPECT_TRUE(eval("empty = null"));
  EXPECT_TRUE(eval(R"(empty = "")"));
  EXPECT_TRUE(eval("empty = missing"));
  EXPECT_TRUE(eval("null = null"));
  EXPECT_TRUE(eval(R"("" = null)"));
  EXPECT_FALSE(eval("title = null"));
  EXPECT_TRUE(eval("title != null"));
  EXPECT_FALSE(eval(R"(missing = "x")"));
  EXPECT_TRUE(eval(R"(missing != "x")"));
  EXPECT_FALSE(eval("missing = 0"));  // '' is not the number 0
  EXPECT_TRUE(eval("missing != 0"));
}

TEST_F(PbFilterTest, OrderingAndLikeWithNullAreFalse) {
  for (std::string_view e : {"missing > 1", "missing < 1", "missing >= 1", "missing <= 1", "nil > 0", "views > null",
                             "views < missing", "null >= null", R"(missing ~ "a")", R"(missing !~ "a")", "title ~ null",
                             "title !~ null", "title ~ missing", "title !~ missing", R"(nil ~ "")", R"(nil !~ "")"}) {
    EXPECT_FALSE(eval(e)) << e;
  }
}

TEST_F(PbFilterTest, DottedPathsAreJsonLookupsWithStrictNull) {
  EXPECT_TRUE(eval(R"(data.s = "v")"));
  EXPECT_TRUE(eval("data.n = 7"));
  EXPECT_TRUE(eval("data.n > 6.5"));
  EXPECT_TRUE(eval(R"(data.deep.k = "z")"));
  EXPECT_TRUE(eval(R"(data.list.1 = "y")"));
  EXPECT_TRUE(eval(R"(tags.0 = "a")"));
  EXPECT_TRUE(eval("tags.2 = null"));
  EXPECT_TRUE(eval("data.list.x = null"));  // non-numeric index into an array
  EXPECT_TRUE(eval("title.x = null"));      // a lookup into a string
  // SQL IS semantics, as PocketBase uses for JSON fields: null equals only null.
  EXPECT_TRUE(eval("data.missing = null"));
  EXPECT_FALSE(eval(R"(data.missing = "")"));
  EXPECT_TRUE(eval(R"(data.missing != "")"));
  EXPECT_TRUE(eval("data.nil = null"));
  EXPECT_FALSE(eval(R"(data.nil = "")"));
  EXPECT_FALSE(eval("data.empty = null"));
  EXPECT_TRUE(eval(R"(data.empty = "")"));
  EXPECT_TRUE(eval(R"(data.missing != "x")"));
  EXPECT_FALSE(eval("data.missing > 0"));
}

TEST_F(PbFilterTest, StringAgainstNumber) {
  EXPECT_TRUE(eval(R"(views = "12")"));
  EXPECT_TRUE(eval(R"(views = "12.0")"));
  EXPECT_TRUE(eval(R"(views = "1.2e1")"));
  EXPECT_TRUE(eval(R"(views > "9")"));  // numeric, not '12' < '9'
  EXPECT_TRUE(eval("numstr = 10"));
  EXPECT_TRUE(eval("numstr > 9"));
  EXPECT_TRUE(eval("numstr < 10.5"));
  EXPECT_FALSE(eval("padstr = 10"));  // not a whole number
  EXPECT_TRUE(eval("padstr != 10"));
  EXPECT_FALSE(eval("title = 5"));
  EXPECT_TRUE(eval("title != 5"));
  EXPECT_FALSE(eval("title > 5"));
  EXPECT_FALSE(eval("title < 5"));
  EXPECT_FALSE(eval(R"(views > "abc")"));
  EXPECT_FALSE(eval(R"(views < "abc")"));
  EXPECT_TRUE(eval(R"(views = ".12e2")"));
  EXPECT_TRUE(eval(R"(views = "12.")"));
  EXPECT_TRUE(eval(R"(views = "+12")"));
  EXPECT_FALSE(eval(R"(views = "1e")"));
  EXPECT_FALSE(eval(R"(views = ".")"));
}

TEST_F(PbFilterTest, ArraysAndObjectsCompareAsJsonText) {
  EXPECT_TRUE(eval(R"(tags = '["a","b"]')"));
  EXPECT_FALSE(eval(R"(tags = "a")"));  // plain = is not any-of (that is ?=, refused)
  EXPECT_TRUE(eval(R"(tags ~ "a")"));
  EXPECT_TRUE(eval(R"(tags ~ '"b"')"));
  EXPECT_FALSE(eval(R"(tags ~ "c")"));
  EXPECT_TRUE(eval(R"(none = "[]")"));
  EXPECT_TRUE(eval(R"(data.deep = '{"k":"z"}')"));
  EXPECT_TRUE(eval(R"(data.deep ~ '"k"')"));
  EXPECT_TRUE(eval("tags = tags"));
  EXPECT_TRUE(eval(R"(tags > "[")"));
}

TEST_F(PbFilterTest, LikePatterns) {
  // A right side with no unescaped % is a literal contains-test.
  EXPECT_FALSE(eval(R"(title ~ "h_llo")"));
  EXPECT_TRUE(eval(R"(under ~ "h_llo")"));
  // An unescaped % makes it a raw pattern where _ is a wildcard.
  EXPECT_TRUE(eval(R"(title ~ "h_llo%")"));
  EXPECT_TRUE(eval(R"(title ~ "Hello%")"));
  EXPECT_FALSE(eval(R"(title ~ "World%")"));
  EXPECT_TRUE(eval(R"(title ~ "%World")"));
  EXPECT_TRUE(eval(R"(title ~ "%o%o%")"));
  // \% is a literal percent sign (the filter keeps the backslash).
  EXPECT_TRUE(eval(R"(percent ~ "50\%")"));
  EXPECT_FALSE(eval(R"(title ~ "50\%")"));
  EXPECT_TRUE(eval(R"(percent ~ "%50\% now")"));
  // Case folding is ASCII only, as SQLite's built-in LIKE.
  EXPECT_TRUE(eval(R"(accent ~ "au lait")"));
  EXPECT_TRUE(eval("accent ~ \"CAF\xC3\xA9\""));
  EXPECT_FALSE(eval("accent ~ \"CAF\xC3\x89\""));  // É does not fold to é
  // _ matches one whole UTF-8 character.
  EXPECT_TRUE(eval(R"(accent ~ "Caf_ AU%")"));
  EXPECT_FALSE(eval(R"(accent ~ "Caf__ AU%")"));
  // Non-strings are matched through their text.
  EXPECT_TRUE(eval("views ~ 2"));
  EXPECT_TRUE(eval(R"(views ~ "12")"));
  EXPECT_FALSE(eval("views ~ 3"));
  EXPECT_TRUE(eval("score ~ 4.5"));
  EXPECT_TRUE(eval("active ~ 1"));
  EXPECT_TRUE(eval("active ~ true"));
  EXPECT_TRUE(eval("archived !~ true"));
  // A field on the right is wrapped in %...% without escaping: its _ is a wildcard.
  EXPECT_TRUE(eval("title ~ sub"));
  EXPECT_TRUE(eval("title ~ subw"));
  EXPECT_FALSE(eval("title !~ subw"));
  EXPECT_TRUE(eval("title ~ empty"));  // '%%'
}

TEST_F(PbFilterTest, LikeLiteralsWithLongWildcardCoresAreRefused) {
  // A part between two % whose core holding _ spans more than 64
  // characters would need more than one Shift-And word per character: a
  // literal like that is refused (PocketBase only runs it slowly).
  const std::string core65 = "a" + std::string(63, '_') + "b";
  EXPECT_THAT(error("title ~ '%" + core65 + "%'"), HasSubstr("too costly to match"));
  EXPECT_THAT(error("title !~ '%" + core65 + "%' || views > 1"), HasSubstr("(limit 64)"));
  EXPECT_FALSE(eval("title ~ '%a" + std::string(62, '_') + "b%'")) << "64 characters compile";
  EXPECT_FALSE(eval("title ~ '%" + std::string(2400, '_') + "~%'")) << "runs of _ are skips, accepted";
  EXPECT_FALSE(eval("title ~ 'h" + std::string(63, '_') + "%' || title ~ '%" + core65 + "'"))
      << "compiles: the first and last parts are matched in place";
  EXPECT_TRUE(eval("title ~ 'h_llo%' && title ~ '%w_rld'"));
  EXPECT_FALSE(eval("title = '%" + core65 + "%'")) << "only a LIKE right side is a pattern";
}

TEST_F(PbFilterTest, AndBindsTighterThanOr) {
  Json r(R"({"a": 1, "b": 0, "c": 0})");
  EXPECT_TRUE(evalOn("a = 1 || b = 1 && c = 1", r));  // a || (b && c)
  EXPECT_FALSE(evalOn("(a = 1 || b = 1) && c = 1", r));
  EXPECT_TRUE(evalOn("b = 1 && c = 1 || a = 1", r));  // (b && c) || a
  EXPECT_FALSE(evalOn("b = 1 && (c = 1 || a = 1)", r));
  EXPECT_TRUE(evalOn("a = 1 && (b = 1 || c = 0)", r));
  EXPECT_TRUE(evalOn("((a = 1))", r));
  EXPECT_FALSE(evalOn("a = 0 || b = 1 || c = 1", r));
  EXPECT_TRUE(evalOn("a = 0 || b = 1 || c = 0", r));
  EXPECT_TRUE(evalOn("a=1&&b=0||c=5", r));  // no whitespace needed
}

TEST_F(PbFilterTest, RequestAuthForGuestAndUser) {
  // Guest: every @request.auth.* is null, which equals "".
  EXPECT_FALSE(eval(R"(@request.auth.id != "")"));
  EXPECT_TRUE(eval(R"(@request.auth.id = "")"));
  EXPECT_TRUE(eval("@request.auth.id = null"));
  EXPECT_FALSE(eval("owner = @request.auth.id"));
  EXPECT_TRUE(eval("noOwner = @request.auth.id"));  // PocketBase: owner = '' OR owner IS NULL
  EXPECT_FALSE(eval("@request.auth.verified = true"));
  EXPECT_FALSE(eval(R"(@request.auth.roles ~ "admin")"));
  // A user.
  EXPECT_TRUE(eval(R"(@request.auth.id != "")", &user_));
  EXPECT_TRUE(eval("owner = @request.auth.id", &user_));
  EXPECT_FALSE(eval("noOwner = @request.auth.id", &user_));
  EXPECT_TRUE(eval(R"(@request.auth.collectionName = "users")", &user_));
  EXPECT_TRUE(eval("@request.auth.verified = true", &user_));
  EXPECT_TRUE(eval(R"(@request.auth.name = "")", &user_));
  EXPECT_TRUE(eval("@request.auth.name = null", &user_));
  EXPECT_TRUE(eval(R"(@request.auth.roles ~ "admin")", &user_));
  EXPECT_TRUE(eval("@request.auth.profile.level > 2", &user_));
  EXPECT_TRUE(eval("@request.auth.profile.team = null", &user_));
  EXPECT_FALSE(eval(R"(@request.auth.profile.team = "")", &user_));  // dotted: strict
  EXPECT_TRUE(eval(R"(@request.auth.roles.1 = "admin")", &user_));
  EXPECT_TRUE(eval(R"(@request.auth.id != "" && (owner = @request.auth.id || status = "public"))", &user_));

  Filter f;
  std::string err;
  ASSERT_TRUE(Filter::compile("owner = @request.auth.id", &f, &err));
  EXPECT_TRUE(f.usesAuth());
  EXPECT_FALSE(f.usesRequest());
}

TEST_F(PbFilterTest, RequestQueryHeadersContextMethod) {
  Subscription sub = parseSubscription(
      "posts/*?options={\"query\":{\"status\":\"active\",\"min\":5,\"q\":\"h_l\",\"w\":\"H%25d\"},"
      "\"headers\":{\"X-Token\":\"abc\"}}");
  const SubscriptionOptions* o = &sub.options;
  EXPECT_TRUE(eval("@request.query.status = status", nullptr, o));
  EXPECT_TRUE(eval(R"(@request.headers.x_token = "abc")", nullptr, o));
  EXPECT_TRUE(eval("views > @request.query.min", nullptr, o));  // "5" compares numerically
  EXPECT_TRUE(eval("@request.query.missing = null", nullptr, o));
  EXPECT_TRUE(eval(R"(@request.query.missing = "")", nullptr, o));
  EXPECT_FALSE(eval(R"(@request.headers.missing != "")", nullptr, o));
  // A @request value on the right of ~ is escaped like a literal.
  EXPECT_FALSE(eval("title ~ @request.query.q", nullptr, o));
  EXPECT_TRUE(eval("under ~ @request.query.q", nullptr, o));
  EXPECT_TRUE(eval("title ~ @request.query.w", nullptr, o));  // raw pattern: holds %
  EXPECT_FALSE(eval("title ~ @request.query.missing", nullptr, o));
  // No options at all: everything is null.
  EXPECT_TRUE(eval("@request.query.status = null"));
  EXPECT_FALSE(eval("@request.query.status = status"));
  // Context and method.
  EXPECT_TRUE(eval(R"(@request.context = "realtime" && @request.method = "GET")"));
  EXPECT_FALSE(eval(R"(@request.context = "default")"));

  Filter f;
  std::string err;
  ASSERT_TRUE(Filter::compile(R"(@request.headers.x_token = "abc")", &f, &err));
  EXPECT_TRUE(f.usesRequest());
  EXPECT_FALSE(f.usesAuth());
  EvalContext ctx;
  ctx.record = record_.root();
  ctx.options = o;
  EXPECT_TRUE(f.evaluate(ctx));
  ctx.context = "default";
  ASSERT_TRUE(Filter::compile(R"(@request.context = "default")", &f, &err));
  EXPECT_TRUE(f.evaluate(ctx));
}

TEST_F(PbFilterTest, StringLiterals) {
  Json r(R"({"q": "it's", "d": "say \"hi\"", "b": "a\\b", "e": "", "mix": "'\""})");
  EXPECT_TRUE(evalOn(R"(q = 'it\'s')", r));
  EXPECT_TRUE(evalOn(R"(q = "it's")", r));
  EXPECT_TRUE(evalOn(R"(d = "say \"hi\"")", r));
  EXPECT_TRUE(evalOn(R"(d = 'say "hi"')", r));
  EXPECT_TRUE(evalOn(R"(b = "a\b")", r));  // other backslashes stay
  EXPECT_TRUE(evalOn(R"(e = '')", r));
  EXPECT_TRUE(evalOn(R"(mix = "'\"")", r));
  EXPECT_TRUE(evalOn("e = \"\"", r));
  EXPECT_TRUE(evalOn("q = \"it's\" // trailing comment", r));
  EXPECT_TRUE(evalOn("// leading\nq = \"it's\"\n// and more", r));
  EXPECT_TRUE(evalOn("q = \"it's // not a comment\" || e = ''", r));
}

TEST_F(PbFilterTest, RefusedConstructs) {
  EXPECT_EQ(error(R"(title ?= "a")"), R"(unsupported operator "?=" at 6: only = != > >= < <= ~ !~ are supported)");
  for (std::string_view op : {"?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~", "==", "=!", "<>", "!", "=<"}) {
    std::string e = "views " + std::string(op) + " 1";
    EXPECT_EQ(error(e),
              "unsupported operator \"" + std::string(op) + "\" at 6: only = != > >= < <= ~ !~ are supported");
  }
  EXPECT_EQ(error("@collection.posts.id = id"),
            R"(unsupported identifier "@collection.posts.id" at 0: @collection lookups are not supported)");
  EXPECT_EQ(error("id = @collection.posts:p.id"),
            R"(unsupported identifier "@collection.posts:p.id" at 5: @collection lookups are not supported)");
  EXPECT_EQ(error(R"(title:lower = "a")"), R"(unsupported modifier ":lower" at 5: modifiers are not supported)");
  EXPECT_EQ(error("tags:length > 1"), R"(unsupported modifier ":length" at 4: modifiers are not supported)");
  EXPECT_EQ(error(R"(tags:each = "a")"), R"(unsupported modifier ":each" at 4: modifiers are not supported)");
  EXPECT_EQ(error("@request.auth.id:isset = true"),
            R"(unsupported modifier ":isset" at 16: modifiers are not supported)");
  EXPECT_EQ(error("title:changed = true"), R"(unsupported modifier ":changed" at 5: modifiers are not supported)");
  EXPECT_EQ(error("a.b:lower.c = 1"), R"(unsupported modifier ":lower" at 3: modifiers are not supported)");
  EXPECT_EQ(error("created > @now"), R"(unsupported identifier "@now" at 10: macros are not supported)");
  for (std::string_view m : {"@todayStart", "@todayEnd", "@yesterday", "@monthStart", "@second", "@year"}) {
    EXPECT_THAT(error("created > " + std::string(m)), HasSubstr("macros are not supported")) << m;
  }
  EXPECT_EQ(error("@request.body.title = 1"),
            R"(unsupported identifier "@request.body.title" at 0: @request.body is not available in realtime)");
  EXPECT_EQ(error("@request.body = 1"),
            R"(unsupported identifier "@request.body" at 0: @request.body is not available in realtime)");
  EXPECT_EQ(error("@request.body.tags:each = 1"),
            R"(unsupported identifier "@request.body.tags:each" at 0: @request.body is not available in realtime)");
  EXPECT_EQ(error("geoDistance(lon, lat, 1, 2) < 25"),
            R"(unsupported function "geoDistance" at 0: functions are not supported)");
  EXPECT_EQ(error("a = strftime('%Y', created)"),
            R"(unsupported function "strftime" at 4: functions are not supported)");
  EXPECT_EQ(error(R"(comments_via_post.id != "")"),
            R"(unsupported identifier "comments_via_post.id" at 0: back-relations are not supported)");
  EXPECT_EQ(error("@request.auth = 1"), R"(unsupported identifier "@request.auth" at 0)");
  EXPECT_EQ(error("@request.foo = 1"), R"(unsupported identifier "@request.foo" at 0)");
  EXPECT_EQ(error("@request.query.a.b = 1"),
            R"(unsupported identifier "@request.query.a.b" at 0: expected a single name)");
  EXPECT_EQ(error("@request.headers = 1"), R"(unsupported identifier "@request.headers" at 0)");
  EXPECT_EQ(error("#x = 1"), R"(unsupported identifier "#x" at 0)");
  EXPECT_EQ(error("a@b = 1"), R"(unsupported identifier "a@b" at 0)");
}

TEST_F(PbFilterTest, MalformedInput) {
  EXPECT_EQ(error("a = 1 &&"), "expected an operand at 8");
  EXPECT_EQ(error("a = 1 || || b = 2"), R"(expected an operand at 9, got "||")");
  EXPECT_EQ(error("a ="), R"(expected a value after "=" at 3)");
  EXPECT_EQ(error("views >= && a = 1"), R"(expected a value after ">=" at 9)");
  EXPECT_EQ(error("a"), R"(expected an operator after "a" at 1)");
  EXPECT_EQ(error("a b"), R"(expected an operator after "a" at 2)");
  EXPECT_EQ(error("= 1"), R"(expected an operand at 0, got "=")");
  EXPECT_EQ(error("&& a = 1"), R"(expected an operand at 0, got "&&")");
  EXPECT_EQ(error(R"(title = "unterminated)"), "unterminated string at 8");
  EXPECT_EQ(error(R"(title = 'it\')"), "unterminated string at 8");
  EXPECT_EQ(error(R"(title = "a\\")"), "unterminated string at 8");  // fexpr: \" never ends a string
  EXPECT_EQ(error("(a = 1"), "unbalanced parenthesis at 0");
  EXPECT_EQ(error("((a = 1) && (b = 2)"), "unbalanced parenthesis at 0");
  EXPECT_EQ(error("a = 1)"), "unbalanced parenthesis at 5");
  EXPECT_EQ(error(")"), "unbalanced parenthesis at 0");
  EXPECT_EQ(error("()"), "empty parentheses at 0");
  EXPECT_EQ(error("a = 1 && ( )"), "empty parentheses at 9");
  EXPECT_EQ(error("(a = 1 b = 2)"), R"(expected && or || at 7, got "b")");
  EXPECT_EQ(error("a = 1 b = 2"), R"(expected && or || at 6, got "b")");
  EXPECT_EQ(error("a = 1 (b = 2)"), R"(expected && or || at 6, got "(")");
  EXPECT_EQ(error("a = 1."), R"(invalid number "1." at 4)");
  EXPECT_EQ(error("a = 1.2.3"), R"(invalid number "1.2.3" at 4)");
  EXPECT_EQ(error("a = 12abc"), R"(invalid number "12abc" at 4)");
  EXPECT_EQ(error("a = -x"), R"(unexpected character "-" at 4)");
  EXPECT_EQ(error("a = $"), R"(unexpected character "$" at 4)");
  EXPECT_EQ(error("a = 1 / 2"), R"(unexpected character "/" at 6)");
  EXPECT_EQ(error("a = \x01"), R"(unexpected character "\x01" at 4)");
  EXPECT_EQ(error("a = \xC3\xA9"), R"(unexpected character "\xC3" at 4)");
  EXPECT_EQ(error("a = 1 & b = 2"), R"(invalid operator "&" at 6: expected && or ||)");
  EXPECT_EQ(error("a = 1 &&& b = 2"), R"(invalid operator "&&&" at 6: expected && or ||)");
  EXPECT_EQ(error("a = 1 |& b = 2"), R"(invalid operator "|&" at 6: expected && or ||)");
  EXPECT_EQ(error("a..b = 1"), R"(invalid identifier "a..b" at 0)");
  EXPECT_EQ(error("a. = 1"), R"(invalid identifier "a." at 0)");
  EXPECT_EQ(error("@request.auth. = 1"), R"(invalid identifier "@request.auth." at 0)");
  // Messages quote at most 48 bytes of the offending text and escape quotes.
  std::string longIdent(100, 'x');
  EXPECT_EQ(error(longIdent), "expected an operator after \"" + std::string(48, 'x') + "...\" at 100");
  EXPECT_EQ(error(R"(a = "q" "r")"), R"(expected && or || at 8, got "\"r\"")");
}

TEST_F(PbFilterTest, NestingAndLengthLimits) {
  auto nested = [](int depth) {
    return std::string(static_cast<size_t>(depth), '(') + "views = 12" + std::string(static_cast<size_t>(depth), ')');
  };
  EXPECT_TRUE(eval(nested(Filter::kMaxDepth)));
  EXPECT_EQ(error(nested(Filter::kMaxDepth + 1)), "parentheses nested deeper than 64 at 64");
  EXPECT_EQ(error(std::string(5000, '(')), "parentheses nested deeper than 64 at 64");
  // Long chains are fine as they do not nest.
  std::string chain = "views = 12";
  while (chain.size() < Filter::kMaxExprBytes - 20) chain += " && views = 12 || a = 1";
  EXPECT_TRUE(eval(chain));
  std::string tooLong(10000, ' ');
  EXPECT_EQ(error(tooLong), "expression too long: 10000 bytes (limit 8192)");
  std::string justFits(Filter::kMaxExprBytes, ' ');
  justFits.replace(0, 10, "views = 12");
  EXPECT_TRUE(eval(justFits));
}

TEST_F(PbFilterTest, FailedCompileResetsTheOutput) {
  Filter f;
  std::string err;
  ASSERT_TRUE(Filter::compile("views = 1", &f, &err));
  EXPECT_FALSE(f.alwaysTrue());
  EXPECT_FALSE(Filter::compile("views ?= 1", &f, &err));
  EXPECT_TRUE(f.alwaysTrue());
}

TEST(PbLikeTest, LikeMatch) {
  struct Case {
    std::string_view text, pattern;
    bool want;
  };
  const Case cases[] = {
      {"hello", "%ell%", true},
      {"HELLO", "%ell%", true},
      {"hello", "hello", true},
      {"hello", "hell", false},
      {"hello", "h_llo", true},
      {"hllo", "h_llo", false},
      {"h\xC3\xA9llo", "h_llo", true},
      {"a%b", "a\\%b", true},
      {"axb", "a\\%b", false},
      {"a_b", "a\\_b", true},
      {"axb", "a\\_b", false},
      {"a\\b", "a\\\\b", true},
      {"abc", "abc\\", false},
      {"abc", "%\\", false},
      {"", "%", true},
      {"", "", true},
      {"a", "", false},
      {"", "_", false},
      {"abc", "a%c", true},
      {"abc", "%%%", true},
      {"ab", "a_", true},
      {"a", "a_", false},
      {"mississippi", "%iss%ppi", true},
      {"mississippi", "%iss%ppx", false},
      {"\xC3\x89", "\xC3\xA9", false},
      {"aXb", "A%B", true},
      {"abcabc", "%abc", true},
      {"aaa", "%a%a%a%a%", false},
      {"x", "%_%", true},
      {"", "%_%", false},
  };
  for (const Case& c : cases) EXPECT_EQ(likeMatch(c.text, c.pattern), c.want) << c.text << " ~ " << c.pattern;
}

TEST(PbLikeTest, WrapLikeParamMatchesPocketBase) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"abc", "%abc%"},
      {"", "%%"},
      {"a_b", "%a\\_b%"},
      {"a%b", "a%b"},        // holds an unescaped %: used as is
      {"a\\%b", "%a\\%b%"},  // \% is already escaped
      {"a\\b", "%a\\\\b%"},  // a lone backslash gets escaped
      {"\\", "%\\\\%"},
      {"_", "%\\_%"},
      {"__", "%_\\_%"},      // PocketBase's right-to-left pass skips the char before an escaped one
      {"a\\\\%", "a\\\\%"},  // \\ resets, so the % is unescaped
      {"caf\xC3\xA9_", "%caf\xC3\xA9\\_%"},
  };
  for (const auto& [in, want] : cases) {
    std::string out;
    wrapLikeParam(in, &out);
    EXPECT_EQ(out, want) << in;
  }
}

// Random && / || / parenthesis structures over leaves whose values are known,
// checked against a reference evaluator with SQL precedence.
TEST_F(PbFilterTest, RandomGroupingMatchesReference) {
  const std::string_view leaves[] = {
      R"(status = "active")", "views > 100", "active = true",   R"(title ~ "zzz")",
      "missing = null",       "views >= 12", R"(owner = "u2")", "data.n = 7",
  };
  std::vector<bool> leafValue;
  for (std::string_view l : leaves) leafValue.push_back(eval(l));

  std::mt19937 rng(7);
  // Returns the rendered expression; *value gets the reference result.
  std::function<std::string(int, bool*)> gen = [&](int depth, bool* value) {
    size_t n = 1 + rng() % 4;
    std::string out;
    bool anyGroup = false;  // OR of AND-groups
    bool group = true;
    for (size_t k = 0; k < n; ++k) {
      if (k > 0) {
        bool isOr = rng() % 2;
        out += isOr ? " || " : " && ";
        if (isOr) {
          anyGroup = anyGroup || group;
          group = true;
        }
      }
      bool v;
      if (depth < 4 && rng() % 4 == 0) {
        out += "(" + gen(depth + 1, &v) + ")";
      } else {
        size_t i = rng() % std::size(leaves);
        out += leaves[i];
        v = leafValue[i];
      }
      group = group && v;
    }
    *value = anyGroup || group;
    return out;
  };
  for (int iter = 0; iter < 3000; ++iter) {
    bool want;
    std::string expr = gen(0, &want);
    EXPECT_EQ(eval(expr), want) << expr;
  }
}

// Token soup: compile anything, evaluate whatever compiles, never crash.
TEST_F(PbFilterTest, RandomTokensNeverCrash) {
  const std::string_view tokens[] = {
      "(",
      ")",
      "&&",
      "||",
      "=",
      "!=",
      ">",
      ">=",
      "<",
      "<=",
      "~",
      "!~",
      "?=",
      "&",
      "|",
      "!",
      "title",
      "views",
      "data.n",
      "data.list.0",
      "tags",
      "nil",
      "missing",
      "a..b",
      "x.",
      "@request.auth.id",
      "@request.auth.profile.level",
      "@request.query.q",
      "@request.headers.x_token",
      "@request.context",
      "@request.method",
      "@request.body.x",
      "@collection.x.y",
      "@now",
      ":lower",
      "f(",
      "null",
      "true",
      "false",
      "\"abc\"",
      "'x%'",
      "\"a_b\"",
      "'it\\'s'",
      "\"",
      "'",
      "10",
      "-2.5",
      "1.",
      "0",
      "//c\n",
      " ",
      "\t",
      "\n",
      "\xC3\xA9",
      "\x01",
      "$",
      "#",
      "_",
  };
  const std::string_view records[] = {
      kRecord,
      R"({})",
      R"({"title": null, "views": "12", "tags": "a", "data": [1, 2], "nil": {"a": [null]}})",
      R"({"title": 5, "views": -1e300, "data": {"n": "7", "list": [[], {}]}, "missing": false})",
  };
  std::vector<std::unique_ptr<Json>> docs;
  for (std::string_view r : records) docs.push_back(std::make_unique<Json>(r));
  Subscription sub = parseSubscription("t?options={\"query\":{\"q\":\"%\"},\"headers\":{\"x-token\":\"abc\"}}");

  std::mt19937 rng(99);
  int compiled = 0;
  for (int iter = 0; iter < 30000; ++iter) {
    std::string expr;
    size_t n = 1 + rng() % 14;
    for (size_t k = 0; k < n; ++k) {
      if (rng() % 8 == 0) {
        expr.push_back(static_cast<char>(rng() % 256));
      } else {
        expr += tokens[rng() % std::size(tokens)];
      }
      if (rng() % 2) expr += ' ';
    }
    Filter f;
    std::string err;
    if (!Filter::compile(expr, &f, &err)) {
      EXPECT_FALSE(err.empty());
      EXPECT_EQ(err.find('\n'), std::string::npos) << err;
      continue;
    }
    ++compiled;
    for (const auto& doc : docs) {
      EvalContext ctx;
      ctx.record = doc->root();
      simdjson::dom::element auth = user_.root();
      if (rng() % 2) ctx.auth = &auth;
      if (rng() % 2) ctx.options = &sub.options;
      bool a = f.evaluate(ctx);
      EXPECT_EQ(a, f.evaluate(ctx));  // deterministic
    }
  }
  EXPECT_GT(compiled, 50);  // the soup does produce valid filters (74 with this seed)
}

// The evaluation budget weighs each LIKE by the matcher it needs: KMP for a
// literal without _ (1 node), Shift-And for one with a _ wildcard (4), a
// pattern made at run time from a field (50).
TEST(PbFilterNodesTest, NodeCountWeighsLikeByItsMatcher) {
  const std::pair<const char*, size_t> cases[] = {
      {"", 0},
      {"a = 1", 1},
      {"a ~ 'x'", 1},
      {"a ~ 'a_b'", 1},  // no %: the value is wrapped and its _ escaped
      {"a ~ '%a_b%'", Filter::kWildcardLikeNodes},
      {"a !~ '%a\\_b%'", 1},  // an escaped _ is a literal
      {"a ~ b", Filter::kRunTimeLikeNodes},
      {"a = 1 && b ~ '%x_y%'", 2 + Filter::kWildcardLikeNodes},
  };
  for (const auto& [expr, nodes] : cases) {
    Filter f;
    std::string err;
    ASSERT_TRUE(Filter::compile(expr, &f, &err)) << expr << " -> " << err;
    EXPECT_EQ(f.nodeCount(), nodes) << expr;
  }
}

}  // namespace
}  // namespace ssefanout::pb
