// A Waiter: one suspension of one task, or one blocked plain thread.
//
// It lives on the waiting side's stack and is linked into whatever can wake
// it: a future's waiter list, a timer wheel, the task's own cancel slot.
// Several of those may race to wake it; exactly one wins.
//
// Roles: the owner (the task or thread that waits) and any number of
// firers (a completing future, a timer, a canceller).
//
// Invariants
//   INV-W1  state_ goes kArmed -> kFired once, by the CAS in try_fire(); the
//           winner alone wakes the owner (task_state.hpp INV-T3).
//   INV-W2  a firer touches a Waiter only while holding the lock of the
//           structure it found it in (future lock, timer-wheel lock, task
//           lock), and the owner unlinks the Waiter under each of those
//           locks before its stack frame goes away. After winning the CAS a
//           firer may still read `root` outside the lock: the owner cannot
//           resume (hence cannot return) until that firer wakes it.
//   INV-W3  a plain-thread waiter is woken with futex_wake while the firer
//           still holds the lock (INV-W2 for the futex word itself).
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail {

class TaskCore;

struct Waiter {
  static constexpr std::uint32_t kArmed = 0;
  static constexpr std::uint32_t kFired = 1;

  // The fiber-owning task to wake; nullptr for a plain thread, which sleeps
  // on `state` with a futex.
  TaskCore* root = nullptr;
  // The future's waiter list links (intrusive_list.hpp), under the future's
  // lock; after publish() takes the list, `next` chains the winners it
  // wakes (future.cpp).
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool linked = false;  // in the future's waiter list; under the future's lock
  std::atomic<std::uint32_t> state{kArmed};

  [[nodiscard]] bool try_fire() noexcept {
    std::uint32_t expected = kArmed;
    // acq_rel: release publishes what the firer did before (the value it
    // stored); acquire orders us after the owner's arming.
    return state.compare_exchange_strong(expected, kFired, std::memory_order_acq_rel,
                                         std::memory_order_acquire);
  }
  bool fired() const noexcept { return state.load(std::memory_order_acquire) == kFired; }
};

// After winning try_fire(): makes the owner runnable. For a task this goes
// through the task state machine; for a thread, a futex wake (which must
// happen under the firer's lock, INV-W3). `lifo`: a single wake from the
// running task goes to the LIFO slot (it runs next, while the waker's data is
// warm); a batch (timers due together, a future with many waiters) queues
// FIFO so the tasks resume in the order they were woken.
void wake_waiter_owner(Waiter* w, bool lifo = true);

}  // namespace spindle::detail
