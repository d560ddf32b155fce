// negotiateCoding (src/http/accept_encoding) against negotiator 1.0.0 as
// lib/compression.js negotiate() calls it: the expected codings below were
// printed by test/cpp/http/reference_outputs.js (Node 20) and pasted.
#include "accept_encoding.hpp"

#include <gtest/gtest.h>

#include <string_view>

using namespace ssefanout::http;

namespace {

struct Row {
  std::string_view header;
  Coding coding;
};

const Row kRows[] = {
    {"", Coding::kIdentity},
    {"gzip", Coding::kGzip},
    {"deflate", Coding::kDeflate},
    {"identity", Coding::kIdentity},
    {"br", Coding::kIdentity},
    {"*", Coding::kGzip},
    {"gzip, deflate", Coding::kGzip},
    {"deflate, gzip", Coding::kGzip},
    {"deflate, gzip, br", Coding::kGzip},
    {"GZIP", Coding::kGzip},
    {"Deflate", Coding::kDeflate},
    {"x-gzip", Coding::kIdentity},
    {"gzip;q=0", Coding::kIdentity},
    {"gzip;q=0, deflate", Coding::kDeflate},
    {"gzip;q=0.5, deflate;q=0.8", Coding::kDeflate},
    {"gzip;q=0.8, deflate;q=0.8", Coding::kGzip},
    {"deflate;q=0.8, gzip;q=0.8", Coding::kGzip},
    {"gzip;q=0.5, identity", Coding::kIdentity},
    {"identity;q=0", Coding::kIdentity},
    {"identity;q=0, gzip;q=0", Coding::kIdentity},
    {"*;q=0", Coding::kIdentity},
    {"*;q=0, gzip", Coding::kGzip},
    {"*, gzip;q=0", Coding::kDeflate},
    {"*;q=0.5, deflate;q=0.4", Coding::kGzip},
    {"br, *;q=0.1", Coding::kGzip},
    {"gzip;q=abc", Coding::kIdentity},
    {"gzip;q=", Coding::kIdentity},
    {"gzip;q", Coding::kIdentity},
    {"gzip;q=abc, deflate", Coding::kDeflate},
    {"gzip;q=1e0, deflate;q=1", Coding::kGzip},
    {"gzip;q=Infinity, deflate", Coding::kGzip},
    {"gzip;q=-1, deflate;q=0.001", Coding::kDeflate},
    {"gzip; q=0.5, deflate", Coding::kDeflate},
    {"gzip;q =0.5, deflate;q=0.6", Coding::kGzip},
    {"gzip;level=1;q=0.2, deflate;q=0.3", Coding::kDeflate},
    {"gzip;q=0.2;q=0.9, deflate;q=0.5", Coding::kDeflate},
    {"gzip;q=0.9=1, deflate;q=0.8", Coding::kGzip},
    {"gzip ; q=0.3, deflate;q=0.2", Coding::kGzip},
    {"gzip x, deflate", Coding::kDeflate},
    {",,gzip;q=0.1,,", Coding::kGzip},
    {" , ", Coding::kIdentity},
    {";q=1", Coding::kIdentity},
    {"gzip;q=0.5, gzip;q=0.9, deflate;q=0.7", Coding::kGzip},
    {"gzip;q=0.9, gzip;q=0.5, deflate;q=0.7", Coding::kGzip},
    {"gzip;q=.5, deflate;q=0.49", Coding::kGzip},
    {"gzip;q=1.5, deflate", Coding::kGzip},
    {"gzip;q=+0.5, deflate;q=0.4", Coding::kGzip},
    {"gzip;q=0x1, deflate;q=0.1", Coding::kDeflate},
    {"identity;q=0.5, gzip;q=0.5", Coding::kGzip},
    {"identity, gzip;q=0.9", Coding::kIdentity},
    {"identity;q=1, *;q=0.9", Coding::kIdentity},
    {"gzip\xa0;q=0.1, deflate;q=0.2", Coding::kDeflate},
    {"\xa0"
     "deflate",
     Coding::kDeflate},
    {"gzip;q=\xa0"
     "0.2, deflate;q=0.3",
     Coding::kDeflate},
    {"gzip;q=0.3\xa0, deflate;q=0.2", Coding::kGzip},
    {"deflate;q=0, *", Coding::kGzip},
    {"gzip;q=0.5e1, deflate;q=4", Coding::kGzip},
    {"gzip;q=1e, deflate;q=0.9", Coding::kGzip},
    {"gzip, deflate;q=NaN", Coding::kGzip},
    {"gzip;q=-0, deflate;q=0", Coding::kIdentity},
};

TEST(AcceptEncodingTest, MatchesNegotiator) {
  for (const Row& row : kRows) {
    EXPECT_EQ(negotiateCoding(row.header), row.coding) << '"' << row.header << '"';
  }
}

}  // namespace
