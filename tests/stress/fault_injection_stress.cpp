// Fault injection (runtime/fault.hpp): a representative workload — runtime
// start, spawn, gather, a queue, an event, timers, timeout, to_thread,
// shutdown — is run once to count the calls at each fault site, then again
// with the Nth call failing, for N swept over that count. Each run must
// end (a watchdog aborts with the site and N otherwise) in one of two ways:
//   - normally, with every task body run exactly once and every result
//     right (the failure was absorbed: a spurious futex wakeup, an
//     unguarded stack);
//   - with a clear exception reaching the caller (std::bad_alloc,
//     std::system_error), no task run twice, and the runtime shut down
//     cleanly by its destructor.
// Leaks are ASan's to find (detect_leaks=1 at exit). After every failed
// run, the same workload without faults must succeed: nothing global was
// left broken.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include <spindle/spindle.hpp>

#include "fault.hpp"
#include "runtime_fixture.hpp"
#include "stress_support.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using spindle::detail::fault::Site;

namespace {

constexpr int kTasks = 16;
constexpr int kItems = 32;

struct Tally {
  std::atomic<int> bodies[kTasks] = {};
  std::atomic<int> consumed{0};
  std::atomic<int> blocking_calls{0};
};

// The workload: returns its checksum; throws whatever reached the caller.
long workload(Tally& tally) {
  // Declared before the runtime, so they outlive every task: when the main
  // task fails, block_on cancels and awaits the others before it returns.
  spindle::Queue<int> q(4);
  spindle::Event ev;
  spindle::Options o;
  o.workers = 2;
  o.blocking_threads = 2;
  spindle::Runtime rt(o);
  return rt.block_on([&] {
    std::vector<spindle::Task<int>> tasks;
    for (int i = 0; i < kTasks; ++i) {
      tasks.push_back(spindle::spawn([&tally, i] {
        tally.bodies[i].fetch_add(1);
        spindle::sleep(std::chrono::microseconds(50 * (i % 4)));
        return i;
      }));
    }
    long sum = 0;
    for (int v : spindle::gather(tasks)) {
      sum += v;
    }
    // Producer, consumer and event each in a task of their own, awaited by
    // one gather: a failure in any of them reaches us at once (a consumer
    // left waiting for a producer that died would wait for ever, in any
    // runtime).
    auto producer = spindle::spawn([&] {
      for (int i = 0; i < kItems; ++i) {
        q.put(i);
      }
      return 0;
    });
    auto consumer = spindle::spawn([&] {
      long got = 0;
      for (int i = 0; i < kItems; ++i) {
        got += q.get();
        tally.consumed.fetch_add(1);
      }
      return static_cast<int>(got);
    });
    auto setter = spindle::spawn([&] {
      spindle::sleep(200us);
      ev.set();
      return 0;
    });
    auto waiter = spindle::spawn([&] {
      ev.wait();
      return 0;
    });
    for (int v :
         spindle::gather(std::vector<spindle::Task<int>>{producer, consumer, setter, waiter})) {
      sum += v;
    }
    sum += spindle::timeout(1s, [] { return 3; });
    auto blocking = spindle::to_thread([&] {
      tally.blocking_calls.fetch_add(1);
      return 7;
    });
    sum += blocking.get();
    return sum;
  });
}

long expected_sum() { return kTasks * (kTasks - 1) / 2 + kItems * (kItems - 1) / 2 + 3 + 7; }

// Runs `fn` under a watchdog: a hang is an abort naming the case.
template <class Fn>
void bounded(const std::string& what, Fn&& fn) {
  spindle::testing::run_with_watchdog(60s, std::forward<Fn>(fn), [&] {
    std::fprintf(stderr, "HANG: fault injection, %s\n", what.c_str());
  });
}

void check_clean_run(const std::string& what) {
  Tally tally;
  long sum = 0;
  bounded(what + " (clean run after)", [&] { sum = workload(tally); });
  EXPECT_EQ(sum, expected_sum()) << what << ": the runtime is not usable after a fault";
}

// Sweeps the Nth call at `site` over [1, calls], at most `points` values.
void sweep(Site site, int points) {
  spindle::detail::fault::DisarmAtExit disarm;
  Tally counting;
  spindle::detail::fault::arm(site, 0);  // count only
  long sum = workload(counting);
  const std::uint64_t calls = spindle::detail::fault::calls(site);
  spindle::detail::fault::disarm_all();
  ASSERT_EQ(sum, expected_sum());
  ASSERT_GT(calls, 0u) << spindle::detail::fault::name(site)
                       << ": the workload never reached this site (is the hook wired?)";
  std::uint64_t step = calls > static_cast<std::uint64_t>(points) ? calls / points : 1;
  std::uint64_t first = 1, last = calls;
  // SPINDLE_FAULT_N=<n>: only that call (to reproduce one case).
  if (const char* only = std::getenv("SPINDLE_FAULT_N"); only != nullptr && *only != '\0') {
    first = last = std::strtoull(only, nullptr, 10);
    step = 1;
  }
  int failures = 0, absorbed = 0;
  for (std::uint64_t n = first; n <= last; n += step) {
    const std::string what =
        std::string(spindle::detail::fault::name(site)) + " call " + std::to_string(n);
    Tally tally;
    bool threw = false;
    spindle::detail::fault::arm(site, n);
    bounded(what, [&] {
      try {
        sum = workload(tally);
      } catch (const std::bad_alloc&) {
        threw = true;
      } catch (const std::system_error&) {
        threw = true;
      }
    });
    spindle::detail::fault::disarm_all();
    for (int i = 0; i < kTasks; ++i) {
      EXPECT_LE(tally.bodies[i].load(), 1) << what << ": task " << i << " ran twice";
    }
    EXPECT_LE(tally.blocking_calls.load(), 1) << what;
    if (threw) {
      ++failures;
      check_clean_run(what);
    } else {
      ++absorbed;
      EXPECT_EQ(sum, expected_sum()) << what << ": completed with a wrong result";
      for (int i = 0; i < kTasks; ++i) {
        EXPECT_EQ(tally.bodies[i].load(), 1) << what << ": task " << i << " lost";
      }
      EXPECT_EQ(tally.consumed.load(), kItems) << what;
    }
  }
  std::printf("fault %s: %llu calls, %d injected runs threw to the caller, %d absorbed\n",
              spindle::detail::fault::name(site), static_cast<unsigned long long>(calls), failures,
              absorbed);
}

int sweep_points() { return static_cast<int>(spindle::testing::scaled(40)); }

}  // namespace

TEST(FaultInjection, AllocationFailures) { sweep(Site::kAlloc, sweep_points()); }
TEST(FaultInjection, StackMmapFailures) { sweep(Site::kMmap, sweep_points()); }
TEST(FaultInjection, GuardPageFailures) { sweep(Site::kMprotect, sweep_points()); }
TEST(FaultInjection, ThreadCreationFailures) { sweep(Site::kThread, sweep_points()); }
TEST(FaultInjection, FutexFailures) { sweep(Site::kFutex, sweep_points()); }
