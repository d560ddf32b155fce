// Frame: the immutable, refcounted bytes of one encoded SSE event.
//
// A publish encodes its event once into a Frame; every outbox that must send
// it holds a FrameRef to the same bytes, and the last reference frees it.
// Frames cross threads (encoded on the JS thread, written by I/O threads,
// wrapped in Buffers for the JS transport), so the count is atomic. The bytes
// never change after make() returns.
//
// Each frame also carries its HTTP/1.1 chunk header ("<hex size>\r\n"), computed
// once, so chunked connections send [chunk header][frame bytes]["\r\n"] as three
// iovecs without copying the frame. Raw frames (a response head) are never
// chunk-framed.
//
// A frame may carry a tag after its bytes, in the same allocation: the topic
// it was published on, which the history (src/history) keeps with the frame
// rather than in an entry of its own. The tag is never sent.
//
// A frame may also carry a *coded variant*: the same bytes in a compressed
// body coding (src/compress makes it), shared by every compressed stream as
// the frame itself is by the others. Exactly one is made per frame, by the
// first thread that needs it: claimCodedVariant() lets one thread in, the
// others wait in waitCodedVariant() until it is installed. A variant is
// freed with its frame, and is marked coded(): its bytes are already in the
// body coding, never coded again.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

namespace ssefanout {

class Frame {
 public:
  // kEvent: an SSE event (chunk-framed, counted as delivered); kControl: SSE
  // bytes that are not an event (retry, heartbeat comment): chunk-framed,
  // not counted; kRaw: bytes sent as they are (a response head).
  enum class Kind : uint8_t { kEvent, kControl, kRaw };

  static constexpr size_t kMaxTag = UINT16_MAX;
  // Allocates a frame of `size` bytes (and a tag of `tag.size()` bytes, at
  // most kMaxTag, copied); fill via mutableData() before sharing.
  static Frame* allocate(size_t size, Kind kind = Kind::kEvent, std::string_view tag = {});
  static Frame* copyOf(std::string_view bytes, Kind kind = Kind::kEvent);

  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  char* mutableData() { return reinterpret_cast<char*>(this + 1); }
  size_t size() const { return size_; }
  std::string_view view() const { return {data(), size_}; }
  Kind kind() const { return kind_; }
  std::string_view chunkHeader() const { return {chunkHeader_, chunkHeaderLen_}; }
  std::string_view tag() const { return {data() + size_, tagSize_}; }

  // Bytes this frame puts on the wire for one connection. An empty frame puts
  // none: as a chunk it would be the last-chunk and end the body.
  size_t wireSize(bool chunked) const {
    if (size_ == 0) return 0;
    return chunked && kind_ != Kind::kRaw ? size_ + chunkHeaderLen_ + 2 : size_;
  }

  // Longest chunk header: 16 hex digits (SIZE_MAX) + CRLF.
  static constexpr size_t kMaxChunkHeader = 18;
  // Writes "<lowercase hex size>\r\n" (no NUL) to out, which must hold
  // kMaxChunkHeader bytes; returns its length.
  static size_t writeChunkHeader(size_t size, char* out);

  // The coded variant once installed, else null (acquire: its bytes are
  // complete once seen).
  Frame* codedVariant() const {
    return variantState_.load(std::memory_order_acquire) == kVariantReady ? variant_ : nullptr;
  }
  // True for the one caller that is to make the variant (it must then call
  // installCodedVariant); false when another thread makes or made it.
  bool claimCodedVariant();
  // Installs the claimed variant, taking over its reference.
  void installCodedVariant(Frame* variant);
  // The variant another thread claimed, once it is installed (a spin of at
  // most one compression).
  Frame* waitCodedVariant() const;
  // Bytes already in a body coding (a variant, a coding's header or trailer).
  bool coded() const { return coded_; }
  void markCoded() { coded_ = true; }
  // The publisher asked for no compression (a variant then stores the bytes).
  bool noCompress() const { return noCompress_; }
  void markNoCompress() { noCompress_ = true; }

  void retain(uint32_t n = 1) { refs_.fetch_add(n, std::memory_order_relaxed); }
  void release();
  uint32_t refCount() const { return refs_.load(std::memory_order_relaxed); }

  // Live frames in this process; tests use it to prove nothing leaks.
  static int64_t liveCount() { return live_.load(std::memory_order_relaxed); }

 private:
  Frame(size_t size, Kind kind);
  ~Frame() = default;

  std::atomic<uint32_t> refs_{1};
  Kind kind_;
  bool coded_ = false;
  bool noCompress_ = false;
  static constexpr uint8_t kVariantNone = 0, kVariantMaking = 1, kVariantReady = 2;
  std::atomic<uint8_t> variantState_{kVariantNone};
  uint8_t chunkHeaderLen_ = 0;
  char chunkHeader_[kMaxChunkHeader];
  uint16_t tagSize_ = 0;
  size_t size_;
  Frame* variant_ = nullptr;  // written once, before variantState_ says kVariantReady
  static std::atomic<int64_t> live_;
};

constexpr std::string_view kCrlf{"\r\n", 2};
constexpr std::string_view kLastChunk{"0\r\n\r\n", 5};

// Owning handle: one reference, moved not copied on hot paths.
class FrameRef {
 public:
  FrameRef() = default;
  // Adopts a reference the caller already owns (as Frame::allocate returns).
  explicit FrameRef(Frame* f) : f_(f) {}
  static FrameRef share(Frame* f) {
    if (f) f->retain();
    return FrameRef(f);
  }
  FrameRef(const FrameRef& o) : f_(o.f_) {
    if (f_) f_->retain();
  }
  FrameRef(FrameRef&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  FrameRef& operator=(FrameRef o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  ~FrameRef() {
    if (f_) f_->release();
  }
  Frame* get() const { return f_; }
  Frame* operator->() const { return f_; }
  explicit operator bool() const { return f_ != nullptr; }
  Frame* detach() { return std::exchange(f_, nullptr); }

 private:
  Frame* f_ = nullptr;
};

}  // namespace ssefanout
