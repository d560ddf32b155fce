#include "mercure_index.hpp"

#include <algorithm>

namespace ssefanout::mercure {

std::string updateTag(const std::vector<std::string_view>& topics, bool isPrivate) {
  size_t n = kUpdateTagPrefix.size() + 1;
  for (std::string_view t : topics) n += t.size() + 1;
  std::string tag;
  tag.reserve(n);
  tag.append(kUpdateTagPrefix);
  tag.push_back(isPrivate ? 'p' : 'u');
  for (std::string_view t : topics) {
    tag.append(t);
    tag.push_back('\n');
  }
  return tag;
}

namespace {

// Calls visit(topic) for each topic of a tag updateTag() made; false for a
// tag it did not make.
template <typename F>
bool forEachTagTopic(std::string_view tag, bool* isPrivate, F&& visit) {
  if (tag.size() < kUpdateTagPrefix.size() + 1 || tag.substr(0, kUpdateTagPrefix.size()) != kUpdateTagPrefix) {
    return false;
  }
  const char flag = tag[kUpdateTagPrefix.size()];
  if (flag != 'p' && flag != 'u') return false;
  *isPrivate = flag == 'p';
  std::string_view rest = tag.substr(kUpdateTagPrefix.size() + 1);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return false;
    if (visit(rest.substr(0, nl))) return true;
    rest.remove_prefix(nl + 1);
  }
  return true;
}

}  // namespace

bool MercureIndex::Selector::matches(std::string_view topic) const {
  if (text == "*" || text == topic) return true;
  return tpl && tpl->matches(topic);
}

// A profile's replay: the same rule as route(), selector by selector.
class MercureIndex::Filter final : public history::ReplayFilter {
 public:
  Filter(const MercureIndex* index, const Profile* profile) : index_(index), profile_(profile) {}
  bool accepts(std::string_view tag) const override;
  // A public update's existence is no secret; a private one's is, unless
  // the profile may read it.
  bool mayKnow(std::string_view tag) const override {
    bool isPrivate = false;
    if (!forEachTagTopic(tag, &isPrivate, [](std::string_view) { return true; })) return false;
    return !isPrivate || accepts(tag);
  }

 private:
  const MercureIndex* index_;
  const Profile* profile_;
};

struct MercureIndex::Profile {
  std::string key;
  std::string route;
  std::vector<uint32_t> topics;  // selector indices
  std::vector<uint32_t> claims;
  uint32_t refs = 0;
  uint64_t serial = 0;  // the number in its route: never reused
  uint64_t topicStamp = 0;
  uint64_t claimStamp = 0;
  Filter filter;
  Profile(const MercureIndex* index) : filter(index, this) {}
};

bool MercureIndex::Filter::accepts(std::string_view tag) const {
  bool isPrivate = false, subscribed = false, allowed = false;
  const bool parsed = forEachTagTopic(tag, &isPrivate, [&](std::string_view topic) {
    if (!subscribed) {
      for (uint32_t s : profile_->topics) {
        if (index_->selectors_[s]->matches(topic)) {
          subscribed = true;
          break;
        }
      }
    }
    if (isPrivate && !allowed) {
      for (uint32_t s : profile_->claims) {
        if (index_->selectors_[s]->matches(topic)) {
          allowed = true;
          break;
        }
      }
    }
    return subscribed && (!isPrivate || allowed);  // true: stop, decided
  });
  return parsed && subscribed && (!isPrivate || allowed);
}

MercureIndex::MercureIndex(MercureLimits limits, uint64_t topicSpace) : limits_(limits) {
  routePrefix_.push_back(kInternalTopicMark);
  routePrefix_.append("m");
  routePrefix_.append(std::to_string(topicSpace));
  routePrefix_.push_back(':');
}

MercureIndex::~MercureIndex() = default;

std::string MercureIndex::profileKey(const std::vector<std::string>& selectors,
                                     const std::vector<std::string>* claims) {
  // Selectors are single lines: '\n' separates them, '\r' the two lists.
  std::vector<std::string_view> s(selectors.begin(), selectors.end());
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  std::string key;
  for (std::string_view v : s) key.append(v).push_back('\n');
  if (!claims) return key;
  key.push_back('\r');
  std::vector<std::string_view> c(claims->begin(), claims->end());
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  for (std::string_view v : c) key.append(v).push_back('\n');
  return key;
}

Status MercureIndex::acquire(const std::vector<std::string>& selectors, const std::vector<std::string>* claims,
                             ProfileId* out) {
  if (selectors.empty()) return Status::kInvalidTopic;
  if (selectors.size() > limits_.maxSelectorsPerSubscriber) return Status::kTooManySubscriptions;
  if (claims && claims->size() > limits_.maxClaimSelectors) return Status::kTooManySubscriptions;
  for (const std::string& s : selectors) {
    if (!validTopic(s)) return Status::kInvalidTopic;
  }
  if (claims) {
    for (const std::string& s : *claims) {
      if (!validTopic(s)) return Status::kInvalidTopic;
    }
  }
  // The topic selectors' expressions (claims come from a signed token).
  size_t expressions = 0;
  for (const std::string& s : selectors) {
    if (auto it = selectorByText_.find(s); it != selectorByText_.end()) {
      const Selector& held = *selectors_[it->second];
      if (held.tpl) expressions += held.tpl->expressions();
    } else if (s != "*" && s.find('{') != std::string::npos) {
      if (auto tpl = UriTemplate::compile(s)) expressions += tpl->expressions();
    }
  }
  if (expressions > limits_.maxExpressionsPerSubscriber) return Status::kTooManySubscriptions;
  std::string key = profileKey(selectors, claims);
  if (auto it = profileByKey_.find(key); it != profileByKey_.end()) {
    ++profiles_[it->second - 1]->refs;
    ++references_;
    *out = it->second;
    return Status::kOk;
  }
  // The budget on distinct selectors, checked before anything changes.
  uint64_t fresh = 0, freshWeight = 0;
  std::vector<uint64_t> freshShapes;
  auto countFresh = [&](const std::vector<std::string>& list) {
    for (const std::string& s : list) {
      if (selectorByText_.find(s) != selectorByText_.end()) continue;
      ++fresh;  // a repeat counts twice: a bound, not a count
      if (s == "*" || s.find('{') == std::string::npos) continue;
      auto tpl = UriTemplate::compile(s);
      if (!tpl) continue;
      freshWeight += tpl->expressions();
      const uint64_t shape = uint64_t{tpl->literalPrefix().size()} << 32 | tpl->literalSuffix().size();
      if (shapeCount_.find(shape) == shapeCount_.end() &&
          std::find(freshShapes.begin(), freshShapes.end(), shape) == freshShapes.end()) {
        freshShapes.push_back(shape);
      }
    }
  };
  countFresh(selectors);
  if (claims) countFresh(*claims);
  if (selectorByText_.size() + fresh > limits_.maxDistinctSelectors ||
      templateWeight_ + freshWeight > limits_.maxDistinctTemplates ||
      shapes_.size() + freshShapes.size() > limits_.maxTemplateShapes) {
    return Status::kTooManyDistinctSubscriptions;
  }

  ProfileId id;
  if (!freeProfiles_.empty()) {
    id = freeProfiles_.back();
    freeProfiles_.pop_back();
  } else {
    profiles_.emplace_back();
    id = static_cast<ProfileId>(profiles_.size());
  }
  auto profile = std::make_unique<Profile>(this);
  Profile& p = *profile;
  p.key = key;
  p.serial = nextRoute_++;
  p.route = routePrefix_ + std::to_string(p.serial);
  p.refs = 1;
  auto addAll = [&](const std::vector<std::string>& list, std::vector<uint32_t>* into, bool claim) {
    for (const std::string& s : list) {
      const uint32_t index = internSelector(s);
      if (std::find(into->begin(), into->end(), index) != into->end()) continue;  // a repeated selector
      into->push_back(index);
      Selector& sel = *selectors_[index];
      ++sel.uses;
      (claim ? sel.claimOf : sel.topicOf).push_back(id);
    }
  };
  addAll(selectors, &p.topics, false);
  if (claims) addAll(*claims, &p.claims, true);
  profiles_[id - 1] = std::move(profile);
  profileByKey_.emplace(std::move(key), id);
  ++references_;
  *out = id;
  return Status::kOk;
}

std::string MercureIndex::bucketKey(std::string_view prefix, std::string_view suffix) {
  std::string key;
  key.reserve(prefix.size() + 1 + suffix.size());
  key.append(prefix).push_back('\0');
  key.append(suffix);
  return key;
}

uint32_t MercureIndex::internSelector(const std::string& text) {
  if (auto it = selectorByText_.find(text); it != selectorByText_.end()) return it->second;
  uint32_t index;
  if (!freeSelectors_.empty()) {
    index = freeSelectors_.back();
    freeSelectors_.pop_back();
  } else {
    selectors_.emplace_back();
    index = static_cast<uint32_t>(selectors_.size() - 1);
  }
  auto sel = std::make_unique<Selector>();
  sel->text = text;
  if (text == "*") {
    all_ = index;
  } else if (text.find('{') != std::string::npos) {
    sel->tpl = UriTemplate::compile(text);
  }
  if (sel->tpl) {
    ++templates_;
    templateWeight_ += sel->tpl->expressions();
    const std::string_view prefix = sel->tpl->literalPrefix(), suffix = sel->tpl->literalSuffix();
    auto [bucket, fresh] = templatesByAffixes_.try_emplace(bucketKey(prefix, suffix));
    bucket->second.push_back(index);
    const uint64_t shape = uint64_t{prefix.size()} << 32 | suffix.size();
    if (shapeCount_[shape]++ == 0) shapes_.insert(std::upper_bound(shapes_.begin(), shapes_.end(), shape), shape);
  }
  selectors_[index] = std::move(sel);
  selectorByText_.emplace(text, index);
  return index;
}

void MercureIndex::dropSelectorUse(uint32_t index, ProfileId id, bool claim) {
  Selector& sel = *selectors_[index];
  std::vector<ProfileId>& list = claim ? sel.claimOf : sel.topicOf;
  if (auto it = std::find(list.begin(), list.end(), id); it != list.end()) {
    *it = list.back();
    list.pop_back();
  }
  if (--sel.uses > 0) return;
  if (sel.tpl) {
    --templates_;
    templateWeight_ -= sel.tpl->expressions();
    const std::string_view prefix = sel.tpl->literalPrefix(), suffix = sel.tpl->literalSuffix();
    auto bucket = templatesByAffixes_.find(bucketKey(prefix, suffix));
    std::vector<uint32_t>& v = bucket->second;
    v.erase(std::find(v.begin(), v.end(), index));
    if (v.empty()) templatesByAffixes_.erase(bucket);
    const uint64_t shape = uint64_t{prefix.size()} << 32 | suffix.size();
    if (--shapeCount_[shape] == 0) {
      shapeCount_.erase(shape);
      shapes_.erase(std::find(shapes_.begin(), shapes_.end(), shape));
    }
  }
  if (index == all_) all_ = UINT32_MAX;
  selectorByText_.erase(sel.text);
  selectors_[index].reset();
  freeSelectors_.push_back(index);
}

void MercureIndex::release(ProfileId id) {
  if (!has(id)) return;
  Profile& p = *profiles_[id - 1];
  --references_;
  if (--p.refs > 0) return;
  for (uint32_t s : p.topics) dropSelectorUse(s, id, false);
  for (uint32_t s : p.claims) dropSelectorUse(s, id, true);
  profileByKey_.erase(p.key);
  profiles_[id - 1].reset();
  freeProfiles_.push_back(id);
}

void MercureIndex::retain(ProfileId id) {
  if (!has(id)) return;
  ++profiles_[id - 1]->refs;
  ++references_;
}

bool MercureIndex::has(ProfileId id) const { return id > 0 && id <= profiles_.size() && profiles_[id - 1]; }

const std::string& MercureIndex::routeOf(ProfileId id) const { return profiles_[id - 1]->route; }

const history::ReplayFilter* MercureIndex::filterOf(ProfileId id) const { return &profiles_[id - 1]->filter; }

const history::ReplayFilter* MercureIndex::replayFilterOf(ProfileId id, const history::History& history) {
  replayFilter_.bind(filterOf(id), profiles_[id - 1]->serial, history.frameGeneration());
  return &replayFilter_;
}

void MercureIndex::CachedFilter::bind(const history::ReplayFilter* inner, uint64_t serial, uint64_t frameGeneration) {
  inner_ = inner;
  // The same profile over the same frames: its verdicts and their views stand.
  if (serial == serial_ && frameGeneration == frameGeneration_) return;
  serial_ = serial;
  frameGeneration_ = frameGeneration;
  verdicts_.clear();  // drops views of frames that may be gone: none is read
}

bool MercureIndex::CachedFilter::accepts(std::string_view tag) const {
  if (auto it = verdicts_.find(tag); it != verdicts_.end()) return it->second;
  const bool verdict = inner_->accepts(tag);
  if (verdicts_.size() < kMaxCachedTags) verdicts_.emplace(tag, verdict);
  return verdict;
}

void MercureIndex::markSelector(uint32_t index, uint64_t stamp) {
  Selector& sel = *selectors_[index];
  if (sel.stamp == stamp) return;  // already matched by an earlier topic of this update
  sel.stamp = stamp;
  marked_.push_back(index);
  for (ProfileId id : sel.topicOf) profiles_[id - 1]->topicStamp = stamp;
  for (ProfileId id : sel.claimOf) profiles_[id - 1]->claimStamp = stamp;
}

Status MercureIndex::route(const std::vector<std::string_view>& topics, bool isPrivate,
                           std::vector<std::string>* routes, std::string* tag) {
  if (topics.empty() || topics.size() > limits_.maxTopicsPerUpdate) return Status::kInvalidTopic;
  for (std::string_view t : topics) {
    if (!validTopic(t)) return Status::kInvalidTopic;
  }
  *tag = updateTag(topics, isPrivate);
  const uint64_t stamp = ++stamp_;
  if (all_ != UINT32_MAX) markSelector(all_, stamp);
  for (std::string_view topic : topics) {
    if (auto it = selectorByText_.find(topic); it != selectorByText_.end()) markSelector(it->second, stamp);
    if (topic.size() > UriTemplate::kMaxTopicBytes) continue;
    for (uint64_t shape : shapes_) {
      const size_t pl = shape >> 32, sl = shape & UINT32_MAX;
      if (pl > topic.size()) break;  // sorted by prefix length first
      if (pl + sl > topic.size()) continue;
      keyScratch_.assign(topic.substr(0, pl));
      keyScratch_.push_back('\0');
      keyScratch_.append(topic.substr(topic.size() - sl));
      auto bucket = templatesByAffixes_.find(std::string_view(keyScratch_));
      if (bucket == templatesByAffixes_.end()) continue;
      for (uint32_t index : bucket->second) {
        const Selector& sel = *selectors_[index];
        if (sel.stamp != stamp && sel.tpl->matches(topic)) markSelector(index, stamp);
      }
    }
  }
  // The profiles a marked selector names as a topic selector, each once.
  for (uint32_t index : marked_) {
    for (ProfileId id : selectors_[index]->topicOf) {
      Profile& p = *profiles_[id - 1];
      if (p.topicStamp != stamp || (isPrivate && p.claimStamp != stamp)) continue;
      p.topicStamp = 0;  // taken: another selector of this update does not take it again
      routes->push_back(p.route);
    }
  }
  marked_.clear();
  return Status::kOk;
}

MercureIndex::Stats MercureIndex::stats() const {
  Stats s;
  s.profiles = profileByKey_.size();
  s.selectors = selectorByText_.size();
  s.templates = templates_;
  s.references = references_;
  return s;
}

}  // namespace ssefanout::mercure
