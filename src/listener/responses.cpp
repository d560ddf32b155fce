#include "responses.hpp"

#include <time.h>

#include <cstdio>

namespace ssefanout::listener {

namespace {

// RFC 9110's IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string httpDate() {
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

void appendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      out->append(esc);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

// Access-Control-Request-Headers echoed back when it is a plain list of
// header names (tokens, commas, spaces) of reasonable size; else nothing.
bool isHeaderNameList(std::string_view s) {
  if (s.empty() || s.size() > 1024) return false;
  for (unsigned char c : s) {
    if (!http::isTchar(c) && c != ',' && c != ' ' && c != '\t') return false;
  }
  return true;
}

}  // namespace

const char* reasonPhrase(uint16_t status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return status < 500 ? "Bad Request" : "Internal Server Error";
}

std::string errorResponse(uint16_t status, std::string_view code, std::string_view message, bool close,
                          std::string_view extraHeaders) {
  std::string body = "{\"error\":";
  appendJsonString(&body, code);
  body += ",\"message\":";
  appendJsonString(&body, message);
  body += "}";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  out += "date: " + httpDate() + "\r\n";
  out += "content-type: application/json\r\n";
  out += "content-length: " + std::to_string(body.size()) + "\r\n";
  out += extraHeaders;
  out += close ? "connection: close\r\n\r\n" : "connection: keep-alive\r\n\r\n";
  out += body;
  return out;
}

Cors corsFor(const Options& options, std::string_view origin) {
  Cors c;
  if (options.corsOrigins.empty()) return c;
  for (const std::string& allowed : options.corsOrigins) {
    if (allowed == "*") {
      // "*" never goes with credentials (lib/listener/options.js refuses
      // the pair): echoing any origin with them would let every site read
      // a visitor's stream with their cookies.
      if (!options.corsCredentials) c.allowOrigin = "*";
      return c;
    }
  }
  c.varyOrigin = true;  // the answer depends on Origin
  for (const std::string& allowed : options.corsOrigins) {
    if (!origin.empty() && allowed == origin) {
      c.allowOrigin = std::string(origin);
      break;
    }
  }
  return c;
}

namespace {

void appendCors(std::string* out, const Options& options, const Cors& cors) {
  if (!cors.allowOrigin.empty()) {
    *out += "access-control-allow-origin: " + cors.allowOrigin + "\r\n";
    if (options.corsCredentials) *out += "access-control-allow-credentials: true\r\n";
  }
}

}  // namespace

std::string preflightResponse(const Options& options, const http::Request& request, bool keepAlive) {
  std::string out = "HTTP/1.1 204 No Content\r\n";
  out += "date: " + httpDate() + "\r\n";
  const Cors cors = corsFor(options, request.header("origin"));
  const std::string_view method = request.header("access-control-request-method");
  if (!cors.allowOrigin.empty() && (method == "GET" || method == "HEAD")) {
    appendCors(&out, options, cors);
    out += "access-control-allow-methods: GET, HEAD, OPTIONS\r\n";
    const std::string_view asked = request.header("access-control-request-headers");
    if (isHeaderNameList(asked)) out += "access-control-allow-headers: " + std::string(asked) + "\r\n";
    out += "access-control-max-age: " + std::to_string(options.corsMaxAgeS) + "\r\n";
  }
  out += "allow: GET, HEAD, OPTIONS\r\n";
  if (!options.corsOrigins.empty()) {
    out += cors.varyOrigin ? "vary: origin, access-control-request-method, access-control-request-headers\r\n"
                           : "vary: access-control-request-method, access-control-request-headers\r\n";
  }
  out += keepAlive ? "connection: keep-alive\r\n\r\n" : "connection: close\r\n\r\n";
  return out;
}

std::string streamHead(const Options& options, uint8_t minor, http::Coding coding, const Cors& cors, bool close) {
  std::string out = "HTTP/1.1 200 OK\r\n";
  out += "date: " + httpDate() + "\r\n";
  out += "content-type: text/event-stream\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\n";
  appendCors(&out, options, cors);
  if (coding == http::Coding::kGzip) out += "content-encoding: gzip\r\n";
  if (coding == http::Coding::kDeflate) out += "content-encoding: deflate\r\n";
  if (options.compression && cors.varyOrigin) {
    out += "vary: accept-encoding, origin\r\n";
  } else if (options.compression) {
    out += "vary: accept-encoding\r\n";
  } else if (cors.varyOrigin) {
    out += "vary: origin\r\n";
  }
  if (minor == 0) {
    out += "connection: close\r\n\r\n";
  } else {
    out += close ? "connection: close\r\ntransfer-encoding: chunked\r\n\r\n"
                 : "connection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n";
  }
  return out;
}

}  // namespace ssefanout::listener
