#include "frame.hpp"

#include <cstdint>
#include <cstdlib>
#include <new>  // placement new
#include <thread>

namespace ssefanout {

std::atomic<int64_t> Frame::live_{0};

Frame::Frame(size_t size, Kind kind) : kind_(kind), size_(size) {
  if (kind_ != Kind::kRaw) chunkHeaderLen_ = static_cast<uint8_t>(writeChunkHeader(size, chunkHeader_));
  live_.fetch_add(1, std::memory_order_relaxed);
}

size_t Frame::writeChunkHeader(size_t size, char* out) {
  // By hand rather than snprintf: snprintf needs room for a NUL, which a
  // 16-digit size plus CRLF would not leave in kMaxChunkHeader bytes.
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[16];
  size_t n = 0;
  do {
    digits[n++] = kHex[size & 15];
    size >>= 4;
  } while (size != 0);
  for (size_t i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = '\r';
  out[n + 1] = '\n';
  return n + 2;
}

Frame* Frame::allocate(size_t size, Kind kind, std::string_view tag) {
  // Header, bytes and tag in one allocation: one malloc per publish.
  // A size near SIZE_MAX would wrap the sum to a small block that the caller
  // then fills with `size` bytes.
  if (tag.size() > kMaxTag || size > SIZE_MAX - sizeof(Frame) - tag.size()) std::abort();
  void* mem = std::malloc(sizeof(Frame) + size + tag.size());
  if (!mem) std::abort();  // as Node does on OOM; the addon builds without exceptions
  Frame* f = new (mem) Frame(size, kind);
  f->tagSize_ = static_cast<uint16_t>(tag.size());
  if (!tag.empty()) std::memcpy(f->mutableData() + size, tag.data(), tag.size());
  return f;
}

Frame* Frame::copyOf(std::string_view bytes, Kind kind) {
  Frame* f = allocate(bytes.size(), kind);
  if (!bytes.empty()) std::memcpy(f->mutableData(), bytes.data(), bytes.size());
  return f;
}

bool Frame::claimCodedVariant() {
  uint8_t expected = kVariantNone;
  return variantState_.compare_exchange_strong(expected, kVariantMaking, std::memory_order_acq_rel,
                                               std::memory_order_acquire);
}

void Frame::installCodedVariant(Frame* variant) {
  variant_ = variant;
  // release: the variant's pointer and bytes are visible to whoever sees kVariantReady (acquire).
  variantState_.store(kVariantReady, std::memory_order_release);
}

Frame* Frame::waitCodedVariant() const {
  while (variantState_.load(std::memory_order_acquire) != kVariantReady) std::this_thread::yield();
  return variant_;
}

void Frame::release() {
  // acq_rel: the thread that frees must see every write made through other refs.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    live_.fetch_sub(1, std::memory_order_relaxed);
    if (variant_) variant_->release();
    this->~Frame();
    std::free(this);
  }
}

}  // namespace ssefanout
