#include "sse_encoder.hpp"

#include <cstring>

namespace ssefanout {
namespace {

constexpr std::string_view kData = "data:";
constexpr std::string_view kEvent = "event:";
constexpr std::string_view kId = "id:";
constexpr std::string_view kRetry = "retry:";
constexpr std::string_view kComment = ":";

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

// The space after "name:" is written always, or in compact mode only when
// the value begins with a space (a parser drops one leading space).
bool spaced(std::string_view value, bool compact) { return !compact || (!value.empty() && value[0] == ' '); }

size_t fieldSize(std::string_view name, std::string_view value, bool compact) {
  return name.size() + spaced(value, compact) + value.size() + 1;
}

char* putField(char* out, std::string_view name, std::string_view value, bool compact) {
  out = put(out, name);
  if (spaced(value, compact)) *out++ = ' ';
  out = put(out, value);
  *out++ = '\n';
  return out;
}

size_t multiLineSize(std::string_view name, std::string_view text, bool compact) {
  size_t n = 0;
  forEachLine(text, [&](std::string_view line) { n += fieldSize(name, line, compact); });
  return n;
}

char* putMultiLine(char* out, std::string_view name, std::string_view text, bool compact) {
  forEachLine(text, [&](std::string_view line) { out = putField(out, name, line, compact); });
  return out;
}

}  // namespace

Status validateFields(const EventFields& ev) {
  if (ev.event && !isSingleLine(*ev.event)) return Status::kInvalidEvent;
  if (ev.id && !isSingleLine(*ev.id)) return Status::kInvalidId;
  return Status::kOk;
}

size_t encodedSize(const EventFields& ev) {
  const bool c = ev.compact;
  size_t n = 1;  // the blank line that dispatches the event
  if (ev.comment) n += multiLineSize(kComment, *ev.comment, c);
  if (ev.event) n += fieldSize(kEvent, *ev.event, c);
  if (ev.id) n += fieldSize(kId, *ev.id, c);
  if (ev.retryMs) n += kRetry.size() + !c + digits(*ev.retryMs) + 1;
  if (ev.data) n += multiLineSize(kData, *ev.data, c);
  return n;
}

size_t encodeInto(const EventFields& ev, char* out) {
  const bool c = ev.compact;
  char* start = out;
  if (ev.comment) out = putMultiLine(out, kComment, *ev.comment, c);
  if (ev.event) out = putField(out, kEvent, *ev.event, c);
  if (ev.id) out = putField(out, kId, *ev.id, c);
  if (ev.retryMs) {
    out = put(out, kRetry);
    if (!c) *out++ = ' ';
    out = putUint(out, *ev.retryMs);
    *out++ = '\n';
  }
  if (ev.data) out = putMultiLine(out, kData, *ev.data, c);
  *out++ = '\n';
  return static_cast<size_t>(out - start);
}

Status encodeEvent(const EventFields& ev, FrameRef* out, Frame::Kind kind, std::string_view tag) {
  Status s = validateFields(ev);
  if (s != Status::kOk) return s;
  Frame* f = Frame::allocate(encodedSize(ev), kind, tag);
  encodeInto(ev, f->mutableData());
  if (!ev.compress) f->markNoCompress();
  *out = FrameRef(f);
  return Status::kOk;
}

}  // namespace ssefanout
