#include "pb_subscription.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "pb_json.hpp"
#include "simdjson.h"

namespace ssefanout::pb {

namespace {

bool isAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isAsciiDigit(char c) { return c >= '0' && c <= '9'; }
bool isAsciiUpper(char c) { return c >= 'A' && c <= 'Z'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// True when every '%' in s starts a valid %XX escape (Go's unescape() check).
bool validEscapes(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || hexValue(s[i + 1]) < 0 || hexValue(s[i + 2]) < 0) return false;
    i += 2;
  }
  return true;
}

// Go's url.QueryUnescape: %XX decoded, '+' is a space; false on a bad escape.
bool queryUnescape(std::string_view s, std::string* out) {
  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return false;
      int hi = hexValue(s[i + 1]);
      int lo = hexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+') {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

// The checks of Go's url.Parse that can fail for a subscription string; on
// success *rawQuery is what u.RawQuery would hold.
bool goUrlParse(std::string_view s, std::string_view* rawQuery) {
  *rawQuery = {};
  size_t hash = s.find('#');
  std::string_view u = s.substr(0, hash);
  if (hash != std::string_view::npos && !validEscapes(s.substr(hash + 1))) return false;
  for (char c : u) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return false;
  }
  if (u == "*") return true;

  // getScheme: letters, then letters/digits/+-. up to ':'.
  bool hasScheme = false;
  std::string_view rest = u;
  for (size_t i = 0; i < u.size(); ++i) {
    char c = u[i];
    if (isAsciiLetter(c)) continue;
    if (isAsciiDigit(c) || c == '+' || c == '-' || c == '.') {
      if (i == 0) break;
      continue;
    }
    if (c == ':') {
      if (i == 0) return false;  // "missing protocol scheme"
      hasScheme = true;
      rest = u.substr(i + 1);
    }
    break;
  }

  size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    *rawQuery = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }

  if (!rest.empty() && rest[0] == '/') {
    // A path (possibly after an authority); Go unescapes it.
    return validEscapes(rest);
  }
  if (hasScheme) return true;  // opaque: kept raw
  std::string_view firstSegment = rest.substr(0, rest.find('/'));
  if (firstSegment.find(':') != std::string_view::npos) return false;
  return validEscapes(rest);
}

// u.Query().Get("options"): the first well-formed "options" pair.
bool findOptions(std::string_view rawQuery, std::string* value) {
  std::string key;
  while (!rawQuery.empty()) {
    size_t amp = rawQuery.find('&');
    std::string_view pair = rawQuery.substr(0, amp);
    rawQuery = amp == std::string_view::npos ? std::string_view{} : rawQuery.substr(amp + 1);
    if (pair.empty() || pair.find(';') != std::string_view::npos) continue;
    size_t eq = pair.find('=');
    std::string_view rawKey = pair.substr(0, eq);
    std::string_view rawValue = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (!queryUnescape(rawKey, &key)) continue;
    if (key != "options") continue;
    if (!queryUnescape(rawValue, value)) continue;
    return true;
  }
  return false;
}

// Go's json decoder turns each byte that does not start a valid UTF-8
// sequence into U+FFFD; simdjson would refuse the document instead.
void replaceInvalidUtf8(std::string* s) {
  if (simdjson::validate_utf8(s->data(), s->size())) return;
  std::string out;
  out.reserve(s->size() + 16);
  const auto* p = reinterpret_cast<const unsigned char*>(s->data());
  size_t n = s->size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (ok && len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (ok && len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ok = false;
    if (ok) {
      out.append(s->data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += 1;
    }
  }
  *s = std::move(out);
}

bool equalsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (isAsciiUpper(x)) x = static_cast<char>(x - 'A' + 'a');
    if (isAsciiUpper(y)) y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// spf13/cast ToString of a value decoded by encoding/json into `any`.
std::string castToString(simdjson::dom::element v) {
  std::string out;
  switch (v.type()) {
    case simdjson::dom::element_type::STRING:
      out = v.get_string().value_unsafe();
      break;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      // encoding/json decodes every number into a float64.
      appendGoFloat(v.get_double().value_unsafe(), &out);
      break;
    case simdjson::dom::element_type::BOOL:
      out = v.get_bool().value_unsafe() ? "true" : "false";
      break;
    default:  // null, object, array
      break;
  }
  return out;
}

using Entries = std::vector<std::pair<std::string, std::string>>;

// Sorts by name keeping the last entry given for each name.
void normalize(Entries* entries) {
  std::stable_sort(entries->begin(), entries->end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Entries out;
  out.reserve(entries->size());
  for (auto& e : *entries) {
    if (!out.empty() && out.back().first == e.first) {
      out.back().second = std::move(e.second);
    } else {
      out.push_back(std::move(e));
    }
  }
  *entries = std::move(out);
}

const std::string* lookup(const Entries& entries, std::string_view name) {
  auto it = std::lower_bound(entries.begin(), entries.end(), name,
                             [](const auto& e, std::string_view n) { return std::string_view(e.first) < n; });
  if (it == entries.end() || it->first != name) return nullptr;
  return &it->second;
}

void decodeOptions(std::string json, SubscriptionOptions* out) {
  replaceInvalidUtf8(&json);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto e = parser.parse(json).get(doc);
  if (e == simdjson::NUMBER_ERROR || e == simdjson::BIGINT_ERROR) {
    std::string widened;
    if (widenBigIntegers(json, &widened)) e = parser.parse(widened).get(doc);
  }
  if (e != simdjson::SUCCESS) return;
  simdjson::dom::object top;
  if (doc.get_object().get(top) != simdjson::SUCCESS) return;

  Entries query, headers;
  for (simdjson::dom::key_value_pair field : top) {
    Entries* target = nullptr;
    bool isHeaders = false;
    if (equalsIgnoreAsciiCase(field.key, "query")) {
      target = &query;
    } else if (equalsIgnoreAsciiCase(field.key, "headers")) {
      target = &headers;
      isHeaders = true;
    } else {
      continue;
    }
    if (field.value.is_null()) {
      target->clear();  // json null sets the map to nil
      continue;
    }
    simdjson::dom::object map;
    if (field.value.get_object().get(map) != simdjson::SUCCESS) continue;  // type error: skipped
    for (simdjson::dom::key_value_pair entry : map) {
      std::string name = isHeaders ? snakecase(entry.key) : std::string(entry.key);
      target->emplace_back(std::move(name), castToString(entry.value));
    }
  }
  normalize(&query);
  normalize(&headers);
  out->query = std::move(query);
  out->headers = std::move(headers);
}

}  // namespace

const std::string* SubscriptionOptions::queryValue(std::string_view name) const { return lookup(query, name); }

const std::string* SubscriptionOptions::headerValue(std::string_view name) const { return lookup(headers, name); }

Subscription parseSubscription(std::string_view s) {
  Subscription sub;
  sub.base = s.substr(0, s.find('?'));
  std::string_view rawQuery;
  if (!goUrlParse(s, &rawQuery)) return sub;
  std::string raw;
  if (!findOptions(rawQuery, &raw) || raw.empty()) return sub;
  decodeOptions(std::move(raw), &sub.options);
  return sub;
}

std::string snakecase(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 4);
  size_t i = 0;
  while (i < s.size()) {
    // Words are runs of ASCII letters and digits; everything else, '_' and
    // every non-ASCII byte included, separates them (Go's [\W_]+).
    while (i < s.size() && !isAsciiLetter(s[i]) && !isAsciiDigit(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && (isAsciiLetter(s[i]) || isAsciiDigit(s[i]))) ++i;
    if (i == start) break;
    if (!out.empty()) out.push_back('_');
    for (size_t k = start; k < i; ++k) {
      char c = s[k];
      if (isAsciiUpper(c) && k > start && !isAsciiUpper(s[k - 1])) out.push_back('_');
      out.push_back(isAsciiUpper(c) ? static_cast<char>(c - 'A' + 'a') : c);
    }
  }
  return out;
}

void appendGoFloat(double d, std::string* out) {
  char buf[512];  // fixed notation of the smallest denormal needs ~330 bytes
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed);
  if (res.ec != std::errc()) return;
  out->append(buf, res.ptr);
}

}  // namespace ssefanout::pb
