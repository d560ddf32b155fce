#include "uri_template.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace ssefanout::mercure {
namespace {

using ByteClass = UriTemplate::ByteClass;

constexpr size_t kNone = static_cast<size_t>(-1);
// Positions 0..kMaxTopicBytes, one bit each.
constexpr size_t kWords = (UriTemplate::kMaxTopicBytes + 1 + 63) / 64;
// Below this many reachable positions a literal is compared at each of them;
// from it on, one KMP pass over the topic keeps the piece linear.
constexpr size_t kDirectCompares = 4;

// The reachable positions of a topic of n bytes (bits 0..n).
class Positions {
 public:
  explicit Positions(size_t n) : words_(n / 64 + 1) { std::memset(w_.data(), 0, words_ * sizeof(uint64_t)); }
  void clear() { std::memset(w_.data(), 0, words_ * sizeof(uint64_t)); }
  void set(size_t p) { w_[p >> 6] |= uint64_t{1} << (p & 63); }
  bool test(size_t p) const { return ((w_[p >> 6] >> (p & 63)) & 1) != 0; }
  // The first reachable position >= from, or kNone.
  size_t next(size_t from) const {
    size_t i = from >> 6;
    if (i >= words_) return kNone;
    uint64_t word = w_[i] & (~uint64_t{0} << (from & 63));
    while (word == 0) {
      if (++i == words_) return kNone;
      word = w_[i];
    }
    return (i << 6) + static_cast<size_t>(__builtin_ctzll(word));
  }

 private:
  size_t words_;
  std::array<uint64_t, kWords> w_;
};

bool isHex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

// %XX at s[i] (s[i] is '%').
bool pctAt(std::string_view s, size_t i) {
  return i + 2 < s.size() && isHex(static_cast<unsigned char>(s[i + 1])) && isHex(static_cast<unsigned char>(s[i + 2]));
}

struct Rune {
  uint32_t cp = 0;
  size_t len = 0;  // 0: not valid UTF-8
};

// One UTF-8 character at s[i], as Go's decoder reads it: no overlong form, no
// surrogate, nothing over U+10FFFF. U+FFFD itself comes back invalid: Go's
// parser cannot tell it from a decoding error and refuses it too.
Rune decode(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = at(0);
  if (c < 0x80) return {c, 1};
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {};
  }
  if (i + len > s.size()) return {};
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = at(k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return {};
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp == 0xFFFD) return {};
  return {cp, len};
}

// RFC 6570 `literals` (with ' allowed, erratum 6937): what may stand outside
// an expression, besides %XX.
bool isLiteralChar(uint32_t cp) {
  if (cp < 0x80) {
    return cp == '!' || cp == '#' || cp == '$' || (cp >= '&' && cp <= ';') || cp == '=' || (cp >= '?' && cp <= '[') ||
           cp == ']' || cp == '_' || (cp >= 'a' && cp <= 'z') || cp == '~';
  }
  if (cp >= 0x10000) {
    // ucschar and iprivate: every plane but its last two code points, minus
    // U+E0000..U+E0FFF.
    return (cp & 0xFFFF) <= 0xFFFD && !(cp >= 0xE0000 && cp <= 0xE0FFF);
  }
  return (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFDCF) || (cp >= 0xFDF0 && cp <= 0xFFEF);
}

bool isVarchar(uint32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || cp == '_' || (cp >= 'a' && cp <= 'z');
}

// Go's isValidVarname: not empty, no dot at either end, no two dots in a row.
bool isValidVarname(std::string_view name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  return name.find("..") == std::string_view::npos;
}

// A value's class: U, plus R for + and #; without R, ',' and, when asked, '='
// (R holds both anyway).
ByteClass valueClass(bool reserved, bool withEquals) {
  ByteClass c;
  for (unsigned char b : std::string_view("-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"))
    c.add(b);
  if (reserved) {
    for (unsigned char b : std::string_view("!#$&'()*+,/:;=?@[]")) c.add(b);
  } else {
    c.add(',');
    if (withEquals) c.add('=');
  }
  return c;
}

}  // namespace

// The parser of uritemplate.New, state for state (parse.go), building the
// pieces of Template.Regexp() (expression.go) instead of a regexp.
class UriTemplate::Parser {
 public:
  explicit Parser(UriTemplate* t) : t_(t), s_(t->text_) {}

  bool run() {
    enum class State { kLiteral, kOperator, kVarName, kPrefix, kVarList };
    State state = State::kLiteral;
    size_t start = 0;  // of the current literal or variable name
    size_t i = 0;
    unsigned prefix = 0;
    for (;;) {
      if (i == s_.size()) {
        if (state != State::kLiteral) return false;  // an unclosed {
        addLiteral(start, i);
        return expressions_ > 0;
      }
      const Rune r = decode(s_, i);
      if (r.len == 0) return false;
      const uint32_t cp = r.cp;
      switch (state) {
        case State::kLiteral:
          if (cp == '{') {
            addLiteral(start, i);
            if (++expressions_ > kMaxExpressions) return false;
            expr_ = Expr{};
            state = State::kOperator;
            ++i;
          } else if (cp == '%') {
            if (!pctAt(s_, i)) return false;
            i += 3;
          } else {
            if (!isLiteralChar(cp)) return false;
            i += r.len;
          }
          break;
        case State::kOperator:
          if (cp == '=' || cp == ',' || cp == '!' || cp == '@' || cp == '|') return false;  // op-reserved
          if (cp == '+' || cp == '#' || cp == '.' || cp == '/' || cp == ';' || cp == '?' || cp == '&') {
            expr_.op = static_cast<char>(cp);
            ++i;
          }
          state = State::kVarName;
          start = i;
          break;
        case State::kVarName:
          if (cp == ':' || cp == '*' || cp == ',' || cp == '}') {
            if (!isValidVarname(s_.substr(start, i - start)) || !addVariable(cp == '*')) return false;
            if (cp == ':' || cp == '*') ++i;  // , and } are read again by kVarList
            state = cp == ':' ? State::kPrefix : State::kVarList;
            prefix = 0;
          } else if (cp == '%') {
            if (!pctAt(s_, i)) return false;
            i += 3;
          } else if (cp == '.') {
            if (i == start || s_[i - 1] == '.') return false;
            ++i;
          } else {
            if (!isVarchar(cp)) return false;
            ++i;
          }
          break;
        case State::kPrefix:
          // Parsed and ignored, as by Regexp(): 1..9999, no leading zero.
          if (cp >= '0' && cp <= '9') {
            prefix = prefix * 10 + (cp - '0');
            if (prefix == 0 || prefix > 9999) return false;
            ++i;
          } else {
            if (prefix == 0) return false;
            state = State::kVarList;
          }
          break;
        case State::kVarList:
          if (cp == ',') {
            state = State::kVarName;
            start = ++i;
          } else if (cp == '}') {
            addExpression();
            state = State::kLiteral;
            start = ++i;
          } else {
            return false;  // e.g. {x:3*}
          }
          break;
      }
    }
  }

 private:
  struct Expr {
    char op = 0;
    size_t vars = 0;
    bool firstExploded = false;
    bool anyExploded = false;
  };

  bool addVariable(bool exploded) {
    if (++variables_ > kMaxVariables) return false;
    if (expr_.vars == 0) expr_.firstExploded = exploded;
    expr_.anyExploded = expr_.anyExploded || exploded;
    ++expr_.vars;
    return true;
  }

  void addLiteral(size_t begin, size_t end) {
    if (end == begin) return;
    Piece p;
    p.literal = true;
    p.begin = static_cast<uint32_t>(begin);
    p.size = static_cast<uint32_t>(end - begin);
    t_->pieces_.push_back(p);
    t_->minLength_ += p.size;
    // KMP: failure_[begin + j] is the length of the longest proper prefix of
    // the literal that ends at its byte j.
    uint32_t* fail = t_->failure_.data() + begin;
    std::string_view lit = s_.substr(begin, end - begin);
    fail[0] = 0;
    uint32_t k = 0;
    for (size_t j = 1; j < lit.size(); ++j) {
      while (k > 0 && lit[j] != lit[k]) k = fail[k - 1];
      if (lit[j] == lit[k]) ++k;
      fail[j] = k;
    }
  }

  void addExpression() {
    Piece p;
    bool reserved = false, named = false;
    switch (expr_.op) {
      case '+':
        p.sep = ',';
        reserved = true;
        break;
      case '#':
        p.first = '#';
        p.sep = ',';
        reserved = true;
        break;
      case '.':
      case '/':
        p.first = p.sep = expr_.op;
        break;
      case ';':
        p.first = p.sep = ';';
        named = true;
        break;
      case '?':
        p.first = '?';
        p.sep = '&';
        named = true;
        break;
      case '&':
        p.first = p.sep = '&';
        named = true;
        break;
      default:
        p.sep = ',';
        break;
    }
    p.firstClass = valueClass(reserved, named || expr_.firstExploded);
    p.restClass = valueClass(reserved, named || expr_.anyExploded);
    p.unbounded = expr_.anyExploded;
    p.reps = expr_.anyExploded ? 0 : static_cast<uint8_t>(expr_.vars - 1);
    t_->pieces_.push_back(p);
  }

  UriTemplate* t_;
  std::string_view s_;
  Expr expr_;
  size_t expressions_ = 0;
  size_t variables_ = 0;
};

std::optional<UriTemplate> UriTemplate::compile(std::string_view text) {
  if (text.size() > kMaxTemplateBytes) return std::nullopt;
  UriTemplate t;
  t.text_.assign(text);
  t.failure_.assign(text.size(), 0);
  if (!Parser(&t).run()) return std::nullopt;
  return t;
}

std::string_view UriTemplate::literalPrefix() const {
  const Piece& p = pieces_.front();
  return p.literal ? std::string_view(text_).substr(p.begin, p.size) : std::string_view();
}

std::string_view UriTemplate::literalSuffix() const {
  const Piece& p = pieces_.back();
  // A template has an expression (compile()), so a literal last piece is
  // never the first one too.
  return p.literal && pieces_.size() > 1 ? std::string_view(text_).substr(p.begin, p.size) : std::string_view();
}

namespace {

// Moves every reachable position p of *cur past the literal at p, into *next.
// Returns whether any position is left.
bool stepLiteral(std::string_view topic, std::string_view lit, const uint32_t* fail, const Positions& cur,
                 Positions* next) {
  const size_t n = topic.size(), m = lit.size();
  if (m > n) return false;
  const size_t lo = cur.next(0);
  if (lo == kNone || lo > n - m) return false;
  bool any = false;
  size_t few = 0;
  for (size_t p = lo; p != kNone && p <= n - m && few <= kDirectCompares; p = cur.next(p + 1)) ++few;
  if (few <= kDirectCompares) {
    for (size_t p = lo; p != kNone && p <= n - m; p = cur.next(p + 1)) {
      if (std::memcmp(topic.data() + p, lit.data(), m) == 0) {
        next->set(p + m);
        any = true;
      }
    }
    return any;
  }
  size_t j = 0;
  for (size_t k = lo; k < n; ++k) {
    while (j > 0 && topic[k] != lit[j]) j = fail[j - 1];
    if (topic[k] == lit[j]) ++j;
    if (j == m) {
      if (cur.test(k + 1 - m)) {
        next->set(k + 1);
        any = true;
      }
      j = fail[j - 1];
    }
  }
  return any;
}

// One expression piece, (?: FIRST ( V0 (?: SEP V )REP ) )?, in one pass.
// State bit 0: inside V0; bit j (1..reps): inside the value after the j-th
// separator. Unbounded (REP *) needs no count: bit 1 stands for them all.
// Every state accepts (values may be empty), and so does every position of
// *cur (the expression is optional). Transitions move 1 byte (a class byte, a
// separator) or 3 (%XX), so a ring of 4 masks is the whole pending state.
bool stepExpression(std::string_view topic, char first, char sep, bool unbounded, unsigned reps,
                    const ByteClass& firstClass, const ByteClass& restClass, const Positions& cur, Positions* next) {
  const size_t n = topic.size();
  const uint32_t states = unbounded ? 3u : (reps >= 31 ? ~0u : (2u << reps) - 1);
  uint32_t ring[4] = {0, 0, 0, 0};
  bool any = false;
  for (size_t p = cur.next(0); p != kNone && p <= n; ++p) {
    uint32_t m = ring[p & 3];
    ring[p & 3] = 0;
    if (cur.test(p)) {
      if (first == 0) {
        m |= 1;
      } else if (p < n && topic[p] == first) {
        ring[(p + 1) & 3] |= 1;
      }
      next->set(p);
      any = true;
    }
    if (m == 0) {
      if ((ring[0] | ring[1] | ring[2] | ring[3]) == 0) {
        // Nothing in flight: jump to the next reachable position.
        const size_t q = cur.next(p + 1);
        if (q == kNone) break;
        p = q - 1;
      }
      continue;
    }
    next->set(p);
    any = true;
    if (p == n) break;
    const auto c = static_cast<unsigned char>(topic[p]);
    uint32_t to = 0;
    if ((m & 1) && firstClass.has(c)) to |= 1;
    if ((m & ~1u) && restClass.has(c)) to |= m & ~1u;
    if (c == static_cast<unsigned char>(sep) && (unbounded || reps > 0)) to |= unbounded ? 2u : (m << 1) & states;
    ring[(p + 1) & 3] |= to;
    if (c == '%' && pctAt(topic, p)) ring[(p + 3) & 3] |= m;
  }
  return any;
}

}  // namespace

size_t UriTemplate::expressions() const {
  return static_cast<size_t>(std::count_if(pieces_.begin(), pieces_.end(), [](const Piece& p) { return !p.literal; }));
}

bool UriTemplate::matches(std::string_view topic) const {
  const size_t n = topic.size();
  if (n > kMaxTopicBytes || n < minLength_) return false;
  const std::string_view text(text_);
  // The literal prefix and suffix are checked in place, once, before any
  // state is set up: most topics an index tries fail here.
  const Piece& head = pieces_.front();
  if (head.literal && topic.compare(0, head.size, text.substr(head.begin, head.size)) != 0) return false;
  const Piece& tail = pieces_.back();
  if (tail.literal && topic.compare(n - tail.size, tail.size, text.substr(tail.begin, tail.size)) != 0) return false;
  size_t from = 0, to = pieces_.size();
  Positions a(n), b(n);
  Positions* cur = &a;
  Positions* next = &b;
  if (head.literal) {
    cur->set(head.size);
    from = 1;
  } else {
    cur->set(0);
  }
  size_t suffix = 0;
  if (tail.literal) {
    suffix = tail.size;
    --to;
  }
  for (size_t i = from; i < to; ++i) {
    const Piece& p = pieces_[i];
    next->clear();
    const bool any =
        p.literal ? stepLiteral(topic, text.substr(p.begin, p.size), failure_.data() + p.begin, *cur, next)
                  : stepExpression(topic, p.first, p.sep, p.unbounded, p.reps, p.firstClass, p.restClass, *cur, next);
    if (!any) return false;
    std::swap(cur, next);
  }
  return cur->test(n - suffix);
}

}  // namespace ssefanout::mercure
