// History: the last events a hub published, as references to their shared
// frames, so a reconnecting client resumes exactly where it stopped.
//
// Every event published with history on takes the next sequence number
// (1, 2, ...); the history holds the newest of them within three limits
// (events, frame bytes, age). Entries are contiguous in sequence, so finding
// a cursor is arithmetic (seq - oldest), never a scan; an entry is a frame
// reference (the frame carries its topic as its tag: src/core/frame.hpp), its
// time and, for a private event or one with the publisher's own id, a small
// side record: 24 bytes in the ring otherwise. An id the publisher gave is
// kept on the wire and mapped to its sequence (one hash lookup to place it).
//
// Replay selection walks the events after a cursor once, testing each against
// the reader's topics (exact and "prefix/*", as TopicIndex matches them) and
// user, as the I/O threads would have live; it is bounded by the history's
// size, and by maxReplay* for what it hands back.
//
// Sequences from outside (the Redis bus): appendAt() takes the sequence a
// caller assigned, only ever latest() + 1, and rebase() starts the history
// over at another epoch or position (every entry dropped, its frame
// released), so the history stays contiguous whoever numbers it.
//
// Owned by one thread (the hub's JS thread, in the Dispatcher); not
// thread-safe. Frames it hands out are refcounted and may cross threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cursor.hpp"
#include "frame.hpp"
#include "keyed_hash.hpp"

namespace ssefanout::history {

struct HistoryOptions {
  std::string epoch;  // validEpoch()
  uint64_t maxEvents = 10000;
  uint64_t maxBytes = 16 << 20;  // frame bytes held
  uint64_t maxAgeMs = 300000;
  uint64_t maxReplayEvents = 1000;
  std::string resetEvent = "reset";
  // When not empty: position frames are events of this name with empty data
  // (EventSource dispatches them), not id-only frames it hides.
  std::string positionEvent;
};

// Why a reader cannot resume where it asked to (the in-band reset's reason).
enum class ResetReason : uint8_t {
  kNone = 0,
  kUnknown,  // malformed, an id the history does not hold, or a sequence past the latest
  kEpoch,    // a cursor of another epoch
  kExpired,  // older than the oldest event held
  kLimit,    // more to replay than maxReplayEvents or the byte budget
  kCount
};

constexpr const char* resetReasonName(ResetReason r) {
  switch (r) {
    case ResetReason::kUnknown:
      return "unknown";
    case ResetReason::kEpoch:
      return "epoch";
    case ResetReason::kExpired:
      return "expired";
    case ResetReason::kLimit:
      return "limit";
    case ResetReason::kNone:
    case ResetReason::kCount:
      break;
  }
  return "";
}

// Where a cursor puts a reader.
struct Place {
  ResetReason reason = ResetReason::kNone;
  uint64_t after = 0;  // kNone: read the events after this sequence
  // kExpired / kLimit: the sequence asked for (printed re-formatted, never echoed).
  std::optional<uint64_t> requested;
};

struct HistoryStats {
  uint64_t events = 0;
  uint64_t bytes = 0;
  uint64_t oldest = 0;  // 0 when empty
  uint64_t latest = 0;
  uint64_t replays = 0;         // resumes served from the history
  uint64_t replayedEvents = 0;  // events they carried
  uint64_t reads = 0;           // catch-up reads
  uint64_t rebases = 0;         // rebase() calls
  uint64_t resets[static_cast<size_t>(ResetReason::kCount)] = {};
};

// A protocol's own matching of its events (Mercure's selectors and claims).
// An event whose tag starts with kProtocolTagMark (an internal topic can
// never be an application topic, so no topic matching reads it as one) is
// read only by a Reader with a filter, and only when the filter accepts the
// tag; a Reader with a filter reads nothing else. Called on the history's
// thread, during the call that was given the reader.
class ReplayFilter {
 public:
  virtual ~ReplayFilter() = default;
  virtual bool accepts(std::string_view tag) const = 0;
  // Whether the reader may know this event exists (a resume from its id
  // would tell): by default only when it may read it.
  virtual bool mayKnow(std::string_view tag) const { return accepts(tag); }
};
constexpr char kProtocolTagMark = '\0';
constexpr bool isProtocolTag(std::string_view tag) { return !tag.empty() && tag[0] == kProtocolTagMark; }

// Who reads: a connection's or a poll's topics (sorted, as the Dispatcher
// keeps them) and user, or a protocol's filter.
struct Reader {
  const std::vector<std::string>* topics = nullptr;
  std::optional<std::string_view> user;
  const ReplayFilter* filter = nullptr;
};

// True when `topic` matches one of `sorted` (exact topics and "prefix/*"
// patterns, with TopicIndex's rules: "a/*" matches "a/b", "a/b/c", not "a").
bool matchesAny(const std::vector<std::string>& sorted, std::string_view topic);

class History {
 public:
  explicit History(HistoryOptions options);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  const HistoryOptions& options() const { return options_; }
  uint64_t latest() const { return next_ - 1; }
  uint64_t nextSeq() const { return next_; }
  // Sequence of the oldest event held; latest() + 1 when empty.
  uint64_t oldest() const { return next_ - size_; }
  size_t size() const { return size_; }
  std::string cursorOf(uint64_t seq) const { return formatCursor(options_.epoch, seq); }

  // Records the event just given nextSeq(): its frame (tagged with its topic;
  // an empty tag is a broadcast), the users it is restricted to (nullptr:
  // none), the publisher's own id (nullopt: the wire id is the cursor).
  // Returns its sequence. Trims to the limits.
  uint64_t append(FrameRef frame, const std::vector<std::string_view>* users, std::optional<std::string_view> id,
                  uint64_t nowMs);
  // The same with a sequence the caller assigned: only nextSeq() (at most
  // kMaxSeq) is taken; any other seq answers false and changes nothing.
  bool appendAt(uint64_t seq, FrameRef frame, const std::vector<std::string_view>* users,
                std::optional<std::string_view> id, uint64_t nowMs);
  // Starts over at `seq` of `epoch`: every event is dropped (its frame
  // released) and every publisher id forgotten; latest() is seq (the next
  // append takes seq + 1), cursors and the position frame name `epoch`. False,
  // and nothing changed, for an epoch that is not validEpoch() or a seq past
  // kMaxSeq. Counts a rebase (not a reset: see rebaseFrame()).
  bool rebase(std::string_view epoch, uint64_t seq);
  // The reset event a rebase to (epoch, seq) sends every connected stream:
  // the reason given (kEpoch when the epoch changes, kExpired when only the
  // position moves), requested and oldest null (the history is empty after
  // it), latest and the event's id "<epoch>-<seq>". Built before the rebase
  // (it depends on nothing held); not counted as a reset.
  FrameRef rebaseFrame(std::string_view epoch, uint64_t seq, ResetReason reason) const;
  // Drops events older than maxAgeMs.
  void expire(uint64_t nowMs);

  // idsOnly: only a publisher's id places a reader (a protocol whose ids are
  // all its publishers': a cursor "<epoch>-<seq>" would let its readers
  // probe positions they were never given); anything else is kUnknown.
  Place locate(std::string_view cursor, uint64_t nowMs, bool idsOnly = false);

  // A resume: the frames of the events after place.after that `reader`
  // matches, in order, into *out (appended). kLimit (and *out unchanged) when
  // there are more than maxReplayEvents of them or their bytes plus
  // `perFrame` each pass `maxBytes`. Counts a replay or a reset.
  ResetReason selectReplay(const Place& place, const Reader& reader, uint64_t maxBytes, size_t perFrame,
                           std::vector<FrameRef>* out);
  // The same for a stream that gets no reset event (a protocol's: it could
  // not tell its client): past those limits it gets the newest matching
  // events that fit, in order, and the answer is kLimit (counted as a replay
  // and a "limit" reset); else kNone. Walks back from the latest event and
  // stops once full.
  ResetReason selectNewest(const Place& place, const Reader& reader, uint64_t maxBytes, size_t perFrame,
                           std::vector<FrameRef>* out);
  // A catch-up read: at most `max` matching events after `after` (a place
  // locate() gave), each given to visit(seq, Frame*) until it returns false;
  // returns the sequence to continue from (the last one visited when `max`
  // was reached or visit stopped, else latest()).
  template <typename F>
  uint64_t read(uint64_t after, const Reader& reader, size_t max, F&& visit);
  // The wire id of the newest event `reader` matches among the last
  // `maxScan` held (newest first), or nullopt: what a protocol may tell a
  // new subscriber is the latest event it can see, never one it cannot.
  std::optional<std::string> newestMatching(const Reader& reader, size_t maxScan) const;
  // The event selectNewest(place, reader, maxBytes, perFrame) would leave out
  // first: the newest match older than every match it takes, as its id (its
  // cursor when it has none) and its cursor. nullopt when it takes every
  // match after the place. A resume from that cursor takes the same events.
  std::optional<std::pair<std::string, std::string>> newestLeftOut(const Place& place, const Reader& reader,
                                                                   uint64_t maxBytes, size_t perFrame) const;
  // For a reader with a filter: false when the event at `seq` is held and
  // the filter may not know of it (ReplayFilter::mayKnow; an ordinary event
  // for such a reader), so that a cursor naming it is treated as unknown
  // rather than telling, by what follows, that it exists. True otherwise.
  bool mayKnowOf(uint64_t seq, const Reader& reader) const;

  // The in-band reset event (kEvent): name options.resetEvent, id the latest
  // position, data {"reason","requested","oldest","latest"}. Counts it.
  FrameRef resetFrame(const Place& place);
  // "id: <epoch>-<latest>\n\n" (kControl): moves a client's cursor without an
  // event; with options.positionEvent, "event: <name>\nid: ...\ndata: \n\n",
  // an event EventSource shows. Cached until the next append.
  FrameRef positionFrame();
  // Changes each time the history frees frames it held: a view of a tag
  // taken from the history stays valid while this has not changed.
  uint64_t frameGeneration() const { return frameGeneration_; }
  void countRead() { ++stats_.reads; }
  void countReset(ResetReason r) { ++stats_.resets[static_cast<size_t>(r)]; }
  HistoryStats stats() const;

 private:
  struct Extra {
    // Given a users list (restricted), only these may read it: an empty list
    // is nobody, as Dispatcher::publish delivers it live.
    bool restricted = false;
    std::vector<std::string> users;  // sorted
    std::optional<std::string> id;   // the publisher's id, a key of ids_
  };
  struct Entry {
    Frame* frame = nullptr;  // one reference held
    uint64_t atMs = 0;
    Extra* extra = nullptr;
  };

  Entry& at(uint64_t seq) { return ring_[(head_ + (seq - oldest())) & (ring_.size() - 1)]; }
  const Entry& at(uint64_t seq) const { return ring_[(head_ + (seq - oldest())) & (ring_.size() - 1)]; }
  bool matches(const Entry& e, const Reader& reader) const;
  FrameRef encodeReset(std::string_view epoch, const Place& place, std::optional<uint64_t> oldest,
                       uint64_t latest) const;
  void popOldest();
  void grow();
  void releaseRetired();

  HistoryOptions options_;
  std::vector<Entry> ring_;  // capacity a power of two
  size_t head_ = 0;          // index of the oldest entry
  size_t size_ = 0;
  uint64_t next_ = 1;
  uint64_t bytes_ = 0;
  std::unordered_map<std::string, uint64_t, KeyedHash, std::equal_to<>> ids_;
  // Frames that left the ring, released together every kReleaseBatch: one
  // pass of frees measured cheaper than a free per publish amid the allocations.
  static constexpr size_t kReleaseBatch = 256;
  std::vector<Frame*> retired_;
  uint64_t frameGeneration_ = 0;
  FrameRef position_;  // for latest() when set
  uint64_t positionSeq_ = 0;
  HistoryStats stats_;
};

template <typename F>
uint64_t History::read(uint64_t after, const Reader& reader, size_t max, F&& visit) {
  size_t n = 0;
  for (uint64_t seq = std::max(after + 1, oldest()); seq <= latest(); ++seq) {
    const Entry& e = at(seq);
    if (!matches(e, reader)) continue;
    if (!visit(seq, e.frame) || ++n == max) return seq;
  }
  return latest();
}

}  // namespace ssefanout::history
