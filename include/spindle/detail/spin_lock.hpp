// Not API. A test-and-test-and-set lock for the few short critical sections
// in futures and queues (linking a waiter, swapping a list head). Critical
// sections never suspend and never call user code.
#pragma once

#include <atomic>
#include <thread>

#include "cpu_relax.hpp"
#include "thread_annotations.hpp"

namespace spindle::detail {

class SPINDLE_CAPABILITY("spinlock") SpinLock {
 public:
  void lock() noexcept SPINDLE_ACQUIRE() {
    // acquire: pairs with the release in unlock(); the critical section
    // starts after the previous holder's writes.
    if (!locked_.exchange(true, std::memory_order_acquire)) {
      return;
    }
    lock_slow();
  }
  bool try_lock() noexcept SPINDLE_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept SPINDLE_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  // Exponential backoff, not a tight test-and-test-and-set loop. A waiter
  // that re-reads the lock word after every pause pulls its cache line away
  // from the holder each time, so on a contended queue every critical
  // section paid several cross-core transfers (lock, indices, slot) and
  // the two cores took strict turns. Backing off leaves the line with the
  // holder for a few of its critical sections in a row: 2-worker
  // queue_mpmc went from ~60 to ~30 ns per item, median of alternating
  // runs. The waiter still tries at 1, 2, 4 ... 64 pauses (cpu_relax(): a
  // PAUSE is ~27 ns on this project's reference AMD machine, so the first
  // tries come within a few hundred ns), then yields the thread between
  // tries in case the holder is a preempted plain thread.
  void lock_slow() noexcept {
    unsigned backoff = 1;
    for (;;) {
      for (unsigned i = 0; i < backoff; ++i) {
        cpu_relax();
      }
      if (backoff < kMaxBackoff) {
        backoff *= 2;
      } else {
        std::this_thread::yield();
      }
      // relaxed: only a hint; the exchange below is what acquires.
      if (!locked_.load(std::memory_order_relaxed) &&
          !locked_.exchange(true, std::memory_order_acquire)) {
        return;
      }
    }
  }
  static constexpr unsigned kMaxBackoff = 64;
  std::atomic<bool> locked_{false};
};

class SPINDLE_SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l) noexcept SPINDLE_ACQUIRE(l) : l_(l) { l_.lock(); }
  ~SpinGuard() SPINDLE_RELEASE() { l_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace spindle::detail
