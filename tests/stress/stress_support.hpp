// Helpers shared by the stress tests (tests/stress/*.cpp): a hash to pick
// behaviours deterministically, busy work, and bounded waits that turn a hang
// into an abort with a task dump instead of a silent ctest timeout (the
// watchdog itself is tests/support/watchdog.hpp).
//
// Each test file keeps its own hang limit (sanitizer builds need more time in
// some) and passes it in.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <thread>

#include <spindle/spindle.hpp>

#include "watchdog.hpp"

namespace spindle::stress {

// How many lines of dump_tasks() a hang report shows by default: enough to
// see what a hung runtime is doing without flooding the log.
inline constexpr int kDumpLines = 60;
// For a report that wants every task.
inline constexpr int kWholeDump = std::numeric_limits<int>::max();

// The first `max_lines` of dump_tasks() plus the scheduler counters.
inline void dump_some(Runtime& rt, int max_lines = kDumpLines) {
  std::ostringstream os;
  rt.dump_tasks(os);
  std::istringstream in(os.str());
  std::string line;
  for (int i = 0; i < max_lines && std::getline(in, line); ++i) {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  auto st = rt.stats();
  std::fprintf(stderr,
               "  stats: live=%zu started=%llu resumed=%llu inline=%llu stolen=%llu "
               "injected=%llu overflowed=%llu parks=%llu\n",
               st.live_tasks, static_cast<unsigned long long>(st.total.started),
               static_cast<unsigned long long>(st.total.resumed),
               static_cast<unsigned long long>(st.total.inline_runs),
               static_cast<unsigned long long>(st.total.stolen),
               static_cast<unsigned long long>(st.total.injected),
               static_cast<unsigned long long>(st.total.overflowed),
               static_cast<unsigned long long>(st.total.parks));
  std::fflush(stderr);
  // SPINDLE_STRESS_GDB_ON_HANG=1: also print every thread's stack (needs gdb
  // and ptrace permission) before the caller aborts.
  // SPINDLE_STRESS_GDB_SCRIPT: a gdb command file to run as well.
  if (const char* g = std::getenv("SPINDLE_STRESS_GDB_ON_HANG"); g != nullptr && *g == '1') {
    testing::print_thread_stacks(std::getenv("SPINDLE_STRESS_GDB_SCRIPT"));
  }
}

// Reports that `what` (described by `repr`) did not finish within `limit`,
// dumps the runtime and aborts: a hang is a loud failure with context.
[[noreturn]] inline void abort_hung(Runtime& rt, const char* what, const std::string& repr,
                                    std::chrono::seconds limit, int dump_lines = kDumpLines) {
  std::fprintf(stderr, "HANG: %s: %s not done within %llds; live tasks:\n", what, repr.c_str(),
               static_cast<long long>(limit.count()));
  dump_some(rt, dump_lines);
  std::fflush(stderr);
  std::abort();
}

// splitmix64: a cheap, well-mixed hash of an index, so each test picks the
// same "random" behaviours on every run.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// CPU work the optimizer cannot drop, to widen or shift race windows.
inline void spin_for(std::uint64_t iters) {
  volatile std::uint64_t x = 0;
  for (std::uint64_t i = 0; i < iters; ++i) {
    x = x + i;
  }
}

// Waits for `f` from a plain thread and returns its result; past `limit` it
// aborts with a task dump.
template <class T>
T await_bounded(Runtime& rt, Future<T> f, const char* what, std::chrono::seconds limit,
                int dump_lines = kDumpLines) {
  if (!f.wait_for(limit)) {
    abort_hung(rt, what, f.repr(), limit, dump_lines);
  }
  return f.get();
}

// Waits for any task from a plain thread (TaskRef has no timed wait, so it
// polls); past `limit` it aborts with a task dump.
inline void wait_bounded(Runtime& rt, const TaskRef& t, const char* what,
                         std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!t.done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      abort_hung(rt, what, t.repr(), limit);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace spindle::stress
