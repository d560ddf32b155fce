// Keys and tokens made with OpenSSL for the verifier's tests, fuzz target and
// benchmark: EC P-256, RSA 2048 and HMAC secrets; tokens signed as a JOSE
// library signs them (ES256 as r || s). Test code: aborts on an OpenSSL
// failure rather than reporting it.
#pragma once

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace ssefanout::auth::testing {

inline std::string base64Url(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

inline void need(bool ok) {
  if (!ok) std::abort();
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

inline Pkey rsaKey(unsigned bits = 2048) {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  need(k != nullptr);
  return k;
}

inline Pkey ecKey(const char* curve = "P-256") {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  need(k != nullptr);
  return k;
}

// The public half as SPKI DER (what the verifier takes) and as PEM.
inline std::string spkiDer(EVP_PKEY* k) {
  int len = i2d_PUBKEY(k, nullptr);
  need(len > 0);
  std::string out(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  need(i2d_PUBKEY(k, &p) == len);
  return out;
}

inline std::string spkiPem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  need(bio && PEM_write_bio_PUBKEY(bio, k) == 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

inline std::string hmacSha256(std::string_view secret, std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  need(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len) != nullptr);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// An RS256 signature, or an ES256 one in DER (as OpenSSL makes it).
inline std::string digestSign(EVP_PKEY* k, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  need(ctx && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k) == 1);
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  need(EVP_DigestSign(ctx, nullptr, &len, data, input.size()) == 1);
  std::string out(len, '\0');
  need(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, data, input.size()) == 1);
  out.resize(len);
  EVP_MD_CTX_free(ctx);
  return out;
}

// A DER ECDSA signature as JOSE has it: r || s, 32 bytes each.
inline std::string derToJose(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  need(sig != nullptr);
  std::string out(64, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  need(BN_bn2binpad(ECDSA_SIG_get0_r(sig), o, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), o + 32, 32) == 32);
  ECDSA_SIG_free(sig);
  return out;
}

enum class Sign { kHS256, kRS256, kES256, kES256Der };

// header and payload are JSON texts; `key` is the secret (HS256) or unused.
inline std::string token(std::string_view header, std::string_view payload, Sign how, EVP_PKEY* pkey,
                         std::string_view secret = {}) {
  std::string input = base64Url(header) + "." + base64Url(payload);
  std::string sig;
  switch (how) {
    case Sign::kHS256:
      sig = hmacSha256(secret, input);
      break;
    case Sign::kRS256:
      sig = digestSign(pkey, input);
      break;
    case Sign::kES256:
      sig = derToJose(digestSign(pkey, input));
      break;
    case Sign::kES256Der:
      sig = digestSign(pkey, input);
      break;
  }
  return input + "." + base64Url(sig);
}

}  // namespace ssefanout::auth::testing
