#include "listener_wrap.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "args.hpp"
#include "hub_wrap.hpp"
#include "sockets.hpp"

namespace ssefanout {

// The acceptors' way to the JS thread: batches of accepted requests wait
// here (any thread) until one thread-safe function call takes them all.
class ListenerWrap::Channel : public listener::Sink {
 public:
  void onAccepted(std::vector<listener::Accepted>&& batch) override {
    std::lock_guard<std::mutex> lock(mu);
    if (released) return;  // the caller's batch closes its fds
    for (listener::Accepted& a : batch) queued.push_back(std::move(a));
    schedule();
  }
  void onClosed() override {
    std::lock_guard<std::mutex> lock(mu);
    closed = true;
    if (!released) schedule();
  }
  // Under mu.
  void schedule() {
    if (scheduled) return;
    scheduled = true;
    Channel* self = this;
    tsfn.NonBlockingCall([self](Napi::Env env, Napi::Function cb) {
      if (self->wrap && env != nullptr) self->wrap->dispatch(env, cb);
    });
  }

  std::mutex mu;
  std::vector<listener::Accepted> queued;  // guarded by mu
  bool scheduled = false;                  // guarded by mu
  bool closed = false;                     // guarded by mu: every acceptor is done
  bool released = false;                   // guarded by mu: no call may be made any more
  Napi::ThreadSafeFunction tsfn;
  ListenerWrap* wrap = nullptr;  // JS thread: null once the wrap is gone
};

namespace {

std::string str(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

bool flag(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

listener::Options optionsOf(const Napi::Object& o) {
  listener::Options out;
  out.host = str(o, "host", out.host);
  out.port = static_cast<uint16_t>(u32(o, "port", 0));
  out.backlog = u32(o, "backlog", out.backlog);
  out.path = str(o, "path", out.path);
  out.topicsParam = str(o, "topicsParam", out.topicsParam);
  out.limits.maxHeadBytes = u32(o, "maxHeaderBytes", static_cast<uint32_t>(out.limits.maxHeadBytes));
  out.limits.maxHeaders = u32(o, "maxHeaders", out.limits.maxHeaders);
  out.limits.maxTargetBytes = std::min(out.limits.maxTargetBytes, out.limits.maxHeadBytes);
  out.headerTimeoutMs = u32(o, "headerTimeoutMs", out.headerTimeoutMs);
  out.maxConnectionsPerIp = u32(o, "maxConnectionsPerIp", out.maxConnectionsPerIp);
  out.acceptRate = u32(o, "acceptRate", out.acceptRate);
  out.maxPendingPerThread = u32(o, "maxPendingPerThread", out.maxPendingPerThread);
  Napi::Value origins = o.Get("corsOrigins");
  if (origins.IsArray()) {
    Napi::Array a = origins.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) out.corsOrigins.push_back(stringArg(a.Get(i)));
  }
  out.corsCredentials = flag(o, "corsCredentials", false);
  out.corsMaxAgeS = u32(o, "corsMaxAge", out.corsMaxAgeS);
  out.compression = flag(o, "compression", false);
  out.authorize = flag(o, "authorize", false);
  double min = num(o.Get("retryMin"), -1);
  double max = num(o.Get("retryMax"), -1);
  if (min >= 0) out.retryMin = static_cast<uint64_t>(min);
  if (max >= 0) out.retryMax = static_cast<uint64_t>(max);
  out.idleMs = u32(o, "idleMs", 0);
  out.lifetimeMs = u32(o, "lifetimeMs", 0);
  out.history = flag(o, "history", true);
  out.maxTopics = u32(o, "maxTopics", out.maxTopics);
  return out;
}

// The token path's options (lib/listener/options.js checked and exported
// them): { keys: [{ algorithm, key: Buffer (secret bytes or SPKI DER), kid? }],
// cookie, query ('' : off), claim ('mercure.subscribe'), userClaim ('' :
// anonymous), clockToleranceSec, cache and cacheBytes (0: none kept) }. False with *error (never quoting a key).
bool tokenOptionsOf(const Napi::Object& o, listener::Options* out, std::string* error) {
  Napi::Value t = o.Get("token");
  if (!t.IsObject()) return true;
  Napi::Object token = t.As<Napi::Object>();
  Napi::Value list = token.Get("keys");
  if (!list.IsArray()) {
    *error = "options.token.keys must be an array";
    return false;
  }
  std::vector<auth::KeySpec> keys;
  Napi::Array a = list.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value k = a.Get(i);
    if (!k.IsObject()) {
      *error = "options.token.keys[" + std::to_string(i) + "] must be an object";
      return false;
    }
    Napi::Object key = k.As<Napi::Object>();
    auth::KeySpec spec;
    std::string scratch;
    std::string_view bytes;
    if (!auth::parseAlgorithm(stringArg(key.Get("algorithm")), &spec.algorithm) || !key.Get("key").IsTypedArray() ||
        !bytesOf(key.Get("key"), scratch, &bytes)) {
      *error = "options.token.keys[" + std::to_string(i) + "] needs an algorithm (HS256, RS256, ES256) and key bytes";
      return false;
    }
    spec.material.assign(bytes);
    if (key.Get("kid").IsString()) spec.kid = stringArg(key.Get("kid"));
    keys.push_back(std::move(spec));
  }
  auth::ClaimsOptions claims;
  const std::string claim = str(token, "claim", "mercure.subscribe");
  claims.topicsPath.clear();
  for (size_t start = 0; start <= claim.size();) {
    size_t dot = claim.find('.', start);
    if (dot == std::string::npos) dot = claim.size();
    claims.topicsPath.push_back(claim.substr(start, dot - start));
    start = dot + 1;
  }
  claims.userClaim = str(token, "userClaim", "");
  claims.clockToleranceSec = u32(token, "clockToleranceSec", 0);
  out->tokenCookie = str(token, "cookie", "");
  out->tokenQuery = str(token, "query", "");
  out->tokenCacheEntries = u32(token, "cache", 0);
  out->tokenCacheBytes = u32(token, "cacheBytes", 0);
  std::string why;
  out->token = auth::Verifier::create(std::move(keys), std::move(claims), &why);
  if (!out->token) {
    *error = "options.token: " + why;
    return false;
  }
  return true;
}

uint64_t steadyMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// Repeated fields as node:http joins them (IncomingMessage#_addHeaderLine):
// the first value only for fields that cannot repeat, "; " for Cookie,
// ", " for the rest.
bool keepsFirst(const std::string& name) {
  static const char* const kFirstOnly[] = {
      "age",           "authorization", "content-length", "content-type",        "etag",
      "expires",       "from",          "host",           "if-modified-since",   "if-unmodified-since",
      "last-modified", "location",      "max-forwards",   "proxy-authorization", "referer",
      "retry-after",   "server",        "user-agent"};
  for (const char* n : kFirstOnly) {
    if (name == n) return true;
  }
  return false;
}

Napi::Object nullObject(Napi::Env env) {
  Napi::Function create = env.Global().Get("Object").As<Napi::Object>().Get("create").As<Napi::Function>();
  Napi::Value o = create.Call({env.Null()});
  return o.IsObject() ? o.As<Napi::Object>() : Napi::Object::New(env);
}

const char* methodName(http::Method m) {
  switch (m) {
    case http::Method::kGet:
      return "GET";
    case http::Method::kHead:
      return "HEAD";
    case http::Method::kOptions:
      return "OPTIONS";
  }
  return "GET";
}

}  // namespace

Napi::Function ListenerWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeListener",
                     {
                         InstanceMethod<&ListenerWrap::JS_listen>("listen"),
                         InstanceMethod<&ListenerWrap::JS_close>("close"),
                         InstanceMethod<&ListenerWrap::JS_grant>("grant"),
                         InstanceMethod<&ListenerWrap::JS_deny>("deny"),
                         InstanceMethod<&ListenerWrap::JS_stats>("stats"),
                         InstanceMethod<&ListenerWrap::JS_expire>("expire"),
                         InstanceMethod<&ListenerWrap::JS_ref>("ref"),
                         InstanceMethod<&ListenerWrap::JS_unref>("unref"),
                     });
}

ListenerWrap::ListenerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ListenerWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsObject() || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "NativeListener(nativeHub, options, onBatch)").ThrowAsJavaScriptException();
    return;
  }
  // The verifier first: a bad key fails before the hub is touched.
  listener::Options options = optionsOf(info[1].As<Napi::Object>());
  std::string error;
  if (!tokenOptionsOf(info[1].As<Napi::Object>(), &options, &error)) {
    Napi::Error e = Napi::Error::New(env, error);
    e.Set("code", Napi::String::New(env, "ERR_SSE_INVALID_ARGUMENT"));
    e.ThrowAsJavaScriptException();
    return;
  }
  dispatcher_ = HubWrap::attachProtocol(info, "NativeListener(nativeHub, options, onBatch)", this, &hubRef_);
  if (!dispatcher_) return;
  auto* channel = new Channel();
  core_ =
      std::make_shared<listener::Core>(std::move(options), static_cast<uint32_t>(dispatcher_->shardCount()), channel);
  admission_ = std::make_unique<listener::Admission>(core_, dispatcher_);
  std::shared_ptr<listener::Core> core = core_;
  channel->tsfn = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "sse-fanout listener", 0, 1,
                                                [core, channel](Napi::Env) {
                                                  core->detachSink();
                                                  // Node finalizes the function itself at environment
                                                  // teardown, before the wrap may be: it must not
                                                  // touch the Channel after this.
                                                  if (channel->wrap) channel->wrap->channelFinalized();
                                                  delete channel;
                                                });
  channel->tsfn.Unref(env);  // listen() refs it: a listening server keeps the process alive
  channel->wrap = this;
  channel_ = channel;
  tsfn_ = channel->tsfn;
}

ListenerWrap::~ListenerWrap() {
  if (dispatcher_) dispatcher_->removeObserver(this);
  // Once released, the Channel belongs to the function's finalizer (which
  // may already have freed it): only an unreleased one is touched here.
  if (channel_ && !released_) {
    channel_->wrap = nullptr;
    if (dispatcher_ && listening_ && !closing_) {
      for (uint32_t i = 0; i < dispatcher_->shardCount(); ++i) dispatcher_->postTask(i, listener::stopTask(core_));
    }
    release();
  }
  // Requests still held here close with their Accepted (fd and ticket).
}

// No call reaches JS after this; the Channel is the finalizer's from now on.
void ListenerWrap::release() {
  {
    std::lock_guard<std::mutex> lock(channel_->mu);
    channel_->released = true;
  }
  released_ = true;
  channel_ = nullptr;
  tsfn_.Release();
}

void ListenerWrap::onDetached() { dispatcher_ = nullptr; }

Napi::Value ListenerWrap::JS_listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!dispatcher_ || dispatcher_->closing() || listening_ || closing_) {
    Napi::Error::New(env, "the listener cannot start: the hub is closed or it already listened")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const listener::Options& o = core_->options();
  const uint32_t n = static_cast<uint32_t>(dispatcher_->shardCount());
  const listener::SocketPlan plan = listener::planSockets(o.backlog, n, listener::systemSomaxconn());
  std::vector<std::vector<int>> fds;
  uint16_t port = 0;
  int err = listener::openListeners(o, dispatcher_->options().shard, n, plan, &fds, &port);
  if (err < 0) {
    Napi::Error e =
        Napi::Error::New(env, std::string("listen ") + o.host + ":" + std::to_string(o.port) + ": " + strerror(-err));
    e.Set("errno", Napi::Number::New(env, err));
    e.Set("syscall", Napi::String::New(env, "listen"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  sockets_ = n * plan.perThread;
  listening_ = true;
  core_->expectAcceptors(n);
  for (uint32_t i = 0; i < n; ++i) dispatcher_->postTask(i, listener::startTask(core_, std::move(fds[i])));
  tsfn_.Ref(env);
  return Napi::Number::New(env, port);
}

Napi::Value ListenerWrap::JS_close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) return env.Undefined();
  closing_ = true;
  // Nothing the hook may still answer opens a stream now.
  denyAllWaiting(503, "ERR_SSE_CLOSED", "the listener is closed");
  if (released_) return env.Undefined();
  if (!listening_ || !dispatcher_) {
    // Nothing to stop: 'closed' comes from here.
    std::lock_guard<std::mutex> lock(channel_->mu);
    channel_->closed = true;
    channel_->schedule();
    return env.Undefined();
  }
  for (uint32_t i = 0; i < dispatcher_->shardCount(); ++i) dispatcher_->postTask(i, listener::stopTask(core_));
  return env.Undefined();
}

Napi::Value ListenerWrap::JS_ref(const Napi::CallbackInfo& info) {
  if (!released_) tsfn_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value ListenerWrap::JS_unref(const Napi::CallbackInfo& info) {
  if (!released_) tsfn_.Unref(info.Env());
  return info.Env().Undefined();
}

// On the JS thread: the requests the acceptors handed over, kPerTurn at a time.
void ListenerWrap::dispatch(Napi::Env env, Napi::Function callback) {
  if (released_) return;
  bool closed;
  {
    std::lock_guard<std::mutex> lock(channel_->mu);
    for (listener::Accepted& a : channel_->queued) queue_.push_back(std::move(a));
    channel_->queued.clear();
    channel_->scheduled = false;
    closed = channel_->closed;
  }
  Napi::HandleScope scope(env);
  std::vector<uint64_t> opened;
  Napi::Array asks;
  uint32_t nAsks = 0;
  const bool authorize = core_->options().authorize;
  // With a token, 'opened' carries each stream's user for the hub's
  // 'connect' events.
  const bool withUsers = core_->options().token != nullptr;
  std::vector<std::optional<std::string>> openedUsers;
  size_t handled = 0;
  while (!queue_.empty() && handled < kPerTurn) {
    listener::Accepted a = std::move(queue_.front());
    queue_.pop_front();
    ++handled;
    core_->taken(a.shard);
    if (!dispatcher_ || dispatcher_->closing()) {
      if (dispatcher_) admission_->refuse(std::move(a), 503, "ERR_SSE_CLOSED", "the hub is closed");
      continue;
    }
    if (!authorize) {
      listener::Grant g;
      g.topics = std::move(a.topics);
      std::optional<std::string> user = std::move(a.user);  // a token's
      g.user = user;
      const size_t before = opened.size();
      admission_->admit(std::move(a), std::move(g), &opened);
      if (withUsers && opened.size() > before) openedUsers.push_back(std::move(user));
      continue;
    }
    if (authorizing_.size() >= kMaxAuthorizing || authorizingBytes_ + a.head.size() > kMaxAuthorizingBytes) {
      admission_->refuse(std::move(a), 503, "ERR_SSE_TOO_MANY_CONNECTIONS", "too many requests wait for authorization");
      continue;
    }
    if (nAsks == 0) asks = Napi::Array::New(env);
    uint32_t token = nextToken_++;
    if (nextToken_ == 0) nextToken_ = 1;
    asks.Set(nAsks++, requestObject(env, token, a));
    authorizingBytes_ += a.head.size();
    authorizing_.emplace(token, Waiting{std::move(a), steadyMs()});
  }
  if (dispatcher_) {
    admission_->resumeAcceptors();  // those paused at maxPendingPerThread: some left
    dispatcher_->flush();
  }
  if (!queue_.empty()) {
    std::lock_guard<std::mutex> lock(channel_->mu);
    channel_->schedule();
  }
  if (!opened.empty()) {
    Napi::Array ids = Napi::Array::New(env, opened.size());
    for (uint32_t i = 0; i < opened.size(); ++i) ids.Set(i, Napi::Number::New(env, static_cast<double>(opened[i])));
    if (withUsers) {
      Napi::Array users = Napi::Array::New(env, openedUsers.size());
      for (uint32_t i = 0; i < openedUsers.size(); ++i) {
        if (openedUsers[i]) users.Set(i, Napi::String::New(env, *openedUsers[i]));
      }
      callback.Call({Napi::String::New(env, "opened"), ids, users});
    } else {
      callback.Call({Napi::String::New(env, "opened"), ids});
    }
  }
  if (nAsks > 0) callback.Call({Napi::String::New(env, "authorize"), asks});
  if (closed && queue_.empty() && !released_) {
    release();
    callback.Call({Napi::String::New(env, "closed"), env.Undefined()});
  }
}

Napi::Object ListenerWrap::requestObject(Napi::Env env, uint32_t token, const listener::Accepted& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("token", Napi::Number::New(env, token));
  http::Request req;
  http::Error err;
  // A null-prototype object, as Node's request.headers: a field named
  // __proto__ or constructor is a header like any other.
  Napi::Object headers = nullObject(env);
  if (http::parseHead(a.head, core_->options().limits, &req, &err)) {
    o.Set("method", Napi::String::New(env, methodName(req.method)));
    o.Set("path", Napi::String::New(env, req.path.data(), req.path.size()));
    o.Set("query", Napi::String::New(env, req.query.data(), req.query.size()));
    o.Set("httpVersion", Napi::String::New(env, req.minor ? "1.1" : "1.0"));
    for (const http::Header& h : req.headers) {
      std::string name(h.name);
      for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      std::string value(h.value);
      if (headers.HasOwnProperty(name)) {
        if (keepsFirst(name)) continue;
        value = headers.Get(name).As<Napi::String>().Utf8Value() + (name == "cookie" ? "; " : ", ") + value;
      }
      headers.Set(name, Napi::String::New(env, value));
    }
  }
  o.Set("headers", headers);
  o.Set("remoteAddress", Napi::String::New(env, a.remoteAddress));
  o.Set("remotePort", Napi::Number::New(env, a.remotePort));
  return o;
}

// grant(token, topics, user, lastEventId) -> the stream's id, or 0 when it
// was refused (the request is answered and closed), or -1 for a token no
// longer waiting.
Napi::Value ListenerWrap::JS_grant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  listener::Accepted a;
  if (!takeWaiting(static_cast<uint32_t>(num(info[0], 0)), &a)) return Napi::Number::New(env, -1);
  if (!dispatcher_ || dispatcher_->closing()) {
    if (dispatcher_) admission_->refuse(std::move(a), 503, "ERR_SSE_CLOSED", "the hub is closed");
    return Napi::Number::New(env, 0);
  }
  listener::Grant g;
  if (!topicsOf(info[1], &g.topics)) {
    admission_->refuse(std::move(a), 400, "ERR_SSE_INVALID_TOPIC",
                       "a topic is empty, longer than 1024 bytes, or contains CR, LF or NUL");
    return Napi::Number::New(env, 0);
  }
  if (info[2].IsString()) g.user = info[2].As<Napi::String>().Utf8Value();
  if (info[3].IsString()) g.lastEventId = info[3].As<Napi::String>().Utf8Value();
  std::vector<uint64_t> opened;
  admission_->admit(std::move(a), std::move(g), &opened);
  dispatcher_->flush();
  return Napi::Number::New(env, opened.empty() ? 0 : static_cast<double>(opened[0]));
}

// deny(token, status, code, message) -> true when the token was waiting.
Napi::Value ListenerWrap::JS_deny(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  listener::Accepted a;
  if (!takeWaiting(static_cast<uint32_t>(num(info[0], 0)), &a)) return Napi::Boolean::New(env, false);
  ++deniedByHook_;
  const uint16_t status = static_cast<uint16_t>(num(info[1], 403));
  if (dispatcher_) {
    admission_->refuse(std::move(a), status, stringArg(info[2]), stringArg(info[3]));
    dispatcher_->flush();
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value ListenerWrap::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const listener::Core& c = *core_;
  o.Set("accepted", static_cast<double>(c.accepted.load()));
  o.Set("streams", static_cast<double>(admission_->opened()));
  o.Set("refused", static_cast<double>(admission_->refused()));
  o.Set("refusedPerIp", static_cast<double>(c.refusedIp.load()));
  o.Set("badRequests", static_cast<double>(c.badRequests.load()));
  o.Set("headerTimeouts", static_cast<double>(c.timedOut.load()));
  o.Set("preflights", static_cast<double>(c.preflights.load()));
  o.Set("tokenRefused", static_cast<double>(c.tokenRefused.load()));
  o.Set("tokenCacheHits", static_cast<double>(c.tokenCacheHits.load()));
  uint64_t waiting = 0;
  for (uint32_t i = 0; i < c.shards(); ++i) waiting += c.waiting(i);
  o.Set("pending", static_cast<double>(c.pending.load() + waiting));
  o.Set("authorizeTimeouts", static_cast<double>(authorizeTimeouts_));
  o.Set("authorizing", static_cast<double>(authorizing_.size()));
  o.Set("addresses", static_cast<double>(c.addresses()));
  o.Set("sockets", static_cast<double>(sockets_));
  return o;
}

}  // namespace ssefanout

namespace ssefanout {

bool ListenerWrap::takeWaiting(uint32_t token, listener::Accepted* out) {
  auto it = authorizing_.find(token);
  if (it == authorizing_.end()) return false;
  authorizingBytes_ -= it->second.request.head.size();
  *out = std::move(it->second.request);
  authorizing_.erase(it);
  return true;
}

void ListenerWrap::denyAllWaiting(uint16_t status, const char* code, const char* message) {
  std::vector<uint32_t> tokens;
  for (const auto& [token, w] : authorizing_) tokens.push_back(token);
  for (uint32_t token : tokens) {
    listener::Accepted a;
    if (!takeWaiting(token, &a)) continue;
    if (dispatcher_) admission_->refuse(std::move(a), status, code, message);
  }
  if (dispatcher_) dispatcher_->flush();
}

// expire(timeoutMs): requests the hook has left waiting that long are
// answered 503 (a hook that never answers holds nothing for long).
Napi::Value ListenerWrap::JS_expire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t timeout = static_cast<uint64_t>(num(info[0], 10000));
  const uint64_t now = steadyMs();
  std::vector<uint32_t> late;
  for (const auto& [token, w] : authorizing_) {
    if (now - w.sinceMs >= timeout) late.push_back(token);
  }
  for (uint32_t token : late) {
    listener::Accepted a;
    if (!takeWaiting(token, &a)) continue;
    ++authorizeTimeouts_;
    if (dispatcher_) admission_->refuse(std::move(a), 503, "ERR_SSE_AUTHORIZE", "authorization took too long");
  }
  if (dispatcher_ && !late.empty()) dispatcher_->flush();
  return Napi::Number::New(env, static_cast<double>(late.size()));
}

}  // namespace ssefanout
