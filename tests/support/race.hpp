// Two plain threads released at the same instant, to race two calls on a
// blocking primitive (tests/unit/queue_test.cpp, tests/unit/sync_test.cpp).
#pragma once

#include <atomic>
#include <thread>

namespace spindle::testing {

// How many times a test repeats race().
inline constexpr int kRaceRounds = 40;

// Runs a() and b() on two plain threads released at the same instant.
template <class A, class B>
void race(A a, B b) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  auto wrap = [&](auto fn) {
    return std::thread([&, fn]() mutable {
      ready.fetch_add(1);
      while (!go.load()) {
        std::this_thread::yield();
      }
      fn();
    });
  };
  std::thread ta = wrap(a);
  std::thread tb = wrap(b);
  while (ready.load() < 2) {
    std::this_thread::yield();
  }
  go.store(true);
  ta.join();
  tb.join();
}

}  // namespace spindle::testing
