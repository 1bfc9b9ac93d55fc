#include "stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <system_error>

#include "debug.hpp"
#include "fault.hpp"
#include "sanitizers.hpp"

namespace spindle::detail {
namespace {

std::size_t read_max_map_count() {
  std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r");
  if (f == nullptr) {
    return 65530;
  }
  unsigned long v = 65530;
  if (std::fscanf(f, "%lu", &v) != 1) {
    v = 65530;
  }
  std::fclose(f);
  return v;
}

std::size_t count_current_maps() {
  std::FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) {
    return 1000;
  }
  std::size_t n = 0;
  for (int c; (c = std::fgetc(f)) != EOF;) {
    n += (c == '\n');
  }
  std::fclose(f);
  return n;
}

std::size_t round_up(std::size_t v, std::size_t to) { return (v + to - 1) / to * to; }

}  // namespace

std::size_t StackAllocator::page_size() noexcept {
  static const std::size_t ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return ps;
}

StackAllocator::StackAllocator(std::size_t stack_size, bool guard_pages)
    : stack_size_(round_up(std::max<std::size_t>(stack_size, 4 * page_size()), page_size())),
      slot_size_(stack_size_ + page_size()),
      guard_pages_(guard_pages) {
  if (guard_pages_) {
    std::size_t max_maps = read_max_map_count();
    std::size_t used = count_current_maps();
    std::size_t left = max_maps > used ? max_maps - used : 0;
    guard_budget_ = left / 2 / 2;  // half of what is left, two mappings per stack
  }
  chunks_ = static_cast<Chunk*>(::operator new(sizeof(Chunk) * kMaxChunks));
}

StackAllocator::~StackAllocator() {
  for (std::size_t i = 0; i < chunk_count_; ++i) {
#if SPINDLE_ASAN_ENABLED
    // Fibers that never unwound leave poisoned shadow behind; the next mmap
    // at these addresses (another Runtime's stacks) must start clean.
    __asan_unpoison_memory_region(chunks_[i].base, chunks_[i].slots * slot_size_);
#endif
    ::munmap(chunks_[i].base - page_size(), page_size() + chunks_[i].slots * slot_size_);
  }
  ::operator delete(chunks_);
}

void StackAllocator::add_chunk() {
  // Chunks grow geometrically (64 stacks up to 4096) so a small program maps
  // little and a million tasks need few mappings.
  std::size_t slots = std::min<std::size_t>(4096, 64u << std::min<std::size_t>(chunk_count_, 6));
  if (chunk_count_ == kMaxChunks) {
    throw std::bad_alloc();
  }
  // The front page holds slot 0's canary line (stack.hpp, slot layout).
  void* p = fault::should_fail(fault::Site::kMmap)
                ? (errno = ENOMEM, MAP_FAILED)
                : ::mmap(nullptr, page_size() + slots * slot_size_, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "spindle: mmap of task stacks");
  }
  chunks_[chunk_count_] = Chunk{static_cast<char*>(p) + page_size(), slots};
  ++chunk_count_;
  next_slot_ = 0;
  chunk_slots_ = slots;
}

StackRegion StackAllocator::allocate() {
  OsLock lock(mu_);
  if (!free_.empty()) {
    StackRegion r = free_.back();
    free_.pop_back();
    ++in_use_;
    return r;
  }
  if (chunk_count_ == 0 || next_slot_ == chunk_slots_) {
    add_chunk();
  }
  ++in_use_;  // after add_chunk(), which may throw: from here on a slot is handed out
  char* slot = chunks_[chunk_count_ - 1].base + next_slot_ * slot_size_;
  ++next_slot_;
  if (guard_pages_ && guarded_count_ < guard_budget_) {
    if (!fault::should_fail(fault::Site::kMprotect) &&
        ::mprotect(slot, page_size(), PROT_NONE) == 0) {
      ++guarded_count_;
      return StackRegion{slot + page_size(), stack_size_ - kCanaryBytes, true};
    }
  }
  return StackRegion{slot, slot_size_ - kCanaryBytes, false};
}

void StackAllocator::release(std::vector<StackRegion>& stacks) {
  if (stacks.empty()) {
    return;
  }
  std::sort(stacks.begin(), stacks.end(),
            [](const StackRegion& a, const StackRegion& b) { return a.lo < b.lo; });
  // Adjacent unguarded stacks form one range; a guarded stack's guard page
  // is left alone (MADV_DONTNEED on PROT_NONE memory is harmless anyway).
  // The kernel rounds each range up to whole pages, so it takes the slot's
  // canary line too, which was zero unless the slot above overflowed.
  std::size_t i = 0;
  while (i < stacks.size()) {
    char* lo = stacks[i].lo;
    char* hi = stacks[i].lo + stacks[i].size;
    std::size_t j = i + 1;
    while (j < stacks.size() && stacks[j].lo == hi + kCanaryBytes && !stacks[j].guarded) {
      hi = stacks[j].lo + stacks[j].size;
      ++j;
    }
    ::madvise(lo, static_cast<std::size_t>(hi - lo), MADV_DONTNEED);
#if SPINDLE_ASAN_ENABLED
    __asan_unpoison_memory_region(lo, static_cast<std::size_t>(hi - lo));
#endif
    i = j;
  }
  // allocate() takes from the back. Guarded stacks go there, so a program
  // that stays under the guard budget runs on them again (stack.hpp). The
  // unguarded ones come out lowest address first: a reused stack's canary
  // line then sits on the top page of a slot handed out just before it and
  // resident again; handed out downwards, each check would map the zero
  // page there, and that slot's next write would have to replace it.
  std::sort(stacks.begin(), stacks.end(), [](const StackRegion& a, const StackRegion& b) {
    return a.guarded != b.guarded ? b.guarded : a.lo > b.lo;
  });
  OsLock lock(mu_);
  free_.insert(free_.end(), stacks.begin(), stacks.end());
  in_use_ -= stacks.size();
  stacks.clear();
}

std::size_t StackAllocator::in_use() {
  OsLock lock(mu_);
  return in_use_;
}

}  // namespace spindle::detail
