// SSE frame encoder (WHATWG HTML, "Server-sent events", event stream format).
//
// encodeEvent() turns one event into the exact bytes of one SSE frame:
//   [": comment\n"...] ["event: NAME\n"] ["id: ID\n"] ["retry: N\n"] "data: LINE\n"... "\n"
// Data is split on CR, LF and CRLF, one "data:" line per line, so any payload is
// safe. Event names and ids are single-line by contract: one that holds CR, LF
// or NUL is refused (a newline there would let a publisher forge fields), and
// nothing is encoded. Fields are written as "name: value": the space keeps
// values that begin with a space intact. In compact mode (PocketBase's own
// framing) they are "name:value", with the space only where the value begins
// with one.
//
// Pure function of its input; safe on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "frame.hpp"
#include "status.hpp"

namespace ssefanout {

struct EventFields {
  std::optional<std::string_view> event;
  std::optional<std::string_view> id;
  std::optional<uint64_t> retryMs;
  std::optional<std::string_view> comment;
  // Absent data means no data lines: a frame of only comment/retry/id fields,
  // which a client does not dispatch as an event.
  std::optional<std::string_view> data;
  bool compact = false;  // "name:value" rather than "name: value"
  // Not on the wire: false keeps the event out of compression on compressed
  // streams (stored as it is, Frame::markNoCompress).
  bool compress = true;
};

// Exact number of bytes encodeEvent() writes for these fields.
size_t encodedSize(const EventFields& ev);

// Writes the frame into out (which must hold encodedSize(ev) bytes); returns
// the number of bytes written.
size_t encodeInto(const EventFields& ev, char* out);

Status validateFields(const EventFields& ev);

// Validates and encodes into a new Frame (refcount 1) stored in *out, with
// `tag` (at most Frame::kMaxTag bytes) as the frame's tag.
Status encodeEvent(const EventFields& ev, FrameRef* out, Frame::Kind kind = Frame::Kind::kEvent,
                   std::string_view tag = {});

}  // namespace ssefanout
