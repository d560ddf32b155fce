// The strict, bounded HTTP/1.1 request-head parser the native listener runs on
// its I/O threads (issue 17). Pure C++ (the core's rules: no libuv, no
// Node-API, no exceptions), no allocation but the header vector, and views
// into the caller's buffer: a Request is valid while that buffer is.
//
// Strictness follows RFC 9112/9110 and is never looser than llhttp's strict
// mode (the differential tests and fuzz/http_request_fuzz.cpp hold it to
// that): token methods and header names, one SP between request-line parts,
// origin-form targets ("*" only for OPTIONS), CRLF line ends only, no obs-fold,
// no whitespace before a colon, targets of visible ASCII only, field values of VCHAR/obs-text/SP/HTAB, no
// body (Transfer-Encoding, or Content-Length other than 0). One empty line
// (CRLF) before the request line is skipped, as RFC 9112 section 2.2 asks
// ("at least one"); a second is a malformed request (400), so the head ends
// where findHeadEnd says for every head we accept.
//
// Verdicts are decided left to right: the first offending byte decides the
// status, so checkPartial on any prefix never contradicts parseHead on the
// whole head (a split at any byte gives the same answer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ssefanout::http {

// RFC 9110 section 5.6.2: tchar, for methods and field names.
constexpr bool isTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

struct Limits {
  size_t maxHeadBytes = 8192;  // the whole head, "\r\n\r\n" included
  uint32_t maxHeaders = 64;
  size_t maxTargetBytes = 4096;
};

enum class Method : uint8_t { kGet, kHead, kOptions };

struct Header {
  std::string_view name, value;  // views into the caller's buffer; value without OWS
};

struct Request {
  Method method = Method::kGet;
  uint8_t minor = 1;                     // HTTP/1.<minor>, 0 or 1
  std::string_view target, path, query;  // path = target before '?', query after it (no '?'), raw
  std::vector<Header> headers;           // in order received
  bool keepAlive = false;                // 1.1 without "Connection: close"; 1.0 with "keep-alive"

  // The first value of a header (name given in lower case, matched
  // case-insensitively); "" if none.
  std::string_view header(std::string_view lowerName) const;
  int count(std::string_view lowerName) const;
};

struct Error {
  uint16_t status = 0;
  const char* reason = "";  // short static text
};

// The index just past the first "\r\n\r\n" in buf, searching from `from` (a
// caller re-scanning a growing buffer passes the previous size; this backs up
// 3 bytes itself), or std::string_view::npos.
size_t findHeadEnd(std::string_view buf, size_t from);

// Parses one complete head (buf up to and including its "\r\n\r\n"). True, or
// false with err set to the status to answer: 400, 405, 413, 414, 431, 505.
bool parseHead(std::string_view head, const Limits& limits, Request* out, Error* err);

// For a buffer whose head is not complete yet: false with err set when no
// completion could be accepted as far as the bytes so far tell (a garbage
// request line before its headers arrive; 431 once maxHeadBytes bytes hold no
// head end), true to keep reading.
bool checkPartial(std::string_view buf, const Limits& limits, Error* err);

}  // namespace ssefanout::http
