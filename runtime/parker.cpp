#include "parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault.hpp"

namespace spindle::detail {

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns) {
  if (fault::should_fail(fault::Site::kFutex)) {
    return;  // as a spurious wakeup (EINTR): every caller re-checks
  }
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
    tsp = &ts;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, tsp,
            nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>* word, int count) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
            nullptr, 0);
}

void Parker::park(std::int64_t timeout_ns) {
  // acquire: consuming a permit orders us after the unparker's writes.
  if (state_.exchange(kEmpty, std::memory_order_acquire) == kNotified) {
    return;
  }
  std::uint32_t expected = kEmpty;
  if (!state_.compare_exchange_strong(expected, kParked, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
    // Only unpark() can have changed it: take the permit.
    state_.store(kEmpty, std::memory_order_relaxed);
    return;
  }
  futex_wait(&state_, kParked, timeout_ns);
  // acquire: pairs with the release exchange in unpark(). Whether woken,
  // timed out or spurious, leave the permit consumed; callers re-check.
  state_.exchange(kEmpty, std::memory_order_acquire);
}

void Parker::unpark() {
  // release: the unparker's writes (e.g. a pushed task) before the wakeup.
  const std::uint32_t old = state_.exchange(kNotified, std::memory_order_release);
  if (old == kParked) {
    futex_wake(&state_, 1);
  } else if (old == kPolling) {
    interrupt_(interrupt_arg_);  // the parker sleeps in epoll: its eventfd
  }
}

}  // namespace spindle::detail
