#include "selector.hpp"

#include "uri_template.hpp"

namespace ssefanout::mercure {

bool selectorMatches(std::string_view selector, std::string_view topic) {
  if (selector == "*" || selector == topic) return true;
  if (selector.find('{') == std::string_view::npos) return false;
  const auto tpl = UriTemplate::compile(selector);
  return tpl && tpl->matches(topic);
}

}  // namespace ssefanout::mercure
