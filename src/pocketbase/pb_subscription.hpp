// PocketBase subscription strings: "posts/*?options=<encodeURIComponent(JSON)>".
//
// parseSubscription() decodes the options the way PocketBase's
// tools/subscriptions DefaultClient.Subscribe does, so the same string yields
// the same @request.query / @request.headers values here as there:
//   - url.Parse(s): a string Go refuses (a control byte before '#', a bad
//     %-escape in the path or fragment, ':' at 0, a colon in the first path
//     segment without a valid scheme) carries no options;
//   - u.Query().Get("options"): the first "options" pair of the query (after
//     the first '?', before '#'), pairs split on '&', pairs holding ';' or a
//     bad %-escape skipped, '+' decoded as a space;
//   - json.Unmarshal into {"query": map[string]any, "headers": map[string]any}:
//     the two names match case-insensitively (ASCII), a repeated name merges
//     into the same map, null clears it, any other type is ignored (Go keeps
//     decoding the rest); bytes that are not UTF-8 become U+FFFD as Go does;
//   - values cast to strings with spf13/cast: strings as is, numbers in Go's
//     strconv.FormatFloat(f, 'f', -1, 64) form (shortest round trip, never an
//     exponent), true/false, "" for null, objects and arrays;
//   - header names snake_cased with inflector.Snakecase ("X-Token" -> "x_token").
// Any failure gives empty options, never an error.
//
// Integers beyond 64 bits are read as float64s as Go does (widenBigIntegers).
// Known differences from Go: simdjson refuses a whole document that holds a
// number beyond double range (Go skips the value); "-0" reads as 0 (Go: "-0"); two header names that
// snake_case alike keep the later one (Go: either, map order); URL authority
// ("//host") syntax is not validated.
//
// Pure functions; safe on any thread. A Subscription's base views the string
// it was parsed from, which must outlive it.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ssefanout::pb {

struct SubscriptionOptions {
  // name -> value, sorted by name, one entry per name (the last one given).
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // names snake_cased

  const std::string* queryValue(std::string_view name) const;   // nullptr when absent
  const std::string* headerValue(std::string_view name) const;  // name already snake_cased
  bool empty() const { return query.empty() && headers.empty(); }
};

struct Subscription {
  std::string_view base;        // the part before the first '?' (a view into the parsed string)
  SubscriptionOptions options;  // empty when there is no or no valid ?options=
};

Subscription parseSubscription(std::string_view s);

// PocketBase's inflector.Snakecase: split on runs of anything but ASCII
// letters and digits, '_' before an upper-case letter that follows a
// non-upper-case one, lower-cased, words joined with '_'.
// "X-Token" -> "x_token", "myTestDB" -> "my_test_db", "!@#" -> "".
std::string snakecase(std::string_view s);

// Go's strconv.FormatFloat(d, 'f', -1, 64): the shortest decimal that reads
// back as d, in fixed notation. Appends to *out.
void appendGoFloat(double d, std::string* out);

}  // namespace ssefanout::pb
