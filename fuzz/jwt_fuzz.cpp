// Fuzz target: the JWT verifier (src/auth/jwt.hpp) on arbitrary bytes, as an
// Authorization header, a query parameter or a cookie would bring them.
//
// The first byte picks the mode:
//  - even: the rest is the token, verified against fixed keys (an HS256
//    secret, an RS256 and an ES256 public key, generated at start-up and
//    never seen by the input): it must never verify, and a refusal's reason
//    is one of the fixed texts (never the input's bytes);
//  - odd: the rest is "header JSON\npayload JSON", signed here with the
//    HS256 secret, so the claims parser is reached with any payload: no
//    crash, and what a verified token grants is within the budgets (at most
//    1000 selectors of at most 1024 bytes, a user of 1 to 1024 bytes); the
//    same token against the other keys alone never verifies.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "auth/jwt_signer.hpp"
#include "fuzz_check.hpp"
#include "jwt.hpp"

using namespace ssefanout::auth;
using fuzzutil::show;

namespace {

constexpr int64_t kNow = 1700000000;
const char kSecret[] = "the-fuzz-target-secret-0123456789";

struct Keys {
  std::shared_ptr<const Verifier> all;
  std::shared_ptr<const Verifier> publicOnly;
};

const Keys& keys() {
  static const Keys k = [] {
    testing::Pkey rsa = testing::rsaKey();
    testing::Pkey ec = testing::ecKey();
    std::string error;
    std::vector<KeySpec> pub = {KeySpec{Algorithm::kRS256, testing::spkiDer(rsa.get()), std::string("r")},
                                KeySpec{Algorithm::kES256, testing::spkiDer(ec.get()), std::nullopt}};
    std::vector<KeySpec> all = pub;
    all.push_back(KeySpec{Algorithm::kHS256, kSecret, std::nullopt});
    Keys out{Verifier::create(all, {}, &error), Verifier::create(pub, {}, &error)};
    FUZZ_CHECK(out.all && out.publicOnly, "the fixed keys: %s", error.c_str());
    return out;
  }();
  return k;
}

void checkReason(const Verdict& v, std::string_view input) {
  FUZZ_CHECK(!v.ok || v.reason[0] == '\0', "an accepted token with a reason");
  if (v.ok) return;
  const size_t n = std::strlen(v.reason);
  FUZZ_CHECK(n > 0 && n < 64, "a refusal's reason: %s", show(v.reason).c_str());
  FUZZ_CHECK(std::strchr(v.reason, '"') == nullptr, "a quote in a reason (it goes into WWW-Authenticate)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Keys& k = keys();
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    Verdict v = k.all->verify(rest, kNow);
    checkReason(v, rest);
    FUZZ_CHECK(!v.ok, "a token the fuzzer made verified: %s", show(rest).c_str());
    return 0;
  }
  const size_t nl = rest.find('\n');
  const std::string header = rest.substr(0, nl);
  const std::string payload = nl == std::string::npos ? std::string("{}") : rest.substr(nl + 1);
  const std::string token = testing::token(header, payload, testing::Sign::kHS256, nullptr, kSecret);
  Verdict v = k.all->verify(token, kNow);
  checkReason(v, token);
  if (v.ok) {
    FUZZ_CHECK(token.size() <= Verifier::kMaxTokenBytes, "a token over the budget verified");
    FUZZ_CHECK(v.claims.selectors.size() <= Verifier::kMaxSelectors, "%zu selectors", v.claims.selectors.size());
    for (const std::string& s : v.claims.selectors) {
      FUZZ_CHECK(s.size() <= Verifier::kMaxSelectorBytes, "a selector of %zu bytes", s.size());
    }
    if (v.claims.user) {
      FUZZ_CHECK(!v.claims.user->empty() && v.claims.user->size() <= Verifier::kMaxUserBytes, "a user of %zu bytes",
                 v.claims.user->size());
    }
  }
  FUZZ_CHECK(!k.publicOnly->verify(token, kNow).ok, "an HS256 token verified by public keys: %s", show(token).c_str());
  return 0;
}
