// Mutex, Event, Condition, Semaphore, BoundedSemaphore, Barrier.
//
// Every primitive blocks the same way (include/spindle/detail/wait_list.hpp):
// a waiter links a WaitNode holding a fresh Future<void> under the
// primitive's spin lock and waits on the future; a granter pops and claims
// nodes under that lock and publishes the futures after dropping it. The
// first claim of a node's future decides whether the waiter was granted
// (INV-L1); a granted waiter that still ends with Cancelled passes the grant
// on (INV-L3). Only the Mutex has lock-free fast paths; its protocol follows.
//
// ---------------------------------------------------------------------------
// Mutex protocol
// ---------------------------------------------------------------------------
// Roles: any number of lockers and unlockers (tasks on any worker, plain
// threads). state_ is the only word the fast paths touch; lock_ guards the
// waiter list and the nodes' fields.
//
// Layout of state_:
//   bit 0  kLocked    the mutex is held
//   bit 1  kWoken     an unlocker woke a waiter (not a hand-off) that has not
//                     yet retried; unlockers then wake nobody else
//   bit 2  kStarving  starvation mode: unlock() hands ownership to the first
//                     waiter; lock() never barges
//   bit 3  kWaiters   waiters_ is not empty
//
// Invariants:
//   INV-M1  kWaiters is set iff waiters_ is non-empty, give or take a
//           window inside lock_: it is changed only with lock_ held, and set
//           (by the CAS that also checks the mutex is still held) before the
//           node is linked. An unlocker whose fast-path CAS (kLocked -> 0)
//           succeeds therefore saw no waiter that could miss its wake-up: a
//           waiter's CAS and the unlocker's CAS are RMWs of one word, so one
//           of them sees the other (either the waiter sees kLocked clear and
//           takes the mutex, or the unlocker sees kWaiters and goes slow).
//   INV-M2  kWoken is set only by the unlocker that is about to wake a
//           waiter (or by pass_woken() doing the same), and cleared by the
//           woken waiter when it retries (takes the mutex or queues again),
//           or by wake_one_locked() when nobody was left to wake. At most one woken
//           waiter is in flight.
//   INV-M3  kStarving implies kLocked (outside lock_): it is set only by a
//           CAS that sees kLocked, and a starving unlock either keeps
//           kLocked (hand-off) or clears both.
//   INV-M4  A hand-off (node.handoff) transfers ownership: kLocked stays
//           set, and the new owner's acquire is the future's publish/get
//           (release/acquire), not the state word.
//   INV-M5  A waiter that was granted but throws Cancelled (INV-L3) passes
//           what it got on: a hand-off is unlock()ed, a wake-up is passed
//           with pass_woken().
//   INV-M6  An unlock() that takes the slow path touches the mutex only
//           while it holds lock_ (it takes lock_ before the releasing CAS),
//           and ~Mutex() acquires lock_: a mutex may be destroyed as soon as
//           nobody holds it, even while the previous unlock() is finishing.
//
// Transitions (every change is an RMW on state_, so there is one
// modification order):
//   lock fast      0 -> L                      CAS, acquire
//   lock barge     s (no L, no S) -> s|L       CAS, acquire (may clear W for
//                                              the woken waiter itself)
//   enqueue        s (L or S) -> s|Q[|S][&~W]  CAS under lock_, relaxed: the
//                                              list is published by lock_
//   unlock fast    L -> 0                      CAS, release
//   unlock normal  s -> s&~L [|W]              CAS under lock_, release; then
//                                              wake_one_locked()
//   unlock starve  s -> s (hand-off)           under lock_, clears S/Q with
//                  or s -> s&~(L|S|Q)          fetch_and (release if it
//                                              clears L)
//   (L kLocked, W kWoken, S kStarving, Q kWaiters)
//
// Rejected designs:
//   - Strict FIFO hand-off always (asyncio's Lock): every contended unlock
//     would cost a wake-up and a context switch before anyone could run the
//     critical section again; throughput collapses under contention (Go
//     measured the same before its 2017 rework).
//   - Pure barging without a starvation guard: a waiter can lose every race
//     to tasks on the worker that keeps the mutex hot.
//   - Waiter count in the state word (Go): lock_ is needed anyway for the
//     intrusive list, so one bit suffices.
//   - Spinning whenever the mutex is held (Go): with waiters already queued
//     the holder is usually suspended, and spinning halved the throughput
//     of BM_MutexContendedWithYield; with one worker the holder can never
//     run while we spin. Spinning only with no queue and >1 worker kept
//     BM_MutexContended's gain (about 1.6x at 2 workers over no spinning).
// Reference: Go src/sync/mutex.go (normal and starvation modes).
#include <spindle/sync.hpp>

#include <mutex>
#include <thread>

#include "atomic.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace spindle {

using detail::FutureCore;
using detail::pop_and_claim;
using detail::revoke;
using detail::SpinGuard;
using detail::WaitList;
using detail::WaitNode;
using detail::WakeBatch;

namespace {

constexpr std::int64_t kStarvationThresholdNs = 1'000'000;  // 1 ms, as Go
constexpr int kSpinRounds = 4;                              // Go: active_spin
constexpr int kSpinPauses = 30;                             // Go: active_spin_cnt

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

bool multicore() noexcept {
  static const bool mc = std::thread::hardware_concurrency() > 1;
  return mc;
}

// Go's canSpin, adapted: spinning can only pay off if the holder may be
// running on another CPU. A plain thread spins on a multicore machine; a
// task spins only if its runtime has another worker.
bool can_spin() noexcept {
  if (!multicore()) {
    return false;
  }
  detail::Worker* w = detail::Worker::current();
  return w == nullptr || w->scheduler().num_workers() > 1;
}

}  // namespace

// ---------------------------------------------------------------------------
// Mutex
// ---------------------------------------------------------------------------

struct Mutex::Node : WaitNode {
  std::int64_t since = 0;  // when this lock() first queued
  bool handoff = false;    // written by the granter under lock_ (INV-M4)
};

bool Mutex::try_lock() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while ((s & (kLocked | kStarving)) == 0) {
    // acquire: pairs with the release of the last unlock().
    if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void Mutex::lock_slow() {
  bool woken = false;  // we hold kWoken (INV-M2)
  try {
    lock_contended(woken);
  } catch (...) {
    if (woken) {
      pass_woken();  // e.g. bad_alloc for the next node (INV-M5)
    }
    throw;
  }
}

void Mutex::lock_contended(bool& woken) {
  std::int64_t since = 0;
  int spins = 0;
  for (;;) {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & (kLocked | kStarving)) == 0) {
      // Normal mode: a free mutex is taken, woken waiters or not (barging).
      std::uint32_t n = (s | kLocked) & ~(woken ? kWoken : 0u);
      // acquire: pairs with the release of the unlock() that freed it.
      if (state_.compare_exchange_weak(s, n, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    if ((s & (kStarving | kWaiters)) == 0 && spins < kSpinRounds && can_spin()) {
      // Go's active spinning: the holder may be about to unlock on another
      // worker; a few hundred cycles are cheaper than a suspension.
      ++spins;
      for (int i = 0; i < kSpinPauses; ++i) {
        detail::cpu_relax();
      }
      continue;
    }
    Node node;  // the only allocation: the waiter's future
    if (since == 0) {
      since = now_ns();
    }
    node.since = since;
    {
      SpinGuard g(lock_);
      s = state_.load(std::memory_order_relaxed);
      for (;;) {
        if ((s & (kLocked | kStarving)) == 0) {
          std::uint32_t n = (s | kLocked) & ~(woken ? kWoken : 0u);
          // acquire: as above.
          if (state_.compare_exchange_weak(s, n, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
            return;  // node unused; its future dies pending
          }
          continue;
        }
        std::uint32_t n = s | kWaiters;  // INV-M1: set before linking
        if (woken) {
          n &= ~kWoken;  // INV-M2: we are no longer in flight
        }
        if ((s & kLocked) != 0 && now_ns() - since > kStarvationThresholdNs) {
          n |= kStarving;  // INV-M3: only while locked
        }
        // relaxed: the list itself is published by lock_; this CAS only has
        // to be ordered against the unlockers' CAS on the same word (INV-M1).
        if (state_.compare_exchange_weak(s, n, std::memory_order_relaxed,
                                         std::memory_order_relaxed)) {
          break;
        }
      }
      if (woken) {
        waiters_.push_front(&node);  // a woken waiter keeps its place (Go: LIFO)
      } else {
        waiters_.push_back(&node);
      }
      woken = false;
    }
    try {
      node.fut.get();
    } catch (...) {
      bool granted;
      {
        SpinGuard g(lock_);
        granted = revoke(waiters_, node);
        if (!granted && waiters_.empty()) {
          // INV-M1 (and INV-M3 stays true: clearing S only weakens it).
          state_.fetch_and(~(kWaiters | kStarving), std::memory_order_relaxed);
        }
      }
      if (granted) {
        // INV-M5: node.handoff was written under lock_, read under lock_ in
        // revoke() (or after it, ordered by the lock).
        if (node.handoff) {
          unlock();
        } else {
          pass_woken();
        }
      }
      throw;
    }
    // get() returned: granted. The future's publish/get ordered the
    // granter's write of node.handoff before this read.
    if (node.handoff) {
      return;  // INV-M4: the unlocker kept kLocked set for us
    }
    woken = true;
    spins = 0;
  }
}

// lock_ is held across the releasing CAS and every later access to the
// mutex, and ~Mutex() acquires it: a locker that takes the mutex the moment
// we release it may destroy it as soon as it unlocks (the last-user pattern
// std::mutex allows) — its destructor then waits until we are out. The
// wake-up itself is published after lock_ is dropped and touches only the
// waiter's future.
void Mutex::unlock_slow() {
  WakeBatch wake;
  SpinGuard g(lock_);
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & kLocked) == 0) {
      throw InvalidStateError("Mutex::unlock() of an unlocked mutex");
    }
    if ((s & kStarving) != 0) {
      hand_off_locked(wake);
      return;
    }
    if ((s & kWaiters) == 0 || (s & kWoken) != 0) {
      // Nobody to wake, or a woken waiter is already on its way (INV-M2).
      // release: publishes the critical section to the next locker.
      if (state_.compare_exchange_weak(s, s & ~kLocked, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    // release: as above; kWoken claims the right to wake one waiter.
    if (state_.compare_exchange_weak(s, (s & ~kLocked) | kWoken, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      wake_one_locked(wake);
      return;
    }
  }
}

// Normal mode: wakes the first waiter that can still be woken; it will retry
// (and may lose to a barger). Called with lock_ held, holding the kWoken
// right (INV-M2).
void Mutex::wake_one_locked(WakeBatch& wake) {
  FutureCore* core;
  WaitNode* n = pop_and_claim(waiters_, core);
  std::uint32_t clear = 0;
  if (n != nullptr) {
    static_cast<Node*>(n)->handoff = false;
    wake.add(core);
  } else {
    clear |= kWoken;  // nobody left to be in flight
  }
  if (waiters_.empty()) {
    clear |= kWaiters;  // INV-M1
  }
  if (clear != 0) {
    // relaxed: kLocked is not touched; lock_ orders the list.
    state_.fetch_and(~clear, std::memory_order_relaxed);
  }
}

// Starvation mode: ownership goes straight to the first waiter (INV-M4).
// Called with lock_ held, by the owner.
void Mutex::hand_off_locked(WakeBatch& wake) {
  FutureCore* core;
  WaitNode* wn = pop_and_claim(waiters_, core);
  if (wn == nullptr) {
    // Every waiter left: a plain unlock. release: publishes the critical
    // section to the next locker (INV-M3: S goes with L).
    state_.fetch_and(~(kLocked | kStarving | kWaiters), std::memory_order_release);
    return;
  }
  Node* n = static_cast<Node*>(wn);
  n->handoff = true;
  std::uint32_t clear = 0;
  if (waiters_.empty()) {
    clear = kWaiters | kStarving;
  } else if (now_ns() - n->since < kStarvationThresholdNs) {
    clear = kStarving;  // Go: the queue is moving again, back to normal mode
  }
  if (clear != 0) {
    // relaxed: kLocked stays set; the new owner synchronizes through its
    // future (INV-M4).
    state_.fetch_and(~clear, std::memory_order_relaxed);
  }
  wake.add(core);
}

// A woken waiter leaves without retrying (INV-M5): give the wake-up to the
// next waiter if the mutex is free, else just drop kWoken. (The caller is
// still inside lock(), so the mutex is alive.)
void Mutex::pass_woken() {
  WakeBatch wake;
  SpinGuard g(lock_);
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & (kLocked | kStarving)) == 0 && (s & kWaiters) != 0) {
      wake_one_locked(wake);  // keep kWoken, now on the next waiter's behalf
      return;
    }
    // relaxed: only drops our right to wake (INV-M2); no data is published.
    if (state_.compare_exchange_weak(s, s & ~kWoken, std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------

void Event::set() {
  WakeBatch wake;
  SpinGuard g(lock_);
  if (flag_.load(std::memory_order_relaxed)) {
    return;
  }
  // release: pairs with the acquire in is_set() (waiters that never block).
  flag_.store(true, std::memory_order_release);
  FutureCore* core;
  while (pop_and_claim(waiters_, core) != nullptr) {
    wake.add(core);
  }
}

void Event::clear() noexcept {
  SpinGuard g(lock_);
  flag_.store(false, std::memory_order_relaxed);
}

void Event::wait() {
  if (is_set()) {
    return;
  }
  WaitNode node;
  {
    SpinGuard g(lock_);
    if (flag_.load(std::memory_order_relaxed)) {
      return;  // lock_ orders us after set()
    }
    waiters_.push_back(&node);
  }
  try {
    node.fut.get();
  } catch (...) {
    SpinGuard g(lock_);
    (void)revoke(waiters_, node);  // granted or not, nothing to pass on
    throw;
  }
}

bool Event::wait_for(Duration timeout) {
  if (is_set()) {
    return true;
  }
  WaitNode node;
  {
    SpinGuard g(lock_);
    if (flag_.load(std::memory_order_relaxed)) {
      return true;
    }
    waiters_.push_back(&node);
  }
  bool done;
  try {
    done = node.fut.wait_for(timeout);
  } catch (...) {
    SpinGuard g(lock_);
    (void)revoke(waiters_, node);
    throw;
  }
  if (done) {
    return true;
  }
  SpinGuard g(lock_);
  return revoke(waiters_, node);  // set() may have claimed us at the deadline
}

// ---------------------------------------------------------------------------
// Condition
// ---------------------------------------------------------------------------

void Condition::wait() {
  if (!mu_->locked()) {
    throw InvalidStateError("Condition::wait() on an un-acquired lock");
  }
  WaitNode node;
  {
    SpinGuard g(lock_);
    waiters_.push_back(&node);  // before unlock(): no notify can be missed
  }
  try {
    mu_->unlock();
  } catch (...) {
    // Someone else unlocked it meanwhile (misuse): leave no node behind,
    // and pass on a notification that already picked us.
    bool granted;
    {
      SpinGuard g(lock_);
      granted = revoke(waiters_, node);
    }
    if (granted) {
      notify_unchecked(1);
    }
    throw;
  }
  std::exception_ptr err;
  bool notified = true;
  try {
    node.fut.get();
  } catch (...) {
    SpinGuard g(lock_);
    notified = revoke(waiters_, node);
    err = std::current_exception();
  }
  // Re-acquire before returning or throwing, whatever happens (asyncio):
  // a cancellation, or an allocation that failed while queueing for the
  // lock, is kept and the lock tried again, so the caller always holds it.
  // The most recent error wins, as in asyncio.
  for (;;) {
    try {
      mu_->lock();
      break;
    } catch (...) {
      err = std::current_exception();
    }
  }
  if (err) {
    if (notified) {
      notify_unchecked(1);  // asyncio 3.13: do not swallow the notification
    }
    std::rethrow_exception(err);
  }
}

void Condition::notify(std::size_t n) {
  if (!mu_->locked()) {
    throw InvalidStateError("Condition::notify() on an un-acquired lock");
  }
  notify_unchecked(n);
}

void Condition::notify_all() { notify(static_cast<std::size_t>(-1)); }

void Condition::notify_unchecked(std::size_t n) {
  WakeBatch wake;
  SpinGuard g(lock_);
  FutureCore* core;
  for (std::size_t i = 0; i < n && pop_and_claim(waiters_, core) != nullptr; ++i) {
    wake.add(core);
  }
}

// ---------------------------------------------------------------------------
// Semaphore, BoundedSemaphore
// ---------------------------------------------------------------------------

Semaphore::Semaphore(std::int64_t value) : Semaphore(value, -1) {}

Semaphore::Semaphore(std::int64_t value, std::int64_t bound) : value_(value), bound_(bound) {
  if (value < 0) {
    throw std::invalid_argument("Semaphore initial value must be >= 0");
  }
}

BoundedSemaphore::BoundedSemaphore(std::int64_t value) : Semaphore(value, value) {}

bool Semaphore::try_acquire() noexcept {
  SpinGuard g(lock_);
  if (value_ > 0 && waiters_.empty()) {
    --value_;
    return true;
  }
  return false;
}

void Semaphore::acquire() {
  if (try_acquire()) {
    return;
  }
  WaitNode node;
  {
    SpinGuard g(lock_);
    if (value_ > 0 && waiters_.empty()) {
      --value_;
      return;
    }
    waiters_.push_back(&node);
  }
  try {
    node.fut.get();
  } catch (...) {
    WakeBatch wake;
    SpinGuard g(lock_);
    if (revoke(waiters_, node)) {
      give_locked(wake);  // INV-L3: the permit we were handed goes on
    }
    throw;
  }
}

void Semaphore::release() {
  WakeBatch wake;
  SpinGuard g(lock_);
  if (bound_ >= 0 && value_ >= bound_) {
    throw std::invalid_argument("BoundedSemaphore released too many times");
  }
  give_locked(wake);
}

void Semaphore::give_locked(WakeBatch& wake) noexcept {
  FutureCore* core;
  if (pop_and_claim(waiters_, core) != nullptr) {
    wake.add(core);  // direct grant: the permit never shows in value_
  } else {
    ++value_;
  }
}

bool Semaphore::locked() const noexcept {
  SpinGuard g(lock_);
  return value_ == 0 || !waiters_.empty();
}

std::int64_t Semaphore::value() const noexcept {
  SpinGuard g(lock_);
  return value_;
}

// ---------------------------------------------------------------------------
// Barrier (asyncio.Barrier's state machine, on a Condition)
// ---------------------------------------------------------------------------

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) {
    throw std::invalid_argument("Barrier parties must be >= 1");
  }
}

std::size_t Barrier::n_waiting() const noexcept {
  return state() == State::kFilling ? count_.load(std::memory_order_relaxed) : 0;
}

std::size_t Barrier::wait() {
  std::unique_lock<Condition> lk(cond_);
  // Block while the previous round drains or resets.
  cond_.wait([this] { return state() != State::kDraining && state() != State::kResetting; });
  if (state() == State::kBroken) {
    throw BrokenBarrierError();
  }
  const std::size_t index = count_.load(std::memory_order_relaxed);
  count_.store(index + 1, std::memory_order_relaxed);
  struct Exit {
    Barrier* b;
    ~Exit() {
      b->count_.store(b->count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
      b->exit_locked();
    }
  } exit{this};  // runs with the mutex held (Condition::wait re-acquires)
  if (index + 1 == parties_) {
    state_.store(State::kDraining, std::memory_order_relaxed);
    cond_.notify_all();
  } else {
    cond_.wait([this] { return state() != State::kFilling; });
    if (state() == State::kBroken || state() == State::kResetting) {
      throw BrokenBarrierError();
    }
  }
  return index;
}

void Barrier::exit_locked() {
  if (count_.load(std::memory_order_relaxed) == 0) {
    if (state() == State::kResetting || state() == State::kDraining) {
      state_.store(State::kFilling, std::memory_order_relaxed);
    }
    cond_.notify_all();
  }
}

void Barrier::reset() {
  std::lock_guard<Condition> lk(cond_);
  if (count_.load(std::memory_order_relaxed) > 0) {
    if (state() != State::kResetting) {
      state_.store(State::kResetting, std::memory_order_relaxed);
    }
  } else {
    state_.store(State::kFilling, std::memory_order_relaxed);
  }
  cond_.notify_all();
}

void Barrier::abort() {
  std::lock_guard<Condition> lk(cond_);
  state_.store(State::kBroken, std::memory_order_relaxed);
  cond_.notify_all();
}

}  // namespace spindle
