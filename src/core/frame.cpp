#include "frame.hpp"

#include <cstdio>
#include <cstdlib>
#include <new>  // placement new

namespace ssefanout {

std::atomic<int64_t> Frame::live_{0};

Frame::Frame(size_t size, Kind kind) : kind_(kind), size_(size) {
  if (kind_ == Kind::kEvent) {
    chunkHeaderLen_ = static_cast<uint8_t>(
        std::snprintf(chunkHeader_, sizeof chunkHeader_, "%zx\r\n", size));
  }
  live_.fetch_add(1, std::memory_order_relaxed);
}

Frame* Frame::allocate(size_t size, Kind kind) {
  // Header and bytes in one allocation: one malloc per publish.
  void* mem = std::malloc(sizeof(Frame) + size);
  if (!mem) std::abort();  // as Node does on OOM; the addon builds without exceptions
  return new (mem) Frame(size, kind);
}

Frame* Frame::copyOf(std::string_view bytes, Kind kind) {
  Frame* f = allocate(bytes.size(), kind);
  if (!bytes.empty()) std::memcpy(f->mutableData(), bytes.data(), bytes.size());
  return f;
}

void Frame::release() {
  // acq_rel: the thread that frees must see every write made through other refs.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    live_.fetch_sub(1, std::memory_order_relaxed);
    this->~Frame();
    std::free(this);
  }
}

}  // namespace ssefanout
