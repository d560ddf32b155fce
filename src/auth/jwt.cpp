#include "jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include <cstring>

#include "simdjson.h"

namespace ssefanout::auth {

namespace {

// Refusal reasons: short, fixed, never the token's text (they go into the
// JSON body of a 401 and a WWW-Authenticate challenge, so no quote either).
constexpr const char* kEmpty = "empty token";
constexpr const char* kTooLarge = "token too large";
constexpr const char* kMalformed = "malformed token";
constexpr const char* kAlgorithm = "token algorithm not accepted";
constexpr const char* kKid = "unknown key id";
constexpr const char* kCrit = "critical header parameters are not supported";
constexpr const char* kSignature = "bad token signature";
constexpr const char* kExpired = "token expired";
constexpr const char* kNotYet = "token not yet valid";
constexpr const char* kClaims = "invalid token claims";

constexpr const char* kNamespacedClaim = "https://mercure.rocks/";

int8_t base64UrlValue(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<int8_t>(c - 'A');
  if (c >= 'a' && c <= 'z') return static_cast<int8_t>(c - 'a' + 26);
  if (c >= '0' && c <= '9') return static_cast<int8_t>(c - '0' + 52);
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// The thread's parser: verify() is const and runs on several I/O threads,
// each with its own. Depth bounded (kMaxJsonDepth); capacity grows to the
// largest payload seen, at most a token's size.
simdjson::dom::parser& threadParser() {
  thread_local simdjson::dom::parser parser = [] {
    simdjson::dom::parser p;
    // On failure the first parse allocates (with the default depth, which
    // only a failed allocation of a few KiB could bring about).
    simdjson::error_code e = p.allocate(Verifier::kMaxTokenBytes, Verifier::kMaxJsonDepth);
    (void)e;
    return p;
  }();
  return parser;
}

// Parses a decoded part; the text gets simdjson's padding appended.
bool parseJson(std::string* text, simdjson::dom::object* out) {
  const size_t n = text->size();
  text->append(simdjson::SIMDJSON_PADDING, '\0');
  simdjson::dom::element root;
  if (threadParser().parse(text->data(), n, false).get(root) != simdjson::SUCCESS) return false;
  return root.get_object().get(*out) == simdjson::SUCCESS;
}

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

// A JOSE ES256 signature (r || s, 32 bytes each) as the DER ECDSA-Sig-Value
// OpenSSL verifies; false for any other length.
bool joseToDer(const std::string& jose, std::string* der) {
  if (jose.size() != 64) return false;
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  if (!sig) return false;
  const auto* bytes = reinterpret_cast<const unsigned char*>(jose.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  if (!r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der->resize(static_cast<size_t>(len));
  auto* p = reinterpret_cast<unsigned char*>(der->data());
  return i2d_ECDSA_SIG(sig.get(), &p) == len;
}

// A NumericDate claim (RFC 7519 2): any JSON number.
bool numericDate(const simdjson::dom::element& e, double* out) { return e.get_double().get(*out) == simdjson::SUCCESS; }

}  // namespace

struct Verifier::Key {
  Algorithm algorithm;
  std::string secret;                           // HS256
  std::unique_ptr<EVP_PKEY, EvpPkeyFree> pkey;  // RS256, ES256
  std::optional<std::string> kid;
};

const char* algorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::kHS256:
      return "HS256";
    case Algorithm::kRS256:
      return "RS256";
    case Algorithm::kES256:
      return "ES256";
  }
  return "HS256";
}

bool parseAlgorithm(std::string_view name, Algorithm* out) {
  for (Algorithm a : {Algorithm::kHS256, Algorithm::kRS256, Algorithm::kES256}) {
    if (name == algorithmName(a)) {
      *out = a;
      return true;
    }
  }
  return false;
}

bool base64UrlDecode(std::string_view in, std::string* out) {
  if (in.size() % 4 == 1) return false;
  out->reserve(out->size() + in.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    const int8_t v = base64UrlValue(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Canonical: the bits left over (2 or 4) are zero, so one byte string has
  // one encoding.
  return (acc & ((1u << bits) - 1)) == 0;
}

std::shared_ptr<const Verifier> Verifier::create(std::vector<KeySpec> keys, ClaimsOptions options, std::string* error) {
  if (keys.empty() || keys.size() > kMaxKeys) {
    *error = "between 1 and " + std::to_string(kMaxKeys) + " keys are needed";
    return nullptr;
  }
  if (options.topicsPath.empty()) {
    *error = "the topics claim path is empty";
    return nullptr;
  }
  std::shared_ptr<Verifier> v(new Verifier());
  for (size_t i = 0; i < keys.size(); ++i) {
    KeySpec& spec = keys[i];
    const std::string where = "key " + std::to_string(i) + " (" + algorithmName(spec.algorithm) + ")";
    auto key = std::make_unique<Key>();
    key->algorithm = spec.algorithm;
    key->kid = std::move(spec.kid);
    if (key->kid && key->kid->size() > kMaxKidBytes) {
      *error = where + ": the kid is longer than " + std::to_string(kMaxKidBytes) + " bytes";
      return nullptr;
    }
    if (spec.algorithm == Algorithm::kHS256) {
      if (spec.material.empty()) {
        *error = where + ": the secret is empty";
        return nullptr;
      }
      key->secret = std::move(spec.material);
    } else {
      const auto* p = reinterpret_cast<const unsigned char*>(spec.material.data());
      const unsigned char* const end = p + spec.material.size();
      key->pkey.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(spec.material.size())));
      if (!key->pkey || p != end) {
        *error = where + ": the public key (SPKI DER) does not parse";
        return nullptr;
      }
      const int type = EVP_PKEY_get_base_id(key->pkey.get());
      if (spec.algorithm == Algorithm::kRS256) {
        if (type != EVP_PKEY_RSA) {
          *error = where + ": RS256 needs an RSA key (rsaEncryption)";
          return nullptr;
        }
        if (EVP_PKEY_get_bits(key->pkey.get()) < static_cast<int>(kMinRsaBits)) {
          *error = where + ": RS256 needs an RSA key of at least " + std::to_string(kMinRsaBits) + " bits";
          return nullptr;
        }
      } else {
        char group[64] = "";
        size_t len = 0;
        if (type != EVP_PKEY_EC || EVP_PKEY_get_group_name(key->pkey.get(), group, sizeof group, &len) != 1 ||
            std::string_view(group, len) != SN_X9_62_prime256v1) {
          *error = where + ": ES256 needs an EC key on P-256 (prime256v1)";
          return nullptr;
        }
      }
    }
    v->keys_.push_back(std::move(key));
  }
  v->options_ = std::move(options);
  return v;
}

Verifier::~Verifier() = default;

bool Verifier::verifySignature(const Key& key, std::string_view input, const std::string& signature) const {
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (key.algorithm == Algorithm::kHS256) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int macLen = 0;
    if (signature.size() != 32) return false;
    if (!HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()), data, input.size(), mac, &macLen) ||
        macLen != 32) {
      return false;
    }
    return CRYPTO_memcmp(mac, signature.data(), 32) == 0;
  }
  std::string der;
  const std::string* sig = &signature;
  if (key.algorithm == Algorithm::kES256) {
    if (!joseToDer(signature, &der)) return false;  // a DER signature, or any other length
    sig = &der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) != 1) return false;
  // RSA: PKCS#1 v1.5, OpenSSL's default padding for an RSA key.
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(), data,
                          input.size()) == 1;
}

const char* Verifier::timeRefusal(const Claims& claims, int64_t nowSec) const {
  const double tolerance = static_cast<double>(options_.clockToleranceSec);
  const double now = static_cast<double>(nowSec);
  if (claims.exp && *claims.exp <= now - tolerance) return kExpired;  // as jose: expired at exp itself
  if (claims.nbf && *claims.nbf > now + tolerance) return kNotYet;
  return nullptr;
}

Verdict Verifier::verify(std::string_view token, int64_t nowSec) const {
  Verdict out;
  auto refuse = [&out](const char* reason) {
    out.ok = false;
    out.reason = reason;
    out.claims = Claims();
    return out;
  };
  if (token.empty()) return refuse(kEmpty);
  if (token.size() > kMaxTokenBytes) return refuse(kTooLarge);
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return refuse(kMalformed);
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) return refuse(kMalformed);
  const std::string_view headerPart = token.substr(0, dot1);
  const std::string_view payloadPart = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signaturePart = token.substr(dot2 + 1);
  if (headerPart.empty() || payloadPart.empty() || signaturePart.empty()) return refuse(kMalformed);

  // ---- the header: which key
  std::string header;
  if (!base64UrlDecode(headerPart, &header)) return refuse(kMalformed);
  std::string alg;
  std::optional<std::string> kid;
  {
    simdjson::dom::object h;
    if (!parseJson(&header, &h)) return refuse(kMalformed);
    int algs = 0, kids = 0;
    for (auto field : h) {
      if (field.key == "crit") return refuse(kCrit);
      if (field.key == "alg") {
        std::string_view s;
        if (++algs > 1 || field.value.get_string().get(s) != simdjson::SUCCESS) return refuse(kMalformed);
        alg.assign(s);
      } else if (field.key == "kid") {
        std::string_view s;
        if (++kids > 1 || field.value.get_string().get(s) != simdjson::SUCCESS) return refuse(kMalformed);
        kid.emplace(s);
      }
    }
    if (algs == 0) return refuse(kMalformed);
  }
  Algorithm algorithm;
  if (!parseAlgorithm(alg, &algorithm)) return refuse(kAlgorithm);

  std::string signature;
  if (!base64UrlDecode(signaturePart, &signature)) return refuse(kMalformed);
  const std::string_view signingInput = token.substr(0, dot2);
  bool anyOfAlg = false, anyOfKid = false, verified = false;
  for (const auto& key : keys_) {
    if (key->algorithm != algorithm) continue;
    anyOfAlg = true;
    if (kid && key->kid && *kid != *key->kid) continue;
    anyOfKid = true;
    if (verifySignature(*key, signingInput, signature)) {
      verified = true;
      break;
    }
  }
  if (!anyOfAlg) return refuse(kAlgorithm);
  if (!anyOfKid) return refuse(kKid);
  if (!verified) return refuse(kSignature);

  // ---- the payload (authenticated now): dates, topics, user
  std::string payload;
  if (!base64UrlDecode(payloadPart, &payload)) return refuse(kMalformed);
  simdjson::dom::object root;
  if (!parseJson(&payload, &root)) return refuse(kMalformed);
  const std::string& firstMember = options_.topicsPath.front();
  const bool mercurePath = firstMember == "mercure";
  std::optional<simdjson::dom::element> exp, nbf, iat, user, first, namespaced;
  for (auto field : root) {
    std::optional<simdjson::dom::element>* slot = nullptr;
    if (field.key == "exp") {
      slot = &exp;
    } else if (field.key == "nbf") {
      slot = &nbf;
    } else if (field.key == "iat") {
      slot = &iat;
    } else if (!options_.userClaim.empty() && field.key == options_.userClaim) {
      slot = &user;
    } else if (field.key == firstMember) {
      slot = &first;
    } else if (mercurePath && field.key == kNamespacedClaim) {
      slot = &namespaced;
    }
    // A claim we read, given twice: JSON.parse keeps the last, simdjson the
    // first; neither is taken.
    if (!slot) continue;
    if (slot->has_value()) return refuse(kClaims);
    *slot = field.value;
  }
  double t;
  if (iat && !numericDate(*iat, &t)) return refuse(kClaims);
  if (exp) {
    if (!numericDate(*exp, &t)) return refuse(kClaims);
    out.claims.exp = t;
  }
  if (nbf) {
    if (!numericDate(*nbf, &t)) return refuse(kClaims);
    out.claims.nbf = t;
  }
  if (const char* reason = timeRefusal(out.claims, nowSec)) return refuse(reason);

  // The topics claim: the path's members, each an object (null or absent:
  // no selectors); the namespaced Mercure claim replaces `mercure`.
  std::optional<simdjson::dom::element> at = first;
  if (namespaced && !namespaced->is_null()) at = namespaced;
  for (size_t i = 1; at && i < options_.topicsPath.size(); ++i) {
    if (at->is_null()) {
      at.reset();
      break;
    }
    simdjson::dom::object o;
    if (at->get_object().get(o) != simdjson::SUCCESS) return refuse(kClaims);
    // The member given twice is refused as at the top (at_key would take
    // the first).
    std::optional<simdjson::dom::element> next;
    for (auto field : o) {
      if (field.key != options_.topicsPath[i]) continue;
      if (next) return refuse(kClaims);
      next = field.value;
    }
    if (!next) {
      at.reset();
      break;
    }
    at = *next;
  }
  if (at && !at->is_null()) {
    simdjson::dom::array list;
    if (at->get_array().get(list) != simdjson::SUCCESS || list.size() > kMaxSelectors) return refuse(kClaims);
    out.claims.selectors.reserve(list.size());
    for (auto item : list) {
      std::string_view s;
      if (item.get_string().get(s) != simdjson::SUCCESS || s.size() > kMaxSelectorBytes) return refuse(kClaims);
      out.claims.selectors.emplace_back(s);
    }
  }
  if (user) {
    std::string_view s;
    if (user->get_string().get(s) != simdjson::SUCCESS || s.empty() || s.size() > kMaxUserBytes) {
      return refuse(kClaims);
    }
    out.claims.user.emplace(s);
  }
  out.ok = true;
  out.reason = "";
  return out;
}

}  // namespace ssefanout::auth
