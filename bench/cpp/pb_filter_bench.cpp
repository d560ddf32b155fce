// Micro-benchmarks of the PocketBase filter engine (src/pocketbase/pb_filter.hpp)
// and field projection (src/pocketbase/pb_field_picker.hpp).
//
// Every benchmark first checks its result against a reference worked out
// independently (direct simdjson lookups, a hand-written expected string);
// on any difference it reports an error instead of a time. Items/s count
// compiles, evaluations or projections.
//
//   BM_FilterCompile:       compile a typical subscription filter.
//   BM_FilterEvaluate:      `status = "active" && views > 10` on a parsed
//                           ~300-byte record.
//   BM_FilterEvaluateAuth:  `owner = @request.auth.id` for a logged-in user.
//   BM_FieldPickerWrite:    project 3 fields of the same record to JSON
//                           (bytes/s count the output).
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "pb_field_picker.hpp"
#include "pb_filter.hpp"

namespace {

using ssefanout::pb::EvalContext;
using ssefanout::pb::FieldPicker;
using ssefanout::pb::Filter;

constexpr std::string_view kRecord =
    R"({"id":"rec0000000000001","collectionId":"pbc_1125843985","collectionName":"posts",)"
    R"("created":"2024-05-01 10:00:00.000Z","updated":"2024-05-02 11:30:00.000Z",)"
    R"("title":"A typical post title","status":"active","views":42,"owner":"usr0000000000007",)"
    R"("tags":["news","tech"],"public":true,"data":{"lang":"en","score":4.5},)"
    R"("body":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod."})";

constexpr std::string_view kUser =
    R"({"id":"usr0000000000007","collectionName":"users","email":"a@example.com","verified":true})";

constexpr std::string_view kTypicalFilter =
    R"(status = "active" && views > 10 && (owner = @request.auth.id || public = true))";

struct Doc {
  explicit Doc(std::string_view json) : padded(json) { error = parser.parse(padded).get(root); }
  simdjson::padded_string padded;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::error_code error;
};

// The reference: the same conditions read straight from the DOM.
bool referenceActiveAndViews(simdjson::dom::element record) {
  std::string_view status;
  int64_t views = 0;
  if (record["status"].get(status) || record["views"].get(views)) return false;
  return status == "active" && views > 10;
}

bool referenceOwner(simdjson::dom::element record, simdjson::dom::element auth) {
  std::string_view owner, id;
  if (record["owner"].get(owner) || auth["id"].get(id)) return false;
  return owner == id;
}

void BM_FilterCompile(benchmark::State& state) {
  Filter f;
  std::string err;
  if (!Filter::compile(kTypicalFilter, &f, &err)) {
    state.SkipWithError(("compile failed: " + err).c_str());
    return;
  }
  Doc record(kRecord), user(kUser);
  EvalContext ctx;
  ctx.record = record.root;
  ctx.auth = &user.root;
  if (record.error || user.error || !f.evaluate(ctx) || !f.usesAuth()) {
    state.SkipWithError("the typical filter does not match the record as the reference says");
    return;
  }
  for (auto _ : state) {
    Filter out;
    bool ok = Filter::compile(kTypicalFilter, &out, &err);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["expr_bytes"] = static_cast<double>(kTypicalFilter.size());
}

void BM_FilterEvaluate(benchmark::State& state) {
  Doc record(kRecord);
  Filter f;
  std::string err;
  if (record.error || !Filter::compile(R"(status = "active" && views > 10)", &f, &err)) {
    state.SkipWithError("setup failed");
    return;
  }
  EvalContext ctx;
  ctx.record = record.root;
  if (f.evaluate(ctx) != referenceActiveAndViews(record.root) || !f.evaluate(ctx)) {
    state.SkipWithError("evaluate() differs from the reference");
    return;
  }
  for (auto _ : state) {
    bool r = f.evaluate(ctx);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["record_bytes"] = static_cast<double>(kRecord.size());
}

void BM_FilterEvaluateAuth(benchmark::State& state) {
  Doc record(kRecord), user(kUser);
  Filter f;
  std::string err;
  if (record.error || user.error || !Filter::compile("owner = @request.auth.id", &f, &err)) {
    state.SkipWithError("setup failed");
    return;
  }
  EvalContext ctx;
  ctx.record = record.root;
  ctx.auth = &user.root;
  EvalContext guest;
  guest.record = record.root;
  if (f.evaluate(ctx) != referenceOwner(record.root, user.root) || !f.evaluate(ctx) || f.evaluate(guest)) {
    state.SkipWithError("evaluate() differs from the reference");
    return;
  }
  for (auto _ : state) {
    bool r = f.evaluate(ctx);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FieldPickerWrite(benchmark::State& state) {
  Doc record(kRecord);
  FieldPicker p;
  std::string err;
  if (record.error || !FieldPicker::compile("id,title,status", &p, &err)) {
    state.SkipWithError("setup failed");
    return;
  }
  const std::string want = R"({"id":"rec0000000000001","title":"A typical post title","status":"active"})";
  std::string out;
  p.write(record.root, &out);
  if (out != want) {
    state.SkipWithError(("write() differs from the reference: " + out).c_str());
    return;
  }
  size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    p.write(record.root, &out);
    benchmark::DoNotOptimize(out.data());
    bytes += out.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_FilterCompile);
BENCHMARK(BM_FilterEvaluate);
BENCHMARK(BM_FilterEvaluateAuth);
BENCHMARK(BM_FieldPickerWrite);

}  // namespace
