// A worker's local run queue: a bounded FIFO ring that its owner pushes to
// and pops from, other workers steal half of, and any thread may *claim* one
// known entry out of (to run a not-yet-started task inline in the task that
// awaits it).
//
// Roles
//   owner    push_back(), pop_front(), reclaim_tail_holes(): one thread at a
//            time (the worker), never concurrently with itself.
//   stealer  steal_into(): any other worker, concurrently with the owner and
//            with other stealers.
//   claimer  try_claim(): any thread, concurrently with everything.
//
// Layout (after tokio's multi_thread/queue.rs)
//   head_  u64 = steal:32 | real:32. `real` is the next index to hand out;
//          `steal` trails it while a stealer is still copying [steal, real).
//   tail_  u32, written only by the owner: the next index to fill.
//   slots_ kCapacity atomic words; index i lives in slots_[i % kCapacity].
//          A word is an entry pointer with bit 0 set if the entry is
//          *claimable* (a task no worker has started); 0 is a hole.
// Indices are free-running u32s; differences are taken mod 2^32.
//
// Invariants
//   INV-Q1  steal <= real <= tail (mod 2^32) and tail - steal <= kCapacity:
//           the owner never overwrites a slot a stealer may still read.
//   INV-Q2  every pushed entry is taken exactly once. Consumers (owner pop,
//           stealers) own an index through their CAS on head. A claimable
//           entry may also be taken by a claimer, so consumers take those
//           with an exchange and claimers with a compare_exchange, both
//           leaving 0 behind: one of them wins, and a consumer that finds 0
//           skips the slot (a *hole*). Claimers never touch an entry that is
//           not claimable, so consumers read those with a plain load — the
//           common case of a woken or yielding task costs no slot RMW.
//   INV-Q3  a slot of index i is written by push only while i is in
//           [tail, steal + kCapacity), i.e. after every consumer of the
//           previous lap has finished with it (INV-Q1).
//   INV-Q4  reclaim_tail_holes() lowers tail only over holes that no stealer
//           has claimed and none can claim, not even one still holding a
//           tail it read before the lowering: the proof is at the function.
//
// Transitions
//   push_back     owner: slot.store(release); tail.store(release)
//   pop_front     owner: head CAS real+1 (and steal+1 when equal), acq_rel;
//                 then slot.load(acquire), exchange(0) if claimable
//   steal_into    stealer: stealers.fetch_add(seq_cst); head.load(seq_cst),
//                 tail.load(seq_cst), CAS real+n keeping steal (acq_rel);
//                 stealers.fetch_sub(release); take the n slots as pop
//                 does; CAS steal=real (acq_rel)
//   try_claim     any: slot.compare_exchange(task|1 -> 0, acq_rel)
//   reclaim       owner: tail.exchange(low, seq_cst) over all trailing holes;
//                 stealers.load(seq_cst); head.load(seq_cst); tail.store(t)
//                 again unless both allow
//
// Why a claimable ring. A task that awaits a child nobody has started can run
// the child's body on its own stack (as oneTBB and Cilk do) — no fiber, no
// switch. The child's queue entry must not linger: a stale entry would pin
// the task's memory until some worker popped it, and a fork-join tree would
// fill the ring with them. Claiming empties the slot; the owner trims holes
// at the tail at once, so a depth-first fork-join keeps the ring short.
//
// Rejected designs
//   - Growable ring: growth copies entries, and a claim could then take the
//     old copy while the new one is still queued.
//   - Chase-Lev deque (owner pops LIFO): fork-join friendly, but a single
//     worker with thousands of runnable tasks must serve them roughly FIFO.
//   - Stale entries with a reference each (no claim): unbounded retention.
//
// Papers: Chase & Lev, "Dynamic circular work-stealing deque" (SPAA 2005);
// Lê, Pop, Cohen, Zappa Nardelli, "Correct and efficient work-stealing for
// weak memory models" (PPoPP 2013) — the seq_cst StoreLoad argument below is
// theirs, adapted to a batch steal.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "debug.hpp"

namespace spindle::detail {

template <class T, std::uint32_t kCapacity = 256>
class RunQueue {
  static_assert((kCapacity & (kCapacity - 1)) == 0, "capacity must be a power of two");
  static_assert(kCapacity <= (1u << 30), "indices must not alias across a lap");
  static constexpr std::uint32_t kMask = kCapacity - 1;

 public:
  static constexpr std::uint32_t capacity() noexcept { return kCapacity; }

  RunQueue() {
    for (auto& s : slots_) {
      s.store(0, std::memory_order_relaxed);
    }
  }
  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Owner. Appends `v`; false when full (the caller overflows elsewhere).
  // On success *index receives the entry's index for try_claim(), which
  // can take the entry only if it was pushed `claimable`.
  bool push_back(T* v, bool claimable, std::uint32_t* index) noexcept {
    std::uint32_t t = tail_.load(std::memory_order_relaxed);  // relaxed: we are its only writer
    // acquire: pairs with the acq_rel CAS that finished a steal; the stealer
    // has read the slots we are about to reuse (INV-Q1, INV-Q3).
    std::uint64_t h = head_.load(std::memory_order_acquire);
    if (t - steal_part(h) >= kCapacity) {
      return false;
    }
    // release: a claimer's successful CAS on this slot reads this value and
    // so synchronizes with us: what we did before the push (e.g. recording
    // where the entry sits) happens before whatever the claimer does next,
    // including completing and freeing the task.
    slots_[t & kMask].store(encode(v, claimable), std::memory_order_release);
    // release: publishes the slot to stealers that load tail with acquire
    // (or seq_cst) in steal_into().
    tail_.store(t + 1, std::memory_order_release);
    *index = t;
    return true;
  }

  // Owner. Takes the oldest entry, skipping holes; nullptr when empty.
  T* pop_front() noexcept {
    for (;;) {
      std::uint64_t h = head_.load(std::memory_order_acquire);
      std::uint32_t real = real_part(h);
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (real == t) {
        return nullptr;
      }
      SPINDLE_ASSERT(static_cast<std::int32_t>(t - real) > 0,
                     "run queue: head passed tail (INV-Q1)");
      std::uint32_t steal = steal_part(h);
      std::uint64_t next = pack(steal == real ? real + 1 : steal, real + 1);
      // acq_rel: the CAS hands index `real` to us alone; it orders against
      // stealers' CAS on the same word.
      if (!head_.compare_exchange_weak(h, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        continue;
      }
      // INV-Q2: the index is ours; take the entry (a hole if claimed).
      if (T* v = take(real)) {
        return v;
      }
    }
  }

  // Stealer. Moves about half of this queue's entries to the caller via
  // `push(v, claimable)`, a callable that must not fail. Returns the number
  // of entries moved (holes are not counted).
  template <class Push>
  std::uint32_t steal_into(Push&& push, std::uint32_t max_batch) noexcept {
    std::uint64_t h;
    std::uint32_t real, n;
    // A read-only look first: an idle worker probes victims with empty
    // rings over and over, and announcing itself below writes the line the
    // owner's head lives in. Only a hint; the checks after announcing
    // decide. Relaxed: nothing is read on the strength of these values.
    h = head_.load(std::memory_order_relaxed);
    if (steal_part(h) != real_part(h) || tail_.load(std::memory_order_relaxed) == real_part(h)) {
      return 0;
    }
    // INV-Q4: announced before our first read of tail, withdrawn once our
    // claim is made or abandoned. seq_cst: the StoreLoad pairing with
    // reclaim_tail_holes() (its tail exchange, then its stealers_ load),
    // which backs off while it sees us. Forbidden: it reads no stealer
    // while our tail load below returns the tail from before its lowering.
    stealers_.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
      // seq_cst head and tail loads: the same pairing (INV-Q4).
      h = head_.load(std::memory_order_seq_cst);
      if (steal_part(h) != real_part(h)) {
        leave_steal();
        return 0;  // another stealer is copying; try elsewhere
      }
      real = real_part(h);
      std::uint32_t t = tail_.load(std::memory_order_seq_cst);
      std::uint32_t avail = t - real;
      if (avail == 0 || avail > kCapacity) {
        leave_steal();
        return 0;  // empty, or a torn view while the owner moved on: give up
      }
      n = avail - avail / 2;  // ceil(avail / 2)
      if (n > max_batch) {
        n = max_batch;
      }
      // acq_rel: claims [real, real+n) for us; `steal` stays at `real`, so
      // the owner will not reuse those slots until we release them below.
      if (head_.compare_exchange_strong(h, pack(real, real + n), std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
        break;
      }
    }
    leave_steal();
    std::uint32_t moved = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      // The slots were published by the owner's release of tail, which our
      // seq_cst tail load synchronized with.
      bool claimable = false;
      if (T* v = take(real + i, &claimable)) {
        push(v, claimable);
        ++moved;
      }
    }
    // Finish the steal: steal catches up with real (which the owner may have
    // advanced meanwhile by popping).
    std::uint64_t cur = head_.load(std::memory_order_acquire);
    for (;;) {
      SPINDLE_ASSERT(steal_part(cur) == real, "run queue: steal cursor moved under a stealer");
      std::uint32_t r = real_part(cur);
      // release: our reads of the slots happen before the owner's reuse of
      // them (its acquire load of head in push_back).
      if (head_.compare_exchange_weak(cur, pack(r, r), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return moved;
      }
    }
  }

  // Any thread. Takes `v` out of the slot of `index` if it is still there.
  // Success means no consumer will ever see it (INV-Q2).
  bool try_claim(std::uint32_t index, T* v) noexcept {
    std::uintptr_t expected = encode(v, true);
    // acq_rel: winning makes us the task's only taker; acquire also makes
    // the pusher's writes visible (its release store of the slot).
    return slots_[index & kMask].compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                                         std::memory_order_relaxed);
  }

  // Owner. Lowers tail over trailing holes so a depth-first fork-join
  // reuses the same few slots. All the trailing holes go in one step: a
  // parent that claimed its ten children in order leaves ten holes at the
  // tail, and one seq_cst RMW instead of ten is measurable in skynet.
  //
  // INV-Q4 proof sketch. A stealer's claim [real, real + ceil((t_s -
  // real)/2)) is computed from the tail t_s it read, and commits later by a
  // CAS that succeeds only if head has not moved since it read head — but
  // tail may have. If we lowered tail in between, that claim could pass the
  // new tail and leave head beyond it (INV-Q1 broken; pop_front would then
  // walk 2^32 holes before it saw the ring empty). So stealers announce
  // themselves in stealers_ before reading head and tail, and withdraw
  // after their CAS. We publish the lowered tail with a seq_cst RMW and
  // then read stealers_ with seq_cst:
  //   - if we read 0, every stealer not yet withdrawn announced itself
  //     after our load in the single order S, so its tail read follows our
  //     RMW and returns the lowered tail or later: its claim fits. A
  //     stealer that withdrew did so after its CAS (release, read by our
  //     seq_cst load): our head read below sees its claim.
  //   - if we read non-zero, some stealer may hold an older tail: put tail
  //     back and keep the holes (pop_front skips them later).
  // With no stealer in the way, the holes [low, t) are ours to drop when
  // head is still below low (no consumer owns any of them); if head has
  // reached low, a consumer may own one: tail goes back.
  // We never lower tail onto head itself: a lone hole at the head is
  // consumed like a pop instead (a CAS on head, so a racing stealer and we
  // cannot both take it).
  void reclaim_tail_holes() noexcept {
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    const std::uint32_t real = real_part(head_.load(std::memory_order_acquire));
    if (real == t || slots_[(t - 1) & kMask].load(std::memory_order_relaxed) != 0) {
      return;  // empty, or the last entry is not a hole
    }
    // [low, t) are holes, low > real. Slots are only emptied, never
    // filled, by others: a 0 seen here stays a hole.
    std::uint32_t low = t;
    while (static_cast<std::int32_t>((low - 1) - real) > 0 &&
           slots_[(low - 1) & kMask].load(std::memory_order_relaxed) == 0) {
      --low;
    }
    if (low != t) {
      // seq_cst RMW, then seq_cst loads: our side of INV-Q4's StoreLoad
      // pair with steal_into()'s stealers_ increment, then its head and
      // tail loads (the proof above). Forbidden: we read no stealer while
      // a stealer reads the tail from before this lowering.
      tail_.exchange(low, std::memory_order_seq_cst);
      bool stealer_in_flight = stealers_.load(std::memory_order_seq_cst) != 0;
      std::uint32_t now_real = real_part(head_.load(std::memory_order_seq_cst));
      if (stealer_in_flight || static_cast<std::int32_t>(low - now_real) <= 0) {
        tail_.store(t, std::memory_order_release);  // INV-Q4: keep the holes
        return;
      }
      t = low;
    }
    std::uint64_t h = head_.load(std::memory_order_acquire);
    if (real_part(h) == t - 1 && steal_part(h) == t - 1 &&
        slots_[(t - 1) & kMask].load(std::memory_order_relaxed) == 0) {
      // acq_rel: same role as pop_front's CAS.
      head_.compare_exchange_strong(h, pack(t, t), std::memory_order_acq_rel,
                                    std::memory_order_relaxed);
    }
  }

  // Approximate length (holes included). Any thread.
  std::uint32_t len() const noexcept {
    std::uint64_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_acquire);
    std::uint32_t n = t - real_part(h);
    return n > kCapacity ? 0 : n;
  }
  bool empty() const noexcept { return len() == 0; }
  // Owner. INV-Q1's first half as the owner sees it: head has not passed
  // tail. A stealer that claimed indices beyond tail would break it.
  bool head_within_tail() const noexcept {
    std::uint32_t real = real_part(head_.load(std::memory_order_acquire));
    return static_cast<std::int32_t>(tail_.load(std::memory_order_relaxed) - real) >= 0;
  }
  // Owner-side view of the index of the last entry (for the hole check).
  std::uint32_t tail_index() const noexcept { return tail_.load(std::memory_order_relaxed); }

 private:
  static std::uintptr_t encode(T* v, bool claimable) noexcept {
    return reinterpret_cast<std::uintptr_t>(v) | (claimable ? 1u : 0u);
  }
  // Takes the entry at `index`, which the caller owns through its CAS on
  // head (INV-Q2). nullptr for a hole.
  T* take(std::uint32_t index, bool* claimable = nullptr) noexcept {
    std::atomic<std::uintptr_t>& slot = slots_[index & kMask];
    // acquire: pairs with the pusher's release store of the slot.
    std::uintptr_t w = slot.load(std::memory_order_acquire);
    if (w & 1) {
      // Claimable: a claimer may race us for it; exactly one wins.
      w = slot.exchange(0, std::memory_order_acquire);
    }
    if (claimable != nullptr) {
      *claimable = (w & 1) != 0;
    }
    return reinterpret_cast<T*>(w & ~std::uintptr_t{1});
  }
  void leave_steal() noexcept {
    // release: an owner that reads our withdrawal sees our claim (INV-Q4).
    stealers_.fetch_sub(1, std::memory_order_release);
  }
  static std::uint32_t real_part(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h); }
  static std::uint32_t steal_part(std::uint64_t h) noexcept {
    return static_cast<std::uint32_t>(h >> 32);
  }
  static std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (static_cast<std::uint64_t>(steal) << 32) | real;
  }

  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::uint32_t> stealers_{0};  // stealers between announce and claim (INV-Q4)
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  alignas(64) std::atomic<std::uintptr_t> slots_[kCapacity];
  static_assert(alignof(T) >= 2, "entries need a free low bit for the claimable tag");
  // The layout above: head_ is two indices of tail_'s type, steal in the
  // high half and real in the low (pack() and steal_part() shift by 32);
  // a slot word holds an entry pointer, bit 0 the tag.
  static_assert(sizeof(typename decltype(tail_)::value_type) == 4 &&
                    sizeof(typename decltype(head_)::value_type) ==
                        2 * sizeof(typename decltype(tail_)::value_type),
                "head_ = steal:32 | real:32, each a u32 index like tail_");
  static_assert(sizeof(std::uintptr_t) >= sizeof(T*), "a slot word holds an entry pointer");
};

}  // namespace spindle::detail
