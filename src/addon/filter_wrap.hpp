// FilterWrap: NativeFilter, one compiled PocketBase filter or rule for an
// app's own API (lib/pocketbase/filter.js, compileFilter). The same engine the
// realtime index uses (src/pocketbase/pb_filter.hpp), which also parses the
// JSON. JS thread only.
#pragma once

#include <napi.h>

#include <string>

#include "pb_filter.hpp"

namespace ssefanout {

class FilterWrap : public Napi::ObjectWrap<FilterWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new NativeFilter(expression): compiles; error() says why it did not.
  explicit FilterWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value JS_error(const Napi::CallbackInfo& info);
  // test(recordJson, authJson | null) -> boolean, or a message when the JSON is not an object.
  Napi::Value JS_test(const Napi::CallbackInfo& info);

  pb::Filter filter_;
  std::string error_;
  bool ok_ = false;
};

}  // namespace ssefanout
