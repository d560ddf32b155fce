// The reference for src/mercure/uri_template: yosida95/uritemplate v3.0.2
// ported line by line, parse.go (New) and expression.go (Template.Regexp),
// producing the very regexp text the Go hub compiles, which std::regex
// (ECMAScript) then runs. Test and fuzz code only: std::regex backtracks and
// recurses, so it is run on short inputs.
//
// Go's regexp works on runes, std::regex on bytes; they agree here because
// every byte a match can consume is ASCII or part of a template literal,
// which the parser accepted as valid UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ssefanout::test {

struct UriTemplateReference {
  bool ok = false;      // uritemplate.New succeeded
  std::string pattern;  // Template.Regexp()'s source
  size_t expressions = 0;
  size_t variables = 0;
};

namespace uritemplate_ref {

// utf8.DecodeRuneInString: (rune, size); rune 0xFFFD with size 1 on an error,
// size 0 at the end.
inline std::pair<uint32_t, size_t> decodeRune(std::string_view s, size_t i) {
  if (i >= s.size()) return {0xFFFD, 0};
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return {c, 1};
  int need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
  if (need < 0 || c > 0xF4 || i + static_cast<size_t>(need) >= s.size()) return {0xFFFD, 1};
  uint32_t cp = c & (0x3F >> need);
  for (int k = 1; k <= need; ++k) {
    const unsigned char x = b(static_cast<size_t>(k));
    if ((x & 0xC0) != 0x80) return {0xFFFD, 1};
    cp = (cp << 6) | (x & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0xFFFD, 1};
  return {cp, static_cast<size_t>(need) + 1};
}

inline bool inTable(uint32_t r, const uint32_t (*ranges)[2], size_t n) {
  for (size_t k = 0; k < n; ++k) {
    if (r >= ranges[k][0] && r <= ranges[k][1]) return true;
  }
  return false;
}

// rangeLiterals, as parse.go lists it.
inline bool isLiteral(uint32_t r) {
  static constexpr uint32_t kRanges[][2] = {
      {0x21, 0x21},       {0x23, 0x24},       {0x26, 0x3B},       {0x3D, 0x3D},        {0x3F, 0x5B},
      {0x5D, 0x5D},       {0x5F, 0x5F},       {0x61, 0x7A},       {0x7E, 0x7E},        {0xA0, 0xD7FF},
      {0xE000, 0xF8FF},   {0xF900, 0xFDCF},   {0xFDF0, 0xFFEF},   {0x10000, 0x1FFFD},  {0x20000, 0x2FFFD},
      {0x30000, 0x3FFFD}, {0x40000, 0x4FFFD}, {0x50000, 0x5FFFD}, {0x60000, 0x6FFFD},  {0x70000, 0x7FFFD},
      {0x80000, 0x8FFFD}, {0x90000, 0x9FFFD}, {0xA0000, 0xAFFFD}, {0xB0000, 0xBFFFD},  {0xC0000, 0xCFFFD},
      {0xD0000, 0xDFFFD}, {0xE1000, 0xEFFFD}, {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD}};
  return inTable(r, kRanges, sizeof(kRanges) / sizeof(kRanges[0]));
}

inline bool isVarchar(uint32_t r) {
  return (r >= '0' && r <= '9') || (r >= 'A' && r <= 'Z') || r == '_' || (r >= 'a' && r <= 'z');
}

inline bool ishex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

// regexp.QuoteMeta
inline std::string quoteMeta(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view(R"(\.+*?()|[]{}^$)").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

inline void runeClassToRegexp(std::string* b, bool reserved, bool named) {
  *b += "(?:(?:[";
  if (!reserved) {
    *b += R"(\x2c)";
    if (named) *b += R"(\x3d)";
  }
  *b += R"(\x2d\x2e\x30-\x39\x41-\x5a\x5f\x61-\x7a\x7e)";
  if (reserved) *b += R"(\x21\x23\x24\x26-\x2c\x2f\x3a\x3b\x3d\x3f\x40\x5b\x5d)";
  *b += "]";
  *b += "|%[[:xdigit:]][[:xdigit:]]";
  *b += ")*)";
}

struct Varspec {
  bool explode = false;
};

// expression.regexp()
inline void expressionRegexp(std::string* b, char op, const std::vector<Varspec>& vars) {
  std::string first, sep;
  bool reserved = false, named = false;
  // clang-format off
  switch (op) {
    case '+': sep = ","; reserved = true; break;
    case '#': first = "#"; sep = ","; reserved = true; break;
    case '.': first = "."; sep = "."; break;
    case '/': first = "/"; sep = "/"; break;
    case ';': first = ";"; sep = ";"; named = true; break;
    case '?': first = "?"; sep = "&"; named = true; break;
    case '&': first = "&"; sep = "&"; named = true; break;
    default: sep = ","; break;
  }
  // clang-format on
  if (!first.empty()) {
    *b += "(?:";
    *b += quoteMeta(first);
  }
  *b += '(';
  runeClassToRegexp(b, reserved, named || vars[0].explode);
  if (vars.size() > 1 || vars[0].explode) {
    long max = static_cast<long>(vars.size()) - 1;
    for (const auto& v : vars) {
      if (v.explode) {
        max = -1;
        break;
      }
    }
    *b += "(?:";
    *b += quoteMeta(sep);
    runeClassToRegexp(b, reserved, named || max < 0);
    *b += ')';
    if (max > 0) {
      *b += "{0," + std::to_string(max) + "}";
    } else {
      *b += '*';
    }
  }
  *b += ')';
  if (!first.empty()) *b += ')';
  *b += '?';
}

}  // namespace uritemplate_ref

// uritemplate.New(s) then Regexp(): ok false when New fails.
inline UriTemplateReference uriTemplateReference(std::string_view s) {
  using namespace uritemplate_ref;
  enum { kDefault, kOperator, kVarList, kVarName, kPrefix } state = kDefault;
  UriTemplateReference out;
  std::string re = "^";
  size_t start = 0, stop = 0;
  char op = 0;
  std::vector<Varspec> vars;
  int maxlen = 0;
  auto consumeTriplet = [&]() {
    if (s.size() - stop < 3 || s[stop] != '%' || !ishex(s[stop + 1]) || !ishex(s[stop + 2])) return false;
    stop += 3;
    return true;
  };
  auto isValidVarname = [](std::string_view name) {
    size_t l = name.size();
    if (l == 0 || name[0] == '.' || name[l - 1] == '.') return false;
    for (size_t i = 1; i + 1 < l; ++i) {
      if (name[i] == '.' && name[i - 1] == '.') return false;
    }
    return true;
  };
  for (;;) {
    const auto decoded = decodeRune(s, stop);
    const uint32_t r = decoded.first;
    const size_t size = decoded.second;
    if (r == 0xFFFD) {
      if (size == 0) {
        if (state != kDefault) return out;
        if (start < stop) re += "(?:" + quoteMeta(s.substr(start, stop - start)) + ")";
        out.ok = true;
        out.pattern = re + "$";
        return out;
      }
      return out;
    }
    stop += size;
    auto unread = [&]() { stop -= size; };
    switch (state) {
      case kDefault:
        if (r == '{') {
          if (stop - size > start) re += "(?:" + quoteMeta(s.substr(start, stop - size - start)) + ")";
          op = 0;
          vars.clear();
          ++out.expressions;
          state = kOperator;
          start = stop;
        } else if (r == '%') {
          unread();
          if (!consumeTriplet()) return out;
        } else if (!isLiteral(r)) {
          return out;
        }
        break;
      case kOperator:
        if (r == '=' || r == ',' || r == '!' || r == '@' || r == '|') return out;
        if (r == '+' || r == '#' || r == '.' || r == '/' || r == ';' || r == '?' || r == '&') {
          op = static_cast<char>(r);
        } else {
          unread();
          op = 0;
        }
        state = kVarName;
        start = stop;
        break;
      case kVarList:
        if (r == ',') {
          state = kVarName;
          start = stop;
        } else if (r == '}') {
          expressionRegexp(&re, op, vars);
          state = kDefault;
          start = stop;
        } else {
          return out;
        }
        break;
      case kVarName:
        if (r == ':' || r == '*') {
          if (!isValidVarname(s.substr(start, stop - size - start))) return out;
          vars.push_back({r == '*'});
          ++out.variables;
          state = r == '*' ? kVarList : kPrefix;
          maxlen = 0;
          start = stop;
        } else if (r == ',' || r == '}') {
          unread();
          if (!isValidVarname(s.substr(start, stop - start))) return out;
          vars.push_back({false});
          ++out.variables;
          state = kVarList;
          start = stop;
        } else if (r == '%') {
          unread();
          if (!consumeTriplet()) return out;
        } else if (r == '.') {
          size_t dot = stop - size;
          if (dot == start || s[dot - 1] == '.') return out;
        } else if (!isVarchar(r)) {
          return out;
        }
        break;
      case kPrefix:
        if (r >= '0' && r <= '9') {
          maxlen = maxlen * 10 + static_cast<int>(r - '0');
          if (maxlen == 0 || maxlen > 9999) return out;
        } else {
          unread();
          if (maxlen == 0) return out;
          state = kVarList;
          start = stop;
        }
        break;
    }
  }
}

// How the reference compiles the regexp text.
inline std::regex::flag_type uriTemplateReferenceSyntax() {
#ifdef __GLIBCXX__
  // libstdc++'s breadth-first executor: polynomial, where the default
  // depth-first one is exponential on patterns such as (x*(,x*)*)?.
  return std::regex::ECMAScript | std::regex_constants::__polynomial;
#else
  return std::regex::ECMAScript;
#endif
}

// The compiled reference regexp; nullopt when std::regex refuses the text.
inline std::optional<std::regex> uriTemplateReferenceRegex(const std::string& pattern) {
  try {
    return std::regex(pattern, uriTemplateReferenceSyntax());
  } catch (const std::regex_error&) {
    return std::nullopt;
  }
}

// Template.Regexp().MatchString(topic) through std::regex; nullopt when
// std::regex gives up (its complexity or stack limits).
inline std::optional<bool> uriTemplateReferenceMatch(const std::regex& re, std::string_view topic) {
  try {
    return std::regex_match(topic.begin(), topic.end(), re);
  } catch (const std::regex_error&) {
    return std::nullopt;
  }
}

inline std::optional<bool> uriTemplateReferenceMatch(const std::string& pattern, std::string_view topic) {
  const auto re = uriTemplateReferenceRegex(pattern);
  if (!re) return std::nullopt;
  return uriTemplateReferenceMatch(*re, topic);
}

}  // namespace ssefanout::test
