// Fuzz target: TopicIndex (topic_index.hpp) against a naive reference model.
//
// Random sequences of subscribe / unsubscribe / unsubscribeAll / match on a
// few connections (plus out-of-range ones), with topics built from a small
// alphabet so exact topics, "/*" patterns, trailing slashes, internal
// ("\0...") and invalid topics collide often, and a small per-connection cap.
// The index must agree with the model: statuses, return values and match
// results (each subscriber exactly once) at every operation; per-connection
// and total counts, subscriptionsOf() and the number of distinct stored
// topics every 8th operation and at the end.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "topic_index.hpp"

using namespace ssefanout;
using fuzzutil::show;

namespace {

// The documented semantics, written out naively.
bool modelIsPattern(const std::string& t) { return t.size() >= 2 && t[t.size() - 2] == '/' && t.back() == '*'; }

bool modelValid(const std::string& t) {
  auto singleLine = [](std::string_view s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
  };
  if (t.empty() || t.size() > kMaxTopicBytes) return false;
  if (t[0] == '\0') return t.size() >= 2 && singleLine(std::string_view(t).substr(1));  // internal topic
  return singleLine(t);
}

bool modelMatches(const std::string& sub, std::string_view topic) {
  if (!modelIsPattern(sub)) return sub == topic;
  std::string_view prefix = std::string_view(sub).substr(0, sub.size() - 1);  // keeps the '/'
  return topic.size() > prefix.size() && topic.substr(0, prefix.size()) == prefix;
}

std::string makeTopic(FuzzedDataProvider& fdp) {
  static const char* const kPieces[] = {"a", "b", "ab", "/", "*", "/*", "c/", "\n", std::string_view("\0", 1).data()};
  switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
      return fdp.ConsumeRandomLengthString(24);  // anything
    case 1:
      return std::string(kMaxTopicBytes + fdp.ConsumeIntegralInRange<int>(-1, 1), 'x');  // at the limit
    case 2:
      return std::string("\0", 1) + fdp.ConsumeRandomLengthString(8);  // internal
    default: {
      std::string t;
      int n = fdp.ConsumeIntegralInRange<int>(0, 5);
      for (int i = 0; i < n; ++i) {
        int k = fdp.ConsumeIntegralInRange<int>(0, 8);
        if (k == 8)
          t.push_back('\0');
        else
          t += kPieces[k];
      }
      return t;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const uint32_t cap = fdp.ConsumeIntegralInRange<uint32_t>(1, 6);
  TopicIndex index(cap);
  std::map<uint32_t, std::set<std::string>> model;
  std::vector<std::string> recent;  // topics seen, reused so operations hit the same ones

  auto pickTopic = [&]() {
    if (!recent.empty() && fdp.ConsumeBool()) return recent[fdp.ConsumeIntegralInRange<size_t>(0, recent.size() - 1)];
    std::string t = makeTopic(fdp);
    if (recent.size() < 32) recent.push_back(t);
    return t;
  };
  auto pickConn = [&]() -> uint32_t {
    switch (fdp.ConsumeIntegralInRange<int>(0, 15)) {
      case 0:
        return TopicIndex::kMaxConnections;
      case 1:
        return UINT32_MAX;
      case 2:
        return 300;  // sparse: the per-connection arrays grow (kMaxConnections - 1 costs 64 MB per input)
      default:
        return fdp.ConsumeIntegralInRange<uint32_t>(0, 7);
    }
  };

  size_t ops = 0;
  while (fdp.remaining_bytes() > 0) {
    const int op = fdp.ConsumeIntegralInRange<int>(0, 9);
    const uint32_t conn = pickConn();
    if (op <= 3) {
      std::string t = pickTopic();
      Status s = index.subscribe(conn, t);
      Status want;
      if (conn >= TopicIndex::kMaxConnections)
        want = Status::kUnknownConnection;
      else if (!modelValid(t))
        want = Status::kInvalidTopic;
      else if (model[conn].count(t))
        want = Status::kOk;
      else if (model[conn].size() >= cap)
        want = Status::kTooManySubscriptions;
      else {
        want = Status::kOk;
        model[conn].insert(t);
      }
      FUZZ_CHECK(s == want, "subscribe(%u, %s) = %d, model says %d", conn, show(t).c_str(), static_cast<int>(s),
                 static_cast<int>(want));
    } else if (op <= 5) {
      std::string t = pickTopic();
      bool removed = index.unsubscribe(conn, t);
      bool want = model.count(conn) && model[conn].erase(t) > 0;
      FUZZ_CHECK(removed == want, "unsubscribe(%u, %s) = %d, model says %d", conn, show(t).c_str(), removed, want);
    } else if (op == 6) {
      index.unsubscribeAll(conn);
      model.erase(conn);
    } else {
      std::string t = pickTopic();
      std::vector<uint32_t> got;
      index.match(t, [&](uint32_t c) { got.push_back(c); });
      std::vector<uint32_t> sorted = got;
      std::sort(sorted.begin(), sorted.end());
      FUZZ_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                 "match(%s) visited a connection twice", show(t).c_str());
      std::vector<uint32_t> want;
      for (const auto& [c, subs] : model) {
        for (const std::string& sub : subs) {
          if (modelMatches(sub, t)) {
            want.push_back(c);
            break;
          }
        }
      }
      FUZZ_CHECK(sorted == want, "match(%s) found %zu connections, model %zu", show(t).c_str(), sorted.size(),
                 want.size());
    }

    // Counts after every operation; the full comparison (allocation-heavy)
    // every 8th operation and at the end.
    ++ops;
    FUZZ_CHECK(index.subscriptionCount(conn) == (model.count(conn) ? model[conn].size() : 0),
               "subscriptionCount(%u) = %zu after an operation on it", conn, index.subscriptionCount(conn));
    if (ops % 8 != 0 && fdp.remaining_bytes() > 0) continue;
    size_t total = 0;
    std::set<std::string> distinct;
    for (const auto& [c, subs] : model) {
      total += subs.size();
      distinct.insert(subs.begin(), subs.end());
      FUZZ_CHECK(index.subscriptionCount(c) == subs.size(), "subscriptionCount(%u) = %zu, model %zu", c,
                 index.subscriptionCount(c), subs.size());
      std::vector<std::string> of = index.subscriptionsOf(c);
      std::sort(of.begin(), of.end());
      FUZZ_CHECK(of == std::vector<std::string>(subs.begin(), subs.end()), "subscriptionsOf(%u) differs", c);
    }
    FUZZ_CHECK(index.subscriptionCount(conn) == (model.count(conn) ? model[conn].size() : 0),
               "subscriptionCount(%u) of an unknown connection", conn);
    FUZZ_CHECK(index.totalSubscriptions() == total, "totalSubscriptions() = %zu, model %zu", index.totalSubscriptions(),
               total);
    FUZZ_CHECK(index.topicCount() == distinct.size(), "topicCount() = %zu, model %zu (buckets leaked?)",
               index.topicCount(), distinct.size());
  }

  // Dropping everything leaves nothing behind.
  for (const auto& [c, subs] : model) index.unsubscribeAll(c);
  FUZZ_CHECK(index.totalSubscriptions() == 0 && index.topicCount() == 0, "index not empty after unsubscribeAll");
  return 0;
}
