// UriTemplate: a Mercure topic selector that is an RFC 6570 URI template,
// matched against topics exactly as the reference hub (dunglas/mercure v0.24,
// through yosida95/uritemplate v3.0.2) matches them: with the regexp that
// Template.Regexp() builds, not with Template.Match.
//
// Semantics. compile() parses like uritemplate.New; a template is ^ + pieces + $:
//  - a literal piece matches its own bytes, byte for byte (so %C3 != %c3, and
//    non-ASCII literals match themselves);
//  - an expression piece is (?: FIRST ( V0 (?: SEP V )REP ) )?, so the whole
//    expression is optional and every variable may be empty. V is
//    (?:[class]|%[0-9A-Fa-f]{2})*: a bare % or %zz never matches, nor does any
//    non-ASCII byte, space, " < > \ ^ ` { | }.
//
//      op    FIRST  SEP  class (ASCII)                      '=' added
//      {x}     -     ,   U = [-.0-9A-Z_a-z~] plus ,         when exploded
//      {+x}    -     ,   U plus R = ! # $ & ' ( ) * + , / : ; = ? @ [ ]
//      {#x}    #     ,   U plus R
//      {.x}    .     .   U plus ,                           when exploded
//      {/x}    /     /   U plus ,                           when exploded
//      {;x}    ;     ;   U plus , =                         always (named)
//      {?x}    ?     &   U plus , =                         always (named)
//      {&x}    &     &   U plus , =                         always (named)
//
//    '=' is in V0's class when the op is named or the first variable is
//    exploded, and in the class of the later values when the op is named or
//    any variable is exploded. REP: * when any variable is exploded; {0,n-1}
//    for n > 1 variables none exploded; no SEP group for one plain variable.
//    The variable names do not take part (so {?x} matches ?y=1), and the
//    prefix modifier :N is parsed (1..9999) and ignored ({v:3} matches abcdef).
//  - Parse failures (compile() returns nullopt; the selector is then matched
//    as an exact string only): an unbalanced {; a literal character outside
//    RFC 6570 `literals` (space, " < > \ ^ ` | } and controls; ' is allowed,
//    per erratum 6937); a bad %XX in a literal or a variable name; a variable
//    name outside [A-Za-z0-9_] plus %XX and inner single dots; the reserved
//    operators = , ! @ |; :0, a leading 0, or over :9999; anything after a
//    modifier but , or }; invalid UTF-8 (and U+FFFD, which Go's decoder
//    cannot tell from an error).
//
// Bounds (ours; Go has none). compile() also returns nullopt for a string
// with no expression (not a template), one over kMaxTemplateBytes, over
// kMaxExpressions expressions or over kMaxVariables variables: such a
// selector is exact-only, where Go would match it as a template. A topic over
// kMaxTopicBytes never matches a template.
//
// Algorithm: an NFA simulation over the set of reachable topic positions (a
// bitset), advanced one piece at a time. A literal piece moves each reachable
// position past an occurrence of the literal (KMP, linear); an expression
// piece is one left-to-right pass carrying a small state mask per position (in
// the first value, or after j separators). O(|topic| x pieces), no
// backtracking (fixture `{id}.json` needs none), no recursion, no std::regex,
// no allocation. Prechecks first: the minimum length, the literal prefix and
// the literal suffix.
//
// Immutable once compiled: matches() may run on any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssefanout::mercure {

class UriTemplate {
 public:
  static constexpr size_t kMaxTemplateBytes = 1024;
  static constexpr size_t kMaxExpressions = 16;
  // At most 32 variables, so an expression's states (the first value, then
  // one per separator crossed) fit one 32-bit mask.
  static constexpr size_t kMaxVariables = 32;
  static constexpr size_t kMaxTopicBytes = 4096;

  // nullopt: not a template (see the header comment), to be matched as an
  // exact string only.
  static std::optional<UriTemplate> compile(std::string_view text);

  bool matches(std::string_view topic) const;

  // The literal bytes every matching topic starts with (empty when the
  // template starts with an expression): the key an index buckets by.
  std::string_view literalPrefix() const;
  // The literal bytes every matching topic ends with (empty when the
  // template ends with an expression); never overlapping the prefix.
  std::string_view literalSuffix() const;
  // The fewest bytes a matching topic has: the sum of the literals.
  size_t minLength() const { return minLength_; }
  // The expressions: a match costs about one pass over the topic per
  // expression, so an index weighs a template by them.
  size_t expressions() const;
  std::string_view text() const { return text_; }

  // 128-bit set of ASCII bytes; no non-ASCII byte is ever in a class.
  struct ByteClass {
    uint64_t bits[2] = {0, 0};
    void add(unsigned char c) { bits[c >> 6] |= uint64_t{1} << (c & 63); }
    bool has(unsigned char c) const { return c < 128 && ((bits[c >> 6] >> (c & 63)) & 1) != 0; }
  };

 private:
  struct Piece {
    bool literal = false;
    // A literal: text_[begin, begin + size), its KMP table at failure_[begin].
    uint32_t begin = 0;
    uint32_t size = 0;
    // An expression.
    char first = 0;  // 0: none
    char sep = 0;
    bool unbounded = false;  // REP is *
    uint8_t reps = 0;        // REP is {0,reps} when not unbounded
    ByteClass firstClass;    // V0
    ByteClass restClass;     // the values after a separator
  };

  class Parser;

  std::string text_;
  std::vector<Piece> pieces_;
  std::vector<uint32_t> failure_;  // per literal byte of text_, the KMP failure function
  size_t minLength_ = 0;
};

}  // namespace ssefanout::mercure
