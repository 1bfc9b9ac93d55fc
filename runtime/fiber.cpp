#include "fiber.hpp"

#include <new>

#include "debug.hpp"

namespace spindle::detail {

Fiber* create_fiber(StackAllocator& stacks, void (*entry)(Context*)) {
  StackRegion region = stacks.allocate();
  // The record at the top of the stack, cache-line aligned; the usable stack
  // runs from region.lo up to the record.
  std::uintptr_t top = reinterpret_cast<std::uintptr_t>(region.lo + region.size);
  std::uintptr_t at = (top - sizeof(Fiber)) & ~std::uintptr_t{63};
  Fiber* f = new (reinterpret_cast<void*>(at)) Fiber();
  f->stack = region;
  // Keep 64 bytes between the record and the first frame.
  std::size_t usable = at - reinterpret_cast<std::uintptr_t>(region.lo) - 64;
  make_context(f->ctx, region.lo, usable, entry, "spindle-fiber");
  return f;
}

StackRegion destroy_fiber(Fiber* f) {
  StackRegion region = f->stack;
  destroy_context(f->ctx);
  f->~Fiber();
  return region;
}

FiberPool::~FiberPool() {
  // The StackAllocator unmaps the memory when it goes; only the fibers'
  // sanitizer state needs tearing down here.
  while (spare_ != nullptr) {
    Fiber* f = spare_;
    spare_ = f->next_free;
    destroy_fiber(f);
  }
}

std::size_t FiberPool::take(Fiber** out, std::size_t max) {
  OsLock lock(mu_);
  std::size_t n = 0;
  Fiber* head = nullptr;
  while (n < max && spare_ != nullptr) {
    Fiber* f = spare_;
    spare_ = f->next_free;
    f->next_free = head;
    head = f;
    ++n;
  }
  count_ -= n;
  count_hint_.store(count_, std::memory_order_relaxed);
  *out = head;
  return n;
}

void FiberPool::give(Fiber* list, std::size_t n) {
  if (list == nullptr) {
    return;
  }
  Fiber* last = list;
  while (last->next_free != nullptr) {
    last = last->next_free;
  }
  OsLock lock(mu_);
  last->next_free = spare_;
  spare_ = list;
  count_ += n;
  count_hint_.store(count_, std::memory_order_relaxed);
}

void FiberPool::trim() {
  Fiber* excess = nullptr;
  {
    OsLock lock(mu_);
    while (count_ > keep_) {
      Fiber* f = spare_;
      spare_ = f->next_free;
      f->next_free = excess;
      excess = f;
      --count_;
    }
    count_hint_.store(count_, std::memory_order_relaxed);
  }
  std::vector<StackRegion> retire;
  while (excess != nullptr) {
    Fiber* f = excess;
    excess = f->next_free;
    retire.push_back(destroy_fiber(f));
  }
  stacks_.release(retire);
}

std::size_t FiberPool::size() {
  OsLock lock(mu_);
  return count_;
}

void FiberCache::spill(FiberPool& pool) {
  // Keep the newest half (warm in cache), hand the older half to the pool.
  std::size_t keep = kMax / 2;
  Fiber* f = head_;
  for (std::size_t i = 1; i < keep; ++i) {
    f = f->next_free;
  }
  Fiber* rest = f->next_free;
  f->next_free = nullptr;
  pool.give(rest, count_ - keep);
  count_ = keep;
}

}  // namespace spindle::detail
