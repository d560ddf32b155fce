#include "admission.hpp"

#include "responses.hpp"
#include "status.hpp"

namespace ssefanout::listener {

namespace {

compress::Coding codingOf(http::Coding c) {
  switch (c) {
    case http::Coding::kGzip:
      return compress::Coding::kGzip;
    case http::Coding::kDeflate:
      return compress::Coding::kDeflate;
    case http::Coding::kIdentity:
      break;
  }
  return compress::Coding::kIdentity;
}

// The HTTP answer to a status the Dispatcher refused a stream with.
uint16_t httpStatusOf(Status s) {
  switch (s) {
    case Status::kTooManyConnections:
    case Status::kClosed:
    case Status::kQueueFull:
      return 503;
    default:
      return 400;
  }
}

const char* messageOf(Status s) {
  switch (s) {
    case Status::kInvalidTopic:
      return "a topic is empty, longer than 1024 bytes, or contains CR, LF or NUL";
    case Status::kTooManySubscriptions:
      return "the request names more than maxSubscriptions topics";
    case Status::kTooManyConnections:
      return "the hub already holds maxConnections connections";
    case Status::kClosed:
      return "the hub is closed";
    default:
      return "the stream could not be opened";
  }
}

}  // namespace

std::optional<uint64_t> Admission::pickRetry() {
  const Options& o = core_->options();
  if (!o.retryMin) return std::nullopt;
  const uint64_t min = *o.retryMin;
  const uint64_t max = o.retryMax ? *o.retryMax : min;
  if (max <= min) return min;
  // xorshift64*: a spread for reconnects, not a secret.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return min + (rng_ * 2685821657736338717ULL) % (max - min + 1);
}

void Admission::admit(Accepted&& request, Grant&& grant, std::vector<uint64_t>* opened) {
  const Options& o = core_->options();
  StreamOptions stream;
  stream.topics = std::move(grant.topics);
  stream.user = std::move(grant.user);
  stream.retryMs = pickRetry();
  stream.idleMs = o.idleMs;
  stream.lifetimeMs = o.lifetimeMs;
  stream.history = o.history;
  if (o.history) stream.lastEventId = grant.lastEventId ? std::move(grant.lastEventId) : request.lastEventId;
  if (stream.lastEventId && stream.lastEventId->empty()) stream.lastEventId.reset();
  stream.coding = codingOf(request.coding);
  stream.preparedSocket = true;  // accept4(SOCK_NONBLOCK), options from the listening socket
  Cors cors{request.allowOrigin, request.varyOrigin};
  const std::string head = streamHead(o, request.minor, request.coding, cors);
  uint64_t id = 0;
  Status s = dispatcher_->adopt(request.fd, head, request.minor >= 1, std::move(stream), &id, &request.ticket, true);
  if (s != Status::kOk) {
    std::string code = "ERR_SSE_" + std::string(statusName(s));
    refuse(std::move(request), httpStatusOf(s), code, messageOf(s));
    return;
  }
  request.fd = -1;  // the shard's now
  ++opened_;
  opened->push_back(id);
}

void Admission::resumeAcceptors() {
  for (uint32_t i = 0; i < core_->shards(); ++i) {
    if (core_->takeRoomWanted(i)) dispatcher_->postTask(i, roomTask(core_));
  }
}

void Admission::refuse(Accepted&& request, uint16_t status, std::string_view code, std::string_view message) {
  ++refused_;
  const uint32_t shard = request.shard;
  std::string response = errorResponse(status, code, message, true);
  dispatcher_->postTask(shard, refuseTask(core_, std::move(request), std::move(response)));
}

}  // namespace ssefanout::listener
