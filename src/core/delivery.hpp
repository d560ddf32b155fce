// Delivery: one frame for every connection subscribed to one topic (in
// practice an internal topic, see status.hpp). A protocol index (PbIndex)
// makes them on the JS thread; the Dispatcher posts each to every shard.
#pragma once

#include <string>

#include "frame.hpp"

namespace ssefanout {

struct Delivery {
  std::string topic;
  FrameRef frame;
};

}  // namespace ssefanout
