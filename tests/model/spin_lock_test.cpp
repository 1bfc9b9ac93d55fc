// detail::SpinLock (include/spindle/detail/spin_lock.hpp) in isolation:
// mutual exclusion under contention from more threads than cores (a
// critical section whose read-modify-write of plain fields loses updates
// if two threads ever overlap), and progress when the holder is a thread
// that sleeps inside the critical section, as a preempted plain thread
// would (the waiter's backoff must end in tries, not in a hang).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <spindle/detail/spin_lock.hpp>

namespace {

using spindle::detail::SpinGuard;
using spindle::detail::SpinLock;

TEST(SpinLock, ExcludesUnderContention) {
  SpinLock lock;
  // Plain fields, spread over two cache lines: an overlap shows up as lost
  // increments or as the pair disagreeing.
  struct {
    long a = 0;
    char pad[64];
    long b = 0;
  } shared;
  const int threads = 4, per = 50'000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < per; ++i) {
        SpinGuard g(lock);
        long a = shared.a;
        if (i % 64 == 0) {
          std::this_thread::yield();  // widen the window now and then
        }
        shared.a = a + 1;
        shared.b = shared.b + 1;
      }
    });
  }
  for (auto& t : ts) {
    t.join();
  }
  EXPECT_EQ(shared.a, long{threads} * per);
  EXPECT_EQ(shared.b, long{threads} * per);
}

TEST(SpinLock, WaiterGetsInAfterASleepingHolder) {
  SpinLock lock;
  lock.lock();
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    SpinGuard g(lock);
    got.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(got.load()) << "acquired a held lock";
  lock.unlock();
  waiter.join();
  EXPECT_TRUE(got.load());
  if (lock.try_lock()) {
    lock.unlock();
  } else {
    ADD_FAILURE() << "the waiter left the lock held";
  }
}

}  // namespace
