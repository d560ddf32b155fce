// Fuzz target: body codings (src/compress/body_coding): compressed SSE bodies
// put together from shared coded variants and per-connection parts.
//
// The input picks a coding (gzip or deflate), compression settings and an
// event prefix (PocketBase's "id:<clientId>\n"), then drives a random sequence
// of parts as Shard::enqueue sends them: new frames (sizes from empty to past
// several 65,535-byte stored blocks; contents repetitive, random or mixed;
// event or control; compression on or off; level and minBytes changed between
// frames), frames sent again (their variant shared, made under the settings
// of their first use), heartbeats, and per-connection bytes as stored blocks,
// each event after the prefix. The body ends with the StreamCoder's trailer.
//
// Asserted: a variant is made once (the same pointer every time), is coded,
// keeps its frame's kind, carries the Meta of its frame's bytes, is never
// larger than the stored framing, and is exactly the stored framing (written
// here independently) when the frame is under minBytes or marked noCompress.
// zlib's inflate (windowBits 31 or 15), fed part by part, gives each part's
// plain bytes as soon as the part is fed (nothing held back), never fails,
// and reaches Z_STREAM_END exactly at the trailer's end: the CRC-32 and ISIZE
// (gzip) or Adler-32 (zlib) combined per part are right. No frame or variant
// may leak.
#include <fuzzer/FuzzedDataProvider.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "body_coding.hpp"
#include "frame.hpp"
#include "fuzz_check.hpp"
#include "zlib_inflate.hpp"

using namespace ssefanout;
using fuzzutil::show;

namespace {

// Bounds one input's work: a few large frames, not hundreds.
constexpr size_t kMaxPlainBytes = 1 << 20;

// "00 LEN NLEN" + bytes per block of at most 65,535 (RFC 1951 3.2.4), written
// independently of src/compress.
std::string storedReference(std::string_view plain) {
  std::string out;
  while (!plain.empty()) {
    const size_t n = std::min<size_t>(plain.size(), 65535);
    out += '\0';
    out += static_cast<char>(n & 0xff);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(~n & 0xff);
    out += static_cast<char>((~n >> 8) & 0xff);
    out.append(plain.substr(0, n));
    plain.remove_prefix(n);
  }
  return out;
}

// Frame contents of `n` bytes from a short seed: repeated, random, words from
// the seed with random separators, or the seed then random runs.
std::string contents(FuzzedDataProvider& fdp, size_t n) {
  const int mode = fdp.ConsumeIntegralInRange<int>(0, 3);
  std::string seed = fdp.ConsumeRandomLengthString(48);
  if (seed.empty()) seed = "data: {\"id\":1}\n\n";
  std::mt19937 rng(fdp.ConsumeIntegral<uint32_t>());
  std::string s;
  s.reserve(n);
  switch (mode) {
    case 0:
      while (s.size() < n) s += seed;
      break;
    case 1:
      while (s.size() < n) s += static_cast<char>(rng() & 0xff);
      break;
    case 2:
      while (s.size() < n) {
        const size_t at = rng() % seed.size();
        s.append(seed, at, 1 + rng() % (seed.size() - at));
        s += " ,:\n"[rng() % 4];
      }
      break;
    default:
      s = seed;
      while (s.size() < n) s.append(1 + rng() % 40, static_cast<char>(rng() & 0xff));
      break;
  }
  s.resize(n);
  return s;
}

size_t frameSize(FuzzedDataProvider& fdp) {
  // Large frames are rare: deflating 200 KB takes longer than the rest of
  // an input.
  const int pick = fdp.ConsumeIntegralInRange<int>(0, 31);
  if (pick == 0) return 0;
  if (pick == 1) return fdp.ConsumeIntegralInRange<size_t>(65530, 65540);   // around one stored block
  if (pick == 2) return fdp.ConsumeIntegralInRange<size_t>(65541, 200000);  // several
  if (pick < 10) return fdp.ConsumeIntegralInRange<size_t>(0, 5000);
  return fdp.ConsumeIntegralInRange<size_t>(0, 300);  // around minBytes
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int64_t live0 = Frame::liveCount();
  {
    const bool gzip = fdp.ConsumeBool();
    compress::StreamCoder coder;
    coder.start(gzip ? compress::Coding::kGzip : compress::Coding::kDeflate);
    FUZZ_CHECK(coder.active(), "a started coder is not active");
    test::Inflater inflater(gzip ? 31 : 15);
    std::string plain;  // the identity stream the body stands for
    size_t bodySize = 0;

    // Feeds one part to zlib: its plain bytes must come out now, whole.
    auto feed = [&](std::string_view part, std::string_view partPlain, const char* what) {
      const std::string got = inflater.feed(part);
      bodySize += part.size();
      FUZZ_CHECK(inflater.ok(), "%s: inflate error %d (%s) at body byte %zu", what, inflater.lastCode(),
                 inflater.message(), bodySize);
      FUZZ_CHECK(!inflater.ended(), "%s: the stream ended before its trailer", what);
      FUZZ_CHECK(got == partPlain, "%s: decoded %s, sent %s", what, show(got).c_str(), show(partPlain).c_str());
      plain.append(partPlain);
    };

    feed(coder.header()->view(), {}, "header");

    compress::Settings settings;
    settings.level = fdp.ConsumeIntegralInRange<int>(1, 9);
    settings.minBytes = fdp.ConsumeIntegralInRange<uint32_t>(0, 600);

    std::string prefix;
    if (fdp.ConsumeBool()) prefix = "id:" + fdp.ConsumeRandomLengthString(40) + "\n";
    const std::string storedPrefix = compress::storedBlocks(prefix);
    FUZZ_CHECK(storedPrefix == storedReference(prefix), "stored prefix %s", show(storedPrefix).c_str());
    const compress::Meta prefixMeta = compress::metaOf(prefix);

    // Sends a frame's variant, after the prefix when it is an event.
    auto send = [&](const FrameRef& f, Frame* v) {
      if (f->kind() == Frame::Kind::kEvent && !prefix.empty()) {
        coder.add(prefixMeta);
        feed(storedPrefix, prefix, "prefix");
      }
      coder.add(compress::metaOfVariant(*v));
      feed(v->view(), f->view(), "variant");
    };

    std::vector<FrameRef> frames;
    std::vector<Frame*> variants;
    while (fdp.remaining_bytes() > 0 && plain.size() < kMaxPlainBytes) {
      const int op = fdp.ConsumeIntegralInRange<int>(0, 9);
      if (op <= 4) {  // a new frame
        if (fdp.ConsumeBool()) settings.level = fdp.ConsumeIntegralInRange<int>(1, 9);
        if (fdp.ConsumeIntegralInRange<int>(0, 3) == 0)
          settings.minBytes = fdp.ConsumeIntegralInRange<uint32_t>(0, 600);
        const size_t n = frameSize(fdp);
        const Frame::Kind kind =
            fdp.ConsumeIntegralInRange<int>(0, 4) == 0 ? Frame::Kind::kControl : Frame::Kind::kEvent;
        FrameRef f(Frame::copyOf(contents(fdp, n), kind));
        const bool noCompress = fdp.ConsumeIntegralInRange<int>(0, 3) == 0;
        if (noCompress) f->markNoCompress();
        Frame* v = compress::variantOf(f.get(), settings);
        FUZZ_CHECK(v && v->coded() && !f->coded(), "variant not coded, or its frame coded");
        FUZZ_CHECK(f->codedVariant() == v, "variant not installed");
        FUZZ_CHECK(compress::variantOf(f.get(), settings) == v, "a second variant made");
        FUZZ_CHECK(v->kind() == kind, "variant of another kind");
        FUZZ_CHECK(v->refCount() == 1, "variant refcount %u", v->refCount());
        const compress::Meta want = compress::metaOf(f->view());
        const compress::Meta got = compress::metaOfVariant(*v);
        FUZZ_CHECK(got.crc == want.crc && got.adler == want.adler && got.crcOp == want.crcOp && got.size == want.size,
                   "meta of a %zu-byte variant: crc %08x adler %08x op %08x size %u, frame: %08x %08x %08x %u", n,
                   got.crc, got.adler, got.crcOp, got.size, want.crc, want.adler, want.crcOp, want.size);
        const std::string stored = storedReference(f->view());
        FUZZ_CHECK(v->size() <= stored.size(), "a %zu-byte variant of %zu bytes, larger than stored (%zu)", n,
                   v->size(), stored.size());
        if (noCompress || n < settings.minBytes) {
          FUZZ_CHECK(v->view() == stored, "%zu bytes (minBytes %u, noCompress %d) not stored as they are", n,
                     settings.minBytes, noCompress);
        }
        send(f, v);
        frames.push_back(std::move(f));
        variants.push_back(v);
      } else if (op <= 6 && !frames.empty()) {  // a frame sent before, to this stream again
        const size_t i = fdp.ConsumeIntegralInRange<size_t>(0, frames.size() - 1);
        compress::Settings other;
        other.level = fdp.ConsumeIntegralInRange<int>(1, 9);
        Frame* v = compress::variantOf(frames[i].get(), other);
        FUZZ_CHECK(v == variants[i], "frame %zu got another variant", i);
        send(frames[i], v);
      } else if (op == 7) {  // a heartbeat: a control frame, never prefixed
        FrameRef hb(Frame::copyOf(fdp.ConsumeBool() ? ": \n\n" : ": " + fdp.ConsumeRandomLengthString(20) + "\n\n",
                                  Frame::Kind::kControl));
        send(hb, compress::variantOf(hb.get(), settings));
      } else {  // per-connection bytes, sent as stored blocks
        const std::string bytes = fdp.ConsumeRandomLengthString(fdp.ConsumeBool() ? 64 : 70000);
        const std::string blocks = compress::storedBlocks(bytes);
        FUZZ_CHECK(blocks == storedReference(bytes), "stored blocks of %zu bytes", bytes.size());
        coder.add(compress::metaOf(bytes));
        feed(blocks, bytes, "stored part");
      }
    }

    FrameRef trailer = coder.trailer();
    FUZZ_CHECK(trailer->coded() && trailer->size() == (gzip ? 10u : 6u), "trailer of %zu bytes", trailer->size());
    const std::string last = inflater.feed(trailer->view());
    FUZZ_CHECK(last.empty(), "the trailer decoded to %s", show(last).c_str());
    FUZZ_CHECK(inflater.ended(), "no Z_STREAM_END at the trailer: code %d (%s), %zu plain bytes, %s",
               inflater.lastCode(), inflater.message(), plain.size(), gzip ? "gzip" : "deflate");
    FUZZ_CHECK(inflater.trailing() == 0, "%zu bytes after the end of the stream", inflater.trailing());
    FUZZ_CHECK(inflater.out() == plain, "inflated %zu bytes, sent %zu", inflater.out().size(), plain.size());
  }
  FUZZ_CHECK(Frame::liveCount() == live0, "frames leaked: %lld live, %lld before",
             static_cast<long long>(Frame::liveCount()), static_cast<long long>(live0));
  return 0;
}
