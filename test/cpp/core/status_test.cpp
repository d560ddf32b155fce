// Status: stable, distinct names for every value (the JS error table is
// derived from them), and the topic/line validation shared by the core.
#include "status.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>
#include <string_view>

namespace ssefanout {
namespace {

// Usable at compile time, as the addon's tables may need.
static_assert(statusName(Status::kOk) == "OK");
static_assert(validateTopic("a") == Status::kOk);
static_assert(validateTopic("") == Status::kInvalidTopic);
static_assert(!isSingleLine("a\nb"));

TEST(StatusTest, EveryStatusHasADistinctStableName) {
  std::set<std::string_view> names;
  for (unsigned i = 0; i < static_cast<unsigned>(Status::kCount); ++i) {
    const std::string_view name = statusName(static_cast<Status>(i));
    EXPECT_FALSE(name.empty()) << i;
    EXPECT_NE(name, "UNKNOWN") << i;
    for (char c : name) EXPECT_TRUE(std::isupper(static_cast<unsigned char>(c)) || c == '_') << name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(Status::kCount));
}

TEST(StatusTest, NamesTheJsCodesAreDerivedFrom) {
  // Changing one of these breaks ERR_SSE_* codes users match on.
  EXPECT_EQ(statusName(Status::kOk), "OK");
  EXPECT_EQ(statusName(Status::kInvalidEvent), "INVALID_EVENT");
  EXPECT_EQ(statusName(Status::kInvalidId), "INVALID_ID");
  EXPECT_EQ(statusName(Status::kInvalidTopic), "INVALID_TOPIC");
  EXPECT_EQ(statusName(Status::kInvalidRetry), "INVALID_RETRY");
  EXPECT_EQ(statusName(Status::kDataTooLarge), "DATA_TOO_LARGE");
  EXPECT_EQ(statusName(Status::kTooManyOptionSubscriptions), "TOO_MANY_OPTION_SUBSCRIPTIONS");
  EXPECT_EQ(statusName(Status::kClientFilterBudget), "CLIENT_FILTER_BUDGET");
  EXPECT_EQ(statusName(Status::kClientMemoryBudget), "CLIENT_MEMORY_BUDGET");
  EXPECT_EQ(statusName(Status::kTooManyDistinctSubscriptions), "TOO_MANY_DISTINCT_SUBSCRIPTIONS");
  EXPECT_EQ(statusName(Status::kSubscriptionMemoryBudget), "SUBSCRIPTION_MEMORY_BUDGET");
  EXPECT_EQ(statusName(Status::kTooManyIpOptionSubscriptions), "TOO_MANY_IP_OPTION_SUBSCRIPTIONS");
  EXPECT_EQ(statusName(Status::kIpFilterBudget), "IP_FILTER_BUDGET");
  EXPECT_EQ(statusName(Status::kIpMemoryBudget), "IP_MEMORY_BUDGET");
  EXPECT_EQ(statusName(Status::kTooManyIpSubscriptions), "TOO_MANY_IP_SUBSCRIPTIONS");
  EXPECT_EQ(statusName(Status::kInvalidData), "INVALID_DATA");
  EXPECT_EQ(statusName(Status::kInvalidFilter), "INVALID_FILTER");
  EXPECT_EQ(statusName(Status::kTooManySubscriptions), "TOO_MANY_SUBSCRIPTIONS");
  EXPECT_EQ(statusName(Status::kUnknownConnection), "UNKNOWN_CONNECTION");
  EXPECT_EQ(statusName(Status::kTooManyConnections), "TOO_MANY_CONNECTIONS");
  EXPECT_EQ(statusName(Status::kClosed), "CLOSED");
  EXPECT_EQ(static_cast<unsigned>(Status::kOk), 0u);
}

TEST(StatusTest, OutOfRangeValuesAreUnknown) {
  EXPECT_EQ(statusName(Status::kCount), "UNKNOWN");
  EXPECT_EQ(statusName(static_cast<Status>(200)), "UNKNOWN");
  EXPECT_EQ(statusName(static_cast<Status>(255)), "UNKNOWN");
}

TEST(StatusTest, IsSingleLine) {
  EXPECT_TRUE(isSingleLine(""));
  EXPECT_TRUE(isSingleLine("abc"));
  EXPECT_TRUE(isSingleLine("tab\there"));
  EXPECT_TRUE(isSingleLine("\x7f\x01\x1b"));
  EXPECT_TRUE(isSingleLine("\xc2\x85"));      // U+0085 NEL: not a line end in SSE
  EXPECT_TRUE(isSingleLine("\xe2\x80\xa8"));  // U+2028: likewise
  EXPECT_FALSE(isSingleLine("\n"));
  EXPECT_FALSE(isSingleLine("\r"));
  EXPECT_FALSE(isSingleLine(std::string_view("\0", 1)));
  EXPECT_FALSE(isSingleLine("a\r\nb"));
  EXPECT_FALSE(isSingleLine("trailing\n"));
  EXPECT_FALSE(isSingleLine("\rleading"));
  EXPECT_FALSE(isSingleLine(std::string_view("mid\0dle", 7)));
}

TEST(StatusTest, ValidateTopicBoundaries) {
  EXPECT_EQ(kMaxTopicBytes, 1024u);
  EXPECT_EQ(validateTopic(""), Status::kInvalidTopic);
  EXPECT_EQ(validateTopic("a"), Status::kOk);
  EXPECT_EQ(validateTopic("/"), Status::kOk);
  EXPECT_EQ(validateTopic("/*"), Status::kOk);
  EXPECT_EQ(validateTopic("chat/*"), Status::kOk);
  EXPECT_EQ(validateTopic("with space"), Status::kOk);
  EXPECT_EQ(validateTopic("caf\xc3\xa9/\xe2\x82\xac"), Status::kOk);
  EXPECT_EQ(validateTopic(std::string(kMaxTopicBytes - 1, 'x')), Status::kOk);
  EXPECT_EQ(validateTopic(std::string(kMaxTopicBytes, 'x')), Status::kOk);
  EXPECT_EQ(validateTopic(std::string(kMaxTopicBytes + 1, 'x')), Status::kInvalidTopic);
  EXPECT_EQ(validateTopic(std::string(1 << 20, 'x')), Status::kInvalidTopic);

  for (char bad : {'\r', '\n', '\0'}) {
    for (size_t pos : {size_t{0}, size_t{5}, kMaxTopicBytes - 1}) {
      std::string t(kMaxTopicBytes, 'x');
      t[pos] = bad;
      EXPECT_EQ(validateTopic(t), Status::kInvalidTopic) << int(bad) << " at " << pos;
    }
    EXPECT_EQ(validateTopic(std::string(1, bad)), Status::kInvalidTopic) << int(bad);
  }
}

}  // namespace
}  // namespace ssefanout
