#include "context.hpp"

#include <boost/context/detail/fcontext.hpp>

#include "debug.hpp"

// libstdc++ and libc++abi both export the Itanium ABI's per-thread exception
// globals. <cxxabi.h> declares the accessor __attribute__((const)), which
// would let the compiler reuse one thread's pointer after a migration; we
// declare it ourselves, without that attribute, and call it only here. The
// asm label binds our own name to the ABI symbol: a second declaration of
// __cxa_get_globals with another return type is an error under clang,
// whose <exception> brings in the ABI's declaration.
extern "C" spindle::detail::EhState* spindle_cxa_get_globals() noexcept
    __asm__("__cxa_get_globals");

namespace fc = boost::context::detail;

// The jump itself. Boost.Context's x86-64 jump_fcontext leaves with
// `jmp *%r8`: it enters through a call but never returns, so every switch
// leaves one stale entry on the CPU's return-address predictor, and each
// `ret` on the way back up the resumed task's stack (switch_context,
// switch_away, suspend, yield ...) is then predicted one frame off and
// mispredicts. spindle_jump_fcontext is the same routine — the same
// 0x48-byte frame (MXCSR and x87 control word at 0x0, r12-r15, rbx, rbp at
// 0x10-0x38, resume address at 0x40), the same registers in and out, so it
// interoperates with make_fcontext() and with frames Boost's jump saved —
// except that it leaves through `ret`, which keeps calls and returns paired.
// Measured here, two fibers switching four calls down on both sides: 30 ns
// per switch with Boost's jump, 14.7 ns with this one; spindle::yield on one
// worker went from ~42 to ~19 ns (BM_Yield and the yield workload guard it;
// BM_ContextSwitchRoundTrip, which switches straight from two different
// loops, mispredicts one return either way and does not show it).
// Other architectures use Boost's jump unchanged.
#if defined(__x86_64__) && defined(__ELF__)
extern "C" fc::transfer_t spindle_jump_fcontext(fc::fcontext_t to, void* data);
asm(R"(
    .pushsection .text
    .p2align 4
    .globl spindle_jump_fcontext
    .hidden spindle_jump_fcontext
    .type spindle_jump_fcontext, @function
spindle_jump_fcontext:
    leaq   -0x40(%rsp), %rsp
    stmxcsr (%rsp)
    fnstcw 0x4(%rsp)
    movq   %r12, 0x10(%rsp)
    movq   %r13, 0x18(%rsp)
    movq   %r14, 0x20(%rsp)
    movq   %r15, 0x28(%rsp)
    movq   %rbx, 0x30(%rsp)
    movq   %rbp, 0x38(%rsp)
    movq   %rsp, %rax
    movq   %rdi, %rsp
    ldmxcsr (%rsp)
    fldcw  0x4(%rsp)
    movq   0x10(%rsp), %r12
    movq   0x18(%rsp), %r13
    movq   0x20(%rsp), %r14
    movq   0x28(%rsp), %r15
    movq   0x30(%rsp), %rbx
    movq   0x38(%rsp), %rbp
    leaq   0x40(%rsp), %rsp
    movq   %rsi, %rdx
    movq   %rax, %rdi
    ret
    .size spindle_jump_fcontext, .-spindle_jump_fcontext
    .popsection
)");
#define SPINDLE_JUMP spindle_jump_fcontext
#else
#define SPINDLE_JUMP fc::jump_fcontext
#endif

namespace spindle::detail {

namespace {

// The floating-point control state belongs to the context, as the ABI says a
// call preserves it: a task that sets its rounding mode and suspends neither
// leaks that mode into the next task on its worker nor finds it changed when
// it resumes. On x86-64 the jump saves MXCSR and the x87 control word in its
// frame. Boost.Context's AArch64 jump saves d8-d15 but not FPCR (rounding
// mode, flush-to-zero, default NaN), so the switch keeps it on the leaving
// context's stack around the jump, and a new fiber starts with the FPCR of
// the thread that made it, as a new x86-64 frame starts with its MXCSR.
#if defined(__aarch64__)
inline std::uint64_t read_fpcr() noexcept {
  std::uint64_t v;
  asm volatile("mrs %0, fpcr" : "=r"(v)::"memory");
  return v;
}
inline void restore_fpcr(std::uint64_t v) noexcept {
  // Writing FPCR may serialize the core; reading it is cheap, and the mode
  // seldom differs between tasks.
  if (read_fpcr() != v) {
    asm volatile("msr fpcr, %0" ::"r"(v) : "memory");
  }
}
#endif

struct SwitchArgs {
  Context* from;
  Context* to;
};

__attribute__((noinline)) EhState* eh_globals() noexcept {
  EhState* g = spindle_cxa_get_globals();
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
#if defined(__aarch64__)
  restore_fpcr(self->first_fpcr);
#endif
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
#if defined(__aarch64__)
  ctx.first_fpcr = read_fpcr();
#endif
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
#if defined(__aarch64__)
  const std::uint64_t fpcr = read_fpcr();
  fc::transfer_t t = SPINDLE_JUMP(target, &args);
  restore_fpcr(fpcr);
#else
  fc::transfer_t t = SPINDLE_JUMP(target, &args);
#endif
  land(t);
}

}  // namespace spindle::detail
