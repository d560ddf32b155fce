// Tests for the body codings (src/compress/body_coding): a frame's coded
// variant, stored blocks, the checksums a stream's trailer combines, and
// StreamCoder's header and trailer, all decoded by zlib itself
// (test/cpp/zlib_inflate.hpp) rather than by a decoder of our own.
//
// A body is put together here the way Shard::enqueue does it: the coding's
// header, then for each frame its coded variant (or a per-connection part,
// such as the PocketBase id prefix, as stored blocks), each add()ed to the
// StreamCoder, then its trailer. Its inflate must be the plain concatenation,
// and reach Z_STREAM_END: zlib checks the CRC-32 and ISIZE (gzip) or the
// Adler-32 (zlib) there, so a wrong combine fails the test.
//
// Every test checks Frame::liveCount() at the end: a variant is freed with
// its frame, and a thread that loses the install race frees its own.
#include "body_coding.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <barrier>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "frame.hpp"
#include "zlib_inflate.hpp"

namespace ssefanout::compress {
namespace {

using test::inflateBody;
using test::Inflated;
using test::Inflater;

constexpr int kRaw = -15;
constexpr int kZlib = 15;
constexpr int kGzip = 31;

// JSON records as an SSE stream carries them: compressible, not repetitive
// in a way that makes every level equal.
std::string jsonText(size_t n, uint32_t seed) {
  static constexpr const char* kWords[] = {"alpha", "beta",  "gamma", "delta", "sensor", "reading", "ok",   "warn",
                                           "north", "south", "queue", "topic", "chat",   "room",    "user", "price"};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) {
    s += "{\"id\":" + std::to_string(rng() % 100000) + ",\"user\":\"" + kWords[rng() % 16] +
         std::to_string(rng() % 100) + "\",\"text\":\"";
    for (int w = static_cast<int>(rng() % 8); w >= 0; --w) {
      s += kWords[rng() % 16];
      s += ' ';
    }
    s += "\",\"value\":" + std::to_string(rng() % 10000) + "}\n";
  }
  s.resize(n);
  return s;
}

// Bytes DEFLATE cannot shrink.
std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

FrameRef frameOf(std::string_view bytes, bool noCompress = false) {
  FrameRef f(Frame::copyOf(bytes));
  if (noCompress) f->markNoCompress();
  return f;
}

// A stored block is "00 LEN NLEN" (BFINAL 0, BTYPE 00, little-endian lengths)
// and LEN bytes as they are; a compressed block starts with BTYPE 01 or 10.
bool isStored(std::string_view coded) {
  return !coded.empty() && ((static_cast<unsigned char>(coded[0]) >> 1) & 3) == 0;
}

// The stored-block framing of `plain`, written here independently.
std::string storedReference(std::string_view plain) {
  std::string out;
  do {
    const size_t n = std::min<size_t>(plain.size(), 65535);
    out += '\0';
    out += static_cast<char>(n & 0xff);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(~n & 0xff);
    out += static_cast<char>((~n >> 8) & 0xff);
    out.append(plain.substr(0, n));
    plain.remove_prefix(n);
  } while (!plain.empty());
  return out;
}

// A body as a compressed stream is sent: header, parts, trailer.
class Body {
 public:
  explicit Body(Coding coding) {
    coder_.start(coding);
    header_ = std::string(coder_.header()->view());
  }
  // A frame's coded variant (shared, made on first use).
  Frame* frame(const FrameRef& f, const Settings& settings = Settings()) {
    Frame* v = variantOf(f.get(), settings);
    parts_ += v->view();
    coder_.add(metaOfVariant(*v));
    plain_ += f->view();
    return v;
  }
  // A per-connection part (the event prefix, as the Shard sends it).
  void stored(std::string_view bytes) {
    parts_ += storedBlocks(bytes);
    coder_.add(metaOf(bytes));
    plain_ += bytes;
  }
  const std::string& header() const { return header_; }
  const std::string& parts() const { return parts_; }
  const std::string& plain() const { return plain_; }
  std::string trailer() const { return std::string(coder_.trailer()->view()); }
  std::string whole() const { return header_ + parts_ + trailer(); }

 private:
  StreamCoder coder_;
  std::string header_, parts_, plain_;
};

// A mixed stream: stored prefixes, small (stored) and large (deflated) events,
// an event published with compression off, a heartbeat.
void fillMixed(Body& body, std::vector<FrameRef>& keep) {
  const std::string prefix = "id:C7c2Kq0z\n";
  auto add = [&](FrameRef f, bool prefixed) {
    if (prefixed) body.stored(prefix);
    body.frame(f);
    keep.push_back(std::move(f));
  };
  add(frameOf("retry: 3000\n\n"), false);
  add(frameOf("data: " + jsonText(900, 1) + "\n\n"), true);
  add(frameOf("event: tiny\ndata: x\n\n"), true);
  add(frameOf(": \n\n"), false);
  add(frameOf("data: " + jsonText(5000, 2) + "\n\n", /*noCompress=*/true), true);
  add(frameOf("data: " + jsonText(300, 3) + "\n\n"), true);
  add(frameOf(randomBytes(2000, 4)), true);
}

class BodyCodingTest : public ::testing::Test {
 protected:
  void SetUp() override { live0_ = Frame::liveCount(); }
  void TearDown() override { EXPECT_EQ(Frame::liveCount(), live0_) << "frames (or variants) leaked"; }
  int64_t live0_ = 0;
};

TEST_F(BodyCodingTest, CodingNamesAreTheContentEncodingTokens) {
  EXPECT_EQ(codingName(Coding::kGzip), "gzip");
  EXPECT_EQ(codingName(Coding::kDeflate), "deflate");
  EXPECT_EQ(codingName(Coding::kIdentity), "");
}

TEST_F(BodyCodingTest, HeadersAndTrailersOfAnEmptyBody) {
  StreamCoder gz;
  gz.start(Coding::kGzip);
  EXPECT_TRUE(gz.active());
  FrameRef h = gz.header();
  EXPECT_TRUE(h->coded());
  EXPECT_EQ(h->kind(), Frame::Kind::kControl);
  EXPECT_EQ(h->view(), std::string_view("\x1f\x8b\x08\0\0\0\0\0\0\xff", 10));
  // Final empty fixed-Huffman block, CRC-32 0, ISIZE 0.
  EXPECT_EQ(gz.trailer()->view(), std::string_view("\x03\0\0\0\0\0\0\0\0\0", 10));
  EXPECT_TRUE(gz.trailer()->coded());

  StreamCoder zl;
  zl.start(Coding::kDeflate);
  EXPECT_EQ(zl.header()->view(), "\x78\x9c");
  EXPECT_EQ((0x78 * 256 + 0x9c) % 31, 0);
  // Final empty block, Adler-32 of nothing (1), big-endian.
  EXPECT_EQ(zl.trailer()->view(), std::string_view("\x03\0\0\0\0\x01", 6));

  for (auto [coding, bits] : {std::pair{Coding::kGzip, kGzip}, std::pair{Coding::kDeflate, kZlib}}) {
    Body empty(coding);
    Inflated r = inflateBody(empty.whole(), bits);
    EXPECT_TRUE(r.ended) << r.message;
    EXPECT_EQ(r.bytes, "");
    EXPECT_EQ(r.trailing, 0u);
  }

  StreamCoder none;
  EXPECT_FALSE(none.active());
  none.start(Coding::kIdentity);
  EXPECT_FALSE(none.active());
}

TEST_F(BodyCodingTest, RawInflateOfVariantsAndStoredPrefixesIsTheConcatenation) {
  std::vector<FrameRef> keep;
  Body body(Coding::kGzip);
  fillMixed(body, keep);
  // The parts alone are a DEFLATE stream with no final block: it ends with
  // the trailer's first two bytes (the final empty block, 03 00).
  const std::string trailer = body.trailer();
  ASSERT_EQ(trailer.substr(0, 2), std::string_view("\x03\0", 2));
  Inflated r = inflateBody(body.parts() + trailer.substr(0, 2), kRaw);
  EXPECT_TRUE(r.ended) << r.message;
  EXPECT_EQ(r.bytes, body.plain());
  EXPECT_EQ(r.trailing, 0u);
  // Without it the stream decodes as far as it goes and does not end.
  Inflated open = inflateBody(body.parts(), kRaw);
  EXPECT_FALSE(open.ended);
  EXPECT_EQ(open.code, Z_OK);
  EXPECT_EQ(open.bytes, body.plain());
}

TEST_F(BodyCodingTest, GzipBodyInflatesAndZlibChecksItsCrcAndLength) {
  std::vector<FrameRef> keep;
  Body body(Coding::kGzip);
  fillMixed(body, keep);
  const std::string whole = body.whole();
  Inflated r = inflateBody(whole, kGzip);
  EXPECT_TRUE(r.ended) << r.message;
  EXPECT_EQ(r.code, Z_STREAM_END);
  EXPECT_EQ(r.bytes, body.plain());
  EXPECT_EQ(r.trailing, 0u);
  // The trailer spelled out: CRC-32 and ISIZE of the plain bytes, little-endian.
  const std::string trailer = body.trailer();
  ASSERT_EQ(trailer.size(), 10u);
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.plain().data()), static_cast<uInt>(body.plain().size())));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(static_cast<unsigned char>(trailer[2 + i]), (crc >> (8 * i)) & 0xff) << i;
    EXPECT_EQ(static_cast<unsigned char>(trailer[6 + i]), (body.plain().size() >> (8 * i)) & 0xff) << i;
  }
  // zlib does check them: a wrong CRC or length is an error, not an end.
  for (size_t at : {whole.size() - 8, whole.size() - 1}) {
    std::string bad = whole;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    Inflated b = inflateBody(bad, kGzip);
    EXPECT_FALSE(b.ended) << at;
    EXPECT_EQ(b.code, Z_DATA_ERROR) << at;
  }
  // And a part left out (a prefix a connection never sent) breaks the check.
  Body missing(Coding::kGzip);
  missing.stored("id:x\n");
  FrameRef f = frameOf("data: " + jsonText(500, 9) + "\n\n");
  missing.frame(f);
  const std::string cut = missing.header() + missing.parts().substr(storedBlocks("id:x\n").size()) + missing.trailer();
  EXPECT_EQ(inflateBody(cut, kGzip).code, Z_DATA_ERROR);
}

TEST_F(BodyCodingTest, ZlibBodyInflatesAndZlibChecksItsAdler) {
  std::vector<FrameRef> keep;
  Body body(Coding::kDeflate);
  fillMixed(body, keep);
  const std::string whole = body.whole();
  Inflated r = inflateBody(whole, kZlib);
  EXPECT_TRUE(r.ended) << r.message;
  EXPECT_EQ(r.code, Z_STREAM_END);
  EXPECT_EQ(r.bytes, body.plain());
  EXPECT_EQ(r.trailing, 0u);
  const std::string trailer = body.trailer();
  ASSERT_EQ(trailer.size(), 6u);
  const auto adler = static_cast<uint32_t>(
      adler32(1, reinterpret_cast<const Bytef*>(body.plain().data()), static_cast<uInt>(body.plain().size())));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(static_cast<unsigned char>(trailer[2 + i]), (adler >> (24 - 8 * i)) & 0xff);
  std::string bad = whole;
  bad.back() = static_cast<char>(bad.back() ^ 0x80);
  Inflated b = inflateBody(bad, kZlib);
  EXPECT_FALSE(b.ended);
  EXPECT_EQ(b.code, Z_DATA_ERROR);
}

TEST_F(BodyCodingTest, EachPartDecodesAsSoonAsItArrives) {
  // What EventSource needs: no byte of a frame is held back until the next
  // one (every variant ends on a byte boundary, after a sync flush).
  for (auto [coding, bits] : {std::pair{Coding::kGzip, kGzip}, std::pair{Coding::kDeflate, kZlib}}) {
    Body body(coding);
    Inflater in(bits);
    EXPECT_EQ(in.feed(body.header()), "");
    std::vector<FrameRef> keep;
    for (int i = 0; i < 12; ++i) {
      const size_t before = body.parts().size();
      const size_t plainBefore = body.plain().size();
      if (i % 3 == 0) {
        body.stored("id:abc\n");
      } else {
        keep.push_back(frameOf("data: " + jsonText(40 + 400 * i, i) + "\n\n", i % 4 == 0));
        body.frame(keep.back());
      }
      const std::string got = in.feed(std::string_view(body.parts()).substr(before));
      EXPECT_EQ(got, body.plain().substr(plainBefore)) << "part " << i;
      EXPECT_TRUE(in.ok()) << in.message();
      EXPECT_FALSE(in.ended());
    }
    EXPECT_EQ(in.feed(body.trailer()), "");
    EXPECT_TRUE(in.ended()) << in.message();
    EXPECT_EQ(in.out(), body.plain());
  }
}

TEST_F(BodyCodingTest, VariantsDoNotDependOnWhatCameBefore) {
  // Each variant decodes alone from a fresh decoder (no back-reference before
  // its start), and the same variants in any order make a valid body.
  std::vector<FrameRef> frames;
  for (uint32_t i = 0; i < 5; ++i) frames.push_back(frameOf("data: " + jsonText(700 + 300 * i, 100 + i) + "\n\n"));
  for (const FrameRef& f : frames) {
    Frame* v = variantOf(f.get(), Settings());
    EXPECT_TRUE(v->coded());
    EXPECT_FALSE(isStored(v->view())) << "a compressible frame was stored";
    Inflated r = inflateBody(std::string(v->view()) + std::string("\x03\0", 2), kRaw);
    EXPECT_TRUE(r.ended) << r.message;
    EXPECT_EQ(r.bytes, f->view());
  }
  for (const std::vector<int>& order : {std::vector<int>{0, 1, 2, 3, 4}, {4, 2, 0, 3, 1}, {3, 3, 1, 1, 0}}) {
    Body body(Coding::kGzip);
    for (int i : order) body.frame(frames[i]);
    Inflated r = inflateBody(body.whole(), kGzip);
    EXPECT_TRUE(r.ended) << r.message;
    EXPECT_EQ(r.bytes, body.plain());
  }
}

TEST_F(BodyCodingTest, FramesLargerThanAStoredBlock) {
  // Incompressible: stored, in blocks of at most 65,535 bytes.
  for (size_t n : {size_t{65535}, size_t{65536}, size_t{200 * 1024}}) {
    FrameRef f = frameOf(randomBytes(n, static_cast<uint32_t>(n)));
    Frame* v = variantOf(f.get(), Settings());
    const size_t blocks = (n + 65534) / 65535;
    EXPECT_EQ(v->size(), n + 5 * blocks) << n;
    EXPECT_EQ(v->view(), storedReference(f->view())) << n;
    EXPECT_EQ(storedBlocks(f->view()), storedReference(f->view())) << n;
  }
  // Compressible: deflated, far smaller, over several DEFLATE blocks.
  FrameRef big = frameOf("data: " + jsonText(200 * 1024, 77) + "\n\n");
  Frame* v = variantOf(big.get(), Settings());
  EXPECT_FALSE(isStored(v->view()));
  EXPECT_LT(v->size(), big->size() / 3);
  FrameRef stored = frameOf(randomBytes(200 * 1024, 78));
  for (auto [coding, bits] : {std::pair{Coding::kGzip, kGzip}, std::pair{Coding::kDeflate, kZlib}}) {
    Body body(coding);
    body.stored("id:x\n");
    body.frame(big);
    body.stored("id:x\n");
    body.frame(stored);
    body.frame(big);
    Inflated r = inflateBody(body.whole(), bits);
    EXPECT_TRUE(r.ended) << r.message;
    EXPECT_TRUE(r.bytes == body.plain()) << "the inflated body differs (" << r.bytes.size() << " bytes, "
                                         << body.plain().size() << " sent)";
  }
}

TEST_F(BodyCodingTest, MinBytesAndNoCompressGiveStoredVariantsThatHoldThePlaintext) {
  const Settings defaults;
  ASSERT_EQ(defaults.minBytes, 128u);
  ASSERT_EQ(defaults.level, 6);
  auto expectStored = [](const FrameRef& f, Frame* v, const char* what) {
    EXPECT_TRUE(isStored(v->view())) << what;
    EXPECT_EQ(v->view(), storedReference(f->view())) << what;
    EXPECT_NE(v->view().find(f->view()), std::string_view::npos) << what << ": plaintext not in the variant";
  };
  // Below minBytes: stored, even though it would compress.
  const std::string text = jsonText(4096, 5);
  FrameRef small = frameOf(text.substr(0, 127));
  expectStored(small, variantOf(small.get(), defaults), "127 bytes");
  // At minBytes: compressed.
  FrameRef at = frameOf(text.substr(0, 128));
  EXPECT_FALSE(isStored(variantOf(at.get(), defaults)->view()));
  EXPECT_LT(variantOf(at.get(), defaults)->size(), 128u);
  // Compression off for this event: stored, however large.
  FrameRef off = frameOf(text, /*noCompress=*/true);
  EXPECT_TRUE(off->noCompress());
  expectStored(off, variantOf(off.get(), defaults), "noCompress");
  // A higher minBytes.
  Settings high;
  high.minBytes = 5000;
  FrameRef mid = frameOf(text);
  expectStored(mid, variantOf(mid.get(), high), "4096 bytes under minBytes 5000");
  // minBytes 0: a frame that would not shrink is stored all the same.
  Settings zero;
  zero.minBytes = 0;
  FrameRef one = frameOf("x");
  expectStored(one, variantOf(one.get(), zero), "1 byte");
  // An empty frame: an empty variant, and the checksums of nothing.
  FrameRef empty = frameOf("");
  Frame* ve = variantOf(empty.get(), zero);
  EXPECT_EQ(ve->size(), 0u);
  const Meta me = metaOfVariant(*ve);
  EXPECT_EQ(me.size, 0u);
  EXPECT_EQ(me.crc, 0u);
  EXPECT_EQ(me.adler, 1u);
  // Every one decodes in a body.
  Body body(Coding::kGzip);
  for (const FrameRef* f : {&small, &at, &off, &one, &empty}) body.frame(*f);
  body.frame(mid, high);
  Inflated r = inflateBody(body.whole(), kGzip);
  EXPECT_TRUE(r.ended) << r.message;
  EXPECT_EQ(r.bytes, body.plain());
}

TEST_F(BodyCodingTest, LevelsOneAndNine) {
  const std::string text = "data: " + jsonText(32 * 1024, 11) + "\n\n";
  Settings fast, best;
  fast.level = 1;
  best.level = 9;
  FrameRef f1 = frameOf(text), f9 = frameOf(text);
  Frame* v1 = variantOf(f1.get(), fast);
  Frame* v9 = variantOf(f9.get(), best);
  EXPECT_FALSE(isStored(v1->view()));
  EXPECT_FALSE(isStored(v9->view()));
  EXPECT_LT(v1->size(), text.size() / 2);
  EXPECT_LE(v9->size(), v1->size());
  EXPECT_NE(v1->view(), v9->view());
  for (Frame* v : {v1, v9}) {
    Inflated r = inflateBody(std::string(v->view()) + std::string("\x03\0", 2), kRaw);
    EXPECT_TRUE(r.ended) << r.message;
    EXPECT_EQ(r.bytes, text);
  }
  // One variant per frame: the first settings made it, later callers share it.
  EXPECT_EQ(variantOf(f1.get(), best), v1);
  Body body(Coding::kDeflate);
  body.frame(f1);
  body.frame(f9);
  Inflated r = inflateBody(body.whole(), kZlib);
  EXPECT_TRUE(r.ended) << r.message;
  EXPECT_EQ(r.bytes, body.plain());
}

TEST_F(BodyCodingTest, VariantIsMadeOnceAndFreedWithItsFrame) {
  Frame* f = Frame::copyOf("data: " + jsonText(1000, 21) + "\n\n");
  EXPECT_EQ(f->codedVariant(), nullptr);
  EXPECT_FALSE(f->coded());
  Frame* v = variantOf(f, Settings());
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(variantOf(f, Settings()), v);
  EXPECT_EQ(f->codedVariant(), v);
  EXPECT_TRUE(v->coded());
  EXPECT_EQ(v->kind(), f->kind());
  EXPECT_EQ(v->refCount(), 1u);  // the frame's reference only
  EXPECT_EQ(Frame::liveCount(), live0_ + 2);
  // A stream holds the variant by reference, as the Shard's outboxes do.
  FrameRef held = FrameRef::share(v);
  EXPECT_EQ(v->refCount(), 2u);
  f->release();
  EXPECT_EQ(Frame::liveCount(), live0_ + 1);  // the variant outlives its frame while held
  Inflated r = inflateBody(std::string(held->view()) + std::string("\x03\0", 2), kRaw);
  EXPECT_TRUE(r.ended);
  held = FrameRef();
  EXPECT_EQ(Frame::liveCount(), live0_);

  // Kinds are kept: a control frame (a heartbeat) has a control variant.
  FrameRef hb(Frame::copyOf(": \n\n", Frame::Kind::kControl));
  EXPECT_EQ(variantOf(hb.get(), Settings())->kind(), Frame::Kind::kControl);
}

TEST_F(BodyCodingTest, MetaOfVariantIsTheMetaOfThePlainBytes) {
  for (size_t n : {size_t{0}, size_t{5}, size_t{127}, size_t{128}, size_t{4000}, size_t{70000}}) {
    for (bool noCompress : {false, true}) {
      FrameRef f = frameOf(jsonText(n, static_cast<uint32_t>(n)), noCompress);
      const Meta want = metaOf(f->view());
      const Meta got = metaOfVariant(*variantOf(f.get(), Settings()));
      EXPECT_EQ(got.crc, want.crc) << n;
      EXPECT_EQ(got.adler, want.adler) << n;
      EXPECT_EQ(got.crcOp, want.crcOp) << n;
      EXPECT_EQ(got.size, want.size) << n;
      EXPECT_EQ(want.size, n);
    }
  }
}

TEST_F(BodyCodingTest, MetaCrcOpCombinesCrc32) {
  // crc32_combine_op(a, b, metaOf(x).crcOp) is the CRC-32 of a's bytes then x's.
  const std::string first = randomBytes(1000, 31);
  const auto crcOf = [](std::string_view s) {
    return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
  };
  const auto adlerOf = [](std::string_view s) {
    return static_cast<uint32_t>(adler32(1, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
  };
  for (size_t n : {size_t{0}, size_t{1}, size_t{65535}, size_t{1000000}}) {
    const std::string x = randomBytes(n, static_cast<uint32_t>(n) + 1);
    const Meta m = metaOf(x);
    EXPECT_EQ(m.size, n);
    EXPECT_EQ(m.crc, crcOf(x)) << n;
    EXPECT_EQ(m.adler, adlerOf(x)) << n;
    EXPECT_EQ(m.crcOp, static_cast<uint32_t>(crc32_combine_gen(static_cast<z_off_t>(n)))) << n;
    EXPECT_EQ(static_cast<uint32_t>(crc32_combine_op(crcOf(first), m.crc, m.crcOp)), crcOf(first + x)) << n;
    EXPECT_EQ(static_cast<uint32_t>(adler32_combine(adlerOf(first), m.adler, static_cast<z_off_t>(n))),
              adlerOf(first + x))
        << n;
  }
}

TEST_F(BodyCodingTest, RandomBodiesInflateExactly) {
  // A seeded reference check beside the fuzz target (fuzz/body_coding_fuzz.cpp):
  // random frames, settings and per-connection parts, both codings.
  std::mt19937 rng(2026);
  for (int round = 0; round < 60; ++round) {
    const Coding coding = round % 2 ? Coding::kGzip : Coding::kDeflate;
    Body body(coding);
    std::vector<FrameRef> keep;
    Settings s;
    s.level = 1 + static_cast<int>(rng() % 9);
    s.minBytes = rng() % 300;
    const int parts = static_cast<int>(rng() % 20);
    for (int i = 0; i < parts; ++i) {
      const uint32_t pick = rng() % 10;
      const size_t n = pick < 6 ? rng() % 600 : rng() % 90000;
      if (pick == 0) {
        body.stored("id:" + std::to_string(rng()) + "\n");
      } else {
        keep.push_back(frameOf(pick % 3 ? jsonText(n, rng()) : randomBytes(n, rng()), rng() % 5 == 0));
        body.frame(keep.back(), s);
      }
    }
    Inflated r = inflateBody(body.whole(), coding == Coding::kGzip ? kGzip : kZlib);
    ASSERT_TRUE(r.ended) << "round " << round << ": " << r.message;
    ASSERT_TRUE(r.bytes == body.plain()) << "round " << round;
    ASSERT_EQ(r.trailing, 0u);
  }
}

TEST_F(BodyCodingTest, VariantRace) {
  // Four threads ask for the variants of the same fresh frames at the same
  // moment (a barrier per frame), as the JS thread (Dispatcher::precode) and
  // I/O threads (Shard::enqueue) may. Each gets the one installed variant and
  // reads its bytes (under ThreadSanitizer, a publication without
  // release/acquire would show here); the losers' variants are freed.
  constexpr int kThreads = 4;
  constexpr int kFrames = 1000;
  std::vector<FrameRef> frames;
  std::mt19937 rng(404);
  for (int i = 0; i < kFrames; ++i) {
    const size_t n = 64 + rng() % 3000;
    frames.push_back(frameOf("data: " + jsonText(n, rng()) + "\n\n", i % 10 == 0));
  }
  const int64_t live = Frame::liveCount();
  std::vector<std::vector<Frame*>> got(kThreads, std::vector<Frame*>(kFrames, nullptr));
  std::vector<std::vector<uint32_t>> crcs(kThreads, std::vector<uint32_t>(kFrames, 0));
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kFrames; ++i) {
        sync.arrive_and_wait();
        Frame* v = variantOf(frames[i].get(), Settings());
        got[t][i] = v;
        crcs[t][i] =
            static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(v->data()), static_cast<uInt>(v->size())));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int i = 0; i < kFrames; ++i) {
    Frame* v = frames[i]->codedVariant();
    ASSERT_NE(v, nullptr) << i;
    const auto crc =
        static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(v->data()), static_cast<uInt>(v->size())));
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_EQ(got[t][i], v) << "thread " << t << " frame " << i;
      ASSERT_EQ(crcs[t][i], crc) << "thread " << t << " frame " << i;
    }
    EXPECT_EQ(v->refCount(), 1u) << i;
  }
  // One frame and one variant each: every variant that lost the race is gone.
  EXPECT_EQ(Frame::liveCount(), live + kFrames);
  Body body(Coding::kGzip);
  for (const FrameRef& f : frames) body.frame(f);
  Inflated r = inflateBody(body.whole(), kGzip);
  EXPECT_TRUE(r.ended) << r.message;
  EXPECT_TRUE(r.bytes == body.plain());
  frames.clear();
  EXPECT_EQ(Frame::liveCount(), live - kFrames);
}

}  // namespace
}  // namespace ssefanout::compress
