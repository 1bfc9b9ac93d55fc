// A fiber: a context plus the stack it runs on. The Fiber record itself sits
// at the top of its stack, so a suspended task whose frames fit in one page
// costs exactly one resident page for both.
//
// A fiber never returns: its entry (Worker::fiber_main) loops, running one
// task after another. A fiber whose task finished goes back to a pool still
// suspended inside that loop, so reusing it costs one switch and no setup.
//
// Ownership: a fiber belongs to the worker running it, to the task suspended
// on it (`root`), or to a pool. Fields are touched only by the current owner;
// ownership moves through the run queues and pool locks, which order it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "context.hpp"
#include "os_mutex.hpp"
#include "stack.hpp"

namespace spindle::detail {

class TaskCore;

struct Fiber {
  Context ctx;
  StackRegion stack;
  TaskCore* root = nullptr;     // the task that started on this fiber
  TaskCore* current = nullptr;  // innermost task: root, or a child run inline
  TaskCore* start = nullptr;    // set by whoever hands the fiber a new task
  Fiber* next_free = nullptr;

  // Overflow check for stacks without a guard page (stack.hpp, slot
  // layout): the canary line just below the stack is never written by a
  // task that stays within its stack. It lies on the top page of the slot
  // below, which that slot's fiber has already made resident, so the check
  // neither faults nor costs memory (writing a canary value would).
  bool canary_untouched() const noexcept {
    const auto* line = reinterpret_cast<const volatile std::uint64_t*>(stack.lo - kCanaryBytes);
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < kCanaryBytes / sizeof(std::uint64_t); ++i) {
      bits |= line[i];
    }
    return bits == 0;
  }
  std::size_t usable_size() const noexcept {
    return static_cast<std::size_t>(reinterpret_cast<const char*>(this) - stack.lo);
  }
};

// Creates a fiber on a fresh stack; `entry` runs on its first switch.
Fiber* create_fiber(StackAllocator& stacks, void (*entry)(Context*));
// Tears down a fiber that will never run again; returns its stack region
// (its memory still committed) for StackAllocator::release().
StackRegion destroy_fiber(Fiber* f);

// Spare fibers shared by a runtime's workers, behind each worker's private
// FiberCache. During a burst it keeps every fiber it is given (reuse is
// cheaper than anything else); trim(), called by a worker about to park,
// destroys all but `keep` of them and gives their stack pages back to the
// kernel in sorted, merged madvise calls. Releasing at give() time instead
// cost a TLB-shootdown IPI per batch on every core (measured: ~40% of a
// million-sleeper run).
class FiberPool {
 public:
  FiberPool(StackAllocator& stacks, std::size_t keep) : stacks_(stacks), keep_(keep) {}
  ~FiberPool();
  FiberPool(const FiberPool&) = delete;
  FiberPool& operator=(const FiberPool&) = delete;

  // Up to `max` spare fibers into `out` (a linked list via next_free).
  std::size_t take(Fiber** out, std::size_t max);
  // Takes a linked list of `n` fibers.
  void give(Fiber* list, std::size_t n);
  // Destroys spare fibers beyond `keep` and releases their stacks.
  void trim();
  bool over_keep() const noexcept { return count_hint_.load(std::memory_order_relaxed) > keep_; }
  std::size_t size();

 private:
  StackAllocator& stacks_;
  const std::size_t keep_;
  OsMutex mu_;
  Fiber* spare_ SPINDLE_GUARDED_BY(mu_) = nullptr;
  std::size_t count_ SPINDLE_GUARDED_BY(mu_) = 0;
  std::atomic<std::size_t> count_hint_{0};  // count_, readable without the lock
};

// A worker's private stack of spare fibers (no locking: owner only).
class FiberCache {
 public:
  static constexpr std::size_t kMax = 64;

  Fiber* pop(FiberPool& pool, StackAllocator& stacks, void (*entry)(Context*)) {
    if (head_ == nullptr) {
      count_ = pool.take(&head_, kMax / 2);
      if (head_ == nullptr) {
        return create_fiber(stacks, entry);
      }
    }
    Fiber* f = head_;
    head_ = f->next_free;
    f->next_free = nullptr;
    --count_;
    return f;
  }
  void push(FiberPool& pool, Fiber* f) {
    f->next_free = head_;
    head_ = f;
    if (++count_ > kMax) {
      spill(pool);
    }
  }
  void drain(FiberPool& pool) {
    if (head_ != nullptr) {
      pool.give(head_, count_);
    }
    head_ = nullptr;
    count_ = 0;
  }
  std::size_t size() const noexcept { return count_; }

 private:
  void spill(FiberPool& pool);
  Fiber* head_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace spindle::detail
