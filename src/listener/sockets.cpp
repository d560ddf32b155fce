#include "sockets.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ssefanout::listener {

namespace {

// One listening socket; -errno on failure. The first socket binds without
// SO_REUSEPORT, so its port is its own (bound with the flag, port 0 may pick
// a port another reuseport listener holds, and a given port could join one),
// then takes the flag before listen() so the others, which set it before
// bind(), join it.
int openOne(const Options& o, const ShardOptions& stream, uint16_t port, int backlog, bool reusePort, bool first,
            uint16_t* bound) {
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  socklen_t len;
  int family;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, o.host.c_str(), &in4->sin_addr) == 1) {
    family = AF_INET;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    len = sizeof *in4;
  } else if (inet_pton(AF_INET6, o.host.c_str(), &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    len = sizeof *in6;
  } else {
    return -EINVAL;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) {
    int off = 0;  // "::" takes IPv4 too, as Node's listen() does
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  setStreamSocketOptions(fd, stream);
  if ((!first && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      (first && reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  sockaddr_storage got;
  socklen_t gotLen = sizeof got;
  getsockname(fd, reinterpret_cast<sockaddr*>(&got), &gotLen);
  *bound = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&got)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&got)->sin6_port);
  return fd;
}

}  // namespace

SocketPlan planSockets(uint32_t backlog, uint32_t threads, uint32_t somaxconn) {
  const uint64_t cap = std::max<uint32_t>(somaxconn, 1);
  const uint64_t t = std::max<uint32_t>(threads, 1);
  const uint64_t want = std::max<uint32_t>(backlog, 1);
  SocketPlan plan;
  plan.perThread =
      static_cast<uint32_t>(std::clamp<uint64_t>((want + cap * t - 1) / (cap * t), 1, kMaxSocketsPerThread));
  const uint64_t sockets = t * plan.perThread;
  plan.backlog = static_cast<uint32_t>(std::min<uint64_t>((want + sockets - 1) / sockets, cap));
  return plan;
}

uint32_t systemSomaxconn() {
  int fd = ::open("/proc/sys/net/core/somaxconn", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 4096;
  char text[32];
  ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return 4096;
  text[n] = '\0';
  char* end = nullptr;
  unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || v == 0 || v > 0x7fffffffUL) return 4096;
  return static_cast<uint32_t>(v);
}

int openListeners(const Options& o, const ShardOptions& stream, uint32_t threads, const SocketPlan& plan,
                  std::vector<std::vector<int>>* fds, uint16_t* port) {
  fds->assign(threads, {});
  const uint32_t total = threads * plan.perThread;
  uint16_t p = o.port;
  for (uint32_t i = 0; i < total; ++i) {
    uint16_t bound = 0;
    int fd = openOne(o, stream, p, static_cast<int>(plan.backlog), total > 1, p == 0 || i == 0, &bound);
    if (fd < 0) {
      for (auto& list : *fds) {
        for (int f : list) ::close(f);
        list.clear();
      }
      return fd;
    }
    p = bound;
    (*fds)[i % threads].push_back(fd);
  }
  *port = p;
  return 0;
}

}  // namespace ssefanout::listener
