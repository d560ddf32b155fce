// One left-to-right scanner serves both parseHead and checkPartial: every
// verdict depends only on the bytes up to the one that decides it, so a
// prefix can be refused early exactly when the whole head would be refused
// with the same status.
#include "request.hpp"

namespace ssefanout::http {

namespace {

enum class Scan : uint8_t { kDone, kMore, kError };

// field-value bytes: VCHAR, obs-text, SP, HTAB.
constexpr bool isFieldByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

constexpr bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool equalsLower(std::string_view s, std::string_view lowerName) {
  if (s.size() != lowerName.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != lowerName[i]) return false;
  }
  return true;
}

// What a Connection header says, over its comma-separated options.
void readConnection(std::string_view value, bool* close, bool* keepAlive) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view option = trimOws(value.substr(0, comma));
    if (equalsLower(option, "close")) *close = true;
    if (equalsLower(option, "keep-alive")) *keepAlive = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

struct Scanner {
  std::string_view b;
  const Limits& limits;
  Request* out;  // null: checking only, nothing stored
  Error* err;
  size_t end = 0;  // just past the head when kDone

  Scan fail(uint16_t status, const char* reason) {
    err->status = status;
    err->reason = reason;
    return Scan::kError;
  }

  Scan run();
};

// A byte not received yet: the bytes so far decide nothing more, keep reading.
#define NEED(k)                              \
  do {                                       \
    if ((k) >= b.size()) return Scan::kMore; \
  } while (0)

Scan Scanner::run() {
  size_t i = 0;
  NEED(0);
  if (b[0] == '\r') {
    NEED(1);
    if (b[1] != '\n') return fail(400, "CR without LF");
    i = 2;
  }

  const size_t m0 = i;
  for (;; ++i) {
    NEED(i);
    if (b[i] == ' ') break;
    if (!isTchar(static_cast<unsigned char>(b[i]))) return fail(400, "malformed method");
  }
  const std::string_view methodName = b.substr(m0, i - m0);
  Method method;
  if (methodName == "GET") {
    method = Method::kGet;
  } else if (methodName == "HEAD") {
    method = Method::kHead;
  } else if (methodName == "OPTIONS") {
    method = Method::kOptions;
  } else if (methodName.empty()) {
    return fail(400, "malformed method");
  } else {
    return fail(405, "method not allowed");
  }
  ++i;

  // Origin form, or "*" for OPTIONS; absolute and authority forms are refused.
  const size_t t0 = i;
  NEED(i);
  if (b[i] == '*') {
    if (method != Method::kOptions) return fail(400, "asterisk-form target without OPTIONS");
  } else if (b[i] != '/') {
    return fail(400, "target not in origin form");
  }
  for (;; ++i) {
    NEED(i);
    const auto c = static_cast<unsigned char>(b[i]);
    if (c == ' ') break;
    // Visible ASCII only: RFC 3986 has no raw bytes past 0x7e, and llhttp
    // (Node's HTTP parser too) refuses them.
    if (c <= 0x20 || c >= 0x7f) return fail(400, "invalid byte in target");
    if (i > t0 && b[t0] == '*') return fail(400, "target not in origin form");
    if (i - t0 + 1 > limits.maxTargetBytes) return fail(414, "target too long");
  }
  const std::string_view target = b.substr(t0, i - t0);
  ++i;

  static constexpr std::string_view kHttp = "HTTP/";
  for (char want : kHttp) {
    NEED(i);
    if (b[i++] != want) return fail(400, "malformed HTTP version");
  }
  // "1.1": a digit, a dot, a digit (one each, as RFC 9112 has it).
  NEED(i + 2);
  if (b[i] < '0' || b[i] > '9' || b[i + 1] != '.' || b[i + 2] < '0' || b[i + 2] > '9') {
    return fail(400, "malformed HTTP version");
  }
  if (b[i] != '1' || b[i + 2] > '1') return fail(505, "HTTP version not supported");
  const auto minor = static_cast<uint8_t>(b[i + 2] - '0');
  i += 3;
  NEED(i);
  if (b[i] != '\r') return fail(400, "malformed HTTP version");
  NEED(i + 1);
  if (b[i + 1] != '\n') return fail(400, "CR without LF");
  i += 2;

  if (out) out->headers.clear();
  uint32_t headers = 0;
  bool host = false, length = false, close = false, keepAlive = false;
  for (;;) {
    NEED(i);
    if (b[i] == '\r') {
      NEED(i + 1);
      if (b[i + 1] != '\n') return fail(400, "CR without LF");
      end = i + 2;
      break;
    }
    if (isOws(b[i])) return fail(400, "whitespace at the start of a header line");
    if (headers == limits.maxHeaders) return fail(431, "too many headers");
    const size_t n0 = i;
    for (;; ++i) {
      NEED(i);
      if (b[i] == ':') break;
      if (!isTchar(static_cast<unsigned char>(b[i]))) return fail(400, "malformed header name");
    }
    if (i == n0) return fail(400, "empty header name");
    const std::string_view name = b.substr(n0, i - n0);
    const size_t v0 = ++i;
    for (;; ++i) {
      NEED(i);
      if (b[i] == '\r') break;
      if (!isFieldByte(static_cast<unsigned char>(b[i]))) return fail(400, "malformed header value");
    }
    NEED(i + 1);
    if (b[i + 1] != '\n') return fail(400, "CR without LF");
    const std::string_view value = trimOws(b.substr(v0, i - v0));
    i += 2;
    ++headers;

    if (equalsLower(name, "host")) {
      if (host) return fail(400, "more than one Host");
      host = true;
    } else if (equalsLower(name, "content-length")) {
      if (length) return fail(400, "more than one Content-Length");
      length = true;
      if (value.empty()) return fail(400, "malformed Content-Length");
      bool zero = true;
      for (char c : value) {
        if (c < '0' || c > '9') return fail(400, "malformed Content-Length");
        zero = zero && c == '0';
      }
      if (!zero) return fail(413, "request body not accepted");
    } else if (equalsLower(name, "transfer-encoding")) {
      return fail(413, "request body not accepted");
    } else if (equalsLower(name, "connection")) {
      readConnection(value, &close, &keepAlive);
    }
    if (out) out->headers.push_back(Header{name, value});
  }
  if (minor == 1 && !host) return fail(400, "HTTP/1.1 without Host");

  if (out) {
    out->method = method;
    out->minor = minor;
    out->target = target;
    const size_t q = target.find('?');
    out->path = target.substr(0, q);
    out->query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    out->keepAlive = minor == 1 ? !close : keepAlive && !close;
  }
  return Scan::kDone;
}

#undef NEED

}  // namespace

std::string_view Request::header(std::string_view lowerName) const {
  for (const Header& h : headers) {
    if (equalsLower(h.name, lowerName)) return h.value;
  }
  return {};
}

int Request::count(std::string_view lowerName) const {
  int n = 0;
  for (const Header& h : headers) n += equalsLower(h.name, lowerName) ? 1 : 0;
  return n;
}

size_t findHeadEnd(std::string_view buf, size_t from) {
  // The terminator may straddle the old end: back up 3 bytes, so a buffer
  // growing byte by byte is scanned in linear time overall.
  if (from > buf.size()) from = buf.size();
  const size_t at = buf.find("\r\n\r\n", from >= 3 ? from - 3 : 0);
  return at == std::string_view::npos ? std::string_view::npos : at + 4;
}

bool parseHead(std::string_view head, const Limits& limits, Request* out, Error* err) {
  // Bytes past the limit are never looked at: a head too large is 431 at the
  // same byte whether it came in one piece or many.
  Scanner s{head.substr(0, limits.maxHeadBytes), limits, out, err};
  switch (s.run()) {
    case Scan::kError:
      return false;
    case Scan::kMore:
      *err = head.size() > limits.maxHeadBytes ? Error{431, "request head too large"}
                                               : Error{400, "incomplete request head"};
      return false;
    case Scan::kDone:
      break;
  }
  if (s.end != head.size()) {
    *err = Error{400, "bytes after the request head"};
    return false;
  }
  return true;
}

bool checkPartial(std::string_view buf, const Limits& limits, Error* err) {
  Scanner s{buf.substr(0, limits.maxHeadBytes), limits, nullptr, err};
  switch (s.run()) {
    case Scan::kError:
      return false;
    case Scan::kDone:
      return true;
    case Scan::kMore:
      break;
  }
  if (buf.size() >= limits.maxHeadBytes) {
    *err = Error{431, "request head too large"};
    return false;
  }
  return true;
}

}  // namespace ssefanout::http
