// Cursor: the text form of a position in a hub's history, "<epoch>-<seq>".
//
// The epoch is a short string made when the history is created (1 to
// kMaxEpochBytes of [A-Za-z0-9]); seq is the decimal sequence number of the
// last event the reader has seen (0: none yet). One scalar covers any set of
// topics, since every published event takes the next number hub-wide.
//
// parseCursor() takes any client-controlled bytes (a Last-Event-ID header, a
// query parameter) and never reads past them; it accepts only the exact
// grammar below, so what it hands back can be printed without echoing a
// client's bytes. Pure functions; safe on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ssefanout::history {

constexpr size_t kMaxEpochBytes = 32;
// The largest sequence number a cursor may name: 2^53 - 1, so that every
// sequence is exact as a JavaScript number too.
constexpr uint64_t kMaxSeq = (uint64_t{1} << 53) - 1;
// "<epoch>-<seq>": 32 + 1 + 16 digits.
constexpr size_t kMaxCursorBytes = kMaxEpochBytes + 1 + 16;

// True for 1..kMaxEpochBytes bytes of [A-Za-z0-9].
bool validEpoch(std::string_view epoch);

enum class CursorForm : uint8_t {
  kOurs,       // "<epoch>-<seq>" with this history's epoch
  kForeign,    // the grammar, another epoch (the history was made again)
  kMalformed,  // anything else
};

struct ParsedCursor {
  CursorForm form = CursorForm::kMalformed;
  uint64_t seq = 0;  // for kOurs and kForeign
};

// Grammar: epoch "-" seq, seq = "0" / [1-9][0-9]* with a value <= kMaxSeq.
ParsedCursor parseCursor(std::string_view text, std::string_view epoch);

std::string formatCursor(std::string_view epoch, uint64_t seq);

}  // namespace ssefanout::history
