// Fuzz target: PbIndex (pb_index.hpp), the native side of PocketBase's POST
// /api/realtime and of record events, against a reference model.
//
// Random operations on a few connections: setSubscriptions with random
// subscription lists (a pool of real ones with filters and fields, plus
// random strings), identities (guest or one of a few auth records, superuser
// or not) and auth JSON (valid, invalid, random); removeConnection;
// broadcastRecord on random records with random collection rules; publish;
// and filling the compiled-rule cache past its limit. The model predicts key
// and auth numbers (never reused), so it knows every internal topic.
// Asserted after each operation: the status; the add/remove topic lists are
// exactly the change of the connection's topic set (nothing added twice,
// nothing removed that was not there, nothing both); the reported errors;
// keyCount/authCount/connectionCount/groupCount. A broadcast must reach
// exactly the groups whose rule (for their identity, the latest auth record)
// and key filter pass, once each, one frame shared per key, and each frame
// must parse (test::SseParser) to one event named after the subscription
// whose data is {"record":...,"action":...}; publish reaches each group of
// the exact subscription once. At the end every connection is removed, the
// index must be empty and no frame may leak.
#include <fuzzer/FuzzedDataProvider.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "pb_field_picker.hpp"
#include "pb_filter.hpp"
#include "pb_index.hpp"
#include "pb_json.hpp"
#include "pb_subscription.hpp"
#include "sse_parser.hpp"

using namespace ssefanout;
using namespace ssefanout::pb;
using fuzzutil::show;

namespace {

std::string uri(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string withQuery(std::string base, std::string queryJson) {
  return base + "?options=" + uri("{\"query\":" + queryJson + "}");
}

const std::vector<std::string>& subPool() {
  static const std::vector<std::string> pool = {
      "posts/*",
      "posts/r1",
      "posts",
      "pbc_posts/*",
      "pbc_posts/r2",
      "notes/*",
      "custom-topic",
      withQuery("posts/*", R"({"filter":"n > 1"})"),
      withQuery("posts/*", R"({"filter":"owner = @request.auth.id"})"),
      withQuery("posts/*", R"({"fields":"id,n"})"),
      withQuery("posts/r1", R"({"fields":"id,obj.k","filter":"obj.k = 'v'"})"),
      withQuery("posts/*", R"({"filter":"n >"})"),              // does not compile: no record events
      withQuery("posts/*", R"j({"fields":"id:excerpt(3)"})j"),  // bad fields: the whole record
      withQuery("notes/*", R"({"filter":"@request.query.x = '1'","x":"1"})"),
      withQuery("posts/*", R"({"filter":"@request.auth.role = 'admin' || n = 1"})"),
  };
  return pool;
}

const char* const kIdentities[] = {"", "users/u1", "users/u2", "_superusers/s1"};
// Client addresses: connections share them, so owners come and go with them.
const char* const kOwners[] = {"127.0.0.1", "::1"};
const char* const kAuthJson[] = {
    R"({"id":"u1","role":"admin"})", R"({"id":"u2","role":"staff"})", R"({"id":"s1"})", "not json", "[1,2]", "",
};
const char* const kRules[] = {"",       "owner = @request.auth.id",           "@request.auth.role = 'admin'", "n > 1",
                              "bad ((", "@request.query.x = '1' || id = 'r1'"};

struct ModelConn {
  std::string identity;
  std::set<std::string> subs;
};

struct Model {
  std::map<uint64_t, ModelConn> conns;
  std::map<std::string, uint64_t> keyIds;
  std::map<std::string, uint64_t> authIds;
  std::map<std::string, std::pair<std::string, bool>> authDocs;  // identity -> latest (json, superuser)
  std::map<uint64_t, std::set<std::string>> topics;              // conn -> internal topics it holds
  uint64_t nextKey = 1, nextAuth = 1;

  uint64_t authOf(const std::string& identity) const { return identity.empty() ? 0 : authIds.at(identity); }
  std::set<std::string> topicsOf(const ModelConn& c) const {
    std::set<std::string> t;
    for (const std::string& s : c.subs) t.insert(PbIndex::topicFor(keyIds.at(s), authOf(c.identity)));
    return t;
  }
  void release() {
    std::set<std::string> subs, ids;
    for (const auto& [id, c] : conns) {
      subs.insert(c.subs.begin(), c.subs.end());
      if (!c.identity.empty()) ids.insert(c.identity);
    }
    for (auto it = keyIds.begin(); it != keyIds.end();) it = subs.count(it->first) ? std::next(it) : keyIds.erase(it);
    for (auto it = authIds.begin(); it != authIds.end();) {
      if (ids.count(it->first)) {
        ++it;
      } else {
        authDocs.erase(it->first);
        it = authIds.erase(it);
      }
    }
  }
  size_t groups() const {
    std::set<std::pair<std::string, std::string>> g;
    for (const auto& [id, c] : conns) {
      for (const std::string& s : c.subs) g.insert({s, c.identity});
    }
    return g.size();
  }
};

std::string singleLine(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n' || c == '\0') c = '_';
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int64_t live0 = Frame::liveCount();
  static simdjson::dom::parser modelParser;
  {
    // Budgets are tested in pb_index_test; here nothing may be refused for size.
    PbLimits unlimited;
    unlimited.maxOptionSubscriptionsPerClient = UINT32_MAX;
    unlimited.maxFilterNodesPerClient = UINT32_MAX;
    unlimited.maxCompiledBytesPerClient = UINT64_MAX;
    unlimited.maxDistinctSubscriptions = UINT64_MAX;
    unlimited.maxCompiledBytes = UINT64_MAX;
    unlimited.maxOptionSubscriptionsPerIp = UINT32_MAX;
    unlimited.maxFilterNodesPerIp = UINT32_MAX;
    unlimited.maxCompiledBytesPerIp = UINT64_MAX;
    unlimited.maxSubscriptionsPerIp = UINT64_MAX;
    PbIndex index(unlimited);
    Model m;
    std::vector<std::string> randomSubs;
    int fill = 0;

    auto pickSub = [&]() -> std::string {
      if (fdp.ConsumeIntegralInRange<int>(0, 5) == 0) {
        std::string s = singleLine(fdp.ConsumeRandomLengthString(40));
        if (randomSubs.size() < 8) randomSubs.push_back(s);
        return s;
      }
      if (!randomSubs.empty() && fdp.ConsumeIntegralInRange<int>(0, 5) == 0) {
        return randomSubs[fdp.ConsumeIntegralInRange<size_t>(0, randomSubs.size() - 1)];
      }
      const auto& pool = subPool();
      return pool[fdp.ConsumeIntegralInRange<size_t>(0, pool.size() - 1)];
    };

    auto checkCounts = [&](const char* after) {
      FUZZ_CHECK(index.keyCount() == m.keyIds.size(), "after %s: keyCount %zu, model %zu", after, index.keyCount(),
                 m.keyIds.size());
      FUZZ_CHECK(index.authCount() == m.authIds.size(), "after %s: authCount %zu, model %zu", after, index.authCount(),
                 m.authIds.size());
      FUZZ_CHECK(index.connectionCount() == m.conns.size(), "after %s: connectionCount %zu, model %zu", after,
                 index.connectionCount(), m.conns.size());
      FUZZ_CHECK(index.groupCount() == m.groups(), "after %s: groupCount %zu, model %zu", after, index.groupCount(),
                 m.groups());
    };

    while (fdp.remaining_bytes() > 0) {
      const int op = fdp.ConsumeIntegralInRange<int>(0, 9);
      const uint64_t conn = fdp.ConsumeIntegralInRange<uint64_t>(1, 5);
      if (op <= 3) {
        // setSubscriptions
        std::string identity = kIdentities[fdp.ConsumeIntegralInRange<int>(0, 3)];
        std::string authJson = fdp.ConsumeIntegralInRange<int>(0, 7) == 0
                                   ? fdp.ConsumeRandomLengthString(60)
                                   : kAuthJson[fdp.ConsumeIntegralInRange<int>(0, 5)];
        const bool superuser = identity.rfind("_superusers/", 0) == 0 || fdp.ConsumeIntegralInRange<int>(0, 15) == 0;
        std::vector<std::string> subs;
        const int n = fdp.ConsumeIntegralInRange<int>(0, 5);
        for (int i = 0; i < n; ++i) subs.push_back(pickSub());

        std::vector<std::string> add, remove;
        std::vector<SubscriptionError> errors;
        // An empty string_view may have a null data pointer; the API must take it.
        const std::string_view authView = authJson.empty() ? std::string_view() : std::string_view(authJson);
        Status s = index.setSubscriptions(conn, kOwners[conn % 2], identity, authView, superuser, subs, &add, &remove,
                                          &errors);

        simdjson::dom::element root;
        const auto parsed = identity.empty() ? simdjson::SUCCESS : modelParser.parse(authJson).get(root);
        bool authOk = identity.empty() || (parsed == simdjson::SUCCESS && root.is_object());
        // Lone surrogate escapes and integers beyond 64 bits are read as Go
        // reads them (pb_json.hpp); the model takes the index's word for those.
        if (!authOk && s == Status::kOk &&
            (parsed == simdjson::STRING_ERROR || parsed == simdjson::NUMBER_ERROR ||
             parsed == simdjson::BIGINT_ERROR)) {
          authOk = true;
        }
        if (!authOk) {
          FUZZ_CHECK(s == Status::kInvalidFilter && add.empty() && remove.empty() && errors.empty(),
                     "auth JSON %s accepted", show(authJson).c_str());
          checkCounts("a refused setSubscriptions");
          continue;
        }
        FUZZ_CHECK(s == Status::kOk, "setSubscriptions refused valid input: %d", static_cast<int>(s));

        // The model's view of the same call.
        if (!identity.empty()) {
          if (!m.authIds.count(identity)) m.authIds[identity] = m.nextAuth++;
          // The text as the index read it (pb_json.hpp's repairs).
          std::string readable = authJson, tmp;
          if (replaceLoneSurrogates(readable, &tmp)) readable = tmp;
          if (widenBigIntegers(readable, &tmp)) readable = tmp;
          m.authDocs[identity] = {readable, superuser};
        }
        std::vector<std::string> wantErrors;
        std::set<std::string> seen;  // a repeated subscription is reported once
        for (const std::string& sub : subs) {
          if (sub.empty() || !seen.insert(sub).second) continue;
          if (!m.keyIds.count(sub)) m.keyIds[sub] = m.nextKey++;
          Subscription parsed = parseSubscription(sub);
          const std::string* filter = parsed.options.queryValue("filter");
          const std::string* fields = parsed.options.queryValue("fields");
          Filter f;
          FieldPicker fp;
          std::string err;
          if (!Filter::compile(filter ? *filter : std::string(), &f, &err)) {
            wantErrors.push_back(sub + "\nfilter: ");
          } else if (!FieldPicker::compile(fields ? *fields : std::string(), &fp, &err)) {
            wantErrors.push_back(sub + "\nfields: ");
          }
        }
        FUZZ_CHECK(errors.size() == wantErrors.size(), "%zu subscription errors, model %zu", errors.size(),
                   wantErrors.size());
        for (size_t i = 0; i < errors.size(); ++i) {
          auto nl = wantErrors[i].find('\n');
          FUZZ_CHECK(errors[i].subscription == wantErrors[i].substr(0, nl) &&
                         errors[i].message.rfind(wantErrors[i].substr(nl + 1), 0) == 0,
                     "error %zu: %s %s", i, show(errors[i].subscription).c_str(), show(errors[i].message).c_str());
        }

        ModelConn next{identity, {}};
        for (const std::string& sub : subs) {
          if (!sub.empty()) next.subs.insert(sub);
        }
        const std::set<std::string> before = m.topics[conn];
        const std::set<std::string> after = m.topicsOf(next);
        std::set<std::string> addSet(add.begin(), add.end()), removeSet(remove.begin(), remove.end());
        FUZZ_CHECK(addSet.size() == add.size() && removeSet.size() == remove.size(), "a topic listed twice");
        for (const std::string& t : remove) {
          FUZZ_CHECK(before.count(t) && !after.count(t), "removes %s: %s", show(t).c_str(),
                     before.count(t) ? "still wanted" : "not held");
        }
        for (const std::string& t : add) {
          FUZZ_CHECK(after.count(t) && !before.count(t), "adds %s: %s", show(t).c_str(),
                     after.count(t) ? "already held" : "not wanted");
        }
        std::set<std::string> result = before;
        for (const std::string& t : remove) result.erase(t);
        result.insert(add.begin(), add.end());
        FUZZ_CHECK(result == after, "topic changes do not lead to the connection's subscriptions (%zu vs %zu topics)",
                   result.size(), after.size());
        m.topics[conn] = after;
        if (next.subs.empty() && next.identity.empty())
          m.conns.erase(conn);
        else
          m.conns[conn] = next;
        m.release();
        checkCounts("setSubscriptions");
      } else if (op == 4) {
        index.removeConnection(conn);
        m.conns.erase(conn);
        m.topics.erase(conn);
        m.release();
        checkCounts("removeConnection");
      } else if (op <= 7) {
        // broadcastRecord
        static const char* const kNames[] = {"posts", "notes", "", "pbc_posts"};
        static const char* const kIds[] = {"pbc_posts", "", "pbc_notes", "posts"};
        static const char* const kActions[] = {"create", "update", "delete", "upsert\"}"};
        Collection col;
        col.name = kNames[fdp.ConsumeIntegralInRange<int>(0, 3)];
        col.id = kIds[fdp.ConsumeIntegralInRange<int>(0, 3)];
        std::string listRule, viewRule;
        int li = fdp.ConsumeIntegralInRange<int>(-1, 5), vi = fdp.ConsumeIntegralInRange<int>(-1, 5);
        if (li >= 0) col.listRule = &(listRule = kRules[li]);
        if (vi >= 0) col.viewRule = &(viewRule = kRules[vi]);
        std::string action = kActions[fdp.ConsumeIntegralInRange<int>(0, 3)];
        std::string record;
        switch (fdp.ConsumeIntegralInRange<int>(0, 4)) {
          case 0:
            record = fdp.ConsumeRandomLengthString(200);
            break;
          case 1:
            record = "{\"id\":\"r1\",\"n\":" + std::to_string(fdp.ConsumeIntegralInRange<int>(0, 3)) +
                     ",\"owner\":\"u1\",\"obj\":{\"k\":\"v\"},\n\"text\":\"a\\nb\"}";
            break;
          case 2:
            record = "{\"id\":\"r2\",\"n\":2,\"owner\":\"u2\"}";
            break;
          case 3:
            record = "{\r\n\"id\":\"r" + singleLine(fdp.ConsumeRandomLengthString(4)) + "\",\"n\":1}";
            break;
          default:
            record = "{\"n\":1}";
            break;
        }
        std::vector<Delivery> out;
        std::string error;
        const std::string_view recordView = record.empty() ? std::string_view() : std::string_view(record);
        Status s = index.broadcastRecord(col, action, recordView, &out, &error);

        // Model: rules, record, targets, groups.
        Filter list, view;
        std::string err;
        const bool listOk = !col.listRule || Filter::compile(*col.listRule, &list, &err);
        const bool viewOk = !col.viewRule || Filter::compile(*col.viewRule, &view, &err);
        static simdjson::dom::parser recordParser;
        simdjson::dom::element rec;
        std::string_view recordId;
        // Read as the index reads it: lone surrogates and big integers repaired.
        static std::string readable;
        std::string tmp;
        readable = record;
        if (replaceLoneSurrogates(readable, &tmp)) readable = tmp;
        if (widenBigIntegers(readable, &tmp)) readable = tmp;
        const bool recordOk = recordParser.parse(readable).get(rec) == simdjson::SUCCESS && rec.is_object() &&
                              rec["id"].get_string().get(recordId) == simdjson::SUCCESS;
        if (action.find('"') != std::string::npos) {
          FUZZ_CHECK(s == Status::kInvalidEvent && out.empty() && error.find("action") != std::string::npos,
                     "action %s accepted", show(action).c_str());
          continue;
        }
        if (!listOk || !viewOk || !recordOk) {
          FUZZ_CHECK(s == Status::kInvalidFilter && out.empty() && !error.empty(), "broadcast of %s accepted",
                     show(record).c_str());
          if (!listOk)
            FUZZ_CHECK(error.rfind("listRule: ", 0) == 0, "error %s", show(error).c_str());
          else if (!viewOk)
            FUZZ_CHECK(error.rfind("viewRule: ", 0) == 0, "error %s", show(error).c_str());
          continue;
        }
        FUZZ_CHECK(s == Status::kOk, "broadcast refused: %s", error.c_str());
        std::vector<std::pair<std::string, const Filter*>> targets;
        auto addTarget = [&](std::string base, const Filter* r) {
          for (const auto& t : targets) {
            if (t.first == base) return;
          }
          targets.push_back({std::move(base), r});
        };
        for (std::string_view c : {col.name, col.id}) {
          if (c.empty()) continue;
          addTarget(std::string(c) + "/" + std::string(recordId), col.viewRule ? &view : nullptr);
          addTarget(std::string(c) + "/*", col.listRule ? &list : nullptr);
          addTarget(std::string(c), col.listRule ? &list : nullptr);
        }
        std::map<std::string, std::string> want;      // topic -> subscription
        static simdjson::dom::parser authParsers[4];  // one per identity: their documents are used together
        for (const auto& [sub, keyId] : m.keyIds) {
          Subscription parsed = parseSubscription(sub);
          const Filter* rule = nullptr;
          bool targeted = false;
          for (const auto& t : targets) {
            if (t.first == parsed.base) {
              targeted = true;
              rule = t.second;
            }
          }
          if (!targeted) continue;
          const std::string* filterText = parsed.options.queryValue("filter");
          Filter filter;
          if (!Filter::compile(filterText ? *filterText : std::string(), &filter, &err)) continue;
          std::set<std::string> identities;
          for (const auto& [id, c] : m.conns) {
            if (c.subs.count(sub)) identities.insert(c.identity);
          }
          for (const std::string& identity : identities) {
            EvalContext ctx;
            ctx.record = rec;
            ctx.options = &parsed.options;
            simdjson::dom::element authRoot;
            bool superuser = false;
            if (!identity.empty()) {
              size_t slot = 0;
              while (slot < 3 && identity != kIdentities[slot]) ++slot;
              FUZZ_CHECK(authParsers[slot].parse(m.authDocs.at(identity).first).get(authRoot) == simdjson::SUCCESS,
                         "model auth");
              ctx.auth = &authRoot;
              superuser = m.authDocs.at(identity).second;
            }
            // PocketBase's checkForSuperuserOnlyRuleFields on the client's filter and sort.
            bool superuserOnly = false;
            for (const char* param : {"filter", "sort"}) {
              const std::string* v = parsed.options.queryValue(param);
              if (v && (v->find("@request.") != std::string::npos || v->find("@collection.") != std::string::npos)) {
                superuserOnly = true;
              }
            }
            bool ok = superuser || (!superuserOnly && rule && rule->evaluate(ctx));
            if (ok) ok = filter.evaluate(ctx);
            if (ok) want[PbIndex::topicFor(keyId, m.authOf(identity))] = sub;
          }
        }
        std::map<std::string, Frame*> frameOfSub;
        std::set<std::string> seen;
        for (const Delivery& d : out) {
          FUZZ_CHECK(seen.insert(d.topic).second, "topic %s delivered twice", show(d.topic).c_str());
          auto it = want.find(d.topic);
          FUZZ_CHECK(it != want.end(), "record %s delivered to %s, which the model does not reach",
                     show(record).c_str(), show(d.topic).c_str());
          const std::string& sub = it->second;
          auto [f, fresh] = frameOfSub.emplace(sub, d.frame.get());
          FUZZ_CHECK(f->second == d.frame.get(), "key %s encoded twice", show(sub).c_str());
          if (!fresh) continue;
          test::SseParser parser;
          parser.feed(d.frame->view());
          FUZZ_CHECK(parser.events().size() == 1 && !parser.hasPartialEvent(), "frame for %s is not one event: %s",
                     show(sub).c_str(), show(d.frame->view()).c_str());
          const test::SseEvent& ev = parser.events()[0];
          FUZZ_CHECK(ev.type == sub, "event named %s for %s", show(ev.type).c_str(), show(sub).c_str());
          static simdjson::dom::parser p;
          simdjson::dom::element msg;
          std::string_view gotAction;
          simdjson::dom::object gotRecord;
          FUZZ_CHECK(p.parse(ev.data).get(msg) == simdjson::SUCCESS &&
                         msg["action"].get_string().get(gotAction) == simdjson::SUCCESS && gotAction == action &&
                         msg["record"].get_object().get(gotRecord) == simdjson::SUCCESS,
                     "message %s", show(ev.data).c_str());
          const Subscription parsedSub = parseSubscription(sub);
          const std::string* fields = parsedSub.options.queryValue("fields");
          FieldPicker fp;
          if (!FieldPicker::compile(fields ? *fields : std::string(), &fp, &err) || fp.all()) {
            FUZZ_CHECK(ev.data == test::normaliseLineEnds("{\"record\":" + record + ",\"action\":\"" + action + "\"}"),
                       "message %s", show(ev.data).c_str());
          }
        }
        FUZZ_CHECK(seen.size() == want.size(), "record %s reached %zu groups, model %zu", show(record).c_str(),
                   seen.size(), want.size());
      } else if (op == 8) {
        std::string sub = pickSub();
        std::vector<Delivery> out;
        index.publish(sub, sub, "{\"x\":1}\nline", &out);
        std::set<std::string> want;
        if (m.keyIds.count(sub)) {
          for (const auto& [id, c] : m.conns) {
            if (c.subs.count(sub)) want.insert(PbIndex::topicFor(m.keyIds.at(sub), m.authOf(c.identity)));
          }
        }
        std::set<std::string> got;
        for (const Delivery& d : out) {
          FUZZ_CHECK(got.insert(d.topic).second, "publish delivered %s twice", show(d.topic).c_str());
          test::SseParser parser;
          parser.feed(d.frame->view());
          FUZZ_CHECK(parser.events().size() == 1 && parser.events()[0].type == sub &&
                         parser.events()[0].data == "{\"x\":1}\nline",
                     "publish frame %s", show(d.frame->view()).c_str());
        }
        FUZZ_CHECK(got == want, "publish(%s) reached %zu groups, model %zu", show(sub).c_str(), got.size(),
                   want.size());
      } else {
        // Fill the compiled-rule cache (it starts over past kMaxCachedRules).
        const int n = fdp.ConsumeIntegralInRange<int>(0, 7) == 0 ? 1030 : fdp.ConsumeIntegralInRange<int>(1, 32);
        for (int i = 0; i < n; ++i) {
          std::string e;
          const Filter* f = index.rule("n = " + std::to_string(fill++), &e);
          FUZZ_CHECK(f && !f->alwaysTrue(), "rule() failed: %s", e.c_str());
        }
      }
    }

    for (const auto& [id, c] : std::map<uint64_t, ModelConn>(m.conns)) index.removeConnection(id);
    FUZZ_CHECK(
        index.keyCount() == 0 && index.authCount() == 0 && index.connectionCount() == 0 && index.groupCount() == 0,
        "index not empty after removing every connection");
  }
  FUZZ_CHECK(Frame::liveCount() == live0, "frames leaked");
  return 0;
}
