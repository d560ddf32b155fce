// Micro-benchmarks of Verifier::verify (src/auth/jwt.hpp): the cost of one
// token on an I/O thread of the native listener's token path, per algorithm.
// The token is a typical Mercure subscriber's (a user, an exp, two
// selectors); each case is checked to verify before it is timed (and a
// tampered one to be refused), else it reports an error instead of a time.
// Items/s are verified tokens.
//
//   BM_Verify/HS256, RS256 (2048-bit key), ES256 (P-256): a good token.
//   BM_VerifyBadSignature/<alg>: the same token with a flipped signature
//                                 byte (what a forged-token storm costs).
//   BM_VerifyMalformed: a token refused before any cryptography.
#include <benchmark/benchmark.h>

#include <string>

#include "auth/jwt_signer.hpp"
#include "jwt.hpp"

namespace {

using namespace ssefanout::auth;

constexpr int64_t kNow = 1700000000;
const char kSecret[] = "a-benchmark-secret-0123456789abcd";
const char kPayload[] =
    R"({"sub":"user-42","exp":1800000000,"mercure":{"subscribe":["https://example.com/books/{id}","/news"]}})";

struct Fixture {
  std::shared_ptr<const Verifier> verifier;
  std::string tokens[3];
};

const Fixture& fixture() {
  static const Fixture f = [] {
    testing::Pkey rsa = testing::rsaKey();
    testing::Pkey ec = testing::ecKey();
    std::string error;
    Fixture out;
    out.verifier = Verifier::create({KeySpec{Algorithm::kHS256, kSecret, std::nullopt},
                                     KeySpec{Algorithm::kRS256, testing::spkiDer(rsa.get()), std::nullopt},
                                     KeySpec{Algorithm::kES256, testing::spkiDer(ec.get()), std::nullopt}},
                                    {}, &error);
    out.tokens[0] = testing::token(R"({"alg":"HS256","typ":"JWT"})", kPayload, testing::Sign::kHS256, nullptr, kSecret);
    out.tokens[1] = testing::token(R"({"alg":"RS256","typ":"JWT"})", kPayload, testing::Sign::kRS256, rsa.get());
    out.tokens[2] = testing::token(R"({"alg":"ES256","typ":"JWT"})", kPayload, testing::Sign::kES256, ec.get());
    return out;
  }();
  return f;
}

// The token with its signature's first byte changed (still canonical base64url).
std::string tampered(std::string t) {
  char& c = t[t.rfind('.') + 1];
  c = c == 'A' ? 'B' : 'A';
  return t;
}

void BM_Verify(benchmark::State& state, int alg) {
  const Fixture& f = fixture();
  const std::string& token = f.tokens[alg];
  const Verdict v = f.verifier->verify(token, kNow);
  if (!v.ok || v.claims.selectors.size() != 2 || !v.claims.user)
    return state.SkipWithError("the token does not verify");
  for (auto _ : state) benchmark::DoNotOptimize(f.verifier->verify(token, kNow));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(token.size()));
}

void BM_VerifyBadSignature(benchmark::State& state, int alg) {
  const Fixture& f = fixture();
  const std::string token = tampered(f.tokens[alg]);
  if (f.verifier->verify(token, kNow).ok) return state.SkipWithError("a tampered token verified");
  for (auto _ : state) benchmark::DoNotOptimize(f.verifier->verify(token, kNow));
  state.SetItemsProcessed(state.iterations());
}

void BM_VerifyMalformed(benchmark::State& state) {
  const Fixture& f = fixture();
  const std::string token = "eyJhbGciOiJIUzI1NiJ9.e30.a+b";
  if (f.verifier->verify(token, kNow).ok) return state.SkipWithError("a malformed token verified");
  for (auto _ : state) benchmark::DoNotOptimize(f.verifier->verify(token, kNow));
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK_CAPTURE(BM_Verify, HS256, 0);
BENCHMARK_CAPTURE(BM_Verify, RS256, 1);
BENCHMARK_CAPTURE(BM_Verify, ES256, 2);
BENCHMARK_CAPTURE(BM_VerifyBadSignature, HS256, 0);
BENCHMARK_CAPTURE(BM_VerifyBadSignature, RS256, 1);
BENCHMARK_CAPTURE(BM_VerifyBadSignature, ES256, 2);
BENCHMARK(BM_VerifyMalformed);
