// MercureIndex: who takes a Mercure update, decided once per update on the
// JS thread, never per subscriber.
//
// A subscriber is its topic selectors plus, when it holds a token, the
// selectors of its `mercure.subscribe` claim (the private updates it may
// see). Subscribers with the same two sets share a Profile; each profile has
// one internal topic, its route, which its connections are subscribed to on
// the I/O threads. An update (its topics and whether it is private) is
// routed to the profiles it reaches, with the reference hub's rule
// (Subscriber.Match): some topic of the update matches some topic selector,
// and, for a private update, some topic matches some claim selector (not
// necessarily the same topic). The Dispatcher then posts the update's one
// frame with the list of routes (Dispatcher::publishRouted).
//
// The work per update: every distinct selector is held once (a Selector,
// shared by every profile that names it, as a topic or as a claim), its
// template compiled once. For each topic of the update: one hash lookup finds
// the selector equal to it (exact selectors, and a template matches itself),
// "*" matches by existence, and templates are bucketed by their literal
// prefix and suffix (UriTemplate::literalPrefix, literalSuffix), so only
// those whose prefix the topic starts with and whose suffix it ends with are
// tried: one hash lookup per distinct shape (prefix length, suffix length).
// A selector that matches marks its profiles; the routes are those marked.
// Templates alike in both (1,000 of "/r/{a}/x{b}/y" with only their middle
// literal differing) are each tried; bench/cpp/mercure_index_bench measures it.
//
// Replay (Last-Event-ID): the history keeps each update's tag, "\0M", 'p' or
// 'u' (private or not), then its topics each ended by '\n' (a topic is a
// single line); a profile's ReplayFilter applies the same rule to it.
//
// Budgets: selectors per profile (topics and claims), bytes per selector
// (kMaxTopicBytes), distinct selectors held, topics per update. Profiles are
// bounded by the connections that hold them (a profile with no reference is
// dropped at once).
//
// Owned by the JS thread (the addon's NativeMercure); not thread-safe. The
// compiled templates are immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "history.hpp"
#include "keyed_hash.hpp"
#include "status.hpp"
#include "uri_template.hpp"

namespace ssefanout::mercure {

struct MercureLimits {
  uint32_t maxSelectorsPerSubscriber = 32;  // `topic` query parameters of one subscription
  uint32_t maxClaimSelectors = 1000;        // a token's mercure.subscribe (the reference hub's maxClaimMatchers)
  uint64_t maxDistinctSelectors = 100000;   // held at once, topics and claims together
  // Of those, URI templates, each weighed by its expressions: every update
  // tries each template whose literal prefix and suffix it has, about 70 ns
  // apiece for templates alike in both (bench/cpp/mercure_index_bench,
  // template_middle_only), but one pass over the topic per expression, so
  // 16-expression templates counted as one each cost an update 15 times more.
  uint64_t maxDistinctTemplates = 10000;
  uint32_t maxTopicsPerUpdate = 32;
  // The expressions of one subscriber's topic selectors together: what a
  // replay costs per update it examines (its filter tries each template).
  uint32_t maxExpressionsPerSubscriber = 64;
  // Distinct (literal prefix length, literal suffix length) shapes of the
  // templates held: an update topic costs one hash lookup per shape.
  uint32_t maxTemplateShapes = 256;
};

constexpr std::string_view kUpdateTagPrefix{"\0M", 2};

// The tag of an update (topics already checked: validTopic each).
std::string updateTag(const std::vector<std::string_view>& topics, bool isPrivate);
// A Mercure topic or selector: not empty, at most kMaxTopicBytes, a single line.
constexpr bool validTopic(std::string_view t) { return validateTopic(t) == Status::kOk; }

class MercureIndex {
 public:
  using ProfileId = uint32_t;  // > 0

  explicit MercureIndex(MercureLimits limits = {}, uint64_t topicSpace = 0);
  ~MercureIndex();
  MercureIndex(const MercureIndex&) = delete;
  MercureIndex& operator=(const MercureIndex&) = delete;

  // The profile of (selectors, claims), made when new, with one more
  // reference. claims nullptr: no private update. kInvalidTopic (no
  // selector, or one that is not validTopic), kTooManySubscriptions (past
  // maxSelectorsPerSubscriber, maxClaimSelectors or, for the topic
  // selectors' template expressions, maxExpressionsPerSubscriber),
  // kTooManyDistinctSubscriptions (the new selectors would pass
  // maxDistinctSelectors, their templates' expressions maxDistinctTemplates,
  // or their shapes maxTemplateShapes); nothing changes then.
  Status acquire(const std::vector<std::string>& selectors, const std::vector<std::string>* claims, ProfileId* out);
  // One reference less; the profile (and selectors no other profile names)
  // goes with its last. Unknown ids are ignored.
  void release(ProfileId id);
  // One more reference to a held profile (a connection bound to it).
  void retain(ProfileId id);
  bool has(ProfileId id) const;
  // Of a held profile: its internal topic, and what chooses its replay.
  const std::string& routeOf(ProfileId id) const;
  const history::ReplayFilter* filterOf(ProfileId id) const;
  // filterOf(id) for replays and History::newestMatching over `history`:
  // the same verdicts, each distinct tag decided once (updates to the same
  // topics repeat), and kept while the next calls are for the same profile
  // and the history has freed no frame (a subscribe scans the history for
  // its Last-Event-ID header, then again for its replay: the second scan
  // finds every verdict made). One cache, at most kMaxCachedTags tags (views
  // of the history's frames), for whichever profile was asked last; valid
  // until the next call.
  const history::ReplayFilter* replayFilterOf(ProfileId id, const history::History& history);

  // The routes of the profiles an update reaches (appended to *routes) and
  // its tag. kInvalidTopic: no topic, more than maxTopicsPerUpdate, or one
  // that is not validTopic.
  Status route(const std::vector<std::string_view>& topics, bool isPrivate, std::vector<std::string>* routes,
               std::string* tag);

  struct Stats {
    uint64_t profiles = 0;
    uint64_t selectors = 0;
    uint64_t templates = 0;
    uint64_t references = 0;  // connections (and pending acquisitions) holding profiles
  };
  Stats stats() const;
  const MercureLimits& limits() const { return limits_; }

 private:
  struct Selector {
    std::string text;
    std::optional<UriTemplate> tpl;  // a template the reference hub would match as one
    uint32_t uses = 0;               // profiles naming it (as topic or claim)
    std::vector<ProfileId> topicOf;  // profiles with it as a topic selector
    std::vector<ProfileId> claimOf;  // profiles with it as a claim selector
    uint64_t stamp = 0;              // route(): the update that last marked it
    bool matches(std::string_view topic) const;
  };
  class Filter;
  struct Profile;
  // Remembers the verdict of up to kMaxCachedTags distinct tags for one
  // profile, named by its serial (never reused, unlike its address or id),
  // while the history's frameGeneration() stays what it was.
  class CachedFilter final : public history::ReplayFilter {
   public:
    static constexpr size_t kMaxCachedTags = 16384;
    void bind(const history::ReplayFilter* inner, uint64_t serial, uint64_t frameGeneration);
    bool accepts(std::string_view tag) const override;
    bool mayKnow(std::string_view tag) const override { return inner_->mayKnow(tag); }

   private:
    const history::ReplayFilter* inner_ = nullptr;
    uint64_t serial_ = UINT64_MAX;
    uint64_t frameGeneration_ = UINT64_MAX;
    mutable std::unordered_map<std::string_view, bool> verdicts_;
  };

  uint32_t internSelector(const std::string& text);
  void dropSelectorUse(uint32_t index, ProfileId id, bool claim);
  void markSelector(uint32_t index, uint64_t stamp);
  static std::string profileKey(const std::vector<std::string>& selectors, const std::vector<std::string>* claims);

  MercureLimits limits_;
  std::string routePrefix_;  // "\0m<topicSpace>:"
  uint64_t nextRoute_ = 0;
  std::vector<std::unique_ptr<Selector>> selectors_;  // nullptr: a free slot
  std::vector<uint32_t> freeSelectors_;
  std::unordered_map<std::string, uint32_t, KeyedHash, std::equal_to<>> selectorByText_;
  std::vector<std::unique_ptr<Profile>> profiles_;  // index id - 1; nullptr: free
  std::vector<ProfileId> freeProfiles_;
  std::unordered_map<std::string, ProfileId, KeyedHash, std::equal_to<>> profileByKey_;
  // Templates by literal prefix and suffix (the key: the prefix, a NUL, the
  // suffix; no selector holds a NUL), and the distinct (prefix length,
  // suffix length) shapes held, each with its count of templates.
  static std::string bucketKey(std::string_view prefix, std::string_view suffix);
  std::unordered_map<std::string, std::vector<uint32_t>, KeyedHash, std::equal_to<>> templatesByAffixes_;
  std::vector<uint64_t> shapes_;  // sorted: prefix length << 32 | suffix length
  std::unordered_map<uint64_t, uint32_t> shapeCount_;
  std::string keyScratch_;     // route(): the key of one shape of one topic
  uint32_t all_ = UINT32_MAX;  // the "*" selector's index, when held
  uint64_t stamp_ = 0;
  std::vector<uint32_t> marked_;  // route(): the selectors this update matched
  CachedFilter replayFilter_;
  uint64_t references_ = 0;
  uint64_t templates_ = 0;
  uint64_t templateWeight_ = 0;  // their expressions, what maxDistinctTemplates bounds
};

}  // namespace ssefanout::mercure
