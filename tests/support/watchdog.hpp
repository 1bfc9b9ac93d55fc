// A hang is a loud failure naming its case, not a silent ctest timeout: a
// watchdog thread reports and aborts if the guarded code does not return in
// time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

namespace spindle::testing {

// Runs `fn` on this thread with a watchdog: if it has not returned within
// `limit`, `on_hang` reports (a message, a task dump) and the process
// aborts.
template <class Fn, class OnHang>
void run_with_watchdog(std::chrono::seconds limit, Fn&& fn, OnHang&& on_hang) {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, limit, [&] { return finished; })) {
      on_hang();
      std::fflush(stderr);
      std::abort();
    }
  });
  fn();
  {
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
}

// For a hang report: every thread's stack on stderr, from gdb (needs gdb
// and ptrace permission), plus the gdb command file `script` if given.
inline void print_thread_stacks(const char* script = nullptr) {
  std::string cmd = "gdb -p " + std::to_string(::getpid()) + " -batch -ex 'thread apply all bt 30'";
  if (script != nullptr) {
    cmd += std::string(" -x ") + script;
  }
  cmd += " 1>&2 2>/dev/null";
  int rc = std::system(cmd.c_str());
  (void)rc;
}

}  // namespace spindle::testing
