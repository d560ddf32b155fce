// Addon entry: exports the native hub and filter classes and the tables the JS layer
// checks its own against (status names, disconnect reasons).
#include <napi.h>

#include "command.hpp"
#include "filter.hpp"
#include "frame.hpp"
#include "hub.hpp"
#include "status.hpp"

namespace ssefanout {
namespace {

Napi::Value LiveFrames(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Frame::liveCount()));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeHub", Hub::Define(env));
  exports.Set("NativeFilter", FilterWrap::Define(env));
  Napi::Array statuses = Napi::Array::New(env);
  for (uint32_t i = 0; i < static_cast<uint32_t>(Status::kCount); ++i) {
    statuses.Set(i, Napi::String::New(env, std::string(statusName(static_cast<Status>(i)))));
  }
  exports.Set("statusNames", statuses);
  Napi::Array reasons = Napi::Array::New(env);
  for (uint32_t i = 0; i < static_cast<uint32_t>(DisconnectReason::kCount); ++i) {
    reasons.Set(i, Napi::String::New(env, disconnectReasonName(static_cast<DisconnectReason>(i))));
  }
  exports.Set("disconnectReasons", reasons);
  exports.Set("maxTopicBytes", Napi::Number::New(env, static_cast<double>(kMaxTopicBytes)));
  exports.Set("liveFrames", Napi::Function::New(env, LiveFrames));
  return exports;
}

}  // namespace ssefanout

// The macro pastes the name into an identifier, so it must be unqualified.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return ssefanout::Init(env, exports); }
NODE_API_MODULE(sse_fanout, InitAddon)
