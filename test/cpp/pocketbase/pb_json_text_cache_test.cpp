// JsonTextCache: texts are kept by element (document and position), only the
// large ones, within the entry and byte bounds; filters give the same answers
// with and without it (randomized records, filters and auth records), and
// read through it they serialize each JSON value once.
#include "pb_json_text_cache.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "json_doc.hpp"
#include "pb_filter.hpp"

namespace ssefanout::pb {
namespace {

using test::Json;

TEST(JsonTextCacheTest, KeepsLargeTextsByElementWithinItsBounds) {
  const std::string big(JsonTextCache::kMinBytes, 'x');
  std::string text = "{\"a\":[1],\"b\":[1],\"c\":[1]}";
  Json doc(text);
  Json other(text);
  simdjson::dom::element a = doc.root()["a"].value_unsafe();
  simdjson::dom::element b = doc.root()["b"].value_unsafe();
  simdjson::dom::element otherA = other.root()["a"].value_unsafe();

  JsonTextCache cache;
  EXPECT_EQ(cache.keep(a, "[1]"), "[1]");
  EXPECT_EQ(cache.find(a), nullptr) << "a text under kMinBytes is not kept";
  std::string_view kept = cache.keep(a, big);
  EXPECT_NE(kept.data(), big.data()) << "a copy is kept";
  ASSERT_NE(cache.find(a), nullptr);
  EXPECT_EQ(*cache.find(a), big);
  EXPECT_EQ(cache.find(b), nullptr) << "another position of the same document";
  EXPECT_EQ(cache.find(otherA), nullptr) << "the same position of another document";
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), big.size());
  cache.clear();
  EXPECT_EQ(cache.find(a), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);

  // At most kMaxEntries, each found at its own element; kept views stay valid.
  std::string many = "[";
  for (size_t i = 0; i <= JsonTextCache::kMaxEntries; ++i) many += i ? ",[]" : "[]";
  many += "]";
  Json arr(many);
  std::vector<simdjson::dom::element> elements;
  simdjson::dom::array list = arr.root().get_array().value_unsafe();
  for (simdjson::dom::element e : list) elements.push_back(e);
  std::vector<std::string_view> views;
  for (size_t i = 0; i < JsonTextCache::kMaxEntries; ++i) {
    views.push_back(cache.keep(elements[i], big + std::to_string(i)));
  }
  std::string last = big + "last";
  EXPECT_EQ(cache.keep(elements.back(), last).data(), last.data()) << "past kMaxEntries nothing is kept";
  EXPECT_EQ(cache.find(elements.back()), nullptr);
  for (size_t i = 0; i < JsonTextCache::kMaxEntries; ++i) {
    ASSERT_NE(cache.find(elements[i]), nullptr);
    EXPECT_EQ(views[i], big + std::to_string(i));
    EXPECT_EQ(cache.find(elements[i])->data(), views[i].data());
  }

  // At most kMaxBytes in all.
  cache.clear();
  std::string half(JsonTextCache::kMaxBytes / 2, 'y');
  EXPECT_NE(cache.keep(elements[0], half).data(), half.data());
  EXPECT_NE(cache.keep(elements[1], half).data(), half.data());
  EXPECT_EQ(cache.keep(elements[2], big).data(), big.data()) << "past kMaxBytes nothing is kept";
  EXPECT_EQ(cache.bytes(), JsonTextCache::kMaxBytes);
}

// A random JSON value: strings, numbers, nested arrays and objects, from a
// few bytes to a few KB, so that some texts are kept and some are not.
std::string randomValue(std::mt19937& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  switch (depth > 2 ? pick(3) : pick(6)) {
    case 0:
      return "\"" + std::string(pick(40), static_cast<char>('a' + pick(3))) + (pick(2) ? "zq" : "") + "\"";
    case 1:
      return std::to_string(pick(2000) - 1000);
    case 2:
      return pick(2) ? "null" : "true";
    case 3:
    case 4: {
      std::string s = "[";
      int n = pick(2) ? pick(4) : 10 + pick(60);
      for (int i = 0; i < n; ++i) s += (i ? "," : "") + randomValue(rng, depth + 1);
      return s + "]";
    }
    default: {
      std::string s = "{";
      int n = pick(2) ? pick(4) : 10 + pick(40);
      for (int i = 0; i < n; ++i) {
        s += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\":" + randomValue(rng, depth + 1);
      }
      return s + "}";
    }
  }
}

TEST(JsonTextCacheTest, FiltersAnswerTheSameWithAndWithoutTheCache) {
  std::mt19937 rng(11);
  auto pick = [&](size_t n) { return rng() % n; };
  const std::vector<std::string> paths = {"j1",
                                          "j2",
                                          "j3",
                                          "j1.k0",
                                          "j1.k1",
                                          "j2.0",
                                          "j2.1",
                                          "j3.k2",
                                          "s",
                                          "n",
                                          "missing",
                                          "@request.auth.j1",
                                          "@request.auth.j2"};
  const std::vector<std::string> ops = {"=", "!=", "<", ">=", "~", "!~"};
  const std::vector<std::string> literals = {"'zq'",        "'%zq%'", "'%k1%'", "'%[%'", "'[]'", "'{}'",
                                             "'%\"k0\":%'", "''",     "null",   "3",     "'a%'"};
  int compared = 0;
  for (int round = 0; round < 300; ++round) {
    std::string j1 = randomValue(rng, 0);
    std::string j2 = pick(4) == 0 ? j1 : randomValue(rng, 0);
    std::string record = "{\"id\":\"r\",\"j1\":" + j1 + ",\"j2\":" + j2 + ",\"j3\":" + randomValue(rng, 0) +
                         ",\"s\":" + (pick(3) == 0 ? "\"" + std::string(300, 'a') + "\"" : "\"zq\"") + ",\"n\":5}";
    std::string user =
        "{\"id\":\"u\",\"j1\":" + (pick(2) ? j1 : randomValue(rng, 0)) + ",\"j2\":" + randomValue(rng, 0) + "}";
    Json rec(record);
    Json auth(user);
    simdjson::dom::element authRoot = auth.root();

    JsonTextCache cache;
    EvalContext plain;
    plain.record = rec.root();
    plain.auth = pick(2) ? &authRoot : nullptr;
    EvalContext cached = plain;
    cached.jsonText = &cache;
    for (int k = 0; k < 20; ++k) {
      std::string expr;
      size_t terms = 1 + pick(6);
      for (size_t t = 0; t < terms; ++t) {
        if (t) expr += pick(2) ? " || " : " && ";
        expr += paths[pick(paths.size())] + " " + ops[pick(ops.size())] + " ";
        expr += pick(2) ? literals[pick(literals.size())] : paths[pick(paths.size())];
      }
      Filter f;
      std::string err;
      ASSERT_TRUE(Filter::compile(expr, &f, &err)) << expr << ": " << err;
      // Twice through the cache: the second reads what the first kept.
      bool want = f.evaluate(plain);
      EXPECT_EQ(f.evaluate(cached), want) << expr << "\n" << record << "\n" << user;
      EXPECT_EQ(f.evaluate(cached), want) << expr << "\n" << record << "\n" << user;
      ++compared;
    }
    EXPECT_LE(cache.size(), JsonTextCache::kMaxEntries);
    EXPECT_LE(cache.bytes(), JsonTextCache::kMaxBytes);
  }
  EXPECT_EQ(compared, 6000);
}

TEST(JsonTextCacheTest, AFilterReadsEachLargeJsonValueOnce) {
  std::string meta = "{\"blocks\":[";
  for (int i = 0; i < 100; ++i) meta += std::string(i ? "," : "") + "{\"text\":\"block " + std::to_string(i) + "\"}";
  meta += "]}";
  std::string list = "[1";
  for (int i = 0; i < 150; ++i) list += ",1";
  Json rec("{\"id\":\"r\",\"meta\":" + meta + ",\"list\":" + list + "],\"small\":[1,2]}");
  std::string expr;
  for (int i = 0; i < 50; ++i) expr += std::string(i ? " || " : "") + "meta ~ '%zq" + std::to_string(i) + "%'";
  expr += " || list = meta || list ~ 'x' || small ~ 'x' || small = list";
  Filter f;
  std::string err;
  ASSERT_TRUE(Filter::compile(expr, &f, &err)) << err;

  EvalContext ctx;
  ctx.record = rec.root();
  uint64_t before = Filter::jsonSerializations();
  EXPECT_FALSE(f.evaluate(ctx));
  EXPECT_EQ(Filter::jsonSerializations() - before, 50u + 2 + 1 + 1 + 2) << "without the cache: once per read";

  JsonTextCache cache;
  ctx.jsonText = &cache;
  before = Filter::jsonSerializations();
  EXPECT_FALSE(f.evaluate(ctx));
  EXPECT_FALSE(f.evaluate(ctx));
  // meta and list once; small (under kMinBytes) at each of its reads.
  EXPECT_EQ(Filter::jsonSerializations() - before, 2u + 2 * 2);
  EXPECT_EQ(cache.size(), 2u);
}

}  // namespace
}  // namespace ssefanout::pb
