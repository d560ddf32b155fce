#include "body_coding.hpp"

#include <zlib.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

// With large-file offsets (node-gyp builds with _FILE_OFFSET_BITS=64) zlib
// declares the combine functions by their 64-bit names only (Node's zlib.h
// does not map the plain names onto them); both libraries export both.
#ifdef Z_WANT64
#define SSE_CRC32_COMBINE crc32_combine64
#define SSE_ADLER32_COMBINE adler32_combine64
#else
#define SSE_CRC32_COMBINE crc32_combine
#define SSE_ADLER32_COMBINE adler32_combine
#endif

namespace ssefanout::compress {

namespace {

constexpr size_t kStoredMax = 65535;
constexpr size_t kMetaBytes = 16;

// Raw-deflate compressors per thread, one per level and size class, made on
// first use and reset for every frame (deflateReset keeps the allocations).
// A reset clears the hash table and the window's chain, so their size is
// most of a small frame's cost: frames up to kSmallFrame bytes use a 4 KiB
// window (a back-reference never reaches further than the frame anyway) and
// a hash table of 2^(5+7) entries, about 14 KiB to clear instead of 128 KiB.
// Any decoder takes them: a 32 KiB window decodes shorter distances.
constexpr size_t kSmallFrame = 4096;
struct Compressors {
  std::array<std::array<std::unique_ptr<z_stream>, 2>, 10> byLevel;
  std::vector<unsigned char> out;
  ~Compressors() {
    for (auto& level : byLevel) {
      for (auto& s : level) {
        if (s) deflateEnd(s.get());
      }
    }
  }
  z_stream* get(int level, size_t bytes) {
    const bool small = bytes <= kSmallFrame;
    auto& s = byLevel[level][small ? 0 : 1];
    if (!s) {
      s = std::make_unique<z_stream>();
      std::memset(s.get(), 0, sizeof(z_stream));
      const int windowBits = small ? 12 : 15;
      const int memLevel = small ? 5 : 8;
      if (deflateInit2(s.get(), level, Z_DEFLATED, -windowBits, memLevel, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
    }
    return s.get();
  }
};
thread_local Compressors compressors;

size_t storedSize(size_t n) { return n + 5 * ((n + kStoredMax - 1) / kStoredMax); }

void appendStored(std::string_view bytes, char* out) {
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), kStoredMax);
    out[0] = 0;  // BFINAL 0, BTYPE 00 (stored), padded to the byte
    out[1] = static_cast<char>(n & 0xff);
    out[2] = static_cast<char>(n >> 8);
    out[3] = static_cast<char>(~n & 0xff);
    out[4] = static_cast<char>((~n >> 8) & 0xff);
    std::memcpy(out + 5, bytes.data(), n);
    out += 5 + n;
    bytes.remove_prefix(n);
  }
}

void putLe32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t getLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

// A coded frame of `size` bytes (filled by the caller) whose tag is `meta`.
Frame* allocateCoded(size_t size, Frame::Kind kind, const Meta& meta) {
  unsigned char tag[kMetaBytes];
  putLe32(tag, meta.crc);
  putLe32(tag + 4, meta.adler);
  putLe32(tag + 8, meta.crcOp);
  putLe32(tag + 12, meta.size);
  Frame* f = Frame::allocate(size, kind, std::string_view(reinterpret_cast<char*>(tag), kMetaBytes));
  f->markCoded();
  return f;
}

Frame* makeVariant(const Frame& frame, const Settings& settings) {
  const std::string_view in = frame.view();
  const Meta meta = metaOf(in);
  const size_t stored = storedSize(in.size());
  if (!frame.noCompress() && in.size() >= settings.minBytes && settings.level >= 1 && settings.level <= 9) {
    Compressors& c = compressors;
    z_stream* z = c.get(settings.level, in.size());
    deflateReset(z);
    // deflateBound plus the sync flush's empty stored block (5 bytes) and slack.
    const size_t bound = deflateBound(z, static_cast<uLong>(in.size())) + 16;
    if (c.out.size() < bound) c.out.resize(bound);
    z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z->avail_in = static_cast<uInt>(in.size());
    z->next_out = c.out.data();
    z->avail_out = static_cast<uInt>(c.out.size());
    const int rc = deflate(z, Z_SYNC_FLUSH);
    const size_t n = c.out.size() - z->avail_out;
    if (rc == Z_OK && z->avail_in == 0 && n < stored) {
      Frame* v = allocateCoded(n, frame.kind(), meta);
      std::memcpy(v->mutableData(), c.out.data(), n);
      // A big frame's window would otherwise pin its output buffer here.
      if (c.out.size() > (1u << 20)) std::vector<unsigned char>().swap(c.out);
      return v;
    }
  }
  Frame* v = allocateCoded(stored, frame.kind(), meta);
  appendStored(in, v->mutableData());
  return v;
}

}  // namespace

std::string_view codingName(Coding coding) {
  switch (coding) {
    case Coding::kGzip:
      return "gzip";
    case Coding::kDeflate:
      return "deflate";
    case Coding::kIdentity:
      break;
  }
  return "";
}

Meta metaOf(std::string_view bytes) {
  Meta m;
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  const auto n = static_cast<uInt>(bytes.size());
  m.crc = static_cast<uint32_t>(crc32(0, p, n));
  m.adler = static_cast<uint32_t>(adler32(1, p, n));
  // crc32_combine_gen(size): x^(8·size) modulo the CRC polynomial, had as
  // crc32_combine of the polynomial 1 (0x80000000, reflected) and 0, which
  // needs no declaration that depends on the large-file macros.
  m.crcOp = static_cast<uint32_t>(SSE_CRC32_COMBINE(0x80000000UL, 0, static_cast<z_off_t>(bytes.size())));
  m.size = static_cast<uint32_t>(bytes.size());
  return m;
}

Meta metaOfVariant(const Frame& variant) {
  const std::string_view t = variant.tag();
  Meta m;
  if (t.size() != kMetaBytes) return m;
  m.crc = getLe32(t.data());
  m.adler = getLe32(t.data() + 4);
  m.crcOp = getLe32(t.data() + 8);
  m.size = getLe32(t.data() + 12);
  return m;
}

std::string storedBlocks(std::string_view bytes) {
  std::string out(storedSize(bytes.size()), '\0');
  appendStored(bytes, out.data());
  return out;
}

Frame* variantOf(Frame* frame, const Settings& settings) {
  if (Frame* v = frame->codedVariant()) return v;
  if (!frame->claimCodedVariant()) return frame->waitCodedVariant();
  Frame* v = makeVariant(*frame, settings);  // never fails: stored when deflate does
  frame->installCodedVariant(v);
  return v;
}

void StreamCoder::start(Coding coding) {
  coding_ = coding;
  check_ = coding == Coding::kDeflate ? 1 : 0;
  length_ = 0;
}

void StreamCoder::add(const Meta& m) {
  if (coding_ == Coding::kGzip) {
    check_ = static_cast<uint32_t>(crc32_combine_op(check_, m.crc, m.crcOp));
  } else if (coding_ == Coding::kDeflate) {
    check_ = static_cast<uint32_t>(SSE_ADLER32_COMBINE(check_, m.adler, static_cast<z_off_t>(m.size)));
  }
  length_ += m.size;
}

FrameRef StreamCoder::header() const {
  // gzip: ID1 ID2, CM 8 (deflate), no flags, MTIME 0, XFL 0, OS 255 (unknown).
  static constexpr char kGzip[] = {'\x1f', '\x8b', '\x08', 0, 0, 0, 0, 0, 0, '\xff'};
  // zlib: CM 8 with a 32 KiB window, FLEVEL default; (0x78 << 8 | 0x9c) % 31 == 0.
  static constexpr char kZlib[] = {'\x78', '\x9c'};
  const std::string_view bytes =
      coding_ == Coding::kGzip ? std::string_view(kGzip, sizeof kGzip) : std::string_view(kZlib, sizeof kZlib);
  FrameRef f(Frame::copyOf(bytes, Frame::Kind::kControl));
  f->markCoded();
  return f;
}

FrameRef StreamCoder::trailer() const {
  // A final block with no data: fixed Huffman (BFINAL 1, BTYPE 01) and the
  // end-of-block code, "03 00".
  unsigned char bytes[10] = {0x03, 0x00};
  size_t n = 2;
  if (coding_ == Coding::kGzip) {
    putLe32(bytes + 2, check_);
    putLe32(bytes + 6, length_);
    n = 10;
  } else {
    for (int i = 0; i < 4; ++i) bytes[2 + i] = static_cast<unsigned char>(check_ >> (24 - 8 * i));  // big-endian
    n = 6;
  }
  FrameRef f(Frame::copyOf(std::string_view(reinterpret_cast<char*>(bytes), n), Frame::Kind::kControl));
  f->markCoded();
  return f;
}

}  // namespace ssefanout::compress
