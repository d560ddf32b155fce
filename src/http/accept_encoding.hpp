// Content-coding negotiation for a native stream (issue 17): the coding the
// JS path (lib/compression.js negotiate()) would pick for the same
// Accept-Encoding, which is npm's negotiator 1.0.0 choosing among gzip and
// deflate with identity as the fallback: the highest q-value wins, a tie goes
// to gzip, then deflate, then identity (negotiator's `preferred` order, not
// the client's), '*' stands for a coding not named, "identity;q=0" with
// nothing else acceptable still falls back to identity (a stream is never
// refused for its encoding).
#pragma once

#include <cstdint>
#include <string_view>

namespace ssefanout::http {

// Named apart from compress::Coding: this is the negotiation's answer only.
enum class Coding : uint8_t { kIdentity, kGzip, kDeflate };

Coding negotiateCoding(std::string_view acceptEncoding);

}  // namespace ssefanout::http
