// Micro-benchmarks of UriTemplate::matches (src/mercure/uri_template.hpp): the
// time of one match, a Mercure template selector against one topic. Each case
// is checked before it is timed, against the Go regexp text run by std::regex
// (test/cpp/uri_template_reference.hpp) when the topic is short, else against
// its expected verdict; on a difference it reports an error instead of a time.
// Items/s are matches; the time per iteration is ns/match.
//
//   BM_Match/<case>:  typical templates (one variable, the bench scenario's
//                     room/id, a query, an exploded path), a miss found by the
//                     prefix check, a miss found at the end, and an
//                     adversarial 4 KiB topic that passes the prechecks, with
//                     the literals recurring all along it.
//   BM_StdRegex/<case>: the same short cases through std::regex (ECMAScript,
//                     libstdc++'s polynomial executor): the baseline a
//                     regex-based port would start from.
#include <benchmark/benchmark.h>

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "uri_template.hpp"
#include "uri_template_reference.hpp"

namespace {

using ssefanout::mercure::UriTemplate;

struct Case {
  const char* name;
  std::string tpl;
  std::string topic;
  bool match;
};

std::vector<Case> cases() {
  // Passes the prechecks, and every piece sees ~4000 reachable positions and
  // ~1000 occurrences of its literal: the miss is found at the last piece.
  std::string longTopic = "https://ex.com/";
  while (longTopic.size() + 4 + 6 <= UriTemplate::kMaxTopicBytes) longTopic += "aab/";
  longTopic += ".json";
  return {
      {"one_var", "https://example.com/books/{id}", "https://example.com/books/12345", true},
      {"room_id", "https://ex.com/rooms/{room}/{id}", "https://ex.com/rooms/417/42", true},
      {"dot_suffix", "https://example.com/books/{id}.json", "https://example.com/books/12345.json", true},
      {"query", "https://example.com/users/foo/{?topic}",
       "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", true},
      {"path_star", "https://example.com{/path*}", "https://example.com/a/b/c/d/e/f/g/h/i/j", true},
      {"miss_prefix", "https://example.com/books/{id}", "https://example.com/users/12345", false},
      {"miss_late", "https://example.com/books/{id}", "https://example.com/books/12345/reviews", false},
      {"adversarial_4k", "https://ex.com/{+a}aab{+b}aab{+c}aab{d}.json", longTopic, false},
  };
}

void check(benchmark::State& state, const Case& c, const std::optional<UriTemplate>& t) {
  if (!t) return state.SkipWithError("the template does not compile");
  bool want = c.match;
  if (c.topic.size() <= 256) {
    const auto ref = ssefanout::test::uriTemplateReference(c.tpl);
    const auto m = ssefanout::test::uriTemplateReferenceMatch(ref.pattern, c.topic);
    if (!m || *m != c.match) return state.SkipWithError("the std::regex reference disagrees with the expected verdict");
    want = *m;
  }
  if (t->matches(c.topic) != want) state.SkipWithError("matches() disagrees with the reference");
}

void BM_Match(benchmark::State& state, const Case& c) {
  const auto t = UriTemplate::compile(c.tpl);
  check(state, c, t);
  if (state.error_occurred()) return;
  for (auto _ : state) {
    bool m = t->matches(c.topic);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.topic.size()));
}

void BM_StdRegex(benchmark::State& state, const Case& c) {
  const auto ref = ssefanout::test::uriTemplateReference(c.tpl);
  const std::regex re(ref.pattern, ssefanout::test::uriTemplateReferenceSyntax());
  if (std::regex_match(c.topic, re) != c.match) return state.SkipWithError("std::regex disagrees");
  for (auto _ : state) {
    bool m = std::regex_match(c.topic, re);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

const bool kRegistered = [] {
  for (const auto& c : cases()) {
    benchmark::RegisterBenchmark(("BM_Match/" + std::string(c.name)).c_str(), BM_Match, c);
    if (c.topic.size() <= 256) {
      benchmark::RegisterBenchmark(("BM_StdRegex/" + std::string(c.name)).c_str(), BM_StdRegex, c);
    }
  }
  return true;
}();

}  // namespace
