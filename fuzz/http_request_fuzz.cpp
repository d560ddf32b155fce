// Fuzz target: the request-head parser (src/http/request.hpp) against llhttp
// (test/cpp/http/llhttp_reference.hpp, strict). The input is the bytes a
// client sends, read under the default limits and under small ones (so the
// 414 and 431 limits are reached within the input length). Properties:
//  - findHeadEnd agrees with a naive search, whole and over a growing buffer;
//  - the verdict is the same whether the bytes come at once or in chunks;
//  - whatever parseHead accepts, llhttp parses identically (method, URL,
//    version, header names and values, the message ending at the same byte),
//    and every view points into the head;
//  - checkPartial never refuses a prefix of a head that parseHead accepts;
//  - the accepted head's query and Accept-Encoding go through queryValues
//    (bounds kept, output valid UTF-8) and negotiateCoding without a fault.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "accept_encoding.hpp"
#include "fuzz_check.hpp"
#include "http/llhttp_reference.hpp"
#include "query.hpp"
#include "request.hpp"

using namespace ssefanout::http;
using fuzzutil::show;

namespace {

constexpr size_t kNpos = std::string_view::npos;

struct Verdict {
  uint16_t status;  // 0 accepted, 1 incomplete
  size_t end;
};

Verdict whole(std::string_view buf, const Limits& limits) {
  Error err;
  const size_t end = findHeadEnd(buf, 0);
  if (end == kNpos) return {checkPartial(buf, limits, &err) ? uint16_t{1} : err.status, 0};
  Request req;
  return parseHead(buf.substr(0, end), limits, &req, &err) ? Verdict{0, end} : Verdict{err.status, 0};
}

Verdict chunked(std::string_view buf, const Limits& limits, size_t chunk) {
  Error err;
  size_t scanned = 0;
  for (size_t n = 0; n < buf.size();) {
    n = n + chunk < buf.size() ? n + chunk : buf.size();
    const std::string_view got = buf.substr(0, n);
    const size_t end = findHeadEnd(got, scanned);
    FUZZ_CHECK(end == (got.find("\r\n\r\n") == kNpos ? kNpos : got.find("\r\n\r\n") + 4),
               "findHeadEnd from %zu over %zu bytes gave %zu", scanned, n, end);
    scanned = n;
    if (end != kNpos) {
      Request req;
      return parseHead(got.substr(0, end), limits, &req, &err) ? Verdict{0, end} : Verdict{err.status, 0};
    }
    if (!checkPartial(got, limits, &err)) return {err.status, 0};
  }
  return {1, 0};
}

// Well-formed UTF-8 (RFC 3629): what the U+FFFD repair must always produce.
bool validUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    if (c < 0x80) {
      n = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
    } else {
      return false;
    }
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    for (size_t k = 1; k <= n; ++k, lo = 0x80, hi = 0xBF) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if (d < lo || d > hi) return false;
    }
    i += n + 1;
  }
  return true;
}

bool inside(std::string_view part, std::string_view head) {
  return part.empty() || (part.data() >= head.data() && part.data() + part.size() <= head.data() + head.size());
}

void check(std::string_view buf, const Limits& limits) {
  const Verdict v = whole(buf, limits);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}}) {
    const Verdict c = chunked(buf, limits, chunk);
    FUZZ_CHECK(c.status == v.status && c.end == v.end, "%s: in chunks of %zu: %u@%zu, at once %u@%zu",
               show(buf).c_str(), chunk, c.status, c.end, v.status, v.end);
  }
  if (v.status != 0) return;

  const std::string_view head = buf.substr(0, v.end);
  Request req;
  Error err;
  FUZZ_CHECK(parseHead(head, limits, &req, &err), "parse again");
  FUZZ_CHECK(head.size() <= limits.maxHeadBytes && req.target.size() <= limits.maxTargetBytes &&
                 req.headers.size() <= limits.maxHeaders && req.minor <= 1,
             "%s: accepted past a limit", show(head).c_str());
  FUZZ_CHECK(inside(req.target, head) && inside(req.path, req.target) && inside(req.query, req.target), "target views");
  for (const Header& h : req.headers) FUZZ_CHECK(inside(h.name, head) && inside(h.value, head), "header views");
  const std::string diff = test::llhttpDisagrees(head, req);
  FUZZ_CHECK(diff.empty(), "%s: accepted, but %s", show(head).c_str(), diff.c_str());

  std::vector<std::string> values;
  const bool bounded = queryValues(req.query, "topics", &values, 8, 64);
  size_t bytes = 0;
  for (const std::string& v : values) {
    bytes += v.size();
    FUZZ_CHECK(validUtf8(v), "%s: query value %s is not UTF-8", show(req.query).c_str(), show(v).c_str());
  }
  FUZZ_CHECK(values.size() <= 8 && bytes <= 64, "%s: %zu values, %zu bytes, bounded %d", show(req.query).c_str(),
             values.size(), bytes, bounded);
  const Coding coding = negotiateCoding(req.header("accept-encoding"));
  FUZZ_CHECK(coding == Coding::kIdentity || coding == Coding::kGzip || coding == Coding::kDeflate, "coding");

  // Every prefix (a sample of them for long heads) is "keep reading".
  const size_t step = head.size() <= 512 ? 1 : head.size() / 61 + 1;
  for (size_t n = 0; n < head.size(); n += step) {
    FUZZ_CHECK(checkPartial(head.substr(0, n), limits, &err), "%s: prefix of %zu refused with %u (%s)",
               show(head).c_str(), n, err.status, err.reason);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view buf(reinterpret_cast<const char*>(data), size);
  check(buf, Limits{});
  Limits small;
  small.maxHeadBytes = 256;
  small.maxHeaders = 4;
  small.maxTargetBytes = 32;
  check(buf, small);
  return 0;
}
