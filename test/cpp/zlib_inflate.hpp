// zlib's own decoder as the reference for compressed bodies (src/compress):
// what a browser or Node's zlib does with a `Content-Encoding: gzip` or
// `deflate` stream, fed piece by piece as bytes arrive.
//
// Inflater wraps one z_stream: windowBits -15 reads raw DEFLATE, 15 a zlib
// stream (header, DEFLATE, Adler-32), 31 a gzip stream (header, DEFLATE,
// CRC-32 and ISIZE). zlib itself checks the trailer: a body whose checksum or
// length is wrong ends in Z_DATA_ERROR, never in Z_STREAM_END. feed() returns
// everything that can be decoded so far (Z_SYNC_FLUSH: nothing held back), so
// a test can check that each frame decodes as soon as its bytes arrive.
//
// Used by the compress and io tests and by fuzz/body_coding_fuzz.cpp; one
// thread at a time.
#pragma once

#include <zlib.h>

#include <cstring>
#include <string>
#include <string_view>

namespace ssefanout::test {

class Inflater {
 public:
  explicit Inflater(int windowBits) {
    std::memset(&z_, 0, sizeof z_);
    rc_ = inflateInit2(&z_, windowBits);
    ok_ = rc_ == Z_OK;
  }
  ~Inflater() { inflateEnd(&z_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Decodes `bytes`, appending to out(); returns the bytes decoded by this
  // call. Input after the end of the stream is counted in trailing(), not
  // decoded; after an error nothing more is decoded.
  std::string feed(std::string_view bytes) {
    std::string got;
    if (!ok_) return got;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z_.avail_in = static_cast<uInt>(bytes.size());
    unsigned char buf[16384];
    for (;;) {
      if (ended_) {
        trailing_ += z_.avail_in;
        z_.avail_in = 0;
        break;
      }
      z_.next_out = buf;
      z_.avail_out = sizeof buf;
      rc_ = inflate(&z_, Z_SYNC_FLUSH);
      got.append(reinterpret_cast<char*>(buf), sizeof buf - z_.avail_out);
      if (rc_ == Z_STREAM_END) {
        ended_ = true;
        continue;
      }
      if (rc_ == Z_BUF_ERROR || (rc_ == Z_OK && z_.avail_in == 0 && z_.avail_out != 0)) {
        // No progress possible: every input byte was taken and nothing more
        // is pending (Z_BUF_ERROR is not an error here, just "need input").
        if (rc_ == Z_BUF_ERROR) rc_ = Z_OK;
        break;
      }
      if (rc_ != Z_OK) {
        ok_ = false;
        break;
      }
    }
    out_ += got;
    return got;
  }

  const std::string& out() const { return out_; }
  bool ok() const { return ok_; }                // no error so far
  bool ended() const { return ended_; }          // Z_STREAM_END: trailer checked
  int lastCode() const { return rc_; }           // the last inflate() return code
  size_t trailing() const { return trailing_; }  // bytes after the end of the stream
  const char* message() const { return z_.msg ? z_.msg : ""; }

 private:
  z_stream z_;
  int rc_ = Z_OK;
  bool ok_ = false;
  bool ended_ = false;
  size_t trailing_ = 0;
  std::string out_;
};

struct Inflated {
  std::string bytes;
  bool ended = false;  // reached Z_STREAM_END (the trailer checked out)
  int code = Z_OK;     // the last inflate() return code
  size_t trailing = 0;
  std::string message;
};

// Decodes a whole body in one go.
inline Inflated inflateBody(std::string_view body, int windowBits) {
  Inflater in(windowBits);
  in.feed(body);
  return {in.out(), in.ended(), in.lastCode(), in.trailing(), in.message()};
}

}  // namespace ssefanout::test
