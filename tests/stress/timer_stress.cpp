// Stress: timers.
//
//   - many concurrent sleeps of random short durations while the sleepers
//     are cancelled at random times: each sleeper completes its sleep (never
//     early) or ends cancelled;
//   - call_later callbacks racing TimerHandle::cancel: a callback runs
//     exactly once iff cancel() returned false, never if it returned true;
//   - several threads cancelling the same handle: at most one true.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "polling.hpp"
#include "runtime_fixture.hpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using spindle::stress::await_bounded;
using spindle::stress::dump_some;
using spindle::stress::mix;
using spindle::testing::eventually;
using spindle::testing::RuntimeTest;
using spindle::testing::scaled;

namespace {

constexpr auto kHang = 60s;

class TimerStress : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(TimerStress);

// Outcome codes a sleeper reports.
constexpr long kSlept = 1;   // slept, and not early
constexpr long kEarly = -1;  // returned from sleep before the deadline
constexpr long kCaught = 2;  // caught Cancelled (then rethrew)

TEST_P(TimerStress, SleepersRaceCancellation) {
  constexpr long kBatch = 1000;
  const long total = std::max(kBatch, scaled(10000));
  long early = 0, bad = 0, n_slept = 0, n_cancelled = 0, false_on_pending = 0;
  for (long base = 0; base < total; base += kBatch) {
    std::vector<std::atomic<long>> outcome(kBatch);
    std::vector<spindle::Task<long>> ts;
    ts.reserve(kBatch);
    for (long j = 0; j < kBatch; ++j) {
      const std::uint64_t h = mix(base + j);
      // 0-2 ms, a few sleep_until in the past, a few exactly 0.
      const auto d = std::chrono::microseconds(h % 9 == 0 ? 0 : h % 2000);
      const bool use_until = h % 5 == 0;
      ts.push_back(rt().spawn([d, use_until, &outcome, j]() -> long {
        auto t0 = spindle::Clock::now();
        try {
          if (use_until) {
            spindle::sleep_until(t0 + d);
          } else {
            spindle::sleep(d);
          }
        } catch (const spindle::Cancelled&) {
          outcome[j].store(kCaught);
          throw;
        }
        auto el = spindle::Clock::now() - t0;
        long r = el >= d ? kSlept : kEarly;
        outcome[j].store(r);
        return r;
      }));
    }
    // A plain thread and a task cancel random sleepers at random moments.
    std::vector<std::atomic<int>> cancel_true(kBatch);
    std::thread canceller([&] {
      for (long j = 0; j < kBatch; j += 2) {
        const std::uint64_t h = mix(base + j + 12345);
        if (h % 3 == 0) {
          continue;
        }
        if (h % 4 == 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(h % 100));
        }
        bool was_done = ts[j].done();
        bool r = ts[j].cancel("t");
        if (r) {
          cancel_true[j].fetch_add(1);
        }
        if (was_done && r) {
          ++false_on_pending;
        }
      }
    });
    auto ctask = rt().spawn([&] {
      for (long j = 1; j < kBatch; j += 2) {
        const std::uint64_t h = mix(base + j + 999);
        if (h % 3 == 0) {
          continue;
        }
        if (h % 8 == 0) {
          spindle::sleep(std::chrono::microseconds(h % 200));
        }
        if (ts[j].cancel("t")) {
          cancel_true[j].fetch_add(1);
        }
      }
    });
    canceller.join();
    await_bounded<void>(rt(), ctask, "sleeper canceller task", kHang);
    for (long j = 0; j < kBatch; ++j) {
      auto& t = ts[j];
      if (!t.wait_for(kHang)) {
        dump_some(rt());
        FAIL() << "sleeper " << j << " never finished: " << t.repr();
      }
      long o = outcome[j].load();
      try {
        long r = t.get();
        ++n_slept;
        if (r != kSlept || o != kSlept) {
          early += (r == kEarly);
          bad += (r != kEarly);
        }
      } catch (const spindle::Cancelled& c) {
        ++n_cancelled;
        // Cancelled in its sleep (o == kCaught) or before it started (o == 0).
        if ((o != kCaught && o != 0) || c.message() != "t" || cancel_true[j].load() == 0) {
          ++bad;
        }
      } catch (...) {
        ++bad;
      }
    }
  }
  EXPECT_EQ(early, 0) << "a sleep returned before its deadline";
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(false_on_pending, 0);
  std::printf("  [SleepersRaceCancellation] slept=%ld cancelled=%ld\n", n_slept, n_cancelled);
}

// call_later from a plain thread and from tasks, each handle cancelled at a
// random moment from another thread: a callback runs once iff its cancel()
// returned false (or was never called), and never iff it returned true.
TEST_P(TimerStress, CallLaterRacesCancel) {
  const long n = scaled(20000);
  std::vector<std::atomic<int>> runs(n);
  std::vector<std::atomic<int>> cancelled_true(n);
  std::vector<spindle::TimerHandle> handles(n);
  std::vector<std::atomic<int>> armed(n);
  std::atomic<long> total_runs{0};
  auto cb = [&](long i) {
    return [&, i] {
      runs[i].fetch_add(1);
      total_runs.fetch_add(1);
    };
  };
  // Arm: half from a plain thread, half from a task.
  std::thread armer([&] {
    for (long i = 0; i < n; i += 2) {
      handles[i] = rt().call_later(std::chrono::microseconds(mix(i) % 1500), cb(i));
      armed[i].store(1, std::memory_order_release);
    }
  });
  auto armer_task = rt().spawn([&] {
    for (long i = 1; i < n; i += 2) {
      handles[i] = rt().call_later(std::chrono::microseconds(mix(i) % 1500), cb(i));
      armed[i].store(1, std::memory_order_release);
      if (i % 64 == 1) {
        spindle::yield();
      }
    }
  });
  // Cancel about two thirds, at staggered times, from two plain threads.
  std::vector<std::thread> cancellers;
  for (int c = 0; c < 2; ++c) {
    cancellers.emplace_back([&, c] {
      for (long i = 0; i < n; ++i) {
        if (mix(i + 31) % 3 == 0 || static_cast<int>(i % 2) != c) {
          continue;
        }
        while (!armed[i].load(std::memory_order_acquire)) {
          std::this_thread::yield();
        }
        if (mix(i + 7) % 16 == 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(mix(i) % 300));
        }
        if (handles[i].cancel()) {
          cancelled_true[i].fetch_add(1);
        }
      }
    });
  }
  armer.join();
  await_bounded<void>(rt(), armer_task, "call_later armer task", kHang);
  for (auto& t : cancellers) {
    t.join();
  }
  long expected = 0;
  for (long i = 0; i < n; ++i) {
    expected += cancelled_true[i].load() == 0;
  }
  if (!eventually([&] { return total_runs.load() >= expected; }, kHang)) {
    long never = 0;
    for (long i = 0; i < n; ++i) {
      never += cancelled_true[i].load() == 0 && runs[i].load() == 0;
    }
    std::fprintf(stderr, "CallLaterRacesCancel: %ld callbacks neither cancelled nor run\n", never);
    dump_some(rt());
    FAIL() << total_runs.load() << " of " << expected << " callbacks ran";
  }
  std::this_thread::sleep_for(5ms);  // a late or duplicate run would show now
  long mismatch = 0, dup = 0;
  for (long i = 0; i < n; ++i) {
    const int r = runs[i].load();
    const int c = cancelled_true[i].load();
    dup += r > 1;
    mismatch += (c == 1) != (r == 0);
    if (c == 1 && !handles[i].cancelled()) {
      ++mismatch;
    }
    // A second cancel always says false.
    if (handles[i].cancel()) {
      ++mismatch;
    }
  }
  EXPECT_EQ(dup, 0) << "a callback ran more than once";
  EXPECT_EQ(mismatch, 0) << "cancel() result disagrees with whether the callback ran";
  EXPECT_EQ(total_runs.load(), expected);
}

// Several threads cancel each handle at once, around its deadline.
TEST_P(TimerStress, ConcurrentCancelOfOneHandle) {
  constexpr int kThreads = 4;
  const long n = scaled(4000);
  std::vector<std::atomic<int>> runs(n);
  std::vector<std::atomic<int>> trues(n);
  std::vector<spindle::TimerHandle> handles(n);
  for (long i = 0; i < n; ++i) {
    handles[i] = rt().call_later(std::chrono::microseconds(mix(i) % 800),
                                 [&runs, i] { runs[i].fetch_add(1); });
  }
  std::vector<std::thread> th;
  for (int k = 0; k < kThreads; ++k) {
    th.emplace_back([&, k] {
      for (long i = k % 2 == 0 ? 0 : n - 1; i >= 0 && i < n; i += k % 2 == 0 ? 1 : -1) {
        if (handles[i].cancel()) {
          trues[i].fetch_add(1);
        }
      }
    });
  }
  for (auto& t : th) {
    t.join();
  }
  long expected = 0;
  for (long i = 0; i < n; ++i) {
    expected += trues[i].load() == 0;
  }
  ASSERT_TRUE(eventually(
      [&] {
        long s = 0;
        for (long i = 0; i < n; ++i) {
          s += runs[i].load();
        }
        return s >= expected;
      },
      kHang));
  std::this_thread::sleep_for(5ms);
  long bad = 0;
  for (long i = 0; i < n; ++i) {
    const int t = trues[i].load();
    const int r = runs[i].load();
    bad += t > 1 || r > 1 || (t == 1) == (r == 1);
  }
  EXPECT_EQ(bad, 0) << "several cancels won, or run/cancel disagree";
}

// Sleeps with many timers armed on every worker at once: all sleepers wake,
// none early, including ones armed on a worker that is busy in a CPU loop
// (an idle worker must fire another worker's overdue timers).
TEST_P(TimerStress, ManySleepersWithBusyWorkers) {
  const long n = scaled(5000);
  std::atomic<bool> stop{false};
  // A CPU hog per worker but one, yielding rarely.
  std::vector<spindle::Task<void>> hogs;
  for (unsigned k = 0; k + 1 < workers(); ++k) {
    hogs.push_back(rt().spawn([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        volatile long x = 0;
        for (int i = 0; i < 200000; ++i) {
          x = x + i;
        }
        spindle::yield();
      }
    }));
  }
  auto main = rt().spawn([n] {
    std::vector<spindle::Task<long>> ts;
    for (long i = 0; i < n; ++i) {
      const auto d = std::chrono::microseconds(mix(i) % 3000);
      ts.push_back(spindle::spawn([d]() -> long {
        auto t0 = spindle::Clock::now();
        spindle::sleep(d);
        return spindle::Clock::now() - t0 >= d ? 1 : 0;
      }));
    }
    long ok = 0;
    for (auto& t : ts) {
      ok += t.get();
    }
    return ok;
  });
  long ok = await_bounded<long>(rt(), main, "ManySleepersWithBusyWorkers", kHang);
  stop.store(true);
  for (auto& h : hogs) {
    await_bounded<void>(rt(), h, "hog", kHang);
  }
  EXPECT_EQ(ok, n) << "some sleeps returned early";
}

}  // namespace
