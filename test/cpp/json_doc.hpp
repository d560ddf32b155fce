// Json: a parsed JSON document that keeps its simdjson parser (and padded
// copy of the text) alive, for tests of code that reads simdjson DOM values.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "simdjson.h"

namespace ssefanout::test {

class Json {
 public:
  explicit Json(std::string_view text) : padded_(text) {
    auto err = parser_.parse(padded_).get(root_);
    EXPECT_EQ(err, simdjson::SUCCESS) << text;
  }
  simdjson::dom::element root() const { return root_; }

 private:
  simdjson::padded_string padded_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
};

}  // namespace ssefanout::test
