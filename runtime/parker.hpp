// Futex-based park/unpark for one worker thread (brpc ParkingLot, Rust's
// std::thread::park). A permit model: unpark() before park() makes the next
// park() return at once, so no wakeup is lost between the decision to sleep
// and the futex call.
//
// state_: kEmpty -> kParked (park, CAS) -> kEmpty (woken)
//         kEmpty -> kPolling (park_polling, CAS) -> kEmpty (epoll returned)
//         any   -> kNotified (unpark, exchange); kNotified -> kEmpty (park
//         consumes the permit). The futex word is state_ itself.
//
// A worker that parks while holding the I/O driver's token sleeps in
// epoll instead of on the futex (io_driver.hpp): kPolling tells unpark()
// to wake it through the driver's eventfd. unpark() exchanges first and
// acts on the old value, so a wake that lands between the worker leaving
// epoll and its exchange back to kEmpty costs one spurious eventfd event
// (the next sleeper's poll returns at once and drains it). The wake itself
// is not lost: the worker is already awake, and every caller of park
// re-checks the queues after it returns.
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail {

class Parker {
 public:
  // Blocks until unpark() or until `timeout_ns` (< 0: forever) elapses.
  void park(std::int64_t timeout_ns);
  // As park(), sleeping in `poll(timeout_ns)` (the I/O driver's blocking
  // poll) instead of the futex; `interrupt` is what unpark() calls to end
  // that poll early. Returns whatever poll returned, 0 if it did not run.
  template <class Poll>
  int park_polling(std::int64_t timeout_ns, Poll&& poll);
  void unpark();
  // The driver whose interrupt() ends a kPolling park; set once, before
  // the worker threads start.
  void set_interrupt(void (*fn)(void*), void* arg) noexcept {
    interrupt_ = fn;
    interrupt_arg_ = arg;
  }

 private:
  static constexpr std::uint32_t kEmpty = 0, kParked = 1, kNotified = 2, kPolling = 3;
  std::atomic<std::uint32_t> state_{kEmpty};
  void (*interrupt_)(void*) = nullptr;
  void* interrupt_arg_ = nullptr;
};

template <class Poll>
int Parker::park_polling(std::int64_t timeout_ns, Poll&& poll) {
  // acquire: consuming a permit orders us after the unparker's writes.
  if (state_.exchange(kEmpty, std::memory_order_acquire) == kNotified) {
    return 0;
  }
  std::uint32_t expected = kEmpty;
  if (!state_.compare_exchange_strong(expected, kPolling, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
    state_.store(kEmpty, std::memory_order_relaxed);  // only unpark() changes it: take the permit
    return 0;
  }
  const int n = poll(timeout_ns);
  // acquire: pairs with unpark()'s release exchange, as in park().
  state_.exchange(kEmpty, std::memory_order_acquire);
  return n;
}

// Thin futex wrappers, also used by thread waiters on futures. futex(2)
// reads the word as a 32-bit int: Parker::state_ and Waiter::state are that.
static_assert(sizeof(std::atomic<std::uint32_t>) == 4 &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word is a lock-free 32-bit atomic");
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns);
void futex_wake(std::atomic<std::uint32_t>* word, int count);

}  // namespace spindle::detail
