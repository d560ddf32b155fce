// Tests for PbIndex: grouping of PocketBase subscriptions by key and identity,
// the internal topics a connection must (un)subscribe, rule and filter
// evaluation per group, one frame per key, and bookkeeping that returns to
// zero. Frames are checked byte for byte and parsed back with the independent
// parser in test/cpp/sse_parser.hpp.
#include "pb_index.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sse_parser.hpp"

namespace ssefanout::pb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

constexpr std::string_view kUserA = R"({"id":"ua","collectionId":"pbc_u","collectionName":"users","role":"admin"})";
constexpr std::string_view kUserB = R"({"id":"ub","collectionId":"pbc_u","collectionName":"users","role":"staff"})";
constexpr std::string_view kRoot = R"({"id":"su","collectionId":"pbc_s","collectionName":"_superusers"})";

// encodeURIComponent(JSON.stringify({query: {...}})) for a query object given as JSON text.
std::string withOptions(const std::string& base, const std::string& queryJson) {
  std::string json = "{\"query\":" + queryJson + "}";
  std::string out = base + "?options=";
  const char* hex = "0123456789ABCDEF";
  for (unsigned char c : json) {
    if (std::isalnum(c) || std::string_view("-_.!~*'()").find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

struct Sets {
  std::vector<std::string> add, remove;
  std::vector<SubscriptionError> errors;
};

// A client address per connection: the per-address sums stay out of the
// tests that are not about them.
std::string ip(uint64_t conn) { return "10.0." + std::to_string(conn / 256) + "." + std::to_string(conn % 256); }

class PbIndexTest : public ::testing::Test {
 protected:
  void SetUp() override { frames0_ = Frame::liveCount(); }
  void TearDown() override { EXPECT_EQ(Frame::liveCount(), frames0_) << "frames leaked"; }

  Sets set(uint64_t conn, std::vector<std::string> subs, std::string_view authJson = {}, bool superuser = false) {
    Sets s;
    std::string identity;
    if (!authJson.empty()) identity = authJson == kUserA ? "pbc_u/ua" : authJson == kUserB ? "pbc_u/ub" : "pbc_s/su";
    EXPECT_EQ(
        index_.setSubscriptions(conn, ip(conn), identity, authJson, superuser, subs, &s.add, &s.remove, &s.errors),
        Status::kOk);
    return s;
  }

  // Broadcasts and returns topic -> frame bytes.
  std::map<std::string, std::string> broadcast(const Collection& c, std::string_view action, std::string_view record) {
    std::vector<Delivery> out;
    std::string error;
    EXPECT_EQ(index_.broadcastRecord(c, action, record, &out, &error), Status::kOk) << error;
    std::map<std::string, std::string> byTopic;
    for (const Delivery& d : out) {
      EXPECT_TRUE(byTopic.emplace(d.topic, std::string(d.frame->view())).second) << "one delivery per group";
    }
    return byTopic;
  }

  static std::string topic(uint64_t key, uint64_t auth) { return PbIndex::topicFor(key, auth); }

  PbIndex index_;
  int64_t frames0_ = 0;
  const std::string everyone_ = "";
  const std::string ownerRule_ = "owner = @request.auth.id";
};

TEST_F(PbIndexTest, TopicsAreInternalAndDistinctPerKeyAndIdentity) {
  EXPECT_TRUE(isInternalTopic(topic(1, 0)));
  EXPECT_EQ(validateTopic(topic(1, 0)), Status::kInvalidTopic) << "no application topic can name a group";
  EXPECT_NE(topic(1, 0), topic(1, 1));
  EXPECT_NE(topic(12, 3), topic(1, 23));
}

TEST_F(PbIndexTest, ReplaceAllGivesTheTopicDifference) {
  Sets first = set(1, {"posts/*", "posts/abc", "", "posts/*"});
  ASSERT_EQ(first.add.size(), 2u) << "empty strings skipped, duplicates collapse";
  EXPECT_THAT(first.remove, IsEmpty());
  EXPECT_EQ(index_.keyCount(), 2u);

  Sets second = set(1, {"posts/abc", "notes/*"});
  ASSERT_EQ(second.add.size(), 1u);
  ASSERT_EQ(second.remove.size(), 1u);
  EXPECT_EQ(second.remove[0], first.add[0]) << "posts/* (the first key) goes";
  EXPECT_EQ(index_.keyCount(), 2u) << "posts/* is released";

  Sets none = set(1, {});
  EXPECT_THAT(none.add, IsEmpty());
  EXPECT_EQ(none.remove.size(), 2u);
  EXPECT_EQ(index_.keyCount(), 0u);
  EXPECT_EQ(index_.connectionCount(), 0u);
}

TEST_F(PbIndexTest, ConnectionsShareKeysAndGroupsByIdentity) {
  Sets a = set(1, {"posts/*"});
  Sets b = set(2, {"posts/*"});
  EXPECT_EQ(a.add, b.add) << "same key, both guests: one group";
  Sets c = set(3, {"posts/*"}, kUserA);
  ASSERT_EQ(c.add.size(), 1u);
  EXPECT_NE(c.add[0], a.add[0]) << "another identity: another group";
  Sets d = set(4, {"posts/*"}, kUserA);
  EXPECT_EQ(d.add, c.add);
  EXPECT_EQ(index_.keyCount(), 1u);
  EXPECT_EQ(index_.groupCount(), 2u);
  EXPECT_EQ(index_.authCount(), 1u);
  index_.removeConnection(3);
  EXPECT_EQ(index_.authCount(), 1u);
  index_.removeConnection(4);
  EXPECT_EQ(index_.authCount(), 0u);
  EXPECT_EQ(index_.groupCount(), 1u);
  index_.removeConnection(1);
  index_.removeConnection(2);
  index_.removeConnection(2);  // twice: no-op
  EXPECT_EQ(index_.keyCount(), 0u);
  EXPECT_EQ(index_.groupCount(), 0u);
  EXPECT_EQ(index_.connectionCount(), 0u);
}

TEST_F(PbIndexTest, GuestToUserMovesEveryTopic) {
  Sets guest = set(1, {"posts/*", "notes/*"});
  Sets user = set(1, {"posts/*", "notes/*"}, kUserA);
  EXPECT_THAT(user.remove, UnorderedElementsAreArray(guest.add));
  EXPECT_EQ(user.add.size(), 2u);
  for (const std::string& t : user.add) EXPECT_EQ(std::count(guest.add.begin(), guest.add.end(), t), 0);
  EXPECT_EQ(index_.keyCount(), 2u);
  EXPECT_EQ(index_.groupCount(), 2u);
}

TEST_F(PbIndexTest, KeyNumbersAreNeverReused) {
  Sets first = set(1, {"a"});
  set(1, {});
  Sets again = set(1, {"a"});
  EXPECT_NE(first.add, again.add) << "a released key comes back under a new number";
}

TEST_F(PbIndexTest, InvalidAuthJsonChangesNothing) {
  set(1, {"posts/*"});
  std::vector<std::string> add, remove;
  std::vector<SubscriptionError> errors;
  for (std::string_view bad : {"", "[]", "{", "\"x\""}) {
    EXPECT_EQ(index_.setSubscriptions(1, ip(1), "pbc_u/ua", bad, false, {"notes/*"}, &add, &remove, &errors),
              Status::kInvalidFilter);
  }
  EXPECT_THAT(add, IsEmpty());
  EXPECT_THAT(remove, IsEmpty());
  EXPECT_EQ(index_.keyCount(), 1u);
  EXPECT_EQ(index_.authCount(), 0u);
}

// Found by fuzz/pb_index_fuzz.cpp: an empty string_view may have a null data
// pointer, which simdjson passed to memcpy (undefined behaviour; UBSan aborts).
TEST_F(PbIndexTest, EmptyViewsWithoutDataAreRefusedNotDereferenced) {
  std::vector<std::string> add, remove;
  std::vector<SubscriptionError> errors;
  EXPECT_EQ(
      index_.setSubscriptions(1, ip(1), "pbc_u/ua", std::string_view(), false, {"posts/*"}, &add, &remove, &errors),
      Status::kInvalidFilter);
  EXPECT_EQ(index_.keyCount(), 0u);
  std::vector<Delivery> out;
  std::string error;
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  EXPECT_EQ(index_.broadcastRecord(posts, "create", std::string_view(), &out, &error), Status::kInvalidFilter);
  EXPECT_THAT(error, ::testing::StartsWith("record is not valid JSON"));
  EXPECT_THAT(out, IsEmpty());
}

TEST_F(PbIndexTest, RecordEventReachesEveryMatchingKeyAsItsOwnFrame) {
  const std::string filtered = withOptions("posts/*", R"({"filter":"views > 10"})");
  Sets s1 = set(1, {"posts/*", "posts/r1", "pbc_p/*", "pbc_p/r1", "posts", filtered, "posts/r2", "other/*"});
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  const std::string record = R"({"id":"r1","title":"hello","views":50})";
  auto got = broadcast(posts, "create", record);
  ASSERT_EQ(got.size(), 6u) << "every key but posts/r2 and other/*";
  std::set<std::string> events;
  for (const auto& [t, bytes] : got) {
    test::SseParser p;
    p.feed(bytes);
    ASSERT_EQ(p.events().size(), 1u) << bytes;
    events.insert(p.events()[0].type);
    EXPECT_EQ(p.events()[0].data, "{\"record\":" + record + ",\"action\":\"create\"}");
    EXPECT_EQ(bytes.substr(0, 6), "event:") << "PocketBase framing, no space";
  }
  EXPECT_THAT(events, UnorderedElementsAre("posts/*", "posts/r1", "pbc_p/*", "pbc_p/r1", "posts", filtered));
}

TEST_F(PbIndexTest, OneFramePerKeySharedByItsGroups) {
  set(1, {"posts/*"});
  set(2, {"posts/*"}, kUserA);
  set(3, {"posts/*"}, kUserB);
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  std::vector<Delivery> out;
  std::string error;
  ASSERT_EQ(index_.broadcastRecord(posts, "update", R"({"id":"x"})", &out, &error), Status::kOk);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].frame.get(), out[1].frame.get());
  EXPECT_EQ(out[1].frame.get(), out[2].frame.get());
  EXPECT_EQ(out[0].frame->refCount(), 3u);
}

TEST_F(PbIndexTest, JsonFieldsAreSerializedOncePerBroadcast) {
  // Three keys whose filters read two large JSON fields 31 times each, and
  // a rule that reads one of them for every identity (it names
  // @request.auth, so each group evaluates it).
  auto filter = [](int n) {
    std::string f = std::string(n == 2 ? "tags ~ '%t7%' && " : "") + "(";
    for (int i = 0; i < 15; ++i) {
      f += "meta ~ '%zq" + std::to_string(i) + "%' || tags ~ '%zq" + std::to_string(i) + "%' || ";
    }
    return f + "meta ~ '%block " + std::to_string(n) + "%')";
  };
  std::vector<std::string> subs;
  for (int n = 0; n < 3; ++n) subs.push_back(withOptions("posts/*", R"({"filter":")" + filter(n) + R"("})"));
  EXPECT_THAT(set(1, subs).errors, IsEmpty());
  EXPECT_THAT(set(2, subs, kUserA).errors, IsEmpty());
  EXPECT_THAT(set(3, subs, kUserB).errors, IsEmpty());
  const std::string rule = "meta !~ '%secret%' && @request.auth.id != 'nobody'";
  Collection posts{"posts", "pbc_p", &rule, &rule};
  auto record = [](int id) {
    std::string meta = "{\"blocks\":[";
    for (int i = 0; i < 40; ++i) meta += std::string(i ? "," : "") + "{\"text\":\"block " + std::to_string(i) + "\"}";
    std::string tags = "[\"t0\"";
    for (int i = 1; i < 60; ++i) tags += ",\"t" + std::to_string(i) + "\"";
    return "{\"id\":\"p" + std::to_string(id) + "\",\"meta\":" + meta + "]},\"tags\":" + tags + "]}";
  };
  for (int k = 0; k < 2; ++k) {
    uint64_t before = Filter::jsonSerializations();
    EXPECT_EQ(broadcast(posts, "create", record(k)).size(), 9u) << "every key and identity matches";
    EXPECT_EQ(Filter::jsonSerializations() - before, 2u) << "meta and tags once in broadcast " << k;
  }
}

TEST_F(PbIndexTest, RulesSeeTheIdentityFiltersSeeTheRecord) {
  const std::string active = withOptions("notes/*", R"({"filter":"status = 'active'"})");
  Sets guest = set(1, {"notes/*", active});
  Sets a = set(2, {"notes/*", active}, kUserA);
  Sets b = set(3, {"notes/*", active}, kUserB);
  Sets root = set(4, {"notes/*", active}, kRoot, true);
  Collection notes{"notes", "pbc_n", &ownerRule_, &ownerRule_};

  auto got = broadcast(notes, "create", R"({"id":"n1","owner":"ua","status":"active"})");
  std::set<std::string> topics;
  for (const auto& [t, bytes] : got) topics.insert(t);
  std::set<std::string> want(a.add.begin(), a.add.end());
  want.insert(root.add.begin(), root.add.end());
  EXPECT_EQ(topics, want) << "the owner and the superuser, both keys; never the guest or the other user";

  auto draft = broadcast(notes, "update", R"({"id":"n1","owner":"ua","status":"draft"})");
  EXPECT_EQ(draft.size(), 2u) << "the unfiltered key only, for the owner and the superuser";

  Collection locked{"notes", "pbc_n", nullptr, nullptr};
  auto onlyRoot = broadcast(locked, "create", R"({"id":"n2","owner":"ua","status":"active"})");
  std::set<std::string> rootTopics;
  for (const auto& [t, bytes] : onlyRoot) rootTopics.insert(t);
  EXPECT_EQ(rootTopics, std::set<std::string>(root.add.begin(), root.add.end())) << "null rule: superusers only";
}

TEST_F(PbIndexTest, ViewRuleForOneRecordListRuleForTheCollection) {
  const std::string adminsOnly = "@request.auth.role = 'admin'";
  Sets a = set(1, {"posts/*", "posts/r1"}, kUserA);
  Sets b = set(2, {"posts/*", "posts/r1"}, kUserB);
  Collection posts{"posts", "pbc_p", &everyone_, &adminsOnly};
  auto got = broadcast(posts, "update", R"({"id":"r1"})");
  std::set<std::string> events;
  for (const auto& [t, bytes] : got) {
    test::SseParser p;
    p.feed(bytes);
    events.insert(p.events()[0].type + (std::count(a.add.begin(), a.add.end(), t) ? "@a" : "@b"));
  }
  EXPECT_THAT(events, UnorderedElementsAre("posts/*@a", "posts/*@b", "posts/r1@a"));
}

TEST_F(PbIndexTest, QueryAndHeadersOfTheSubscriptionReachTheRule) {
  const std::string rule = "@request.query.token = 'abc' && @request.headers.x_tenant = 't1'";
  std::string good =
      "posts/"
      "*?options=%7B%22query%22%3A%7B%22token%22%3A%22abc%22%7D%2C%22headers%22%3A%7B%22X-Tenant%22%3A%22t1%22%7D%7D";
  std::string bad = withOptions("posts/*", R"({"token":"nope"})");
  set(1, {good, bad, "posts/*"});
  Collection posts{"posts", "pbc_p", &rule, &rule};
  auto got = broadcast(posts, "create", R"({"id":"r"})");
  ASSERT_EQ(got.size(), 1u);
  test::SseParser p;
  p.feed(got.begin()->second);
  EXPECT_EQ(p.events()[0].type, good);
}

TEST_F(PbIndexTest, FieldsProjectTheRecordPerKey) {
  const std::string some = withOptions("posts/*", R"({"fields":"id,title"})");
  set(1, {some, "posts/*"});
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  auto got = broadcast(posts, "delete", R"({"id":"r1","title":"t","body":"long text","views":3})");
  std::map<std::string, std::string> dataByEvent;
  for (const auto& [t, bytes] : got) {
    test::SseParser p;
    p.feed(bytes);
    dataByEvent[p.events()[0].type] = p.events()[0].data;
  }
  EXPECT_EQ(dataByEvent[some], R"({"record":{"id":"r1","title":"t"},"action":"delete"})");
  EXPECT_EQ(dataByEvent["posts/*"],
            R"({"record":{"id":"r1","title":"t","body":"long text","views":3},"action":"delete"})");
}

TEST_F(PbIndexTest, SubscriptionsThatDoNotCompileAreReported) {
  const std::string badFilter = withOptions("posts/*", R"({"filter":"tags ?= 'x'"})");
  const std::string badFields = withOptions("posts/*", R"j({"fields":"title:excerpt(10)"})j");
  Sets s = set(1, {badFilter, badFields, "posts/*"});
  ASSERT_EQ(s.errors.size(), 2u);
  EXPECT_EQ(s.errors[0].subscription, badFilter);
  EXPECT_THAT(s.errors[0].message, ::testing::HasSubstr("?="));
  EXPECT_EQ(s.errors[1].subscription, badFields);
  EXPECT_THAT(s.errors[1].message, ::testing::HasSubstr("whole record"));
  EXPECT_EQ(s.add.size(), 3u) << "kept: custom messages still reach them";
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  auto got = broadcast(posts, "create", R"({"id":"r","title":"t"})");
  std::map<std::string, std::string> dataByEvent;
  for (const auto& [t, bytes] : got) {
    test::SseParser p;
    p.feed(bytes);
    dataByEvent[p.events()[0].type] = p.events()[0].data;
  }
  EXPECT_EQ(dataByEvent.count(badFilter), 0u) << "a filter that does not compile lets nothing through";
  EXPECT_EQ(dataByEvent[badFields], R"({"record":{"id":"r","title":"t"},"action":"create"})")
      << "fields that do not parse: the whole record, as PocketBase";
  EXPECT_EQ(dataByEvent.size(), 2u);
  // Reported again on every replace that holds them.
  Sets again = set(2, {badFilter});
  EXPECT_EQ(again.errors.size(), 1u);
}

TEST_F(PbIndexTest, ClientFiltersNamingRequestOrCollectionReachSuperusersOnly) {
  // PocketBase's checkForSuperuserOnlyRuleFields: a non-superuser's filter or
  // sort holding "@request." or "@collection." gets no record events, so a
  // client cannot probe its own auth record (password hash, tokens) with it.
  const std::string probe = withOptions("posts/*", R"({"filter":"@request.auth.id != 'nobody'"})");
  const std::string bySort = withOptions("posts/*", R"({"sort":"@request.auth.role"})");
  const std::string plain = withOptions("posts/*", R"({"filter":"title = 't'"})");
  Sets guest = set(1, {probe, bySort, plain});
  Sets a = set(2, {probe, bySort, plain}, kUserA);
  Sets root = set(3, {probe, bySort, plain}, kRoot, true);
  EXPECT_THAT(a.errors, IsEmpty()) << "the filter compiles; it is the delivery that is refused";
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  auto got = broadcast(posts, "create", R"({"id":"r","title":"t"})");
  std::map<std::string, std::set<std::string>> eventsByHolder;  // "guest"/"a"/"root" -> event names
  for (const auto& [t, bytes] : got) {
    test::SseParser p;
    p.feed(bytes);
    auto in = [&](const Sets& s) { return std::count(s.add.begin(), s.add.end(), t) > 0; };
    eventsByHolder[in(guest) ? "guest" : in(a) ? "a" : in(root) ? "root" : "?"].insert(p.events()[0].type);
  }
  EXPECT_EQ(eventsByHolder["guest"], std::set<std::string>({plain}));
  EXPECT_EQ(eventsByHolder["a"], std::set<std::string>({plain}));
  EXPECT_EQ(eventsByHolder["root"], std::set<std::string>({probe, bySort, plain})) << "superusers are unaffected";
  EXPECT_EQ(eventsByHolder.count("?"), 0u);
}

TEST_F(PbIndexTest, BadRecordsAndRulesAreRefusedWithAMessage) {
  set(1, {"posts/*"});
  std::vector<Delivery> out;
  std::string error;
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  for (std::string_view bad : {"", "{", "[]", R"({"id":1})", R"({"title":"no id"})", "null"}) {
    EXPECT_EQ(index_.broadcastRecord(posts, "create", bad, &out, &error), Status::kInvalidFilter) << bad;
    EXPECT_FALSE(error.empty());
  }
  EXPECT_EQ(index_.broadcastRecord(posts, "upsert\"}", R"({"id":"r"})", &out, &error), Status::kInvalidEvent);
  EXPECT_THAT(error, ::testing::HasSubstr("action"));
  const std::string broken = "views >";
  Collection bad{"posts", "pbc_p", &broken, &everyone_};
  EXPECT_EQ(index_.broadcastRecord(bad, "create", R"({"id":"r"})", &out, &error), Status::kInvalidFilter);
  EXPECT_THAT(error, ::testing::StartsWith("listRule: "));
  EXPECT_THAT(out, IsEmpty());
}

TEST_F(PbIndexTest, LoneSurrogateEscapesBecomeReplacementCharacters) {
  set(1, {"posts/*"});
  Collection posts{"posts", "pbc_p", &everyone_, &everyone_};
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"id":"r","t":"a\ud800b"})", R"({"id":"r","t":"a\ufffdb"})"},
      {R"({"id":"r","t":"\udc00"})", R"({"id":"r","t":"\ufffd"})"},
      {R"({"id":"r","t":"\ud83d\ude00 \ud83d"})", R"({"id":"r","t":"\ud83d\ude00 \ufffd"})"},  // a pair stays
      {R"({"id":"r","t":"\\ud800"})", R"({"id":"r","t":"\\ud800"})"},  // an escaped backslash, no escape
      {R"({"id":"r","t":"\ud800\ud800\udc00"})", R"({"id":"r","t":"\ufffd\ud800\udc00"})"},
  };
  for (const auto& [in, want] : cases) {
    auto got = broadcast(posts, "create", in);
    ASSERT_EQ(got.size(), 1u) << in;
    test::SseParser p;
    p.feed(got.begin()->second);
    EXPECT_EQ(p.events()[0].data, "{\"record\":" + want + ",\"action\":\"create\"}") << in;
  }
}

TEST_F(PbIndexTest, IntegersBeyond64BitsReadAsDoubles) {
  // JSON.stringify(2 ** 64) is "18446744073709551616": simdjson refuses such
  // an integer, Go (hence PocketBase) reads every number as a float64.
  const std::string eq = withOptions("posts/*", R"({"filter":"n = 18446744073709551616 && n > 9223372036854775807"})");
  const std::string neg =
      withOptions("posts/*", R"({"filter":"m < -9223372036854775808 && m = -18446744073709551616"})");
  const std::string huge =
      withOptions("posts/*", R"({"filter":"h > 99999999999999999999 && h = 1000000000000000000000000000000"})");
  const std::string none = withOptions("posts/*", R"({"filter":"n < 0 || n = 18446744073709551615.5e3"})");
  const std::string own = withOptions("posts/*", R"({"filter":"title != ''"})");
  Sets s = set(1, {eq, neg, huge, none});
  // An auth record with such a number binds too (a POST used to answer 500).
  const std::string bigAuth =
      R"({"id":"ub","collectionId":"pbc_u","quota":18446744073709551616,"arr":[-99999999999999999999]})";
  Sets user;
  ASSERT_EQ(index_.setSubscriptions(2, ip(2), "pbc_u/ub", bigAuth, false, {own}, &user.add, &user.remove, &user.errors),
            Status::kOk);
  const std::string quota = "@request.auth.quota > 18446744073709000000";
  Collection posts{"posts", "pbc_p", &quota, &quota};
  Collection open{"posts", "pbc_p", &everyone_, &everyone_};
  const std::string record =
      R"({"id":"r","title":"t","n":18446744073709551616,"m":-18446744073709551616,"h":1000000000000000000000000000000})";
  auto got = broadcast(open, "create", record);
  std::set<std::string> events;
  for (const auto& [t, bytes] : got) {
    test::SseParser p;
    p.feed(bytes);
    events.insert(p.events()[0].type);
    EXPECT_EQ(p.events()[0].data, "{\"record\":" + record + ",\"action\":\"create\"}") << "the record as given";
  }
  EXPECT_EQ(events, std::set<std::string>({eq, neg, huge, own}));
  auto ruled = broadcast(posts, "create", record);
  ASSERT_EQ(ruled.size(), 1u) << "the rule reads the big number of the auth record";
  EXPECT_EQ(ruled.begin()->first, user.add[0]);
  std::vector<Delivery> out;
  std::string error;
  EXPECT_EQ(index_.broadcastRecord(open, "create", R"({"id":"r","n":1e999})", &out, &error), Status::kInvalidFilter)
      << "beyond double range: refused, as Go refuses it";
}

TEST_F(PbIndexTest, CustomMessagesGoToExactSubscribersOfEveryIdentity) {
  Sets a = set(1, {"@oauth2", "chat"});
  Sets b = set(2, {"chat"}, kUserA);
  set(3, {"chat?x=1", "cha"});
  std::vector<Delivery> out;
  index_.publish("chat", "chat", "{\"text\":\"hi\"}", &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::string(out[0].frame->view()), "event:chat\ndata:{\"text\":\"hi\"}\n\n");
  EXPECT_EQ(out[0].frame.get(), out[1].frame.get());
  out.clear();
  index_.publish("nobody", "nobody", "x", &out);
  EXPECT_THAT(out, IsEmpty());
}

TEST_F(PbIndexTest, RandomizedBookkeepingReturnsToZero) {
  std::mt19937 rng(7);
  const std::vector<std::string> pool = {"posts/*", "posts/a", "notes/*",
                                         "chat",    "x",       withOptions("posts/*", R"({"filter":"views > 1"})")};
  const std::vector<std::string_view> auths = {{}, kUserA, kUserB};
  std::map<uint64_t, std::pair<std::string_view, std::set<std::string>>> model;  // conn -> (auth, topics)
  for (int op = 0; op < 5000; ++op) {
    uint64_t conn = rng() % 20;
    if (rng() % 5 == 0) {
      index_.removeConnection(conn);
      model.erase(conn);
      continue;
    }
    std::vector<std::string> subs;
    for (const std::string& s : pool) {
      if (rng() % 2) subs.push_back(s);
    }
    std::string_view auth = auths[rng() % auths.size()];
    auto& m = model[conn];
    if (!m.first.empty() && auth != m.first) auth = m.first;  // the binding rule is the caller's
    Sets s = set(conn, subs, auth);
    for (const std::string& t : s.remove) EXPECT_EQ(m.second.erase(t), 1u) << "removes only what it holds";
    for (const std::string& t : s.add) EXPECT_TRUE(m.second.insert(t).second) << "adds only what it lacks";
    EXPECT_EQ(m.second.size(), std::set<std::string>(subs.begin(), subs.end()).size());
    m.first = auth;
    if (op % 50 == 0) {
      ASSERT_TRUE(index_.checkInvariants()) << "after operation " << op;
    }
  }
  EXPECT_TRUE(index_.checkInvariants());
  for (auto& [conn, m] : model) index_.removeConnection(conn);
  EXPECT_EQ(index_.keyCount(), 0u);
  EXPECT_EQ(index_.groupCount(), 0u);
  EXPECT_EQ(index_.authCount(), 0u);
  EXPECT_EQ(index_.connectionCount(), 0u);
}

TEST_F(PbIndexTest, BookkeepingIsConstantPerOperationWith20kKeysUnderOneBase) {
  // 20k keys under one base, released last-first (a linear search of the
  // base's list visits all of them), and 20k identities in one key's groups
  // (a linear scan of the groups per join and leave): counted, not timed.
  constexpr int kN = 20000;
  const uint64_t steps0 = index_.bookkeepingSteps();
  for (int i = 0; i < kN; ++i) {
    Sets s;
    std::string sub = withOptions("posts/*", "{\"filter\":\"n = " + std::to_string(i) + "\"}");
    ASSERT_EQ(index_.setSubscriptions(i, ip(i), {}, {}, false, {sub}, &s.add, &s.remove, &s.errors), Status::kOk);
  }
  for (int i = 0; i < kN; ++i) {
    std::string identity = "pbc_u/u" + std::to_string(i);
    std::string auth = R"({"id":"u)" + std::to_string(i) + R"(","collectionId":"pbc_u"})";
    Sets s;
    ASSERT_EQ(
        index_.setSubscriptions(kN + i, ip(kN + i), identity, auth, false, {"posts/*"}, &s.add, &s.remove, &s.errors),
        Status::kOk);
  }
  EXPECT_EQ(index_.keyCount(), static_cast<size_t>(kN + 1));
  EXPECT_EQ(index_.groupCount(), static_cast<size_t>(2 * kN));
  EXPECT_TRUE(index_.checkInvariants());
  for (int i = kN; i-- > 0;) index_.removeConnection(i);
  for (int i = 0; i < kN; ++i) index_.removeConnection(kN + i);
  EXPECT_EQ(index_.keyCount(), 0u);
  EXPECT_EQ(index_.groupCount(), 0u);
  EXPECT_TRUE(index_.checkInvariants());
  const uint64_t operations = 4 * kN;  // subscribe and remove, per connection
  EXPECT_LE(index_.bookkeepingSteps() - steps0, 3 * operations);
}

TEST_F(PbIndexTest, BudgetsRefuseTheWholeSetAndChangeNothing) {
  auto filtered = [](int i, const std::string& filter = "n = 1") {
    return withOptions("posts/*", "{\"filter\":\"" + filter + " && id != 'k" + std::to_string(i) + "'\"}");
  };
  auto attempt = [&](PbIndex& index, uint64_t conn, std::vector<std::string> subs) {
    Sets s;
    Status st = index.setSubscriptions(conn, ip(conn), {}, {}, false, subs, &s.add, &s.remove, &s.errors);
    if (st != Status::kOk) {
      EXPECT_TRUE(s.add.empty() && s.remove.empty() && s.errors.empty()) << "a refused set reports nothing";
    }
    return st;
  };
  PbLimits limits;
  limits.maxOptionSubscriptionsPerClient = 3;
  PbIndex index(limits);
  ASSERT_EQ(attempt(index, 1, {filtered(1), filtered(2), filtered(3), "posts/*", "posts/a", "chat"}), Status::kOk)
      << "plain keys do not count against the option budget";
  const size_t keys = index.keyCount();
  const uint64_t bytes = index.compiledBytes();
  EXPECT_EQ(attempt(index, 1, {filtered(1), filtered(2), filtered(3), filtered(4)}),
            Status::kTooManyOptionSubscriptions);
  EXPECT_EQ(attempt(index, 1, {filtered(1), filtered(2), "posts/*?x=1", "posts/*?y=1"}),
            Status::kTooManyOptionSubscriptions)
      << "any '?' counts, options or not";
  EXPECT_EQ(index.keyCount(), keys);
  EXPECT_EQ(index.compiledBytes(), bytes) << "compiled candidates are dropped";
  EXPECT_TRUE(index.checkInvariants());

  // Filter nodes: "n = 1 && id != 'kI'" is 3 nodes; a LIKE against a field counts 100.
  limits = PbLimits();
  limits.maxFilterNodesPerClient = 9;
  index.setLimits(limits);
  EXPECT_EQ(attempt(index, 2, {filtered(1), filtered(2), filtered(3)}), Status::kOk);
  EXPECT_EQ(attempt(index, 2, {filtered(1), filtered(2), filtered(3), filtered(4)}), Status::kClientFilterBudget);
  limits.maxFilterNodesPerClient = 102;
  index.setLimits(limits);
  EXPECT_EQ(attempt(index, 3, {filtered(5, "title ~ body")}), Status::kOk);
  EXPECT_EQ(attempt(index, 3, {filtered(5, "title ~ body"), filtered(6)}), Status::kClientFilterBudget);
  EXPECT_EQ(attempt(index, 3, {filtered(6, "title ~ '%a_b%'"), filtered(7, "title ~ 'x'")}), Status::kOk)
      << "literal patterns count 1, or 4 with a _ wildcard";

  // Bytes per client: a shared key counts for each holder.
  limits = PbLimits();
  index.setLimits(limits);
  const std::string big = filtered(1, "title ~ '" + std::string(1500, 'x') + "'");
  ASSERT_EQ(attempt(index, 4, {big}), Status::kOk);
  const uint64_t one = index.compiledBytes();
  ASSERT_EQ(attempt(index, 5, {big}), Status::kOk);
  EXPECT_EQ(index.compiledBytes(), one) << "hub-wide, a key counts once";
  limits.maxCompiledBytesPerClient = 2000;
  index.setLimits(limits);
  EXPECT_EQ(attempt(index, 6, {big}), Status::kClientMemoryBudget) << "an existing key still costs its holder";
  EXPECT_EQ(attempt(index, 6, {"posts/*"}), Status::kOk);

  // Hub-wide: distinct keys and bytes, checked before the old keys go.
  limits = PbLimits();
  limits.maxDistinctSubscriptions = index.keyCount() + 1;
  index.setLimits(limits);
  EXPECT_EQ(attempt(index, 7, {"notes/1"}), Status::kOk);
  EXPECT_EQ(attempt(index, 8, {"notes/2"}), Status::kTooManyDistinctSubscriptions);
  EXPECT_EQ(attempt(index, 8, {"notes/1"}), Status::kOk) << "an existing key is no new key";
  limits = PbLimits();
  limits.maxCompiledBytes = index.compiledBytes() + 100;
  index.setLimits(limits);
  EXPECT_EQ(attempt(index, 9, {"notes/3"}), Status::kSubscriptionMemoryBudget);
  EXPECT_TRUE(index.checkInvariants());
  for (uint64_t c = 1; c <= 9; ++c) index.removeConnection(c);
  EXPECT_EQ(index.keyCount(), 0u);
  EXPECT_EQ(index.compiledBytes(), 0u) << "the accounting returns to zero";
}

TEST_F(PbIndexTest, DefaultBudgetsHoldWhatSdkAppsSubscribe) {
  // PocketBase's POST limit is 1000 subscriptions: 1000 plain record keys
  // fit one client; so do 100 typical filtered ones.
  std::vector<std::string> plain;
  for (int i = 0; i < 1000; ++i)
    plain.push_back("posts/" + std::string(15 - std::to_string(i).size(), 'r') + std::to_string(i));
  Sets s;
  EXPECT_EQ(index_.setSubscriptions(1, ip(1), {}, {}, false, plain, &s.add, &s.remove, &s.errors), Status::kOk);
  std::printf("[ figures  ] 1000 plain keys: %llu bytes\n", static_cast<unsigned long long>(index_.compiledBytes()));
  std::vector<std::string> single, sdk;
  for (int i = 0; i < 100; ++i)
    single.push_back(withOptions("posts/*", "{\"filter\":\"n = " + std::to_string(i) + "\"}"));
  for (int i = 0; i < 20; ++i) {
    sdk.push_back(withOptions("posts/*", "{\"filter\":\"status = 'active' && author = 'u1' && (views > " +
                                             std::to_string(i) + " || title ~ 'news')\",\"fields\":\"id,title\"}"));
  }
  EXPECT_EQ(index_.setSubscriptions(2, ip(2), {}, {}, false, single, &s.add, &s.remove, &s.errors), Status::kOk)
      << "100 one-comparison filters";
  EXPECT_EQ(index_.setSubscriptions(3, ip(3), {}, {}, false, sdk, &s.add, &s.remove, &s.errors), Status::kOk)
      << "20 SDK subscriptions with four comparisons and fields each";
  single.push_back(withOptions("posts/*", R"({"filter":"n = -1"})"));
  EXPECT_EQ(index_.setSubscriptions(2, ip(2), {}, {}, false, single, &s.add, &s.remove, &s.errors),
            Status::kTooManyOptionSubscriptions);
}

// The per-address budgets (PbLimits::*PerIp): sums over the connections of
// one owner, updated with each set in place of the connection's old one.
class PbOwnerBudgetTest : public PbIndexTest {
 protected:
  static std::string opt(int i, const std::string& filter = "") {
    std::string q = "{\"n\":\"" + std::to_string(i) + "\"";
    if (!filter.empty()) q += ",\"filter\":\"" + filter + "\"";
    return withOptions("posts/*", q + "}");
  }
  static std::vector<std::string> opts(int from, int count, const std::string& filter = "") {
    std::vector<std::string> v;
    for (int i = from; i < from + count; ++i) v.push_back(opt(i, filter));
    return v;
  }
  Status attempt(uint64_t conn, std::string_view owner, const std::vector<std::string>& subs) {
    Sets s;
    Status st = index_.setSubscriptions(conn, owner, {}, {}, false, subs, &s.add, &s.remove, &s.errors);
    if (st != Status::kOk) {
      EXPECT_TRUE(s.add.empty() && s.remove.empty() && s.errors.empty()) << "a refused set reports nothing";
    }
    return st;
  }
  // Everything a refusal must leave as it was.
  struct Snapshot {
    size_t keys, conns, owners;
    uint64_t bytes;
    PbUsage a, b;
    bool operator==(const Snapshot& o) const {
      return keys == o.keys && conns == o.conns && owners == o.owners && bytes == o.bytes && a == o.a && b == o.b;
    }
  };
  Snapshot snapshot() const {
    return {index_.keyCount(),      index_.connectionCount(),      index_.ownerCount(),
            index_.compiledBytes(), index_.ownerUsage("10.0.0.1"), index_.ownerUsage("10.0.0.2")};
  }
  static constexpr std::string_view kA = "10.0.0.1";
  static constexpr std::string_view kB = "10.0.0.2";
};

TEST_F(PbOwnerBudgetTest, SumsSpanTheConnectionsOfOneAddress) {
  PbLimits limits;
  limits.maxOptionSubscriptionsPerIp = 5;
  index_.setLimits(limits);
  ASSERT_EQ(attempt(1, kA, opts(0, 3)), Status::kOk);
  ASSERT_EQ(attempt(2, kA, {opt(0), opt(10), "posts/*"}), Status::kOk) << "4 of 5; a shared key counts for each holder";
  EXPECT_EQ(index_.ownerUsage(kA).optionKeys, 5u);
  EXPECT_EQ(index_.ownerUsage(kA).keys, 6u);
  EXPECT_GT(index_.ownerUsage(kA).bytes, index_.compiledBytes()) << "the shared key's bytes count twice here";

  const Snapshot before = snapshot();
  EXPECT_EQ(attempt(3, kA, {opt(20)}), Status::kTooManyIpOptionSubscriptions) << "a third stream of the same address";
  EXPECT_EQ(attempt(2, kA, {opt(0), opt(10), opt(11)}), Status::kTooManyIpOptionSubscriptions)
      << "a connection growing its set";
  EXPECT_EQ(snapshot(), before) << "a refused set changes nothing";
  EXPECT_EQ(index_.ownerCount(), 1u) << "a refused connection interns no owner";
  EXPECT_TRUE(index_.checkInvariants());

  EXPECT_EQ(attempt(3, kB, opts(30, 5)), Status::kOk) << "another address has its own budget";
  EXPECT_EQ(attempt(1, kA, opts(40, 3)), Status::kOk) << "the old set is replaced, not added to";
  EXPECT_EQ(index_.ownerUsage(kA).optionKeys, 5u);
  EXPECT_EQ(index_.ownerUsage(kB).optionKeys, 5u);
  EXPECT_TRUE(index_.checkInvariants());
}

TEST_F(PbOwnerBudgetTest, EachSumHasItsStatus) {
  PbLimits limits;
  limits.maxFilterNodesPerIp = 5;  // "views > 1" is one node
  index_.setLimits(limits);
  ASSERT_EQ(attempt(1, kA, opts(0, 3, "views > 1")), Status::kOk);
  EXPECT_EQ(attempt(2, kA, opts(3, 3, "views > 1")), Status::kIpFilterBudget);
  EXPECT_EQ(attempt(2, kA, opts(3, 2, "views > 1")), Status::kOk);
  EXPECT_EQ(attempt(3, kA, {opt(9, "title ~ body")}), Status::kIpFilterBudget)
      << "a LIKE with a pattern from a field weighs " << Filter::kRunTimeLikeNodes;
  EXPECT_EQ(index_.ownerUsage(kA).filterNodes, 5u);

  limits = PbLimits();
  limits.maxSubscriptionsPerIp = 4;
  index_.setLimits(limits);
  EXPECT_EQ(attempt(4, kB, {"posts/1", "posts/2", "posts/3"}), Status::kOk);
  EXPECT_EQ(attempt(5, kB, {"posts/1", "posts/4"}), Status::kTooManyIpSubscriptions) << "plain keys count here";
  EXPECT_EQ(attempt(5, kB, {"posts/1"}), Status::kOk);

  limits = PbLimits();
  limits.maxCompiledBytesPerIp = index_.ownerUsage(kB).bytes + 100;
  index_.setLimits(limits);
  EXPECT_EQ(attempt(6, kB, {"posts/5"}), Status::kIpMemoryBudget);
  EXPECT_EQ(attempt(6, "10.0.0.3", {"posts/5"}), Status::kOk) << "another address";
  EXPECT_TRUE(index_.checkInvariants());
}

TEST_F(PbOwnerBudgetTest, AShrinkingSetIsNeverRefused) {
  ASSERT_EQ(attempt(1, kA, opts(0, 50)), Status::kOk);
  ASSERT_EQ(attempt(2, kA, opts(50, 50)), Status::kOk);
  PbLimits limits;
  limits.maxOptionSubscriptionsPerIp = 10;  // lowered past what the address holds
  index_.setLimits(limits);
  EXPECT_EQ(attempt(3, kA, {opt(200)}), Status::kTooManyIpOptionSubscriptions);
  EXPECT_EQ(attempt(1, kA, opts(0, 20)), Status::kOk) << "the sum falls: allowed though still past the limit";
  EXPECT_EQ(attempt(2, kA, {}), Status::kOk) << "unsubscribing always works";
  EXPECT_EQ(attempt(1, kA, opts(0, 21)), Status::kTooManyIpOptionSubscriptions) << "but it may not grow again";
  EXPECT_EQ(index_.ownerUsage(kA).optionKeys, 20u);
  EXPECT_TRUE(index_.checkInvariants());
}

TEST_F(PbOwnerBudgetTest, ReleasedOnDisconnectAndOwnersGoWithTheirLastConnection) {
  PbLimits limits;
  limits.maxOptionSubscriptionsPerIp = 4;
  index_.setLimits(limits);
  ASSERT_EQ(attempt(1, kA, opts(0, 2)), Status::kOk);
  ASSERT_EQ(attempt(2, kA, opts(2, 2)), Status::kOk);
  ASSERT_EQ(attempt(3, kB, opts(0, 4)), Status::kOk);
  EXPECT_EQ(index_.ownerCount(), 2u);
  EXPECT_EQ(attempt(4, kA, {opt(9)}), Status::kTooManyIpOptionSubscriptions);
  index_.removeConnection(2);
  EXPECT_EQ(index_.ownerUsage(kA).optionKeys, 2u) << "the connection's share is released";
  EXPECT_EQ(attempt(4, kA, {opt(9), opt(10)}), Status::kOk);
  index_.removeConnection(1);
  EXPECT_EQ(attempt(4, kA, {}), Status::kOk) << "an empty guest set drops the connection";
  EXPECT_EQ(index_.ownerCount(), 1u) << "its owner goes with it";
  EXPECT_EQ(index_.ownerUsage(kA), PbUsage{});
  index_.removeConnection(3);
  EXPECT_EQ(index_.ownerCount(), 0u);
  EXPECT_EQ(index_.keyCount(), 0u);
  EXPECT_EQ(index_.compiledBytes(), 0u);
  EXPECT_TRUE(index_.checkInvariants());
}

TEST_F(PbOwnerBudgetTest, RandomizedAgainstAModelOfTheSums) {
  // Key and option-key sums are exact in the model (bytes and nodes are
  // the index's estimates; checkInvariants() recomputes those).
  std::mt19937 rng(11);
  PbLimits limits;
  limits.maxOptionSubscriptionsPerIp = 7;
  limits.maxSubscriptionsPerIp = 12;
  index_.setLimits(limits);
  std::vector<std::string> pool = {"posts/*", "posts/a", "posts/b", "notes/*", "chat"};
  for (int i = 0; i < 6; ++i) pool.push_back(opt(i, i % 2 ? "views > " + std::to_string(i) : ""));
  const std::vector<std::string> owners = {"10.0.0.1", "10.0.0.2", "::1"};
  struct ModelConn {
    std::string owner;
    std::set<std::string> subs;
  };
  std::map<uint64_t, ModelConn> model;
  auto sums = [&](const std::string& owner, uint64_t skip, uint64_t* keys, uint64_t* options) {
    *keys = *options = 0;
    for (const auto& [conn, m] : model) {
      if (conn == skip || m.owner != owner) continue;
      *keys += m.subs.size();
      for (const std::string& sub : m.subs) *options += sub.find('?') != std::string::npos;
    }
  };
  int refused = 0;
  for (int op = 0; op < 4000; ++op) {
    const uint64_t conn = rng() % 8;
    if (rng() % 6 == 0) {
      index_.removeConnection(conn);
      model.erase(conn);
    } else {
      // A connection keeps its address, as a client does.
      const std::string owner = model.count(conn) ? model[conn].owner : owners[rng() % owners.size()];
      std::set<std::string> subs;
      for (const std::string& s : pool) {
        if (rng() % 3 == 0) subs.insert(s);
      }
      uint64_t keys0, options0, keys1, options1;
      sums(owner, UINT64_MAX, &keys0, &options0);
      sums(owner, conn, &keys1, &options1);
      keys1 += subs.size();
      for (const std::string& sub : subs) options1 += sub.find('?') != std::string::npos;
      Status want = Status::kOk;
      if (options1 > limits.maxOptionSubscriptionsPerIp && options1 > options0) {
        want = Status::kTooManyIpOptionSubscriptions;
      } else if (keys1 > limits.maxSubscriptionsPerIp && keys1 > keys0) {
        want = Status::kTooManyIpSubscriptions;
      }
      ASSERT_EQ(attempt(conn, owner, {subs.begin(), subs.end()}), want) << "operation " << op;
      if (want == Status::kOk) {
        if (subs.empty()) {
          model.erase(conn);
        } else {
          model[conn] = {owner, subs};
        }
      } else {
        ++refused;
      }
    }
    for (const std::string& owner : owners) {
      uint64_t keys, options;
      sums(owner, UINT64_MAX, &keys, &options);
      ASSERT_EQ(index_.ownerUsage(owner).keys, keys) << owner << " after operation " << op;
      ASSERT_EQ(index_.ownerUsage(owner).optionKeys, options) << owner << " after operation " << op;
    }
    if (op % 50 == 0) {
      ASSERT_TRUE(index_.checkInvariants()) << "after operation " << op;
    }
  }
  EXPECT_GT(refused, 100) << "the limits were reached often";
  for (const auto& [conn, m] : model) index_.removeConnection(conn);
  EXPECT_EQ(index_.ownerCount(), 0u);
  EXPECT_EQ(index_.keyCount(), 0u);
  EXPECT_TRUE(index_.checkInvariants());
}

// Two indexes feeding one hub (two Realtimes sharing it) number their keys
// and identities from 1 each: their topic spaces keep the topics apart.
TEST(PbIndexTopicSpaceTest, IndexesInDistinctSpacesMakeDistinctTopics) {
  PbIndex first, second;
  second.setTopicSpace(7);
  EXPECT_EQ(first.topicSpace(), 0u);
  EXPECT_EQ(second.topicSpace(), 7u);
  std::vector<std::string> add1, add2, remove;
  std::vector<SubscriptionError> errors;
  ASSERT_EQ(first.setSubscriptions(1, "a", "", std::string_view(), false, {"posts/*"}, &add1, &remove, &errors),
            Status::kOk);
  ASSERT_EQ(second.setSubscriptions(1, "a", "", std::string_view(), false, {"posts/*"}, &add2, &remove, &errors),
            Status::kOk);
  ASSERT_EQ(add1.size(), 1u);
  ASSERT_EQ(add2.size(), 1u);
  EXPECT_EQ(add1[0], PbIndex::topicFor(1, PbIndex::kGuest));
  EXPECT_EQ(add2[0], PbIndex::topicFor(1, PbIndex::kGuest, 7));
  EXPECT_NE(add1[0], add2[0]);
  EXPECT_EQ(add2[0], std::string("\0pb7:1:0", 8));
  EXPECT_TRUE(isInternalTopic(add2[0]));
  std::vector<Delivery> out;
  second.publish("posts/*", "posts/*", "{}", &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].topic, add2[0]);
}

}  // namespace
}  // namespace ssefanout::pb
