// Body codings: a compressed SSE stream that costs one compression per event,
// not one per connection (issue 16).
//
// A stream with `Content-Encoding: gzip` (or `deflate`) carries, after the
// HTTP head, a gzip header (or a zlib header), then every frame as raw
// DEFLATE blocks of its own: each frame's bytes compressed independently (a
// fresh compressor, so no back-reference reaches before the frame) and ended
// with a sync flush (an empty stored block: the stream is on a byte boundary
// again, and nothing is final). The compressed bytes of a frame therefore do
// not depend on what the connection received before: they are made once per
// frame (its *coded variant*, Frame::codedVariant) and shared by every
// compressed stream, and a connection keeps no compressor at all, only the
// running checksum and length its trailer needs (StreamCoder, 12 bytes).
//
// Frames below Settings::minBytes, frames published with compression off,
// and frames that would not shrink are coded as stored blocks (their bytes as
// they are, 5 bytes of block header per 65,535): still one variant per frame,
// and the stream stays one valid DEFLATE stream. The end of a body is a final
// empty block and the trailer (gzip: CRC-32 and length; zlib: Adler-32), from
// checksums combined per frame (crc32_combine_op, adler32_combine) without
// reading the bytes again.
//
// zlib is Node's own in the addon (its headers and exported symbols) and
// Debian's zlib1g in the CMake builds. Thread-safe: variantOf() runs on the
// I/O threads (each has its compressors), exactly once per frame.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "frame.hpp"

namespace ssefanout::compress {

enum class Coding : uint8_t { kIdentity = 0, kGzip = 1, kDeflate = 2 };

// The Content-Encoding token of a coding ("gzip", "deflate"; "" for identity).
std::string_view codingName(Coding coding);

struct Settings {
  int level = 6;            // zlib level 1..9
  uint32_t minBytes = 128;  // smaller frames are stored, not compressed
};

// What a stream's trailer needs of a frame's uncompressed bytes.
struct Meta {
  uint32_t crc = 0;    // CRC-32
  uint32_t adler = 1;  // Adler-32
  uint32_t crcOp = 0;  // crc32_combine_gen(size), for crc32_combine_op
  uint32_t size = 0;
};
Meta metaOf(std::string_view bytes);
// The Meta of the bytes a coded variant stands for (kept in its tag).
Meta metaOfVariant(const Frame& variant);

// `bytes` as stored DEFLATE blocks (not final): 5 bytes of header per 65,535.
std::string storedBlocks(std::string_view bytes);

// The coded variant of `frame`: made by the first thread that asks (the
// others wait for it, a spin of one compression), then shared; never for a
// raw frame. The pointer lives as long as `frame`.
Frame* variantOf(Frame* frame, const Settings& settings);

// One compressed stream's state: its coding and the checksum and length of
// what it was sent so far (every add()). Owned by the connection's thread.
class StreamCoder {
 public:
  void start(Coding coding);
  Coding coding() const { return coding_; }
  bool active() const { return coding_ != Coding::kIdentity; }
  void add(const Meta& m);
  // The coding's header (gzip: 10 bytes; zlib: 2), a coded control frame.
  FrameRef header() const;
  // The final empty block and the trailer of everything add()ed.
  FrameRef trailer() const;

 private:
  uint32_t check_ = 0;
  uint32_t length_ = 0;  // mod 2^32, as gzip's ISIZE
  Coding coding_ = Coding::kIdentity;
};

}  // namespace ssefanout::compress
