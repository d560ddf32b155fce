// Test-only reference decoders, written from the specifications and NOT from
// the encoder, so the core's output is checked against an independent reading:
//
//  - SseParser: WHATWG HTML "Interpreting an event stream" (section 9.2.6),
//    streaming: feed() accepts the stream in arbitrary chunks, including a CR
//    at the end of one chunk whose LF starts the next, or a BOM split in two.
//  - ChunkedDecoder: the HTTP/1.1 chunked transfer coding (RFC 9112 section
//    7.1), streaming too, strict about CRLF so framing errors are caught.
//
// Works on bytes: the spec decodes the stream as UTF-8 first, which only
// matters for invalid sequences (replaced by U+FFFD); every byte the grammar
// looks at (CR, LF, ':', ' ', digits, the BOM) is ASCII or the BOM prefix, so
// a byte-level reading yields the same events for valid UTF-8.
//
// Header-only; single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ssefanout::test {

struct SseEvent {
  std::string type;         // "message" when no event field was seen
  std::string data;         // data lines joined with LF, final LF removed
  std::string lastEventId;  // the stream's last event ID when dispatched

  bool operator==(const SseEvent&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const SseEvent& e) {
  auto quoted = [&](std::string_view s) {
    os << '"';
    for (unsigned char c : s) {
      if (c == '\n') {
        os << "\\n";
      } else if (c == '\r') {
        os << "\\r";
      } else if (c == '"' || c == '\\') {
        os << '\\' << c;
      } else if (c < 0x20 || c >= 0x7f) {
        const char* hex = "0123456789abcdef";
        os << "\\x" << hex[c >> 4] << hex[c & 15];
      } else {
        os << c;
      }
    }
    os << '"';
  };
  os << "{type=";
  quoted(e.type);
  os << " data=";
  quoted(e.data);
  os << " id=";
  quoted(e.lastEventId);
  return os << '}';
}

class SseParser {
 public:
  // Feeds the next piece of the stream; complete events are appended to
  // events(). Any chunking of the same bytes yields the same result.
  void feed(std::string_view bytes) {
    for (char c : bytes) feedByte(c);
  }

  const std::vector<SseEvent>& events() const { return events_; }
  std::vector<SseEvent> takeEvents() { return std::exchange(events_, {}); }
  // Comment lines seen (text after the ':', nothing stripped); not dispatched
  // by the spec, kept so tests can check comments were encoded.
  const std::vector<std::string>& comments() const { return comments_; }
  // The event source's reconnection time, set by a valid retry field.
  std::optional<uint64_t> reconnectionTime() const { return retry_; }
  // The "last event ID buffer" (what the next dispatch would report).
  const std::string& lastEventIdBuffer() const { return lastIdBuffer_; }
  // True while the stream has bytes of an unfinished line or event: what the
  // spec discards at end of stream.
  bool hasPartialEvent() const { return !line_.empty() || !dataBuffer_.empty() || sawFieldSinceDispatch_; }
  size_t linesSeen() const { return lines_; }

 private:
  void feedByte(char c) {
    // "One leading U+FEFF BYTE ORDER MARK character must be ignored if any
    // are present": only at the very start of the stream. Bytes that begin
    // like a BOM but diverge are replayed as ordinary input.
    if (bomState_ < 3) {
      static constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};
      if (static_cast<unsigned char>(c) == kBom[bomState_]) {
        ++bomState_;
        return;
      }
      std::string replay(reinterpret_cast<const char*>(kBom), bomState_);
      bomState_ = 3;
      for (char r : replay) feedByte(r);
    }
    // end-of-line = ( cr lf / cr / lf ). A CR ends the line at once; an LF
    // right after it belongs to the same line end.
    if (afterCr_) {
      afterCr_ = false;
      if (c == '\n') return;
    }
    if (c == '\r') {
      afterCr_ = true;
      processLine();
      return;
    }
    if (c == '\n') {
      processLine();
      return;
    }
    line_.push_back(c);
  }

  void processLine() {
    ++lines_;
    std::string line = std::exchange(line_, {});
    if (line.empty()) {
      dispatch();
      return;
    }
    if (line[0] == ':') {
      comments_.push_back(line.substr(1));
      return;
    }
    std::string field;
    std::string value;
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      field = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    } else {
      field = line;  // whole line is the field name, value is empty
    }
    processField(field, value);
  }

  void processField(const std::string& field, const std::string& value) {
    sawFieldSinceDispatch_ = true;
    if (field == "event") {
      eventType_ = value;
    } else if (field == "data") {
      dataBuffer_ += value;
      dataBuffer_ += '\n';
    } else if (field == "id") {
      if (value.find('\0') == std::string::npos) lastIdBuffer_ = value;
    } else if (field == "retry") {
      // "If the field value consists of only ASCII digits": an empty value is
      // read as not a number, as browsers do.
      if (value.empty()) return;
      uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return;
        unsigned d = static_cast<unsigned>(c - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;  // saturate
      }
      retry_ = v;
    }
    // Any other field name is ignored.
  }

  void dispatch() {
    sawFieldSinceDispatch_ = false;
    // 1. Set the last event ID string of the event source.
    lastEventId_ = lastIdBuffer_;
    // 2. Empty data buffer: reset buffers, dispatch nothing.
    if (dataBuffer_.empty()) {
      eventType_.clear();
      return;
    }
    // 3. Remove one trailing LF.
    if (dataBuffer_.back() == '\n') dataBuffer_.pop_back();
    // 4-5. Event type defaults to "message".
    events_.push_back(SseEvent{eventType_.empty() ? "message" : eventType_, dataBuffer_, lastEventId_});
    // 6. Reset the data and event type buffers (not the last event ID buffer).
    dataBuffer_.clear();
    eventType_.clear();
  }

  std::string line_;
  std::string dataBuffer_;
  std::string eventType_;
  std::string lastIdBuffer_;
  std::string lastEventId_;
  std::optional<uint64_t> retry_;
  std::vector<SseEvent> events_;
  std::vector<std::string> comments_;
  size_t lines_ = 0;
  int bomState_ = 0;
  bool afterCr_ = false;
  bool sawFieldSinceDispatch_ = false;
};

// Parses a complete stream in one call.
inline std::vector<SseEvent> parseSse(std::string_view stream) {
  SseParser p;
  p.feed(stream);
  return p.takeEvents();
}

// HTTP/1.1 chunked transfer decoding:
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   last-chunk   = 1*("0") [ chunk-ext ] CRLF
// Strict: bare LF, a non-hex size, missing CRLF after data or any byte after
// the end are errors (error() stays set, the rest of the input is ignored).
class ChunkedDecoder {
 public:
  void feed(std::string_view bytes) {
    for (char c : bytes) {
      if (error_) return;
      step(c);
    }
  }

  const std::string& body() const { return body_; }
  std::string takeBody() { return std::exchange(body_, {}); }
  bool done() const { return state_ == State::kDone; }
  bool error() const { return error_; }
  const std::string& errorMessage() const { return errorMessage_; }
  // Sizes of the data chunks seen, in order (the last-chunk not included).
  const std::vector<size_t>& chunkSizes() const { return sizes_; }

 private:
  enum class State { kSize, kExt, kSizeLf, kData, kDataCr, kDataLf, kTrailer, kTrailerLf, kDone };

  void fail(const char* why) {
    error_ = true;
    errorMessage_ = why;
  }

  static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  void step(char c) {
    switch (state_) {
      case State::kSize: {
        int h = hexValue(c);
        if (h >= 0) {
          if (size_ > (SIZE_MAX >> 4)) return fail("chunk size overflow");
          size_ = size_ * 16 + static_cast<size_t>(h);
          ++sizeDigits_;
          return;
        }
        if (sizeDigits_ == 0) return fail("chunk size without hex digits");
        if (c == ';') {
          state_ = State::kExt;
          return;
        }
        if (c == '\r') {
          state_ = State::kSizeLf;
          return;
        }
        return fail("unexpected byte in chunk size line");
      }
      case State::kExt:
        if (c == '\r')
          state_ = State::kSizeLf;
        else if (c == '\n')
          fail("bare LF in chunk extension");
        return;
      case State::kSizeLf:
        if (c != '\n') return fail("chunk size line not ended by CRLF");
        sizeDigits_ = 0;
        if (size_ == 0) {
          state_ = State::kTrailer;
          trailerLineLen_ = 0;
          return;
        }
        sizes_.push_back(size_);
        state_ = State::kData;
        return;
      case State::kData:
        body_.push_back(c);
        if (--size_ == 0) state_ = State::kDataCr;
        return;
      case State::kDataCr:
        if (c != '\r') return fail("chunk data not followed by CR");
        state_ = State::kDataLf;
        return;
      case State::kDataLf:
        if (c != '\n') return fail("chunk data not followed by CRLF");
        state_ = State::kSize;
        return;
      case State::kTrailer:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (c == '\n') {
          fail("bare LF in trailer");
        } else {
          ++trailerLineLen_;
        }
        return;
      case State::kTrailerLf:
        if (c != '\n') return fail("trailer line not ended by CRLF");
        if (trailerLineLen_ == 0) {
          state_ = State::kDone;
        } else {
          trailerLineLen_ = 0;
          state_ = State::kTrailer;
        }
        return;
      case State::kDone:
        return fail("bytes after the end of the chunked body");
    }
  }

  State state_ = State::kSize;
  size_t size_ = 0;
  size_t sizeDigits_ = 0;
  size_t trailerLineLen_ = 0;
  std::string body_;
  std::vector<size_t> sizes_;
  bool error_ = false;
  std::string errorMessage_;
};

// What an SSE client reads back from a multi-line value: CR, LF and CRLF
// each become one LF.
inline std::string normaliseLineEnds(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace ssefanout::test
