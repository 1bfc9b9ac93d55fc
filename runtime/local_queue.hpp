// A worker's local queue: the tasks that worker will run next. Three places,
// in the order the worker looks at them: the LIFO slot (one task woken by the
// running one), the ring (run_queue.hpp) and the overflow list (tasks that
// did not fit in the ring). Other workers steal from the ring and the
// overflow; any thread may *claim* a not-yet-started task out of the ring or
// the overflow to run it inline (scheduler.cpp's essay, "running a child
// inline"). The worker loop that uses it is worker.cpp.
//
// Roles
//   owner    the worker's thread: push(), push_lifo(), take_lifo(), pop();
//            never concurrently with itself.
//   stealer  steal_into(): another worker's thread, concurrently with the
//            owner and other stealers; it pushes into its own queue (it is
//            that queue's owner).
//   claimer  try_claim(): any thread, concurrently with everything.
//   rescuer  lifo_peek(), rescue_lifo(): the slow-task monitor's thread, and
//            a searching worker that found the slot's task stuck behind a
//            busy owner (Worker::take_stuck_lifo).
//   anyone   has_stealable_work(), queued(), overflow_len(): approximate.
// Per field: lifo_ is written by the owner and emptied by a rescuer's CAS;
// the ring's roles are run_queue.hpp's; the overflow list, its tasks' links
// and len_'s writes are under the overflow lock; TaskCore::queue_slot_ is
// written by the thread that queues or takes the task (INV-LQ3).
//
// Layout
//   lifo_      one TaskCore*, nullptr when empty.
//   ring_      RunQueue<TaskCore, kRingCapacity>: INV-Q1..Q4 (run_queue.hpp).
//   overflow_  OverflowList: a FIFO of TaskCore (links TaskCore::overflow_*)
//              under a spin lock, and len_, its length, for looks without
//              the lock.
//   TaskCore::queue_slot_, u64: where a not-yet-started task waits, so that
//   try_claim() can find it:
//     bit 63       in the worker's overflow list (else in its ring)
//     bits 32..62  worker index + 1 (0: not in a local queue)
//     bits 0..31   ring index
//   static_asserts in local_queue.cpp pin the encoding at the largest worker
//   and ring index.
//
// Invariants
//   INV-LQ1  A queued task is in exactly one of the three places and leaves
//            it exactly once: the LIFO slot by an exchange or CAS (exactly
//            one thread gets the previous occupant), the ring by INV-Q2, the
//            overflow list under its lock (owner refill, stealer, claimer).
//   INV-LQ2  Every overflow entry is newer than every ring entry: push()
//            appends to the overflow while its length is non-zero, and only
//            the owner, after finding the ring empty, moves entries into the
//            ring (from the overflow's head, at most half a ring, stopping
//            when the ring is full because a stealer still holds slots).
//            Stealing takes the oldest of either. Not promised: any order
//            between a stolen task and the thief's own.
//   INV-LQ3  A claimable task's queue_slot names where it waits, or is stale
//            only in ways that make a claim fail. Ring: stored before the
//            ring push (which publishes the entry); the claim is a CAS on
//            the entry itself (INV-Q2), which only the task's one entry can
//            match (INV-LQ1). Overflow: stored under the overflow lock when
//            linked, set to 0 under it when a stealer or claimer unlinks it,
//            and replaced by the ring slot under it when refill moves the
//            task into the ring; the claim re-reads it under the lock. A task
//            already started (not claimable) keeps whatever slot it had,
//            even an overflow slot after a refill moved it into the ring:
//            its ring entry carries no claim tag, and an overflow claim
//            re-checks the started flag under the lock, where it cannot be
//            stale (a task queued into the overflow after its start was
//            queued under that lock). run_inline()'s own check, before the
//            lock, is only a shortcut: it may read "not started" late.
//   INV-LQ4  Overflow locks nest with nothing: a steal collects its batch
//            under the victim's lock and pushes it after unlocking (two
//            workers stealing from each other never hold both), and refill,
//            holding the lock, pushes only into the ring, never back into
//            the overflow.
//   INV-LQ5  len_ is written only under the overflow lock and equals the
//            list's length whenever the lock is free. Read without the lock
//            it is a hint (push()'s choice, a stealer's probe, queued()),
//            and the idle protocol's re-check reads it after its seq_cst
//            fence (idle.hpp INV-I3; the pusher fences after its push), so
//            the StoreLoad pair is the fences', not this word's.
//
// Transitions
//   push         owner: ring push_back (run_queue.hpp) when len_ is 0 and the
//                ring has room; else, under the lock, link at the tail,
//                queue_slot := overflow slot (relaxed), len_ + 1 (relaxed)
//   push_lifo    owner: lifo_.exchange(t, acq_rel); the displaced task, if
//                any, is push()ed
//   take_lifo    owner: lifo_.load(relaxed) as a hint, exchange(nullptr,
//                acquire)
//   rescue_lifo  rescuer: lifo_.compare_exchange(seen -> nullptr, acq_rel)
//   pop          owner: ring pop_front; if empty and len_ != 0, refill under
//                the lock (head -> ring, up to half a ring), then pop_front
//   steal_into   stealer: ring steal_into(half); if it moved nothing and
//                len_ != 0: under the victim's lock unlink ceil(len/2) (at
//                most half a ring) from the head, queue_slot := 0, len_ - n;
//                unlock; push() each into the thief's queue
//   try_claim    any: queue_slot.load(acquire); ring: RunQueue::try_claim
//                (CAS, acq_rel), then the owner trims trailing holes; overflow:
//                under the lock, re-read the slot (relaxed), unlink,
//                queue_slot := 0, len_ - 1
//
// Why these memory orders suffice
//   - Everything about the overflow list (links, queue_slot stores and
//     re-reads, len_'s writes) happens under its lock, whose acquire and
//     release order it; hence relaxed.
//   - A queue_slot store for the ring is relaxed: the ring's release store of
//     the entry (push_back) publishes it to a claimer whose CAS reads that
//     entry, and a claimer that reads an older slot fails its CAS, or names
//     by it the task's one current entry, the right one to take (INV-LQ3).
//     try_claim's first load is acquire, more than INV-LQ3 needs.
//   - lifo_: acq_rel exchanges and CAS hand a task from one thread to the
//     next (the owner to a rescuer and back); take_lifo's acquire
//     pairs with push_lifo's release (and the rescue's).
//
// Rejected designs
//   - Overflow into the injection queue (tokio's global queue): breaks FIFO
//     service under load (scheduler.cpp's essay: a one-worker server's p99
//     past 256 runnable connections), and there the tasks could not be
//     claimed.
//   - A growable ring instead of the overflow list: growth copies entries,
//     and a claim could then take the old copy while the new one is queued
//     (run_queue.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <spindle/detail/intrusive_list.hpp>
#include <spindle/detail/spin_lock.hpp>

#include "run_queue.hpp"
#include "task_access.hpp"

namespace spindle::detail {

class TaskCore;

// A task's overflow-list links (TaskCore::overflow_prev_/overflow_next_).
struct OverflowLinks {
  static TaskCore*& prev(TaskCore* t) noexcept { return TaskAccess::overflow_prev(t); }
  static TaskCore*& next(TaskCore* t) noexcept { return TaskAccess::overflow_next(t); }
};

// The overflow list: a FIFO of tasks under a spin lock, and its length for
// looks without the lock (INV-LQ5). Every method but len() and lock() runs
// under lock().
class OverflowList {
 public:
  SpinLock& lock() const noexcept { return lock_; }
  // Any thread, without the lock: a hint (INV-LQ5).
  std::size_t len() const noexcept {
    // relaxed: a hint (INV-LQ5); writers hold the lock.
    return len_.load(std::memory_order_relaxed);
  }
  bool empty() const noexcept { return list_.empty(); }
  void push_back(TaskCore* t) noexcept {
    list_.push_back(t);
    add_len(1);
  }
  // Unlinks `t`, which is in this list.
  void remove(TaskCore* t) noexcept {
    list_.remove(t);
    sub_len(1);
  }
  // The batch paths (refill, steal) unlink and relink one task at a time
  // and settle len_ once at the end with sub_len(), as they always did.
  TaskCore* pop_front() noexcept { return list_.pop_front(); }
  void push_front(TaskCore* t) noexcept { list_.push_front(t); }
  void sub_len(std::size_t n) noexcept {
    // relaxed: written under the lock (INV-LQ5).
    len_.store(len_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }

 private:
  void add_len(std::size_t n) noexcept {
    // relaxed: read by the owner as a hint and by the idle re-check after a
    // seq_cst fence; the list itself is guarded by the lock (INV-LQ5).
    len_.store(len_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  mutable SpinLock lock_;
  IntrusiveList<TaskCore, OverflowLinks> list_;
  std::atomic<std::size_t> len_{0};
};

class LocalQueue {
 public:
  static constexpr std::uint32_t kRingCapacity = 256;

  // `index`: the owning worker's index (the queue_slot encoding names it).
  // `overflowed`: the owner's counter of pushes that went to the overflow
  // list (WorkerCounters::overflowed), bumped by the owner only.
  LocalQueue(unsigned index, std::atomic<std::uint64_t>& overflowed) noexcept
      : index_(index), overflowed_(overflowed) {}
  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;

  // --- owner ------------------------------------------------------------
  // Queues a runnable task behind the others (INV-LQ2).
  void push(TaskCore* t);
  // Puts `t` in the LIFO slot; a task it displaces goes behind the others.
  void push_lifo(TaskCore* t);
  // Empties the LIFO slot: its task, or nullptr.
  TaskCore* take_lifo() noexcept {
    if (lifo_.load(std::memory_order_relaxed) == nullptr) {
      return nullptr;  // relaxed: a hint; only the owner fills the slot
    }
    // acquire: pairs with push_lifo's exchange (and the monitor's rescue)
    // (INV-LQ1).
    return lifo_.exchange(nullptr, std::memory_order_acquire);
  }
  // The oldest task of the ring, refilled from the overflow when the ring is
  // empty (INV-LQ2); nullptr when both are empty.
  TaskCore* pop();

  // --- stealer (on the thief's thread) ----------------------------------
  // Moves about half of this queue's ring, or when the ring is empty about
  // half of its overflow, into `thief`, the caller's own queue. Returns the
  // number of tasks moved.
  std::uint32_t steal_into(LocalQueue& thief);

  // --- claimer (any thread) ---------------------------------------------
  // Takes a not-yet-started task out of whichever local queue it waits in
  // (its queue_slot says, INV-LQ3), so the caller may run it inline. False if
  // it is not there (any more), or in no queue a claimer can reach.
  static bool try_claim(TaskCore* t);
  // The part of try_claim() that runs once the slot's queue is found: `slot`
  // is the task's queue_slot as loaded (slot_of) and names this queue. After
  // a ring claim, the owner (only) trims the ring's trailing holes with
  // reclaim_tail_holes(); try_claim() does. Tests call both directly, with
  // no scheduler.
  bool claim(TaskCore* t, std::uint64_t slot);
  // Owner. RunQueue::reclaim_tail_holes() (INV-Q4).
  void reclaim_tail_holes() noexcept { ring_.reclaim_tail_holes(); }
  static std::uint64_t slot_of(TaskCore* t) noexcept {
    // acquire: more than INV-LQ3 needs (the ring CAS, or the re-read under
    // the overflow lock, decides); a stale value only fails the claim.
    return TaskAccess::queue_slot(t).load(std::memory_order_acquire);
  }
  // The worker index + 1 a slot names (0: none), and whether it names the
  // overflow list.
  static constexpr unsigned slot_worker(std::uint64_t slot) noexcept {
    return static_cast<unsigned>((slot >> 32) & 0x7fffffffu);
  }
  static constexpr std::uint64_t kInOverflow = std::uint64_t{1} << 63;

  // --- rescuers (the monitor, a searching worker) -----------------------
  // A rescuer's view of the LIFO slot, and its rescue of a task stuck
  // there behind an owner that does not come back to pick.
  TaskCore* lifo_peek() const noexcept {
    // acquire: pairs with push_lifo's release; a rescuer only compares the
    // pointer, then rescues by CAS (INV-LQ1).
    return lifo_.load(std::memory_order_acquire);
  }
  // Takes `expected` out of the LIFO slot if it is still there; true if so
  // (the caller then owns it).
  bool rescue_lifo(TaskCore* expected) noexcept {
    // acq_rel: the CAS decides against the owner picking it meanwhile;
    // exactly one of us gets the task (INV-LQ1).
    return lifo_.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel,
                                         std::memory_order_relaxed);
  }

  // --- anyone (approximate) ---------------------------------------------
  // Is there work another worker could take (ring or overflow)?
  bool has_stealable_work() const noexcept { return !ring_.empty() || overflow_.len() != 0; }
  std::size_t queued() const noexcept {
    // relaxed: a count for stats and the monitor, approximate anyway.
    return ring_.len() + overflow_.len() + (lifo_.load(std::memory_order_relaxed) != nullptr);
  }
  std::size_t overflow_len() const noexcept { return overflow_.len(); }
  std::uint32_t ring_len() const noexcept { return ring_.len(); }

 private:
  bool try_ring_push(TaskCore* t);
  void push_overflow(TaskCore* t);
  TaskCore* refill_from_overflow();
  std::uint64_t ring_slot(std::uint32_t index) const noexcept;
  std::uint64_t overflow_slot() const noexcept;

  RunQueue<TaskCore, kRingCapacity> ring_;  // its words are cache-line aligned

  // Owner-only but for a rescuer's CAS (rescue_lifo), hence atomic.
  alignas(64) std::atomic<TaskCore*> lifo_{nullptr};
  const unsigned index_;
  std::atomic<std::uint64_t>& overflowed_;

  // Any thread may take from it under the lock.
  alignas(64) OverflowList overflow_;
};

}  // namespace spindle::detail
