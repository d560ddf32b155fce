#include "sse_encoder.hpp"

#include <cstring>

namespace ssefanout {
namespace {

constexpr std::string_view kData = "data: ";
constexpr std::string_view kEvent = "event: ";
constexpr std::string_view kId = "id: ";
constexpr std::string_view kRetry = "retry: ";
constexpr std::string_view kComment = ": ";

// Calls onLine(line) for each line of text, splitting on CR, LF and CRLF. A
// trailing line break yields a final empty line, so "a\n" is two lines:
// "a" and "". That is what makes the parsed data equal the input.
template <typename F>
void forEachLine(std::string_view text, F&& onLine) {
  const char* p = text.data();
  const char* end = p + text.size();
  // memchr is vectorised; keeping the next CR and the next LF apart costs two
  // scans of the text in all, and JSON payloads (which hold no raw line
  // breaks) are found to be one line by the first two calls.
  auto find = [end](const char* from, char c) {
    const void* hit = from < end ? std::memchr(from, c, static_cast<size_t>(end - from)) : nullptr;
    return hit ? static_cast<const char*>(hit) : end;
  };
  const char* lf = find(p, '\n');
  const char* cr = find(p, '\r');
  for (;;) {
    const char* q = lf < cr ? lf : cr;
    onLine(std::string_view(p, static_cast<size_t>(q - p)));
    if (q == end) return;
    const char* next = q + 1;
    if (*q == '\r' && next < end && *next == '\n') ++next;  // CRLF is one break
    p = next;
    if (lf < p) lf = find(p, '\n');
    if (cr < p) cr = find(p, '\r');
  }
}

size_t digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

char* put(char* out, std::string_view s) {
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

char* putUint(char* out, uint64_t v) {
  size_t n = digits(v);
  for (size_t i = n; i > 0; --i) {
    out[i - 1] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return out + n;
}

size_t multiLineSize(std::string_view prefix, std::string_view text) {
  size_t n = 0;
  forEachLine(text, [&](std::string_view line) { n += prefix.size() + line.size() + 1; });
  return n;
}

char* putMultiLine(char* out, std::string_view prefix, std::string_view text) {
  forEachLine(text, [&](std::string_view line) {
    out = put(out, prefix);
    out = put(out, line);
    *out++ = '\n';
  });
  return out;
}

}  // namespace

Status validateFields(const EventFields& ev) {
  if (ev.event && !isSingleLine(*ev.event)) return Status::kInvalidEvent;
  if (ev.id && !isSingleLine(*ev.id)) return Status::kInvalidId;
  return Status::kOk;
}

size_t encodedSize(const EventFields& ev) {
  size_t n = 1;  // the blank line that dispatches the event
  if (ev.comment) n += multiLineSize(kComment, *ev.comment);
  if (ev.event) n += kEvent.size() + ev.event->size() + 1;
  if (ev.id) n += kId.size() + ev.id->size() + 1;
  if (ev.retryMs) n += kRetry.size() + digits(*ev.retryMs) + 1;
  if (ev.data) n += multiLineSize(kData, *ev.data);
  return n;
}

size_t encodeInto(const EventFields& ev, char* out) {
  char* start = out;
  if (ev.comment) out = putMultiLine(out, kComment, *ev.comment);
  if (ev.event) {
    out = put(out, kEvent);
    out = put(out, *ev.event);
    *out++ = '\n';
  }
  if (ev.id) {
    out = put(out, kId);
    out = put(out, *ev.id);
    *out++ = '\n';
  }
  if (ev.retryMs) {
    out = put(out, kRetry);
    out = putUint(out, *ev.retryMs);
    *out++ = '\n';
  }
  if (ev.data) out = putMultiLine(out, kData, *ev.data);
  *out++ = '\n';
  return static_cast<size_t>(out - start);
}

Status encodeEvent(const EventFields& ev, FrameRef* out, Frame::Kind kind) {
  Status s = validateFields(ev);
  if (s != Status::kOk) return s;
  Frame* f = Frame::allocate(encodedSize(ev), kind);
  encodeInto(ev, f->mutableData());
  *out = FrameRef(f);
  return Status::kOk;
}

}  // namespace ssefanout
