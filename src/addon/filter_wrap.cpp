#include "filter_wrap.hpp"

namespace ssefanout {

Napi::Function FilterWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeFilter",
                     {
                         InstanceMethod<&FilterWrap::JS_error>("error"),
                         InstanceMethod<&FilterWrap::JS_test>("test"),
                     });
}

FilterWrap::FilterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FilterWrap>(info) {
  if (!info[0].IsString()) {
    error_ = "the expression must be a string";
    return;
  }
  ok_ = pb::Filter::compile(info[0].As<Napi::String>().Utf8Value(), &filter_, &error_);
}

Napi::Value FilterWrap::JS_error(const Napi::CallbackInfo& info) {
  return ok_ ? info.Env().Null() : Napi::String::New(info.Env(), error_);
}

Napi::Value FilterWrap::JS_test(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ok_) return Napi::String::New(env, error_);
  if (!info[0].IsString()) return Napi::String::New(env, "record must be a JSON string");
  std::string record = info[0].As<Napi::String>().Utf8Value();
  std::string auth;
  std::string_view authView;
  if (info[1].IsString()) authView = auth = info[1].As<Napi::String>().Utf8Value();
  bool result = false;
  std::string error;
  if (!filter_.testJson(record, info[1].IsString() ? &authView : nullptr, &result, &error)) {
    return Napi::String::New(env, error);
  }
  return Napi::Boolean::New(env, result);
}

}  // namespace ssefanout
