// Micro-benchmarks of TopicIndex (src/core/topic_index.hpp).
//
// Every index is built twice: into TopicIndex and into a naive reference (a
// std::map from topic to std::set of connections, patterns matched by scanning
// every pattern with a prefix compare). Before timing, each benchmark checks
// that match() visits exactly the connections the reference finds, each once,
// for every topic it will time and a few edge cases; on any difference it
// reports an error instead of a time. Items/s are visited connections for the
// match benchmarks and subscribe+unsubscribe cycles for the others (topic
// matching processes no payload bytes, so no bytes/s here).
//
//   BM_Match/T:        T exact topics ("news/<n%100>/<n>"), 10k connections
//                      spread over them (max(T, 10k) subscriptions: with 10
//                      topics 1000 subscribers each, with 100k topics 1 each),
//                      plus 100 patterns "news/<g>/*" with 10 subscribers each;
//                      match() cycles over all topics (cold-ish cache at 100k).
//   BM_MatchHot/T:     one topic with 10 subscribers, matched again and again,
//                      in an index that also holds T-1 other topics and the
//                      same 100 patterns: the cost should not depend on T.
//   BM_SubUnsub/...:   subscribe then unsubscribe on the 100k-topic index: a
//                      new topic (creates and erases a bucket), an existing
//                      topic, an existing pattern.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "topic_index.hpp"

namespace {

using ssefanout::Status;
using ssefanout::TopicIndex;

constexpr uint32_t kConnections = 10000;
constexpr uint32_t kPatterns = 100;
constexpr uint32_t kPatternSubscribers = 10;
constexpr uint32_t kHotSubscribers = 10;

// The reference: the definition of a match, nothing more.
struct NaiveIndex {
  std::map<std::string, std::set<uint32_t>> exact;
  std::map<std::string, std::set<uint32_t>> patterns;  // full "prefix/*"

  static bool isPattern(std::string_view t) { return t.size() >= 2 && t.substr(t.size() - 2) == "/*"; }
  void subscribe(uint32_t conn, const std::string& topic) { (isPattern(topic) ? patterns : exact)[topic].insert(conn); }
  void unsubscribe(uint32_t conn, const std::string& topic) {
    auto& map = isPattern(topic) ? patterns : exact;
    auto it = map.find(topic);
    if (it == map.end()) return;
    it->second.erase(conn);
    if (it->second.empty()) map.erase(it);
  }
  bool has(uint32_t conn, const std::string& topic) const {
    const auto& map = isPattern(topic) ? patterns : exact;
    auto it = map.find(topic);
    return it != map.end() && it->second.count(conn) != 0;
  }
  // "p/*" matches every topic that starts with "p/" and is longer than it.
  std::vector<uint32_t> match(std::string_view topic) const {
    std::set<uint32_t> out;
    auto it = exact.find(std::string(topic));
    if (it != exact.end()) out.insert(it->second.begin(), it->second.end());
    for (const auto& [pattern, conns] : patterns) {
      std::string_view prefix(pattern.data(), pattern.size() - 1);  // keeps the '/'
      if (topic.size() > prefix.size() && topic.substr(0, prefix.size()) == prefix)
        out.insert(conns.begin(), conns.end());
    }
    return {out.begin(), out.end()};
  }
};

std::vector<uint32_t> indexMatch(TopicIndex& index, std::string_view topic) {
  std::vector<uint32_t> out;
  index.match(topic, [&](uint32_t conn) { out.push_back(conn); });
  return out;
}

// Compares one topic; returns an error message, or empty.
std::string compare(TopicIndex& index, const NaiveIndex& naive, std::string_view topic) {
  std::vector<uint32_t> got = indexMatch(index, topic);
  std::sort(got.begin(), got.end());
  if (std::adjacent_find(got.begin(), got.end()) != got.end())
    return "match visited a connection twice for topic " + std::string(topic);
  if (got != naive.match(topic)) return "match differs from the reference for topic " + std::string(topic);
  return {};
}

enum class Shape { kSpread, kHot };

struct World {
  Shape shape;
  int64_t topicCount;
  TopicIndex index;
  NaiveIndex naive;
  std::vector<std::string> topics;  // the exact topics, for BM_Match to cycle over
  std::string hot;
  std::string error;  // set when building or checking failed

  World(Shape s, int64_t t) : shape(s), topicCount(t) {}

  void subscribe(uint32_t conn, const std::string& topic) {
    if (index.subscribe(conn, topic) != Status::kOk && error.empty()) error = "subscribe failed: " + topic;
    naive.subscribe(conn, topic);
  }

  void addPatterns() {
    for (uint32_t g = 0; g < kPatterns; ++g) {
      std::string pattern = "news/" + std::to_string(g) + "/*";
      for (uint32_t k = 0; k < kPatternSubscribers; ++k) subscribe((g * 101 + k * 997) % kConnections, pattern);
    }
  }

  void buildSpread() {
    const auto t = static_cast<uint64_t>(topicCount);
    for (uint64_t n = 0; n < t; ++n)
      topics.push_back("news/" + std::to_string(n % kPatterns) + "/" + std::to_string(n));
    // Subscription i: connection i % 10k, topic i % T; every topic and every
    // connection gets at least one, spread evenly.
    const uint64_t subs = std::max<uint64_t>(t, kConnections);
    for (uint64_t i = 0; i < subs; ++i) subscribe(static_cast<uint32_t>(i % kConnections), topics[i % t]);
    addPatterns();
  }

  void buildHot() {
    hot = "room/hot";
    for (uint32_t k = 0; k < kHotSubscribers; ++k) subscribe(k * (kConnections / kHotSubscribers) + 3, hot);
    for (int64_t n = 1; n < topicCount; ++n)
      subscribe(static_cast<uint32_t>(n % kConnections), "feed/" + std::to_string(n));
    addPatterns();
  }

  void check() {
    if (!error.empty()) return;
    std::vector<std::string> probes = {"news/5", "news/5/", "news/5/x/y", "news/5x/1", "news/200/1", "nope",
                                       "news/",  "news/*",  "room/hot/x", "room/hot",  "news/99/0/"};
    for (const std::string& t : topics) probes.push_back(t);
    for (const std::string& t : probes) {
      error = compare(index, naive, t);
      if (!error.empty()) return;
    }
    if (shape == Shape::kHot && naive.match(hot).size() != kHotSubscribers)
      error = "hot topic has the wrong subscribers";
  }
};

// One world alive at a time: Google Benchmark runs each argument's repetitions
// back to back, so this rebuilds only when the argument changes.
World& world(Shape shape, int64_t topicCount) {
  static std::unique_ptr<World> current;
  if (!current || current->shape != shape || current->topicCount != topicCount) {
    current.reset();
    current = std::make_unique<World>(shape, topicCount);
    if (shape == Shape::kSpread)
      current->buildSpread();
    else
      current->buildHot();
    current->check();
  }
  return *current;
}

void BM_Match(benchmark::State& state) {
  World& w = world(Shape::kSpread, state.range(0));
  if (!w.error.empty()) {
    state.SkipWithError(w.error.c_str());
    return;
  }
  size_t i = 0;
  uint64_t visited = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    w.index.match(w.topics[i], [&](uint32_t conn) {
      ++visited;
      sum += conn;
    });
    if (++i == w.topics.size()) i = 0;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(visited));
  state.counters["matches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["visits/match"] = static_cast<double>(visited) / static_cast<double>(state.iterations());
  state.counters["topics"] = static_cast<double>(w.index.topicCount());
}

void BM_MatchHot(benchmark::State& state) {
  World& w = world(Shape::kHot, state.range(0));
  if (!w.error.empty()) {
    state.SkipWithError(w.error.c_str());
    return;
  }
  const std::string_view hot = w.hot;
  uint64_t visited = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    w.index.match(hot, [&](uint32_t conn) {
      ++visited;
      sum += conn;
    });
  }
  benchmark::DoNotOptimize(sum);
  if (visited != kHotSubscribers * static_cast<uint64_t>(state.iterations())) {
    state.SkipWithError("hot topic visited the wrong number of connections");
    return;
  }
  state.SetItemsProcessed(static_cast<int64_t>(visited));
  state.counters["matches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["topics"] = static_cast<double>(w.index.topicCount());
}

enum class SubKind { kNewTopic, kExistingTopic, kExistingPattern };

struct Cycle {
  uint32_t conn;
  std::string topic;
  std::string probe;  // a topic the subscription matches
};

// Connection/topic pairs where the connection is not yet subscribed.
std::vector<Cycle> cycles(const World& w, SubKind kind) {
  std::vector<Cycle> out;
  for (uint32_t i = 0; out.size() < 4096; ++i) {
    const uint32_t conn = (i * 7919) % kConnections;
    Cycle c{conn, {}, {}};
    switch (kind) {
      case SubKind::kNewTopic:
        c.topic = "fresh/room/" + std::to_string(i);
        c.probe = c.topic;
        break;
      case SubKind::kExistingTopic:
        c.topic = w.topics[(i * 104729) % w.topics.size()];
        c.probe = c.topic;
        break;
      case SubKind::kExistingPattern: {
        const std::string g = std::to_string(i % kPatterns);
        c.topic = "news/" + g + "/*";
        c.probe = "news/" + g + "/probe";
        break;
      }
    }
    if (!w.naive.has(conn, c.topic)) out.push_back(std::move(c));
  }
  return out;
}

// One checked cycle: the subscription takes effect and is undone exactly.
std::string checkCycle(World& w, const Cycle& c) {
  const size_t total = w.index.totalSubscriptions();
  const size_t mine = w.index.subscriptionCount(c.conn);
  if (w.index.subscribe(c.conn, c.topic) != Status::kOk) return "subscribe failed: " + c.topic;
  w.naive.subscribe(c.conn, c.topic);
  std::string err = compare(w.index, w.naive, c.probe);
  if (err.empty() && (w.index.totalSubscriptions() != total + 1 || w.index.subscriptionCount(c.conn) != mine + 1))
    err = "subscription counts wrong after subscribe";
  const bool removed = w.index.unsubscribe(c.conn, c.topic);
  w.naive.unsubscribe(c.conn, c.topic);
  if (!err.empty()) return err;
  if (!removed) return "unsubscribe found nothing: " + c.topic;
  err = compare(w.index, w.naive, c.probe);
  if (err.empty() && (w.index.totalSubscriptions() != total || w.index.subscriptionCount(c.conn) != mine))
    err = "subscription counts wrong after unsubscribe";
  return err;
}

void BM_SubUnsub(benchmark::State& state, SubKind kind) {
  World& w = world(Shape::kSpread, 100000);
  if (!w.error.empty()) {
    state.SkipWithError(w.error.c_str());
    return;
  }
  const std::vector<Cycle> work = cycles(w, kind);
  for (size_t i = 0; i < 64; ++i) {
    if (std::string err = checkCycle(w, work[i]); !err.empty()) {
      state.SkipWithError(err.c_str());
      return;
    }
  }
  const size_t total = w.index.totalSubscriptions();
  const size_t topics = w.index.topicCount();
  size_t i = 0;
  bool ok = true;
  for (auto _ : state) {
    const Cycle& c = work[i];
    ok &= w.index.subscribe(c.conn, c.topic) == Status::kOk;
    ok &= w.index.unsubscribe(c.conn, c.topic);
    if (++i == work.size()) i = 0;
  }
  if (!ok || w.index.totalSubscriptions() != total || w.index.topicCount() != topics) {
    state.SkipWithError("a subscribe/unsubscribe cycle failed or left the index changed");
    return;
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Match)->ArgName("topics")->Arg(10)->Arg(1000)->Arg(100000);
BENCHMARK(BM_MatchHot)->ArgName("topics")->Arg(10)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000);
BENCHMARK_CAPTURE(BM_SubUnsub, new_topic, SubKind::kNewTopic);
BENCHMARK_CAPTURE(BM_SubUnsub, existing_topic, SubKind::kExistingTopic);
BENCHMARK_CAPTURE(BM_SubUnsub, existing_pattern, SubKind::kExistingPattern);

}  // namespace
