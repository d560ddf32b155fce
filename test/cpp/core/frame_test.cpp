// Tests for Frame (refcounted immutable bytes) and FrameRef (owning handle).
// Frame::liveCount() proves every path frees exactly once.
#include "frame.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <latch>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace ssefanout {
namespace {

// Independent reference: lowercase hex via iostreams, then CRLF.
std::string hexHeader(size_t n) {
  std::ostringstream os;
  os << std::hex << n << "\r\n";
  return os.str();
}

class FrameTest : public ::testing::Test {
 protected:
  void SetUp() override { baseline_ = Frame::liveCount(); }
  void TearDown() override { EXPECT_EQ(Frame::liveCount(), baseline_) << "frames leaked or double-freed"; }
  int64_t baseline_ = 0;
};

TEST_F(FrameTest, AllocateStartsWithOneReference) {
  Frame* f = Frame::allocate(10);
  EXPECT_EQ(f->refCount(), 1u);
  EXPECT_EQ(f->size(), 10u);
  EXPECT_EQ(f->kind(), Frame::Kind::kEvent);
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);
  std::memset(f->mutableData(), 'q', 10);
  EXPECT_EQ(f->view(), "qqqqqqqqqq");
  EXPECT_EQ(f->data(), f->mutableData());
  f->release();
  EXPECT_EQ(Frame::liveCount(), baseline_);
}

TEST_F(FrameTest, CopyOfCopiesBytesIncludingNul) {
  const std::string bytes("a\0b\r\n", 5);
  FrameRef f(Frame::copyOf(bytes));
  EXPECT_EQ(f->view(), bytes);
  EXPECT_NE(f->data(), bytes.data());
  EXPECT_EQ(f->size(), 5u);
}

TEST_F(FrameTest, EmptyFrame) {
  FrameRef f(Frame::copyOf(""));
  EXPECT_EQ(f->size(), 0u);
  EXPECT_TRUE(f->view().empty());
  EXPECT_EQ(f->chunkHeader(), "0\r\n");
  EXPECT_EQ(f->refCount(), 1u);
}

TEST_F(FrameTest, RetainReleaseCounts) {
  Frame* f = Frame::copyOf("x");
  f->retain();
  EXPECT_EQ(f->refCount(), 2u);
  f->retain(5);
  EXPECT_EQ(f->refCount(), 7u);
  for (int i = 0; i < 6; ++i) f->release();
  EXPECT_EQ(f->refCount(), 1u);
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);
  f->release();
  EXPECT_EQ(Frame::liveCount(), baseline_);
}

TEST_F(FrameTest, DataFollowsHeaderInOneAllocation) {
  FrameRef f(Frame::copyOf("abc"));
  EXPECT_EQ(f->data(), reinterpret_cast<const char*>(f.get()) + sizeof(Frame));
}

TEST_F(FrameTest, ChunkHeaderHex) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{9}, size_t{10}, size_t{15}, size_t{16}, size_t{17}, size_t{255},
                   size_t{256}, size_t{4095}, size_t{4096}, size_t{65535}, size_t{65536}, size_t{0xABCDE},
                   size_t{1} << 20, (size_t{1} << 24) + 1}) {
    FrameRef f(Frame::allocate(n));
    EXPECT_EQ(f->chunkHeader(), hexHeader(n)) << n;
  }
  // Spelled out, so a wrong reference function could not hide a bug.
  auto header = [](size_t n) { return std::string(FrameRef(Frame::allocate(n))->chunkHeader()); };
  EXPECT_EQ(header(0), "0\r\n");
  EXPECT_EQ(header(1), "1\r\n");
  EXPECT_EQ(header(15), "f\r\n");
  EXPECT_EQ(header(16), "10\r\n");
  EXPECT_EQ(header(255), "ff\r\n");
  EXPECT_EQ(header(4096), "1000\r\n");
  EXPECT_EQ(header(0xABCDE), "abcde\r\n");
}

TEST_F(FrameTest, ChunkHeaderForSizesTooBigToAllocate) {
  char buf[Frame::kMaxChunkHeader + 8];
  for (size_t n : {size_t{0}, size_t{1}, size_t{0xfff}, size_t{UINT32_MAX}, size_t{UINT32_MAX} + 1,
                   (size_t{1} << 60) - 1, size_t{1} << 60, SIZE_MAX - 1, SIZE_MAX}) {
    std::memset(buf, '#', sizeof buf);
    size_t len = Frame::writeChunkHeader(n, buf);
    EXPECT_EQ(std::string(buf, len), hexHeader(n)) << n;
    EXPECT_LE(len, Frame::kMaxChunkHeader);
    for (size_t i = len; i < sizeof buf; ++i) EXPECT_EQ(buf[i], '#') << "wrote past the header at " << i;
  }
  EXPECT_EQ(Frame::writeChunkHeader(SIZE_MAX, buf), 18u);
  EXPECT_EQ(std::string(buf, 18), "ffffffffffffffff\r\n");
}

TEST_F(FrameTest, RawFrameHasNoChunkFraming) {
  FrameRef f(Frame::copyOf("HTTP/1.1 200 OK\r\n\r\n", Frame::Kind::kRaw));
  EXPECT_EQ(f->kind(), Frame::Kind::kRaw);
  EXPECT_TRUE(f->chunkHeader().empty());
  EXPECT_EQ(f->wireSize(false), 19u);
  EXPECT_EQ(f->wireSize(true), 19u);
}

TEST_F(FrameTest, WireSize) {
  FrameRef small(Frame::copyOf("data: x\n\n"));  // 9 bytes: "9\r\n" + 9 + "\r\n"
  EXPECT_EQ(small->wireSize(false), 9u);
  EXPECT_EQ(small->wireSize(true), 3u + 9u + 2u);
  FrameRef big(Frame::allocate(4096));  // "1000\r\n"
  EXPECT_EQ(big->wireSize(false), 4096u);
  EXPECT_EQ(big->wireSize(true), 6u + 4096u + 2u);
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{300}, size_t{70000}}) {
    FrameRef f(Frame::allocate(n));
    EXPECT_EQ(f->wireSize(true), f->chunkHeader().size() + n + 2) << n;
  }
}

TEST_F(FrameTest, EmptyFramePutsNothingOnTheWire) {
  // A zero-size chunk is the last-chunk: sending one would end the body.
  FrameRef f(Frame::copyOf(""));
  EXPECT_EQ(f->wireSize(false), 0u);
  EXPECT_EQ(f->wireSize(true), 0u);
}

TEST(FrameDeathTest, AllocateRefusesSizesThatWrapTheAllocation) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // sizeof(Frame) + size would wrap to a tiny block; writing `size` bytes into
  // it would overrun the heap.
  EXPECT_DEATH(Frame::allocate(SIZE_MAX), "");
  EXPECT_DEATH(Frame::allocate(SIZE_MAX - sizeof(Frame) + 1), "");
}

// ---------------------------------------------------------------------------
// FrameRef.

TEST_F(FrameTest, RefDefaultIsNull) {
  FrameRef r;
  EXPECT_FALSE(r);
  EXPECT_EQ(r.get(), nullptr);
  EXPECT_EQ(r.detach(), nullptr);
  FrameRef copy(r);
  EXPECT_FALSE(copy);
  FrameRef shared = FrameRef::share(nullptr);
  EXPECT_FALSE(shared);
}

TEST_F(FrameTest, RefAdoptsWithoutRetaining) {
  Frame* f = Frame::copyOf("x");
  {
    FrameRef r(f);
    EXPECT_TRUE(r);
    EXPECT_EQ(r.get(), f);
    EXPECT_EQ(r->refCount(), 1u);
  }
  EXPECT_EQ(Frame::liveCount(), baseline_);
}

TEST_F(FrameTest, ShareRetains) {
  FrameRef owner(Frame::copyOf("x"));
  {
    FrameRef s = FrameRef::share(owner.get());
    EXPECT_EQ(s.get(), owner.get());
    EXPECT_EQ(owner->refCount(), 2u);
  }
  EXPECT_EQ(owner->refCount(), 1u);
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);
}

TEST_F(FrameTest, CopyConstructAndAssign) {
  FrameRef a(Frame::copyOf("a"));
  FrameRef b(a);
  EXPECT_EQ(a->refCount(), 2u);
  EXPECT_EQ(a.get(), b.get());

  FrameRef c(Frame::copyOf("c"));
  EXPECT_EQ(Frame::liveCount(), baseline_ + 2);
  c = a;  // drops "c"
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);
  EXPECT_EQ(a->refCount(), 3u);
  EXPECT_EQ(c->view(), "a");
}

TEST_F(FrameTest, SelfAssignmentKeepsTheReference) {
  FrameRef a(Frame::copyOf("a"));
  FrameRef& alias = a;
  a = alias;
  EXPECT_EQ(a->refCount(), 1u);
  a = std::move(alias);
  EXPECT_TRUE(a);
  EXPECT_EQ(a->refCount(), 1u);
  EXPECT_EQ(a->view(), "a");
}

TEST_F(FrameTest, MoveConstructAndAssign) {
  FrameRef a(Frame::copyOf("a"));
  Frame* raw = a.get();
  FrameRef b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is documented null
  EXPECT_EQ(b.get(), raw);
  EXPECT_EQ(raw->refCount(), 1u);

  FrameRef c(Frame::copyOf("c"));
  c = std::move(b);  // drops "c"
  EXPECT_FALSE(b);   // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(c.get(), raw);
  EXPECT_EQ(raw->refCount(), 1u);
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);

  c = FrameRef();
  EXPECT_EQ(Frame::liveCount(), baseline_);
  static_assert(std::is_nothrow_move_constructible_v<FrameRef>);
  static_assert(std::is_nothrow_move_assignable_v<FrameRef>);
}

TEST_F(FrameTest, DetachHandsOverTheReference) {
  FrameRef a(Frame::copyOf("a"));
  Frame* raw = a.detach();
  EXPECT_FALSE(a);
  EXPECT_EQ(raw->refCount(), 1u);
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);
  FrameRef again(raw);  // adopt it back
  EXPECT_EQ(again->refCount(), 1u);
}

TEST_F(FrameTest, VectorOfRefsSharesOneFrame) {
  FrameRef a(Frame::copyOf("shared"));
  std::vector<FrameRef> refs;
  for (int i = 0; i < 1000; ++i) refs.push_back(a);  // growth moves refs
  EXPECT_EQ(a->refCount(), 1001u);
  refs.erase(refs.begin(), refs.begin() + 500);
  EXPECT_EQ(a->refCount(), 501u);
  refs.clear();
  EXPECT_EQ(a->refCount(), 1u);
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);
}

// ---------------------------------------------------------------------------
// Threads (also run under TSan): references are taken and dropped on several
// threads at once; the count must stay exact and the frame must be freed
// exactly once, by whichever thread drops the last reference.

TEST_F(FrameTest, ConcurrentRetainReleaseKeepsCountExact) {
  constexpr int kThreads = 4;
  constexpr int kIters = 20000;
  FrameRef owner(Frame::copyOf("concurrent"));
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> badReads{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kIters; ++i) {
        FrameRef a(owner);                      // copy: retain
        FrameRef b = FrameRef::share(a.get());  // retain
        FrameRef c(std::move(b));               // no change
        if (c->view() != "concurrent") badReads.fetch_add(1);
        Frame* raw = c.detach();
        raw->retain(2);
        raw->release();
        raw->release();
        raw->release();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(badReads.load(), 0);
  EXPECT_EQ(owner->refCount(), 1u);
  EXPECT_EQ(Frame::liveCount(), baseline_ + 1);
}

TEST_F(FrameTest, LastReleaseOnAnyThreadFreesExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kFrames = 2000;
  // Each frame is shared by every thread; the main thread drops its own
  // reference first, so one of the workers frees each frame.
  std::vector<FrameRef> frames;
  for (int i = 0; i < kFrames; ++i) frames.emplace_back(Frame::copyOf("frame " + std::to_string(i)));
  std::vector<std::vector<FrameRef>> perThread(kThreads);
  for (auto& v : perThread) v = frames;
  EXPECT_EQ(Frame::liveCount(), baseline_ + kFrames);
  frames.clear();

  std::latch start(kThreads);
  std::atomic<int> badReads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      auto& mine = perThread[t];
      for (size_t i = 0; i < mine.size(); ++i) {
        if (mine[i]->view() != "frame " + std::to_string(i)) badReads.fetch_add(1);
        mine[i] = FrameRef();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(badReads.load(), 0);
  EXPECT_EQ(Frame::liveCount(), baseline_);
}

TEST_F(FrameTest, ConcurrentAllocationCountsLiveFrames) {
  constexpr int kThreads = 4;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < 5000; ++i) {
        FrameRef f(Frame::allocate(static_cast<size_t>(i % 64)));
        FrameRef g(f);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Frame::liveCount(), baseline_);
}

}  // namespace
}  // namespace ssefanout
