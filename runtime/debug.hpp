// SPINDLE_ASSERT: checked in every build. The runtime's invariants are cheap
// to test and a violated one means memory is about to be corrupted, so it
// prints where and aborts rather than continuing.
#pragma once

namespace spindle::detail {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* msg);
[[noreturn]] void fatal(const char* msg);
}  // namespace spindle::detail

#define SPINDLE_ASSERT(expr, msg)                                       \
  do {                                                                  \
    if (__builtin_expect(!(expr), 0)) {                                 \
      ::spindle::detail::assert_fail(#expr, __FILE__, __LINE__, (msg)); \
    }                                                                   \
  } while (0)
