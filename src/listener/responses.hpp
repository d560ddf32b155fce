// The bytes the native listener answers with: errors (a JSON body naming an
// ERR_SSE_* code, as the demo and the framework integrations answer), the
// CORS preflight, a HEAD, and a stream's head.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core.hpp"
#include "request.hpp"

namespace ssefanout::listener {

const char* reasonPhrase(uint16_t status);

// `close`: "connection: close" (the listener then closes after it).
std::string errorResponse(uint16_t status, std::string_view code, std::string_view message, bool close,
                          std::string_view extraHeaders = {});

// CORS for one request: what Access-Control-Allow-Origin says ("" none) and
// whether it depends on Origin (Vary).
struct Cors {
  std::string allowOrigin;
  bool varyOrigin = false;
};
Cors corsFor(const Options& options, std::string_view origin);

// The answer to OPTIONS on the stream's path: 204 with the CORS grant when
// the origin and the requested method are allowed, a plain 204 with Allow
// otherwise. keepAlive as the request asked.
std::string preflightResponse(const Options& options, const http::Request& request, bool keepAlive);

// The head of a stream (or of a HEAD's answer): status line, Date, the SSE
// headers, CORS, Content-Encoding and Vary, then chunked + keep-alive for
// HTTP/1.1 or connection: close for HTTP/1.0 (and for a HEAD's answer
// after which the connection closes: `close`).
std::string streamHead(const Options& options, uint8_t minor, http::Coding coding, const Cors& cors,
                       bool close = false);

}  // namespace ssefanout::listener
