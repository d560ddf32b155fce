// JSON text as Go's encoding/json (hence PocketBase) reads it, where simdjson
// differs: simdjson refuses a document that holds an integer beyond 64 bits
// (NUMBER_ERROR or BIGINT_ERROR: JSON.stringify(2 ** 64) writes
// "18446744073709551616"); Go
// decodes every number into a float64. widenBigIntegers() rewrites such
// integers so that simdjson reads them as doubles, the value Go would use;
// replaceLoneSurrogates() does the same for "\ud800" escapes.
//
// Pure functions; safe on any thread.
#pragma once

#include <string>
#include <string_view>

namespace ssefanout::pb {

// Puts in *out the text with every integer token (outside strings) below
// INT64_MIN or above UINT64_MAX followed by ".0", so that it parses as a
// double; every other byte is kept. Returns false (and leaves *out
// unspecified) when there is none. Linear in the text; no validation: a
// malformed document stays malformed.
bool widenBigIntegers(std::string_view json, std::string* out);

// JSON.stringify writes a lone surrogate as an escape ("\ud800"), which is
// well-formed JSON text but no Unicode scalar, and simdjson refuses it. Puts
// in *out the text with every unpaired surrogate escape replaced by "\ufffd"
// (what Go's decoder makes of it); false when there is none.
bool replaceLoneSurrogates(std::string_view text, std::string* out);

}  // namespace ssefanout::pb
