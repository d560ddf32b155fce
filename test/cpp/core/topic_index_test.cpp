// TopicIndex: pattern semantics at the boundaries, idempotence, the
// per-connection cap, removal bookkeeping (no leaked buckets, back-pointers
// kept right by swap-removal), and a randomized check against a naive model.
#include "topic_index.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "registry.hpp"

namespace ssefanout {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

static_assert(TopicIndex::kMaxConnections == Registry::kMaxSlots,
              "the index must accept every registry slot and nothing larger");

std::vector<uint32_t> matchAll(TopicIndex& index, std::string_view topic) {
  std::vector<uint32_t> out;
  index.match(topic, [&](uint32_t conn) { out.push_back(conn); });
  return out;
}

TEST(TopicIndexTest, ExactTopicMatchesOnlyItself) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, "chat"), Status::kOk);
  EXPECT_THAT(matchAll(index, "chat"), ElementsAre(1u));
  EXPECT_THAT(matchAll(index, "chat/1"), IsEmpty());
  EXPECT_THAT(matchAll(index, "chat/"), IsEmpty());
  EXPECT_THAT(matchAll(index, "cha"), IsEmpty());
  EXPECT_THAT(matchAll(index, "chatter"), IsEmpty());
  EXPECT_THAT(matchAll(index, "Chat"), IsEmpty());
}

TEST(TopicIndexTest, PatternMatchesEveryTopicUnderItsPrefix) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, "chat/*"), Status::kOk);
  for (const char* t : {"chat/1", "chat/42", "chat/a/b", "chat/a/b/c/d", "chat//", "chat/*", "chat/ "}) {
    EXPECT_THAT(matchAll(index, t), ElementsAre(1u)) << t;
  }
  for (const char* t : {"chat", "chat/", "chatter/1", "cha", "cha/1", "xchat/1", "a/chat/1", "chat\\1", "Chat/1"}) {
    EXPECT_THAT(matchAll(index, t), IsEmpty()) << t;
  }
}

TEST(TopicIndexTest, IsPattern) {
  EXPECT_TRUE(TopicIndex::isPattern("chat/*"));
  EXPECT_TRUE(TopicIndex::isPattern("/*"));
  EXPECT_TRUE(TopicIndex::isPattern("a/b/*"));
  EXPECT_FALSE(TopicIndex::isPattern("*"));
  EXPECT_FALSE(TopicIndex::isPattern("chat*"));
  EXPECT_FALSE(TopicIndex::isPattern("chat/"));
  EXPECT_FALSE(TopicIndex::isPattern("chat/*/x"));
  EXPECT_FALSE(TopicIndex::isPattern(""));
}

TEST(TopicIndexTest, SlashStarAloneMatchesTopicsStartingWithSlash) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(7, "/*"), Status::kOk);
  EXPECT_THAT(matchAll(index, "/x"), ElementsAre(7u));
  EXPECT_THAT(matchAll(index, "/a/b"), ElementsAre(7u));
  EXPECT_THAT(matchAll(index, "//"), ElementsAre(7u));
  EXPECT_THAT(matchAll(index, "/"), IsEmpty());
  EXPECT_THAT(matchAll(index, "x"), IsEmpty());
  EXPECT_THAT(matchAll(index, "a/b"), IsEmpty());
  EXPECT_EQ(index.subscriptionsOf(7), std::vector<std::string>{"/*"});
}

TEST(TopicIndexTest, StarWithoutSlashIsAnExactTopic) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, "*"), Status::kOk);
  ASSERT_EQ(index.subscribe(2, "chat*"), Status::kOk);
  EXPECT_THAT(matchAll(index, "*"), ElementsAre(1u));
  EXPECT_THAT(matchAll(index, "chat*"), ElementsAre(2u));
  EXPECT_THAT(matchAll(index, "a"), IsEmpty());
  EXPECT_THAT(matchAll(index, "chat/1"), IsEmpty());
  EXPECT_THAT(matchAll(index, "chatx"), IsEmpty());
}

TEST(TopicIndexTest, NestedPatternsAndExactDeliverOnce) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, "a/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(1, "a/b/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(1, "a/b/c"), Status::kOk);
  ASSERT_EQ(index.subscribe(2, "a/b/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(3, "a/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(4, "a/b/c"), Status::kOk);

  EXPECT_THAT(matchAll(index, "a/b/c"), UnorderedElementsAre(1u, 2u, 3u, 4u));
  EXPECT_THAT(matchAll(index, "a/b/c/d"), UnorderedElementsAre(1u, 2u, 3u));
  EXPECT_THAT(matchAll(index, "a/b"), UnorderedElementsAre(1u, 3u));
  EXPECT_THAT(matchAll(index, "a/b/"), UnorderedElementsAre(1u, 3u));
  EXPECT_THAT(matchAll(index, "a/x"), UnorderedElementsAre(1u, 3u));
  EXPECT_THAT(matchAll(index, "a"), IsEmpty());
  // Repeated matches keep deduplicating (the per-match epoch advances).
  for (int i = 0; i < 3; ++i) EXPECT_THAT(matchAll(index, "a/b/c"), UnorderedElementsAre(1u, 2u, 3u, 4u));
}

TEST(TopicIndexTest, EveryPrefixPatternOfADeepTopicStillVisitsOnce) {
  TopicIndex index;
  std::string topic = "x";
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(index.subscribe(5, topic + "/*"), Status::kOk);
    ASSERT_EQ(index.subscribe(6, topic + "/*"), Status::kOk);
    topic += "/x";
  }
  ASSERT_EQ(index.subscribe(5, topic), Status::kOk);
  EXPECT_THAT(matchAll(index, topic), UnorderedElementsAre(5u, 6u));
  EXPECT_THAT(matchAll(index, topic + "/more"), UnorderedElementsAre(5u, 6u));
}

TEST(TopicIndexTest, TrailingSlashTopicIsDistinctFromThePattern) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, "chat/"), Status::kOk);
  ASSERT_EQ(index.subscribe(2, "chat/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(3, "chat"), Status::kOk);
  EXPECT_EQ(index.topicCount(), 3u);
  EXPECT_THAT(matchAll(index, "chat/"), ElementsAre(1u));
  EXPECT_THAT(matchAll(index, "chat"), ElementsAre(3u));
  EXPECT_THAT(matchAll(index, "chat/x"), ElementsAre(2u));
}

TEST(TopicIndexTest, SameConnectionMayHoldExactAndPatternWithTheSameKey) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, "chat/"), Status::kOk);
  ASSERT_EQ(index.subscribe(1, "chat/*"), Status::kOk);
  EXPECT_EQ(index.subscriptionCount(1), 2u);
  EXPECT_EQ(index.totalSubscriptions(), 2u);
  EXPECT_THAT(index.subscriptionsOf(1), UnorderedElementsAre("chat/", "chat/*"));

  EXPECT_TRUE(index.unsubscribe(1, "chat/"));
  EXPECT_FALSE(index.unsubscribe(1, "chat/"));
  EXPECT_THAT(index.subscriptionsOf(1), ElementsAre("chat/*"));
  EXPECT_THAT(matchAll(index, "chat/x"), ElementsAre(1u));
  EXPECT_THAT(matchAll(index, "chat/"), IsEmpty());

  EXPECT_TRUE(index.unsubscribe(1, "chat/*"));
  EXPECT_EQ(index.topicCount(), 0u);
}

TEST(TopicIndexTest, InvalidTopicsAreRefusedAndChangeNothing) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, "ok"), Status::kOk);
  const std::string tooLong(kMaxTopicBytes + 1, 'a');
  const std::string tooLongPattern = std::string(kMaxTopicBytes - 1, 'a') + "/*";
  const std::vector<std::string> invalid = {
      "",
      tooLong,
      tooLongPattern,
      "a\nb",
      "a\rb",
      "a\r\nb",
      std::string("a\0b", 3),
      std::string("\0", 1),
      "\n",
      "chat\n/*",
      "chat/\r*",
      "ok\n",
      std::string("\0pb\n1", 5),  // an internal topic must be single-line after its mark
      std::string(1, '\0') + std::string(kMaxTopicBytes, 'a'),
  };
  for (const std::string& t : invalid) {
    EXPECT_EQ(index.subscribe(1, t), Status::kInvalidTopic) << "topic of size " << t.size();
    EXPECT_EQ(index.subscribe(2, t), Status::kInvalidTopic) << "topic of size " << t.size();
    EXPECT_FALSE(index.unsubscribe(1, t));
    EXPECT_THAT(matchAll(index, t), IsEmpty());
  }
  EXPECT_EQ(index.subscriptionCount(1), 1u);
  EXPECT_EQ(index.subscriptionCount(2), 0u);
  EXPECT_EQ(index.totalSubscriptions(), 1u);
  EXPECT_EQ(index.topicCount(), 1u);
  EXPECT_THAT(index.subscriptionsOf(1), ElementsAre("ok"));
}

TEST(TopicIndexTest, InternalTopicsAreExactTopicsThatApplicationsCannotName) {
  const std::string internal("\0pb:1:0", 7);
  EXPECT_TRUE(isInternalTopic(internal));
  EXPECT_EQ(validateTopic(internal), Status::kInvalidTopic);  // what every JS-given topic passes
  TopicIndex index;
  ASSERT_EQ(index.subscribe(1, internal), Status::kOk);
  ASSERT_EQ(index.subscribe(2, "pb:1:0"), Status::kOk);
  EXPECT_THAT(matchAll(index, internal), ElementsAre(1u));
  EXPECT_THAT(matchAll(index, "pb:1:0"), ElementsAre(2u));
  EXPECT_TRUE(index.unsubscribe(1, internal));
  EXPECT_THAT(matchAll(index, internal), IsEmpty());
}

TEST(TopicIndexTest, TopicLengthBoundary) {
  TopicIndex index;
  const std::string longest(kMaxTopicBytes, 'a');
  const std::string longestPattern = std::string(kMaxTopicBytes - 2, 'a') + "/*";
  ASSERT_EQ(longest.size(), kMaxTopicBytes);
  ASSERT_EQ(longestPattern.size(), kMaxTopicBytes);
  EXPECT_EQ(index.subscribe(1, longest), Status::kOk);
  EXPECT_EQ(index.subscribe(2, longestPattern), Status::kOk);
  EXPECT_THAT(matchAll(index, longest), ElementsAre(1u));
  EXPECT_THAT(matchAll(index, std::string(kMaxTopicBytes - 2, 'a') + "/b"), ElementsAre(2u));
  EXPECT_TRUE(index.unsubscribe(1, longest));
  EXPECT_TRUE(index.unsubscribe(2, longestPattern));
  EXPECT_EQ(index.topicCount(), 0u);
}

TEST(TopicIndexTest, SubscribeIsIdempotent) {
  TopicIndex index;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(index.subscribe(1, "news"), Status::kOk);
    ASSERT_EQ(index.subscribe(1, "news/*"), Status::kOk);
  }
  EXPECT_EQ(index.subscriptionCount(1), 2u);
  EXPECT_EQ(index.totalSubscriptions(), 2u);
  EXPECT_EQ(index.topicCount(), 2u);
  EXPECT_THAT(matchAll(index, "news"), ElementsAre(1u));
  EXPECT_THAT(matchAll(index, "news/1"), ElementsAre(1u));

  // One unsubscribe removes it: there were never two.
  EXPECT_TRUE(index.unsubscribe(1, "news"));
  EXPECT_FALSE(index.unsubscribe(1, "news"));
  EXPECT_THAT(matchAll(index, "news"), IsEmpty());
}

TEST(TopicIndexTest, IdempotenceHoldsWhenTheBucketIsSmallerThanTheConnectionsList) {
  // Exercises both sides of the duplicate lookup: a connection with many
  // subscriptions re-subscribing to a small bucket, and a connection with few
  // re-subscribing to a large bucket.
  TopicIndex index;
  for (int i = 0; i < 50; ++i) ASSERT_EQ(index.subscribe(1, "t" + std::to_string(i)), Status::kOk);
  for (uint32_t c = 2; c < 60; ++c) ASSERT_EQ(index.subscribe(c, "t0"), Status::kOk);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(index.subscribe(1, "t" + std::to_string(i)), Status::kOk);
  for (uint32_t c = 2; c < 60; ++c) ASSERT_EQ(index.subscribe(c, "t0"), Status::kOk);
  EXPECT_EQ(index.subscriptionCount(1), 50u);
  EXPECT_EQ(index.totalSubscriptions(), 50u + 58u);
  EXPECT_EQ(matchAll(index, "t0").size(), 59u);
  EXPECT_EQ(matchAll(index, "t49").size(), 1u);
  EXPECT_TRUE(index.unsubscribe(1, "t49"));
  EXPECT_TRUE(index.unsubscribe(30, "t0"));
  EXPECT_FALSE(index.unsubscribe(30, "t0"));
  EXPECT_FALSE(index.unsubscribe(30, "t1"));
  EXPECT_EQ(matchAll(index, "t0").size(), 58u);
}

TEST(TopicIndexTest, CapCountsDistinctSubscriptionsPerConnection) {
  TopicIndex index(3);
  ASSERT_EQ(index.subscribe(1, "a"), Status::kOk);
  ASSERT_EQ(index.subscribe(1, "b/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(1, "c"), Status::kOk);
  EXPECT_EQ(index.subscribe(1, "d"), Status::kTooManySubscriptions);
  EXPECT_EQ(index.subscribe(1, "d/*"), Status::kTooManySubscriptions);
  // A refused subscription leaves no bucket behind.
  EXPECT_EQ(index.topicCount(), 3u);
  EXPECT_THAT(matchAll(index, "d"), IsEmpty());

  // Re-subscribing to what it already has does not count against the cap.
  EXPECT_EQ(index.subscribe(1, "a"), Status::kOk);
  EXPECT_EQ(index.subscribe(1, "b/*"), Status::kOk);
  EXPECT_EQ(index.subscriptionCount(1), 3u);

  // The cap is per connection, including for topics conn 1 holds.
  EXPECT_EQ(index.subscribe(2, "a"), Status::kOk);
  EXPECT_EQ(index.subscribe(2, "d"), Status::kOk);
  EXPECT_EQ(index.subscribe(2, "e"), Status::kOk);
  EXPECT_EQ(index.subscribe(2, "f"), Status::kTooManySubscriptions);
  EXPECT_EQ(index.totalSubscriptions(), 6u);

  // Room frees up on unsubscribe and on unsubscribeAll.
  EXPECT_TRUE(index.unsubscribe(1, "c"));
  EXPECT_EQ(index.subscribe(1, "d"), Status::kOk);
  EXPECT_THAT(matchAll(index, "d"), UnorderedElementsAre(1u, 2u));
  index.unsubscribeAll(2);
  EXPECT_EQ(index.subscribe(2, "x"), Status::kOk);
  EXPECT_EQ(index.subscribe(2, "y"), Status::kOk);
  EXPECT_EQ(index.subscribe(2, "z"), Status::kOk);
}

TEST(TopicIndexTest, DefaultCap) {
  TopicIndex index;
  for (uint32_t i = 0; i < TopicIndex::kDefaultMaxSubscriptions; ++i) {
    ASSERT_EQ(index.subscribe(9, "t/" + std::to_string(i)), Status::kOk);
  }
  EXPECT_EQ(index.subscribe(9, "one/more"), Status::kTooManySubscriptions);
  EXPECT_EQ(index.subscribe(9, "t/0"), Status::kOk);
  EXPECT_EQ(index.subscriptionCount(9), TopicIndex::kDefaultMaxSubscriptions);
}

TEST(TopicIndexTest, CapOfZeroRefusesEverySubscription) {
  TopicIndex index(0);
  EXPECT_EQ(index.subscribe(1, "a"), Status::kTooManySubscriptions);
  EXPECT_EQ(index.topicCount(), 0u);
  EXPECT_EQ(index.totalSubscriptions(), 0u);
}

TEST(TopicIndexTest, UnsubscribeOfWhatIsNotThereReturnsFalse) {
  TopicIndex index;
  EXPECT_FALSE(index.unsubscribe(0, "a"));  // nothing at all yet
  EXPECT_FALSE(index.unsubscribe(TopicIndex::kMaxConnections, "a"));
  EXPECT_FALSE(index.unsubscribe(UINT32_MAX, "a"));
  ASSERT_EQ(index.subscribe(1, "a"), Status::kOk);
  ASSERT_EQ(index.subscribe(1, "p/*"), Status::kOk);
  EXPECT_FALSE(index.unsubscribe(1, "b"));     // unknown topic
  EXPECT_FALSE(index.unsubscribe(2, "a"));     // another connection's topic
  EXPECT_FALSE(index.unsubscribe(1000, "a"));  // connection never seen
  EXPECT_FALSE(index.unsubscribe(1, "p/"));    // the exact topic, not the pattern
  EXPECT_FALSE(index.unsubscribe(1, "p"));
  EXPECT_FALSE(index.unsubscribe(1, "a/*"));  // the pattern, not the exact topic
  EXPECT_FALSE(index.unsubscribe(1, ""));
  EXPECT_EQ(index.totalSubscriptions(), 2u);
  EXPECT_EQ(index.topicCount(), 2u);
  EXPECT_TRUE(index.unsubscribe(1, "a"));
  EXPECT_TRUE(index.unsubscribe(1, "p/*"));
  EXPECT_EQ(index.topicCount(), 0u);
}

TEST(TopicIndexTest, UnsubscribeAll) {
  TopicIndex index;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(index.subscribe(1, "t" + std::to_string(i)), Status::kOk);
    ASSERT_EQ(index.subscribe(1, "p" + std::to_string(i) + "/*"), Status::kOk);
  }
  ASSERT_EQ(index.subscribe(2, "t3"), Status::kOk);
  ASSERT_EQ(index.subscribe(2, "p3/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(3, "t3"), Status::kOk);

  index.unsubscribeAll(1);
  EXPECT_EQ(index.subscriptionCount(1), 0u);
  EXPECT_THAT(index.subscriptionsOf(1), IsEmpty());
  EXPECT_EQ(index.totalSubscriptions(), 3u);
  EXPECT_EQ(index.topicCount(), 2u);  // "t3" and "p3/*" live on through 2 and 3
  EXPECT_THAT(matchAll(index, "t3"), UnorderedElementsAre(2u, 3u));
  EXPECT_THAT(matchAll(index, "p3/x"), ElementsAre(2u));
  EXPECT_THAT(matchAll(index, "t4"), IsEmpty());

  index.unsubscribeAll(1);  // again: nothing to do
  index.unsubscribeAll(999);
  index.unsubscribeAll(TopicIndex::kMaxConnections);
  index.unsubscribeAll(UINT32_MAX);
  EXPECT_EQ(index.totalSubscriptions(), 3u);

  // The connection can subscribe again afterwards.
  ASSERT_EQ(index.subscribe(1, "t3"), Status::kOk);
  EXPECT_THAT(matchAll(index, "t3"), UnorderedElementsAre(1u, 2u, 3u));
}

TEST(TopicIndexTest, TopicCountDropsToZeroWhenEverythingIsRemoved) {
  TopicIndex index;
  constexpr uint32_t kConns = 50;
  constexpr int kTopics = 40;
  for (uint32_t c = 0; c < kConns; ++c) {
    for (int t = 0; t < kTopics; ++t) {
      if ((c + t) % 3 == 0) continue;
      ASSERT_EQ(index.subscribe(c, "e/" + std::to_string(t)), Status::kOk);
      ASSERT_EQ(index.subscribe(c, "e/" + std::to_string(t) + "/*"), Status::kOk);
    }
  }
  EXPECT_EQ(index.topicCount(), 2u * kTopics);
  // Half the connections leave topic by topic (in an order that moves members
  // around inside the buckets), the other half all at once.
  for (uint32_t c = 0; c < kConns; c += 2) {
    for (int t = kTopics - 1; t >= 0; t -= 2) {
      index.unsubscribe(c, "e/" + std::to_string(t) + "/*");
      index.unsubscribe(c, "e/" + std::to_string(t));
    }
    for (int t = 0; t < kTopics; t += 2) {
      index.unsubscribe(c, "e/" + std::to_string(t));
      index.unsubscribe(c, "e/" + std::to_string(t) + "/*");
    }
    EXPECT_EQ(index.subscriptionCount(c), 0u) << c;
  }
  for (uint32_t c = 1; c < kConns; c += 2) index.unsubscribeAll(c);
  EXPECT_EQ(index.topicCount(), 0u);
  EXPECT_EQ(index.totalSubscriptions(), 0u);
  for (int t = 0; t < kTopics; ++t) EXPECT_THAT(matchAll(index, "e/" + std::to_string(t) + "/x"), IsEmpty());
}

TEST(TopicIndexTest, SubscriptionsOf) {
  TopicIndex index;
  EXPECT_THAT(index.subscriptionsOf(0), IsEmpty());
  EXPECT_THAT(index.subscriptionsOf(UINT32_MAX), IsEmpty());
  ASSERT_EQ(index.subscribe(4, "news"), Status::kOk);
  ASSERT_EQ(index.subscribe(4, "chat/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(4, "chat/"), Status::kOk);
  ASSERT_EQ(index.subscribe(4, "/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(4, "*"), Status::kOk);
  ASSERT_EQ(index.subscribe(5, "other"), Status::kOk);
  EXPECT_THAT(index.subscriptionsOf(4), UnorderedElementsAre("news", "chat/*", "chat/", "/*", "*"));
  EXPECT_THAT(index.subscriptionsOf(5), ElementsAre("other"));
  EXPECT_THAT(index.subscriptionsOf(3), IsEmpty());
  EXPECT_EQ(index.subscriptionCount(4), 5u);
  EXPECT_EQ(index.subscriptionCount(3), 0u);
  EXPECT_EQ(index.subscriptionCount(UINT32_MAX), 0u);
}

TEST(TopicIndexTest, SwapRemovalKeepsBackPointersRight) {
  // Three connections share ten buckets; removing from the middle of both a
  // bucket and a connection's list moves the last entries into the hole.
  TopicIndex index;
  for (uint32_t c : {1u, 2u, 3u}) {
    for (int t = 0; t < 10; ++t) ASSERT_EQ(index.subscribe(c, "t" + std::to_string(t)), Status::kOk);
  }
  ASSERT_TRUE(index.unsubscribe(1, "t0"));  // first of conn 1's list, first member of t0
  ASSERT_TRUE(index.unsubscribe(2, "t5"));  // middle of both
  ASSERT_TRUE(index.unsubscribe(3, "t9"));  // last of both
  ASSERT_TRUE(index.unsubscribe(2, "t9"));
  for (int t = 0; t < 10; ++t) {
    std::vector<uint32_t> want;
    for (uint32_t c : {1u, 2u, 3u}) {
      bool removed = (c == 1 && t == 0) || (c == 2 && (t == 5 || t == 9)) || (c == 3 && t == 9);
      if (!removed) want.push_back(c);
    }
    EXPECT_THAT(matchAll(index, "t" + std::to_string(t)), UnorderedElementsAreArray(want)) << t;
  }
  // Every remaining subscription can still be found and removed exactly once.
  for (uint32_t c : {1u, 2u, 3u}) {
    for (const std::string& t : index.subscriptionsOf(c)) {
      EXPECT_TRUE(index.unsubscribe(c, t)) << c << " " << t;
      EXPECT_FALSE(index.unsubscribe(c, t)) << c << " " << t;
    }
  }
  EXPECT_EQ(index.totalSubscriptions(), 0u);
  EXPECT_EQ(index.topicCount(), 0u);
}

TEST(TopicIndexTest, ConnectionNumbersUpToTheRegistrySlotLimit) {
  TopicIndex index;
  ASSERT_EQ(index.subscribe(3, "keep"), Status::kOk);
  const uint32_t last = TopicIndex::kMaxConnections - 1;
  EXPECT_EQ(index.subscribe(last, "keep"), Status::kOk);
  EXPECT_THAT(matchAll(index, "keep"), UnorderedElementsAre(3u, last));
  // Beyond the limit: refused, and (the regression) UINT32_MAX no longer
  // wraps the per-connection arrays' size to zero and wipes the index.
  EXPECT_EQ(index.subscribe(TopicIndex::kMaxConnections, "keep"), Status::kUnknownConnection);
  EXPECT_EQ(index.subscribe(UINT32_MAX, "keep"), Status::kUnknownConnection);
  EXPECT_EQ(index.subscribe(UINT32_MAX, "other"), Status::kUnknownConnection);
  EXPECT_THAT(matchAll(index, "keep"), UnorderedElementsAre(3u, last));
  EXPECT_EQ(index.totalSubscriptions(), 2u);
  EXPECT_EQ(index.topicCount(), 1u);
  EXPECT_EQ(index.subscriptionCount(UINT32_MAX), 0u);
  index.unsubscribeAll(last);
  EXPECT_THAT(matchAll(index, "keep"), ElementsAre(3u));
}

TEST(TopicIndexTest, MatchVisitsOnlyTheRightSubscribersAmong100kTopics) {
  // The index cannot be timed reliably here, so count instead: with 100k
  // unrelated exact topics and 20k unrelated patterns (many sharing a first
  // segment with the target), a match calls visit exactly once per matching
  // subscriber and never for anyone else.
  TopicIndex index;
  constexpr uint32_t kNoiseConns = 2000;
  for (uint32_t i = 0; i < 100000; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(index.subscribe(i % kNoiseConns, (i % 2 ? "news/other/" : "x/") + n), Status::kOk);
  }
  for (uint32_t i = 0; i < 20000; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(index.subscribe((i * 7) % kNoiseConns, (i % 2 ? "news/s" : "p") + n + "/*"), Status::kOk);
  }
  const uint32_t a = kNoiseConns + 1, b = kNoiseConns + 2, c = kNoiseConns + 3, d = kNoiseConns + 4;
  ASSERT_EQ(index.subscribe(a, "news/sports/1"), Status::kOk);
  ASSERT_EQ(index.subscribe(b, "news/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(c, "news/sports/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(c, "news/*"), Status::kOk);
  ASSERT_EQ(index.subscribe(d, "news/sports"), Status::kOk);
  EXPECT_EQ(index.topicCount(), 100000u + 20000u + 4u);

  size_t visits = 0;
  std::set<uint32_t> seen;
  index.match("news/sports/1", [&](uint32_t conn) {
    ++visits;
    seen.insert(conn);
  });
  EXPECT_EQ(visits, 3u);
  EXPECT_EQ(seen, (std::set<uint32_t>{a, b, c}));

  visits = 0;
  index.match("nothing/here/at/all", [&](uint32_t) { ++visits; });
  EXPECT_EQ(visits, 0u);

  // An unrelated noise topic still reaches only its own subscriber.
  EXPECT_THAT(matchAll(index, "x/4242"), ElementsAre(4242u % kNoiseConns));
}

TEST(TopicIndexTest, ManySubscribersOfOneTopicEachVisitedOnce) {
  TopicIndex index;
  constexpr uint32_t kConns = 10000;
  for (uint32_t c = 0; c < kConns; ++c) {
    ASSERT_EQ(index.subscribe(c, "all"), Status::kOk);
    if (c % 2) {
      ASSERT_EQ(index.subscribe(c, "all/*"), Status::kOk);
    }
  }
  std::vector<uint32_t> got = matchAll(index, "all");
  ASSERT_EQ(got.size(), kConns);
  std::sort(got.begin(), got.end());
  for (uint32_t c = 0; c < kConns; ++c) ASSERT_EQ(got[c], c);
  EXPECT_EQ(matchAll(index, "all/x").size(), kConns / 2);
}

// ---- Randomized comparison with a naive model ----

bool naiveMatches(std::string_view sub, std::string_view topic) {
  if (sub.size() >= 2 && sub.substr(sub.size() - 2) == "/*") {
    std::string_view prefix = sub.substr(0, sub.size() - 1);  // keeps the '/'
    return topic.size() > prefix.size() && topic.substr(0, prefix.size()) == prefix;
  }
  return sub == topic;
}

struct Model {
  uint32_t cap;
  std::map<uint32_t, std::set<std::string>> byConn;
  std::map<std::string, std::set<uint32_t>> byTopic;
  size_t total = 0;

  Status subscribe(uint32_t conn, const std::string& t) {
    if (conn >= TopicIndex::kMaxConnections) return Status::kUnknownConnection;
    if (validateTopic(t) != Status::kOk) return Status::kInvalidTopic;
    auto& mine = byConn[conn];
    if (mine.count(t)) return Status::kOk;
    if (mine.size() >= cap) return Status::kTooManySubscriptions;
    mine.insert(t);
    byTopic[t].insert(conn);
    ++total;
    return Status::kOk;
  }
  bool unsubscribe(uint32_t conn, const std::string& t) {
    auto it = byConn.find(conn);
    if (it == byConn.end() || !it->second.erase(t)) return false;
    auto bt = byTopic.find(t);
    bt->second.erase(conn);
    if (bt->second.empty()) byTopic.erase(bt);
    --total;
    return true;
  }
  void unsubscribeAll(uint32_t conn) {
    auto it = byConn.find(conn);
    if (it == byConn.end()) return;
    for (const std::string& t : std::set<std::string>(it->second)) unsubscribe(conn, t);
  }
  std::set<uint32_t> match(std::string_view topic) const {
    std::set<uint32_t> out;
    for (const auto& [sub, conns] : byTopic) {
      if (naiveMatches(sub, topic)) out.insert(conns.begin(), conns.end());
    }
    return out;
  }
  size_t countOf(uint32_t conn) const {
    auto it = byConn.find(conn);
    return it == byConn.end() ? 0 : it->second.size();
  }
};

uint64_t seedFromEnv(uint64_t fallback) {
  const char* s = std::getenv("SSE_FANOUT_TEST_SEED");
  return s ? std::strtoull(s, nullptr, 10) : fallback;
}

TEST(TopicIndexTest, RandomizedAgainstNaiveModel) {
  const uint64_t seed = seedFromEnv(20240601);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set SSE_FANOUT_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);

  // A small alphabet so that subscriptions collide: paths over {a, b} up to
  // depth 3, each as an exact topic, with a trailing slash, and as a pattern.
  std::vector<std::string> paths;
  for (std::string s1 : {"a", "b"}) {
    paths.push_back(s1);
    for (std::string s2 : {"a", "b"}) {
      paths.push_back(s1 + "/" + s2);
      for (std::string s3 : {"a", "b"}) paths.push_back(s1 + "/" + s2 + "/" + s3);
    }
  }
  std::vector<std::string> subTopics = {"/*", "*", "a*", "/a", "/a/*", "a//*", "a//b"};
  for (const std::string& p : paths) {
    subTopics.push_back(p);
    subTopics.push_back(p + "/");
    subTopics.push_back(p + "/*");
  }
  subTopics.push_back("");  // invalid: refused by both
  subTopics.push_back("a\nb");
  std::vector<std::string> pubTopics = subTopics;
  for (const std::string& p : paths) {
    pubTopics.push_back(p + "/c");
    pubTopics.push_back(p + "/a/b/a");
  }
  for (const char* t : {"/", "//", "a//", "a//b/c", "/a/b", "c", "a/*/b"}) pubTopics.push_back(t);

  std::vector<uint32_t> conns;
  for (uint32_t c = 0; c < 48; ++c) conns.push_back(c);
  for (uint32_t c : {1000u, 4097u, 65535u, 100000u, 1u << 20, TopicIndex::kMaxConnections - 1}) conns.push_back(c);
  conns.push_back(TopicIndex::kMaxConnections);  // refused by both
  conns.push_back(UINT32_MAX);

  constexpr uint32_t kCap = 6;
  TopicIndex index(kCap);
  Model model{kCap, {}, {}};
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  constexpr int kOps = 200000;
  size_t matches = 0, capHits = 0, nonEmptyMatches = 0;
  std::vector<uint32_t> got;
  for (int op = 0; op < kOps; ++op) {
    const uint32_t conn = conns[pick(conns.size())];
    const unsigned kind = static_cast<unsigned>(pick(100));
    if (kind < 45) {
      const std::string& t = subTopics[pick(subTopics.size())];
      const Status want = model.subscribe(conn, t);
      if (want == Status::kTooManySubscriptions) ++capHits;
      ASSERT_EQ(index.subscribe(conn, t), want) << "op " << op << " subscribe " << conn << " '" << t << "'";
    } else if (kind < 75) {
      // Half the time one of the connection's own subscriptions, so most hit.
      std::string t = subTopics[pick(subTopics.size())];
      auto it = model.byConn.find(conn);
      if (pick(2) && it != model.byConn.end() && !it->second.empty()) {
        t = *std::next(it->second.begin(), static_cast<long>(pick(it->second.size())));
      }
      const bool want = model.unsubscribe(conn, t);
      ASSERT_EQ(index.unsubscribe(conn, t), want) << "op " << op << " unsubscribe " << conn << " '" << t << "'";
    } else if (kind < 78) {
      model.unsubscribeAll(conn);
      index.unsubscribeAll(conn);
    } else {
      const std::string& t = pubTopics[pick(pubTopics.size())];
      got.clear();
      index.match(t, [&](uint32_t c) { got.push_back(c); });
      std::sort(got.begin(), got.end());
      ASSERT_EQ(std::adjacent_find(got.begin(), got.end()), got.end())
          << "op " << op << " duplicate visit for '" << t << "'";
      const std::set<uint32_t> want = model.match(t);
      ASSERT_EQ(std::set<uint32_t>(got.begin(), got.end()), want) << "op " << op << " match '" << t << "'";
      ++matches;
      if (!want.empty()) ++nonEmptyMatches;
    }
    ASSERT_EQ(index.totalSubscriptions(), model.total) << "op " << op;
    ASSERT_EQ(index.subscriptionCount(conn), model.countOf(conn)) << "op " << op;
    ASSERT_EQ(index.topicCount(), model.byTopic.size()) << "op " << op;
    if (op % 4096 == 0) {
      for (uint32_t c : conns) {
        std::vector<std::string> subs = index.subscriptionsOf(c);
        std::set<std::string> have(subs.begin(), subs.end());
        ASSERT_EQ(have.size(), subs.size()) << "op " << op << " conn " << c;
        auto it = model.byConn.find(c);
        ASSERT_EQ(have, it == model.byConn.end() ? std::set<std::string>{} : it->second)
            << "op " << op << " conn " << c;
      }
    }
  }
  // The run exercised what it meant to.
  EXPECT_GT(matches, kOps / 5);
  EXPECT_GT(nonEmptyMatches, matches / 4);
  EXPECT_GT(capHits, 1000u);

  for (uint32_t c : conns) {
    index.unsubscribeAll(c);
    model.unsubscribeAll(c);
  }
  EXPECT_EQ(index.totalSubscriptions(), 0u);
  EXPECT_EQ(index.topicCount(), 0u);
}

}  // namespace
}  // namespace ssefanout
