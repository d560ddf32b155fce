// loadgen — a native Server-Sent Events load generator for the sse-fanout benchmarks.
//
// Usage:
//   loadgen --port P [options]
//
//   --host ADDR        server address, must be in 127.0.0.0/8 (default 127.0.0.1)
//   --port P           server port (required)
//   --connections N    number of SSE connections, 1..10000 (default 1000)
//   --path PATH        request target (default /events); may contain the placeholders
//                      {i} (connection index 0..N-1) and {mod:K} (index modulo K), e.g.
//                      '/events?topics=t{mod:1000}'
//   --expect E         stop once every connection has received E events (0 = no expectation,
//                      run until --duration is over or every connection is gone)
//   --duration S       hard limit on the whole run in seconds, setup included (default 60);
//                      the measurement therefore lasts at most S seconds
//   --ready-file PATH  once every connection has its response head (or has finally failed),
//                      write "ready <connected>\n" to PATH (atomically, via rename); the
//                      line "READY <connected>" is printed on stderr at the same moment
//   --sources K        bind connection i to source address 127.0.0.(1 + i % K) before
//                      connecting (default: 1 per 20000 connections; K=1 means no bind)
//   --sample K         record latency on K connections spread evenly over the index range
//                      (default 1000); all connections are parsed, counted and order-checked
//   --batch B          at most B connections in flight (connecting or waiting for the
//                      response head) at a time, so the server's accept queue is not overrun
//                      (default 256)
//   --retries R        retry a refused/failed/closed-before-head connection R times (default 5)
//   --data-prefix STR  the timestamp follows STR at the start of each event's data instead of
//                      starting it, and ends at any non-digit (e.g. '{"record":{"ts":' for
//                      PocketBase record events); events whose data does not start with STR
//                      (PocketBase's PB_CONNECT) are counted in skipped_events only, not as
//                      events.  At most 40 bytes.
//   --header H         one more request header line, "Name: value" (repeatable, at most 8, each
//                      at most 1024 bytes, no CR or LF), e.g. 'Last-Event-ID: k3J9aQ2x-42' for
//                      a resume storm; the same for every connection
//   --accept-encoding C  C = gzip or deflate: send "Accept-Encoding: C" with every request and
//                      decode each response whose Content-Encoding is gzip or deflate with its
//                      own zlib inflate stream (windowBits 31 for gzip, 15 for deflate, the
//                      zlib format HTTP's deflate means), after de-chunking and before the SSE
//                      parser; a response in another coding counts as a protocol error
//   --hold             with --expect: once every connection has its E events, print
//                      "DONE <complete>" on stderr and keep the connections open (still
//                      parsed and counted: a late duplicate shows in events) until
//                      SIGINT/SIGTERM or --duration; the exit reason stays "expect", exit 0
//   --json             print one JSON object on stdout at the end (else a readable summary)
//   --help             print this text
//
// Exit codes: 0 the run ended (expectation met, nothing left to wait for, or duration over);
//             2 setup failure (bad arguments, setup not finished within --duration, or no
//               connection could be established); 3 interrupted by SIGINT/SIGTERM (with
//               --hold: only before the expectation was met).
//             The summary/JSON is printed in every case except bad arguments.
//
// JSON fields (all times CLOCK_MONOTONIC nanoseconds, the clock of Node's process.hrtime):
//   connections         N requested
//   connected           connections that got a "200" response head
//   failed_connects     connections that never got one (after retries; includes http_errors)
//   http_errors         connections answered with a status other than 200
//   connect_retries     retries performed in total
//   lost                connections that ended (EOF, error, end of body) before the end of the
//                       run without having received their expected events
//   protocol_errors     malformed response heads or chunk framing (those connections count as lost)
//   events              SSE events dispatched, over all connections
//   untimed_events      events whose data did not start with a decimal timestamp
//   skipped_events      events left out with --data-prefix (their data did not start with it)
//   expected_total      E * N
//   complete_connections connections that received at least E events (0 when E = 0)
//   caught_up_s         with --expect: time from the start of the run (the first connect) until
//                       the last connection received its E-th event, when every connected
//                       connection did (0 otherwise); the figure of a reconnect storm
//   catch_up_us         {p50, p99, max}: per complete connection, the time from its first
//                       connect attempt to its E-th event (histogram as latency_us)
//   in_order_violations events whose timestamp was lower than the previous one on the same
//                       connection
//   first_event_ns      send timestamp of the earliest event seen (from its data; the receive
//                       time of the first event when no event carried a timestamp)
//   first_recv_ns       receive time of the first event
//   last_event_ns       receive time of the last event
//   duration_s          last_event_ns - first_event_ns, in seconds ("time to last")
//   deliveries_per_s    events / duration_s
//   setup_s             time from start until ready
//   latency_us          {p50, p90, p99, p999, max, min, mean, samples, negative}: receive time of
//                       the read() that completed an event minus its timestamp, on the sampled
//                       connections; percentiles come from a log-linear histogram (< 1% error),
//                       max/min/mean are exact; "negative" counts timestamps from the future
//                       (a sign the server does not stamp with CLOCK_MONOTONIC)
//   head_bytes          bytes of the response heads (status line to the blank line)
//   wire_bytes          body bytes as read from the sockets after the heads (chunk framing
//                       included): what the server put on the wire for the streams
//   coded_bytes         body bytes after de-chunking, before decoding (the content-coded
//                       stream; equal to decoded_bytes for identity responses)
//   decoded_bytes       bytes the SSE parser got (after decoding)
//   cpu_s               this process's CPU time (user + system), setup included
//   cpu_after_ready_s   the same from ready to the end: the cost of reading, de-chunking,
//                       decoding and parsing what came after the setup
//   accept_encoding     the --accept-encoding value ("" without it)
//   encoded_connections connections whose response was gzip or deflate (decoded)
//   decode_errors       connections whose body failed to inflate, or had bytes after the end of
//                       the compressed stream (those connections count as lost)
//   chunked             true when the responses used transfer-encoding: chunked (all of them;
//                       chunked_connections tells how many did)
//   sources, sampled_connections, exit_reason ("expect" | "all_closed" | "duration" |
//                       "setup_timeout" | "no_connections" | "signal")
//
// Design.  One thread, one epoll instance (level-triggered), every socket non-blocking.  A
// window of at most --batch connections is in flight during setup; each one connects (with
// IP_BIND_ADDRESS_NO_PORT when a source address is bound, so the port is chosen per 4-tuple),
// writes its request once writable, and accumulates its response head.  After the head, body
// bytes go through two streaming state machines that keep all their state in the connection,
// so a chunk boundary, a CRLF or a timestamp may be split anywhere between reads:
//   1. the chunked decoder (hex size line with optional extensions, data, CRLF; a zero chunk
//      ends the body), skipped for raw bodies (which end at EOF or at content-length);
//   (with --accept-encoding and a gzip or deflate response, the de-chunked bytes go through the
//   connection's zlib inflate stream in between, its output into a second 64 KiB buffer);
//   2. the SSE parser (WHATWG "event stream interpretation": LF, CR and CRLF end lines, lines
//      starting with ':' are comments, "field:value" with one optional space after the colon,
//      data lines are joined with LF, a blank line dispatches when the data buffer is
//      non-empty).  The data buffer is not stored: only its first 24 bytes (plus the length of
//      --data-prefix) are kept, which is all we need to read the leading timestamp.
// Reads use one 64 KiB buffer; the clock is read once per read() call.  Latency samples go into
// a fixed-size histogram so memory stays constant however long the run.
//
// Build: cmake --preset bench && cmake --build --preset bench --target loadgen (bench/run.js does)

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace {

constexpr size_t kReadBuf = 64 * 1024;
constexpr size_t kMaxHead = 16 * 1024;
constexpr size_t kPrefixCap = 24;  // bytes of each event's data kept to read the timestamp
constexpr size_t kMaxDataPrefix = 40;  // --data-prefix; kept on top of kPrefixCap
constexpr uint32_t kMaxConnections = 10000;
constexpr size_t kMaxHeaders = 8;         // --header
constexpr size_t kMaxHeaderBytes = 1024;  // per --header line
// An inflate stream's memory (its state, about 7 KiB, and its 32 KiB window), taken from one
// block per connection that is allocated and touched when the response head arrives: zlib
// would allocate the window at the first decoded byte, and the page faults of 10k windows
// would then fall inside the measurement (in this VM they made the load generator the
// bottleneck of a burst).
constexpr size_t kZArena = 48 * 1024;

struct ZArena {
  char* base = nullptr;
  size_t used = 0;
};

voidpf arena_alloc(voidpf opaque, uInt items, uInt size) {
  ZArena* a = static_cast<ZArena*>(opaque);
  size_t n = (size_t(items) * size + 15) & ~size_t(15);
  if (a->used + n > kZArena) return Z_NULL;  // inflate fails with Z_MEM_ERROR: a decoding error
  voidpf p = a->base + a->used;
  a->used += n;
  return p;
}
void arena_free(voidpf, voidpf) {}  // the block goes with the connection

// This process's CPU time (user + system) so far, in seconds.
double cpu_s() {
  rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

volatile sig_atomic_t g_signalled = 0;
void on_signal(int) { g_signalled = 1; }

// ---------------------------------------------------------------------------------------------
// Options and the path template

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  uint32_t connections = 1000;
  std::string path = "/events";
  uint64_t expect = 0;
  double duration = 60;
  std::string ready_file;
  uint32_t sources = 0;  // 0 = automatic
  uint32_t sample = 1000;
  uint32_t batch = 256;
  uint32_t retries = 5;
  bool json = false;
  bool hold = false;  // --hold
  std::string data_prefix;  // --data-prefix
  std::string extra_headers;  // --header lines, each followed by CRLF
  size_t header_count = 0;
  std::string accept_encoding;  // --accept-encoding: "", "gzip" or "deflate"
};

// The request target is a list of literal pieces and placeholders, parsed once.
struct PathPiece {
  enum Kind { Literal, Index, Mod } kind;
  std::string text;  // Literal
  uint64_t k = 0;    // Mod
};

bool parse_template(const std::string& s, std::vector<PathPiece>& out, std::string& err) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t open = s.find('{', pos);
    if (open == std::string::npos) {
      out.push_back({PathPiece::Literal, s.substr(pos), 0});
      break;
    }
    if (open > pos) out.push_back({PathPiece::Literal, s.substr(pos, open - pos), 0});
    size_t close = s.find('}', open);
    if (close == std::string::npos) {
      err = "unterminated '{' in --path";
      return false;
    }
    std::string inner = s.substr(open + 1, close - open - 1);
    if (inner == "i") {
      out.push_back({PathPiece::Index, "", 0});
    } else if (inner.rfind("mod:", 0) == 0) {
      char* end = nullptr;
      errno = 0;
      unsigned long long k = strtoull(inner.c_str() + 4, &end, 10);
      if (errno || *end || k == 0 || inner.size() == 4) {
        err = "bad {mod:K} placeholder in --path: {" + inner + "}";
        return false;
      }
      out.push_back({PathPiece::Mod, "", k});
    } else {
      err = "unknown placeholder in --path: {" + inner + "}";
      return false;
    }
    pos = close + 1;
  }
  return true;
}

std::string expand_path(const std::vector<PathPiece>& pieces, uint64_t index) {
  std::string r;
  for (const PathPiece& p : pieces) {
    switch (p.kind) {
      case PathPiece::Literal: r += p.text; break;
      case PathPiece::Index: r += std::to_string(index); break;
      case PathPiece::Mod: r += std::to_string(index % p.k); break;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear buckets, 64 sub-buckets per power of two (relative error
// below 1/64 of the value, reported at the bucket's midpoint), exact below 128 ns.

class Histogram {
 public:
  static constexpr int kSubBits = 7;  // values below 2^7 are exact
  static constexpr int kHalf = 1 << (kSubBits - 1);
  static constexpr int kBuckets = (64 - kSubBits + 2) * kHalf;

  void add(uint64_t v) {
    ++counts_[bucket_of(v)];
    ++total_;
    sum_ += double(v);
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }
  uint64_t count() const { return total_; }
  uint64_t max() const { return total_ ? max_ : 0; }
  uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? sum_ / double(total_) : 0; }

  // The value below which a fraction q of the samples lie (midpoint of that bucket, clamped
  // to the exact extremes).
  double quantile(double q) const {
    if (!total_) return 0;
    uint64_t rank = uint64_t(q * double(total_));
    if (rank >= total_) rank = total_ - 1;
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen > rank) {
        double lo, hi;
        bounds_of(b, lo, hi);
        double mid = (lo + hi) / 2;
        return std::clamp(mid, double(min_), double(max_));
      }
    }
    return double(max_);
  }

 private:
  static int bucket_of(uint64_t v) {
    if (v < (1u << kSubBits)) return int(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - kSubBits + 1;
    uint64_t top = v >> shift;  // in [kHalf, 2 * kHalf)
    return (msb - kSubBits + 2) * kHalf + int(top - kHalf);
  }
  static void bounds_of(int b, double& lo, double& hi) {
    if (b < (1 << kSubBits)) {
      lo = hi = b;
      return;
    }
    int group = b / kHalf;  // = msb - kSubBits + 2
    int shift = group - 1;
    uint64_t top = uint64_t(kHalf + b % kHalf);
    lo = double(top << shift);
    hi = double(((top + 1) << shift) - 1);
  }

  uint64_t counts_[kBuckets] = {};
  uint64_t total_ = 0;
  double sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

// ---------------------------------------------------------------------------------------------
// Per-connection state

enum class State : uint8_t {
  Idle,        // not started yet
  Connecting,  // connect() in progress
  Sending,     // request partly written
  Head,        // waiting for the complete response head
  Stream,      // reading the body
  Retry,       // failed before the head, waiting to try again
  Failed,      // gave up before the head
  Closed,      // had a head, the stream is over (complete or lost)
};

enum class Chunk : uint8_t { Size, Ext, SizeLf, Data, DataCr, DataLf, Done };
enum class Line : uint8_t { Start, Name, ValueStart, Value, Comment };

struct Conn {
  int fd = -1;
  State state = State::Idle;
  uint8_t attempts = 0;
  bool sampled = false;
  bool chunked = false;
  bool complete = false;
  bool lost = false;
  bool has_length = false;   // raw body with content-length
  uint64_t body_left = 0;    // bytes of content-length still to come
  uint64_t retry_at = 0;
  uint64_t begin_ns = 0;     // first connect attempt (catch_up_us)
  std::string out;           // request bytes not written yet (Sending)
  std::string head;          // response head collected so far (Head)

  // chunked decoder
  Chunk cs = Chunk::Size;
  bool size_digits = false;
  uint64_t chunk_left = 0;

  // SSE parser
  Line ls = Line::Start;
  bool pending_cr = false;   // the previous byte was CR: a following LF belongs to it
  uint8_t bom_pos = 0;       // bytes of a leading UTF-8 BOM consumed (3 = done)
  bool is_data = false;      // the current line's field is "data"
  bool has_data = false;     // the event's data buffer is non-empty
  uint8_t name_len = 0;      // 0xff = longer than the buffer
  uint8_t prefix_len = 0;
  char name[8];
  char prefix[kPrefixCap + kMaxDataPrefix];

  uint64_t events = 0;
  uint64_t last_ts = 0;

  // --accept-encoding: the connection's inflate stream (a gzip or deflate response only),
  // freed with the socket; z_end: the compressed stream ended (nothing may follow).
  z_stream* z = nullptr;
  bool z_end = false;
  ZArena zmem;
};

// ---------------------------------------------------------------------------------------------
// The load generator

class LoadGen {
 public:
  explicit LoadGen(const Options& o) : opt_(o), conns_(o.connections) {}
  ~LoadGen() {
    for (Conn& c : conns_) close_fd(c);
    if (ep_ >= 0) close(ep_);
    free(buf_);
    free(zbuf_);
  }
  LoadGen(const LoadGen&) = delete;
  LoadGen& operator=(const LoadGen&) = delete;
  int run();

 private:
  // setup
  bool init(std::string& err);
  void start_connect(uint32_t i);
  void on_connect_ready(uint32_t i);
  void send_request(uint32_t i);
  void fail_before_head(uint32_t i, bool retryable);
  void process_retries();
  bool parse_head(uint32_t i, size_t& body_off);

  // streaming
  void on_readable(uint32_t i);
  bool feed_body(Conn& c, const char* p, size_t n, uint64_t t);  // false: body over or error
  bool feed_coded(Conn& c, const char* p, size_t n, uint64_t t);  // false: decoding error
  void feed_sse(Conn& c, const char* p, size_t n, uint64_t t);
  void dispatch(Conn& c, uint64_t t);
  void end_stream(uint32_t i);
  void close_fd(Conn& c);

  void maybe_ready();
  void report(const char* reason);

  Options opt_;
  std::vector<Conn> conns_;
  std::vector<PathPiece> path_;
  sockaddr_in dst_{};
  int ep_ = -1;
  uint32_t sources_ = 1;
  char* buf_ = nullptr;
  char* zbuf_ = nullptr;  // inflate output (--accept-encoding)

  // progress
  uint32_t next_ = 0;      // next connection index to start
  uint32_t inflight_ = 0;  // connections in Connecting/Sending/Head/Retry
  std::vector<uint32_t> retry_list_;
  bool ready_ = false;
  bool met_ = false;  // --hold: the expectation was met, waiting for a signal
  uint64_t t_start_ = 0, t_ready_ = 0, deadline_ = 0;
  double cpu_ready_ = 0;  // cpu_s() when ready

  // counters
  uint32_t connected_ = 0, failed_ = 0, http_errors_ = 0, lost_ = 0, protocol_errors_ = 0;
  uint32_t complete_ = 0, chunked_ = 0, finished_ = 0, sampled_ = 0;  // finished: complete/failed/lost
  uint64_t retries_ = 0, events_ = 0, untimed_ = 0, order_violations_ = 0, negative_ = 0;
  uint64_t skipped_ = 0;
  uint64_t head_bytes_ = 0, wire_bytes_ = 0, coded_bytes_ = 0, decoded_bytes_ = 0;
  uint32_t encoded_ = 0, decode_errors_ = 0;
  size_t prefix_cap_ = kPrefixCap;  // bytes of data kept: kPrefixCap + the --data-prefix length
  uint64_t min_ts_ = UINT64_MAX, first_recv_ = 0, last_recv_ = 0;
  uint64_t last_complete_ = 0;  // time the last connection reached --expect
  Histogram hist_;
  Histogram catch_up_;  // per connection: first connect attempt to its E-th event
};

bool LoadGen::init(std::string& err) {
  if (!parse_template(opt_.path, path_, err)) return false;
  prefix_cap_ = kPrefixCap + opt_.data_prefix.size();
  dst_.sin_family = AF_INET;
  dst_.sin_port = htons(uint16_t(opt_.port));
  if (inet_pton(AF_INET, opt_.host.c_str(), &dst_.sin_addr) != 1) {
    err = "--host must be an IPv4 address";
    return false;
  }
  if ((ntohl(dst_.sin_addr.s_addr) >> 24) != 127) {
    err = "--host must be a loopback address (127.0.0.0/8)";
    return false;
  }
  sources_ = opt_.sources ? opt_.sources : (opt_.connections + 19999) / 20000;
  if (sources_ < 1) sources_ = 1;

  // As many files as we may have; the hard limit is 20000 on the bench machines.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < rlim_t(opt_.connections) + 16) {
    err = "RLIMIT_NOFILE (" + std::to_string(rl.rlim_cur) + ") is too low for " +
          std::to_string(opt_.connections) + " connections";
    return false;
  }

  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) {
    err = std::string("epoll_create1: ") + strerror(errno);
    return false;
  }
  buf_ = static_cast<char*>(malloc(kReadBuf));
  if (!opt_.accept_encoding.empty()) zbuf_ = static_cast<char*>(malloc(kReadBuf));

  // Sample K connections spread evenly: i is sampled when i*K mod N < K.
  uint64_t n = opt_.connections, k = std::min<uint64_t>(opt_.sample, n);
  for (uint64_t i = 0; i < n; ++i) {
    conns_[i].sampled = (i * k) % n < k;
    sampled_ += conns_[i].sampled;
  }
  return true;
}

void LoadGen::close_fd(Conn& c) {
  if (c.fd >= 0) {
    close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
  }
  if (c.z) {
    inflateEnd(c.z);
    delete c.z;
    c.z = nullptr;
  }
  free(c.zmem.base);
  c.zmem = ZArena{};
}

void LoadGen::start_connect(uint32_t i) {
  Conn& c = conns_[i];
  ++c.attempts;
  if (!c.begin_ns) c.begin_ns = now_ns();
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
    fail_before_head(i, errno != EMFILE && errno != ENFILE);
    return;
  }
  if (sources_ > 1) {
    int one = 1;
    setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (1u + i % sources_));
    if (bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      fprintf(stderr, "loadgen: bind: %s\n", strerror(errno));
      fail_before_head(i, true);
      return;
    }
  }
  int r = connect(c.fd, reinterpret_cast<sockaddr*>(&dst_), sizeof dst_);
  if (r != 0 && errno != EINPROGRESS) {
    fail_before_head(i, true);
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
  ev.data.u32 = i;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
    fprintf(stderr, "loadgen: epoll_ctl: %s\n", strerror(errno));
    fail_before_head(i, false);
    return;
  }
  c.state = State::Connecting;
  if (r == 0) on_connect_ready(i);
}

void LoadGen::on_connect_ready(uint32_t i) {
  Conn& c = conns_[i];
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
    fail_before_head(i, true);
    return;
  }
  std::string target = expand_path(path_, i);
  c.out = "GET " + target + " HTTP/1.1\r\nHost: " + opt_.host + ":" + std::to_string(opt_.port) +
          "\r\nAccept: text/event-stream\r\n" +
          (opt_.accept_encoding.empty() ? ""
                                        : "Accept-Encoding: " + opt_.accept_encoding + "\r\n") +
          opt_.extra_headers + "\r\n";
  c.state = State::Sending;
  send_request(i);
}

void LoadGen::send_request(uint32_t i) {
  Conn& c = conns_[i];
  while (!c.out.empty()) {
    ssize_t w = write(c.fd, c.out.data(), c.out.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;  // EPOLLOUT is still armed
      fail_before_head(i, true);
      return;
    }
    c.out.erase(0, size_t(w));
  }
  c.out.clear();
  c.out.shrink_to_fit();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u32 = i;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  c.state = State::Head;
}

// A connection failed before its response head: try again later, or give up.
void LoadGen::fail_before_head(uint32_t i, bool retryable) {
  Conn& c = conns_[i];
  close_fd(c);
  c.out.clear();
  c.head.clear();
  if (retryable && c.attempts <= opt_.retries) {
    c.state = State::Retry;
    c.retry_at = now_ns() + 50000000ull * c.attempts;  // 50 ms, 100 ms, ...
    retry_list_.push_back(i);
    ++retries_;
    return;
  }
  c.state = State::Failed;
  ++failed_;
  ++finished_;
  --inflight_;
}

void LoadGen::process_retries() {
  if (retry_list_.empty()) return;
  uint64_t t = now_ns();
  std::vector<uint32_t> due;
  auto keep = std::remove_if(retry_list_.begin(), retry_list_.end(), [&](uint32_t i) {
    if (conns_[i].retry_at <= t) {
      due.push_back(i);
      return true;
    }
    return false;
  });
  retry_list_.erase(keep, retry_list_.end());
  for (uint32_t i : due) start_connect(i);
}

// Looks for the end of the response head; when complete, checks it and sets body_off to the
// first body byte in c.head.  Returns false while the head is incomplete; sets c.state to
// Stream on success or calls fail_before_head on a bad head.
bool LoadGen::parse_head(uint32_t i, size_t& body_off) {
  Conn& c = conns_[i];
  size_t end = c.head.find("\r\n\r\n");
  size_t sep = 4;
  size_t lf = c.head.find("\n\n");  // tolerate bare-LF heads
  if (lf != std::string::npos && (end == std::string::npos || lf < end)) {
    end = lf;
    sep = 2;
  }
  if (end == std::string::npos) {
    if (c.head.size() > kMaxHead) {
      ++protocol_errors_;
      fail_before_head(i, false);
    }
    return false;
  }
  body_off = end + sep;
  std::string h = c.head.substr(0, end);
  for (char& ch : h) ch = char(tolower(static_cast<unsigned char>(ch)));

  // Status line: HTTP/1.x SP 3DIGIT
  if (h.size() < 12 || h.compare(0, 7, "http/1.") != 0 || h[8] != ' ') {
    ++protocol_errors_;
    fail_before_head(i, false);
    return false;
  }
  int status = atoi(h.c_str() + 9);
  if (status != 200) {
    ++http_errors_;
    if (http_errors_ <= 3)
      fprintf(stderr, "loadgen: connection %u got status %d\n", i, status);
    fail_before_head(i, false);
    return false;
  }
  // Headers we care about.
  std::string coding;  // content-encoding (read with --accept-encoding only)
  size_t pos = h.find('\n');
  while (pos != std::string::npos && pos < h.size()) {
    size_t next = h.find('\n', pos + 1);
    std::string line = h.substr(pos + 1, (next == std::string::npos ? h.size() : next) - pos - 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      if (name == "transfer-encoding" && value.find("chunked") != std::string::npos) c.chunked = true;
      if (name == "content-encoding") {
        size_t a = value.find_first_not_of(" \t"), b = value.find_last_not_of(" \t");
        coding = a == std::string::npos ? "" : value.substr(a, b - a + 1);
      }
      if (name == "content-length") {
        c.has_length = true;
        c.body_left = strtoull(value.c_str(), nullptr, 10);
      }
    }
    pos = next;
  }
  if (c.chunked) c.has_length = false;  // chunked wins over content-length (RFC 9112 6.3)
  if (!opt_.accept_encoding.empty() && !coding.empty() && coding != "identity") {
    int bits = coding == "gzip" || coding == "x-gzip" ? 31 : coding == "deflate" ? 15 : 0;
    if (!bits) {
      ++protocol_errors_;
      if (protocol_errors_ <= 3)
        fprintf(stderr, "loadgen: unexpected content-encoding %s\n", coding.c_str());
      fail_before_head(i, false);
      return false;
    }
    c.zmem.base = static_cast<char*>(malloc(kZArena));
    if (c.zmem.base) memset(c.zmem.base, 0, kZArena);  // touched now, not during the burst
    c.z = new z_stream{};
    c.z->zalloc = arena_alloc;
    c.z->zfree = arena_free;
    c.z->opaque = &c.zmem;
    if (!c.zmem.base || inflateInit2(c.z, bits) != Z_OK) {
      delete c.z;
      c.z = nullptr;
      fprintf(stderr, "loadgen: inflateInit2 failed\n");
      fail_before_head(i, false);
      return false;
    }
    ++encoded_;
  }
  head_bytes_ += body_off;
  c.state = State::Stream;
  ++connected_;
  chunked_ += c.chunked;
  --inflight_;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Body decoding

void LoadGen::dispatch(Conn& c, uint64_t t) {
  // Blank line: dispatch when the data buffer is non-empty, then reset it either way.
  if (!c.has_data) {
    c.prefix_len = 0;
    return;
  }
  const size_t skip = opt_.data_prefix.size();
  if (skip && (c.prefix_len < skip || memcmp(c.prefix, opt_.data_prefix.data(), skip) != 0)) {
    ++skipped_;  // not an event we measure (e.g. PocketBase's PB_CONNECT)
    c.has_data = false;
    c.prefix_len = 0;
    return;
  }
  ++c.events;
  ++events_;
  if (!first_recv_) first_recv_ = t;
  last_recv_ = t;

  // Leading decimal timestamp, ended by a space, LF (line join or the final LF) or the end
  // of the data.  The kept prefix ends with the data buffer's LF when the data is short.
  // With --data-prefix the digits start after it and may end at any non-digit.
  uint64_t ts = 0;
  size_t k = skip;
  bool ok = false;
  while (k < c.prefix_len && c.prefix[k] >= '0' && c.prefix[k] <= '9' && k - skip < 20) {
    ts = ts * 10 + uint64_t(c.prefix[k] - '0');
    ++k;
  }
  if (k > skip && k - skip < 20 &&
      (skip || k == c.prefix_len || c.prefix[k] == ' ' || c.prefix[k] == '\n'))
    ok = k < c.prefix_len || c.prefix_len < prefix_cap_;
  if (!ok) {
    ++untimed_;
  } else {
    if (ts < c.last_ts) ++order_violations_;
    c.last_ts = ts;
    if (ts < min_ts_) min_ts_ = ts;
    if (c.sampled) {
      if (t >= ts)
        hist_.add(t - ts);
      else
        ++negative_;
    }
  }
  c.has_data = false;
  c.prefix_len = 0;
  if (opt_.expect && !c.complete && c.events >= opt_.expect) {
    c.complete = true;
    ++complete_;
    ++finished_;
    last_complete_ = t;
    catch_up_.add(t - c.begin_ns);
  }
}

// The SSE line parser.  All state lives in the connection, so input may be split anywhere.
void LoadGen::feed_sse(Conn& c, const char* p, size_t n, uint64_t t) {
  const char* end = p + n;
  static const unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};
  while (c.bom_pos < 3 && p < end) {
    if (static_cast<unsigned char>(*p) == kBom[c.bom_pos]) {
      ++c.bom_pos;
      ++p;
    } else {
      c.bom_pos = 3;
    }
  }
  while (p < end) {
    char ch = *p;
    if (c.pending_cr) {  // CRLF counts as one line end
      c.pending_cr = false;
      if (ch == '\n') {
        ++p;
        continue;
      }
    }
    switch (c.ls) {
      case Line::Start:
        if (ch == '\r' || ch == '\n') {  // blank line
          c.pending_cr = ch == '\r';
          ++p;
          dispatch(c, t);
          continue;
        }
        if (ch == ':') {
          c.ls = Line::Comment;
          ++p;
          continue;
        }
        c.ls = Line::Name;
        c.name_len = 0;
        [[fallthrough]];
      case Line::Name:
        if (ch == ':') {
          c.is_data = c.name_len == 4 && memcmp(c.name, "data", 4) == 0;
          c.ls = Line::ValueStart;
          ++p;
          continue;
        }
        if (ch == '\r' || ch == '\n') {
          // A line without a colon: the whole line is the field name, the value is empty.
          if (c.name_len == 4 && memcmp(c.name, "data", 4) == 0) {
            c.has_data = true;
            if (c.prefix_len < prefix_cap_) c.prefix[c.prefix_len++] = '\n';
          }
          c.pending_cr = ch == '\r';
          c.ls = Line::Start;
          ++p;
          continue;
        }
        if (c.name_len < sizeof c.name)
          c.name[c.name_len++] = ch;
        else
          c.name_len = 0xff;  // too long to be a field we care about
        ++p;
        continue;
      case Line::ValueStart:
        c.ls = Line::Value;
        if (ch == ' ') {  // one leading space is not part of the value
          ++p;
          continue;
        }
        [[fallthrough]];
      case Line::Value:
      case Line::Comment: {
        // Bulk scan to the end of the line.
        const char* q = p;
        while (q < end && *q != '\n' && *q != '\r') ++q;
        if (c.ls == Line::Value && c.is_data && c.prefix_len < prefix_cap_) {
          size_t take = std::min<size_t>(size_t(q - p), prefix_cap_ - c.prefix_len);
          memcpy(c.prefix + c.prefix_len, p, take);
          c.prefix_len = uint8_t(c.prefix_len + take);
        }
        p = q;
        if (p == end) break;
        // Line end: a data line appends LF to the data buffer.
        if (c.ls == Line::Value && c.is_data) {
          c.has_data = true;
          if (c.prefix_len < prefix_cap_) c.prefix[c.prefix_len++] = '\n';
        }
        c.pending_cr = *p == '\r';
        c.ls = Line::Start;
        ++p;
        continue;
      }
    }
  }
}

// Feeds body bytes through the chunked decoder (or the content-length limit) into the SSE
// parser.  Returns false when the body is over (zero chunk, content-length reached) or the
// chunk framing is broken.
// De-chunked body bytes: through the connection's inflate stream when it has one, into the
// SSE parser.  Returns false on a decoding error (counted in decode_errors).
bool LoadGen::feed_coded(Conn& c, const char* p, size_t n, uint64_t t) {
  coded_bytes_ += n;
  if (!c.z && !c.z_end) {
    decoded_bytes_ += n;
    feed_sse(c, p, n, t);
    return true;
  }
  if (n == 0) return true;
  if (c.z_end) goto bad;  // bytes after the end of the compressed stream
  c.z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
  c.z->avail_in = uInt(n);
  for (;;) {
    c.z->next_out = reinterpret_cast<Bytef*>(zbuf_);
    c.z->avail_out = uInt(kReadBuf);
    int r = inflate(c.z, Z_NO_FLUSH);
    size_t got = kReadBuf - c.z->avail_out;
    if (got) {
      decoded_bytes_ += got;
      feed_sse(c, zbuf_, got, t);
    }
    if (r == Z_STREAM_END) {
      bool trailing = c.z->avail_in > 0;
      inflateEnd(c.z);
      delete c.z;
      c.z = nullptr;
      c.z_end = true;
      if (trailing) goto bad;
      return true;
    }
    if (r != Z_OK && r != Z_BUF_ERROR) goto bad;
    // Done once the input is used up and the output buffer was not filled (nothing held back).
    if (c.z->avail_in == 0 && c.z->avail_out > 0) return true;
    if (r == Z_BUF_ERROR && got == 0) return true;  // no progress possible: needs more input
  }
bad:
  ++decode_errors_;
  if (decode_errors_ <= 3) fprintf(stderr, "loadgen: cannot decode a response body\n");
  return false;
}

bool LoadGen::feed_body(Conn& c, const char* p, size_t n, uint64_t t) {
  if (!c.chunked) {
    if (!c.has_length) return feed_coded(c, p, n, t);
    size_t take = size_t(std::min<uint64_t>(n, c.body_left));
    if (!feed_coded(c, p, take, t)) return false;
    c.body_left -= take;
    return c.body_left > 0;
  }
  const char* end = p + n;
  while (p < end) {
    char ch = *p;
    switch (c.cs) {
      case Chunk::Size: {
        int v = -1;
        if (ch >= '0' && ch <= '9') v = ch - '0';
        else if (ch >= 'a' && ch <= 'f') v = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') v = ch - 'A' + 10;
        if (v >= 0) {
          if (c.chunk_left >> 56) goto bad;  // absurd size
          c.chunk_left = c.chunk_left * 16 + uint64_t(v);
          c.size_digits = true;
          ++p;
          continue;
        }
        if (!c.size_digits) goto bad;
        if (ch == ';' || ch == ' ' || ch == '\t') {
          c.cs = Chunk::Ext;
          ++p;
          continue;
        }
        if (ch == '\r') {
          c.cs = Chunk::SizeLf;
          ++p;
          continue;
        }
        if (ch == '\n') goto size_line_done;
        goto bad;
      }
      case Chunk::Ext:  // chunk extensions are ignored up to the end of the line
        ++p;
        if (ch == '\n') goto size_line_done_consumed;
        continue;
      case Chunk::SizeLf:
        if (ch != '\n') goto bad;
        goto size_line_done;
      case Chunk::Data: {
        size_t take = size_t(std::min<uint64_t>(c.chunk_left, uint64_t(end - p)));
        if (!feed_coded(c, p, take, t)) return false;
        p += take;
        c.chunk_left -= take;
        if (c.chunk_left == 0) c.cs = Chunk::DataCr;
        continue;
      }
      case Chunk::DataCr:
        if (ch == '\r') {
          c.cs = Chunk::DataLf;
          ++p;
          continue;
        }
        if (ch != '\n') goto bad;
        [[fallthrough]];
      case Chunk::DataLf:
        if (ch != '\n') goto bad;
        ++p;
        c.cs = Chunk::Size;
        c.size_digits = false;
        c.chunk_left = 0;
        continue;
      case Chunk::Done:
        return false;
    }
    continue;
  size_line_done:
    ++p;
  size_line_done_consumed:
    if (c.chunk_left == 0) {  // last chunk: the body is over (trailers are not needed)
      c.cs = Chunk::Done;
      return false;
    }
    c.cs = Chunk::Data;
  }
  return true;
bad:
  ++protocol_errors_;
  if (protocol_errors_ <= 3) fprintf(stderr, "loadgen: broken chunk framing\n");
  return false;
}

// The stream of a connection that had its head is over (EOF, error, end of body).
void LoadGen::end_stream(uint32_t i) {
  Conn& c = conns_[i];
  close_fd(c);
  c.state = State::Closed;
  if (!c.complete) {
    c.lost = true;
    ++lost_;
    ++finished_;
  }
}

void LoadGen::on_readable(uint32_t i) {
  Conn& c = conns_[i];
  // Large reads; keep reading while the buffer comes back full (bounded, to stay fair).
  for (int round = 0; round < 4 && c.fd >= 0; ++round) {
    ssize_t r = read(c.fd, buf_, kReadBuf);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
    }
    if (r <= 0) {  // EOF or error
      if (c.state == State::Stream)
        end_stream(i);
      else
        fail_before_head(i, true);
      return;
    }
    uint64_t t = now_ns();
    const char* data = buf_;
    size_t n = size_t(r);
    if (c.state == State::Head) {
      size_t old = c.head.size();
      c.head.append(buf_, n);
      size_t body_off = 0;
      if (!parse_head(i, body_off)) return;
      data = c.head.data() + body_off;
      n = c.head.size() - body_off;
      wire_bytes_ += n;
      (void)old;
      if (!feed_body(c, data, n, t)) {
        c.head.clear();
        end_stream(i);
        return;
      }
      c.head.clear();
      c.head.shrink_to_fit();
    } else if (c.state == State::Stream) {
      wire_bytes_ += n;
      if (!feed_body(c, data, n, t)) {
        end_stream(i);
        return;
      }
    }
    if (size_t(r) < kReadBuf) return;
  }
}

void LoadGen::maybe_ready() {
  if (ready_ || next_ < opt_.connections || inflight_ > 0) return;
  ready_ = true;
  t_ready_ = now_ns();
  cpu_ready_ = cpu_s();
  if (!opt_.ready_file.empty()) {
    std::string tmp = opt_.ready_file + ".tmp";
    FILE* f = fopen(tmp.c_str(), "w");
    if (f) {
      fprintf(f, "ready %u\n", connected_);
      fclose(f);
      if (rename(tmp.c_str(), opt_.ready_file.c_str()) != 0)
        fprintf(stderr, "loadgen: rename %s: %s\n", tmp.c_str(), strerror(errno));
    } else {
      fprintf(stderr, "loadgen: cannot write %s: %s\n", tmp.c_str(), strerror(errno));
    }
  }
  fprintf(stderr, "READY %u\n", connected_);
}

int LoadGen::run() {
  std::string err;
  if (!init(err)) {
    fprintf(stderr, "loadgen: %s\n", err.c_str());
    return 2;
  }
  t_start_ = now_ns();
  deadline_ = t_start_ + uint64_t(opt_.duration * 1e9);
  const uint32_t n = opt_.connections;
  std::vector<epoll_event> evs(1024);
  const char* reason = nullptr;

  while (!reason) {
    // Keep the connect window full.
    while (next_ < n && inflight_ < opt_.batch) {
      ++inflight_;
      start_connect(next_++);
    }
    process_retries();
    maybe_ready();
    if (ready_ && finished_ >= n && !met_) {
      const char* r = (opt_.expect && complete_ == connected_ && lost_ == 0) ? "expect" : "all_closed";
      if (connected_ == 0) r = "no_connections";
      if (!opt_.hold || strcmp(r, "expect") != 0) {
        reason = r;
        break;
      }
      // --hold: say so, keep the connections open (and counting) until a signal.
      met_ = true;
      fprintf(stderr, "DONE %u\n", complete_);
    }

    uint64_t t = now_ns();
    if (t >= deadline_) {
      reason = met_ ? "expect" : ready_ ? "duration" : "setup_timeout";
      break;
    }
    if (g_signalled) {
      reason = met_ ? "expect" : "signal";
      break;
    }
    uint64_t wait_ms = std::min<uint64_t>((deadline_ - t) / 1000000 + 1, 50);
    int k = epoll_wait(ep_, evs.data(), int(evs.size()), int(wait_ms));
    if (k < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
      reason = "signal";
      break;
    }
    for (int e = 0; e < k; ++e) {
      uint32_t i = evs[e].data.u32;
      Conn& c = conns_[i];
      if (c.fd < 0) continue;  // closed earlier in this batch
      uint32_t f = evs[e].events;
      switch (c.state) {
        case State::Connecting:
          if (f & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connect_ready(i);
          break;
        case State::Sending:
          if (f & (EPOLLERR | EPOLLHUP))
            fail_before_head(i, true);
          else if (f & EPOLLOUT)
            send_request(i);
          break;
        case State::Head:
        case State::Stream:
          // Read even on HUP/ERR/RDHUP: pending data first, then the read reports EOF/error.
          on_readable(i);
          break;
        default:
          break;
      }
    }
  }
  report(reason);
  if (!strcmp(reason, "signal")) return 3;
  if (!strcmp(reason, "setup_timeout") || !strcmp(reason, "no_connections")) return 2;
  return 0;
}

void LoadGen::report(const char* reason) {
  double setup_s = ready_ ? double(t_ready_ - t_start_) / 1e9 : double(now_ns() - t_start_) / 1e9;
  uint64_t first = min_ts_ != UINT64_MAX ? min_ts_ : first_recv_;
  double duration_s = (events_ && last_recv_ > first) ? double(last_recv_ - first) / 1e9 : 0;
  double rate = duration_s > 0 ? double(events_) / duration_s : 0;
  uint64_t expected_total = opt_.expect * opt_.connections;
  bool chunked = connected_ > 0 && chunked_ == connected_;
  bool caught_up = opt_.expect && connected_ > 0 && complete_ == connected_;
  double caught_up_s = caught_up ? double(last_complete_ - t_start_) / 1e9 : 0;
  auto us = [](double ns) { return ns / 1000.0; };
  const double cpu_end = cpu_s();
  if (opt_.json) {
    printf(
        "{\"connections\":%u,\"connected\":%u,\"failed_connects\":%u,\"http_errors\":%u,"
        "\"connect_retries\":%llu,\"lost\":%u,\"protocol_errors\":%u,\"events\":%llu,"
        "\"untimed_events\":%llu,\"skipped_events\":%llu,\"expected_total\":%llu,"
        "\"complete_connections\":%u,\"caught_up_s\":%.6f,"
        "\"catch_up_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
        "\"in_order_violations\":%llu,\"first_event_ns\":%llu,\"first_recv_ns\":%llu,"
        "\"last_event_ns\":%llu,\"duration_s\":%.6f,\"deliveries_per_s\":%.0f,\"setup_s\":%.3f,"
        "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
        "\"min\":%.1f,\"mean\":%.1f,\"samples\":%llu,\"negative\":%llu},"
        "\"cpu_s\":%.6f,\"cpu_after_ready_s\":%.6f,\"head_bytes\":%llu,\"wire_bytes\":%llu,"
        "\"coded_bytes\":%llu,\"decoded_bytes\":%llu,"
        "\"accept_encoding\":\"%s\",\"encoded_connections\":%u,\"decode_errors\":%u,"
        "\"chunked\":%s,\"chunked_connections\":%u,\"sources\":%u,\"sampled_connections\":%u,"
        "\"exit_reason\":\"%s\"}\n",
        opt_.connections, connected_, failed_, http_errors_, (unsigned long long)retries_, lost_,
        protocol_errors_, (unsigned long long)events_, (unsigned long long)untimed_,
        (unsigned long long)skipped_, (unsigned long long)expected_total, complete_, caught_up_s,
        us(catch_up_.quantile(0.50)), us(catch_up_.quantile(0.99)), us(double(catch_up_.max())),
        (unsigned long long)order_violations_,
        (unsigned long long)first, (unsigned long long)first_recv_,
        (unsigned long long)last_recv_, duration_s, rate, setup_s, us(hist_.quantile(0.50)),
        us(hist_.quantile(0.90)), us(hist_.quantile(0.99)), us(hist_.quantile(0.999)),
        us(double(hist_.max())), us(double(hist_.min())), us(hist_.mean()),
        (unsigned long long)hist_.count(), (unsigned long long)negative_,
        cpu_end, ready_ ? cpu_end - cpu_ready_ : 0.0,
        (unsigned long long)head_bytes_, (unsigned long long)wire_bytes_,
        (unsigned long long)coded_bytes_, (unsigned long long)decoded_bytes_,
        opt_.accept_encoding.c_str(), encoded_, decode_errors_,
        chunked ? "true" : "false", chunked_, sources_, sampled_, reason);
  } else {
    printf("end: %s after setup %.3f s\n", reason, setup_s);
    printf("connections: %u requested, %u connected, %u failed (%u http errors, %llu retries), "
           "%u lost, %u protocol errors, %u chunked\n",
           opt_.connections, connected_, failed_, http_errors_, (unsigned long long)retries_,
           lost_, protocol_errors_, chunked_);
    printf("events: %llu (%llu untimed, %llu skipped) of %llu expected, %u connections complete, "
           "%llu out of order\n",
           (unsigned long long)events_, (unsigned long long)untimed_, (unsigned long long)skipped_,
           (unsigned long long)expected_total, complete_, (unsigned long long)order_violations_);
    printf("first send to last receive: %.6f s, %.0f deliveries/s\n", duration_s, rate);
    printf("cpu: %.3f s, %.3f s after ready\n", cpu_end, ready_ ? cpu_end - cpu_ready_ : 0.0);
    printf("bytes: %llu of heads, %llu on the wire, %llu de-chunked, %llu decoded; %u encoded "
           "connections (%s), %u decoding errors\n",
           (unsigned long long)head_bytes_, (unsigned long long)wire_bytes_,
           (unsigned long long)coded_bytes_, (unsigned long long)decoded_bytes_, encoded_,
           opt_.accept_encoding.empty() ? "not asked" : opt_.accept_encoding.c_str(),
           decode_errors_);
    if (opt_.expect)
      printf("caught up (start to the last connection's event %llu): %.6f s; per connection (ms): "
             "p50 %.3f  p99 %.3f  max %.3f\n",
             (unsigned long long)opt_.expect, caught_up_s, catch_up_.quantile(0.50) / 1e6,
             catch_up_.quantile(0.99) / 1e6, double(catch_up_.max()) / 1e6);
    printf("latency (us, %llu samples on %u connections): p50 %.1f  p90 %.1f  p99 %.1f  "
           "p99.9 %.1f  max %.1f  mean %.1f  (%llu negative)\n",
           (unsigned long long)hist_.count(), sampled_, us(hist_.quantile(0.50)),
           us(hist_.quantile(0.90)), us(hist_.quantile(0.99)), us(hist_.quantile(0.999)),
           us(double(hist_.max())), us(hist_.mean()), (unsigned long long)negative_);
  }
  fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// Command line

void usage(FILE* f) {
  fputs(
      "usage: loadgen --port P [--host 127.0.0.1] [--connections N] [--path PATH]\n"
      "               [--expect E] [--duration S] [--ready-file PATH] [--sources K]\n"
      "               [--sample K] [--batch B] [--retries R] [--data-prefix STR]\n"
      "               [--header 'Name: value']... [--accept-encoding gzip|deflate]\n"
      "               [--hold] [--json]\n"
      "\n"
      "Opens N Server-Sent Events connections to a loopback server, counts and decodes every\n"
      "event (chunked or raw bodies, WHATWG SSE grammar), and measures latency from the\n"
      "CLOCK_MONOTONIC nanosecond timestamp that starts each event's data.\n"
      "\n"
      "  --host ADDR        server address in 127.0.0.0/8 (default 127.0.0.1)\n"
      "  --port P           server port (required)\n"
      "  --connections N    1..10000 connections (default 1000)\n"
      "  --path PATH        request target (default /events); {i} = connection index,\n"
      "                     {mod:K} = index modulo K, e.g. '/events?topics=t{mod:1000}'\n"
      "  --expect E         stop when every connection has received E events (0 = none);\n"
      "                     caught_up_s is then the time from the start to the last one\n"
      "  --duration S       limit for the whole run, setup included, in seconds (default 60)\n"
      "  --ready-file PATH  write \"ready <connected>\" there once all connections are set up\n"
      "                     (\"READY <connected>\" is printed on stderr too)\n"
      "  --sources K        spread connections over source addresses 127.0.0.1..127.0.0.K\n"
      "                     (default: 1 per 20000 connections)\n"
      "  --sample K         connections whose latency is recorded (default 1000)\n"
      "  --batch B          connections in flight during setup (default 256)\n"
      "  --retries R        retries of a failed connect (default 5)\n"
      "  --data-prefix STR  the timestamp follows STR at the start of the data (ends at any\n"
      "                     non-digit); events without STR count as skipped_events only\n"
      "  --header H         add the request header line H, \"Name: value\" (repeatable, at\n"
      "                     most 8), e.g. 'Last-Event-ID: k3J9aQ2x-42' to resume\n"
      "  --accept-encoding C  send \"Accept-Encoding: C\" (gzip or deflate) and inflate gzip and\n"
      "                     deflate responses per connection before the SSE parser; wire_bytes,\n"
      "                     coded_bytes and decoded_bytes count before and after\n"
      "  --hold             with --expect: when it is met, print \"DONE <complete>\" on stderr\n"
      "                     and keep the connections open until a signal or --duration\n"
      "  --json             print one JSON object on stdout at the end\n"
      "\n"
      "Exit: 0 run ended (expectation met or duration over), 2 setup failure, 3 signal\n"
      "(with --hold: a signal before the expectation was met).\n",
      f);
}

bool parse_u64(const char* s, uint64_t lo, uint64_t hi, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || !*s || *end || *s == '-' || v < lo || v > hi) return false;
  out = v;
  return true;
}

// "Name: value": a token name, a colon, no CR/LF/NUL anywhere, at most kMaxHeaderBytes.
bool valid_header(const char* v) {
  size_t n = strlen(v);
  const char* colon = strchr(v, ':');
  if (!colon || colon == v || n > kMaxHeaderBytes) return false;
  for (const char* p = v; p < colon; ++p)
    if (*p <= ' ' || *p >= 127 || strchr("()<>@,;:\\\"/[]?={}", *p)) return false;
  return !strpbrk(v, "\r\n");
}

bool parse_args(int argc, char** argv, Options& o, bool& help) {
  help = false;
  for (int a = 1; a < argc; ++a) {
    std::string k = argv[a];
    if (k == "--help" || k == "-h") {
      help = true;
      return true;
    }
    if (k == "--json") {
      o.json = true;
      continue;
    }
    if (k == "--hold") {
      o.hold = true;
      continue;
    }
    if (a + 1 >= argc) {
      fprintf(stderr, "loadgen: %s needs a value\n", k.c_str());
      return false;
    }
    const char* v = argv[++a];
    uint64_t x = 0;
    bool ok = true;
    if (k == "--host") o.host = v;
    else if (k == "--path") o.path = v;
    else if (k == "--ready-file") o.ready_file = v;
    else if (k == "--header") {
      ok = valid_header(v) && o.header_count < kMaxHeaders;
      if (ok) {
        o.extra_headers += std::string(v) + "\r\n";
        ++o.header_count;
      }
    }
    else if (k == "--accept-encoding")
      ok = (!strcmp(v, "gzip") || !strcmp(v, "deflate")) && (o.accept_encoding = v, true);
    else if (k == "--data-prefix") ok = *v && strlen(v) <= kMaxDataPrefix && (o.data_prefix = v, true);
    else if (k == "--port") ok = parse_u64(v, 1, 65535, x) && (o.port = int(x), true);
    else if (k == "--connections")
      ok = parse_u64(v, 1, kMaxConnections, x) && (o.connections = uint32_t(x), true);
    else if (k == "--expect") ok = parse_u64(v, 0, UINT32_MAX, x) && (o.expect = x, true);
    else if (k == "--sources") ok = parse_u64(v, 1, 254, x) && (o.sources = uint32_t(x), true);
    else if (k == "--sample") ok = parse_u64(v, 0, kMaxConnections, x) && (o.sample = uint32_t(x), true);
    else if (k == "--batch") ok = parse_u64(v, 1, kMaxConnections, x) && (o.batch = uint32_t(x), true);
    else if (k == "--retries") ok = parse_u64(v, 0, 100, x) && (o.retries = uint32_t(x), true);
    else if (k == "--duration") {
      char* end = nullptr;
      o.duration = strtod(v, &end);
      ok = *v && !*end && o.duration > 0 && o.duration <= 86400;
    } else {
      fprintf(stderr, "loadgen: unknown option %s (try --help)\n", k.c_str());
      return false;
    }
    if (!ok) {
      fprintf(stderr, "loadgen: bad value for %s: %s\n", k.c_str(), v);
      return false;
    }
  }
  if (!o.port) {
    fprintf(stderr, "loadgen: --port is required (try --help)\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool help = false;
  if (!parse_args(argc, argv, o, help)) return 2;
  if (help) {
    usage(stdout);
    return 0;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  LoadGen* lg = new LoadGen(o);  // large: keep it off the stack
  int rc = lg->run();
  delete lg;
  return rc;
}
