#include "core.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ssefanout::listener {

bool IpKey::operator==(const IpKey& o) const { return std::memcmp(bytes, o.bytes, sizeof bytes) == 0; }

size_t IpKeyHash::operator()(const IpKey& k) const {
  // FNV-1a: addresses are not secret and the map is bounded by the open
  // connections, whatever their spread.
  uint64_t h = 1469598103934665603ULL;
  for (uint8_t b : k.bytes) h = (h ^ b) * 1099511628211ULL;
  return static_cast<size_t>(h);
}

IpTicket::~IpTicket() { core_->releaseIp(key_); }

Accepted::Accepted(Accepted&& o) noexcept { *this = std::move(o); }

Accepted& Accepted::operator=(Accepted&& o) noexcept {
  if (this == &o) return *this;
  if (fd >= 0) ::close(fd);
  fd = o.fd;
  o.fd = -1;
  shard = o.shard;
  ticket = std::move(o.ticket);
  minor = o.minor;
  topics = std::move(o.topics);
  lastEventId = std::move(o.lastEventId);
  user = std::move(o.user);
  coding = o.coding;
  allowOrigin = std::move(o.allowOrigin);
  varyOrigin = o.varyOrigin;
  head = std::move(o.head);
  remoteAddress = std::move(o.remoteAddress);
  remotePort = o.remotePort;
  return *this;
}

Accepted::~Accepted() {
  if (fd >= 0) ::close(fd);
}

Core::Core(Options options, uint32_t shards, Sink* sink)
    : options_(std::move(options)),
      acceptors_(shards, nullptr),
      waiting_(new std::atomic<uint32_t>[shards]),
      roomWanted_(new std::atomic<bool>[shards]),
      sink_(sink) {
  for (uint32_t i = 0; i < shards; ++i) {
    waiting_[i].store(0);
    roomWanted_[i].store(false);
  }
  tokens_ = options_.acceptRate;
}

std::unique_ptr<IpTicket> Core::admit(const IpKey& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t& n = perIp_[key];
    if (options_.maxConnectionsPerIp > 0 && n >= options_.maxConnectionsPerIp) {
      if (n == 0) perIp_.erase(key);
      return nullptr;
    }
    ++n;
  }
  return std::make_unique<IpTicket>(shared_from_this(), key);
}

void Core::releaseIp(const IpKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = perIp_.find(key);
  if (it == perIp_.end()) return;
  if (--it->second == 0) perIp_.erase(it);
}

size_t Core::addresses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return perIp_.size();
}

// A token bucket over all threads: acceptRate tokens a second, at most one
// second's worth banked.
bool Core::takeAcceptToken(uint64_t nowMs, uint64_t* waitMs) {
  const uint32_t rate = options_.acceptRate;
  if (rate == 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  if (refillMs_ == 0) refillMs_ = nowMs;
  if (nowMs > refillMs_) {
    tokens_ = std::min<double>(rate, tokens_ + static_cast<double>(nowMs - refillMs_) * rate / 1000.0);
    refillMs_ = nowMs;
  }
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  *waitMs = std::max<uint64_t>(1, static_cast<uint64_t>((1 - tokens_) * 1000.0 / rate) + 1);
  return false;
}

void Core::refundAcceptToken() {
  if (options_.acceptRate == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::min<double>(options_.acceptRate, tokens_ + 1);
}

void Core::deliver(std::vector<Accepted>&& batch) {
  std::lock_guard<std::mutex> lock(sinkMu_);
  if (sink_) sink_->onAccepted(std::move(batch));
  // Without a sink the batch is dropped here: each Accepted closes its fd.
}

void Core::acceptorDone() {
  if (remaining_.fetch_sub(1) != 1) return;
  std::lock_guard<std::mutex> lock(sinkMu_);
  if (sink_) sink_->onClosed();
}

void Core::detachSink() {
  std::lock_guard<std::mutex> lock(sinkMu_);
  sink_ = nullptr;
}

}  // namespace ssefanout::listener
