// JWT verification for the native listener's token path (issue 17): compact
// JWS tokens signed with HS256, RS256 or ES256 (RFC 7515, RFC 7518 3.2-3.4),
// verified with OpenSSL (the addon resolves it from the Node process, CMake
// builds link the system's libcrypto), and the claims the listener needs:
// exp/nbf, the topic selectors (Mercure's `mercure.subscribe` by default, the
// namespaced `https://mercure.rocks/` object too) and the user.
//
// A Verifier is built once from at most kMaxKeys keys (rotation) and is then
// immutable: verify() is const and may run on several threads at once (each
// call has its own EVP_MD_CTX and parser state). A refusal carries a short,
// fixed reason: never the token's text, a claim, or a key.
//
// Strict by design: only the configured algorithms (a key verifies only
// tokens of its own algorithm, so an RS256 key never checks an HS256 MAC:
// no algorithm confusion, no `none`), canonical base64url with no padding,
// `crit` refused, `kid` compared when both the header and the key have one,
// an ES256 signature exactly 64 bytes (r || s).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssefanout::auth {

enum class Algorithm { kHS256, kRS256, kES256 };

// "HS256", "RS256", "ES256"; parseAlgorithm is the inverse (false otherwise).
const char* algorithmName(Algorithm a);
bool parseAlgorithm(std::string_view name, Algorithm* out);

struct KeySpec {
  Algorithm algorithm = Algorithm::kHS256;
  // HS256: the secret's bytes; RS256 and ES256: the public key as SPKI DER.
  std::string material;
  std::optional<std::string> kid;
};

struct ClaimsOptions {
  // The topic selectors' claim as a path of object members ("mercure",
  // "subscribe"). When the first member is "mercure", the namespaced
  // "https://mercure.rocks/" object replaces it when present and not null,
  // as the Mercure reference hub reads it.
  std::vector<std::string> topicsPath = {"mercure", "subscribe"};
  // The user's claim (a string of at most kMaxUserBytes); empty: anonymous.
  std::string userClaim = "sub";
  uint32_t clockToleranceSec = 0;
};

// What a verified token grants.
struct Claims {
  std::vector<std::string> selectors;  // the topics claim (empty when absent)
  std::optional<std::string> user;     // from userClaim when present
  std::optional<double> exp, nbf;      // the NumericDates, when present
};

struct Verdict {
  bool ok = false;
  const char* reason = "";  // a refusal's short fixed text
  Claims claims;
};

class Verifier {
 public:
  static constexpr size_t kMaxKeys = 8;
  static constexpr size_t kMaxTokenBytes = 8 * 1024;
  static constexpr size_t kMaxSelectors = 1000;
  static constexpr size_t kMaxSelectorBytes = 1024;
  static constexpr size_t kMaxUserBytes = 1024;
  static constexpr size_t kMaxKidBytes = 256;
  static constexpr uint32_t kMinRsaBits = 2048;
  // JSON nesting a header or payload may have: the claims we read are at
  // most three deep; the rest is bounded by the token's size.
  static constexpr size_t kMaxJsonDepth = 32;

  // The verifier, or null with *error set (a message that never quotes a
  // key): no key or more than kMaxKeys, an empty secret, a DER that does
  // not parse, an RSA key under kMinRsaBits, an EC key off P-256, a key of
  // another type than its algorithm's, an empty topics path.
  static std::shared_ptr<const Verifier> create(std::vector<KeySpec> keys, ClaimsOptions options, std::string* error);

  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // The token (compact JWS) checked at `nowSec` (seconds since the epoch).
  Verdict verify(std::string_view token, int64_t nowSec) const;

  // The time rule verify() applies, on claims it returned: null while they
  // hold at `nowSec`, else the refusal's reason (expired, not yet valid).
  // A cache of verified tokens asks it on every hit.
  const char* timeRefusal(const Claims& claims, int64_t nowSec) const;

  const ClaimsOptions& options() const { return options_; }

 private:
  struct Key;
  Verifier() = default;
  bool verifySignature(const Key& key, std::string_view signingInput, const std::string& signature) const;

  std::vector<std::unique_ptr<Key>> keys_;
  ClaimsOptions options_;
};

// Strict base64url (RFC 4648 section 5, RFC 7515 section 2): no padding, no
// other byte, canonical (the unused bits of the last character are zero).
// Appends to *out; false on anything else.
bool base64UrlDecode(std::string_view in, std::string* out);

}  // namespace ssefanout::auth
