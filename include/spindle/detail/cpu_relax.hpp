// Not API. The pause hint for spin loops, one for the whole library: the
// SpinLock back-off (spin_lock.hpp) and the runtime's spin-before-park loops
// (runtime/atomic.hpp re-exports it).
#pragma once

namespace spindle::detail {

// x86: PAUSE (_mm_pause): the core stops speculating ahead through the
// loop (no pipeline flush when the awaited store arrives) and lends its
// resources to a hyperthread sibling. AArch64: YIELD, the hint that this
// thread is spinning. Elsewhere: nothing.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace spindle::detail
