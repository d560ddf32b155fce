// Urlencoded parsing after the WHATWG URL standard: split on '&', then on the
// first '=', '+' to space, percent-decode, then "UTF-8 decode without BOM"
// (WHATWG Encoding: each maximal invalid subpart becomes one U+FFFD).
#include "query.hpp"

#include <utility>

namespace ssefanout::http {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// WHATWG Encoding's UTF-8 decoder, re-encoding what it decodes: valid
// sequences are copied, each error emits U+FFFD and the offending byte is
// looked at again as a possible start.
void repairUtf8(std::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t needed = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      needed = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      needed = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      needed = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      out->append(kReplacement);
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool ok = true;
    for (size_t k = 0; k < needed; ++k, ++j) {
      const auto d = j < in.size() ? static_cast<unsigned char>(in[j]) : 0;
      if (j >= in.size() || d < lo || d > hi) {
        ok = false;
        break;
      }
      lo = 0x80;
      hi = 0xBF;
    }
    if (ok) {
      out->append(in.substr(i, j - i));
    } else {
      out->append(kReplacement);
    }
    i = j;
  }
}

}  // namespace

void decodeFormComponent(std::string_view raw, std::string* out) {
  std::string bytes;
  bytes.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '+') {
      bytes.push_back(' ');
    } else if (c == '%' && i + 2 < raw.size() && hexValue(raw[i + 1]) >= 0 && hexValue(raw[i + 2]) >= 0) {
      bytes.push_back(static_cast<char>(hexValue(raw[i + 1]) * 16 + hexValue(raw[i + 2])));
      i += 2;
    } else {
      bytes.push_back(c);
    }
  }
  repairUtf8(bytes, out);
}

bool queryValues(std::string_view query, std::string_view name, std::vector<std::string>* out, size_t maxValues,
                 size_t maxBytes) {
  size_t values = 0, bytes = 0;
  std::string decodedName;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    decodedName.clear();
    decodeFormComponent(pair.substr(0, eq), &decodedName);
    if (decodedName != name) continue;
    if (++values > maxValues) return false;
    std::string value;
    if (eq != std::string_view::npos) decodeFormComponent(pair.substr(eq + 1), &value);
    bytes += value.size();
    if (bytes > maxBytes) return false;
    out->push_back(std::move(value));
  }
  return true;
}

}  // namespace ssefanout::http
