// Atomic helpers shared by the runtime's lock-free code.
//
// runtime/ never calls std::atomic_thread_fence directly: ThreadSanitizer does
// not model fences, so a fence that orders plain data would show up as a
// false race. full_fence() is a seq_cst fence in normal builds and a seq_cst
// RMW on one shared word under TSan; the RMW gives every pair of fences an
// acquire/release edge, which is at least what the fence promised.
#pragma once

#include <atomic>
#include <cstdint>

// cpu_relax(), the pause hint for spin loops, shared with SpinLock.
#include <spindle/detail/cpu_relax.hpp>

#include "sanitizers.hpp"

namespace spindle::detail {

inline std::atomic<std::uint64_t> g_fence_word{0};

inline void full_fence() noexcept {
#if SPINDLE_TSAN_ENABLED
  g_fence_word.fetch_add(0, std::memory_order_seq_cst);
#elif defined(__x86_64__)
  // A locked RMW on the stack is a full barrier for ordinary memory, and a
  // few times cheaper than mfence (which also orders non-temporal stores we
  // never use). Linux's smp_mb() on x86-64 is the same instruction.
  asm volatile("lock orq $0, (%%rsp)" ::: "memory", "cc");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

inline constexpr std::size_t kCacheLine = 64;

}  // namespace spindle::detail
