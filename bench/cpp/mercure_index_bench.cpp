// Micro-benchmarks of MercureIndex (src/mercure/mercure_index.hpp): the JS
// thread's time to route one Mercure update, and to filter a replay.
//
//   BM_Route/<kind>/<n>: one update (topic https://ex.com/rooms/<r>/1) routed
//     among n profiles, each one selector: exact topics
//     (https://ex.com/rooms/<i>/1) against URI templates
//     (https://ex.com/rooms/<i>/{id}), n distinct of each. The template case
//     against the exact one is what template matching adds per update (the
//     issue's goal: at most 20 % at 1,000 distinct templates, measured end to
//     end in bench/scenarios/mercure.js); /star adds one "*" profile to the
//     templates, the case where every update reaches someone;
//     /template_shared_prefix: templates alike but for their literal suffix
//     (https://ex.com/rooms/{room}/m<i>), found by their suffix bucket;
//     /template_middle_only: alike in prefix and suffix, only a middle literal
//     differs (https://ex.com/{a}/m<i>/{b}): every one is tried, the case the
//     buckets do not narrow.
//   BM_ReplayFilter/<selectors>: a profile's filter over one update tag, the
//     per-event cost of a replay (History::selectReplay calls it for each
//     event after the cursor): its selectors all templates whose literal
//     prefix the topic passes, the worst a subscriber can ask for;
//     BM_ReplayFilterRepeatedTopics: the same through the per-replay cache
//     (replayFilterOf) when updates go to 100 distinct topics.
// Each case checks its routes before it is timed.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "mercure_index.hpp"

namespace {

using ssefanout::Status;
using ssefanout::mercure::MercureIndex;
using ssefanout::mercure::MercureLimits;
using ssefanout::mercure::updateTag;

std::string roomTopic(int room) { return "https://ex.com/rooms/" + std::to_string(room) + "/1"; }

enum class Layout { kExact, kPrefix, kSuffix, kMiddle };

// The selector of room i, and the topic an update to room r goes to.
std::string selectorOf(Layout layout, int i) {
  switch (layout) {
    case Layout::kExact:
      return roomTopic(i);
    case Layout::kPrefix:
      return "https://ex.com/rooms/" + std::to_string(i) + "/{id}";
    case Layout::kSuffix:
      return "https://ex.com/rooms/{room}/m" + std::to_string(i);
    case Layout::kMiddle:
      return "https://ex.com/{a}/m" + std::to_string(i) + "/{b}";
  }
  return "";
}
std::string topicOf(Layout layout, int r) {
  switch (layout) {
    case Layout::kSuffix:
      return "https://ex.com/rooms/1/m" + std::to_string(r);
    case Layout::kMiddle:
      return "https://ex.com/x/m" + std::to_string(r) + "/1";
    default:
      return roomTopic(r);
  }
}

void route(benchmark::State& state, Layout layout, bool star) {
  const int n = static_cast<int>(state.range(0));
  MercureIndex index;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> sel = {selectorOf(layout, i)};
    MercureIndex::ProfileId id;
    if (index.acquire(sel, nullptr, &id) != Status::kOk) state.SkipWithError("acquire");
  }
  if (star) {
    std::vector<std::string> all = {"*"};
    MercureIndex::ProfileId id;
    if (index.acquire(all, nullptr, &id) != Status::kOk) state.SkipWithError("acquire");
  }
  std::vector<std::string> topics;
  for (int r = 0; r < 64; ++r) topics.push_back(topicOf(layout, (r * 7919) % n));
  std::vector<std::string> routes;
  std::string tag;
  std::vector<std::string_view> one(1);
  one[0] = topics[0];
  if (index.route(one, false, &routes, &tag) != Status::kOk || routes.size() != (star ? 2u : 1u)) {
    state.SkipWithError("wrong routes");
  }
  size_t k = 0;
  for (auto _ : state) {
    one[0] = topics[k++ & 63];
    routes.clear();
    index.route(one, false, &routes, &tag);
    benchmark::DoNotOptimize(routes.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RouteExact(benchmark::State& state) { route(state, Layout::kExact, false); }
void BM_RouteTemplates(benchmark::State& state) { route(state, Layout::kPrefix, false); }
void BM_RouteTemplatesStar(benchmark::State& state) { route(state, Layout::kPrefix, true); }
void BM_RouteSharedPrefix(benchmark::State& state) { route(state, Layout::kSuffix, false); }
void BM_RouteMiddleOnly(benchmark::State& state) { route(state, Layout::kMiddle, false); }
BENCHMARK(BM_RouteExact)->Name("BM_Route/exact")->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_RouteTemplates)->Name("BM_Route/template")->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_RouteTemplatesStar)->Name("BM_Route/template_star")->Arg(1000);
BENCHMARK(BM_RouteSharedPrefix)->Name("BM_Route/template_shared_prefix")->Arg(1000);
BENCHMARK(BM_RouteMiddleOnly)->Name("BM_Route/template_middle_only")->Arg(1000);

void BM_ReplayFilter(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  MercureLimits limits;
  limits.maxSelectorsPerSubscriber = static_cast<uint32_t>(n);
  MercureIndex index(limits);
  std::vector<std::string> sel;
  for (int i = 0; i < n; ++i) sel.push_back("https://ex.com/rooms/{room}/" + std::to_string(i) + "{/id}");
  MercureIndex::ProfileId id;
  if (index.acquire(sel, nullptr, &id) != Status::kOk) state.SkipWithError("acquire");
  const std::string topic = "https://ex.com/rooms/7/none/1";
  const std::string tag = updateTag({topic}, false);
  const ssefanout::history::ReplayFilter* filter = index.filterOf(id);
  if (filter->accepts(tag)) state.SkipWithError("should not match");
  for (auto _ : state) benchmark::DoNotOptimize(filter->accepts(tag));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReplayFilter)->Arg(1)->Arg(32);

// The filter a replay uses (MercureIndex::replayFilterOf): the same 32
// templates, over a history whose updates go to 100 distinct topics.
void BM_ReplayFilterRepeatedTopics(benchmark::State& state) {
  MercureLimits limits;
  limits.maxSelectorsPerSubscriber = 32;
  MercureIndex index(limits);
  std::vector<std::string> sel;
  for (int i = 0; i < 32; ++i) sel.push_back("https://ex.com/rooms/{room}/" + std::to_string(i) + "{/id}");
  MercureIndex::ProfileId id;
  if (index.acquire(sel, nullptr, &id) != Status::kOk) state.SkipWithError("acquire");
  std::vector<std::string> tags;
  for (int i = 0; i < 100; ++i)
    tags.push_back(updateTag({"https://ex.com/rooms/" + std::to_string(i) + "/none/1"}, false));
  ssefanout::history::HistoryOptions options;
  options.epoch = "E";
  const ssefanout::history::History history(options);
  const ssefanout::history::ReplayFilter* filter = index.replayFilterOf(id, history);
  size_t k = 0;
  for (auto _ : state) benchmark::DoNotOptimize(filter->accepts(tags[k++ % 100]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReplayFilterRepeatedTopics);

}  // namespace
