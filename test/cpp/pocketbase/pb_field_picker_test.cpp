// FieldPicker and the JSON writer: PocketBase's tools/picker scenarios
// (adapted to record key order), nested paths and wildcards, refused fields,
// and escaping: every output must parse back with simdjson and equal the
// expected value.
#include "pb_field_picker.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

#include "json_doc.hpp"

namespace ssefanout::pb {
namespace {

using test::Json;

// Structural equality, key order included.
bool sameJson(simdjson::dom::element a, simdjson::dom::element b) {
  using T = simdjson::dom::element_type;
  if (a.type() != b.type()) {
    // 1.0 may come back as the integer 1; compare numbers by value.
    bool an = a.is_number(), bn = b.is_number();
    return an && bn && a.get_double().value_unsafe() == b.get_double().value_unsafe();
  }
  switch (a.type()) {
    case T::OBJECT: {
      simdjson::dom::object oa = a.get_object().value_unsafe(), ob = b.get_object().value_unsafe();
      if (oa.size() != ob.size()) return false;
      auto ib = ob.begin();
      for (simdjson::dom::key_value_pair fa : oa) {
        simdjson::dom::key_value_pair fb = *ib;
        ++ib;
        if (fa.key != fb.key || !sameJson(fa.value, fb.value)) return false;
      }
      return true;
    }
    case T::ARRAY: {
      simdjson::dom::array xa = a.get_array().value_unsafe(), xb = b.get_array().value_unsafe();
      if (xa.size() != xb.size()) return false;
      auto ib = xb.begin();
      for (simdjson::dom::element ea : xa) {
        if (!sameJson(ea, *ib)) return false;
        ++ib;
      }
      return true;
    }
    case T::STRING:
      return a.get_string().value_unsafe() == b.get_string().value_unsafe();
    case T::INT64:
      return a.get_int64().value_unsafe() == b.get_int64().value_unsafe();
    case T::UINT64:
      return a.get_uint64().value_unsafe() == b.get_uint64().value_unsafe();
    case T::DOUBLE:
      return a.get_double().value_unsafe() == b.get_double().value_unsafe();
    case T::BOOL:
      return a.get_bool().value_unsafe() == b.get_bool().value_unsafe();
    case T::NULL_VALUE:
      return true;
  }
  return false;
}

std::string pick(std::string_view fields, std::string_view record) {
  FieldPicker p;
  std::string err;
  EXPECT_TRUE(FieldPicker::compile(fields, &p, &err)) << fields << " -> " << err;
  Json doc(record);
  std::string out;
  p.write(doc.root(), &out);
  Json back(out);  // must parse
  return out;
}

std::string pickError(std::string_view fields) {
  FieldPicker p;
  std::string err;
  EXPECT_FALSE(FieldPicker::compile(fields, &p, &err)) << fields;
  EXPECT_TRUE(p.all());
  return err;
}

TEST(PbFieldPickerTest, EverythingForEmptyOrStar) {
  for (std::string_view f : {"", " ", ",", " , ,", "*", " * ", "*,id", "id,*"}) {
    FieldPicker p;
    std::string err;
    ASSERT_TRUE(FieldPicker::compile(f, &p, &err)) << err;
    EXPECT_TRUE(p.all()) << f;
  }
  FieldPicker p;
  EXPECT_TRUE(p.all());
  EXPECT_EQ(pick("", R"({"a": 1, "b": [true, null], "c": {"d": "x"}})"), R"({"a":1,"b":[true,null],"c":{"d":"x"}})");
  EXPECT_EQ(pick("*", R"({"a":1})"), R"({"a":1})");
}

// The scenarios of PocketBase's tools/picker/pick_test.go, keys in record order.
TEST(PbFieldPickerTest, PocketBaseScenarios) {
  EXPECT_EQ(pick("missing", R"({"a":1,"b":2,"c":"test"})"), "{}");
  EXPECT_EQ(pick("a,  c  ,missing", R"({"a":1,"b":2,"c":"test"})"), R"({"a":1,"c":"test"})");
  EXPECT_EQ(pick("a,test", R"(["a","b","test"])"), R"(["a","b","test"])");  // non-map data untouched
  EXPECT_EQ(pick("a,b,test", R"("test")"), R"("test")");
  EXPECT_EQ(pick("a,  c  ,missing", R"([{"a":11,"b":11,"c":"test1"},{"a":22,"b":22,"c":"test2"}])"),
            R"([{"a":11,"c":"test1"},{"a":22,"c":"test2"}])");
  EXPECT_EQ(pick("a, c, anySlice.A, mapSlice.C, mapSlice.D.DA, anySlice.D,fullMap",
                 R"({"a":1,"b":2,"c":"test",
                     "anySlice":[{"A":[1,2,3],"B":["1","2",3],"C":"test","D":{"DA":1,"DB":2}},{"A":"test"}],
                     "mapSlice":[{"A":[1,2,3],"B":["1","2",3],"C":"test","D":[{"DA":1}]},
                                 {"B":["1","2",3],"D":[{"DA":2},{"DA":3},{"DB":4}]}],
                     "fullMap":[{"A":[1,2,3],"B":["1","2",3],"C":"test"},{"B":["1","2",3],"D":[{"DA":2},{"DA":3}]}]})"),
            R"({"a":1,"c":"test","anySlice":[{"A":[1,2,3],"D":{"DA":1,"DB":2}},{"A":"test"}],)"
            R"("mapSlice":[{"C":"test","D":[{"DA":1}]},{"D":[{"DA":2},{"DA":3},{}]}],)"
            R"("fullMap":[{"A":[1,2,3],"B":["1","2",3],"C":"test"},{"B":["1","2",3],"D":[{"DA":2},{"DA":3}]}]})");
  const char* rel =
      R"({"id":"123","title":"lorem","rel":{"id":"456","title":"rel_title","sub":{"id":"789","title":"sub_title"}}})";
  EXPECT_EQ(pick("*,rel.id", rel), R"({"id":"123","title":"lorem","rel":{"id":"456"}})");
  EXPECT_EQ(pick("id,rel.*", rel),
            R"({"id":"123","rel":{"id":"456","title":"rel_title","sub":{"id":"789","title":"sub_title"}}})");
  EXPECT_EQ(pick("id,rel.*,rel.sub.id", rel),
            R"({"id":"123","rel":{"id":"456","title":"rel_title","sub":{"id":"789"}}})");
}

TEST(PbFieldPickerTest, NestedPaths) {
  const char* rec = R"({"id":"r1","title":"T","data":{"a":1,"b":{"c":2,"d":3},"e":[1,2]},"n":null,"s":"str"})";
  EXPECT_EQ(pick("id,title,data.a", rec), R"({"id":"r1","title":"T","data":{"a":1}})");
  EXPECT_EQ(pick("data.b.d", rec), R"({"data":{"b":{"d":3}}})");
  EXPECT_EQ(pick("data.b.d,data.a", rec), R"({"data":{"a":1,"b":{"d":3}}})");  // record order
  EXPECT_EQ(pick("data.missing", rec), R"({"data":{}})");
  EXPECT_EQ(pick("data,data.a", rec), R"({"data":{"a":1,"b":{"c":2,"d":3},"e":[1,2]}})");  // whole wins
  EXPECT_EQ(pick("data.a,data", rec), R"({"data":{"a":1,"b":{"c":2,"d":3},"e":[1,2]}})");
  EXPECT_EQ(pick("data.e.x", rec), R"({"data":{"e":[1,2]}})");  // array of non-objects: whole
  EXPECT_EQ(pick("s.x,n.y", rec), R"({"n":null,"s":"str"})");   // scalars under longer paths: whole
  EXPECT_EQ(pick("data.*", rec), R"({"data":{"a":1,"b":{"c":2,"d":3},"e":[1,2]}})");
  EXPECT_EQ(pick("data.b.*,id", rec), R"({"id":"r1","data":{"b":{"c":2,"d":3}}})");
  EXPECT_EQ(pick("  id ,  title  ", rec), R"({"id":"r1","title":"T"})");
  EXPECT_EQ(pick("id,id,id", rec), R"({"id":"r1"})");
  EXPECT_EQ(pick("*.x", R"({"*":{"x":1,"y":2},"a":1})"), R"({"*":{"x":1}})");  // "*" mid-path is a key
  EXPECT_EQ(pick("a.b", R"({"a.b":1,"a":{"b":2}})"), R"({"a":{"b":2}})");      // dotted keys: only via "*"
  EXPECT_EQ(pick("a,*", R"({"a.b":1,"a":{"b":2}})"), R"({"a.b":1,"a":{"b":2}})");
  EXPECT_EQ(pick("a.x", R"({"a":[{"x":1,"y":2},3,[4],{"y":5}]})"), R"({"a":[{"x":1},3,[4],{}]})");
}

TEST(PbFieldPickerTest, RefusedFields) {
  EXPECT_EQ(pickError("*:excerpt"), R"(unsupported modifier ":excerpt" at 1: field modifiers are not supported)");
  EXPECT_EQ(pickError("id, rel.title:excerpt(3, true)"),
            R"(unsupported modifier ":excerpt(3" at 13: field modifiers are not supported)");
  EXPECT_EQ(pickError("a..b"), R"(invalid field "a..b" at 0: empty path segment)");
  EXPECT_EQ(pickError("id, a."), R"(invalid field "a." at 4: empty path segment)");
  EXPECT_EQ(pickError(".a"), R"(invalid field ".a" at 0: empty path segment)");
  EXPECT_EQ(pickError(std::string(FieldPicker::kMaxFieldsBytes + 1, 'a')), "fields too long: 8193 bytes (limit 8192)");
}

TEST(PbFieldPickerTest, EscapingRoundTrips) {
  // Keys and values with quotes, backslashes, control characters, unicode and
  // escaped slashes, as JSON text; the picked output must parse to the same.
  const char* rec = R"({"q\"uote":"a\"b","back\\slash":"c\\d","ctl\u0001\n":"\u0000\u001f\b\f\n\r\t\u007f",)"
                    R"("uni\u00e9\ud83d\ude00":"\u2028\u2029 caf\u00e9 \ud83d\ude00","sl\/ash":"<\/script>","keep":1})";
  Json doc(rec);
  FieldPicker all;
  std::string out;
  all.write(doc.root(), &out);
  Json back(out);
  EXPECT_TRUE(sameJson(doc.root(), back.root())) << out;
  EXPECT_EQ(out.find('\n'), std::string::npos);
  EXPECT_NE(out.find(R"("q\"uote":"a\"b")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("ctl\u0001\n":"\u0000\u001f\b\f\n\r\t)"), std::string::npos) << out;

  FieldPicker p;
  std::string err;
  ASSERT_TRUE(FieldPicker::compile("q\"uote,back\\slash,ctl\x01\n,uni\xC3\xA9\xF0\x9F\x98\x80,sl/ash", &p, &err))
      << err;
  out.clear();
  p.write(doc.root(), &out);
  Json picked(out);
  Json want(R"({"q\"uote":"a\"b","back\\slash":"c\\d","uni\u00e9\ud83d\ude00":"\u2028\u2029 caf\u00e9 \ud83d\ude00",)"
            R"("sl/ash":"</script>"})");
  EXPECT_TRUE(sameJson(picked.root(), want.root())) << out;
}

TEST(PbFieldPickerTest, NumbersAndLiterals) {
  EXPECT_EQ(pick("", R"({"i":-42,"u":18446744073709551615,"d":1.5,"e":1e300,"z":0.0,"t":true,"f":false,"n":null})"),
            R"({"i":-42,"u":18446744073709551615,"d":1.5,"e":1e+300,"z":0,"t":true,"f":false,"n":null})");
}

TEST(PbFieldPickerTest, AppendJsonStringEscapesEveryControlCharacter) {
  for (int c = 0; c < 0x20; ++c) {
    std::string s = "a";
    s.push_back(static_cast<char>(c));
    std::string out;
    appendJsonString(s, &out);
    Json back(out);
    EXPECT_EQ(back.root().get_string().value_unsafe(), s) << c;
  }
}

// Random records: picking "*" reproduces the record; picking a random subset
// of top-level keys equals a record holding only those keys.
TEST(PbFieldPickerTest, RandomRecordsRoundTrip) {
  std::mt19937 rng(3);
  const char* values[] = {"1", "-2.5", "\"s\"", "\"\\u00e9\\\"\"", "true", "null", "[1,{\"x\":2}]", "{\"y\":[]}"};
  for (int iter = 0; iter < 500; ++iter) {
    size_t n = rng() % 8;
    std::string rec = "{";
    std::string fields, want = "{";
    for (size_t k = 0; k < n; ++k) {
      std::string key = "k" + std::to_string(k);
      std::string val = values[rng() % std::size(values)];
      if (k) rec += ",";
      rec += "\"" + key + "\":" + val;
      if (rng() % 2) {
        if (!fields.empty()) fields += ",";
        fields += key;
        if (want.size() > 1) want += ",";
        want += "\"" + key + "\":" + val;
      }
    }
    rec += "}";
    want += "}";
    Json doc(rec);
    FieldPicker all;
    std::string out;
    all.write(doc.root(), &out);
    Json back(out);
    EXPECT_TRUE(sameJson(doc.root(), back.root())) << rec << " -> " << out;
    if (fields.empty()) continue;
    FieldPicker p;
    std::string err;
    ASSERT_TRUE(FieldPicker::compile(fields, &p, &err));
    out.clear();
    p.write(doc.root(), &out);
    Json picked(out);
    Json expected(want);
    EXPECT_TRUE(sameJson(picked.root(), expected.root())) << rec << " [" << fields << "] -> " << out;
  }
}

}  // namespace
}  // namespace ssefanout::pb
