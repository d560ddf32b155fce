// The listener's token path (src/listener/token): where the token comes from
// and what is answered, on parsed request heads, without sockets (the JS
// suite, test/js/listener-token.test.js, runs it over real ones).
#include "token.hpp"

#include <gtest/gtest.h>

#include <string>

#include "auth/jwt_signer.hpp"

namespace ssefanout::listener {
namespace {

const char kSecret[] = "the-listener-token-test-secret!!";
constexpr int64_t kNow = 1700000000;

Options options() {
  Options o;
  std::string error;
  o.token = auth::Verifier::create({auth::KeySpec{auth::Algorithm::kHS256, kSecret, std::nullopt}}, {}, &error);
  return o;
}

std::string jwt(const std::string& payload) {
  return auth::testing::token(R"({"alg":"HS256"})", payload, auth::testing::Sign::kHS256, nullptr, kSecret);
}

const std::string kToken = jwt(R"({"sub":"u1","mercure":{"subscribe":["a","a","b","/t/{x}","*","c\nd"]}})");

struct Parsed {
  std::string head;
  http::Request request;
};

// The request's head is kept alive with its parse (the views point into it).
std::unique_ptr<Parsed> parse(const std::string& target, const std::string& headers = "") {
  auto p = std::make_unique<Parsed>();
  p->head = "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n";
  http::Error err;
  EXPECT_TRUE(http::parseHead(p->head, http::Limits(), &p->request, &err)) << p->head;
  return p;
}

int found(const Options& o, const std::string& target, const std::string& headers, std::string* token) {
  token->clear();
  return tokenOf(o, parse(target, headers)->request, token);
}

TEST(TokenOf, HeaderThenQueryThenCookie) {
  Options o = options();
  std::string t;
  EXPECT_EQ(found(o, "/e", "Authorization: Bearer abc\r\n", &t), 1);
  EXPECT_EQ(t, "abc");
  EXPECT_EQ(found(o, "/e", "authorization: BEARER   abc  \r\n", &t), 1);
  EXPECT_EQ(t, "abc");
  EXPECT_EQ(found(o, "/e?authorization=q", "Authorization: Bearer h\r\nCookie: mercureAuthorization=c\r\n", &t), 1);
  EXPECT_EQ(t, "h");
  EXPECT_EQ(found(o, "/e?authorization=q%2Bx", "Cookie: mercureAuthorization=c\r\n", &t), 1);
  EXPECT_EQ(t, "q+x");
  EXPECT_EQ(found(o, "/e", "Cookie: a=1; mercureAuthorization=\"c\"; b=2\r\n", &t), 1);
  EXPECT_EQ(t, "c");
  EXPECT_EQ(found(o, "/e", "Cookie: a=1\r\nCookie: mercureAuthorization=second\r\n", &t), 1);
  EXPECT_EQ(t, "second");
  EXPECT_EQ(found(o, "/e", "Cookie: mercureAuthorization=\r\n", &t), 0);
  EXPECT_EQ(found(o, "/e", "Cookie: xmercureAuthorization=c\r\n", &t), 0);
  EXPECT_EQ(found(o, "/e?topics=a", "", &t), 0);
  // Malformed: another scheme, no token, two words, two headers, two query values.
  EXPECT_EQ(found(o, "/e", "Authorization: Basic abc\r\n", &t), -1);
  EXPECT_EQ(found(o, "/e", "Authorization: Bearer\r\n", &t), -1);
  EXPECT_EQ(found(o, "/e", "Authorization: Bearer a b\r\n", &t), -1);
  EXPECT_EQ(found(o, "/e", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", &t), -1);
  EXPECT_EQ(found(o, "/e?authorization=a&authorization=b", "", &t), -1);
  // Turned off.
  o.tokenQuery.clear();
  o.tokenCookie.clear();
  EXPECT_EQ(found(o, "/e?authorization=q", "Cookie: mercureAuthorization=c\r\n", &t), 0);
}

TEST(AdmitToken, TopicsAndUserFromTheClaim) {
  Options o = options();
  std::string response;
  Accepted a;
  auto p = parse("/e", "Authorization: Bearer " + kToken + "\r\n");
  ASSERT_TRUE(admitToken(o, p->request, kNow, &a, &response)) << response;
  // The exact selectors, each once; not "*", no template, no invalid topic.
  EXPECT_EQ(a.topics, (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(a.user);
  EXPECT_EQ(*a.user, "u1");
  Accepted named;
  named.topics = {"anything"};  // "*" grants it
  EXPECT_TRUE(admitToken(o, p->request, kNow, &named, &response));
  EXPECT_EQ(named.topics, std::vector<std::string>{"anything"});
}

TEST(AdmitToken, Refusals) {
  Options o = options();
  auto answer = [&](const std::string& headers, std::vector<std::string> topics = {}) {
    std::string response;
    Accepted a;
    a.topics = std::move(topics);
    auto p = parse("/e", headers);
    EXPECT_FALSE(admitToken(o, p->request, kNow, &a, &response));
    return response;
  };
  std::string r = answer("");
  EXPECT_NE(r.find("HTTP/1.1 401 "), std::string::npos);
  EXPECT_NE(r.find("www-authenticate: Bearer\r\n"), std::string::npos);
  EXPECT_NE(r.find("ERR_SSE_UNAUTHORIZED"), std::string::npos);
  r = answer("Authorization: Basic x\r\n");
  EXPECT_NE(r.find("www-authenticate: Bearer error=\"invalid_request\""), std::string::npos);
  r = answer("Authorization: Bearer " + kToken.substr(0, kToken.size() - 2) + "\r\n");
  EXPECT_NE(r.find("www-authenticate: Bearer error=\"invalid_token\""), std::string::npos);
  r = answer("Authorization: Bearer " + jwt(R"({"exp":1})") + "\r\n");
  EXPECT_NE(r.find("error_description=\"token expired\""), std::string::npos);
  const std::string narrow = jwt(R"({"mercure":{"subscribe":["a","/t/{x}"]}})");
  r = answer("Authorization: Bearer " + narrow + "\r\n", {"a", "/t/1", "b"});
  EXPECT_NE(r.find("HTTP/1.1 403 "), std::string::npos);
  EXPECT_NE(r.find("ERR_SSE_FORBIDDEN"), std::string::npos);
  const std::string templatesOnly = jwt(R"({"mercure":{"subscribe":["/t/{x}","*"]}})");
  r = answer("Authorization: Bearer " + templatesOnly + "\r\n");
  EXPECT_NE(r.find("HTTP/1.1 400 "), std::string::npos);
  // A template grants what it matches.
  std::string response;
  Accepted a;
  a.topics = {"a", "/t/1"};
  auto p = parse("/e", "Authorization: Bearer " + narrow + "\r\n");
  EXPECT_TRUE(admitToken(o, p->request, kNow, &a, &response)) << response;
  EXPECT_FALSE(a.user);
}

// The cache of verified tokens: a hit answers as verify() would, the dates
// checked on every hit; only verified tokens are kept; bounded by count and
// bytes, least recently used first.
TEST(TokenCache, AHitAnswersAsVerifyWould) {
  Options o = options();
  TokenCache cache(8, 1 << 20);
  const std::string soon = jwt(R"({"sub":"u2","exp":1700000010,"mercure":{"subscribe":["a"]}})");
  auto p = parse("/e", "Authorization: Bearer " + soon + "\r\n");
  std::string response;
  bool hit = true;
  Accepted first;
  ASSERT_TRUE(admitToken(o, p->request, kNow, &first, &response, &cache, &hit)) << response;
  EXPECT_FALSE(hit);
  EXPECT_EQ(cache.size(), 1u);
  Accepted second;
  ASSERT_TRUE(admitToken(o, p->request, kNow + 9, &second, &response, &cache, &hit)) << response;
  EXPECT_TRUE(hit);
  EXPECT_EQ(second.topics, std::vector<std::string>{"a"});
  ASSERT_TRUE(second.user);
  EXPECT_EQ(*second.user, "u2");
  // The claim is matched on a hit as on a verify: a topic it does not grant.
  Accepted other;
  other.topics = {"b"};
  EXPECT_FALSE(admitToken(o, p->request, kNow, &other, &response, &cache, &hit));
  EXPECT_TRUE(hit);
  EXPECT_NE(response.find("HTTP/1.1 403 "), std::string::npos);
  // At exp the kept entry no longer answers: dropped, verified again, refused.
  Accepted late;
  EXPECT_FALSE(admitToken(o, p->request, kNow + 10, &late, &response, &cache, &hit));
  EXPECT_FALSE(hit);
  EXPECT_NE(response.find("error_description=\"token expired\""), std::string::npos);
  EXPECT_EQ(cache.size(), 0u);
  // nbf on a hit: a kept token whose nbf is ahead of the clock given (a
  // clock stepped back) does not answer, and is dropped.
  const std::string from = jwt(R"({"nbf":1700000000,"mercure":{"subscribe":["a"]}})");
  cache.insert(from, o.token->verify(from, kNow).claims);
  ASSERT_NE(cache.find(from, *o.token, kNow), nullptr);
  EXPECT_EQ(cache.find(from, *o.token, kNow - 10), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  // nbf: not yet valid is never kept (verify refused it).
  const std::string notYet = jwt(R"({"nbf":1700000100,"mercure":{"subscribe":["a"]}})");
  auto q = parse("/e", "Authorization: Bearer " + notYet + "\r\n");
  Accepted early;
  EXPECT_FALSE(admitToken(o, q->request, kNow, &early, &response, &cache, &hit));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(TokenCache, OnlyVerifiedTokensAndExactBytes) {
  Options o = options();
  TokenCache cache(8, 1 << 20);
  std::string response;
  bool hit = false;
  // A forged signature: refused, not kept, refused again.
  const std::string forged = kToken.substr(0, kToken.size() - 4) + "AAAA";
  auto f = parse("/e", "Authorization: Bearer " + forged + "\r\n");
  for (int i = 0; i < 2; ++i) {
    Accepted a;
    EXPECT_FALSE(admitToken(o, f->request, kNow, &a, &response, &cache, &hit));
    EXPECT_FALSE(hit);
  }
  EXPECT_EQ(cache.size(), 0u);
  // The good token is kept; the forged one (the same but its signature)
  // still does not hit.
  auto g = parse("/e", "Authorization: Bearer " + kToken + "\r\n");
  Accepted a;
  ASSERT_TRUE(admitToken(o, g->request, kNow, &a, &response, &cache, &hit));
  EXPECT_EQ(cache.size(), 1u);
  Accepted b;
  EXPECT_FALSE(admitToken(o, f->request, kNow, &b, &response, &cache, &hit));
  EXPECT_FALSE(hit);
}

TEST(TokenCache, BoundedByCountAndBytesLeastRecentlyUsedFirst) {
  Options o = options();
  const std::string t1 = jwt(R"({"sub":"1"})"), t2 = jwt(R"({"sub":"2"})"), t3 = jwt(R"({"sub":"3"})");
  auto claimsOf = [&](const std::string& t) { return o.token->verify(t, kNow).claims; };
  TokenCache cache(2, 1 << 20);
  cache.insert(t1, claimsOf(t1));
  cache.insert(t2, claimsOf(t2));
  ASSERT_NE(cache.find(t1, *o.token, kNow), nullptr);  // t1 the most recent now
  cache.insert(t3, claimsOf(t3));                      // drops t2
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.find(t1, *o.token, kNow), nullptr);
  EXPECT_EQ(cache.find(t2, *o.token, kNow), nullptr);
  EXPECT_NE(cache.find(t3, *o.token, kNow), nullptr);
  // The same token again replaces its entry.
  cache.insert(t3, claimsOf(t3));
  EXPECT_EQ(cache.size(), 2u);
  // Bytes: room for exactly two entries; an entry past the budget alone is not kept.
  const size_t one = TokenCache::costOf(t1, claimsOf(t1));
  TokenCache small(100, 2 * one);
  small.insert(t1, claimsOf(t1));
  small.insert(t2, claimsOf(t2));
  small.insert(t3, claimsOf(t3));
  EXPECT_EQ(small.size(), 2u);
  EXPECT_LE(small.bytes(), 2 * one);
  EXPECT_EQ(small.find(t1, *o.token, kNow), nullptr);
  TokenCache tiny(100, one - 1);
  tiny.insert(t1, claimsOf(t1));
  EXPECT_EQ(tiny.size(), 0u);
  TokenCache off(0, 1 << 20);
  off.insert(t1, claimsOf(t1));
  EXPECT_EQ(off.size(), 0u);
}

}  // namespace
}  // namespace ssefanout::listener
