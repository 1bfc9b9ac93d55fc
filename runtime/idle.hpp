// Which workers are searching for work and which are parked (after tokio's
// multi_thread/idle.rs and Go's nmspinning).
//
// Roles: every worker; any thread that makes work available (notify side).
//
// Layout: state_ = num_searching:32 | num_unparked:32, one atomic word so
// both move together; sleepers_ (the parked workers' indices) under mu_.
//
// Invariants
//   INV-I1  num_unparked counts workers not in sleepers_: exactly, under
//           mu_, where it changes only together with sleepers_.
//           num_searching counts unparked workers looking for work to steal,
//           and only approximately (as tokio's idle.rs says of its own
//           counts): it rises before a worker searches (worker_to_notify()
//           counts the worker it wakes before that worker runs) and falls
//           after it stopped, so it may count a worker still asleep in its
//           futex or already running what it found. It never exceeds
//           num_unparked (a worker counted searching is counted unparked).
//           Read without mu_ (maybe_should_wake()) both may be stale by
//           the transitions in flight;
//           one load of the word gives a pair that existed at one instant.
//   INV-I2  at most half the workers (rounded up) *start* searching on
//           their own: transition_to_searching() admits one only by a CAS
//           that keeps 2 * num_searching < num_workers. A worker woken by
//           worker_to_notify() comes back counted as searching without that
//           check, so the count may briefly exceed the bound by the number
//           of notifies in flight (as tokio's idle.rs says of its own
//           bound); it falls back as those workers find work or park. A
//           spawn storm therefore does not wake everyone to fight over one
//           queue, and a notify never waits for a searcher to leave.
//   INV-I3  no lost wakeup: if work is pushed while every worker parks,
//           either the pusher sees num_searching == 0 and unparks a
//           sleeper, or the last searcher sees the work when it re-checks
//           the queues after parking itself. The pusher stores (the queue
//           push), fences, then loads state_ (should_wake(), from
//           Scheduler::notify_work()); the parker's transition_to_parked()
//           RMW on state_ is followed by a fence and the queue loads
//           (Worker::park(): any_stealable_work()). Dekker's StoreLoad on
//           both sides: either the pusher reads the word after the parker's
//           RMW, or the parker's re-check reads the queues after the push;
//           forbidden is the pusher reading the parker still counted awake
//           while the parker reads the queues empty. A pusher that wakes
//           nobody read some worker counted unparked, and that worker can
//           sleep only through transition_to_parked(), later in state_'s
//           modification order, hence after the pusher's fence: its
//           re-check sees the push. This is the one StoreLoad here; the
//           other RMWs on state_ need only be RMWs (one modification order).
//
// A worker woken by notify() comes back *searching* (the notifier counted
// it), so a second notify does not wake a second worker for the same task;
// when a searcher finds work and it was the last searcher, it wakes another
// one to keep the ramp going (Go's "spinning M" handoff).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "os_mutex.hpp"

namespace spindle::detail {

class Idle {
 public:
  explicit Idle(unsigned num_workers);

  // Called after making work available. Returns the index of a parked
  // worker that the caller must unpark, or -1.
  int worker_to_notify();
  // A worker runs out of local work: may it search (steal)? INV-I2.
  bool transition_to_searching();
  // A searching worker found work or gave up; true if it was the last.
  bool transition_from_searching();
  // A worker parks; true if it was the last searcher (it must re-check all
  // queues before sleeping, INV-I3).
  bool transition_to_parked(unsigned worker, bool is_searching);
  // Removes `worker` from the sleepers if it is there (timeouts, spurious
  // wakeups, work found during the re-check). True if it was there.
  bool unpark_worker_by_id(unsigned worker);
  // A relaxed look: might a worker be parked while nobody searches? False
  // positives and negatives are both possible; see notify_work_local().
  bool maybe_should_wake() const noexcept {
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    return static_cast<unsigned>(s >> 32) == 0 && static_cast<unsigned>(s) < num_workers_;
  }

 private:
  static constexpr std::uint64_t kUnparkOne = 1;
  static constexpr std::uint64_t kSearchOne = std::uint64_t{1} << 32;
  // The layout: num_unparked in bits 0..31, num_searching in 32..63. Each
  // is at most num_workers_, an unsigned, so neither half carries into the
  // other and the casts that read them lose nothing.
  static_assert(kUnparkOne == 1 && kSearchOne == std::uint64_t{1} << 32,
                "num_unparked is the low half of state_, num_searching the high half");
  static_assert(sizeof(unsigned) <= sizeof(std::uint32_t),
                "a worker count fits one 32-bit half of state_");
  bool should_wake() const;

  const unsigned num_workers_;
  std::atomic<std::uint64_t> state_;
  OsMutex mu_;
  std::vector<unsigned> sleepers_ SPINDLE_GUARDED_BY(mu_);
};

}  // namespace spindle::detail
