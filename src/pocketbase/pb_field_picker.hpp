// FieldPicker: PocketBase's `fields` projection ("id,title,data.a") applied to
// a JSON record, and the JSON writer it uses.
//
// In realtime PocketBase applies `options.query.fields` with
// tools/picker.Pick to the record alone, then marshals
// {"record": <picked>, "action": ...}; the caller builds that message around
// write()'s output. A `fields` value Pick refuses leaves the record whole
// there; compile() reports it instead.
//
// Semantics (tools/picker pickMapFields), at each object level:
//   - a key named by a path that ends at it is kept whole ("rel" beats "rel.id");
//   - a key named by longer paths keeps only what those paths name below it:
//     an object is picked recursively, an array whose first element is an
//     object has each object element picked, any other value is kept whole;
//   - "*" keeps every key no other path at that level names ("*,rel.id" keeps
//     all top-level keys but only rel.id inside rel; "rel.*" keeps all of rel);
//   - every other key is dropped; a named key that is absent adds nothing.
// Names are split on ',' and '.', whitespace around each name is ignored, empty
// names are skipped. Refused: modifiers (":excerpt(200)", any ':'), empty path
// segments ("a..b", "a."). A key holding '.' can only be kept through "*".
// Output: minified JSON, keys in the record's order (PocketBase re-marshals a
// Go map, so its keys come out sorted; JSON.parse does not care), strings
// re-escaped, numbers in shortest round-trip form.
//
// Immutable after compile(); write() may run on any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "simdjson.h"

namespace ssefanout::pb {

class FieldPicker {
 public:
  static constexpr size_t kMaxFieldsBytes = 8192;

  FieldPicker() = default;  // everything

  // "" or "*" selects everything. On failure returns false, leaves *out
  // selecting everything and puts a one-line message in *error.
  static bool compile(std::string_view fields, FieldPicker* out, std::string* error);

  bool all() const { return all_; }

  // Appends the projected record to *out.
  void write(simdjson::dom::element record, std::string* out) const;

 private:
  struct Node {
    bool star = false;           // "*" at this level
    std::vector<uint32_t> kids;  // child nodes
    std::string name;            // key this node matches in its parent
    bool whole = false;          // a path ends here: keep the value whole
  };

  void writeObject(uint32_t node, simdjson::dom::object obj, std::string* out) const;
  void writeValue(uint32_t node, simdjson::dom::element value, std::string* out) const;

  std::vector<Node> nodes_;  // nodes_[0] is the root
  bool all_ = true;
};

// Minified JSON of any DOM value; appends to *out.
void appendJson(simdjson::dom::element value, std::string* out);

// s as a JSON string literal, quotes included: " and \ escaped, control
// characters as \b \f \n \r \t or \u00XX, everything else as is (s is UTF-8).
void appendJsonString(std::string_view s, std::string* out);

// A JSON number as text: integers exactly, doubles in shortest round-trip form.
void appendJsonNumber(simdjson::dom::element number, std::string* out);

}  // namespace ssefanout::pb
