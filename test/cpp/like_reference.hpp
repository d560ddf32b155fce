// The backtracking SQL LIKE matcher that src/pocketbase/pb_like.cpp replaced, kept
// as the reference its tests and fuzz target compare against: the same
// semantics, O(text x pattern) work in the worst case.
#pragma once

#include <algorithm>
#include <string_view>

namespace ssefanout::test {

inline bool likeReference(std::string_view text, std::string_view pattern) {
  auto fold = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  auto utf8Len = [](char lead) -> size_t {
    auto c = static_cast<unsigned char>(lead);
    if (c < 0x80) return 1;
    if ((c >> 5) == 0x6) return 2;
    if ((c >> 4) == 0xe) return 3;
    if ((c >> 3) == 0x1e) return 4;
    return 1;
  };
  size_t ti = 0, pi = 0;
  size_t starP = std::string_view::npos, starT = 0;
  while (true) {
    if (pi < pattern.size()) {
      char c = pattern[pi];
      if (c == '%') {
        while (pi < pattern.size() && pattern[pi] == '%') ++pi;
        starP = pi;
        starT = ti;
        continue;
      }
      if (c == '\\' && pi + 1 >= pattern.size()) return false;
      if (ti < text.size()) {
        if (c == '_') {
          ti += std::min(utf8Len(text[ti]), text.size() - ti);
          ++pi;
          continue;
        }
        char lit = c;
        size_t adv = 1;
        if (c == '\\') {
          lit = pattern[pi + 1];
          adv = 2;
        }
        if (fold(lit) == fold(text[ti])) {
          ++ti;
          pi += adv;
          continue;
        }
      }
    } else if (ti == text.size()) {
      return true;
    }
    // Mismatch: let the last % swallow one more character and retry.
    if (starP == std::string_view::npos || starT >= text.size()) return false;
    starT += std::min(utf8Len(text[starT]), text.size() - starT);
    ti = starT;
    pi = starP;
  }
}

}  // namespace ssefanout::test
