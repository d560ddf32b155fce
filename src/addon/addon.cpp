// Addon entry: exports the native classes (NativeHub, NativeRealtime,
// NativeFilter, NativeMercure) and the tables the JS layer checks its own against (status
// names, disconnect reasons).
#include <napi.h>

#include "addon_data.hpp"
#include "command.hpp"
#include "dispatcher.hpp"
#include "filter_wrap.hpp"
#include "frame.hpp"
#include "hub_wrap.hpp"
#include "listener_wrap.hpp"
#include "mercure_wrap.hpp"
#include "realtime_wrap.hpp"
#include "status.hpp"

namespace ssefanout {
namespace {

Napi::Value LiveFrames(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Frame::liveCount()));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // deleted with the environment
  Napi::Function hub = HubWrap::Define(env);
  data->hubClass = Napi::Persistent(hub);
  exports.Set("NativeHub", hub);
  exports.Set("NativeRealtime", RealtimeWrap::Define(env));
  exports.Set("NativeFilter", FilterWrap::Define(env));
  exports.Set("NativeMercure", MercureWrap::Define(env));
  exports.Set("NativeListener", ListenerWrap::Define(env));
  exports.Set("mercureSelectorMatches", Napi::Function::New(env, MercureSelectorMatches));
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
  exports.Set("maxBatchEvents", Napi::Number::New(env, static_cast<double>(Dispatcher::kMaxBatchEvents)));
  exports.Set("liveFrames", Napi::Function::New(env, LiveFrames));
  return exports;
}

}  // namespace ssefanout

// The macro pastes the name into an identifier, so it must be unqualified.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return ssefanout::Init(env, exports); }
NODE_API_MODULE(sse_fanout, InitAddon)
