// Bounded waiting for a condition no future signals (a flag, a counter, a
// stats field): a broken runtime then fails the test instead of hanging it.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

namespace spindle::testing {

// Polls `pred` from a plain thread, sleeping between looks, until it holds
// (true) or `timeout` passes (false, after one last look).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return pred();
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

// Busy-waits for `flag` without ever suspending, so a task that calls it
// keeps its worker; false if `timeout` passes first.
inline bool spin_until(const std::atomic<bool>& flag,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::yield();
  }
  return true;
}

}  // namespace spindle::testing
