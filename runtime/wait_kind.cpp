#include "wait_kind.hpp"

#include <iterator>

namespace spindle::detail {
namespace {

// Indexed by WaitKind.
const char* const kWaitTexts[] = {
    nullptr,
    "future",
    "future (with timeout)",
    "sleep",
    "task (running it inline)",
    "socket read",
    "socket write",
    "socket accept",
    "socket connect",
};
static_assert(std::size(kWaitTexts) == static_cast<std::size_t>(WaitKind::kIoConnect) + 1,
              "one text per WaitKind");

}  // namespace

const char* wait_text(WaitKind k) noexcept { return kWaitTexts[static_cast<std::size_t>(k)]; }

WaitKind wait_kind(const char* reason) noexcept {
  for (std::size_t i = 1; i < std::size(kWaitTexts); ++i) {
    if (reason == kWaitTexts[i]) {
      return static_cast<WaitKind>(i);
    }
  }
  return WaitKind::kNone;
}

}  // namespace spindle::detail
