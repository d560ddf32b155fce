// A transcription of negotiator 1.0.0 lib/encoding.js (parseAcceptEncoding,
// getEncodingPriority, the `preferred` comparator) for the three codings we
// offer, down to its JavaScript details: the header string is latin1 (as
// Node's HTTP parser makes it), so JS whitespace here is 0x09-0x0D, SP and
// 0xA0; q comes from parseFloat (NaN when absent or not a number, which never
// qualifies); `x || y` on numbers treats 0 and NaN alike.
#include "accept_encoding.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

namespace ssefanout::http {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool isJsSpace(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 0x09 && u <= 0x0d) || u == 0x20 || u == 0xa0;
}

std::string_view jsTrim(std::string_view s) {
  while (!s.empty() && isJsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isJsSpace(s.back())) s.remove_suffix(1);
  return s;
}

double jsOr(double a, double b) { return a != 0 && !std::isnan(a) ? a : b; }

bool equalsLowerAscii(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c != lower[i]) return false;
  }
  return true;
}

// JavaScript's parseFloat: leading white space, then the longest prefix that
// is a decimal literal (sign, digits, fraction, exponent) or "Infinity".
double jsParseFloat(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && isJsSpace(s[i])) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (s.substr(i, 8) == "Infinity") {
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  const size_t start = i;
  auto digits = [&]() {
    const size_t d = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - d;
  };
  size_t n = digits();
  if (i < s.size() && s[i] == '.') {
    const size_t dot = i++;
    const size_t fraction = digits();
    if (n == 0 && fraction == 0) i = dot;
    n += fraction;
  }
  if (n == 0) return kNaN;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    const size_t e = i++;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) i = e;
  }
  double v = 0;
  // from_chars takes no '+' and is locale-independent, unlike strtod.
  std::from_chars(s.data() + start, s.data() + i, v, std::chars_format::general);
  return negative ? -v : v;
}

struct Spec {
  std::string_view encoding;
  double q;
  double i;
};

// parseEncoding: /^\s*([^\s;]+)\s*(?:;(.*))?$/ on the trimmed entry, q from
// the first parameter named exactly "q".
bool parseEncoding(std::string_view str, size_t index, Spec* out) {
  size_t k = 0;
  while (k < str.size() && !isJsSpace(str[k]) && str[k] != ';') ++k;
  if (k == 0) return false;
  out->encoding = str.substr(0, k);
  out->q = 1;
  out->i = static_cast<double>(index);
  while (k < str.size() && isJsSpace(str[k])) ++k;
  if (k == str.size()) return true;
  if (str[k] != ';') return false;
  std::string_view params = str.substr(k + 1);
  if (params.find_first_of("\r\n") != std::string_view::npos) return false;  // '.' matches no line terminator
  while (true) {
    const size_t semi = params.find(';');
    const std::string_view p = jsTrim(params.substr(0, semi));
    const size_t eq = p.find('=');
    if (p.substr(0, eq) == "q") {
      if (eq == std::string_view::npos) {
        out->q = kNaN;
      } else {
        const std::string_view rest = p.substr(eq + 1);
        out->q = jsParseFloat(rest.substr(0, rest.find('=')));
      }
      break;
    }
    if (semi == std::string_view::npos) break;
    params.remove_prefix(semi + 1);
  }
  return true;
}

struct Priority {
  double o = -1, q = 0, s = 0;
};

Priority priorityOf(std::string_view coding, const std::vector<Spec>& accepted) {
  Priority best;
  for (const Spec& spec : accepted) {
    double s;
    if (equalsLowerAscii(spec.encoding, coding)) {
      s = 1;
    } else if (spec.encoding == "*") {
      s = 0;
    } else {
      continue;
    }
    if (jsOr(jsOr(best.s - s, best.q - spec.q), best.o - spec.i) < 0) best = Priority{spec.i, spec.q, s};
  }
  return best;
}

}  // namespace

Coding negotiateCoding(std::string_view header) {
  // negotiate() in lib/compression.js: no header is identity.
  if (header.empty()) return Coding::kIdentity;
  std::vector<Spec> accepted;
  bool hasIdentity = false;
  double minQuality = 1;
  size_t parts = 0;
  while (true) {
    const size_t comma = header.find(',');
    Spec spec;
    if (parseEncoding(jsTrim(header.substr(0, comma)), parts, &spec)) {
      accepted.push_back(spec);
      hasIdentity = hasIdentity || equalsLowerAscii(spec.encoding, "identity") || spec.encoding == "*";
      minQuality = std::fmin(minQuality, jsOr(spec.q, 1));
    }
    ++parts;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  if (!hasIdentity) accepted.push_back(Spec{"identity", minQuality, static_cast<double>(parts)});

  // The comparator with `preferred` = [gzip, deflate]: higher q first, then
  // gzip, deflate, identity; only q > 0 qualifies.
  const Coding order[] = {Coding::kGzip, Coding::kDeflate, Coding::kIdentity};
  const std::string_view names[] = {"gzip", "deflate", "identity"};
  Coding best = Coding::kIdentity;
  double bestQ = 0;
  bool found = false;
  for (size_t k = 0; k < 3; ++k) {
    const double q = priorityOf(names[k], accepted).q;
    if (!(q > 0)) continue;
    if (!found || q > bestQ) {
      best = order[k];
      bestQ = q;
      found = true;
    }
  }
  return best;
}

}  // namespace ssefanout::http
