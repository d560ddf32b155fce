// MercureIndex (src/mercure/): who takes an update, checked case by case and
// against a brute-force reference (every profile's selectors and claims
// against every topic with selectorMatches, the reference hub's rule) over
// random profiles and updates; the replay filter against the same reference;
// profiles shared and dropped with their references; the budgets.
#include "mercure_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "selector.hpp"

namespace {

using ssefanout::Status;
using ssefanout::mercure::MercureIndex;
using ssefanout::mercure::MercureLimits;
using ssefanout::mercure::selectorMatches;
using ssefanout::mercure::updateTag;
using Profile = MercureIndex::ProfileId;

struct Made {
  Profile id;
  std::vector<std::string> selectors;
  std::optional<std::vector<std::string>> claims;
};

// The reference hub's rule (Subscriber.Match), by brute force.
bool reaches(const Made& m, const std::vector<std::string_view>& topics, bool isPrivate) {
  bool subscribed = false, allowed = false;
  for (std::string_view t : topics) {
    for (const std::string& s : m.selectors) subscribed = subscribed || selectorMatches(s, t);
    if (m.claims) {
      for (const std::string& c : *m.claims) allowed = allowed || selectorMatches(c, t);
    }
  }
  return subscribed && (!isPrivate || allowed);
}

Profile acquire(MercureIndex& index, std::vector<std::string> selectors,
                std::optional<std::vector<std::string>> claims = std::nullopt) {
  Profile id = 0;
  EXPECT_EQ(index.acquire(selectors, claims ? &*claims : nullptr, &id), Status::kOk);
  return id;
}

std::set<std::string> routesOf(MercureIndex& index, std::vector<std::string_view> topics, bool isPrivate) {
  std::vector<std::string> routes;
  std::string tag;
  EXPECT_EQ(index.route(topics, isPrivate, &routes, &tag), Status::kOk);
  std::set<std::string> set(routes.begin(), routes.end());
  EXPECT_EQ(set.size(), routes.size()) << "a route listed twice";
  EXPECT_EQ(tag, updateTag(topics, isPrivate));
  return set;
}

TEST(MercureIndexTest, RoutesByExactTemplateAndStarAndPrivateClaims) {
  MercureIndex index;
  const Profile book = acquire(index, {"https://example.com/books/1"});
  const Profile books = acquire(index, {"https://example.com/books/{id}"});
  const Profile all = acquire(index, {"*"});
  const Profile allPrivate = acquire(index, {"*"}, std::vector<std::string>{"https://example.com/books/{id}"});
  const Profile claimsOther =
      acquire(index, {"https://example.com/books/{id}"}, std::vector<std::string>{"https://example.com/users/{id}"});
  const Profile noClaims = acquire(index, {"https://example.com/books/{id}"}, std::vector<std::string>{});
  auto r = [&](Profile p) { return index.routeOf(p); };

  EXPECT_EQ(routesOf(index, {"https://example.com/books/1"}, false),
            (std::set<std::string>{r(book), r(books), r(all), r(allPrivate), r(claimsOther), r(noClaims)}));
  EXPECT_EQ(routesOf(index, {"https://example.com/books/2"}, true), (std::set<std::string>{r(allPrivate)}));
  // The claim may match another topic of the update than the subscription.
  EXPECT_EQ(routesOf(index, {"https://example.com/books/2", "https://example.com/users/7"}, true),
            (std::set<std::string>{r(allPrivate), r(claimsOther)}));
  EXPECT_EQ(routesOf(index, {"https://example.com/other"}, false), (std::set<std::string>{r(all), r(allPrivate)}));
  // A template matches itself byte for byte, as the reference hub's store does.
  EXPECT_EQ(routesOf(index, {"https://example.com/books/{id}"}, false).count(r(books)), 1u);
}

TEST(MercureIndexTest, SameSelectorsAndClaimsShareOneProfileUntilTheLastRelease) {
  MercureIndex index;
  const Profile a = acquire(index, {"x", "y/{id}", "x"});
  const Profile b = acquire(index, {"y/{id}", "x"});
  const Profile c = acquire(index, {"x", "y/{id}"}, std::vector<std::string>{});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);  // no claims and empty claims differ in the key (both see no private update)
  EXPECT_EQ(index.stats().profiles, 2u);
  EXPECT_EQ(index.stats().selectors, 2u);
  EXPECT_EQ(index.stats().templates, 1u);
  index.retain(a);
  EXPECT_EQ(index.stats().references, 4u);
  index.release(a);
  index.release(a);
  EXPECT_TRUE(index.has(a));
  index.release(a);
  EXPECT_FALSE(index.has(a));
  index.release(c);
  index.release(c);  // unknown now: ignored
  EXPECT_EQ(index.stats().profiles, 0u);
  EXPECT_EQ(index.stats().selectors, 0u);
  EXPECT_EQ(index.stats().templates, 0u);
  EXPECT_EQ(index.stats().references, 0u);
  std::vector<std::string> routes;
  std::string tag;
  EXPECT_EQ(index.route({"x"}, false, &routes, &tag), Status::kOk);
  EXPECT_TRUE(routes.empty());
  // A new profile gets a route never used before (a stale command can never reach it).
  const Profile d = acquire(index, {"x", "y/{id}"});
  const std::string again = index.routeOf(d);
  index.release(d);
  const Profile e = acquire(index, {"x", "y/{id}"});
  EXPECT_NE(index.routeOf(e), again);
}

TEST(MercureIndexTest, BudgetsAndBadInputChangeNothing) {
  MercureLimits limits;
  limits.maxSelectorsPerSubscriber = 3;
  limits.maxClaimSelectors = 2;
  limits.maxDistinctSelectors = 4;
  limits.maxTopicsPerUpdate = 2;
  MercureIndex index(limits);
  Profile id = 0;
  std::vector<std::string> none, four = {"a", "b", "c", "d"}, bad = {"a", "line\nbreak"}, empty = {""};
  std::vector<std::string> claims3 = {"x", "y", "z"};
  std::vector<std::string> tooLong = {std::string(ssefanout::kMaxTopicBytes + 1, 'a')};
  EXPECT_EQ(index.acquire(none, nullptr, &id), Status::kInvalidTopic);
  EXPECT_EQ(index.acquire(four, nullptr, &id), Status::kTooManySubscriptions);
  std::vector<std::string> one = {"a"};
  EXPECT_EQ(index.acquire(one, &claims3, &id), Status::kTooManySubscriptions);
  EXPECT_EQ(index.acquire(bad, nullptr, &id), Status::kInvalidTopic);
  EXPECT_EQ(index.acquire(empty, nullptr, &id), Status::kInvalidTopic);
  EXPECT_EQ(index.acquire(tooLong, nullptr, &id), Status::kInvalidTopic);
  acquire(index, {"a", "b", "c"});
  std::vector<std::string> twoNew = {"d", "e"};
  EXPECT_EQ(index.acquire(twoNew, nullptr, &id), Status::kTooManyDistinctSubscriptions);
  EXPECT_EQ(index.stats().selectors, 3u);
  EXPECT_EQ(index.stats().profiles, 1u);
  acquire(index, {"a", "d"});  // one new: fits
  std::vector<std::string> routes;
  std::string tag;
  EXPECT_EQ(index.route({}, false, &routes, &tag), Status::kInvalidTopic);
  EXPECT_EQ(index.route({"a", "b", "c"}, false, &routes, &tag), Status::kInvalidTopic);
  EXPECT_EQ(index.route({"a", "x\ry"}, false, &routes, &tag), Status::kInvalidTopic);
  EXPECT_TRUE(routes.empty());
}

TEST(MercureIndexTest, TemplatesHaveABudgetOfTheirOwn) {
  MercureLimits limits;
  limits.maxDistinctTemplates = 2;
  MercureIndex index(limits);
  acquire(index, {"/a/{x}", "/b/{x}", "exact", "/not/a/{template"});
  Profile id = 0;
  std::vector<std::string> third = {"/c/{x}"}, exact = {"/c/1", "/d/{bad"}, same = {"/a/{x}"};
  EXPECT_EQ(index.acquire(third, nullptr, &id), Status::kTooManyDistinctSubscriptions);
  EXPECT_EQ(index.stats().templates, 2u);
  EXPECT_EQ(index.acquire(exact, nullptr, &id), Status::kOk);  // no template among them
  EXPECT_EQ(index.acquire(same, nullptr, &id), Status::kOk);   // held already
  EXPECT_EQ(index.stats().templates, 2u);
}

// A match costs a pass over the topic per expression: a template with many
// weighs as many, so the budget bounds the work an update can be made to do.
TEST(MercureIndexTest, TemplatesWeighTheirExpressionsInTheBudget) {
  MercureLimits limits;
  limits.maxDistinctTemplates = 4;
  MercureIndex index(limits);
  Profile heavy = 0, id = 0;
  std::vector<std::string> three = {"{+a}{+b}{+c}"}, two = {"/x/{a}/{b}"}, one = {"/y/{a}"};
  ASSERT_EQ(index.acquire(three, nullptr, &heavy), Status::kOk);
  EXPECT_EQ(index.acquire(two, nullptr, &id), Status::kTooManyDistinctSubscriptions);
  EXPECT_EQ(index.acquire(one, nullptr, &id), Status::kOk);
  EXPECT_EQ(index.stats().templates, 2u);
  index.release(heavy);
  EXPECT_EQ(index.acquire(two, nullptr, &id), Status::kOk);  // its weight was given back
}

TEST(MercureIndexTest, ExpressionsPerSubscriberAndTemplateShapesAreBounded) {
  MercureLimits limits;
  limits.maxExpressionsPerSubscriber = 3;
  limits.maxTemplateShapes = 2;
  MercureIndex index(limits);
  Profile id = 0;
  std::vector<std::string> four = {"/a/{x}{y}", "/b/{x}{y}"}, three = {"/a/{x}{y}", "/b/{x}"};
  EXPECT_EQ(index.acquire(four, nullptr, &id), Status::kTooManySubscriptions);
  EXPECT_EQ(index.acquire(three, nullptr, &id), Status::kOk);  // shapes (3, 0): one
  // A claim of many expressions is the token's: not the subscriber's budget.
  std::vector<std::string> one = {"/c/{x}"}, claims = {"{a}{b}{c}{d}"};
  EXPECT_EQ(index.acquire(one, &claims, &id), Status::kOk);  // shapes (3, 0) held, (0, 0) new: two
  std::vector<std::string> thirdShape = {"/long/{x}"}, sameShape = {"/d/{x}"};
  EXPECT_EQ(index.acquire(thirdShape, nullptr, &id), Status::kTooManyDistinctSubscriptions);
  EXPECT_EQ(index.acquire(sameShape, nullptr, &id), Status::kOk);
}

// Random profiles and updates: the routes are exactly the profiles the
// brute-force rule reaches, the replay filter agrees, and releasing every
// profile leaves nothing held.
TEST(MercureIndexTest, RoutesAgreeWithTheReferenceRuleOverRandomProfilesAndUpdates) {
  const std::vector<std::string> selectorPool = {
      "*",
      "/books/1",
      "/books/2",
      "/books/{id}",
      "/books/{id}/reviews",
      "/books{/id}",
      "/users/{id}",
      "{+any}",
      "/b{ook}s/1",
      "/books/{id}.json",
      "{scheme}://example.com/{path}",
      "https://example.com/{path}",
      "https://example.com/books/{id}",
      "/books/{a,b}",
      "/books/{?q}",
      "/books/{bad",
  };
  const std::vector<std::string> topicPool = {
      "/books/1",
      "/books/2",
      "/books/3/reviews",
      "/books/1.json",
      "/users/9",
      "/books",
      "/books/a,b",
      "/books/?q=1",
      "https://example.com/books/7",
      "other",
      "/books/{id}",
      "/books/{bad",
      "/b/1",
      "https://example.com/a/b",
  };
  std::mt19937 rng(42);
  auto pick = [&](const std::vector<std::string>& pool) { return pool[rng() % pool.size()]; };
  ssefanout::history::HistoryOptions options;
  options.epoch = "E";
  const ssefanout::history::History history(options);
  std::deque<std::string> tagStore;
  for (int round = 0; round < 20; ++round) {
    MercureIndex index;
    std::vector<Made> made;
    for (int i = 0; i < 40; ++i) {
      Made m;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < n; ++k) m.selectors.push_back(pick(selectorPool));
      if (rng() % 3 != 0) {
        m.claims.emplace();
        const int c = static_cast<int>(rng() % 3);
        for (int k = 0; k < c; ++k) m.claims->push_back(pick(selectorPool));
      }
      m.id = acquire(index, m.selectors, m.claims);
      made.push_back(m);
    }
    for (int u = 0; u < 60; ++u) {
      std::vector<std::string> owned;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < n; ++k) owned.push_back(pick(topicPool));
      std::vector<std::string_view> topics(owned.begin(), owned.end());
      const bool isPrivate = rng() % 2 == 0;
      std::set<std::string> want;
      for (const Made& m : made) {
        const bool expected = reaches(m, topics, isPrivate);
        if (expected) want.insert(index.routeOf(m.id));
        // The cache keeps views of tags, as of a history's frames: kept alive.
        const std::string& tag = tagStore.emplace_back(updateTag(topics, isPrivate));
        EXPECT_EQ(index.filterOf(m.id)->accepts(tag), expected);
        const ssefanout::history::ReplayFilter* cached = index.replayFilterOf(m.id, history);
        EXPECT_EQ(cached->accepts(tag), expected);
        EXPECT_EQ(cached->accepts(std::string(tag)), expected);  // the remembered verdict
      }
      EXPECT_EQ(routesOf(index, topics, isPrivate), want) << "round " << round << " update " << u;
    }
    std::shuffle(made.begin(), made.end(), rng);
    for (const Made& m : made) index.release(m.id);
    EXPECT_EQ(index.stats().profiles, 0u);
    EXPECT_EQ(index.stats().selectors, 0u);
    EXPECT_EQ(index.stats().templates, 0u);
  }
}

TEST(MercureIndexTest, TheFilterRefusesTagsItDidNotMake) {
  MercureIndex index;
  const Profile p = acquire(index, {"*"}, std::vector<std::string>{"*"});
  const ssefanout::history::ReplayFilter* f = index.filterOf(p);
  EXPECT_TRUE(f->accepts(updateTag({"a"}, true)));
  EXPECT_FALSE(f->accepts(""));
  EXPECT_FALSE(f->accepts(std::string("\0M", 2)));
  EXPECT_FALSE(f->accepts(std::string("\0Mx", 3) + "a\n"));
  EXPECT_FALSE(f->accepts(std::string("\0Mu", 3) + "a"));  // no final newline
  EXPECT_FALSE(f->accepts("a/topic"));
}

}  // namespace
