// The native listener's listening sockets (docs/listener.md, "Budgets").
//
// Opened on the JS thread (ListenerWrap::JS_listen), so hub.listen() fails
// synchronously with the system's error, then handed to the acceptors.
// Every socket joins one SO_REUSEPORT group: the kernel spreads incoming
// connections over them. A socket's accept queue is capped at
// net.core.somaxconn (4096 on Linux since 5.4, 128 before), and a connect
// storm that overflows it loses SYNs the clients resend only after 1 s, then
// 3 s: so the listener opens as many sockets per thread as Options::backlog
// asks for (at most kMaxSocketsPerThread), each with its share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core.hpp"
#include "shard.hpp"

namespace ssefanout::listener {

struct SocketPlan {
  uint32_t perThread = 1;  // sockets per I/O thread
  uint32_t backlog = 1;    // listen(2) backlog of each
};

// Enough sockets for `backlog` connections over `threads` threads when each
// holds at most `somaxconn`.
SocketPlan planSockets(uint32_t backlog, uint32_t threads, uint32_t somaxconn);

// net.core.somaxconn, or 4096 where it cannot be read.
uint32_t systemSomaxconn();

// Opens the listener's sockets on Options::host and ::port (0: one the
// kernel picks, shared by all): (*fds)[t] are thread t's. Each gets the
// stream socket options of `stream` (setStreamSocketOptions), which the
// connections it accepts inherit, so a stream costs no setsockopt. 0, or
// -errno with nothing left open.
int openListeners(const Options& o, const ShardOptions& stream, uint32_t threads, const SocketPlan& plan,
                  std::vector<std::vector<int>>* fds, uint16_t* port);

}  // namespace ssefanout::listener
