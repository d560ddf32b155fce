#include "pb_like.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace ssefanout::pb {
namespace {

// Pattern elements: a literal byte (ASCII-folded, 0..255), _ or a run of %.
constexpr int16_t kAny = -1;
constexpr int16_t kPercent = -2;
constexpr size_t kNone = static_cast<size_t>(-1);
// A core character that is _ (no UTF-8 character packs to this value).
constexpr uint32_t kAnyCode = UINT32_MAX;

char foldAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
int16_t literal(char c) { return static_cast<int16_t>(static_cast<unsigned char>(foldAscii(c))); }

size_t utf8Len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xe) return 3;
  if ((c >> 3) == 0x1e) return 4;
  return 1;
}

bool hasWildcard(const std::vector<int16_t>& elems, size_t b, size_t e) {
  for (size_t j = b; j < e; ++j) {
    if (elems[j] == kAny) return true;
  }
  return false;
}

bool isContinuation(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

// Per-thread buffers, grown once and reused: the steady state allocates
// nothing.
struct Scratch {
  std::vector<int16_t> elems;
  std::vector<uint32_t> failure;                      // KMP
  std::vector<uint32_t> codes;                        // Shift-And: the core's characters
  std::vector<std::pair<uint32_t, uint32_t>> sorted;  // (code, position) of its literal characters
  struct Entry {
    uint32_t word;
    uint64_t bits;
  };
  std::vector<Entry> entries;                       // per code, its nonzero mask words
  std::vector<std::pair<uint32_t, uint32_t>> wide;  // non-ASCII code -> first entry (sorted by code)
  std::vector<uint32_t> wideEnd;                    // one past its last entry
  uint32_t asciiBegin[128] = {};
  uint32_t asciiEnd[128] = {};
  std::vector<uint64_t> any, state, shifted;
};
thread_local Scratch tLike;

// Tokenizes pattern into *out; false when it ends in a lone backslash (it
// then matches nothing).
bool tokenize(std::string_view p, std::vector<int16_t>* out) {
  out->clear();
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '%') {
      if (out->empty() || out->back() != kPercent) out->push_back(kPercent);
    } else if (c == '_') {
      out->push_back(kAny);
    } else if (c == '\\') {
      if (i + 1 >= p.size()) return false;
      out->push_back(literal(p[++i]));
    } else {
      out->push_back(literal(c));
    }
  }
  return true;
}

// The characters of elems[b, e) (no %): a literal lead byte and the literal
// bytes its length announces make one code, _ is kAnyCode. Appends to *codes.
void coreCodes(const std::vector<int16_t>& elems, size_t b, size_t e, std::vector<uint32_t>* codes) {
  for (size_t j = b; j < e;) {
    if (elems[j] == kAny) {
      codes->push_back(kAnyCode);
      ++j;
      continue;
    }
    auto lead = static_cast<unsigned char>(elems[j]);
    uint32_t code = lead;
    size_t len = utf8Len(lead);
    size_t k = 1;
    for (; k < len && j + k < e && elems[j + k] >= 0; ++k) code |= static_cast<uint32_t>(elems[j + k]) << (8 * k);
    codes->push_back(code);
    j += k;
  }
}

class Matcher {
 public:
  Matcher(std::string_view text, Scratch& s) : t_(text), n_(text.size()), s_(s) {}

  uint64_t work = 0;

  size_t charLen(size_t pos) const { return std::min(utf8Len(static_cast<unsigned char>(t_[pos])), n_ - pos); }

  // Skips k characters from pos; kNone when the text ends first.
  size_t skip(size_t pos, size_t k) {
    for (size_t i = 0; i < k; ++i) {
      ++work;
      if (pos >= n_) return kNone;
      pos += charLen(pos);
    }
    return pos;
  }

  // elems[b, e) matched at pos; the end, or kNone.
  size_t forward(size_t b, size_t e, size_t pos) {
    const auto& el = s_.elems;
    for (size_t j = b; j < e; ++j) {
      ++work;
      if (pos >= n_) return kNone;
      if (el[j] == kAny) {
        pos += charLen(pos);
      } else {
        if (literal(t_[pos]) != el[j]) return kNone;
        ++pos;
      }
    }
    return pos;
  }

  // elems[b, e) matched so that it ends at the text end and starts at or
  // after floor; whether it does.
  bool backward(size_t b, size_t e, size_t floor) {
    const auto& el = s_.elems;
    size_t pos = n_;
    for (size_t j = e; j-- > b;) {
      ++work;
      if (pos <= floor) return false;
      if (el[j] == kAny) {
        --pos;
        while (pos > floor && isContinuation(t_[pos])) {
          ++work;
          --pos;
        }
      } else {
        if (literal(t_[pos - 1]) != el[j]) return false;
        --pos;
      }
    }
    return true;
  }

  // The end of the leftmost occurrence of the literal core elems[b, e) at or
  // after pos (KMP over ASCII-folded bytes), or kNone.
  size_t findLiteral(size_t b, size_t e, size_t pos) {
    const int16_t* p = s_.elems.data() + b;
    const size_t len = e - b;
    auto& failure = s_.failure;
    failure.assign(len, 0);
    for (size_t i = 1, k = 0; i < len; ++i) {
      ++work;
      while (k > 0 && p[i] != p[k]) {
        ++work;
        k = failure[k - 1];
      }
      if (p[i] == p[k]) ++k;
      failure[i] = static_cast<uint32_t>(k);
    }
    for (size_t q = 0; pos < n_; ++pos) {
      ++work;
      int16_t c = literal(t_[pos]);
      while (q > 0 && p[q] != c) {
        ++work;
        q = failure[q - 1];
      }
      if (p[q] == c) ++q;
      if (q == len) return pos + 1;
    }
    return kNone;
  }

  // The end of the leftmost occurrence of the core elems[b, e) (holding _) at
  // or after pos, by Shift-And over characters: bit j of the state is set
  // when the core's first j + 1 characters end at the current character.
  // Masks are stored per code as their nonzero words only, so the tables
  // stay O(L) for a core of L characters; a step costs O(ceil(L / 64)).
  size_t findWithWildcards(size_t b, size_t e, size_t pos) {
    auto& codes = s_.codes;
    codes.clear();
    coreCodes(s_.elems, b, e, &codes);
    const size_t len = codes.size();
    const size_t words = (len + 63) / 64;
    work += len;
    // Every element takes at least one byte: a text shorter than the core
    // cannot hold it, and a text only slightly longer has few places to try.
    const size_t minBytes = e - b;
    if (n_ - pos < minBytes) return kNone;
    const size_t places = n_ - pos - minBytes + 1;
    if (words > 1 && places * len <= (n_ - pos) * words) {
      for (; pos < n_ && n_ - pos >= minBytes; pos += charLen(pos)) {
        ++work;
        size_t end = forward(b, e, pos);
        if (end != kNone) return end;
      }
      return kNone;
    }
    s_.any.assign(words, 0);
    s_.state.assign(words, 0);
    s_.shifted.assign(words, 0);
    auto& sorted = s_.sorted;
    sorted.clear();
    for (size_t j = 0; j < len; ++j) {
      if (codes[j] == kAnyCode) {
        s_.any[j / 64] |= uint64_t{1} << (j % 64);
      } else {
        sorted.emplace_back(codes[j], static_cast<uint32_t>(j));
      }
    }
    uint64_t compares = 0;
    std::sort(sorted.begin(), sorted.end(), [&compares](const auto& x, const auto& y) {
      ++compares;
      return x < y;
    });
    work += compares;
    auto& entries = s_.entries;
    entries.clear();
    s_.wide.clear();
    s_.wideEnd.clear();
    for (size_t i = 0; i < sorted.size(); ++i) {
      ++work;
      const auto [code, j] = sorted[i];
      const bool first = i == 0 || sorted[i - 1].first != code;
      if (first) {
        if (code < 128) {
          s_.asciiBegin[code] = static_cast<uint32_t>(entries.size());
        } else {
          s_.wide.emplace_back(code, static_cast<uint32_t>(entries.size()));
        }
      }
      if (first || entries.back().word != j / 64) entries.push_back({j / 64, 0});
      entries.back().bits |= uint64_t{1} << (j % 64);
      const bool last = i + 1 == sorted.size() || sorted[i + 1].first != code;
      if (last) {
        if (code < 128) {
          s_.asciiEnd[code] = static_cast<uint32_t>(entries.size());
        } else {
          s_.wideEnd.push_back(static_cast<uint32_t>(entries.size()));
        }
      }
    }

    const uint64_t* any = s_.any.data();
    uint64_t* state = s_.state.data();
    uint64_t* shifted = s_.shifted.data();
    const size_t lastWord = (len - 1) / 64;
    const uint64_t lastBit = uint64_t{1} << ((len - 1) % 64);
    size_t found = kNone;
    while (pos < n_) {
      const size_t clen = charLen(pos);
      auto lead = static_cast<unsigned char>(foldAscii(t_[pos]));
      uint32_t code = lead;
      for (size_t k = 1; k < clen; ++k) {
        code |= static_cast<uint32_t>(static_cast<unsigned char>(t_[pos + k])) << (8 * k);
      }
      pos += clen;
      uint64_t carry = 1;
      for (size_t w = 0; w < words; ++w) {
        const uint64_t s = (state[w] << 1) | carry;
        carry = state[w] >> 63;
        shifted[w] = s;
        state[w] = s & any[w];
      }
      work += words;
      uint32_t from = 0, to = 0;
      if (code < 128) {
        from = s_.asciiBegin[code];
        to = s_.asciiEnd[code];
      } else if (!s_.wide.empty()) {
        size_t lo = 0, hi = s_.wide.size();
        while (lo < hi) {
          ++work;
          size_t mid = (lo + hi) / 2;
          if (s_.wide[mid].first < code) {
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
        if (lo < s_.wide.size() && s_.wide[lo].first == code) {
          from = s_.wide[lo].second;
          to = s_.wideEnd[lo];
        }
      }
      for (uint32_t i = from; i < to; ++i) {
        ++work;
        state[entries[i].word] |= shifted[entries[i].word] & entries[i].bits;
      }
      if (state[lastWord] & lastBit) {
        found = pos;
        break;
      }
    }
    // Leave the ASCII ranges empty for the next core.
    for (const auto& [code, j] : sorted) {
      if (code < 128) s_.asciiBegin[code] = s_.asciiEnd[code] = 0;
    }
    work += sorted.size();
    return found;
  }

  bool run() {
    const auto& el = s_.elems;
    const size_t m = el.size();
    // Segment bounds: elems[segStart, segEnd) between two % (or the ends).
    size_t segEnd = 0;
    while (segEnd < m && el[segEnd] != kPercent) ++segEnd;
    work += segEnd;
    if (segEnd == m) return forward(0, m, 0) == n_;
    size_t cur = forward(0, segEnd, 0);
    if (cur == kNone) return false;
    while (true) {
      const size_t b = segEnd + 1;
      size_t e = b;
      while (e < m && el[e] != kPercent) ++e;
      work += e - b + 1;
      segEnd = e;
      if (e == m) return b == e || backward(b, e, cur);
      // A middle segment: skip its leading _, find its core, skip its trailing _.
      size_t lead = 0;
      while (b + lead < e && el[b + lead] == kAny) ++lead;
      cur = skip(cur, lead);
      if (cur == kNone) return false;
      if (b + lead == e) continue;
      size_t trail = 0;
      while (el[e - 1 - trail] == kAny) ++trail;
      const size_t cb = b + lead, ce = e - trail;
      const bool wildcards = hasWildcard(el, cb, ce);
      work += ce - cb;
      cur = wildcards ? findWithWildcards(cb, ce, cur) : findLiteral(cb, ce, cur);
      if (cur == kNone) return false;
      cur = skip(cur, trail);
      if (cur == kNone) return false;
    }
  }

 private:
  std::string_view t_;
  size_t n_;
  Scratch& s_;
};

}  // namespace

bool likeMatch(std::string_view text, std::string_view pattern, uint64_t* steps) {
  Scratch& s = tLike;
  if (!tokenize(pattern, &s.elems)) {
    if (steps) *steps = pattern.size();
    return false;
  }
  Matcher matcher(text, s);
  matcher.work = pattern.size();
  bool r = matcher.run();
  if (steps) *steps = matcher.work;
  return r;
}

bool likePatternBounded(std::string_view pattern, std::string* why) {
  std::vector<int16_t> elems;
  if (!tokenize(pattern, &elems)) return true;  // matches nothing, at no cost
  std::vector<uint32_t> codes;
  size_t b = 0;
  while (b < elems.size() && elems[b] != kPercent) ++b;  // the first segment: matched in place
  while (b < elems.size()) {
    size_t s = b + 1;
    size_t e = s;
    while (e < elems.size() && elems[e] != kPercent) ++e;
    if (e == elems.size()) break;  // the last segment: matched in place
    while (s < e && elems[s] == kAny) ++s;
    size_t ce = e;
    while (ce > s && elems[ce - 1] == kAny) --ce;
    if (hasWildcard(elems, s, ce)) {
      codes.clear();
      coreCodes(elems, s, ce, &codes);
      if (codes.size() > kMaxWildcardCore) {
        *why = "a part between two % holds _ and spans " + std::to_string(codes.size()) +
               " characters from its first to its last literal (limit " + std::to_string(kMaxWildcardCore) + ")";
        return false;
      }
    }
    b = e;
  }
  return true;
}

}  // namespace ssefanout::pb
