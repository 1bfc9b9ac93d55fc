// Stack-overflow reporting. A SIGSEGV handler running on an alternate signal
// stack recognizes a fault in (or just below) the running fiber's stack,
// prints the task's name, id and stack size, and aborts. Faults elsewhere go
// to whatever handler was installed before ours, or to the default action.
#pragma once

#include <cstddef>

namespace spindle::detail {

class TaskCore;

class OverflowGuard {
 public:
  // Per worker thread: an alternate signal stack; the process-wide handler
  // is installed on first use.
  static void install_on_this_thread();
  static void remove_from_this_thread();
  // Reports an overflow found by the canary check and aborts.
  [[noreturn]] static void report_overflow(TaskCore* t, std::size_t stack_size) noexcept;
};

}  // namespace spindle::detail
