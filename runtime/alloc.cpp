#include "alloc.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <new>
#include <vector>

#include "fault.hpp"
#include "os_mutex.hpp"
#include "sanitizers.hpp"

namespace spindle::detail {
namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 16;  // 64 .. 1024 bytes
constexpr std::size_t kMaxPooled = kGranule * kClasses;
constexpr std::uint32_t kBatch = 64;  // objects moved between cache and depot at once
constexpr std::size_t kSlabBytes = 256 * 1024;
// A class that has already carved kSmallSlabs slabs is in a storm (a million
// tasks alive at once): its later slabs are 2 MiB, aligned and advised as a
// transparent huge page, so the kernel faults one page per 2 MiB instead of
// 512 (measured: the per-page fault path was ~25% of spawn_join). Small
// programs never get there and keep their RSS in 256 KiB steps.
constexpr std::size_t kSmallSlabs = 8;
constexpr std::size_t kHugeSlabBytes = 2 * 1024 * 1024;

struct FreeNode {
  FreeNode* next;
};

struct Batch {
  FreeNode* head;
  std::uint32_t count;
};

struct Depot {
  struct alignas(64) Class {
    OsMutex mu;
    std::vector<Batch> batches SPINDLE_GUARDED_BY(mu);
  };
  Class classes[kClasses];
  std::atomic<std::size_t> slabs_carved[kClasses] = {};  // a growth hint only
  OsMutex slab_mu;
  std::vector<void*> slabs SPINDLE_GUARDED_BY(slab_mu);  // keeps slabs reachable (leak checkers)
};

// kHugeSlabBytes at a 2 MiB boundary, advised for a huge page; nullptr if
// the mapping fails (the caller falls back to a small slab).
char* map_huge_slab() {
  const std::size_t span = 2 * kHugeSlabBytes;
  void* m = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    return nullptr;
  }
  auto base = reinterpret_cast<std::uintptr_t>(m);
  std::uintptr_t aligned = (base + kHugeSlabBytes - 1) & ~(kHugeSlabBytes - 1);
  if (aligned > base) {
    ::munmap(m, aligned - base);
  }
  std::uintptr_t end = base + span;
  if (end > aligned + kHugeSlabBytes) {
    ::munmap(reinterpret_cast<void*>(aligned + kHugeSlabBytes), end - aligned - kHugeSlabBytes);
  }
  // Advisory: without THP the slab is simply 512 ordinary pages.
  ::madvise(reinterpret_cast<void*>(aligned), kHugeSlabBytes, MADV_HUGEPAGE);
  return reinterpret_cast<char*>(aligned);
}

Depot& depot() {
  static Depot* d = new Depot();  // never destroyed: caches flush into it at thread exit
  return *d;
}

struct ThreadCache {
  FreeNode* head[kClasses] = {};
  std::uint32_t count[kClasses] = {};
  ~ThreadCache() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (count[c] > 0) {
        give_batch(c, count[c] < kBatch ? count[c] : kBatch);
      }
    }
  }
  void give_batch(std::size_t c, std::uint32_t n) {
    Batch b{head[c], n};
    FreeNode* last = head[c];
    for (std::uint32_t i = 1; i < n; ++i) {
      last = last->next;
    }
    head[c] = last->next;
    last->next = nullptr;
    count[c] -= n;
    Depot::Class& dc = depot().classes[c];
    OsLock lock(dc.mu);
    dc.batches.push_back(b);
  }
  void refill(std::size_t c) {
    Depot::Class& dc = depot().classes[c];
    {
      OsLock lock(dc.mu);
      if (!dc.batches.empty()) {
        Batch b = dc.batches.back();
        dc.batches.pop_back();
        head[c] = b.head;
        count[c] = b.count;
        return;
      }
    }
    // Carve a new slab into objects of this class.
    const std::size_t size = (c + 1) * kGranule;
    // relaxed: only decides the slab size; a race costs one slab of the
    // other size.
    std::size_t carved = depot().slabs_carved[c].fetch_add(1, std::memory_order_relaxed);
    char* slab = carved >= kSmallSlabs ? map_huge_slab() : nullptr;
    std::size_t slab_bytes = kHugeSlabBytes;
    if (slab == nullptr) {
      // Cache-line aligned, like the huge slabs, so no object straddles
      // more lines than its size needs.
      slab = static_cast<char*>(::operator new (kSlabBytes, std::align_val_t{kGranule}));
      slab_bytes = kSlabBytes;
    }
    {
      OsLock lock(depot().slab_mu);
      depot().slabs.push_back(slab);
    }
    const std::size_t n = slab_bytes / size;
    FreeNode* list = nullptr;
    for (std::size_t i = n; i-- > 0;) {
      auto* node = reinterpret_cast<FreeNode*>(slab + i * size);
      node->next = list;
      list = node;
    }
    head[c] = list;
    count[c] = static_cast<std::uint32_t>(n);
  }
};

// The cache itself has a destructor (it flushes into the depot at thread
// exit), so every access to it goes through the compiler's lazy-init guard.
// The hot path reads a plain pointer instead, which is a single %fs load;
// the guarded object is touched once per thread.
thread_local ThreadCache t_cache;
constinit thread_local ThreadCache* t_cache_ptr = nullptr;

__attribute__((noinline)) ThreadCache* first_cache() noexcept {
  t_cache_ptr = &t_cache;
  return t_cache_ptr;
}

// Not inlined, and with a compiler barrier: see DESIGN.md on thread-locals
// and fibers that migrate.
__attribute__((noinline)) ThreadCache* cache() noexcept {
  ThreadCache* c = t_cache_ptr;
  asm volatile("" ::: "memory");
  return c != nullptr ? c : first_cache();
}

constexpr bool kBypass = SPINDLE_ASAN_ENABLED || SPINDLE_TSAN_ENABLED;

}  // namespace

void* pool_alloc(std::size_t size) {
  if (fault::should_fail(fault::Site::kAlloc)) {
    throw std::bad_alloc();
  }
  if (kBypass || size > kMaxPooled || size == 0) {
    return ::operator new(size);
  }
  std::size_t c = (size - 1) / kGranule;
  ThreadCache* tc = cache();
  if (tc->head[c] == nullptr) {
    tc->refill(c);
  }
  FreeNode* n = tc->head[c];
  tc->head[c] = n->next;
  --tc->count[c];
  return n;
}

void pool_free(void* p, std::size_t size) noexcept {
  if (kBypass || size > kMaxPooled || size == 0) {
    ::operator delete(p, size);
    return;
  }
  std::size_t c = (size - 1) / kGranule;
  ThreadCache* tc = cache();
  auto* n = static_cast<FreeNode*>(p);
  n->next = tc->head[c];
  tc->head[c] = n;
  if (++tc->count[c] > 2 * kBatch) {
    tc->give_batch(c, kBatch);
  }
}

}  // namespace spindle::detail
