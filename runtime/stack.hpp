// Task stacks: carved from large mmap'd chunks, committed lazily by the
// kernel (only touched pages cost memory), optionally with a guard page.
//
// The map-count budget. Linux caps a process at vm.max_map_count mappings
// (65,530 by default). A guard page splits a chunk's mapping, so every
// guarded stack costs two mappings: at most ~32,000 guarded stacks could
// exist, and the runtime must hold a million tasks. Decision: the first
// stacks are guarded until they would use half of the map count left at
// startup (about 15,000 stacks on a default kernel); stacks beyond that
// budget come unguarded from the same kind of chunk, where a whole chunk is
// one mapping. Spare fibers are reused newest-first and released stacks
// guarded ones first, so a program with fewer than ~15,000 tasks suspended
// at once always runs on guarded stacks.
// Unguarded stacks are checked at every switch away from the fiber: the
// cache line just below the stack must still be untouched (zero, as the
// kernel gave it), so an overflow is reported (late, but by name) instead of
// corrupting silently.
//
// Slot layout. A chunk is one front page, then slots of stack_size + one
// page each. The top kCanaryBytes of every slot are never written by the
// slot's own fiber: they are the canary line of the slot above it.
//
//   chunk:  [front page][slot 0][slot 1] ...
//   slot:   [page: guard, or stack if unguarded][stack ...][canary of next]
//
// A guarded stack runs from the end of its guard page to the canary line
// (stack_size - kCanaryBytes); an unguarded one has no guard page to keep
// and starts at the slot's base (stack_size + page - kCanaryBytes). So an
// unguarded stack's canary line sits on the top page of the slot below,
// which that slot's fiber (its record and first frames) has already made
// resident: the check reads memory that is there anyway. Checking a word at
// the stack's own bottom instead mapped the zero page there, one extra page
// fault per stack (measured: a third of a million-sleeper run).
//
// Thread-safety: one StackAllocator per runtime, shared by its workers;
// allocate() and release() lock a mutex. Workers keep their own fiber caches
// in front of it (fiber.cpp), so the lock is off the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "os_mutex.hpp"

namespace spindle::detail {

struct StackRegion {
  char* lo = nullptr;    // lowest usable byte (just above the guard page)
  std::size_t size = 0;  // usable bytes, up to the canary line of the slot above
  bool guarded = false;
};

// The line below an unguarded stack that its own frames never write.
constexpr std::size_t kCanaryBytes = 64;

class StackAllocator {
 public:
  StackAllocator(std::size_t stack_size, bool guard_pages);
  ~StackAllocator();
  StackAllocator(const StackAllocator&) = delete;
  StackAllocator& operator=(const StackAllocator&) = delete;

  std::size_t stack_size() const noexcept { return stack_size_; }
  std::size_t guard_budget() const noexcept { return guard_budget_; }

  StackRegion allocate();
  // Gives the memory of these stacks back to the kernel (their contents are
  // lost) and keeps the address ranges for reuse. Batches adjacent stacks
  // into one madvise call.
  void release(std::vector<StackRegion>& stacks);
  // Stacks handed out by allocate() and not yet released: each belongs to a
  // live fiber (the tests' leak check compares it with the spare fibers).
  std::size_t in_use();

  static std::size_t page_size() noexcept;

 private:
  struct Chunk {
    char* base;
    std::size_t slots;
  };
  void add_chunk() SPINDLE_REQUIRES(mu_);

  const std::size_t stack_size_;
  const std::size_t slot_size_;  // stack + guard page
  const bool guard_pages_;
  std::size_t guard_budget_ = 0;

  OsMutex mu_;
  // Released, memory given back.
  std::vector<StackRegion> free_ SPINDLE_GUARDED_BY(mu_);
  // Handed out, not yet released.
  std::size_t in_use_ SPINDLE_GUARDED_BY(mu_) = 0;
  std::size_t guarded_count_ SPINDLE_GUARDED_BY(mu_) = 0;
  std::size_t next_slot_ SPINDLE_GUARDED_BY(mu_) = 0;  // in the newest chunk
  std::size_t chunk_slots_ SPINDLE_GUARDED_BY(mu_) = 0;

  // Every chunk mapped, for the destructor; appended under mu_, fixed
  // capacity.
  static constexpr std::size_t kMaxChunks = 1 << 14;
  Chunk* chunks_ SPINDLE_PT_GUARDED_BY(mu_);
  std::size_t chunk_count_ SPINDLE_GUARDED_BY(mu_) = 0;
};

}  // namespace spindle::detail
