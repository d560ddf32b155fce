#include "pb_json.hpp"

namespace ssefanout::pb {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Whether the digits of an integer (no sign, no leading zeros in valid JSON)
// exceed what simdjson stores: UINT64_MAX for a positive, -INT64_MIN for a
// negative one.
bool beyond64Bits(std::string_view digits, bool negative) {
  const std::string_view limit =
      negative ? std::string_view("9223372036854775808") : std::string_view("18446744073709551615");
  if (digits.size() != limit.size()) return digits.size() > limit.size();
  return digits > limit;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of a "\uXXXX" escape starting at text[i], or -1.
int escapedUnit(std::string_view text, size_t i) {
  if (i + 6 > text.size() || text[i] != '\\' || text[i + 1] != 'u') return -1;
  int v = 0;
  for (size_t k = i + 2; k < i + 6; ++k) {
    int h = hexValue(text[k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

}  // namespace

bool replaceLoneSurrogates(std::string_view text, std::string* out) {
  bool changed = false;
  out->assign(text);
  for (size_t i = 0; i + 1 < out->size(); ++i) {
    if ((*out)[i] != '\\') continue;
    int unit = escapedUnit(*out, i);
    if (unit < 0) {
      ++i;  // another escape: skip the escaped character
      continue;
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      int next = escapedUnit(*out, i + 6);
      if (next >= 0xDC00 && next <= 0xDFFF) {
        i += 11;  // a pair
        continue;
      }
    } else if (unit < 0xDC00 || unit > 0xDFFF) {
      i += 5;
      continue;
    }
    out->replace(i + 2, 4, "fffd");
    changed = true;
    i += 5;
  }
  return changed;
}

bool widenBigIntegers(std::string_view json, std::string* out) {
  out->clear();
  bool changed = false;
  size_t copied = 0;  // json[0, copied) is in *out
  size_t i = 0;
  const size_t n = json.size();
  while (i < n) {
    char c = json[i];
    if (c == '"') {
      for (++i; i < n && json[i] != '"'; ++i) {
        if (json[i] == '\\') ++i;
      }
      ++i;
      continue;
    }
    if (c != '-' && !isDigit(c)) {
      ++i;
      continue;
    }
    bool negative = c == '-';
    if (negative) ++i;
    size_t digitsStart = i;
    while (i < n && isDigit(json[i])) ++i;
    size_t digitsEnd = i;
    bool integer = true;
    while (i < n && (isDigit(json[i]) || json[i] == '.' || json[i] == 'e' || json[i] == 'E' || json[i] == '+' ||
                     json[i] == '-')) {
      integer = false;
      ++i;
    }
    if (!integer || !beyond64Bits(json.substr(digitsStart, digitsEnd - digitsStart), negative)) continue;
    out->append(json.substr(copied, digitsEnd - copied));
    out->append(".0");
    copied = digitsEnd;
    changed = true;
  }
  if (changed) out->append(json.substr(copied));
  return changed;
}

}  // namespace ssefanout::pb
