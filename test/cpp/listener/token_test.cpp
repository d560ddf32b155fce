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

}  // namespace
}  // namespace ssefanout::listener
