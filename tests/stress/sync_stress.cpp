// Stress: Mutex and Semaphore under contention across workers and plain
// threads, with waiters cancelled at random.
//
// Conservation: a non-atomic counter guarded by the Mutex stays exact (every
// completed critical section counted once, none overlapping); a Semaphore's
// permits are never exceeded and all come back (value() ends at its initial
// value); nobody hangs.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <spindle/sync.hpp>

#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::testing::RuntimeTest;
using spindle::testing::scaled;

namespace {

constexpr auto kHang = 60s;

class SyncStress : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(SyncStress);

// Cancels a random task of `tasks` every few microseconds until `stop`,
// respawning each with `body`.
template <class Body>
std::thread random_canceller(spindle::Runtime& rt, std::vector<spindle::Task<void>>& tasks,
                             std::mutex& mu, std::atomic<bool>& stop, std::atomic<long>& cancels,
                             Body body, unsigned seed) {
  return std::thread([&rt, &tasks, &mu, &stop, &cancels, body, seed] {
    std::mt19937 rng(seed);
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 150));
      std::lock_guard<std::mutex> g(mu);
      auto& victim = tasks[rng() % tasks.size()];
      if (victim.done()) {
        continue;
      }
      victim.cancel("stress");
      if (!victim.wait_for(kHang)) {
        std::fprintf(stderr, "HANG: a cancelled task never finished\n");
        std::abort();
      }
      if (victim.cancelled()) {
        cancels.fetch_add(1);
      }
      victim = rt.spawn(body);
    }
  });
}

TEST_P(SyncStress, MutexCounterExactUnderContentionAndCancellation) {
  spindle::Mutex m;
  long counter = 0;                 // guarded by m, deliberately not atomic
  std::atomic<long> increments{0};  // completed critical sections
  std::atomic<int> inside{0};
  std::atomic<long> overlaps{0};
  std::atomic<long> task_increments{0};
  std::atomic<bool> stop{false};
  const auto kRun = std::chrono::milliseconds(scaled(400));

  auto section = [&](bool may_yield, long i) {
    std::lock_guard<spindle::Mutex> g(m);
    if (inside.fetch_add(1) != 0) {
      overlaps.fetch_add(1);
    }
    long v = counter;
    if (may_yield && i % 16 == 0) {
      inside.fetch_sub(1);
      spindle::yield();  // suspends holding the mutex (a Cancelled may land here)
      inside.fetch_add(1);
    }
    counter = v + 1;
    increments.fetch_add(1);
    inside.fetch_sub(1);
  };
  // A Cancelled at the yield leaves the section without writing the counter
  // (and `inside` was already decremented), so everything stays exact.
  auto task_body = [&] {
    for (long i = 0; !stop.load(); ++i) {
      section(true, i);
      task_increments.fetch_add(1);
    }
  };
  const int tasks = 4 * static_cast<int>(workers());
  std::vector<spindle::Task<void>> ts;
  for (int i = 0; i < tasks; ++i) {
    ts.push_back(rt().spawn(task_body));
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      for (long k = 0; !stop.load(); ++k) {
        section(false, k);
      }
    });
  }
  std::mutex mu;
  std::atomic<long> cancels{0};
  std::atomic<bool> stop_cancel{false};
  std::thread canceller = random_canceller(rt(), ts, mu, stop_cancel, cancels, task_body, 99);

  std::this_thread::sleep_for(kRun);
  stop_cancel = true;
  canceller.join();
  stop = true;
  for (auto& t : threads) {
    t.join();
  }
  for (auto& t : ts) {
    ASSERT_TRUE(t.wait_for(kHang));
  }
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, increments.load());
  EXPECT_GT(task_increments.load(), 0);
  EXPECT_GT(cancels.load(), 0);
  EXPECT_FALSE(m.locked());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SyncStress, SemaphorePermitsConservedUnderCancellation) {
  constexpr int kPermits = 3;
  spindle::Semaphore s(kPermits);
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<long> rounds{0};
  std::atomic<bool> stop{false};
  const auto kRun = std::chrono::milliseconds(scaled(400));

  auto hold = [&](bool may_suspend, long i) {
    std::lock_guard<spindle::Semaphore> g(s);  // acquire ... release, even on Cancelled
    int now = holders.fetch_add(1) + 1;
    int m = max_holders.load();
    while (now > m && !max_holders.compare_exchange_weak(m, now)) {
    }
    struct Leave {
      std::atomic<int>& h;
      ~Leave() { h.fetch_sub(1); }
    } leave{holders};
    if (may_suspend && i % 8 == 0) {
      spindle::yield();
    }
    rounds.fetch_add(1);
  };
  auto task_body = [&] {
    for (long i = 0; !stop.load(); ++i) {
      hold(true, i);
    }
  };
  const int tasks = 4 * static_cast<int>(workers()) + 2;
  std::vector<spindle::Task<void>> ts;
  for (int i = 0; i < tasks; ++i) {
    ts.push_back(rt().spawn(task_body));
  }
  std::thread thread_user([&] {
    for (long k = 0; !stop.load(); ++k) {
      hold(false, k);
    }
  });
  std::mutex mu;
  std::atomic<long> cancels{0};
  std::atomic<bool> stop_cancel{false};
  std::thread canceller = random_canceller(rt(), ts, mu, stop_cancel, cancels, task_body, 7);

  std::this_thread::sleep_for(kRun);
  stop_cancel = true;
  canceller.join();
  stop = true;
  thread_user.join();
  for (auto& t : ts) {
    ASSERT_TRUE(t.wait_for(kHang));
  }
  EXPECT_GT(rounds.load(), 0);
  EXPECT_LE(max_holders.load(), kPermits);
  EXPECT_EQ(holders.load(), 0);
  EXPECT_EQ(s.value(), kPermits) << "a permit leaked or was duplicated";
  EXPECT_GT(cancels.load(), 0);
}

// Event and Condition wake-ups racing with cancellation: a ping-pong that
// would hang on a lost wake-up.
TEST_P(SyncStress, ConditionPingPongWithCancelledBystanders) {
  spindle::Condition c;
  long turn = 0;  // guarded by c's mutex
  const long kRounds = scaled(4000);
  std::atomic<bool> stop{false};
  auto player = [&](long me) {
    for (long i = 0; i < kRounds; ++i) {
      std::unique_lock<spindle::Condition> lk(c);
      c.wait([&] { return turn % 2 == me; });
      ++turn;
      c.notify_all();
    }
  };
  auto bystander = [&] {
    // Waits on the same condition and gets cancelled; must never swallow a
    // notification the players need.
    std::unique_lock<spindle::Condition> lk(c);
    while (!stop.load()) {
      c.wait();
    }
  };
  auto p0 = rt().spawn([&] { player(0); });
  auto p1 = rt().spawn([&] { player(1); });
  std::vector<spindle::Task<void>> bys;
  for (int i = 0; i < 4; ++i) {
    bys.push_back(rt().spawn(bystander));
  }
  std::mutex mu;
  std::atomic<long> cancels{0};
  std::atomic<bool> stop_cancel{false};
  std::thread canceller = random_canceller(rt(), bys, mu, stop_cancel, cancels, bystander, 3);
  ASSERT_TRUE(p0.wait_for(kHang)) << "lost wake-up";
  ASSERT_TRUE(p1.wait_for(kHang)) << "lost wake-up";
  stop_cancel = true;
  canceller.join();
  stop = true;
  {
    std::lock_guard<spindle::Condition> g(c);
    c.notify_all();
  }
  for (auto& b : bys) {
    ASSERT_TRUE(b.wait_for(kHang));
  }
  p0.get();
  p1.get();
  EXPECT_EQ(turn, 2 * kRounds);
}

}  // namespace
