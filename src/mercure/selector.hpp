// A Mercure topic selector against one topic, the four steps of the reference
// hub (TopicSelectorStore.match): "*" matches every topic; a selector equal to
// the topic matches (byte for byte, so a template also matches itself); a
// selector with no '{', or one UriTemplate::compile() refuses, matches
// nothing else; otherwise the template decides (uri_template.hpp).
//
// Compiles the template on every call: for tests and one-off checks. The hub's
// index compiles each distinct selector once.
#pragma once

#include <string_view>

namespace ssefanout::mercure {

bool selectorMatches(std::string_view selector, std::string_view topic);

}  // namespace ssefanout::mercure
