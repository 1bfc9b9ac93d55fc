#include "overflow_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include <spindle/detail/task_core.hpp>

#include "fiber.hpp"
#include "task_access.hpp"
#include "worker.hpp"

namespace spindle::detail {
namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;
struct sigaction g_previous;
std::once_flag g_install_once;
thread_local void* t_altstack = nullptr;

void write_str(const char* s) {
  ssize_t r = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)r;
}

void write_u64(unsigned long long v) {
  char buf[24];
  int i = sizeof buf;
  buf[--i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && i > 0);
  write_str(buf + i);
}

// Async-signal-safe: write(2) only, no allocation.
[[noreturn]] void report(TaskCore* t, std::size_t stack_size) {
  write_str("spindle: stack overflow in task '");
  if (t != nullptr) {
    const std::string& name = TaskAccess::raw_name(t);
    if (name.empty()) {
      write_str("Task-");
      write_u64(t->id());
    } else {
      ssize_t r = ::write(STDERR_FILENO, name.data(), name.size());
      (void)r;
    }
    write_str("' (id ");
    write_u64(t ? t->id() : 0);
    write_str(")");
  } else {
    write_str("?'");
  }
  write_str(": its stack is ");
  write_u64(stack_size);
  write_str(" bytes. Raise Options::stack_size or move deep recursion off the task.\n");
  ::signal(SIGABRT, SIG_DFL);
  std::abort();
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  Worker* w = Worker::current();
  Fiber* f = w != nullptr ? w->current_fiber() : nullptr;
  if (f != nullptr) {
    const char* addr = static_cast<const char*>(info->si_addr);
    const char* lo = f->stack.lo;
    // The guard page sits just below lo; a big frame may jump a little
    // further. Anything within 64 KiB under the stack's bottom is ours.
    if (addr < lo + 256 && addr + 64 * 1024 >= lo) {
      report(f->current, f->usable_size());
    }
  }
  // Not a task stack overflow: hand the fault to whoever was there before.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction != nullptr) {
      g_previous.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  ::signal(SIGSEGV, SIG_DFL);  // returning re-executes the fault: default action
}

}  // namespace

void OverflowGuard::install_on_this_thread() {
  std::call_once(g_install_once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = &on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous);
  });
  void* mem =
      ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    return;
  }
  stack_t ss;
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (::sigaltstack(&ss, nullptr) == 0) {
    t_altstack = mem;
  } else {
    ::munmap(mem, kAltStackSize);
  }
}

void OverflowGuard::remove_from_this_thread() {
  if (t_altstack == nullptr) {
    return;
  }
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  ::sigaltstack(&ss, nullptr);
  ::munmap(t_altstack, kAltStackSize);
  t_altstack = nullptr;
}

void OverflowGuard::report_overflow(TaskCore* t, std::size_t stack_size) noexcept {
  report(t, stack_size);
}

}  // namespace spindle::detail
