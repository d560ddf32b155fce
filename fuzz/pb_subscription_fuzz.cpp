// Fuzz target: PocketBase subscription strings and their ?options= (pb_subscription.hpp).
//
// Input: parts separated by NUL bytes (readable seeds):
//   0 a subscription string, parsed as it is;
//   1 option entries, one per line, "<k><name>=<value>", built into the JSON a
//     client sends ({"query":{name:value}} per line, the top-level name spelt
//     query / QUERY / headers / Headers by k = q Q h H; k = n: a number value,
//     k = x: "query":null), URI-encoded behind "posts/*?options=";
//   2 a decimal number for appendGoFloat.
// Asserted: base is the part before the first '?' (a view into the string);
// options are sorted with one entry per name; header names are snake_cased
// (snakecase() is idempotent and yields [a-z0-9] words joined by single '_');
// every name and value is valid UTF-8; parsing is deterministic. Round trip:
// the options parsed from part 1 are exactly the model's (top-level names
// case-insensitive, repeated names merged, null clearing, later entries
// winning, numbers as Go prints them, invalid UTF-8 as U+FFFD per byte).
// appendGoFloat prints fixed notation that reads back as the same double.
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "pb_subscription.hpp"
#include "simdjson.h"

using namespace ssefanout::pb;
using fuzzutil::show;

namespace {

bool validUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

// Go's handling of invalid UTF-8 in JSON strings: each byte that does not
// begin a well-formed sequence (Unicode Table 3-7) becomes U+FFFD.
std::string goReplace(std::string_view s) {
  std::string out;
  auto in = [](unsigned char c, unsigned lo, unsigned hi) { return c >= lo && c <= hi; };
  for (size_t i = 0; i < s.size();) {
    auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
    unsigned char c = b(0);
    size_t n = 0;
    if (c < 0x80)
      n = 1;
    else if (in(c, 0xc2, 0xdf) && in(b(1), 0x80, 0xbf))
      n = 2;
    else if (c == 0xe0 && in(b(1), 0xa0, 0xbf) && in(b(2), 0x80, 0xbf))
      n = 3;
    else if ((in(c, 0xe1, 0xec) || in(c, 0xee, 0xef)) && in(b(1), 0x80, 0xbf) && in(b(2), 0x80, 0xbf))
      n = 3;
    else if (c == 0xed && in(b(1), 0x80, 0x9f) && in(b(2), 0x80, 0xbf))
      n = 3;
    else if (c == 0xf0 && in(b(1), 0x90, 0xbf) && in(b(2), 0x80, 0xbf) && in(b(3), 0x80, 0xbf))
      n = 4;
    else if (in(c, 0xf1, 0xf3) && in(b(1), 0x80, 0xbf) && in(b(2), 0x80, 0xbf) && in(b(3), 0x80, 0xbf))
      n = 4;
    else if (c == 0xf4 && in(b(1), 0x80, 0x8f) && in(b(2), 0x80, 0xbf) && in(b(3), 0x80, 0xbf))
      n = 4;
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string jsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string encodeURIComponent(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || (c != 0 && std::strchr("-_.!~*'()", c) != nullptr)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void checkSnake(std::string_view in) {
  std::string s = snakecase(in);
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    FUZZ_CHECK(ok, "snakecase(%s) = %s holds %s", show(in).c_str(), show(s).c_str(), show(std::string(1, c)).c_str());
    if (c == '_')
      FUZZ_CHECK(i > 0 && i + 1 < s.size() && s[i + 1] != '_', "snakecase(%s) = %s: stray '_'", show(in).c_str(),
                 show(s).c_str());
  }
  FUZZ_CHECK(snakecase(s) == s, "snakecase(%s) = %s is not idempotent", show(in).c_str(), show(s).c_str());
}

void checkOptions(const SubscriptionOptions& o, std::string_view what) {
  for (const auto* entries : {&o.query, &o.headers}) {
    for (size_t i = 0; i < entries->size(); ++i) {
      const auto& [name, value] = (*entries)[i];
      if (i > 0) FUZZ_CHECK((*entries)[i - 1].first < name, "options of %s not sorted/unique", show(what).c_str());
      FUZZ_CHECK(validUtf8(name) && validUtf8(value), "invalid UTF-8 in the options of %s", show(what).c_str());
    }
  }
  for (const auto& [name, value] : o.headers) {
    FUZZ_CHECK(snakecase(name) == name, "header name %s not snake_cased", show(name).c_str());
    FUZZ_CHECK(o.headerValue(name) && *o.headerValue(name) == value, "headerValue(%s) wrong", show(name).c_str());
  }
  for (const auto& [name, value] : o.query) {
    FUZZ_CHECK(o.queryValue(name) && *o.queryValue(name) == value, "queryValue(%s) wrong", show(name).c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  for (std::string_view p : fuzzutil::split(input, '\0')) parts.emplace_back(p);
  parts.resize(3);

  // 0: any string.
  {
    const std::string& s = parts[0];
    Subscription sub = parseSubscription(s);
    FUZZ_CHECK(sub.base == std::string_view(s).substr(0, s.find('?')), "base of %s is %s", show(s).c_str(),
               show(sub.base).c_str());
    FUZZ_CHECK(sub.base.data() == s.data(), "base does not view the string");
    checkOptions(sub.options, s);
    Subscription again = parseSubscription(s);
    FUZZ_CHECK(again.options.query == sub.options.query && again.options.headers == sub.options.headers,
               "parsing %s is not deterministic", show(s).c_str());
    checkSnake(s);
  }

  // 1: options round trip.
  {
    std::string json = "{";
    std::map<std::string, std::string> query, headers;
    bool first = true;
    for (std::string_view line : fuzzutil::split(parts[1], '\n')) {
      if (line.empty()) continue;
      const char kind = line[0];
      line.remove_prefix(1);
      size_t eq = line.find('=');
      std::string name(line.substr(0, eq));
      std::string value(eq == std::string_view::npos ? std::string_view{} : line.substr(eq + 1));
      std::string top, entry;
      if (kind == 'x') {
        top = "query";
        entry = "null";
        query.clear();
      } else if (kind == 'q' || kind == 'Q' || kind == 'h' || kind == 'H' || kind == 'n') {
        top = kind == 'q' || kind == 'n' ? "query" : kind == 'Q' ? "QUERY" : kind == 'h' ? "headers" : "Headers";
        std::string jsonValue = jsonString(value);
        std::string expectValue = goReplace(value);
        if (kind == 'n') {
          double d = 0;
          auto r = std::from_chars(value.data(), value.data() + value.size(), d);
          if (r.ec != std::errc() || !std::isfinite(d)) continue;
          char buf[64];
          std::snprintf(buf, sizeof buf, "%.17g", d);
          jsonValue = buf;
          expectValue.clear();
          appendGoFloat(d, &expectValue);
          if (d == 0) expectValue = "0";  // "-0" reads as 0 (a documented difference from Go)
        }
        entry = "{" + jsonString(name) + ":" + jsonValue + "}";
        if (kind == 'h' || kind == 'H') {
          std::string snake = snakecase(goReplace(name));
          headers[snake] = expectValue;
        } else {
          query[goReplace(name)] = expectValue;
        }
      } else {
        continue;
      }
      if (!first) json += ",";
      first = false;
      json += jsonString(top) + ":" + entry;
    }
    json += "}";
    const std::string s = "posts/*?a=1&options=" + encodeURIComponent(json) + "&options=x";
    Subscription sub = parseSubscription(s);
    checkOptions(sub.options, s);
    const std::vector<std::pair<std::string, std::string>> wantQuery(query.begin(), query.end());
    const std::vector<std::pair<std::string, std::string>> wantHeaders(headers.begin(), headers.end());
    FUZZ_CHECK(sub.options.query == wantQuery, "query of %s: %zu entries, expected %zu", show(json).c_str(),
               sub.options.query.size(), wantQuery.size());
    FUZZ_CHECK(sub.options.headers == wantHeaders, "headers of %s: %zu entries, expected %zu", show(json).c_str(),
               sub.options.headers.size(), wantHeaders.size());
  }

  // 2: Go's float formatting.
  {
    double d = 0;
    const std::string& t = parts[2];
    auto r = std::from_chars(t.data(), t.data() + t.size(), d);
    if (r.ec == std::errc() && std::isfinite(d)) {
      std::string out;
      appendGoFloat(d, &out);
      FUZZ_CHECK(!out.empty() && out.find_first_of("eE") == std::string::npos, "appendGoFloat(%s) = %s",
                 show(t).c_str(), show(out).c_str());
      double back = 0;
      auto rb = std::from_chars(out.data(), out.data() + out.size(), back);
      FUZZ_CHECK(rb.ec == std::errc() && rb.ptr == out.data() + out.size() && back == d,
                 "appendGoFloat(%.17g) = %s does not read back", d, show(out).c_str());
    }
  }
  return 0;
}
