// KeyedHash: SipHash-2-4 (Aumasson and Bernstein, 2012) with a per-process
// random key, for hash tables whose keys a client chooses (subscription
// strings, identities, rule texts). libstdc++'s std::hash<std::string> has a
// fixed seed: anyone can precompute strings that share a bucket and make
// every lookup linear. Written from the paper's description; checked against
// its test vector (test/cpp/core/keyed_hash_test.cpp).
//
// processKey() draws 128 bits from std::random_device once, on first use
// (thread-safe static initialisation). Pure functions otherwise.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

namespace ssefanout {

inline uint64_t siphash24(const std::array<uint64_t, 2>& key, std::string_view data) {
  auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
  uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
  uint64_t v3 = 0x7465646279746573ULL ^ key[1];
  auto round = [&] {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  };
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t m = 0;
    for (int k = 7; k >= 0; --k) m = (m << 8) | p[i + static_cast<size_t>(k)];  // little-endian
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  // The last block: the remaining bytes, and the length's low byte on top.
  uint64_t b = static_cast<uint64_t>(n & 0xff) << 56;
  for (size_t k = 0; k < n - whole; ++k) b |= static_cast<uint64_t>(p[whole + k]) << (8 * k);
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

inline const std::array<uint64_t, 2>& processHashKey() {
  static const std::array<uint64_t, 2> key = [] {
    std::random_device rd;
    std::array<uint64_t, 2> k{};
    for (auto& w : k) w = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    return k;
  }();
  return key;
}

// A transparent hasher for std::unordered_map<std::string, T, KeyedHash,
// std::equal_to<>>: lookups by std::string_view allocate nothing.
struct KeyedHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return static_cast<size_t>(siphash24(processHashKey(), s)); }
  size_t operator()(const std::string& s) const { return (*this)(std::string_view(s)); }
  size_t operator()(const char* s) const { return (*this)(std::string_view(s)); }
};

}  // namespace ssefanout
