// SQL LIKE with ESCAPE '\' as SQLite runs it without ICU, with a work bound.
//
// Semantics (unchanged from the backtracking matcher it replaces): ASCII
// case-insensitive; % matches any run of characters, _ exactly one UTF-8
// character (the length its lead byte announces, clamped to the text end);
// \x is the character x; a pattern ending in a lone \ matches nothing.
//
// Algorithm: the pattern is split at its unescaped % into segments. The first
// is matched at the start of the text, the last at its end, and each middle
// one at its leftmost occurrence after the previous one (greedy leftmost is
// exact for % globs). A segment's leading and trailing runs of _ become "skip
// k characters"; its core (first to last literal) is found with KMP when it
// holds no _, else with bit-parallel Shift-And over characters, one 64-bit
// word per 64 characters of the core. Work: O(n + m) for a text of n bytes
// and a pattern of m bytes when every middle core with a _ has at most
// kMaxWildcardCore characters; O(n * ceil(L / 64) + m log m) for a longer
// one of L characters (its characters are sorted once per match). Filters refuse such literal patterns at compile time
// (likePatternBounded); patterns made at run time from a field or
// @request.* value are matched with the multi-word Shift-And.
//
// Equal to the backtracking matcher for texts and patterns that are valid
// UTF-8 (every text and pattern here is: simdjson validates records, N-API
// strings are UTF-8); on other bytes the result is defined and the work bound
// holds, but may differ from it.
//
// Pure functions; run-time buffers are per thread, safe on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ssefanout::pb {

// The longest core with a _ that a pattern written in a filter may have.
constexpr size_t kMaxWildcardCore = 64;

// Whether text matches pattern. When steps is not null it receives the work
// done (comparisons, Shift-And word updates, table entries): at most
// kLikeStepsPerByte * (n + m) + kLikeStepsConstant for a pattern that
// likePatternBounded() accepts.
bool likeMatch(std::string_view text, std::string_view pattern, uint64_t* steps = nullptr);

constexpr uint64_t kLikeStepsPerByte = 16;
constexpr uint64_t kLikeStepsConstant = 16;

// False, with one line in *why, when a middle segment of pattern has a core
// holding a _ longer than kMaxWildcardCore characters.
bool likePatternBounded(std::string_view pattern, std::string* why);

}  // namespace ssefanout::pb
