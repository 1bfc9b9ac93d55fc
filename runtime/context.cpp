#include "context.hpp"

#include <boost/context/detail/fcontext.hpp>

#include "debug.hpp"

// libstdc++ and libc++abi both export the Itanium ABI's per-thread exception
// globals. <cxxabi.h> declares the accessor __attribute__((const)), which
// would let the compiler reuse one thread's pointer after a migration; we
// declare it ourselves, without that attribute, and call it only here.
extern "C" spindle::detail::EhState* __cxa_get_globals() noexcept;

namespace spindle::detail {
namespace fc = boost::context::detail;

namespace {

struct SwitchArgs {
  Context* from;
  Context* to;
};

__attribute__((noinline)) EhState* eh_globals() noexcept {
  EhState* g = __cxa_get_globals();
  asm volatile("" ::: "memory");
  return g;
}

// Runs first thing after every landing, on the context we landed in: records
// where the context we left is suspended and finishes the ASan switch.
inline void land(fc::transfer_t t) noexcept {
  auto* args = static_cast<SwitchArgs*>(t.data);
  args->from->fctx = t.fctx;
#if SPINDLE_ASAN_ENABLED
  const void* bottom_old = nullptr;
  std::size_t size_old = 0;
  __sanitizer_finish_switch_fiber(args->to->asan_fake_stack, &bottom_old, &size_old);
  // The first landing away from a thread's own stack teaches us its bounds.
  args->from->stack_bottom = bottom_old;
  args->from->stack_size = size_old;
#endif
}

void fiber_entry(fc::transfer_t t) {
  auto* args = static_cast<SwitchArgs*>(t.data);
  Context* self = args->to;
  land(t);
  self->entry(self);
  fatal("spindle: a fiber entry function returned");
}

}  // namespace

void make_context(Context& ctx, char* stack_lo, std::size_t size, void (*entry)(Context*),
                  const char* name) {
  ctx.entry = entry;
  ctx.eh = EhState{};
  ctx.fctx = fc::make_fcontext(stack_lo + size, size, &fiber_entry);
#if SPINDLE_ASAN_ENABLED
  ctx.asan_fake_stack = nullptr;
  ctx.stack_bottom = stack_lo;
  ctx.stack_size = size;
#endif
#if SPINDLE_TSAN_ENABLED
  ctx.tsan_fiber = __tsan_create_fiber(0);
  ctx.owns_tsan_fiber = true;
  __tsan_set_fiber_name(ctx.tsan_fiber, name);
#else
  (void)name;
#endif
}

void destroy_context(Context& ctx) {
#if SPINDLE_TSAN_ENABLED
  if (ctx.owns_tsan_fiber && ctx.tsan_fiber != nullptr) {
    __tsan_destroy_fiber(ctx.tsan_fiber);
  }
  ctx.tsan_fiber = nullptr;
  ctx.owns_tsan_fiber = false;
#endif
  ctx.fctx = nullptr;
}

void init_thread_context(Context& ctx) {
  ctx.fctx = nullptr;
  ctx.eh = EhState{};
#if SPINDLE_TSAN_ENABLED
  ctx.tsan_fiber = __tsan_get_current_fiber();
  ctx.owns_tsan_fiber = false;
#endif
}

EhState* thread_eh_state() noexcept { return eh_globals(); }

void switch_context(Context& from, Context& to, EhState* g) {
  SPINDLE_ASSERT(to.fctx != nullptr, "switch to a context that is not suspended");
  SwitchArgs args{&from, &to};
  from.eh = *g;
  *g = to.eh;
#if SPINDLE_ASAN_ENABLED
  __sanitizer_start_switch_fiber(&from.asan_fake_stack, to.stack_bottom, to.stack_size);
#endif
#if SPINDLE_TSAN_ENABLED
  // Must be the last thing before the jump (LLVM's tsan_interface.h).
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  void* target = to.fctx;
  to.fctx = nullptr;  // `to` is running now; a second switch to it would assert
  fc::transfer_t t = fc::jump_fcontext(target, &args);
  land(t);
}

}  // namespace spindle::detail
