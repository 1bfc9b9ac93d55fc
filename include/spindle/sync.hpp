// Mutex, Event, Condition, Semaphore, BoundedSemaphore and Barrier:
// asyncio's synchronization primitives, made thread-safe.
//
// Every blocking call suspends the calling task (other tasks keep the worker
// busy) or blocks the calling plain thread; tasks on any worker and plain
// threads may share one object. Waiters are served in FIFO order. Each
// blocking call is a suspension point: a pending or arriving cancel() makes
// it throw Cancelled, and it is cancellation-safe:
//   - a cancelled acquire()/lock() leaks no permit and steals no wake-up:
//     if the permit (or the mutex) was already handed to the waiter when the
//     cancellation arrived, the call either returns normally holding it (the
//     Cancelled is then delivered at the task's next suspension point, since
//     a granted wait cannot be cancelled), or passes it on to the next
//     waiter before it throws;
//   - Event::wait() cancelled leaves the event as it was;
//   - Condition::wait() re-acquires the mutex before it returns or throws
//     (as asyncio's does).
// A call that does not need to block (lock() of a free mutex, acquire() with
// a permit left, wait() of a set event) returns at once without a suspension
// point, as in asyncio, so it does not deliver a pending cancellation.
//
// Memory ordering: everything a thread or task did before unlock(),
// release(), set(), notify() or a Barrier::wait() is visible to the task or
// thread that, in turn, returns from lock(), acquire(), wait() or
// Barrier::wait() because of it — on any worker, for tasks and plain threads
// alike (as with std::mutex).
//
// Not promised: fairness beyond FIFO order among blocked waiters (a Mutex
// lets a newcomer take a free mutex before a woken waiter runs, see below);
// ownership checks (as asyncio.Lock, any thread or task may unlock a locked
// Mutex); progress for a task that suspends while holding a std::mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "future.hpp"

namespace spindle {

// asyncio.Lock / Go's sync.Mutex. BasicLockable and Lockable, so
// std::lock_guard, std::unique_lock and std::scoped_lock work with it.
//
// lock() of a free mutex is one CAS and never allocates; unlock() with
// nobody waiting is one CAS. Under contention it behaves like Go's
// sync.Mutex: waiters queue in FIFO order and unlock() wakes the first one,
// but a lock() that finds the mutex free takes it at once even if a woken
// waiter has not run yet ("normal mode": the mutex keeps running on the
// worker that has it hot instead of paying a context switch per hand-over).
// A woken waiter that loses that race queues again at the front; once it has
// waited more than 1 ms the mutex switches to "starvation mode", where
// unlock() hands ownership directly to the first waiter and newcomers queue
// behind. It leaves that mode when the queue empties or a waiter got the
// mutex after waiting less than 1 ms. Before queueing, lock() spins briefly
// (Go's active spinning), but only while nobody is queued yet and only when
// the holder could be running elsewhere (a plain thread on a multicore
// machine, or a task in a runtime with more than one worker).
//
// Misuse: unlock() of an unlocked mutex throws InvalidStateError (asyncio
// raises RuntimeError). Destroying a mutex that is locked or has waiters is
// undefined, as for std::mutex.
class Mutex {
 public:
  Mutex() noexcept = default;
  // Waits out an unlock() still finishing on another thread (the mutex may
  // be destroyed as soon as nobody holds it, as a std::mutex may).
  ~Mutex() { detail::SpinGuard g(lock_); }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    std::uint32_t expected = 0;
    // acquire: the critical section starts after the previous holder's
    // writes; pairs with the release in unlock().
    if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    lock_slow();
  }
  // Never blocks; fails while the mutex is locked (or in starvation mode).
  bool try_lock() noexcept;
  void unlock() {
    std::uint32_t expected = kLocked;
    // release: publishes the critical section; pairs with the acquire in
    // lock()/try_lock().
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return;
    }
    unlock_slow();
  }
  bool locked() const noexcept { return (state_.load(std::memory_order_relaxed) & kLocked) != 0; }

 private:
  friend class Condition;
  struct Node;
  // State bits (runtime/sync.cpp documents the protocol, INV-M1..M6).
  static constexpr std::uint32_t kLocked = 1;    // held
  static constexpr std::uint32_t kWoken = 2;     // a woken waiter is on its way
  static constexpr std::uint32_t kStarving = 4;  // direct hand-off mode
  static constexpr std::uint32_t kWaiters = 8;   // waiters_ is not empty
  // sync.cpp's layout table: bits 0..3 of the 32-bit state_, one each, none
  // shared, nothing else in the word.
  static_assert(kLocked == 1u << 0 && kWoken == 1u << 1 && kStarving == 1u << 2 &&
                    kWaiters == 1u << 3,
                "Mutex state bits sit where the layout table in sync.cpp says");
  static_assert((kLocked | kWoken | kStarving | kWaiters) == 0xFu &&
                    (kLocked + kWoken + kStarving + kWaiters) == 0xFu,
                "Mutex state bits are distinct and fill bits 0..3 only");

  void lock_slow();
  void lock_contended(bool& woken);
  void unlock_slow();
  void wake_one_locked(detail::WakeBatch& wake) SPINDLE_REQUIRES(lock_);
  void hand_off_locked(detail::WakeBatch& wake) SPINDLE_REQUIRES(lock_);
  void pass_woken();

  std::atomic<std::uint32_t> state_{0};
  detail::SpinLock lock_;  // also guards the fields of the nodes on waiters_
  detail::WaitList waiters_ SPINDLE_GUARDED_BY(lock_);
};

// asyncio.Event. set() wakes every waiter; waiters that arrive while the
// event is set return at once.
class Event {
 public:
  Event() noexcept = default;
  // Waits out a set() still finishing on another thread: a waiter that saw
  // is_set() may destroy the event at once.
  ~Event() { detail::SpinGuard g(lock_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void set();
  void clear() noexcept;
  bool is_set() const noexcept {
    // acquire: pairs with the release in set(): a caller that sees the flag
    // sees what the setter did before set().
    return flag_.load(std::memory_order_acquire);
  }
  // Until the event is set.
  void wait();
  // True if the event was set (now, or while waiting), false on timeout.
  bool wait_for(Duration timeout);
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    return wait_for(detail::to_duration(timeout));
  }

 private:
  std::atomic<bool> flag_{false};  // written under lock_
  detail::SpinLock lock_;
  detail::WaitList waiters_ SPINDLE_GUARDED_BY(lock_);
};

// asyncio.Condition: a condition variable bound to a Mutex it owns
// (Condition()) or borrows (Condition(Mutex&); the mutex must outlive it).
// lock()/unlock() make it BasicLockable, like asyncio's `async with cond`.
//
// wait() requires the mutex to be locked (else InvalidStateError), releases
// it, waits for notify(), and re-acquires it before returning or throwing —
// also when cancelled (a cancellation that arrives while re-acquiring is
// held until the mutex is back, then thrown). A wait() that ends with an
// exception after it was notified passes the notification on (notify(1)),
// as asyncio 3.13 does; spurious wake-ups are therefore possible, so wait in
// a loop or use wait(pred). notify() and notify_all() also require the mutex
// to be locked (InvalidStateError), as asyncio does; waiters are woken in
// FIFO order.
class Condition {
 public:
  Condition() noexcept : mu_(&own_) {}
  explicit Condition(Mutex& mutex) noexcept : mu_(&mutex) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  void lock() { mu_->lock(); }
  bool try_lock() noexcept { return mu_->try_lock(); }
  void unlock() { mu_->unlock(); }
  bool locked() const noexcept { return mu_->locked(); }
  Mutex& mutex() noexcept { return *mu_; }

  void wait();
  // asyncio's wait_for(predicate): waits until pred() is truthy; returns
  // its last value. Called and returns with the mutex held.
  template <class Pred>
  auto wait(Pred pred) -> decltype(pred()) {
    auto result = pred();
    while (!result) {
      wait();
      result = pred();
    }
    return result;
  }
  // Wakes up to n waiters (in FIFO order).
  void notify(std::size_t n = 1);
  void notify_all();

 private:
  void notify_unchecked(std::size_t n);

  Mutex own_;
  Mutex* mu_;
  detail::SpinLock lock_;
  detail::WaitList waiters_ SPINDLE_GUARDED_BY(lock_);
};

// asyncio.Semaphore: a counter of permits. acquire() takes one, blocking
// while none is left — or while others already wait (FIFO: a newcomer never
// overtakes a queued waiter); release() hands one to the first waiter or
// returns it to the counter.
class Semaphore {
 public:
  // value < 0: std::invalid_argument (asyncio: ValueError).
  explicit Semaphore(std::int64_t value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  void acquire();
  // Takes a permit if one is free and nobody waits; never blocks.
  bool try_acquire() noexcept;
  void release();
  // True if acquire() would block.
  bool locked() const noexcept;
  // Free permits.
  std::int64_t value() const noexcept;

  // BasicLockable, for std::lock_guard: lock() = acquire, unlock() = release.
  void lock() { acquire(); }
  void unlock() { release(); }

 protected:
  Semaphore(std::int64_t value, std::int64_t bound);

 private:
  // Hands one permit to the first waiter or back to the counter. Under lock_.
  void give_locked(detail::WakeBatch& wake) noexcept SPINDLE_REQUIRES(lock_);

  mutable detail::SpinLock lock_;
  std::int64_t value_ SPINDLE_GUARDED_BY(lock_);  // > 0 only while waiters_ is empty
  const std::int64_t bound_;                      // BoundedSemaphore's initial value; -1: unbounded
  detail::WaitList waiters_ SPINDLE_GUARDED_BY(lock_);
};

// asyncio.BoundedSemaphore: release() past the initial value throws
// std::invalid_argument (asyncio: ValueError).
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1);
};

// asyncio.Barrier: `parties` callers of wait() meet; each gets its arrival
// index (0 .. parties-1), and the barrier resets itself for the next round.
// reset() breaks the current round (its waiters get BrokenBarrierError) and
// makes the barrier usable again; abort() breaks it for good: every present
// and future wait() throws BrokenBarrierError. A cancelled wait() leaves the
// round (n_waiting() drops) without breaking it. reset() and abort() take
// the barrier's internal mutex (held only briefly), so in a task they are
// suspension points.
class Barrier {
 public:
  // parties < 1: std::invalid_argument (asyncio: ValueError).
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  std::size_t wait();
  void reset();
  void abort();
  bool broken() const noexcept { return state() == State::kBroken; }
  // Callers waiting in the current (filling) round.
  std::size_t n_waiting() const noexcept;
  std::size_t parties() const noexcept { return parties_; }

 private:
  enum class State : std::uint8_t { kFilling, kDraining, kResetting, kBroken };
  State state() const noexcept { return state_.load(std::memory_order_relaxed); }
  void exit_locked();

  Condition cond_;
  const std::size_t parties_;
  // Written with cond_'s mutex held; atomic so broken() and n_waiting() may
  // read them without it (relaxed: a snapshot, as asyncio's properties).
  std::atomic<State> state_{State::kFilling};
  std::atomic<std::size_t> count_{0};
};

}  // namespace spindle
