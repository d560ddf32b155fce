#include "pb_field_picker.hpp"

#include <charconv>

namespace ssefanout::pb {

namespace {

// What Go's strings.TrimSpace trims around a field name, in ASCII: space, tab,
// LF, VT, FF and CR (unicode.IsSpace). Wider than the filter lexer's
// isFilterSpace() in pb_filter.cpp, which follows fexpr's scanner.
bool isTrimSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isTrimSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isTrimSpace(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

bool FieldPicker::compile(std::string_view fields, FieldPicker* out, std::string* error) {
  *out = FieldPicker();
  if (fields.size() > kMaxFieldsBytes) {
    *error =
        "fields too long: " + std::to_string(fields.size()) + " bytes (limit " + std::to_string(kMaxFieldsBytes) + ")";
    return false;
  }
  FieldPicker picker;
  picker.nodes_.emplace_back();
  size_t pos = 0;
  bool any = false;
  while (pos <= fields.size()) {
    size_t comma = fields.find(',', pos);
    if (comma == std::string_view::npos) comma = fields.size();
    std::string_view raw = fields.substr(pos, comma - pos);
    std::string_view name = trim(raw);
    size_t at = pos + static_cast<size_t>(name.data() - raw.data());
    pos = comma + 1;
    if (name.empty()) continue;
    if (size_t colon = name.find(':'); colon != std::string_view::npos) {
      std::string_view mod = name.substr(colon);
      *error = "unsupported modifier \"" + std::string(mod) + "\" at " + std::to_string(at + colon) +
               ": field modifiers are not supported";
      return false;
    }
    uint32_t node = 0;
    size_t segStart = 0;
    while (true) {
      size_t dot = name.find('.', segStart);
      std::string_view seg =
          name.substr(segStart, dot == std::string_view::npos ? std::string_view::npos : dot - segStart);
      if (seg.empty()) {
        *error = "invalid field \"" + std::string(name) + "\" at " + std::to_string(at) + ": empty path segment";
        return false;
      }
      bool last = dot == std::string_view::npos;
      if (seg == "*" && last) {
        picker.nodes_[node].star = true;
        break;
      }
      uint32_t child = UINT32_MAX;
      for (uint32_t k : picker.nodes_[node].kids) {
        if (picker.nodes_[k].name == seg) child = k;
      }
      if (child == UINT32_MAX) {
        child = static_cast<uint32_t>(picker.nodes_.size());
        picker.nodes_.emplace_back();
        picker.nodes_[child].name = std::string(seg);
        picker.nodes_[node].kids.push_back(child);
      }
      node = child;
      if (last) {
        picker.nodes_[node].whole = true;
        break;
      }
      segStart = dot + 1;
    }
    any = true;
  }
  if (!any) return true;  // "" selects everything
  const Node& root = picker.nodes_[0];
  picker.all_ = root.star;
  for (uint32_t k : root.kids) {
    if (!picker.nodes_[k].whole) picker.all_ = false;
  }
  *out = std::move(picker);
  return true;
}

void FieldPicker::write(simdjson::dom::element record, std::string* out) const {
  if (all_) {
    appendJson(record, out);
    return;
  }
  writeValue(0, record, out);
}

void FieldPicker::writeValue(uint32_t node, simdjson::dom::element value, std::string* out) const {
  simdjson::dom::object obj;
  if (value.get_object().get(obj) == simdjson::SUCCESS) {
    writeObject(node, obj, out);
    return;
  }
  simdjson::dom::array arr;
  if (value.get_array().get(arr) == simdjson::SUCCESS) {
    simdjson::dom::element first;
    if (arr.at(0).get(first) != simdjson::SUCCESS || !first.is_object()) {
      appendJson(value, out);  // picker leaves arrays of non-objects alone
      return;
    }
    out->push_back('[');
    bool comma = false;
    for (simdjson::dom::element item : arr) {
      if (comma) out->push_back(',');
      comma = true;
      simdjson::dom::object itemObj;
      if (item.get_object().get(itemObj) == simdjson::SUCCESS) {
        writeObject(node, itemObj, out);
      } else {
        appendJson(item, out);
      }
    }
    out->push_back(']');
    return;
  }
  appendJson(value, out);  // a scalar under a longer path is kept whole
}

void FieldPicker::writeObject(uint32_t node, simdjson::dom::object obj, std::string* out) const {
  const Node& n = nodes_[node];
  out->push_back('{');
  bool comma = false;
  for (simdjson::dom::key_value_pair field : obj) {
    uint32_t child = UINT32_MAX;
    for (uint32_t k : n.kids) {
      if (nodes_[k].name == field.key) {
        child = k;
        break;
      }
    }
    if (child == UINT32_MAX && !n.star) continue;
    if (comma) out->push_back(',');
    comma = true;
    appendJsonString(field.key, out);
    out->push_back(':');
    if (child == UINT32_MAX || nodes_[child].whole) {
      appendJson(field.value, out);
    } else {
      writeValue(child, field.value, out);
    }
  }
  out->push_back('}');
}

void appendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        *out += "\\u00";
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void appendJsonNumber(simdjson::dom::element number, std::string* out) {
  char buf[64];
  std::to_chars_result res{};
  switch (number.type()) {
    case simdjson::dom::element_type::INT64:
      res = std::to_chars(buf, buf + sizeof(buf), number.get_int64().value_unsafe());
      break;
    case simdjson::dom::element_type::UINT64:
      res = std::to_chars(buf, buf + sizeof(buf), number.get_uint64().value_unsafe());
      break;
    default:
      res = std::to_chars(buf, buf + sizeof(buf), number.get_double().value_unsafe());
      break;
  }
  out->append(buf, res.ptr);
}

void appendJson(simdjson::dom::element value, std::string* out) {
  switch (value.type()) {
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object obj = value.get_object().value_unsafe();  // a named copy, see ARRAY
      out->push_back('{');
      bool comma = false;
      for (simdjson::dom::key_value_pair field : obj) {
        if (comma) out->push_back(',');
        comma = true;
        appendJsonString(field.key, out);
        out->push_back(':');
        appendJson(field.value, out);
      }
      out->push_back('}');
      break;
    }
    case simdjson::dom::element_type::ARRAY: {
      // value_unsafe() on a temporary result returns a reference into it, which
      // a range-for would keep past the temporary's end.
      simdjson::dom::array arr = value.get_array().value_unsafe();
      out->push_back('[');
      bool comma = false;
      for (simdjson::dom::element item : arr) {
        if (comma) out->push_back(',');
        comma = true;
        appendJson(item, out);
      }
      out->push_back(']');
      break;
    }
    case simdjson::dom::element_type::STRING:
      appendJsonString(value.get_string().value_unsafe(), out);
      break;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      appendJsonNumber(value, out);
      break;
    case simdjson::dom::element_type::BOOL:
      *out += value.get_bool().value_unsafe() ? "true" : "false";
      break;
    case simdjson::dom::element_type::NULL_VALUE:
      *out += "null";
      break;
  }
}

}  // namespace ssefanout::pb
