#include "pb_filter.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_map>

#include "pb_field_picker.hpp"

namespace ssefanout::pb {

namespace {

constexpr uint32_t kBad = UINT32_MAX;

bool isLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isWordChar(char c) { return isLetter(c) || isDigit(c) || c == '_'; }
bool isIdentStart(char c) { return isLetter(c) || c == '_' || c == '@' || c == '#'; }
bool isIdentChar(char c) { return isWordChar(c) || c == '@' || c == '#' || c == '.' || c == ':'; }
bool isSignChar(char c) { return c == '=' || c == '!' || c == '<' || c == '>' || c == '~' || c == '?'; }
// The filter lexer's whitespace between tokens (fexpr's scanner): space, tab,
// CR and LF. Not FF or VT, unlike pb_field_picker's isTrimSpace(): those are
// not whitespace to a filter.
bool isFilterSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

char foldAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (foldAscii(a[i]) != foldAscii(b[i])) return false;
  }
  return true;
}

// A fragment of the expression for an error message: quoted, control and
// non-ASCII bytes as \xNN, long fragments cut.
std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  constexpr size_t kMax = 48;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else {
        out += "\\x";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
      }
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > kMax) out += "...";
  out += "\"";
  return out;
}

// A whole string read as a decimal number, SQLite-style:
// [+-](digits[.digits*] | .digits)[(e|E)[+-]digits].
bool parseDecimal(std::string_view s, int64_t* i, double* d, bool* isInt) {
  size_t p = 0;
  bool neg = false;
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    neg = s[p] == '-';
    ++p;
  }
  size_t intStart = p;
  while (p < s.size() && isDigit(s[p])) ++p;
  size_t intDigits = p - intStart;
  size_t fracDigits = 0;
  bool dot = false;
  if (p < s.size() && s[p] == '.') {
    dot = true;
    ++p;
    size_t fracStart = p;
    while (p < s.size() && isDigit(s[p])) ++p;
    fracDigits = p - fracStart;
  }
  if (intDigits + fracDigits == 0) return false;
  bool exp = false;
  if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
    exp = true;
    ++p;
    if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
    size_t expStart = p;
    while (p < s.size() && isDigit(s[p])) ++p;
    if (p == expStart) return false;
  }
  if (p != s.size()) return false;
  std::string_view body = s.substr(s[0] == '+' ? 1 : 0);
  if (!dot && !exp) {
    auto r = std::from_chars(body.data(), body.data() + body.size(), *i);
    if (r.ec == std::errc() && r.ptr == body.data() + body.size()) {
      *isInt = true;
      *d = static_cast<double>(*i);
      return true;
    }
  }
  // from_chars does not take ".5" or "5." the way SQLite does; give it a
  // canonical copy when needed.
  char buf[400];
  std::string_view text = body;
  if (dot && (intDigits == 0 || fracDigits == 0)) {
    if (body.size() + 2 > sizeof(buf)) return false;
    size_t n = 0;
    size_t q = 0;
    if (neg) buf[n++] = body[q++];
    if (intDigits == 0) buf[n++] = '0';
    for (; q < body.size(); ++q) {
      buf[n++] = body[q];
      if (body[q] == '.' && fracDigits == 0) buf[n++] = '0';
    }
    text = std::string_view(buf, n);
  }
  auto r = std::from_chars(text.data(), text.data() + text.size(), *d);
  if (r.ptr != text.data() + text.size()) return false;
  if (r.ec == std::errc::result_out_of_range) return false;
  *isInt = false;
  return true;
}

bool containsUnescapedPercent(std::string_view v) {
  char prev = 0;
  for (char c : v) {
    if (c == '%' && prev != '\\') return true;
    prev = (c == '\\' && prev == '\\') ? 0 : c;
  }
  return false;
}

// One evaluated operand.
struct Val {
  enum class Kind : uint8_t { kNull, kNumber, kString, kJson };
  Kind kind = Kind::kNull;
  bool isInt = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;
  simdjson::dom::element e;  // kJson: an array or object
};

Val fromElement(simdjson::dom::element e) {
  Val v;
  switch (e.type()) {
    case simdjson::dom::element_type::STRING:
      v.kind = Val::Kind::kString;
      v.s = e.get_string().value_unsafe();
      break;
    case simdjson::dom::element_type::INT64:
      v.kind = Val::Kind::kNumber;
      v.isInt = true;
      v.i = e.get_int64().value_unsafe();
      v.d = static_cast<double>(v.i);
      break;
    case simdjson::dom::element_type::UINT64: {
      uint64_t u = e.get_uint64().value_unsafe();
      v.kind = Val::Kind::kNumber;
      v.d = static_cast<double>(u);
      if (u <= static_cast<uint64_t>(INT64_MAX)) {
        v.isInt = true;
        v.i = static_cast<int64_t>(u);
      }
      break;
    }
    case simdjson::dom::element_type::DOUBLE:
      v.kind = Val::Kind::kNumber;
      v.d = e.get_double().value_unsafe();
      break;
    case simdjson::dom::element_type::BOOL:
      v.kind = Val::Kind::kNumber;
      v.isInt = true;
      v.i = e.get_bool().value_unsafe() ? 1 : 0;
      v.d = static_cast<double>(v.i);
      break;
    case simdjson::dom::element_type::ARRAY:
    case simdjson::dom::element_type::OBJECT:
      v.kind = Val::Kind::kJson;
      v.e = e;
      break;
    case simdjson::dom::element_type::NULL_VALUE:
      break;
  }
  return v;
}

Val stringVal(std::string_view s) {
  Val v;
  v.kind = Val::Kind::kString;
  v.s = s;
  return v;
}

// Per-thread buffers for the text of arrays, objects and numbers and for
// LIKE patterns built at run time; they grow once and are reused.
struct Scratch {
  std::string left, right, pattern;
};
thread_local Scratch tScratch;

void appendNumberText(const Val& v, std::string* out) {
  char buf[64];
  auto r = v.isInt ? std::to_chars(buf, buf + sizeof(buf), v.i) : std::to_chars(buf, buf + sizeof(buf), v.d);
  out->append(buf, r.ptr);
}

thread_local uint64_t tJsonSerializations = 0;

// The text SQLite would see for v; kNull has none. An array or object is
// serialized once per broadcast when the caller passes a cache.
std::string_view textOf(const Val& v, std::string* scratch, JsonTextCache* cache) {
  switch (v.kind) {
    case Val::Kind::kString:
      return v.s;
    case Val::Kind::kNumber:
      scratch->clear();
      appendNumberText(v, scratch);
      return *scratch;
    case Val::Kind::kJson:
      if (cache) {
        if (const std::string* kept = cache->find(v.e)) return *kept;
      }
      scratch->clear();
      appendJson(v.e, scratch);
      ++tJsonSerializations;
      return cache ? cache->keep(v.e, *scratch) : std::string_view(*scratch);
    case Val::Kind::kNull:
      break;
  }
  return {};
}

int compareNumbers(const Val& a, const Val& b) {
  if (a.isInt && b.isInt) return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  return a.d < b.d ? -1 : (a.d > b.d ? 1 : 0);
}

// Three-way comparison of two non-null values; false when they cannot be
// compared (a string that is not a number against a number).
bool compareValues(const Val& l, const Val& r, JsonTextCache* cache, int* out) {
  bool ln = l.kind == Val::Kind::kNumber;
  bool rn = r.kind == Val::Kind::kNumber;
  if (ln && rn) {
    *out = compareNumbers(l, r);
    return true;
  }
  std::string_view lt = ln ? std::string_view{} : textOf(l, &tScratch.left, cache);
  std::string_view rt = rn ? std::string_view{} : textOf(r, &tScratch.right, cache);
  if (ln || rn) {
    Val num;
    num.kind = Val::Kind::kNumber;
    if (!parseDecimal(ln ? rt : lt, &num.i, &num.d, &num.isInt)) return false;
    *out = ln ? compareNumbers(l, num) : compareNumbers(num, r);
    return true;
  }
  int c = lt.compare(rt);
  *out = c < 0 ? -1 : (c > 0 ? 1 : 0);
  return true;
}

}  // namespace

void wrapLikeParam(std::string_view v, std::string* out) {
  out->clear();
  if (containsUnescapedPercent(v)) {
    out->assign(v);
    return;
  }
  // PocketBase's escapeUnescapedChars walks right to left: each \ % or _
  // gets a backslash unless the character before it already is one, and
  // that character is then taken as it is.
  out->push_back('%');
  bool match = false;
  for (size_t n = v.size(); n-- > 0;) {
    char c = v[n];
    if (match) {
      if (c != '\\') out->push_back('\\');
      match = false;
    } else if (c == '\\' || c == '%' || c == '_') {
      match = true;
    }
    out->push_back(c);
    if (n == 0 && match) out->push_back('\\');
  }
  out->push_back('%');
  std::reverse(out->begin(), out->end());
}

// ---------------------------------------------------------------------------
// Compiler

class FilterCompiler {
 public:
  FilterCompiler(std::string_view expr, Filter* f, std::string* error) : s_(expr), f_(f), error_(error) {}

  bool run() {
    next();
    if (failed_) return false;
    if (tok_.kind == Tok::kEnd) {
      // "" is no condition (PocketBase skips an empty filter and lets an
      // empty rule through before parsing); only whitespace and comments is
      // an error there (fexpr.ErrEmpty), so that subscription gets nothing.
      if (s_.empty()) return true;
      return fail("empty expression: only whitespace or comments");
    }
    uint32_t root = parseOr(0);
    if (failed_) return false;
    if (tok_.kind != Tok::kEnd) {
      if (tok_.kind == Tok::kRParen) return fail("unbalanced parenthesis at " + std::to_string(tok_.pos));
      return fail("expected && or || at " + std::to_string(tok_.pos) + ", got " + quote(tok_.text));
    }
    f_->root_ = static_cast<int32_t>(root);
    return true;
  }

 private:
  using Op = Filter::Op;
  using OperandKind = Filter::OperandKind;

  enum class Tok : uint8_t { kEnd, kLParen, kRParen, kAnd, kOr, kOp, kIdent, kString, kNumber };

  struct Token {
    Tok kind = Tok::kEnd;
    size_t pos = 0;
    std::string_view text;  // the raw bytes of the token
    Op op = Op::kEq;
  };

  bool fail(std::string message) {
    if (!failed_) *error_ = std::move(message);
    failed_ = true;
    return false;
  }

  void next() {
    size_t n = s_.size();
    while (p_ < n) {
      if (isFilterSpace(s_[p_])) {
        ++p_;
      } else if (s_[p_] == '/' && p_ + 1 < n && s_[p_ + 1] == '/') {
        while (p_ < n && s_[p_] != '\n') ++p_;
      } else {
        break;
      }
    }
    tok_ = Token();
    tok_.pos = p_;
    if (p_ >= n) return;
    size_t start = p_;
    char c = s_[p_];
    auto take = [&](Tok kind, size_t end) {
      tok_.kind = kind;
      tok_.text = s_.substr(start, end - start);
      p_ = end;
    };
    if (c == '(') return take(Tok::kLParen, p_ + 1);
    if (c == ')') return take(Tok::kRParen, p_ + 1);
    if (c == '&' || c == '|') {
      size_t e = p_;
      while (e < n && (s_[e] == '&' || s_[e] == '|')) ++e;
      std::string_view run = s_.substr(start, e - start);
      if (run == "&&") return take(Tok::kAnd, e);
      if (run == "||") return take(Tok::kOr, e);
      fail("invalid operator " + quote(run) + " at " + std::to_string(start) + ": expected && or ||");
      return;
    }
    if (isSignChar(c)) {
      size_t e = p_;
      while (e < n && isSignChar(s_[e])) ++e;
      std::string_view run = s_.substr(start, e - start);
      static constexpr std::pair<std::string_view, Op> kOps[] = {
          {"=", Op::kEq}, {"!=", Op::kNeq}, {">", Op::kGt},   {">=", Op::kGte},
          {"<", Op::kLt}, {"<=", Op::kLte}, {"~", Op::kLike}, {"!~", Op::kNotLike},
      };
      for (const auto& [text, op] : kOps) {
        if (run == text) {
          tok_.op = op;
          return take(Tok::kOp, e);
        }
      }
      fail("unsupported operator " + quote(run) + " at " + std::to_string(start) +
           ": only = != > >= < <= ~ !~ are supported");
      return;
    }
    if (c == '"' || c == '\'') {
      // fexpr: the first quote character not preceded by a backslash ends it.
      size_t e = p_ + 1;
      char prev = 0;
      while (e < n && !(s_[e] == c && prev != '\\')) {
        prev = s_[e];
        ++e;
      }
      if (e >= n) {
        fail("unterminated string at " + std::to_string(start));
        return;
      }
      return take(Tok::kString, e + 1);
    }
    if (isDigit(c) || (c == '-' && p_ + 1 < n && isDigit(s_[p_ + 1]))) {
      size_t e = p_ + 1;
      while (e < n && isDigit(s_[e])) ++e;
      if (e < n && s_[e] == '.' && e + 1 < n && isDigit(s_[e + 1])) {
        e += 2;
        while (e < n && isDigit(s_[e])) ++e;
      }
      if (e < n && (isIdentChar(s_[e]) || s_[e] == '-')) {
        while (e < n && (isIdentChar(s_[e]) || s_[e] == '-')) ++e;
        fail("invalid number " + quote(s_.substr(start, e - start)) + " at " + std::to_string(start));
        return;
      }
      return take(Tok::kNumber, e);
    }
    if (isIdentStart(c)) {
      size_t e = p_ + 1;
      while (e < n && isIdentChar(s_[e])) ++e;
      if (e < n && s_[e] == '(') {
        fail("unsupported function " + quote(s_.substr(start, e - start)) + " at " + std::to_string(start) +
             ": functions are not supported");
        return;
      }
      return take(Tok::kIdent, e);
    }
    fail("unexpected character " + quote(s_.substr(start, 1)) + " at " + std::to_string(start));
  }

  uint32_t parseOr(int depth) {
    std::vector<uint32_t> items;
    items.push_back(parseAnd(depth));
    while (!failed_ && tok_.kind == Tok::kOr) {
      next();
      if (failed_) break;
      items.push_back(parseAnd(depth));
    }
    if (failed_) return kBad;
    return group(Filter::NodeKind::kOr, items);
  }

  uint32_t parseAnd(int depth) {
    std::vector<uint32_t> items;
    items.push_back(parseTerm(depth));
    while (!failed_ && tok_.kind == Tok::kAnd) {
      next();
      if (failed_) break;
      items.push_back(parseTerm(depth));
    }
    if (failed_) return kBad;
    return group(Filter::NodeKind::kAnd, items);
  }

  uint32_t group(Filter::NodeKind kind, const std::vector<uint32_t>& items) {
    if (items.size() == 1) return items[0];
    Filter::Node node{kind, Op::kEq, static_cast<uint32_t>(f_->children_.size()), static_cast<uint32_t>(items.size())};
    f_->children_.insert(f_->children_.end(), items.begin(), items.end());
    f_->nodes_.push_back(node);
    return static_cast<uint32_t>(f_->nodes_.size() - 1);
  }

  uint32_t parseTerm(int depth) {
    if (tok_.kind == Tok::kLParen) {
      size_t open = tok_.pos;
      if (depth >= Filter::kMaxDepth) {
        fail("parentheses nested deeper than " + std::to_string(Filter::kMaxDepth) + " at " + std::to_string(open));
        return kBad;
      }
      next();
      if (failed_) return kBad;
      if (tok_.kind == Tok::kRParen) {
        fail("empty parentheses at " + std::to_string(open));
        return kBad;
      }
      uint32_t inner = parseOr(depth + 1);
      if (failed_) return kBad;
      if (tok_.kind == Tok::kEnd) {
        fail("unbalanced parenthesis at " + std::to_string(open));
        return kBad;
      }
      if (tok_.kind != Tok::kRParen) {
        fail("expected && or || at " + std::to_string(tok_.pos) + ", got " + quote(tok_.text));
        return kBad;
      }
      next();
      return failed_ ? kBad : inner;
    }
    if (tok_.kind == Tok::kRParen) {
      fail("unbalanced parenthesis at " + std::to_string(tok_.pos));
      return kBad;
    }
    if (!isOperandToken()) {
      if (tok_.kind == Tok::kEnd) {
        fail("expected an operand at " + std::to_string(tok_.pos));
      } else {
        fail("expected an operand at " + std::to_string(tok_.pos) + ", got " + quote(tok_.text));
      }
      return kBad;
    }
    Token left = tok_;
    uint32_t lhs = operand(tok_);
    if (failed_) return kBad;
    next();
    if (failed_) return kBad;
    if (tok_.kind != Tok::kOp) {
      fail("expected an operator after " + quote(left.text) + " at " + std::to_string(tok_.pos));
      return kBad;
    }
    Token opTok = tok_;
    next();
    if (failed_) return kBad;
    if (!isOperandToken()) {
      fail("expected a value after " + quote(opTok.text) + " at " + std::to_string(tok_.pos));
      return kBad;
    }
    uint32_t rhs = operand(tok_);
    if (failed_) return kBad;
    if (opTok.op == Op::kLike || opTok.op == Op::kNotLike) {
      // A literal pattern is known now (only a right-hand literal needs one):
      // refuse one that likeMatch could not match in linear time (a
      // departure from PocketBase, see pb_like.hpp).
      Filter::Operand& r = f_->operands_[rhs];
      if (r.likeLen > 0) {
        // Already prepared: the same literal was a pattern before.
      } else if (r.kind == OperandKind::kString) {
        setLikePattern(&r, std::string(f_->str(r.off, r.len)));
      } else if (r.kind == OperandKind::kNumber) {
        // PocketBase binds number literals (and true/false as 1/0) as
        // float64 and wrapLikeParams formats them with cast.ToString.
        std::string text;
        appendGoFloat(r.d, &text);
        setLikePattern(&r, text);
      }
      std::string why;
      if ((r.kind == OperandKind::kString || r.kind == OperandKind::kNumber) &&
          !likePatternBounded(f_->str(r.likeOff, r.likeLen), &why)) {
        fail("LIKE pattern " + quote(tok_.text) + " at " + std::to_string(tok_.pos) +
             " is too costly to match: " + why);
        return kBad;
      }
    }
    next();
    if (failed_) return kBad;
    f_->nodes_.push_back(Filter::Node{Filter::NodeKind::kCompare, opTok.op, lhs, rhs});
    return static_cast<uint32_t>(f_->nodes_.size() - 1);
  }

  bool isOperandToken() const {
    return tok_.kind == Tok::kIdent || tok_.kind == Tok::kString || tok_.kind == Tok::kNumber;
  }

  uint32_t addString(std::string_view s) {
    auto off = static_cast<uint32_t>(f_->pool_.size());
    f_->pool_.append(s);
    return off;
  }

  uint32_t push(const Filter::Operand& o) {
    f_->operands_.push_back(o);
    return static_cast<uint32_t>(f_->operands_.size() - 1);
  }

  void setLikePattern(Filter::Operand* o, std::string_view text) {
    std::string pattern;
    wrapLikeParam(text, &pattern);
    o->likeOff = addString(pattern);
    o->likeLen = static_cast<uint32_t>(pattern.size());
  }

  // An operand written twice (the same token text) is stored once: operands
  // are immutable after compile, and repeated paths and literals are common.
  uint32_t operand(const Token& t) {
    auto known = seen_.find(t.text);
    if (known != seen_.end()) return known->second;
    uint32_t index = newOperand(t);
    if (index != kBad && !failed_) seen_.emplace(t.text, index);
    return index;
  }

  uint32_t newOperand(const Token& t) {
    Filter::Operand o;
    if (t.kind == Tok::kString) {
      // fexpr drops the backslash of an escaped quote character only.
      char q = t.text.front();
      std::string_view body = t.text.substr(1, t.text.size() - 2);
      std::string value;
      value.reserve(body.size());
      for (size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '\\' && i + 1 < body.size() && body[i + 1] == q) continue;
        value.push_back(body[i]);
      }
      o.kind = OperandKind::kString;
      o.off = addString(value);
      o.len = static_cast<uint32_t>(value.size());
      return push(o);
    }
    if (t.kind == Tok::kNumber) {
      o.kind = OperandKind::kNumber;
      const char* b = t.text.data();
      const char* e = b + t.text.size();
      bool dot = t.text.find('.') != std::string_view::npos;
      auto r = std::from_chars(b, e, o.i);
      if (!dot && r.ec == std::errc() && r.ptr == e) {
        o.isInt = true;
        o.d = static_cast<double>(o.i);
      } else {
        std::from_chars(b, e, o.d);
      }
      return push(o);
    }
    return identifier(t, &o);
  }

  uint32_t identifier(const Token& t, Filter::Operand* o) {
    std::string_view id = t.text;
    auto unsupported = [&](std::string_view why) {
      std::string m = "unsupported identifier " + quote(id) + " at " + std::to_string(t.pos);
      if (!why.empty()) m += ": " + std::string(why);
      fail(std::move(m));
      return kBad;
    };
    if (id.rfind("@collection.", 0) == 0 || id == "@collection") {
      return unsupported("@collection lookups are not supported");
    }
    if (id == "@request.body" || id.rfind("@request.body.", 0) == 0) {
      return unsupported("@request.body is not available in realtime");
    }
    if (size_t colon = id.find(':'); colon != std::string_view::npos) {
      size_t end = id.find('.', colon);
      fail("unsupported modifier " + quote(id.substr(colon, end == std::string_view::npos ? end : end - colon)) +
           " at " + std::to_string(t.pos + colon) + ": modifiers are not supported");
      return kBad;
    }
    if (!isWordChar(id.back())) {
      fail("invalid identifier " + quote(id) + " at " + std::to_string(t.pos));
      return kBad;
    }
    if (equalsIgnoreCase(id, "null")) {
      o->kind = OperandKind::kNull;
      o->likeNull = true;
      return push(*o);
    }
    if (equalsIgnoreCase(id, "true") || equalsIgnoreCase(id, "false")) {
      o->kind = OperandKind::kNumber;
      o->isInt = true;
      o->i = equalsIgnoreCase(id, "true") ? 1 : 0;
      o->d = static_cast<double>(o->i);
      return push(*o);
    }
    if (id[0] == '@') {
      constexpr std::string_view kRequest = "@request.";
      if (id.rfind(kRequest, 0) != 0) return unsupported("macros are not supported");
      std::string_view rest = id.substr(kRequest.size());
      if (rest == "context" || rest == "method") {
        o->kind = rest == "context" ? OperandKind::kContext : OperandKind::kMethod;
        f_->usesRequest_ = true;
        return push(*o);
      }
      size_t dot = rest.find('.');
      std::string_view head = rest.substr(0, dot);
      std::string_view tail = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
      if (head == "auth" && !tail.empty()) {
        if (!path(tail, id, t.pos, o)) return kBad;
        o->kind = OperandKind::kAuthPath;
        f_->usesAuth_ = true;
        return push(*o);
      }
      if ((head == "query" || head == "headers") && !tail.empty()) {
        for (char c : tail) {
          if (!isWordChar(c)) return unsupported("expected a single name");
        }
        o->kind = head == "query" ? OperandKind::kQuery : OperandKind::kHeader;
        o->off = addString(tail);
        o->len = static_cast<uint32_t>(tail.size());
        f_->usesRequest_ = true;
        return push(*o);
      }
      return unsupported("");
    }
    if (id[0] == '#') return unsupported("");
    if (!path(id, id, t.pos, o)) return kBad;
    o->kind = OperandKind::kRecordPath;
    return push(*o);
  }

  // Splits a dotted path into segments_; false (with the error set) when a
  // segment is empty or not a plain name.
  bool path(std::string_view p, std::string_view id, size_t idPos, Filter::Operand* o) {
    o->off = static_cast<uint32_t>(f_->segments_.size());
    uint32_t count = 0;
    size_t start = 0;
    while (true) {
      size_t dot = p.find('.', start);
      std::string_view seg = p.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (seg.empty()) {
        fail("invalid identifier " + quote(id) + " at " + std::to_string(idPos));
        return false;
      }
      for (char c : seg) {
        if (!isWordChar(c)) {
          fail("unsupported identifier " + quote(id) + " at " + std::to_string(idPos));
          return false;
        }
      }
      if (seg.find("_via_") != std::string_view::npos) {
        fail("unsupported identifier " + quote(id) + " at " + std::to_string(idPos) +
             ": back-relations are not supported");
        return false;
      }
      int32_t index = -1;
      if (seg.size() <= 9 && std::all_of(seg.begin(), seg.end(), isDigit)) {
        std::from_chars(seg.data(), seg.data() + seg.size(), index);
      }
      f_->segments_.push_back(Filter::Segment{addString(seg), static_cast<uint32_t>(seg.size()), index});
      ++count;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    o->len = count;
    o->dotted = count >= 2;
    return true;
  }

  std::string_view s_;
  std::unordered_map<std::string_view, uint32_t> seen_;  // token text -> operand
  size_t p_ = 0;
  Token tok_;
  bool failed_ = false;
  Filter* f_;
  std::string* error_;
};

bool Filter::compile(std::string_view expr, Filter* out, std::string* error) {
  *out = Filter();
  if (expr.size() > kMaxExprBytes) {
    *error =
        "expression too long: " + std::to_string(expr.size()) + " bytes (limit " + std::to_string(kMaxExprBytes) + ")";
    return false;
  }
  Filter f;
  FilterCompiler compiler(expr, &f, error);
  if (!compiler.run()) return false;
  // Compiled filters live as long as their subscriptions: no growth slack.
  f.pool_.shrink_to_fit();
  f.segments_.shrink_to_fit();
  f.operands_.shrink_to_fit();
  f.nodes_.shrink_to_fit();
  f.children_.shrink_to_fit();
  *out = std::move(f);
  return true;
}

namespace {
// A _ that is not escaped with a backslash (LIKE ... ESCAPE '\\').
bool hasUnescapedWildcard(std::string_view pattern) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
    } else if (pattern[i] == '_') {
      return true;
    }
  }
  return false;
}
}  // namespace

size_t Filter::nodeCount() const {
  size_t n = 0;
  for (const Node& node : nodes_) {
    const OperandKind right = node.kind == NodeKind::kCompare ? operands_[node.b].kind : OperandKind::kNull;
    const bool runTimeLike = node.kind == NodeKind::kCompare && (node.op == Op::kLike || node.op == Op::kNotLike) &&
                             right != OperandKind::kString && right != OperandKind::kNumber &&
                             right != OperandKind::kNull;
    if (runTimeLike) {
      n += kRunTimeLikeNodes;
    } else if (node.kind == NodeKind::kCompare && (node.op == Op::kLike || node.op == Op::kNotLike) &&
               hasUnescapedWildcard(str(operands_[node.b].likeOff, operands_[node.b].likeLen))) {
      n += kWildcardLikeNodes;
    } else {
      n += 1;
    }
  }
  return n;
}

size_t Filter::memoryBytes() const {
  size_t pool = pool_.capacity() > 15 ? pool_.capacity() + 1 : 0;  // beyond the small-string buffer
  return sizeof(Filter) + pool + segments_.capacity() * sizeof(Segment) + operands_.capacity() * sizeof(Operand) +
         nodes_.capacity() * sizeof(Node) + children_.capacity() * sizeof(uint32_t);
}

// ---------------------------------------------------------------------------
// Evaluation

uint64_t Filter::jsonSerializations() { return tJsonSerializations; }

bool Filter::evaluate(const EvalContext& ctx) const {
  if (root_ < 0) return true;
  return evalNode(static_cast<uint32_t>(root_), ctx);
}

bool Filter::evalNode(uint32_t index, const EvalContext& ctx) const {
  const Node& n = nodes_[index];
  switch (n.kind) {
    case NodeKind::kAnd:
      for (uint32_t k = 0; k < n.b; ++k) {
        if (!evalNode(children_[n.a + k], ctx)) return false;
      }
      return true;
    case NodeKind::kOr:
      for (uint32_t k = 0; k < n.b; ++k) {
        if (evalNode(children_[n.a + k], ctx)) return true;
      }
      return false;
    case NodeKind::kCompare:
      return compare(n, ctx);
  }
  return false;
}

bool Filter::compare(const Node& node, const EvalContext& ctx) const {
  const Operand& lo = operands_[node.a];
  const Operand& ro = operands_[node.b];

  auto lookup = [&](simdjson::dom::element cur, const Operand& o) {
    for (uint32_t k = 0; k < o.len; ++k) {
      const Segment& seg = segments_[o.off + k];
      simdjson::dom::object obj;
      simdjson::dom::array arr;
      if (cur.get_object().get(obj) == simdjson::SUCCESS) {
        if (obj.at_key(str(seg.off, seg.len)).get(cur) != simdjson::SUCCESS) return Val();
      } else if (seg.index >= 0 && cur.get_array().get(arr) == simdjson::SUCCESS) {
        if (arr.at(static_cast<size_t>(seg.index)).get(cur) != simdjson::SUCCESS) return Val();
      } else {
        return Val();
      }
    }
    return fromElement(cur);
  };
  auto resolve = [&](const Operand& o) {
    Val v;
    switch (o.kind) {
      case OperandKind::kNull:
        break;
      case OperandKind::kNumber:
        v.kind = Val::Kind::kNumber;
        v.isInt = o.isInt;
        v.i = o.i;
        v.d = o.d;
        break;
      case OperandKind::kString:
        v = stringVal(str(o.off, o.len));
        break;
      case OperandKind::kRecordPath:
        v = lookup(ctx.record, o);
        break;
      case OperandKind::kAuthPath:
        if (ctx.auth) v = lookup(*ctx.auth, o);
        break;
      case OperandKind::kQuery:
        if (ctx.options) {
          if (const std::string* q = ctx.options->queryValue(str(o.off, o.len))) v = stringVal(*q);
        }
        break;
      case OperandKind::kHeader:
        if (ctx.options) {
          if (const std::string* h = ctx.options->headerValue(str(o.off, o.len))) v = stringVal(*h);
        }
        break;
      case OperandKind::kContext:
        v = stringVal(ctx.context);
        break;
      case OperandKind::kMethod:
        v = stringVal(ctx.method);
        break;
    }
    return v;
  };

  Val l = resolve(lo);
  Val r = resolve(ro);
  switch (node.op) {
    case Op::kEq:
    case Op::kNeq: {
      if (!lo.dotted && !ro.dotted) {
        if (l.kind == Val::Kind::kNull) l = stringVal({});
        if (r.kind == Val::Kind::kNull) r = stringVal({});
      }
      bool eq;
      if (l.kind == Val::Kind::kNull || r.kind == Val::Kind::kNull) {
        eq = l.kind == r.kind;
      } else {
        int c = 0;
        eq = compareValues(l, r, ctx.jsonText, &c) && c == 0;
      }
      return (node.op == Op::kEq) == eq;
    }
    case Op::kGt:
    case Op::kGte:
    case Op::kLt:
    case Op::kLte: {
      if (l.kind == Val::Kind::kNull || r.kind == Val::Kind::kNull) return false;
      int c = 0;
      if (!compareValues(l, r, ctx.jsonText, &c)) return false;
      switch (node.op) {
        case Op::kGt:
          return c > 0;
        case Op::kGte:
          return c >= 0;
        case Op::kLt:
          return c < 0;
        default:
          return c <= 0;
      }
    }
    case Op::kLike:
    case Op::kNotLike: {
      if (l.kind == Val::Kind::kNull) return false;
      std::string_view pattern;
      switch (ro.kind) {
        case OperandKind::kNull:
        case OperandKind::kNumber:
        case OperandKind::kString:
          if (ro.likeNull) return false;
          pattern = str(ro.likeOff, ro.likeLen);
          break;
        default: {
          if (r.kind == Val::Kind::kNull) return false;
          std::string_view rt = textOf(r, &tScratch.right, ctx.jsonText);
          std::string& p = tScratch.pattern;
          if (ro.kind == OperandKind::kRecordPath || ro.kind == OperandKind::kAuthPath) {
            // A column on the right: '%' || col || '%', no escaping.
            p.clear();
            p.push_back('%');
            p.append(rt);
            p.push_back('%');
          } else {
            wrapLikeParam(rt, &p);
          }
          pattern = p;
          break;
        }
      }
      std::string_view text = textOf(l, &tScratch.left, ctx.jsonText);
      bool m = likeMatch(text, pattern);
      return (node.op == Op::kLike) == m;
    }
  }
  return false;
}

bool Filter::testJson(std::string_view recordJson, const std::string_view* authJson, bool* result,
                      std::string* error) const {
  simdjson::dom::parser parser;
  simdjson::dom::document recordDoc, authDoc;
  simdjson::dom::element recordRoot, authRoot;
  if (parser.parse_into_document(recordDoc, recordJson.data(), recordJson.size()).get(recordRoot) !=
          simdjson::SUCCESS ||
      !recordRoot.is_object()) {
    *error = "record is not a JSON object";
    return false;
  }
  EvalContext ctx;
  ctx.record = recordRoot;
  if (authJson) {
    if (parser.parse_into_document(authDoc, authJson->data(), authJson->size()).get(authRoot) != simdjson::SUCCESS ||
        !authRoot.is_object()) {
      *error = "auth is not a JSON object";
      return false;
    }
    ctx.auth = &authRoot;
  }
  *result = evaluate(ctx);
  return true;
}

}  // namespace ssefanout::pb
