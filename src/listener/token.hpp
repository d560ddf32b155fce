// The native listener's token path (Options::token): a stream request is
// admitted on its I/O thread by a JWT the auth::Verifier accepts, with the
// topics its claim grants, so an authenticated storm never reaches JS per
// connection (docs/listener.md, "Authorization").
//
// Where the token comes from, as Mercure reads it: the Authorization header
// (Bearer, the scheme in any case), else the query parameter
// (Options::tokenQuery), else the cookie (Options::tokenCookie). The answers:
// no token 401 (WWW-Authenticate: Bearer), a malformed request 401
// (error="invalid_request"), a bad or expired token 401
// (error="invalid_token"), a topic the claim's selectors do not match 403,
// no topic named and no exact selector in the claim 400.
//
// A function of the options, the request and the cache (null: none), which
// it consults before verifying and fills with tokens that verified; any
// thread (the acceptor's, whose cache it is).
#pragma once

#include <cstdint>
#include <string>

#include "core.hpp"
#include "request.hpp"
#include "token_cache.hpp"

namespace ssefanout::listener {

// True with a->topics (the query's, or the claim's exact selectors when it
// names none) and a->user set from the token; false with *response the
// error answer to write (connection: close). *cacheHit (when given) says
// whether the token's claims came from the cache.
bool admitToken(const Options& options, const http::Request& request, int64_t nowSec, Accepted* a,
                std::string* response, TokenCache* cache = nullptr, bool* cacheHit = nullptr);

// The token of a request: 1 found (*token set), 0 none, -1 malformed
// (two Authorization headers, a scheme other than Bearer, two query values,
// or past the token budget).
int tokenOf(const Options& options, const http::Request& request, std::string* token);

}  // namespace ssefanout::listener
