// Command: what the JS thread asks of an I/O thread.
//
// Commands travel through a Shard's queue (Shard::post) and run on the shard's
// thread in the order they were posted, so a publish posted before an adopt
// never reaches the adopted connection. Connection ids come from the JS
// thread's Registry; a command naming a connection the shard no longer has is
// dropped silently (it raced with a disconnect already on its way to JS).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "body_coding.hpp"
#include "frame.hpp"

namespace ssefanout {

class Shard;

// Held by a connection for its whole life and destroyed with it, on its
// shard's thread (or wherever a command that never ran is dropped): the
// native listener counts a client address's open connections with one.
class ConnHook {
 public:
  virtual ~ConnHook() = default;
};

// Work another layer runs on a shard's thread, in the shard's command order
// (the native listener starts and stops its acceptor, and answers refused
// requests, this way). A task that never runs (the shard already ended) is
// destroyed unrun: its destructor is where it gives back what it holds.
class ShardTask {
 public:
  virtual ~ShardTask() = default;
  virtual void run(Shard& shard) = 0;
};

enum class DisconnectReason : uint8_t { kClient = 0, kSlow, kKicked, kError, kShutdown, kTimeout, kCount };

constexpr const char* disconnectReasonName(DisconnectReason r) {
  switch (r) {
    case DisconnectReason::kClient:
      return "client";
    case DisconnectReason::kSlow:
      return "slow";
    case DisconnectReason::kKicked:
      return "kicked";
    case DisconnectReason::kError:
      return "error";
    case DisconnectReason::kShutdown:
      return "shutdown";
    case DisconnectReason::kTimeout:
      return "timeout";
    case DisconnectReason::kCount:
      break;
  }
  return "error";
}

struct Command {
  enum class Op : uint8_t {
    kAdopt,          // fd, id, user, topics, frame = response head (raw), frame2 = first event or null,
                     // replay, prefix, idleMs, lifetimeMs, kPositions
    kAttachJs,       // id, user, topics, frame2, replay, idleMs, lifetimeMs, kPositions: a connection
                     // written by the JS thread
    kSubscribe,      // id, topics
    kUnsubscribe,    // id, topics
    kPublish,        // topic, frame, users (sorted; empty = no restriction), seq
    kPublishRouted,  // topics (internal: a protocol's routes, see Dispatcher::publishRouted), frame, seq
    kBroadcast,      // frame, users, seq
    kPosition,       // seq: an event in the history that no connection here takes (a private event
                     // for users with no connection): moves the position heartbeats carry
    kRebase,         // topic = the history's new epoch, seq = its position, frame = the reset event
                     // for every connection with kPositions (the heartbeats carry the new position)
    kSend,           // id, frame
    kKick,           // id
    kDetach,         // id, reason: the JS thread lost a JS-transport connection
    kTask,           // task->run(shard) on the shard's thread
    kShutdown,       // flush, end every body, close; then the thread ends
    kStop,           // close everything now (environment teardown); then the thread ends.
                     // With kEndBodies (process exit): first the end of every body, best effort.
  };
  static constexpr uint8_t kChunked = 1;
  static constexpr uint8_t kEndBodies = 2;
  // The connection's heartbeats carry the history position ("id: <epoch>-<seq>").
  static constexpr uint8_t kPositions = 4;
  // A protocol's stream (StreamOptions::replayFilter set): broadcasts do not
  // reach it (they carry no topic its protocol could authorize).
  static constexpr uint8_t kNoBroadcasts = 8;
  // kAdopt: the socket is non-blocking and has setStreamSocketOptions'
  // options already (the native listener's, inherited from its listening socket).
  static constexpr uint8_t kPreparedSocket = 16;

  Op op = Op::kStop;
  uint8_t flags = 0;
  DisconnectReason reason = DisconnectReason::kClient;
  compress::Coding coding = compress::Coding::kIdentity;  // kAdopt: the body's Content-Encoding
  int fd = -1;
  uint32_t user = 0;
  uint32_t idleMs = 0;      // end the stream after this long without an event (0 = never)
  uint32_t lifetimeMs = 0;  // end the stream this long after it was adopted (0 = never)
  uint64_t id = 0;
  uint64_t seq = 0;  // the event's history sequence (0: history off)
  FrameRef frame;
  FrameRef frame2;
  // Sent after frame2, before anything posted later: the events a resuming
  // client missed (shared history frames) and the position or reset frame.
  std::vector<FrameRef> replay;
  std::string topic;
  std::string prefix;  // sent before every event on this connection (Outbox::setEventPrefix)
  std::vector<std::string> topics;
  std::vector<uint32_t> users;
  std::unique_ptr<ConnHook> hook;   // kAdopt: kept by the connection until it is freed
  std::unique_ptr<ShardTask> task;  // kTask
};

}  // namespace ssefanout
