// Not API. A test-and-test-and-set lock for the few short critical sections
// in futures and queues (linking a waiter, swapping a list head). Critical
// sections never suspend and never call user code.
#pragma once

#include <atomic>
#include <thread>

namespace spindle::detail {

class SpinLock {
 public:
  void lock() noexcept {
    // acquire: pairs with the release in unlock(); the critical section
    // starts after the previous holder's writes.
    if (!locked_.exchange(true, std::memory_order_acquire)) {
      return;
    }
    lock_slow();
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept {
    for (unsigned spins = 0;; ++spins) {
      // relaxed: only a hint; the exchange below is what acquires.
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins++ < 64) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();
        }
      }
      if (!locked_.exchange(true, std::memory_order_acquire)) {
        return;
      }
    }
  }
  std::atomic<bool> locked_{false};
};

class SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l) noexcept : l_(l) { l_.lock(); }
  ~SpinGuard() { l_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace spindle::detail
