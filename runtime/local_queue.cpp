// A worker's local queue (local_queue.hpp has the protocol).
#include "local_queue.hpp"

#include "debug.hpp"
#include "future_access.hpp"
#include "scheduler.hpp"
#include "task_state.hpp"
#include "worker.hpp"

namespace spindle::detail {
namespace {

// The queue_slot encoding (local_queue.hpp, Layout).
constexpr std::uint64_t encode_ring_slot(unsigned worker, std::uint32_t index) {
  return (static_cast<std::uint64_t>(worker + 1) << 32) | index;
}
constexpr std::uint64_t encode_overflow_slot(unsigned worker) {
  return LocalQueue::kInOverflow | (static_cast<std::uint64_t>(worker + 1) << 32);
}
// The encoding, as try_claim() decodes it ((slot >> 32) & 0x7fffffff):
// the largest worker index and ring index come back intact, and bit 63
// is set for the overflow list only.
static_assert(LocalQueue::kInOverflow == std::uint64_t{1} << 63, "bit 63 marks the overflow list");
static_assert(LocalQueue::slot_worker(encode_ring_slot(Scheduler::kMaxWorkers - 1, 0xffffffffu)) ==
                      Scheduler::kMaxWorkers &&
                  static_cast<std::uint32_t>(encode_ring_slot(Scheduler::kMaxWorkers - 1,
                                                              0xffffffffu)) == 0xffffffffu &&
                  (encode_ring_slot(Scheduler::kMaxWorkers - 1, 0xffffffffu) &
                   LocalQueue::kInOverflow) == 0,
              "ring slot: worker + 1 in bits 32..62, ring index in 0..31, bit 63 clear");
static_assert(LocalQueue::slot_worker(encode_overflow_slot(Scheduler::kMaxWorkers - 1)) ==
                      Scheduler::kMaxWorkers &&
                  (encode_overflow_slot(Scheduler::kMaxWorkers - 1) & LocalQueue::kInOverflow) != 0,
              "overflow slot: worker + 1 in bits 32..62, bit 63 set");

}  // namespace

std::uint64_t LocalQueue::ring_slot(std::uint32_t index) const noexcept {
  return encode_ring_slot(index_, index);
}

std::uint64_t LocalQueue::overflow_slot() const noexcept { return encode_overflow_slot(index_); }

// ---------------------------------------------------------------------------
// Owner
// ---------------------------------------------------------------------------

bool LocalQueue::try_ring_push(TaskCore* t) {
  // Only a task nobody has started can be claimed (to run inline). We own
  // `t` here, so a relaxed look at its flags is current.
  const bool claimable = !(FutureAccess::word(t).load(std::memory_order_relaxed) & kStarted);
  std::uint32_t index = ring_.tail_index();
  if (claimable) {
    // INV-LQ3: published before the entry so that a claimer that finds the
    // entry also finds where it is; a stale slot only makes a claim fail.
    // relaxed: push_back's release store of the entry publishes it.
    TaskAccess::queue_slot(t).store(ring_slot(index), std::memory_order_relaxed);
  }
  std::uint32_t got;
  if (!ring_.push_back(t, claimable, &got)) {
    return false;
  }
  SPINDLE_ASSERT(got == index, "run queue index moved under its owner");
  return true;
}

void LocalQueue::push(TaskCore* t) {
  // INV-LQ2: FIFO across ring and overflow: while the overflow holds
  // anything, new work goes behind it.
  if (overflow_.len() != 0 || !try_ring_push(t)) {
    push_overflow(t);
  }
}

void LocalQueue::push_overflow(TaskCore* t) {
  {
    SpinGuard g(overflow_.lock());
    overflow_.push_back(t);
    // INV-LQ3: relaxed, under the lock that the claim's re-read takes.
    TaskAccess::queue_slot(t).store(overflow_slot(), std::memory_order_relaxed);
  }
  // relaxed: single writer (the owner), as WorkerCounters::bump.
  overflowed_.store(overflowed_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void LocalQueue::push_lifo(TaskCore* t) {
  // acq_rel: the monitor may take the slot's task (rescue_lifo); the
  // exchange gives the task to exactly one of us (INV-LQ1).
  TaskCore* prev = lifo_.exchange(t, std::memory_order_acq_rel);
  if (prev != nullptr) {
    push(prev);
  }
}

TaskCore* LocalQueue::pop() {
  if (TaskCore* t = ring_.pop_front()) {
    return t;
  }
  if (overflow_.len() == 0) {
    return nullptr;
  }
  return refill_from_overflow();
}

TaskCore* LocalQueue::refill_from_overflow() {
  {
    SpinGuard g(overflow_.lock());
    std::uint32_t moved = 0;
    // INV-LQ2: from the head, at most half a ring.
    while (moved < kRingCapacity / 2) {
      // Unlink first: once in the ring, the task belongs to whoever takes it
      // (a thief may move it into its own overflow list, a claimer may run
      // and free it), so its links must not be touched after the push.
      TaskCore* t = overflow_.pop_front();
      if (t == nullptr) {
        break;
      }
      // The ring is empty, but a stealer may still be copying out of it and
      // hold up to half its slots: stop when it is full. (Never fall back to
      // push_overflow here: we hold the overflow lock, INV-LQ4.)
      if (!try_ring_push(t)) {
        overflow_.push_front(t);  // still the head: relink
        // INV-LQ3: relaxed, under the lock.
        TaskAccess::queue_slot(t).store(overflow_slot(), std::memory_order_relaxed);
        break;
      }
      ++moved;
    }
    overflow_.sub_len(moved);
  }
  return ring_.pop_front();
}

// ---------------------------------------------------------------------------
// Stealing (victim side runs on the thief's thread)
// ---------------------------------------------------------------------------

std::uint32_t LocalQueue::steal_into(LocalQueue& thief) {
  std::uint32_t moved =
      ring_.steal_into([&](TaskCore* t, bool) { thief.push(t); }, kRingCapacity / 2);
  if (moved != 0 || overflow_.len() == 0) {
    return moved;
  }
  // The ring is empty but the owner (busy in a long task) has overflow: take
  // half of it. Collected first, pushed after unlocking, so two workers
  // stealing from each other never hold both overflow locks (INV-LQ4).
  TaskCore* batch[kRingCapacity / 2];
  std::uint32_t n = 0;
  {
    SpinGuard g(overflow_.lock());
    std::size_t len = overflow_.len();
    std::size_t want = len - len / 2;
    while (n < want && n < kRingCapacity / 2) {
      TaskCore* t = overflow_.pop_front();
      if (t == nullptr) {
        break;
      }
      // INV-LQ3: relaxed, under the lock.
      TaskAccess::queue_slot(t).store(0, std::memory_order_relaxed);
      batch[n++] = t;
    }
    overflow_.sub_len(n);
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    thief.push(batch[i]);
  }
  return n;
}

// ---------------------------------------------------------------------------
// Claiming a queued task to run it inline (any thread)
// ---------------------------------------------------------------------------

bool LocalQueue::try_claim(TaskCore* t) {
  std::uint64_t slot = slot_of(t);
  unsigned w = slot_worker(slot);
  Scheduler* sched = TaskAccess::sched(t);
  if (w == 0 || sched == nullptr || w > sched->num_workers()) {
    return false;  // in the injection queue, or nowhere we can reach
  }
  Worker& owner = sched->worker(w - 1);
  LocalQueue& q = owner.local_queue();
  if (!q.claim(t, slot)) {
    return false;
  }
  if (!(slot & kInOverflow) && Worker::current() == &owner) {
    q.reclaim_tail_holes();
  }
  return true;
}

bool LocalQueue::claim(TaskCore* t, std::uint64_t slot) {
  SPINDLE_ASSERT(slot_worker(slot) == index_ + 1, "claim: the slot names another queue");
  if (slot & kInOverflow) {
    SpinGuard g(overflow_.lock());
    // INV-LQ3: the re-read decides, with the started flag: the caller's
    // "not started" was read before the lock and may be stale, and a
    // started task keeps the overflow slot it was last queued with. Under
    // the lock it is not: a task queued here after it started was queued
    // under this lock, after its start. relaxed: under the lock; the
    // started flag's load is acquire (task_state.hpp).
    if (TaskAccess::queue_slot(t).load(std::memory_order_relaxed) != slot || task_started(t)) {
      return false;  // moved on, or ran, while we took the lock
    }
    overflow_.remove(t);
    TaskAccess::queue_slot(t).store(0, std::memory_order_relaxed);  // INV-LQ3, under the lock
    return true;
  }
  return ring_.try_claim(static_cast<std::uint32_t>(slot), t);
}

}  // namespace spindle::detail
