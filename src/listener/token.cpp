#include "token.hpp"

#include <string_view>
#include <unordered_set>
#include <vector>

#include "query.hpp"
#include "responses.hpp"
#include "topic_index.hpp"
#include "uri_template.hpp"

namespace ssefanout::listener {

namespace {

constexpr std::string_view kNoToken = "www-authenticate: Bearer\r\n";

bool equalsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != lower[i]) return false;
  }
  return true;
}

// "Bearer <token>" (RFC 6750 2.1; the scheme is case-insensitive, RFC 9110
// 11.1): the token, or false.
bool bearerToken(std::string_view value, std::string* token) {
  if (value.size() < 7 || !equalsLower(value.substr(0, 6), "bearer") || value[6] != ' ') return false;
  size_t start = 7;
  while (start < value.size() && value[start] == ' ') ++start;
  size_t end = start;
  while (end < value.size() && value[end] != ' ') ++end;
  for (size_t i = end; i < value.size(); ++i) {
    if (value[i] != ' ') return false;  // a second word
  }
  if (end == start) return false;
  token->assign(value.substr(start, end - start));
  return true;
}

// The first cookie of that name in any Cookie field (as Go's r.Cookie):
// "name=value" pairs split on ';', spaces trimmed, one pair of quotes
// removed. False when absent or empty.
bool cookieToken(const http::Request& r, std::string_view name, std::string* token) {
  for (const http::Header& h : r.headers) {
    if (!equalsLower(h.name, "cookie")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view part = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
      while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
      const size_t eq = part.find('=');
      if (eq == std::string_view::npos || part.substr(0, eq) != name) continue;
      std::string_view value = part.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      if (value.empty()) return false;
      token->assign(value);
      return true;
    }
  }
  return false;
}

bool isTopic(std::string_view s) {
  return !s.empty() && s.size() <= auth::Verifier::kMaxSelectorBytes &&
         s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string unauthorized(std::string_view message, const char* bearerError) {
  std::string challenge = "www-authenticate: Bearer error=\"";
  challenge += bearerError;
  challenge += "\", error_description=\"";
  challenge += message;  // a fixed reason: no quote, never the token
  challenge += "\"\r\n";
  return errorResponse(401, "ERR_SSE_UNAUTHORIZED", message, true, challenge);
}

}  // namespace

int tokenOf(const Options& o, const http::Request& r, std::string* token) {
  const int headers = r.count("authorization");
  if (headers > 1) return -1;
  if (headers == 1) {
    const std::string_view value = r.header("authorization");
    if (value.size() > auth::Verifier::kMaxTokenBytes + 16 || !bearerToken(value, token)) return -1;
    return 1;
  }
  if (!o.tokenQuery.empty() && !r.query.empty()) {
    std::vector<std::string> values;
    if (!http::queryValues(r.query, o.tokenQuery, &values, 1, auth::Verifier::kMaxTokenBytes)) return -1;
    if (!values.empty()) {
      *token = std::move(values[0]);
      return 1;
    }
  }
  if (!o.tokenCookie.empty() && cookieToken(r, o.tokenCookie, token)) return 1;
  return 0;
}

bool admitToken(const Options& o, const http::Request& r, int64_t nowSec, Accepted* a, std::string* response,
                TokenCache* cache, bool* cacheHit) {
  if (cacheHit) *cacheHit = false;
  std::string token;
  const int found = tokenOf(o, r, &token);
  if (found == 0) {
    *response = errorResponse(401, "ERR_SSE_UNAUTHORIZED", "a token is needed", true, kNoToken);
    return false;
  }
  if (found < 0) {
    *response = unauthorized("malformed authorization", "invalid_request");
    return false;
  }
  // A kept token's claims (its dates checked now), else verified, and kept
  // when it verified (token_cache.hpp).
  const auth::Claims* claims = cache ? cache->find(token, *o.token, nowSec) : nullptr;
  auth::Verdict v;
  if (claims) {
    if (cacheHit) *cacheHit = true;
  } else {
    v = o.token->verify(token, nowSec);
    if (!v.ok) {
      *response = unauthorized(v.reason, "invalid_token");
      return false;
    }
    if (cache) cache->insert(token, v.claims);
    claims = &v.claims;
  }
  const std::vector<std::string>& selectors = claims->selectors;
  if (!a->topics.empty()) {
    bool all = false;
    std::unordered_set<std::string_view> exact;
    for (const std::string& s : selectors) {
      if (s == "*") all = true;
      exact.insert(s);
    }
    if (!all) {
      // The claim's templates, each compiled once for all the topics (one
      // that does not compile matches only itself, as an exact selector).
      std::vector<mercure::UriTemplate> templates;
      for (const std::string& s : selectors) {
        if (s.find('{') == std::string::npos) continue;
        if (auto t = mercure::UriTemplate::compile(s)) templates.push_back(std::move(*t));
      }
      for (const std::string& topic : a->topics) {
        if (exact.count(topic) > 0) continue;
        // A prefix pattern ("books/*") takes every topic under it, which no
        // template is known to cover ("books/{+id}" matches the string
        // "books/*", not the topic "books/a b"): only "*" or the same selector
        // grants one.
        bool matched = false;
        if (!TopicIndex::isPattern(topic)) {
          for (const mercure::UriTemplate& t : templates) {
            if (t.matches(topic)) {
              matched = true;
              break;
            }
          }
        }
        if (!matched) {
          *response =
              errorResponse(403, "ERR_SSE_FORBIDDEN", "the token does not grant a topic the request names", true);
          return false;
        }
      }
    }
  } else {
    // No topic named: the claim's exact selectors (templates and "*" name
    // no topic to subscribe to), each once.
    std::unordered_set<std::string_view> seen;
    for (const std::string& s : selectors) {
      if (s == "*" || s.find('{') != std::string::npos || !isTopic(s) || !seen.insert(s).second) continue;
      a->topics.push_back(s);
    }
    if (a->topics.empty()) {
      *response = errorResponse(400, "ERR_SSE_BAD_REQUEST",
                                "the request names no topic and the token grants no exact topic", true);
      return false;
    }
  }
  a->user = claims->user;
  return true;
}

}  // namespace ssefanout::listener
