// Status: the core's error vocabulary.
//
// Every fallible core operation returns a Status. The JS layer maps each value
// to an SseError code (lib/errors.js); test/js/hub-errors.test.js checks that the
// two tables agree, using statusName() exported by the addon.
#pragma once

#include <cstdint>
#include <string_view>

namespace ssefanout {

enum class Status : uint8_t {
  kOk = 0,
  kInvalidEvent,          // event name contains CR, LF or NUL
  kInvalidId,             // event id contains CR, LF or NUL
  kInvalidTopic,          // empty, too long, or contains CR, LF or NUL
  kInvalidRetry,          // retry is not a non-negative integer
  kDataTooLarge,          // encoded frame larger than the per-connection queue cap
  kTooManySubscriptions,  // per-connection subscription cap reached
  kUnknownConnection,     // id never issued, or its connection is gone
  kTooManyConnections,    // the registry has no free slot
  kClosed,                // the hub is closed
  kQueueFull,             // commands waiting for an I/O thread reached their bound
  // PocketBase subscription budgets (PbLimits), per client then hub-wide.
  kTooManyOptionSubscriptions,    // maxOptionSubscriptionsPerClient
  kClientFilterBudget,            // maxFilterNodesPerClient
  kClientMemoryBudget,            // maxCompiledBytesPerClient
  kTooManyDistinctSubscriptions,  // maxDistinctSubscriptions
  kSubscriptionMemoryBudget,      // maxCompiledBytes
  // The same budgets summed over the connections of one client address.
  kTooManyIpOptionSubscriptions,  // maxOptionSubscriptionsPerIp
  kIpFilterBudget,                // maxFilterNodesPerIp
  kIpMemoryBudget,                // maxCompiledBytesPerIp
  kTooManyIpSubscriptions,        // maxSubscriptionsPerIp
  kInvalidData,                   // event data is neither a string nor bytes
  // A PocketBase rule or filter does not compile, or a record (or auth
  // record) is not a JSON object (with a string id): ERR_SSE_INVALID_FILTER.
  kInvalidFilter,
  kCount
};

// Stable names; the JS side derives ERR_SSE_* codes from them.
constexpr std::string_view statusName(Status s) {
  switch (s) {
    case Status::kOk:
      return "OK";
    case Status::kInvalidEvent:
      return "INVALID_EVENT";
    case Status::kInvalidId:
      return "INVALID_ID";
    case Status::kInvalidTopic:
      return "INVALID_TOPIC";
    case Status::kInvalidRetry:
      return "INVALID_RETRY";
    case Status::kDataTooLarge:
      return "DATA_TOO_LARGE";
    case Status::kTooManySubscriptions:
      return "TOO_MANY_SUBSCRIPTIONS";
    case Status::kUnknownConnection:
      return "UNKNOWN_CONNECTION";
    case Status::kTooManyConnections:
      return "TOO_MANY_CONNECTIONS";
    case Status::kClosed:
      return "CLOSED";
    case Status::kQueueFull:
      return "QUEUE_FULL";
    case Status::kTooManyOptionSubscriptions:
      return "TOO_MANY_OPTION_SUBSCRIPTIONS";
    case Status::kClientFilterBudget:
      return "CLIENT_FILTER_BUDGET";
    case Status::kClientMemoryBudget:
      return "CLIENT_MEMORY_BUDGET";
    case Status::kTooManyDistinctSubscriptions:
      return "TOO_MANY_DISTINCT_SUBSCRIPTIONS";
    case Status::kSubscriptionMemoryBudget:
      return "SUBSCRIPTION_MEMORY_BUDGET";
    case Status::kTooManyIpOptionSubscriptions:
      return "TOO_MANY_IP_OPTION_SUBSCRIPTIONS";
    case Status::kIpFilterBudget:
      return "IP_FILTER_BUDGET";
    case Status::kIpMemoryBudget:
      return "IP_MEMORY_BUDGET";
    case Status::kTooManyIpSubscriptions:
      return "TOO_MANY_IP_SUBSCRIPTIONS";
    case Status::kInvalidData:
      return "INVALID_DATA";
    case Status::kInvalidFilter:
      return "INVALID_FILTER";
    case Status::kCount:
      break;
  }
  return "UNKNOWN";
}

// Topic limits shared by the index, the addon and (as constants) the JS layer.
constexpr size_t kMaxTopicBytes = 1024;

// True when s holds no CR, LF or NUL: the bytes that would end an SSE line or
// be dropped by a parser.
constexpr bool isSingleLine(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

constexpr Status validateTopic(std::string_view topic) {
  if (topic.empty() || topic.size() > kMaxTopicBytes || !isSingleLine(topic)) return Status::kInvalidTopic;
  return Status::kOk;
}

// Topics the addon makes for itself (PocketBase subscription groups) begin
// with a NUL byte, which validateTopic() refuses in every topic that comes
// from JS: no application topic can name one.
constexpr char kInternalTopicMark = '\0';

constexpr bool isInternalTopic(std::string_view topic) {
  return topic.size() >= 2 && topic[0] == kInternalTopicMark && topic.size() <= kMaxTopicBytes &&
         isSingleLine(topic.substr(1));
}

// What the topic index stores: an application topic or an internal one.
constexpr Status validateIndexTopic(std::string_view topic) {
  return isInternalTopic(topic) ? Status::kOk : validateTopic(topic);
}

}  // namespace ssefanout
