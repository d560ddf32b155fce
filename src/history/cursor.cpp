#include "cursor.hpp"

namespace ssefanout::history {
namespace {

bool isAlnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

bool validEpoch(std::string_view epoch) {
  if (epoch.empty() || epoch.size() > kMaxEpochBytes) return false;
  for (char c : epoch) {
    if (!isAlnum(c)) return false;
  }
  return true;
}

ParsedCursor parseCursor(std::string_view text, std::string_view epoch) {
  ParsedCursor out;
  if (text.size() > kMaxCursorBytes) return out;
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return out;
  const std::string_view head = text.substr(0, dash);
  const std::string_view digits = text.substr(dash + 1);
  if (!validEpoch(head) || digits.empty() || (digits.size() > 1 && digits[0] == '0')) return out;
  uint64_t seq = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return out;
    seq = seq * 10 + static_cast<uint64_t>(c - '0');  // at most 16 digits: no overflow
    if (seq > kMaxSeq) return out;
  }
  out.form = head == epoch ? CursorForm::kOurs : CursorForm::kForeign;
  out.seq = seq;
  return out;
}

std::string formatCursor(std::string_view epoch, uint64_t seq) {
  std::string out;
  out.reserve(epoch.size() + 21);
  out.append(epoch);
  out.push_back('-');
  out.append(std::to_string(seq));
  return out;
}

}  // namespace ssefanout::history
