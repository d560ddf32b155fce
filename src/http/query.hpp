// Query-string values as the native listener reads them (issue 17): the same
// strings URLSearchParams gives the JS path for application/x-www-form-urlencoded
// (WHATWG URL, "urlencoded parsing"), so a stream opened on either path
// subscribes to the same topics. Bounded, for a client's input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ssefanout::http {

// Appends every value of parameter `name` in `query` (no leading '?'), in
// order: '+' is a space, %XX is decoded, a malformed % sequence is kept
// literally, and decoded bytes that are not UTF-8 become U+FFFD as
// URLSearchParams has them. False when there are more than maxValues values
// or more than maxBytes decoded bytes in total (out then holds what was read).
bool queryValues(std::string_view query, std::string_view name, std::vector<std::string>* out, size_t maxValues,
                 size_t maxBytes);

// The percent-decoding and UTF-8 repair of one name or value, appended to out.
void decodeFormComponent(std::string_view raw, std::string* out);

}  // namespace ssefanout::http
