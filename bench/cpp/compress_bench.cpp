// Micro-benchmarks of the body codings (src/compress/body_coding.hpp): what a
// compressed stream costs per event, once (the coded variant) and per stream
// (the checksum combine).
//
// Before timing, each benchmark checks its variant: inflated (raw DEFLATE)
// it must give the frame's bytes back, else it reports an error instead of a
// time. Bytes/s count the frame's (uncompressed) bytes.
//
//   BM_Variant/<bytes>/<level>: encodeEvent() and variantOf() on a fresh frame
//                               of JSON (a record with an id, a title, a body of
//                               words): a publish's encode and its one compression.
//   BM_StreamAdd/<coding>:      StreamCoder::add(), what a gzip (0) or deflate
//                               (1) stream pays per frame queued for it.
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <string>
#include <string_view>

#include "body_coding.hpp"
#include "frame.hpp"
#include "sse_encoder.hpp"

namespace {

using ssefanout::EventFields;
using ssefanout::Frame;
using ssefanout::FrameRef;
namespace compress = ssefanout::compress;

std::string jsonOf(size_t bytes) {
  static constexpr const char* kWords[] = {"stream", "event", "fan",  "out",  "record", "update", "price",
                                           "chat",   "room",  "user", "news", "title",  "body",   "compress"};
  std::string body;
  for (size_t i = 0; body.size() + 64 < bytes; ++i) {
    body += kWords[(i * 7 + i / 3) % 14];
    body += ' ';
  }
  std::string json = R"({"id":"r8f3k2","collectionName":"posts","title":"A post","views":1042,"body":")" + body + "\"}";
  return json;
}

FrameRef frameOf(const std::string& data) {
  EventFields ev;
  ev.data = data;
  FrameRef f;
  ssefanout::encodeEvent(ev, &f);
  return f;
}

bool inflatesTo(std::string_view deflated, std::string_view want) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) return false;
  std::string out(want.size() + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(deflated.data()));
  z.avail_in = static_cast<uInt>(deflated.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  inflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out == want;
}

void BM_Variant(benchmark::State& state) {
  const std::string data = jsonOf(static_cast<size_t>(state.range(0)));
  compress::Settings settings;
  settings.level = static_cast<int>(state.range(1));
  {
    FrameRef f = frameOf(data);
    Frame* v = compress::variantOf(f.get(), settings);
    if (!inflatesTo(v->view(), f->view())) {
      state.SkipWithError("the variant does not inflate to the frame");
      return;
    }
    state.counters["ratio"] = static_cast<double>(v->size()) / static_cast<double>(f->size());
  }
  // A fresh frame each time (a variant is made once per frame): the encode
  // is timed too, a few hundred ns (BM_EncodeEvent in encoder_bench).
  for (auto _ : state) {
    FrameRef f = frameOf(data);
    benchmark::DoNotOptimize(compress::variantOf(f.get(), settings));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(data.size()));
}
BENCHMARK(BM_Variant)->ArgsProduct({{256, 1024, 16384}, {1, 6}});

void BM_StreamAdd(benchmark::State& state) {
  const compress::Meta m = compress::metaOf(jsonOf(1024));
  compress::StreamCoder coder;
  coder.start(state.range(0) == 0 ? compress::Coding::kGzip : compress::Coding::kDeflate);
  for (auto _ : state) {
    coder.add(m);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(coder.trailer());
}
BENCHMARK(BM_StreamAdd)->Arg(0)->Arg(1);

}  // namespace
