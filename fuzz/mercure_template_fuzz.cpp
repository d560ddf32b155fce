// Fuzz target: UriTemplate (src/mercure/uri_template.hpp) and selectorMatches.
//
// Input: one mode byte, then template NUL topic (no NUL: the topic is the
// template itself). The topic is repeated 1, 8, 64 or 700 times (mode % 4),
// so short inputs reach the 4 KiB topic bound. Asserted:
//  - compile() succeeds exactly when the port of Go's parser
//    (test/cpp/uri_template_reference.hpp) accepts the template, it has an
//    expression, and it keeps the bounds (bytes, expressions, variables);
//  - on short inputs, matches() equals the Go regexp text run by std::regex;
//  - a topic over kMaxTopicBytes never matches; a match starts with the
//    literal prefix, ends with the literal suffix (MercureIndex's buckets
//    rely on both) and is at least minLength() bytes;
//  - selectorMatches() is the four steps over the same compile() and matches().
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "selector.hpp"
#include "uri_template.hpp"
#include "uri_template_reference.hpp"

using fuzzutil::show;
using ssefanout::mercure::selectorMatches;
using ssefanout::mercure::UriTemplate;

namespace {

// std::regex is compiled per input and backtracks: kept to short inputs.
constexpr size_t kReferenceBytes = 64;
constexpr unsigned kRepeats[] = {1, 8, 64, 700};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const unsigned mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nul = in.find('\0');
  const std::string_view tpl = in.substr(0, nul);
  const std::string_view once = nul == std::string_view::npos ? tpl : in.substr(nul + 1);
  std::string topic;
  for (unsigned k = 0; k < kRepeats[mode % 4] && topic.size() <= UriTemplate::kMaxTopicBytes + 8; ++k) {
    topic.append(once);
  }

  const auto t = UriTemplate::compile(tpl);
  const auto ref = ssefanout::test::uriTemplateReference(tpl);
  const bool inBounds = tpl.size() <= UriTemplate::kMaxTemplateBytes &&
                        ref.expressions <= UriTemplate::kMaxExpressions && ref.variables <= UriTemplate::kMaxVariables;
  const bool want = ref.ok && ref.expressions > 0 && inBounds;
  FUZZ_CHECK(t.has_value() == want, "compile(%s) = %d, reference ok %d, %zu expressions, %zu variables",
             show(tpl).c_str(), t.has_value(), ref.ok, ref.expressions, ref.variables);

  bool got = false;
  if (t) {
    got = t->matches(topic);
    if (topic.size() > UriTemplate::kMaxTopicBytes) FUZZ_CHECK(!got, "a %zu-byte topic matched", topic.size());
    if (got) {
      FUZZ_CHECK(topic.size() >= t->minLength() && topic.compare(0, t->literalPrefix().size(), t->literalPrefix()) == 0,
                 "%s matched %s below its prefix or minimum length", show(tpl).c_str(), show(topic).c_str());
      // MercureIndex buckets templates by prefix and suffix: a match must end with it.
      const std::string_view suffix = t->literalSuffix();
      FUZZ_CHECK(
          topic.size() >= suffix.size() && std::string_view(topic).substr(topic.size() - suffix.size()) == suffix,
          "%s matched %s without its literal suffix", show(tpl).c_str(), show(topic).c_str());
      FUZZ_CHECK(t->literalPrefix().size() + suffix.size() <= t->minLength(), "%s: prefix and suffix overlap",
                 show(tpl).c_str());
    }
    if (tpl.size() <= kReferenceBytes && topic.size() <= kReferenceBytes) {
      const auto expected = ssefanout::test::uriTemplateReferenceMatch(ref.pattern, topic);
      if (expected) {
        FUZZ_CHECK(got == *expected, "%s vs %s: %d, regexp %s says %d", show(tpl).c_str(), show(topic).c_str(), got,
                   ref.pattern.c_str(), *expected);
      }
    }
  }
  const bool selector = tpl == "*" || tpl == topic || (tpl.find('{') != std::string_view::npos && t && got);
  FUZZ_CHECK(selectorMatches(tpl, topic) == selector, "selectorMatches(%s, %s) != %d", show(tpl).c_str(),
             show(topic).c_str(), selector);
  return 0;
}
