// One execution context: a fiber, or a worker thread's own stack.
//
// switch_context() is the ONLY place that jumps between contexts, so it is
// the one choke point that:
//   1. tells AddressSanitizer and ThreadSanitizer about the switch
//      (Boost.Context annotates only its ucontext backend; we use fcontext);
//   2. swaps the per-thread C++ exception state (__cxa_eh_globals: the
//      caught-exception stack and the uncaught count) so that a task that
//      suspends inside a catch block and resumes on another thread rethrows
//      its own exception with `throw;`;
//   3. keeps the compiler from carrying a thread_local address across the
//      jump: the jump is an opaque call, and the eh globals are fetched
//      through a noinline function right before it.
#pragma once

#include <cstdint>

#include <cstddef>

#include "sanitizers.hpp"

namespace spindle::detail {

// Mirror of the Itanium C++ ABI's __cxa_eh_globals.
struct EhState {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

struct Context {
  void* fctx = nullptr;               // Boost.Context fcontext_t of a suspended context
  EhState eh;                         // this context's exception state while suspended
  void (*entry)(Context*) = nullptr;  // first-run function of a fiber
#if defined(__aarch64__)
  std::uint64_t first_fpcr = 0;  // FPCR a fiber starts with (see context.cpp)
#endif
#if SPINDLE_ASAN_ENABLED
  void* asan_fake_stack = nullptr;
  const void* stack_bottom = nullptr;  // lowest address, for ASan
  std::size_t stack_size = 0;
#endif
#if SPINDLE_TSAN_ENABLED
  void* tsan_fiber = nullptr;
  bool owns_tsan_fiber = false;
#endif
};

// Prepares `ctx` to run `entry(ctx)` on [stack_lo, stack_lo + size) when
// first switched to. `entry` must never return.
void make_context(Context& ctx, char* stack_lo, std::size_t size, void (*entry)(Context*),
                  const char* name);
// Releases sanitizer resources of a fiber context that will never run again.
void destroy_context(Context& ctx);
// Describes the calling thread's own stack (a worker's scheduler context).
void init_thread_context(Context& ctx);
// The calling thread's exception globals (see switch_context). Constant for
// the life of a thread, so a worker reads it once at start.
EhState* thread_eh_state() noexcept;
// Suspends the caller into `from` and resumes `to`, on the same thread.
// Returns when some thread switches back to `from` — possibly another one:
// callers must re-read every per-thread value after it returns. `eh` is the
// calling thread's exception globals (thread_eh_state(), cached by the
// caller: looking it up costs a TLS call through libstdc++ per switch).
void switch_context(Context& from, Context& to, EhState* eh);
inline void switch_context(Context& from, Context& to) {
  switch_context(from, to, thread_eh_state());
}

}  // namespace spindle::detail
