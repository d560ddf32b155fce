// AddonData: what one instance of the addon (one per Node environment: the
// main thread and each worker) keeps for itself, as the environment's
// instance data. JS thread only.
#pragma once

#include <napi.h>

namespace ssefanout {

struct AddonData {
  Napi::FunctionReference hubClass;  // NativeHub: NativeRealtime checks its argument against it
};

}  // namespace ssefanout
