// llhttp (Debian's node-llhttp, 8.1.0, strict: no lenient flags) as the
// reference for src/http/request: what it makes of a request head, for the
// differential test and fuzz/http_request_fuzz.cpp. Header-only; link
// llhttp_ref (CMakeLists.txt).
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ssefanout::http::test {

struct LlhttpResult {
  bool complete = false;  // a whole message (head, no body) parsed without error
  size_t end = 0;         // the byte just past that message
  std::string error;      // llhttp's reason when not complete
  std::string method, url;
  int major = 0, minor = 0;
  std::vector<std::pair<std::string, std::string>> headers;
};

namespace detail {

struct LlhttpState {
  LlhttpResult* r;
  bool inValue = false;
};

inline LlhttpState* state(llhttp_t* p) { return static_cast<LlhttpState*>(p->data); }

}  // namespace detail

// Parses `bytes` as requests and stops at the end of the first message; a
// caller may append bytes after the head to see that llhttp ends it at the
// same place.
inline LlhttpResult llhttpParse(std::string_view bytes) {
  LlhttpResult r;
  detail::LlhttpState st{&r};
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_url = [](llhttp_t* p, const char* at, size_t n) {
    detail::state(p)->r->url.append(at, n);
    return 0;
  };
  s.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
    auto* st = detail::state(p);
    if (st->inValue || st->r->headers.empty()) st->r->headers.emplace_back();
    st->inValue = false;
    st->r->headers.back().first.append(at, n);
    return 0;
  };
  s.on_header_field_complete = [](llhttp_t* p) {
    detail::state(p)->inValue = true;
    return 0;
  };
  s.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
    detail::state(p)->r->headers.back().second.append(at, n);
    return 0;
  };
  s.on_header_value_complete = [](llhttp_t* p) {
    detail::state(p)->inValue = true;
    return 0;
  };
  s.on_message_complete = [](llhttp_t* p) {
    detail::state(p)->r->complete = true;
    return static_cast<int>(HPE_PAUSED);
  };
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &s);
  parser.data = &st;
  const llhttp_errno_t e = llhttp_execute(&parser, bytes.data(), bytes.size());
  if (r.complete && (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE)) {
    r.end = static_cast<size_t>(llhttp_get_error_pos(&parser) - bytes.data());
    r.method = llhttp_method_name(static_cast<llhttp_method_t>(parser.method));
    r.major = parser.http_major;
    r.minor = parser.http_minor;
  } else {
    r.complete = false;
    r.error = e == HPE_OK ? "incomplete" : llhttp_get_error_reason(&parser) ? llhttp_get_error_reason(&parser) : "";
  }
  return r;
}

}  // namespace ssefanout::http::test

#include "request.hpp"

namespace ssefanout::http::test {

inline const char* methodName(Method m) {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kHead:
      return "HEAD";
    case Method::kOptions:
      return "OPTIONS";
  }
  return "?";
}

// "" when llhttp reads `head` (which parseHead accepted as `req`) the same way:
// method, URL, version, header names and values, and the message ending at
// the head's last byte (a byte after the head must not be taken into it).
// llhttp passes a value's trailing whitespace through; ours is trimmed, so
// llhttp's is trimmed before comparing.
inline std::string llhttpDisagrees(std::string_view head, const Request& req) {
  const LlhttpResult r = llhttpParse(std::string(head) + "X");
  if (!r.complete) return "llhttp refuses it: " + r.error;
  if (r.end != head.size()) return "llhttp ends the message at " + std::to_string(r.end);
  if (r.method != methodName(req.method)) return "llhttp method " + r.method;
  if (r.url != req.target) return "llhttp URL " + r.url;
  if (r.major != 1 || r.minor != req.minor) return "llhttp version differs";
  if (r.headers.size() != req.headers.size()) return "llhttp has " + std::to_string(r.headers.size()) + " headers";
  for (size_t k = 0; k < r.headers.size(); ++k) {
    std::string_view v = r.headers[k].second;
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (r.headers[k].first != req.headers[k].name) return "llhttp header name " + r.headers[k].first;
    if (v != req.headers[k].value) return "llhttp header value " + std::string(v);
  }
  return "";
}

}  // namespace ssefanout::http::test
