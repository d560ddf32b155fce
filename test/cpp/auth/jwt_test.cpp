// The JWT verifier (src/auth/jwt): tokens signed here with OpenSSL for each
// algorithm, the RFC 7515 A.1 example, and every refusal the listener relies
// on (tampering, alg none, algorithm confusion, kid, crit, base64url, DER
// ES256 signatures, dates, claim paths, budgets).
#include "jwt.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "auth/jwt_signer.hpp"

namespace ssefanout::auth {
namespace {

using testing::base64Url;
using testing::Sign;

constexpr int64_t kNow = 1700000000;
const std::string kSecret = "a-shared-secret-of-some-length!!";

std::shared_ptr<const Verifier> make(std::vector<KeySpec> keys, ClaimsOptions options = {}) {
  std::string error;
  auto v = Verifier::create(std::move(keys), std::move(options), &error);
  EXPECT_NE(v, nullptr) << error;
  return v;
}

KeySpec hs(std::string secret, std::optional<std::string> kid = std::nullopt) {
  return KeySpec{Algorithm::kHS256, std::move(secret), std::move(kid)};
}

KeySpec pub(Algorithm a, EVP_PKEY* k, std::optional<std::string> kid = std::nullopt) {
  return KeySpec{a, testing::spkiDer(k), std::move(kid)};
}

const char* kHsHeader = R"({"alg":"HS256","typ":"JWT"})";
const char* kRsHeader = R"({"alg":"RS256","typ":"JWT"})";
const char* kEsHeader = R"({"alg":"ES256","typ":"JWT"})";
const char* kPayload = R"({"sub":"alice","mercure":{"subscribe":["/books/{id}","/news"]}})";

std::string hsToken(std::string_view payload = kPayload, std::string_view header = kHsHeader) {
  return testing::token(header, payload, Sign::kHS256, nullptr, kSecret);
}

std::string reason(const Verdict& v) { return v.ok ? "ok" : v.reason; }

TEST(Base64Url, StrictDecoding) {
  std::string out;
  EXPECT_TRUE(base64UrlDecode("", &out));
  EXPECT_TRUE(base64UrlDecode("YWJj", &out));
  EXPECT_EQ(out, "abc");
  out.clear();
  EXPECT_TRUE(base64UrlDecode("YWI", &out));
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_TRUE(base64UrlDecode("-_8", &out));
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_FALSE(base64UrlDecode("YWI=", &out));  // padding
  EXPECT_FALSE(base64UrlDecode("YW+j", &out));  // base64, not base64url
  EXPECT_FALSE(base64UrlDecode("YW/j", &out));
  EXPECT_FALSE(base64UrlDecode("YW j", &out));  // a stray byte
  EXPECT_FALSE(base64UrlDecode("Y", &out));     // an impossible length
  EXPECT_FALSE(base64UrlDecode("YWJ", &out));   // non-canonical: unused bits set
  EXPECT_FALSE(base64UrlDecode("YR", &out));
  for (std::string s : {std::string("\x00\x01\xfe\xff", 4), std::string("hello world"), std::string(1, '\0')}) {
    out.clear();
    EXPECT_TRUE(base64UrlDecode(base64Url(s), &out));
    EXPECT_EQ(out, s);
  }
}

TEST(Verifier, Rfc7515A1Hs256Example) {
  // RFC 7515 appendix A.1: the JWK's k, the token, exp 1300819380.
  std::string key;
  ASSERT_TRUE(
      base64UrlDecode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow", &key));
  auto v = make({hs(key)});
  const std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
      ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
      ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  Verdict ok = v->verify(token, 1300819379);
  EXPECT_TRUE(ok.ok) << ok.reason;
  EXPECT_TRUE(ok.claims.selectors.empty());  // valid, no topics claim: no rights
  EXPECT_FALSE(ok.claims.user);
  EXPECT_EQ(reason(v->verify(token, 1300819380)), "token expired");
  std::string tampered = token;
  tampered[tampered.rfind('.') + 1] = 'e';  // "dBjf..." -> "eBjf..."
  EXPECT_EQ(reason(v->verify(tampered, 1300819379)), "bad token signature");
}

// A verifier with a key of each algorithm, and a good token for each.
struct EveryAlgorithm {
  testing::Pkey rsa = testing::rsaKey();
  testing::Pkey ec = testing::ecKey();
  std::shared_ptr<const Verifier> v =
      make({hs(kSecret), pub(Algorithm::kRS256, rsa.get()), pub(Algorithm::kES256, ec.get())});
  std::string tokens[3] = {
      hsToken(),
      testing::token(kRsHeader, kPayload, Sign::kRS256, rsa.get()),
      testing::token(kEsHeader, kPayload, Sign::kES256, ec.get()),
  };
};

TEST(Verifier, EachAlgorithmVerifiesItsTokens) {
  EveryAlgorithm all;
  const auto& v = all.v;
  for (const std::string& t : all.tokens) {
    Verdict r = v->verify(t, kNow);
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.claims.selectors, (std::vector<std::string>{"/books/{id}", "/news"}));
    ASSERT_TRUE(r.claims.user);
    EXPECT_EQ(*r.claims.user, "alice");
  }
}

TEST(Verifier, TamperedPartsAreRefused) {
  EveryAlgorithm all;
  const auto& v = all.v;
  const auto& tokens = all.tokens;
  const std::string otherPayload = base64Url(R"({"sub":"mallory","mercure":{"subscribe":["*"]}})");
  for (const std::string& t : tokens) {
    const size_t d1 = t.find('.'), d2 = t.rfind('.');
    // Another payload under the same signature.
    EXPECT_EQ(reason(v->verify(t.substr(0, d1 + 1) + otherPayload + t.substr(d2), kNow)), "bad token signature");
    // Another header (same algorithm, one more member).
    const std::string header = base64Url(std::string(R"({"typ":"JWT","alg":")") + t.substr(0, 0) +
                                         (t == tokens[0]   ? "HS256"
                                          : t == tokens[1] ? "RS256"
                                                           : "ES256") +
                                         "\"}");
    EXPECT_EQ(reason(v->verify(header + t.substr(d1), kNow)), "bad token signature");
    // Each signature byte flipped, a few of them.
    std::string sig;
    ASSERT_TRUE(base64UrlDecode(t.substr(d2 + 1), &sig));
    for (size_t i : {size_t{0}, sig.size() / 2, sig.size() - 1}) {
      std::string bad = sig;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      EXPECT_EQ(reason(v->verify(t.substr(0, d2 + 1) + base64Url(bad), kNow)), "bad token signature");
    }
    // The signature cut short, or dropped.
    EXPECT_EQ(reason(v->verify(t.substr(0, d2 + 1) + base64Url(sig.substr(0, sig.size() - 1)), kNow)),
              "bad token signature");
    EXPECT_EQ(reason(v->verify(t.substr(0, d2 + 1), kNow)), "malformed token");
  }
}

TEST(Verifier, AlgNoneAndUnknownAlgorithmsAreRefused) {
  auto v = make({hs(kSecret)});
  const std::string none = base64Url(R"({"alg":"none"})") + "." + base64Url(kPayload) + ".";
  EXPECT_EQ(reason(v->verify(none, kNow)), "malformed token");  // no signature part
  const std::string noneSigned = base64Url(R"({"alg":"none"})") + "." + base64Url(kPayload) + ".AAAA";
  EXPECT_EQ(reason(v->verify(noneSigned, kNow)), "token algorithm not accepted");
  for (const char* alg : {"HS384", "HS512", "RS512", "PS256", "EdDSA", "hs256", "", "NONE"}) {
    std::string h = std::string(R"({"alg":")") + alg + "\"}";
    EXPECT_EQ(reason(v->verify(hsToken(kPayload, h), kNow)), "token algorithm not accepted") << alg;
  }
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, R"({"typ":"JWT"})"), kNow)), "malformed token");
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, R"({"alg":256})"), kNow)), "malformed token");
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, R"({"alg":"HS256","alg":"HS256"})"), kNow)), "malformed token");
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, R"(["HS256"])"), kNow)), "malformed token");
}

TEST(Verifier, AlgorithmConfusionIsRefused) {
  // The classic attack: an HS256 token whose MAC key is the RS256 public key
  // the attacker knows (as PEM or DER). An RS256 key never checks a MAC.
  testing::Pkey rsa = testing::rsaKey();
  testing::Pkey ec = testing::ecKey();
  auto v = make({pub(Algorithm::kRS256, rsa.get()), pub(Algorithm::kES256, ec.get())});
  for (const std::string& secret : {testing::spkiPem(rsa.get()), testing::spkiDer(rsa.get()),
                                    testing::spkiPem(ec.get()), testing::spkiDer(ec.get())}) {
    const std::string forged = testing::token(kHsHeader, kPayload, Sign::kHS256, nullptr, secret);
    EXPECT_EQ(reason(v->verify(forged, kNow)), "token algorithm not accepted");
  }
  // An ES256 token against the RS256 key alone, and the reverse.
  auto rsOnly = make({pub(Algorithm::kRS256, rsa.get())});
  EXPECT_EQ(reason(rsOnly->verify(testing::token(kEsHeader, kPayload, Sign::kES256, ec.get()), kNow)),
            "token algorithm not accepted");
  // An RS256 header over an HMAC: the RSA key refuses the signature.
  const std::string rsHeaderHmac =
      testing::token(kRsHeader, kPayload, Sign::kHS256, nullptr, testing::spkiPem(rsa.get()));
  EXPECT_EQ(reason(rsOnly->verify(rsHeaderHmac, kNow)), "bad token signature");
}

TEST(Verifier, KidSelectsTheKey) {
  auto v = make({hs("old-secret-old-secret-old-secret", "k1"), hs(kSecret, "k2")});
  auto withKid = [](const char* kid) { return std::string(R"({"alg":"HS256","kid":")") + kid + "\"}"; };
  EXPECT_TRUE(v->verify(hsToken(kPayload, withKid("k2")), kNow).ok);
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, withKid("k1")), kNow)), "bad token signature");
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, withKid("k3")), kNow)), "unknown key id");
  EXPECT_TRUE(v->verify(hsToken(), kNow).ok);  // no kid: every key of the algorithm is tried (rotation)
  auto noKids = make({hs(kSecret)});
  EXPECT_TRUE(noKids->verify(hsToken(kPayload, withKid("anything")), kNow).ok);  // only one side has a kid
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, R"({"alg":"HS256","kid":7})"), kNow)), "malformed token");
}

TEST(Verifier, CritIsRefused) {
  auto v = make({hs(kSecret)});
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, R"({"alg":"HS256","crit":["exp"],"exp":1})"), kNow)),
            "critical header parameters are not supported");
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, R"({"alg":"HS256","crit":[]})"), kNow)),
            "critical header parameters are not supported");
}

TEST(Verifier, MalformedTokensAreRefused) {
  auto v = make({hs(kSecret)});
  const std::string good = hsToken();
  const size_t d1 = good.find('.');
  EXPECT_EQ(reason(v->verify("", kNow)), "empty token");
  for (const std::string& t :
       {std::string("abc"), std::string("a.b"), std::string("a.b.c.d"), std::string(".."), good + ".", "." + good,
        good.substr(0, d1) + "=" + good.substr(d1), good.substr(0, d1) + ".." + good.substr(d1 + 1), good + "=",
        good + " ", "Bearer " + good, good.substr(0, 4) + "+" + good.substr(5)}) {
    EXPECT_FALSE(v->verify(t, kNow).ok) << t;
  }
  // Header and payload that are not JSON objects, or not UTF-8.
  EXPECT_EQ(reason(v->verify(hsToken(kPayload, "not json"), kNow)), "malformed token");
  EXPECT_EQ(reason(v->verify(hsToken("[1,2]"), kNow)), "malformed token");
  EXPECT_EQ(reason(v->verify(hsToken("{\"sub\":\"\xff\"}"), kNow)), "malformed token");
  EXPECT_EQ(reason(v->verify(hsToken("{\"sub\":\"a\"} trailing"), kNow)), "malformed token");
  std::string deep(Verifier::kMaxJsonDepth + 8, '[');
  deep += std::string(Verifier::kMaxJsonDepth + 8, ']');
  EXPECT_EQ(reason(v->verify(hsToken(std::string(R"({"x":)") + deep + "}"), kNow)), "malformed token");
}

TEST(Verifier, Es256DerSignatureIsRefused) {
  testing::Pkey ec = testing::ecKey();
  auto v = make({pub(Algorithm::kES256, ec.get())});
  EXPECT_TRUE(v->verify(testing::token(kEsHeader, kPayload, Sign::kES256, ec.get()), kNow).ok);
  EXPECT_EQ(reason(v->verify(testing::token(kEsHeader, kPayload, Sign::kES256Der, ec.get()), kNow)),
            "bad token signature");
  // r || s with a byte more or less.
  const std::string t = testing::token(kEsHeader, kPayload, Sign::kES256, ec.get());
  std::string sig;
  ASSERT_TRUE(base64UrlDecode(t.substr(t.rfind('.') + 1), &sig));
  const std::string input = t.substr(0, t.rfind('.') + 1);
  EXPECT_FALSE(v->verify(input + base64Url(sig + std::string(1, '\0')), kNow).ok);
  EXPECT_FALSE(v->verify(input + base64Url(std::string(1, '\0') + sig), kNow).ok);
  EXPECT_FALSE(v->verify(input + base64Url(std::string(64, '\0')), kNow).ok);
}

TEST(Verifier, ExpAndNbfWithTolerance) {
  ClaimsOptions strict;
  ClaimsOptions lenient;
  lenient.clockToleranceSec = 30;
  auto v = make({hs(kSecret)}, strict);
  auto w = make({hs(kSecret)}, lenient);
  auto at = [](const char* claims) { return hsToken(std::string("{") + claims + "}"); };
  EXPECT_TRUE(v->verify(at(R"("exp":1700000001)"), kNow).ok);
  EXPECT_EQ(reason(v->verify(at(R"("exp":1700000000)"), kNow)), "token expired");  // at exp itself, as jose
  EXPECT_EQ(reason(v->verify(at(R"("exp":1699999990)"), kNow)), "token expired");
  EXPECT_TRUE(w->verify(at(R"("exp":1699999990)"), kNow).ok);
  EXPECT_EQ(reason(w->verify(at(R"("exp":1699999970)"), kNow)), "token expired");
  EXPECT_TRUE(v->verify(at(R"("exp":1700000000.5)"), kNow).ok);
  EXPECT_TRUE(v->verify(at(R"("nbf":1700000000)"), kNow).ok);
  EXPECT_EQ(reason(v->verify(at(R"("nbf":1700000001)"), kNow)), "token not yet valid");
  EXPECT_TRUE(w->verify(at(R"("nbf":1700000030)"), kNow).ok);
  EXPECT_EQ(reason(w->verify(at(R"("nbf":1700000031)"), kNow)), "token not yet valid");
  for (const char* bad : {R"("exp":"1800000000")", R"("nbf":null)", R"("exp":true)", R"("iat":"now")",
                          R"("exp":1800000000,"exp":1800000000)"}) {
    EXPECT_EQ(reason(v->verify(at(bad), kNow)), "invalid token claims") << bad;
  }
  EXPECT_TRUE(v->verify(at(R"("exp":18446744073709551615)"), kNow).ok);  // a uint64
  EXPECT_EQ(reason(v->verify(at(R"("exp":-5)"), kNow)), "token expired");
}

TEST(Verifier, ClaimPathVariants) {
  auto v = make({hs(kSecret)});
  auto selectors = [&](const Verifier& verifier, const std::string& payload) {
    Verdict r = verifier.verify(hsToken(payload), kNow);
    EXPECT_TRUE(r.ok) << payload << ": " << r.reason;
    return r.claims.selectors;
  };
  using List = std::vector<std::string>;
  EXPECT_EQ(selectors(*v, R"({"mercure":{"subscribe":["a"]}})"), List{"a"});
  // The namespaced claim replaces `mercure` when present and not null.
  EXPECT_EQ(selectors(*v, R"({"mercure":{"subscribe":["a"]},"https://mercure.rocks/":{"subscribe":["b"]}})"),
            List{"b"});
  EXPECT_EQ(selectors(*v, R"({"mercure":{"subscribe":["a"]},"https://mercure.rocks/":null})"), List{"a"});
  EXPECT_EQ(selectors(*v, R"({"https://mercure.rocks/":{"subscribe":["*"]}})"), List{"*"});
  EXPECT_EQ(selectors(*v, R"({"mercure":{"publish":["a"]}})"), List{});
  EXPECT_EQ(selectors(*v, R"({"mercure":null})"), List{});
  EXPECT_EQ(selectors(*v, R"({"mercure":{"subscribe":null}})"), List{});
  EXPECT_EQ(selectors(*v, R"({"mercure":{"subscribe":[]}})"), List{});
  for (const char* bad : {R"({"mercure":"x"})", R"({"mercure":{"subscribe":"a"}})", R"({"mercure":{"subscribe":[1]}})",
                          R"({"mercure":{"subscribe":["a",null]}})", R"({"mercure":[]})"}) {
    EXPECT_EQ(reason(v->verify(hsToken(bad), kNow)), "invalid token claims") << bad;
  }
  // A path of one member, and a deeper one; another user claim.
  ClaimsOptions flat;
  flat.topicsPath = {"topics"};
  flat.userClaim = "uid";
  auto f = make({hs(kSecret)}, flat);
  EXPECT_EQ(selectors(*f, R"({"topics":["x","y"],"mercure":{"subscribe":["z"]}})"), (List{"x", "y"}));
  EXPECT_EQ(*f->verify(hsToken(R"({"uid":"u-1","sub":"ignored"})"), kNow).claims.user, "u-1");
  ClaimsOptions deep;
  deep.topicsPath = {"app", "sse", "topics"};
  deep.userClaim = "";
  auto d = make({hs(kSecret)}, deep);
  Verdict r = d->verify(hsToken(R"({"app":{"sse":{"topics":["t"]}},"sub":"alice"})"), kNow);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.claims.selectors, List{"t"});
  EXPECT_FALSE(r.claims.user);  // no user claim: anonymous
  EXPECT_EQ(selectors(*d, R"({"app":{"other":1}})"), List{});
  EXPECT_EQ(reason(d->verify(hsToken(R"({"app":{"sse":5}})"), kNow)), "invalid token claims");
  // The user: a non-empty string of at most 1024 bytes.
  EXPECT_EQ(reason(v->verify(hsToken(R"({"sub":5})"), kNow)), "invalid token claims");
  EXPECT_EQ(reason(v->verify(hsToken(R"({"sub":""})"), kNow)), "invalid token claims");
  EXPECT_EQ(reason(v->verify(hsToken(R"({"sub":"a","sub":"b"})"), kNow)), "invalid token claims");
  // A member of the topics path given twice, at any depth: simdjson's
  // at_key would take the first, JSON.parse (a JS verifier of the same
  // token) the last; neither is taken.
  for (const char* twice : {R"({"mercure":{"subscribe":["a"],"subscribe":["*"]}})",
                            R"({"https://mercure.rocks/":{"subscribe":["a"],"subscribe":["*"]}})"}) {
    EXPECT_EQ(reason(v->verify(hsToken(twice), kNow)), "invalid token claims") << twice;
  }
  EXPECT_EQ(reason(d->verify(hsToken(R"({"app":{"sse":{"topics":["t"]},"sse":{"topics":["*"]}}})"), kNow)),
            "invalid token claims");
  EXPECT_TRUE(v->verify(hsToken("{\"sub\":\"" + std::string(1024, 'u') + "\"}"), kNow).ok);
  EXPECT_EQ(reason(v->verify(hsToken("{\"sub\":\"" + std::string(1025, 'u') + "\"}"), kNow)), "invalid token claims");
}

TEST(Verifier, Budgets) {
  auto v = make({hs(kSecret)});
  auto list = [](size_t n, size_t bytes) {
    std::string s = R"({"mercure":{"subscribe":[)";
    for (size_t i = 0; i < n; ++i) s += (i ? ",\"" : "\"") + std::string(bytes, 'a') + "\"";
    return s + "]}}";
  };
  // 1000 one-byte selectors fit in the token budget; 1001 do not pass.
  EXPECT_TRUE(v->verify(hsToken(list(1000, 1)), kNow).ok);
  EXPECT_EQ(reason(v->verify(hsToken(list(1001, 1)), kNow)), "invalid token claims");
  EXPECT_TRUE(v->verify(hsToken(list(2, 1024)), kNow).ok);
  EXPECT_EQ(reason(v->verify(hsToken(list(1, 1025)), kNow)), "invalid token claims");
  std::string big = hsToken(list(1, 6200));
  ASSERT_GT(big.size(), Verifier::kMaxTokenBytes);
  EXPECT_EQ(reason(v->verify(big, kNow)), "token too large");
  EXPECT_EQ(reason(v->verify(std::string(Verifier::kMaxTokenBytes + 1, 'a'), kNow)), "token too large");
}

TEST(Verifier, KeysAreCheckedWhenBuilt) {
  std::string error;
  EXPECT_EQ(Verifier::create({}, {}, &error), nullptr);
  EXPECT_EQ(Verifier::create(std::vector<KeySpec>(9, hs(kSecret)), {}, &error), nullptr);
  EXPECT_NE(Verifier::create(std::vector<KeySpec>(8, hs(kSecret)), {}, &error), nullptr);
  EXPECT_EQ(Verifier::create({hs("")}, {}, &error), nullptr);
  EXPECT_EQ(error, "key 0 (HS256): the secret is empty");
  testing::Pkey small = testing::rsaKey(1024);
  EXPECT_EQ(Verifier::create({pub(Algorithm::kRS256, small.get())}, {}, &error), nullptr);
  EXPECT_NE(error.find("at least 2048 bits"), std::string::npos);
  testing::Pkey p384 = testing::ecKey("P-384");
  EXPECT_EQ(Verifier::create({pub(Algorithm::kES256, p384.get())}, {}, &error), nullptr);
  EXPECT_NE(error.find("P-256"), std::string::npos);
  testing::Pkey rsa = testing::rsaKey();
  testing::Pkey ec = testing::ecKey();
  EXPECT_EQ(Verifier::create({pub(Algorithm::kES256, rsa.get())}, {}, &error), nullptr);
  EXPECT_EQ(Verifier::create({pub(Algorithm::kRS256, ec.get())}, {}, &error), nullptr);
  EXPECT_EQ(Verifier::create({KeySpec{Algorithm::kRS256, "not der", std::nullopt}}, {}, &error), nullptr);
  EXPECT_EQ(error, "key 0 (RS256): the public key (SPKI DER) does not parse");
  std::string der = testing::spkiDer(rsa.get());
  EXPECT_EQ(Verifier::create({KeySpec{Algorithm::kRS256, der + "x", std::nullopt}}, {}, &error), nullptr);
  ClaimsOptions noPath;
  noPath.topicsPath.clear();
  EXPECT_EQ(Verifier::create({hs(kSecret)}, noPath, &error), nullptr);
}

TEST(Verifier, ConcurrentVerification) {
  // verify() is const and shared by the I/O threads.
  testing::Pkey rsa = testing::rsaKey();
  testing::Pkey ec = testing::ecKey();
  auto v = make({hs(kSecret), pub(Algorithm::kRS256, rsa.get()), pub(Algorithm::kES256, ec.get())});
  const std::vector<std::string> good = {hsToken(), testing::token(kRsHeader, kPayload, Sign::kRS256, rsa.get()),
                                         testing::token(kEsHeader, kPayload, Sign::kES256, ec.get())};
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string& tok = good[static_cast<size_t>(i + t) % good.size()];
        if (!v->verify(tok, kNow).ok) failures.fetch_add(1);
        if (v->verify(tok.substr(0, tok.size() - 2), kNow).ok) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace ssefanout::auth
