// Fuzz target: the cursor grammar (src/history/cursor.hpp) and
// History::locate on arbitrary bytes, as a Last-Event-ID header or a query
// parameter would bring them.
//
// The first byte picks the epoch the input is read against (one of a few,
// incl. a 32-byte one, or the epoch the input itself names); the rest is the
// cursor text, in a buffer of exactly its size (ASan reports any read past
// it). Properties: parseCursor agrees with the naive reader of
// test/cpp/history/history_model.hpp; kOurs and kForeign round-trip through
// formatCursor byte for byte (the grammar has one spelling per value) with
// seq <= kMaxSeq, and kOurs names exactly our epoch; History::locate on a
// small history with explicit ids agrees with HistoryModel::locate.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cursor.hpp"
#include "fuzz_check.hpp"
#include "history.hpp"
#include "history/history_model.hpp"
#include "sse_encoder.hpp"

using namespace ssefanout;
using namespace ssefanout::history;
using fuzzutil::show;

namespace {

FrameRef frameOf(std::string_view topic, std::string_view id) {
  EventFields ev;
  ev.id = id;
  ev.data = "x";
  FrameRef f;
  encodeEvent(ev, &f, Frame::Kind::kEvent, topic);
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::string kEpochs[] = {"k3J9aQ2x", "a", std::string(32, 'Z'), "0"};
  const uint8_t choice = data[0];
  // Exactly the cursor's bytes on the heap: nothing may be read past them.
  const size_t n = size - 1;
  std::unique_ptr<char[]> exact(new char[n ? n : 1]);
  if (n) std::memcpy(exact.get(), data + 1, n);
  const std::string_view text(exact.get(), n);

  std::string epoch = kEpochs[choice % 4];
  if (choice & 0x80) {
    const size_t dash = text.find('-');
    if (dash != std::string_view::npos && validEpoch(text.substr(0, dash))) epoch = std::string(text.substr(0, dash));
  }

  const ParsedCursor c = parseCursor(text, epoch);
  const test::ModelCursor m = test::modelParseCursor(text, epoch);
  const CursorForm want = m.form == test::ModelCursor::Form::kOurs      ? CursorForm::kOurs
                          : m.form == test::ModelCursor::Form::kForeign ? CursorForm::kForeign
                                                                        : CursorForm::kMalformed;
  FUZZ_CHECK(c.form == want, "parseCursor(%s, %s) form %d, the model says %d", show(text).c_str(), epoch.c_str(),
             static_cast<int>(c.form), static_cast<int>(want));
  if (c.form != CursorForm::kMalformed) {
    FUZZ_CHECK(c.seq == m.seq, "parseCursor(%s) seq %llu, the model says %llu", show(text).c_str(),
               static_cast<unsigned long long>(c.seq), static_cast<unsigned long long>(m.seq));
    FUZZ_CHECK(c.seq <= kMaxSeq, "parseCursor(%s) seq %llu past kMaxSeq", show(text).c_str(),
               static_cast<unsigned long long>(c.seq));
    FUZZ_CHECK(text.size() <= kMaxCursorBytes, "a cursor of %zu bytes", text.size());
    const std::string_view head = text.substr(0, text.find('-'));
    FUZZ_CHECK(validEpoch(head), "accepted the epoch %s", show(head).c_str());
    FUZZ_CHECK((c.form == CursorForm::kOurs) == (head == epoch), "form %d for epoch %s against %s",
               static_cast<int>(c.form), show(head).c_str(), epoch.c_str());
    const std::string again = formatCursor(head, c.seq);
    FUZZ_CHECK(again == text, "formatCursor gives %s for %s", show(again).c_str(), show(text).c_str());
  }

  // locate: a history of 6 events, 3 held, two of them with explicit ids
  // (one of which is spelt like a cursor of ours), against the model.
  HistoryOptions o;
  o.epoch = epoch;
  o.maxEvents = 3;
  History h(o);
  test::HistoryModel model(o);
  const std::string idLikeCursor = formatCursor(epoch, 1);
  for (uint64_t i = 1; i <= 6; ++i) {
    std::optional<std::string> id;
    if (i == 5) id = "x";
    if (i == 6) id = idLikeCursor;
    FrameRef f = frameOf("t", id ? *id : formatCursor(epoch, i));
    h.append(f, nullptr, id, 0);
    model.append(f, "t", std::nullopt, id, 0);
  }
  const Place p = h.locate(text, 0);
  const test::HistoryModel::Place q = model.locate(text, 0);
  FUZZ_CHECK(
      p.reason == q.reason && p.requested == q.requested && (p.reason != ResetReason::kNone || p.after == q.after),
      "locate(%s): reason %d after %llu, the model says reason %d after %llu", show(text).c_str(),
      static_cast<int>(p.reason), static_cast<unsigned long long>(p.after), static_cast<int>(q.reason),
      static_cast<unsigned long long>(q.after));
  if (p.reason != ResetReason::kNone) {
    // The reset is made of positions the history formats itself: whatever
    // the input, it is exactly this, so no byte of an invalid cursor is echoed.
    const auto json = [&](std::optional<uint64_t> seq) {
      return seq ? "\"" + formatCursor(epoch, *seq) + "\"" : std::string("null");
    };
    const std::string want = "event: reset\nid: " + formatCursor(epoch, 6) + "\ndata: {\"reason\":\"" +
                             resetReasonName(p.reason) + "\",\"requested\":" + json(q.requested) +
                             ",\"oldest\":" + json(4) + ",\"latest\":" + json(6) + "}\n\n";
    FrameRef reset = h.resetFrame(p);
    FUZZ_CHECK(reset->view() == want, "the reset for %s is %s", show(text).c_str(), show(reset->view()).c_str());
  }
  return 0;
}
