#include "filter.hpp"

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
  simdjson::dom::parser parser;
  simdjson::dom::document recordDoc, authDoc;
  simdjson::dom::element recordRoot, authRoot;
  if (parser.parse_into_document(recordDoc, record.data(), record.size()).get(recordRoot) != simdjson::SUCCESS ||
      !recordRoot.is_object()) {
    return Napi::String::New(env, "record is not a JSON object");
  }
  pb::EvalContext ctx;
  ctx.record = recordRoot;
  if (info[1].IsString()) {
    std::string auth = info[1].As<Napi::String>().Utf8Value();
    if (parser.parse_into_document(authDoc, auth.data(), auth.size()).get(authRoot) != simdjson::SUCCESS ||
        !authRoot.is_object()) {
      return Napi::String::New(env, "auth is not a JSON object");
    }
    ctx.auth = &authRoot;
  }
  return Napi::Boolean::New(env, filter_.evaluate(ctx));
}

}  // namespace ssefanout
