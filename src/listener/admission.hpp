// Admission: the JS thread's half of the native listener. Turns accepted
// stream requests into streams of the hub (Dispatcher::adopt, which also
// selects a resuming client's replay) or into refusals written back on the
// request's shard. No Node-API: the addon's wrap (src/addon/listener_wrap)
// calls it, and calls JS only for the authorize hook.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core.hpp"
#include "dispatcher.hpp"

namespace ssefanout::listener {

// What a stream is opened with beyond the listener's options (the authorize
// hook's answer; the query's topics otherwise).
struct Grant {
  std::vector<std::string> topics;
  std::optional<std::string> user;
  std::optional<std::string> lastEventId;  // replaces the request's cursor when set
};

class Admission {
 public:
  Admission(std::shared_ptr<Core> core, Dispatcher* dispatcher) : core_(std::move(core)), dispatcher_(dispatcher) {}

  // Opens the stream (its id appended to *opened), or answers the refusal
  // the Dispatcher's status calls for. Takes the request in every case.
  void admit(Accepted&& request, Grant&& grant, std::vector<uint64_t>* opened);
  // Answers `status` with an ERR_SSE_* code and message, then closes.
  void refuse(Accepted&& request, uint16_t status, std::string_view code, std::string_view message);
  // After taking requests (Core::taken): acceptors that paused at
  // maxPendingPerThread are told to look again (roomTask).
  void resumeAcceptors();
  // One draw per stream from the retry range (empty: no retry line).
  std::optional<uint64_t> pickRetry();

  uint64_t opened() const { return opened_; }
  uint64_t refused() const { return refused_; }

 private:
  std::shared_ptr<Core> core_;
  Dispatcher* dispatcher_;
  uint64_t opened_ = 0;
  uint64_t refused_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ULL;
};

}  // namespace ssefanout::listener
