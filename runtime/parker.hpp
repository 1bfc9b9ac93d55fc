// Futex-based park/unpark for one worker thread (brpc ParkingLot, Rust's
// std::thread::park). A permit model: unpark() before park() makes the next
// park() return at once, so no wakeup is lost between the decision to sleep
// and the futex call.
//
// state_: kEmpty -> kParked (park, CAS) -> kEmpty (woken)
//         any   -> kNotified (unpark, exchange); kNotified -> kEmpty (park
//         consumes the permit). The futex word is state_ itself.
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail {

class Parker {
 public:
  // Blocks until unpark() or until `timeout_ns` (< 0: forever) elapses.
  void park(std::int64_t timeout_ns);
  void unpark();

 private:
  static constexpr std::uint32_t kEmpty = 0, kParked = 1, kNotified = 2;
  std::atomic<std::uint32_t> state_{kEmpty};
};

// Thin futex wrappers, also used by thread waiters on futures. futex(2)
// reads the word as a 32-bit int: Parker::state_ and Waiter::state are that.
static_assert(sizeof(std::atomic<std::uint32_t>) == 4 &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word is a lock-free 32-bit atomic");
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns);
void futex_wake(std::atomic<std::uint32_t>* word, int count);

}  // namespace spindle::detail
