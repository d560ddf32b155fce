#include "acceptor.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "query.hpp"
#include "responses.hpp"
#include "token.hpp"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

namespace ssefanout::listener {

struct Acceptor::Pending {
  Acceptor* owner = nullptr;
  int fd = -1;
  size_t index = 0;     // in pending_ (kGone once it left)
  uv_poll_t poll;       // initialized only once the request needs waiting for
  bool polled = false;  // `poll` is initialized (and must be closed)
  std::string buf;
  size_t scanned = 0;        // findHeadEnd resumes here
  uint64_t deadlineMs = 0;   // header timeout, or the end of the linger
  uint32_t requests = 0;     // answered on this connection
  bool lingering = false;    // answered with close: discarding until EOF
  bool closeAfter = false;   // close once `out` is written
  bool writing = false;      // polling for UV_WRITABLE
  bool lineChecked = false;  // checkPartial ran once the request line was in
  size_t lineScan = 0;       // the first line end is searched from here
  std::string out;           // response bytes not yet written
  size_t lingerBytes = 0;
  std::unique_ptr<ConnHook> ticket;
  sockaddr_storage addr;
};

namespace {

IpKey keyOf(const sockaddr_storage& ss) {
  IpKey k;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    k.bytes[10] = 0xff;
    k.bytes[11] = 0xff;
    std::memcpy(k.bytes + 12, &in->sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    std::memcpy(k.bytes, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, 16);
    // One client holds a whole /64 (SLAAC, privacy addresses): counted as
    // one address, or a limit per address would be no limit. IPv4-mapped
    // addresses stay whole.
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(k.bytes, kMapped, 12) != 0) std::memset(k.bytes + 8, 0, 8);
  }
  return k;
}

void describe(const sockaddr_storage& ss, std::string* address, uint16_t* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    *port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    *port = ntohs(in6->sin6_port);
  }
  *address = text;
}

// A cursor as lib/history/index.js takes it: an empty one is none; one sent
// twice or longer than 1024 bytes cannot be placed ("-": a reset).
constexpr size_t kMaxCursorBytes = 1024;
const char* const kCursorParams[] = {"lastEventId", "last_event_id", "lastEventID"};

std::optional<std::string> cursorOf(const http::Request& r) {
  if (r.count("last-event-id") > 1) return std::string("-");
  std::string_view v = r.header("last-event-id");
  std::string value(v);
  if (r.count("last-event-id") == 0 && !r.query.empty()) {
    std::vector<std::string> values;
    for (const char* name : kCursorParams) {
      values.clear();
      if (!http::queryValues(r.query, name, &values, 1, kMaxCursorBytes)) return std::string("-");
      if (!values.empty()) {
        value = values[0];
        break;
      }
    }
  }
  if (value.empty()) return std::nullopt;
  if (value.size() > kMaxCursorBytes) return std::string("-");
  return value;
}

// The query's topics: every value of the parameter, split on commas, empty
// parts dropped (as the demo reads ?topics=a,b). False past the budgets.
bool topicsOf(const Options& o, std::string_view query, std::vector<std::string>* out) {
  std::vector<std::string> values;
  if (!http::queryValues(query, o.topicsParam, &values, o.maxTopics, o.maxTopicBytes)) return false;
  for (const std::string& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      if (comma > start) {
        if (out->size() >= o.maxTopics) return false;
        out->emplace_back(v, start, comma - start);
      }
      start = comma + 1;
    }
  }
  return true;
}

}  // namespace

Acceptor::Acceptor(std::shared_ptr<Core> core, Shard& shard, std::vector<int> listenFds)
    : core_(std::move(core)),
      shard_(shard),
      options_(core_->options()),
      tokenCache_(options_.tokenCacheEntries, options_.tokenCacheBytes) {
  for (int fd : listenFds) {
    auto l = std::make_unique<Listening>();
    l->owner = this;
    l->fd = fd;
    listens_.push_back(std::move(l));
  }
}

Acceptor::~Acceptor() {
  freeReleased();
  for (const auto& l : listens_) ::close(l->fd);
}

uint64_t Acceptor::now() const { return uv_now(shard_.loop()); }

void Acceptor::start() {
  uv_loop_t* loop = shard_.loop();
  uv_timer_init(loop, &sweep_);
  sweep_.data = this;
  uv_timer_init(loop, &resume_);
  resume_.data = this;
  uv_check_init(loop, &check_);
  check_.data = this;
  openHandles_ = 3;
  // The sweep closes requests past their deadline: a few times per timeout.
  uint64_t every = std::clamp<uint64_t>(options_.headerTimeoutMs / 4, 10, 1000);
  uv_timer_start(&sweep_, onSweep, every, every);
  uv_check_start(&check_, onCheck);
  for (const auto& l : listens_) {
    uv_poll_init(loop, &l->poll, l->fd);
    l->poll.data = l.get();
    ++openHandles_;
    uv_poll_start(&l->poll, UV_READABLE, onListen);
  }
  shard_.addService(this);
  core_->acceptorOf(shard_.index()) = this;
}

void Acceptor::stop() {
  if (stopped_) return;
  stopped_ = true;
  core_->acceptorOf(shard_.index()) = nullptr;
  shard_.removeService(this);
  onCheck(&check_);  // what was accepted this turn still goes to JS
  while (!pending_.empty()) drop(pending_.back(), true);
  for (const auto& l : listens_) closeHandle(reinterpret_cast<uv_handle_t*>(&l->poll));
  closeHandle(reinterpret_cast<uv_handle_t*>(&sweep_));
  closeHandle(reinterpret_cast<uv_handle_t*>(&resume_));
  closeHandle(reinterpret_cast<uv_handle_t*>(&check_));
}

void Acceptor::closeHandle(uv_handle_t* h) { uv_close(h, onHandleClosed); }

void Acceptor::onHandleClosed(uv_handle_t* h) {
  Acceptor* self = h->type == UV_POLL ? static_cast<Listening*>(h->data)->owner : static_cast<Acceptor*>(h->data);
  if (--self->openHandles_ > 0) return;
  std::shared_ptr<Core> core = std::move(self->core_);
  delete self;  // closes the listening socket
  core->acceptorDone();
}

// ---- accepting ---------------------------------------------------------------

void Acceptor::onListen(uv_poll_t* handle, int status, int events) {
  auto* l = static_cast<Listening*>(handle->data);
  if (!l->owner->stopped_ && !l->owner->paused_) l->owner->acceptSome(l->fd);
}

void Acceptor::acceptSome(int listenFd) {
  for (int i = 0; i < kAcceptsPerWake; ++i) {
    if (!hasRoom()) {
      core_->wantRoom(shard_.index());
      if (!hasRoom()) {
        pausedForRoom_ = true;
        pause(0);  // resumed when a request leaves, or the JS thread takes some (roomMade)
        return;
      }
      // The JS thread took some meanwhile (a roomTask it posts finds nothing to do).
    }
    uint64_t waitMs = 0;
    if (!core_->takeAcceptToken(now(), &waitMs)) {
      pause(waitMs);
      return;
    }
    sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int fd = accept4(listenFd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      core_->refundAcceptToken();
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the backlog keeps the connections
      // until a descriptor frees; polling again at once would spin.
      pause(100);
      return;
    }
    core_->accepted.fetch_add(1, std::memory_order_relaxed);
    std::unique_ptr<IpTicket> ticket = core_->admit(keyOf(addr));
    if (!ticket) {
      // Past maxConnectionsPerIp, before reading a byte: one write, no linger.
      core_->refusedIp.fetch_add(1, std::memory_order_relaxed);
      const std::string refused = errorResponse(429, "ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP",
                                                "this address already holds maxConnectionsPerIp connections", true);
      ssize_t ignored = ::send(fd, refused.data(), refused.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      (void)ignored;
      ::close(fd);
      continue;
    }
    // TCP_NODELAY and the rest come with the socket (openListeners).
    Pending* p = track(fd, std::move(ticket), &addr);
    // The request is most often there already: read before polling, so a
    // stream whose head came with its connection is never registered with
    // epoll here (its shard registers it once, as a stream).
    readFrom(p);
    if (alive(p)) watch(p);
  }
}

void Acceptor::pause(uint64_t resumeInMs) {
  if (!paused_) {
    paused_ = true;
    for (const auto& l : listens_) uv_poll_stop(&l->poll);
  }
  if (resumeInMs > 0) uv_timer_start(&resume_, onResume, resumeInMs, 0);
}

void Acceptor::resume() {
  if (!paused_ || stopped_) return;
  paused_ = false;
  pausedForRoom_ = false;
  for (const auto& l : listens_) uv_poll_start(&l->poll, UV_READABLE, onListen);
}

void Acceptor::roomMade() {
  if (!pausedForRoom_) return;
  if (!hasRoom()) core_->wantRoom(shard_.index());  // still full: the next batch taken tells again
  if (hasRoom()) resume();  // (again after wantRoom: a batch taken meanwhile may not have seen it)
}

void Acceptor::onResume(uv_timer_t* handle) {
  auto* self = static_cast<Acceptor*>(handle->data);
  if (self->pausedForRoom_) return;  // waits for a request to leave instead
  self->resume();
}

// ---- requests ----------------------------------------------------------------

Acceptor::Pending* Acceptor::track(int fd, std::unique_ptr<ConnHook> ticket, const sockaddr_storage* addr) {
  auto* p = new Pending();
  p->owner = this;
  p->fd = fd;
  p->ticket = std::move(ticket);
  if (addr)
    p->addr = *addr;
  else
    std::memset(&p->addr, 0, sizeof p->addr);
  p->deadlineMs = now() + options_.headerTimeoutMs;
  p->index = pending_.size();
  pending_.push_back(p);
  core_->pending.fetch_add(1, std::memory_order_relaxed);
  return p;
}

// Polls a request's connection: for more of its head, for room to write its
// answer, or for the client's end while lingering.
void Acceptor::watch(Pending* p) {
  if (!p->polled) {
    if (uv_poll_init(shard_.loop(), &p->poll, p->fd) != 0) {
      drop(p, true);  // not pollable: never the case for a socket
      return;
    }
    p->poll.data = p;
    p->polled = true;
  }
  uv_poll_start(&p->poll, UV_READABLE | UV_DISCONNECT | (p->writing ? UV_WRITABLE : 0), onPending);
}

// The request has left pending_: its handle closes (and the Pending is freed
// from the close callback), or, never polled, it is freed at the check phase
// (the calls on the stack may still read it until then).
void Acceptor::release(Pending* p) {
  if (p->polled) {
    uv_close(reinterpret_cast<uv_handle_t*>(&p->poll), onPendingClosed);
    return;
  }
  if (p->fd >= 0) ::close(p->fd);
  p->fd = -1;
  released_.push_back(p);
}

void Acceptor::freeReleased() {
  for (Pending* p : released_) delete p;  // drops its ticket
  released_.clear();
}

bool Acceptor::alive(const Pending* p) const { return p->index != kGone; }

void Acceptor::untrack(Pending* p) {
  Pending* last = pending_.back();
  pending_[p->index] = last;
  last->index = p->index;
  pending_.pop_back();
  p->index = kGone;
  core_->pending.fetch_sub(1, std::memory_order_relaxed);
  if (pausedForRoom_ && hasRoom()) resume();
}

bool Acceptor::hasRoom() const {
  return pending_.size() + core_->waiting(shard_.index()) < options_.maxPendingPerThread;
}

// Closes a connection the acceptor still holds (an error, a timeout, EOF).
void Acceptor::drop(Pending* p, bool abortive) {
  untrack(p);
  if (abortive) {
    struct linger lg = {1, 0};
    setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  release(p);
}

void Acceptor::onPendingClosed(uv_handle_t* handle) {
  auto* p = static_cast<Pending*>(handle->data);
  if (p->fd >= 0) ::close(p->fd);
  delete p;  // drops its ticket
}

void Acceptor::onPending(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<Pending*>(handle->data);
  Acceptor* self = p->owner;
  if (status < 0) {
    self->drop(p, true);
    return;
  }
  if ((events & UV_WRITABLE) && !p->out.empty()) {
    self->writeOut(p);
    // The next request may have arrived while the answer was waiting.
    if (self->alive(p) && !p->writing && !p->lingering && !p->buf.empty()) self->parseBuffered(p);
    return;
  }
  if (events & (UV_READABLE | UV_DISCONNECT)) self->readFrom(p);
}

void Acceptor::readFrom(Pending* p) {
  char chunk[4096];
  for (int i = 0; i < 8; ++i) {
    ssize_t r = ::recv(p->fd, chunk, sizeof chunk, 0);
    if (r > 0) {
      if (p->lingering) {
        p->lingerBytes += static_cast<size_t>(r);
        if (p->lingerBytes > kMaxLingerBytes) {
          drop(p, true);
          return;
        }
        continue;
      }
      // Never more than one head past the limit is buffered: checkPartial
      // refuses a longer one.
      p->buf.append(chunk, static_cast<size_t>(r));
      if (!p->writing) {
        parseBuffered(p);
        if (!alive(p) || p->lingering) return;
      } else if (p->buf.size() > options_.limits.maxHeadBytes * 2) {
        drop(p, true);  // pipelining while its answer cannot be written
        return;
      }
      continue;
    }
    if (r == 0) {
      drop(p, false);  // the client is done (or gave up)
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) drop(p, true);
    return;
  }
}

// Handles every complete head in the buffer (a keep-alive client may send
// OPTIONS then GET at once), stopping at a stream or an answer with close.
void Acceptor::parseBuffered(Pending* p) {
  while (true) {
    size_t end = http::findHeadEnd(p->buf, p->scanned);
    if (end == std::string_view::npos) {
      p->scanned = p->buf.size();
      // The early verdict runs twice per request at most (a rescan per read
      // would cost the square of the head's size): once the request line
      // is in, and once the buffer passes the head limit.
      bool lineIn = false;
      if (!p->lineChecked) {
        // A line end (a bare LF too: refused early) searched from where the
        // last read left off.
        lineIn = p->buf.find('\n', p->lineScan) != std::string::npos;
        p->lineScan = p->buf.size();
      }
      const bool over = p->buf.size() > options_.limits.maxHeadBytes;
      if (!lineIn && !over) return;
      if (lineIn) p->lineChecked = true;
      http::Error err;
      if (!http::checkPartial(p->buf, options_.limits, &err)) {
        core_->badRequests.fetch_add(1, std::memory_order_relaxed);
        respond(p, errorResponse(err.status, "ERR_SSE_BAD_REQUEST", err.reason, true), true);
      }
      return;
    }
    handle(p, end);
    // handle() answered and kept the connection (OPTIONS, HEAD): the rest of
    // the buffer is the next request, once the answer is out.
    if (!alive(p) || p->lingering || p->writing || p->closeAfter || p->buf.empty()) return;
  }
}

void Acceptor::handle(Pending* p, size_t headEnd) {
  std::string_view head(p->buf.data(), headEnd);
  http::Request req;
  http::Error err;
  if (!http::parseHead(head, options_.limits, &req, &err)) {
    core_->badRequests.fetch_add(1, std::memory_order_relaxed);
    std::string extra = err.status == 405 ? "allow: GET, HEAD, OPTIONS\r\n" : "";
    respond(p, errorResponse(err.status, "ERR_SSE_BAD_REQUEST", err.reason, true, extra), true);
    return;
  }
  ++p->requests;
  const bool last = !req.keepAlive || p->requests >= kMaxRequestsPerConnection;
  if (req.path != options_.path) {
    core_->badRequests.fetch_add(1, std::memory_order_relaxed);
    std::string body = errorResponse(404, "ERR_SSE_NOT_FOUND", "no stream at this path", true);
    respond(p, std::move(body), true);
    return;
  }
  if (req.method == http::Method::kOptions) {
    core_->preflights.fetch_add(1, std::memory_order_relaxed);
    std::string answer = preflightResponse(options_, req, !last);
    p->buf.erase(0, headEnd);
    p->scanned = 0;
    p->lineChecked = false;
    p->lineScan = 0;
    p->deadlineMs = now() + options_.headerTimeoutMs;
    respond(p, std::move(answer), last);
    return;
  }
  const Cors cors = corsFor(options_, req.header("origin"));
  const http::Coding coding =
      options_.compression ? http::negotiateCoding(req.header("accept-encoding")) : http::Coding::kIdentity;
  if (req.method == http::Method::kHead) {
    if (options_.authorize || options_.token) {
      // Its answer would say what only the hook (or a token) may grant (200, CORS).
      core_->badRequests.fetch_add(1, std::memory_order_relaxed);
      respond(p,
              errorResponse(405, "ERR_SSE_BAD_REQUEST", "HEAD is not served where streams need authorization", true,
                            "allow: GET, OPTIONS\r\n"),
              true);
      return;
    }
    // The head a GET would get, and no body: the request ends there.
    const bool keep = req.minor >= 1 && !last;
    std::string answer = streamHead(options_, req.minor, coding, cors, !keep);
    if (keep) {
      p->buf.erase(0, headEnd);
      p->scanned = 0;
      p->lineChecked = false;
      p->lineScan = 0;
      p->deadlineMs = now() + options_.headerTimeoutMs;
      respond(p, std::move(answer), false);
    } else {
      respond(p, std::move(answer), true);
    }
    return;
  }
  Accepted a;
  if (!options_.authorize && !topicsOf(options_, req.query, &a.topics)) {
    core_->badRequests.fetch_add(1, std::memory_order_relaxed);
    respond(p,
            errorResponse(400, "ERR_SSE_TOO_MANY_SUBSCRIPTIONS",
                          "the request names more topics (or topic bytes) than the listener takes", true),
            true);
    return;
  }
  if (options_.token) {
    // Verified here, on the I/O thread: no JS per connection (token.hpp).
    std::string refusal;
    bool cached = false;
    const bool admitted =
        admitToken(options_, req, static_cast<int64_t>(::time(nullptr)), &a, &refusal, &tokenCache_, &cached);
    if (cached) core_->tokenCacheHits.fetch_add(1, std::memory_order_relaxed);
    if (!admitted) {
      core_->tokenRefused.fetch_add(1, std::memory_order_relaxed);
      respond(p, std::move(refusal), true);
      return;
    }
  }
  a.minor = req.minor;
  a.lastEventId = cursorOf(req);
  a.coding = coding;
  a.allowOrigin = cors.allowOrigin;
  a.varyOrigin = cors.varyOrigin;
  if (options_.authorize) {
    a.head.assign(head);
    describe(p->addr, &a.remoteAddress, &a.remotePort);
  }
  handOver(p, std::move(a));
}

// The stream leaves the acceptor: its fd and ticket go to the JS thread with
// the request (bytes pipelined after a stream request are dropped: its
// response never ends).
void Acceptor::handOver(Pending* p, Accepted&& a) {
  a.fd = p->fd;
  a.shard = shard_.index();
  a.ticket = std::move(p->ticket);
  p->fd = -1;
  untrack(p);
  release(p);
  core_->streams.fetch_add(1, std::memory_order_relaxed);
  core_->handedOver(shard_.index());
  ready_.push_back(std::move(a));
}

void Acceptor::onCheck(uv_check_t* handle) {
  auto* self = static_cast<Acceptor*>(handle->data);
  self->freeReleased();
  if (self->ready_.empty()) return;
  std::vector<Accepted> batch;
  batch.swap(self->ready_);
  self->core_->deliver(std::move(batch));
}

// ---- answers -----------------------------------------------------------------

void Acceptor::respond(Pending* p, std::string bytes, bool close) {
  p->out += bytes;
  p->closeAfter = p->closeAfter || close;
  writeOut(p);
}

void Acceptor::writeOut(Pending* p) {
  while (!p->out.empty()) {
    ssize_t w = ::send(p->fd, p->out.data(), p->out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p->out.erase(0, static_cast<size_t>(w));
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!p->writing) {
        p->writing = true;
        watch(p);
      }
      return;
    }
    drop(p, true);
    return;
  }
  if (p->writing) {
    p->writing = false;
    watch(p);
  }
  if (p->closeAfter) linger(p);
}

// After an answer with "connection: close": half-close, then read and drop
// what the client still sends until its FIN, so the answer is not lost to a
// reset; bounded in time and bytes.
void Acceptor::linger(Pending* p) {
  p->lingering = true;
  p->buf.clear();
  p->buf.shrink_to_fit();
  p->deadlineMs = now() + kLingerMs;
  ::shutdown(p->fd, SHUT_WR);
}

void Acceptor::onSweep(uv_timer_t* handle) {
  auto* self = static_cast<Acceptor*>(handle->data);
  // Room may have come back on the JS thread's side (requests it took).
  if (self->pausedForRoom_ && self->hasRoom()) self->resume();
  const uint64_t t = self->now();
  for (size_t i = self->pending_.size(); i > 0; --i) {
    if (i > self->pending_.size()) continue;  // drop() moved the last one here
    Pending* p = self->pending_[i - 1];
    if (t < p->deadlineMs) continue;
    if (!p->lingering) self->core_->timedOut.fetch_add(1, std::memory_order_relaxed);
    self->drop(p, true);  // slow-loris, or a linger that ran out
  }
}

void Acceptor::refuse(Accepted&& request, std::string response) {
  Pending* p = track(request.fd, std::move(request.ticket), nullptr);
  request.fd = -1;
  respond(p, std::move(response), true);
  if (alive(p)) watch(p);
}

// ---- tasks -------------------------------------------------------------------

namespace {

class StartTask : public ShardTask {
 public:
  StartTask(std::shared_ptr<Core> core, std::vector<int> fds) : core_(std::move(core)), fds_(std::move(fds)) {}
  ~StartTask() override {
    if (!started_) {
      for (int fd : fds_) ::close(fd);
      core_->acceptorDone();  // never started: counts as closed
    }
  }
  void run(Shard& shard) override {
    if (shard.ending()) return;  // the destructor gives the sockets back
    auto* a = new Acceptor(core_, shard, std::move(fds_));
    started_ = true;
    a->start();
  }

 private:
  std::shared_ptr<Core> core_;
  std::vector<int> fds_;
  bool started_ = false;
};

class RoomTask : public ShardTask {
 public:
  explicit RoomTask(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  void run(Shard& shard) override {
    if (Acceptor* a = core_->acceptorOf(shard.index())) a->roomMade();
  }

 private:
  std::shared_ptr<Core> core_;
};

class StopTask : public ShardTask {
 public:
  explicit StopTask(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  void run(Shard& shard) override {
    if (Acceptor* a = core_->acceptorOf(shard.index())) a->stop();
  }

 private:
  std::shared_ptr<Core> core_;
};

class RefuseTask : public ShardTask {
 public:
  RefuseTask(std::shared_ptr<Core> core, Accepted&& request, std::string response)
      : core_(std::move(core)), request_(std::move(request)), response_(std::move(response)) {}
  void run(Shard& shard) override {
    if (Acceptor* a = core_->acceptorOf(shard.index())) {
      a->refuse(std::move(request_), std::move(response_));
      return;
    }
    // The listener closed meanwhile: one write, then the fd closes with request_.
    ssize_t ignored = ::send(request_.fd, response_.data(), response_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)ignored;
  }

 private:
  std::shared_ptr<Core> core_;
  Accepted request_;
  std::string response_;
};

}  // namespace

std::unique_ptr<ShardTask> startTask(std::shared_ptr<Core> core, std::vector<int> listenFds) {
  return std::make_unique<StartTask>(std::move(core), std::move(listenFds));
}

std::unique_ptr<ShardTask> roomTask(std::shared_ptr<Core> core) { return std::make_unique<RoomTask>(std::move(core)); }

std::unique_ptr<ShardTask> stopTask(std::shared_ptr<Core> core) { return std::make_unique<StopTask>(std::move(core)); }

std::unique_ptr<ShardTask> refuseTask(std::shared_ptr<Core> core, Accepted&& request, std::string response) {
  return std::make_unique<RefuseTask>(std::move(core), std::move(request), std::move(response));
}

}  // namespace ssefanout::listener
