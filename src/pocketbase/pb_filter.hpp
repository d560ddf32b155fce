// A compiled PocketBase filter / API-rule expression, evaluated against a JSON
// record (a simdjson DOM object) without touching a database.
//
// Grammar (PocketBase's fexpr, the subset that needs no schema or SQL):
//   expr    := and ('||' and)*           && binds tighter than ||: PocketBase
//   and     := term ('&&' term)*         joins the fexpr groups left to right
//   term    := '(' expr ')' | operand op operand     into one SQL WHERE string
//   op      := = != > >= < <= ~ !~                  ("a AND b OR c"), which SQL
//   operand := field path | @request.* | literal     reads as (a AND b) OR c.
// Field paths: `title`, `id`, `data.nested.key` (a dotted path looks up nested
// object keys; an all-digit segment indexes an array). @request.auth.<path>,
// @request.query.<name>, @request.headers.<snake_name>, @request.context,
// @request.method. Literals: 'text' or "text" (a backslash before the quote
// character escapes it and is dropped; other backslashes stay, as in fexpr),
// numbers -?[0-9]+(\.[0-9]+)?, and true, false, null (any case). Whitespace is
// space, tab, CR, LF; `//` starts a comment up to the end of the line.
// "" is always true; only whitespace and comments is refused (PocketBase's
// fexpr.ErrEmpty: such a rule or filter lets nothing through). Limits: kMaxExprBytes
// bytes, kMaxDepth nested parentheses.
// Refused at compile time, with the byte offset: the any-of operators (?=
// ?!= ?> ?>= ?< ?<= ?~ ?!~), :modifiers (:lower :length :each :isset ...),
// @collection.*, @request.body.*, macros (@now, @todayStart, ...), functions
// (geoDistance(...)), back-relations (x_via_y), `()`.
//
// Values: a missing key, JSON null or a guest's @request.auth.* is null; a
// JSON bool is the integer 1 or 0 (as SQLite stores it); @request.query/headers
// values are strings; arrays and objects are their minified JSON text.
// Comparisons follow PocketBase's SQL (tools/search/filter.go,
// resolveEqualExpr and buildResolversExpr) on SQLite:
//   = !=   null and "" are the same value (PocketBase wraps both sides in
//          COALESCE(x, '') or an equivalent), so for a guest
//          `@request.auth.id != ""` is false and `owner = @request.auth.id`
//          holds only when owner is empty. Exception: a dotted path (a JSON
//          field lookup, `data.key`, `@request.auth.a.b`) compares with SQL IS
//          as PocketBase does for JSON fields: null equals only null.
//          != is always the negation of =.
//   > >= < <=  false when either side is null.
//   numbers compare numerically (int64 exactly, otherwise as doubles);
//   strings byte-wise (SQLite's BINARY collation); a string against a number
//   compares numerically when the whole string is a decimal number
//   ([+-]digits[.digits][e[+-]digits]), otherwise = is false, != true and
//   the ordering operators false.
//   ~ !~   SQL LIKE with ESCAPE '\': ASCII case-insensitive, % any run, _ one
//          character. The left side is taken as text (numbers in shortest
//          form, bools 1/0, arrays/objects as JSON). A literal or @request.*
//          right side is prepared as PocketBase's wrapLikeParams does: used as
//          the pattern when it holds an unescaped %, otherwise its \ % _ are
//          escaped and it is wrapped in %...% (a contains-test). A field right
//          side is wrapped in %...% unescaped. A null on either side makes both
//          ~ and !~ false (SQL NULL). Matching is linear (pb_like.hpp): a
//          literal pattern with a part between two % whose core holding _
//          spans more than 64 characters is refused at compile time (a
//          departure from PocketBase, where it is merely slow); patterns
//          made at run time from a field or @request.* value are matched in
//          O(text x ceil(core / 64)).
// Known gaps: no relation traversal (`author.name` looks up a key "name" in
// the author value, a record id string, so it is null), no schema (a missing
// field is null where PocketBase refuses the filter), no collation or date
// handling beyond byte order.
//
// A Filter is immutable after compile(); evaluate() allocates nothing in the
// steady state (array/object text and run-time LIKE patterns use per-thread
// scratch buffers; EvalContext::jsonText, when given, keeps large texts) and
// may run on any number of threads at once, each with its own jsonText.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pb_json_text_cache.hpp"
#include "pb_like.hpp"
#include "pb_subscription.hpp"
#include "simdjson.h"

namespace ssefanout::pb {

struct EvalContext {
  simdjson::dom::element record;                 // the record (a JSON object)
  const simdjson::dom::element* auth = nullptr;  // the subscriber's auth record; nullptr = guest
  const SubscriptionOptions* options = nullptr;  // @request.query.* / @request.headers.*; nullptr = none
  std::string_view context = "realtime";         // @request.context
  std::string_view method = "GET";               // @request.method
  // The text of array/object values already serialized in this broadcast;
  // nullptr = serialize on every read. Results are the same either way.
  JsonTextCache* jsonText = nullptr;
};

class Filter {
 public:
  static constexpr size_t kMaxExprBytes = 8192;
  static constexpr int kMaxDepth = 64;

  Filter() = default;  // always true

  // Compiles expr into *out. On failure returns false, leaves *out always
  // true and puts one line naming what is wrong and its byte offset in *error
  // (e.g. `unsupported operator "?=" at 7: only = != > >= < <= ~ !~ are
  // supported`).
  static bool compile(std::string_view expr, Filter* out, std::string* error);

  bool alwaysTrue() const { return root_ < 0; }
  bool usesAuth() const { return usesAuth_; }        // references @request.auth.*
  bool usesRequest() const { return usesRequest_; }  // references @request.query/headers/context/method

  bool evaluate(const EvalContext& ctx) const;  // never fails; missing values are null
  // Parses recordJson (and authJson unless null) and evaluates on them (an
  // app's own API, compileFilter() in JS). False with *error set when either
  // is not a JSON object.
  bool testJson(std::string_view recordJson, const std::string_view* authJson, bool* result, std::string* error) const;

  // Array/object values this thread has serialized to text (those served by
  // EvalContext::jsonText not counted) since it started. Test hook.
  static uint64_t jsonSerializations();

  // A LIKE whose pattern comes from a field or @request.* value costs up to
  // text x ceil(pattern / 64) word steps (pb_like.hpp): for a budget it
  // counts as this many nodes. Measured: ~1 ms per key on a 10 KB body with
  // a 5 KB wildcard title (a literal node scans 10 KB in ~10 us), so 100.
  static constexpr size_t kRunTimeLikeNodes = 100;
  // A literal LIKE pattern holding a _ wildcard may be matched with
  // Shift-And, about four times the work of a KMP scan per byte (measured:
  // ~39 against ~10 us on a 10 KB field): it counts as this many nodes.
  static constexpr size_t kWildcardLikeNodes = 4;
  // Nodes of the expression tree (comparisons and &&/|| groups), a LIKE
  // with a pattern made at run time counting as kRunTimeLikeNodes, a literal
  // one with a _ wildcard as kWildcardLikeNodes; 0 when always true. Each
  // node costs at most a scan of the fields it reads.
  size_t nodeCount() const;
  // Bytes this filter holds: the object and its buffers at their capacity.
  size_t memoryBytes() const;

 private:
  friend class FilterCompiler;

  enum class Op : uint8_t { kEq, kNeq, kGt, kGte, kLt, kLte, kLike, kNotLike };

  enum class OperandKind : uint8_t {
    kNull,
    kNumber,
    kString,
    kRecordPath,
    kAuthPath,
    kQuery,
    kHeader,
    kContext,
    kMethod,
  };

  struct Operand {
    OperandKind kind = OperandKind::kNull;
    bool isInt = false;    // kNumber: exact integer in i
    bool dotted = false;   // a path of two or more segments: = and != use SQL IS
    uint32_t off = 0;      // kString/kQuery/kHeader: bytes in pool_; paths: first entry in segments_
    uint32_t len = 0;      // bytes, or segment count
    uint32_t likeOff = 0;  // literals: the LIKE pattern as a right operand, in pool_
    uint32_t likeLen = 0;
    bool likeNull = false;  // literal null as a LIKE pattern: never matches
    int64_t i = 0;
    double d = 0;
  };

  struct Segment {
    uint32_t off;
    uint32_t len;
    int32_t index;  // the segment read as an array index, or -1
  };

  enum class NodeKind : uint8_t { kAnd, kOr, kCompare };

  struct Node {
    NodeKind kind;
    Op op;       // kCompare
    uint32_t a;  // kAnd/kOr: first entry in children_; kCompare: left operand
    uint32_t b;  // kAnd/kOr: child count; kCompare: right operand
  };

  bool evalNode(uint32_t index, const EvalContext& ctx) const;
  bool compare(const Node& node, const EvalContext& ctx) const;
  std::string_view str(uint32_t off, uint32_t len) const { return std::string_view(pool_).substr(off, len); }

  std::string pool_;  // every literal string, name and path segment, stored once
  std::vector<Segment> segments_;
  std::vector<Operand> operands_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> children_;
  int32_t root_ = -1;
  bool usesAuth_ = false;
  bool usesRequest_ = false;
};

// PocketBase's wrapLikeParams for one value: v itself when it holds an
// unescaped %, otherwise v with \ % _ escaped (as escapeUnescapedChars does)
// wrapped in %...%. Replaces *out. Exposed for tests.
void wrapLikeParam(std::string_view v, std::string* out);

}  // namespace ssefanout::pb
