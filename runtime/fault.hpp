// Fault injection, for tests: make the Nth allocation, mmap, mprotect,
// thread creation or futex wait fail, so that a test can sweep N over a
// workload and check that each failure reaches a caller as a clear
// exception, with nothing hung, leaked, lost or run twice.
//
// Compiled in with SPINDLE_TEST_HOOKS (see perturb.hpp); elsewhere
// should_fail() is a constant false. Off, a site costs one relaxed load.
//
// What a failure does at each site:
//   kAlloc     pool_alloc throws std::bad_alloc (every future, task and
//              callback record)
//   kMmap      a stack chunk's mmap fails: std::system_error(ENOMEM)
//   kMprotect  a guard page's mprotect fails: that stack goes unguarded
//              (the documented fallback past the guard budget)
//   kThread    creating a worker, monitor or blocking-pool thread throws
//              std::system_error(EAGAIN)
//   kFutex     a futex wait returns at once, as a spurious wakeup (EINTR)
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail::fault {

enum class Site : std::uint8_t { kAlloc, kMmap, kMprotect, kThread, kFutex, kCount };

const char* name(Site s) noexcept;

// From now on, count calls at `s`; the `nth` (1 = the next) fails, and so
// does every later one if `sticky`. nth = 0 only counts.
void arm(Site s, std::uint64_t nth, bool sticky = false);
// Every site back to normal; counts kept until the next arm().
void disarm_all();
// Calls at `s` since it was last armed, and failures injected there.
std::uint64_t calls(Site s) noexcept;
std::uint64_t injected(Site s) noexcept;

#if SPINDLE_TEST_HOOKS
inline std::atomic<bool> g_armed{false};
bool should_fail_slow(Site s) noexcept;
inline bool should_fail(Site s) noexcept {
  // relaxed: a hint; arming is done before the workload starts.
  return __builtin_expect(g_armed.load(std::memory_order_relaxed), 0) && should_fail_slow(s);
}
#else
inline bool should_fail(Site) noexcept { return false; }
#endif

// RAII for tests: disarms every site at the end of the scope.
struct DisarmAtExit {
  DisarmAtExit() = default;
  ~DisarmAtExit() { disarm_all(); }
  DisarmAtExit(const DisarmAtExit&) = delete;
  DisarmAtExit& operator=(const DisarmAtExit&) = delete;
};

}  // namespace spindle::detail::fault
