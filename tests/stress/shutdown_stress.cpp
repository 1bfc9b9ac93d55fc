// Stress: destroying a Runtime while tasks are in every state.
//
// Queued and never started, running CPU loops with check_cancelled, sleeping,
// blocked on futures nobody sets, blocked on futures a plain thread sets
// later, awaiting other tasks, yielding in loops, swallowing cancellation and
// going back to sleep, and cleanup handlers that sleep (or spawn and await)
// after catching Cancelled. The destructor must return within a bound, every
// started body's cleanup must have run, every handle must be done.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cstdlib>

#include "leftovers.hpp"
#include "runtime_fixture.hpp"
#include "stress_support.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using spindle::stress::dump_some;
using spindle::stress::mix;
using spindle::stress::spin_for;
using spindle::testing::scaled;

namespace {

constexpr auto kDestroyLimit = 30s;

// Runs `fn` (a destructor call or shutdown) with a watchdog: past `limit` it
// dumps the runtime's live tasks and aborts, so a hang is a loud failure.
template <class Fn>
void bounded(spindle::Runtime* rt, const char* what, Fn&& fn) {
  spindle::testing::run_with_watchdog(kDestroyLimit, std::forward<Fn>(fn), [&] {
    std::fprintf(stderr, "HANG: %s did not return within %llds; live tasks:\n", what,
                 static_cast<long long>(kDestroyLimit.count()));
    dump_some(*rt);
  });
}

struct Counters {
  std::atomic<long> started{0};
  std::atomic<long> cleaned{0};
  std::atomic<long> cleanup_sleeps{0};
};

// Counts a started body's cleanup when it unwinds (or returns).
struct Cleanup {
  Counters* c;
  explicit Cleanup(Counters* c) : c(c) { c->started.fetch_add(1, std::memory_order_relaxed); }
  ~Cleanup() { c->cleaned.fetch_add(1, std::memory_order_relaxed); }
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
};

enum Kind : int {
  kCpuLoop,
  kSleep,
  kUnsetFuture,
  kThreadSetFuture,
  kCleanupSleeps,
  kSwallower,
  kYieldLoop,
  kAwaitsTask,
  kWaitForUnset,
  kCleanupSpawnsAndAwaits,
  kShortLived,
  kSpawnerBusy,  // spawns children that stay queued behind its CPU loop
  kNumKinds
};

struct Round {
  Counters counters;
  std::vector<spindle::Future<int>> thread_futures;  // set by a plain thread later
  std::mutex handles_mu;
  std::vector<spindle::TaskRef> handles;  // every task spawned, from anywhere

  void keep(const spindle::TaskRef& t) {
    std::lock_guard<std::mutex> lock(handles_mu);
    handles.push_back(t);
  }
};

int body(Round& r, Kind kind, std::uint64_t h, int depth);

spindle::TaskRef spawn_kind(Round& r, Kind kind, std::uint64_t h, int depth) {
  auto t = spindle::spawn([&r, kind, h, depth] { return body(r, kind, h, depth); });
  r.keep(t);
  return t;
}

int body(Round& r, Kind kind, std::uint64_t h, int depth) {
  Cleanup guard(&r.counters);
  switch (kind) {
    case kCpuLoop:
      for (;;) {
        spin_for(500 + h % 2000);
        spindle::check_cancelled();
      }
    case kSleep:
      spindle::sleep(1h);
      return 1;
    case kUnsetFuture: {
      spindle::Future<int> f;
      return f.get();
    }
    case kThreadSetFuture: {
      spindle::Future<int> f;
      {
        std::lock_guard<std::mutex> lock(r.handles_mu);
        r.thread_futures.push_back(f);
      }
      return f.get();
    }
    case kCleanupSleeps:
      try {
        spindle::sleep(1h);
      } catch (const spindle::Cancelled&) {
        // Cleanup that suspends, then re-raises (DESIGN.md: the exception
        // state must survive the switch and a migration).
        spindle::sleep(std::chrono::microseconds(200 + h % 800));
        spindle::yield();
        r.counters.cleanup_sleeps.fetch_add(1, std::memory_order_relaxed);
        throw;
      }
      return 1;
    case kSwallower: {
      // Swallows one cancellation (uncancel) and goes back to sleep;
      // shutdown must ask again (it re-polls every 100 ms, so these are
      // spawned in a quarter of the rounds only).
      int swallowed = 0;
      for (;;) {
        try {
          spindle::sleep(1h);
        } catch (const spindle::Cancelled&) {
          if (++swallowed == 2) {
            throw;
          }
          spindle::current_task().uncancel();
        }
      }
    }
    case kYieldLoop:
      for (;;) {
        spindle::yield();
      }
    case kAwaitsTask: {
      if (depth > 2) {
        spindle::sleep(1h);
        return 1;
      }
      auto child =
          spindle::spawn([&r, h, depth] { return body(r, kAwaitsTask, mix(h), depth + 1); });
      r.keep(child);
      return child.get();
    }
    case kWaitForUnset: {
      spindle::Future<int> f;
      (void)f.wait_for(1h);
      return 1;
    }
    case kCleanupSpawnsAndAwaits:
      try {
        spindle::sleep(1h);
      } catch (const spindle::Cancelled&) {
        // During shutdown, a cleanup spawns a helper and awaits it.
        auto helper = spindle::spawn([&r, h] {
          Cleanup g(&r.counters);
          spindle::sleep(std::chrono::microseconds(h % 500));
          return 2;
        });
        r.keep(helper);
        helper.get();
        throw;
      }
      return 1;
    case kShortLived:
      spindle::sleep(std::chrono::microseconds(h % 300));
      return 1;
    case kSpawnerBusy: {
      for (int i = 0; i < 16; ++i) {
        Kind k = static_cast<Kind>(mix(h + i) % kSpawnerBusy);
        if (k == kSwallower) {
          k = kSleep;
        }
        spawn_kind(r, k, mix(h + i + 1), depth + 1);
      }
      for (;;) {
        spin_for(5000);
        spindle::check_cancelled();
      }
    }
    case kNumKinds:
      break;
  }
  return 0;
}

class ShutdownStress : public ::testing::TestWithParam<unsigned> {};
SPINDLE_WORKER_PARAMS(ShutdownStress);

TEST_P(ShutdownStress, DestroyWithTasksInEveryState) {
  const long reps = std::max(1L, scaled(40));
  const int per_kind = 6;
  long not_done = 0, bad_outcome = 0;
  for (long rep = 0; rep < reps; ++rep) {
    Round r;
    spindle::Options o;
    o.workers = GetParam();
    auto rt = std::make_unique<spindle::Runtime>(o);
    // From a task (local queues) and from this thread (injection queue).
    auto seeder = rt->spawn([&r, rep] {
      for (int k = 0; k < kNumKinds; ++k) {
        if (k == kSwallower && rep % 4 != 0) {
          continue;
        }
        for (int i = 0; i < per_kind / 2; ++i) {
          spawn_kind(r, static_cast<Kind>(k), mix(rep * 1000 + k * 10 + i), 0);
        }
      }
      return 0;
    });
    r.keep(seeder);
    for (int k = 0; k < kNumKinds; ++k) {
      if (k == kSwallower && rep % 4 != 0) {
        continue;
      }
      for (int i = per_kind / 2; i < per_kind; ++i) {
        const std::uint64_t h = mix(rep * 1000 + k * 10 + i);
        auto t = rt->spawn([&r, k, h] { return body(r, static_cast<Kind>(k), h, 0); });
        r.keep(t);
      }
    }
    // A plain thread completes some futures later, possibly after the
    // runtime is gone.
    std::thread setter([&r, rep] {
      for (int i = 0; i < 40; ++i) {
        std::this_thread::sleep_for(std::chrono::microseconds(mix(rep + i) % 300));
        std::vector<spindle::Future<int>> fs;
        {
          std::lock_guard<std::mutex> lock(r.handles_mu);
          fs = r.thread_futures;
        }
        for (auto& f : fs) {
          try {
            f.set_result(5);
          } catch (const spindle::InvalidStateError&) {
          }
        }
      }
    });
    // Destroy at a random moment: sometimes before anything started.
    const std::uint64_t delay_us = mix(rep) % 4 == 0 ? 0 : mix(rep + 99) % 3000;
    if (delay_us != 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    }
    spindle::Runtime* raw = rt.get();
    bounded(raw, "~Runtime with tasks in every state", [&] { rt.reset(); });
    setter.join();

    EXPECT_EQ(r.counters.started.load(), r.counters.cleaned.load())
        << "rep " << rep << ": a started task's cleanup did not run";
    std::lock_guard<std::mutex> lock(r.handles_mu);
    for (auto& t : r.handles) {
      if (!t.done()) {
        ++not_done;
        std::fprintf(stderr, "  not done after ~Runtime: %s\n", t.repr().c_str());
      } else if (!t.cancelled()) {
        // Only tasks that may finish on their own may end with a result.
        // (Swallowers throw on the third request; a waiter whose future the
        // plain thread set may return.)
        std::string rep_s = t.repr();
        if (rep_s.find("exception=") != std::string::npos) {
          ++bad_outcome;
          std::fprintf(stderr, "  unexpected outcome: %s\n", rep_s.c_str());
        }
      }
    }
  }
  EXPECT_EQ(not_done, 0) << "handles still pending after the runtime was destroyed";
  EXPECT_EQ(bad_outcome, 0);
}

// block_on returns only after every task its main left behind has finished
// (asyncio.run): the runtime stays usable for the next block_on.
TEST_P(ShutdownStress, BlockOnCancelsLeftovers) {
  const long reps = std::max(1L, scaled(40));
  spindle::Options o;
  o.workers = GetParam();
  spindle::Runtime rt(o);
  for (long rep = 0; rep < reps; ++rep) {
    Round r;
    int v = 0;
    bounded(&rt, "block_on", [&] {
      v = rt.block_on([&r, rep] {
        for (int k = 0; k < kNumKinds; ++k) {
          if (k == kThreadSetFuture || (k == kSwallower && rep % 4 != 0) || k == kCpuLoop ||
              k == kSpawnerBusy) {
            // Nobody would set the future; swallowers cost 100 ms each; CPU
            // loops never yield and would keep main from ever resuming.
            continue;
          }
          for (int i = 0; i < 3; ++i) {
            spawn_kind(r, static_cast<Kind>(k), mix(rep * 100 + k * 7 + i), 0);
          }
        }
        if (rep % 2 == 0) {
          spindle::sleep(std::chrono::microseconds(mix(rep) % 1000));
        }
        return 42;
      });
    });
    EXPECT_EQ(v, 42);
    EXPECT_EQ(r.counters.started.load(), r.counters.cleaned.load()) << "rep " << rep;
    std::lock_guard<std::mutex> lock(r.handles_mu);
    for (auto& t : r.handles) {
      EXPECT_TRUE(t.done()) << t.repr();
    }
    EXPECT_EQ(rt.stats().live_tasks, 0u);
  }
}

// Plain threads keep spawning (and arming call_later) while the runtime
// shuts down: every spawn either throws InvalidStateError or returns a task
// that ends (runs or is cancelled) — none may be stranded in a queue that no
// worker will ever look at again.
TEST_P(ShutdownStress, SpawnFromThreadsDuringShutdown) {
  const long reps = std::max(1L, scaled(60));
  constexpr int kThreads = 3;
  long stranded = 0, leaked_live = 0, left_over = 0;
  for (long rep = 0; rep < reps; ++rep) {
    spindle::Options o;
    o.workers = GetParam();
    auto rt = std::make_unique<spindle::Runtime>(o);
    spindle::testing::LeftoverCheck leftovers(*rt);
    std::atomic<bool> stop{false};
    std::atomic<long> ran{0};
    std::vector<std::vector<spindle::Task<int>>> per_thread(kThreads);
    std::vector<std::thread> th;
    for (int k = 0; k < kThreads; ++k) {
      th.emplace_back([&, k] {
        for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
          try {
            if (i % 8 == 7) {
              rt->call_later(std::chrono::microseconds(i % 50), [&ran] { ran.fetch_add(1); });
            } else {
              per_thread[k].push_back(rt->spawn([&ran, i] {
                ran.fetch_add(1);
                if (i % 3 == 0) {
                  spindle::sleep(std::chrono::microseconds(i % 100));
                }
                return 1;
              }));
            }
          } catch (const spindle::InvalidStateError&) {
            return;  // closed: nothing more may be spawned
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 + mix(rep) % 1500));
    bounded(rt.get(), "Runtime::shutdown while threads spawn", [&] { rt->shutdown(); });
    stop.store(true);
    for (auto& t : th) {
      t.join();
    }
    for (auto& v : per_thread) {
      for (auto& t : v) {
        // After shutdown() nothing will ever run again: a pending task here
        // is stranded for good.
        if (!t.done()) {
          ++stranded;
          if (stranded <= 3) {
            std::fprintf(stderr, "  stranded after shutdown(): %s\n", t.repr().c_str());
          }
        }
      }
    }
    leaked_live += static_cast<long>(rt->stats().live_tasks);
    if (::testing::AssertionResult r = leftovers.nothing_left(); !r) {
      if (++left_over <= 3) {
        std::fprintf(stderr, "  rep %ld: %s\n", rep, r.message());
      }
    }
    bounded(rt.get(), "~Runtime after shutdown", [&] { rt.reset(); });
  }
  EXPECT_EQ(stranded, 0) << "Runtime::spawn returned a task that never ran nor was cancelled "
                            "(spawn raced shutdown)";
  EXPECT_EQ(leaked_live, 0) << "stats().live_tasks > 0 after shutdown()";
  EXPECT_EQ(left_over, 0) << "tasks, fibers or stacks left over after shutdown()";
}

// Pending call_later timers, sleeping tasks with timers on every worker, and
// done-callbacks on futures completed after the runtime is gone.
TEST_P(ShutdownStress, DestroyWithPendingTimersAndCallbacks) {
  const long reps = std::max(1L, scaled(40));
  for (long rep = 0; rep < reps; ++rep) {
    spindle::Options o;
    o.workers = GetParam();
    auto rt = std::make_unique<spindle::Runtime>(o);
    std::atomic<long> fired{0};
    std::atomic<long> callbacks{0};
    std::vector<spindle::TimerHandle> timers;
    for (int i = 0; i < 50; ++i) {
      timers.push_back(rt->call_later(std::chrono::microseconds(mix(rep * 50 + i) % 2000),
                                      [&fired] { fired.fetch_add(1); }));
    }
    for (int i = 0; i < 10; ++i) {
      timers.push_back(rt->call_later(1h, [&fired] { fired.fetch_add(1); }));
    }
    std::vector<spindle::Future<int>> fs(20);
    for (auto& f : fs) {
      f.add_done_callback([&callbacks](spindle::Future<int>) { callbacks.fetch_add(1); });
    }
    Counters c;
    for (int i = 0; i < 20; ++i) {
      spindle::Future<int> f = fs[i];
      auto t = rt->spawn([&c, i, f]() mutable {
        Cleanup g(&c);
        spindle::sleep(std::chrono::microseconds(i * 100));
        return f.get();
      });
      (void)t;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(mix(rep) % 1500));
    // Cancel some timers concurrently with the destruction.
    std::thread canceller([&timers] {
      for (std::size_t i = 0; i < timers.size(); i += 3) {
        timers[i].cancel();
      }
    });
    bounded(rt.get(), "~Runtime with pending timers", [&] { rt.reset(); });
    canceller.join();
    EXPECT_EQ(c.started.load(), c.cleaned.load());
    // After the runtime is gone: cancel() is still safe, and completing the
    // futures runs their callbacks on this thread (no runtime alive... or
    // another test's runtime, if one exists: wait for them).
    for (auto& t : timers) {
      t.cancel();
    }
    long done_before = callbacks.load();
    for (auto& f : fs) {
      try {
        f.set_result(1);
      } catch (const spindle::InvalidStateError&) {
      }
    }
    auto until = std::chrono::steady_clock::now() + 30s;
    while (callbacks.load() < 20 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(100us);
    }
    EXPECT_EQ(callbacks.load(), 20) << "done_before=" << done_before;
    EXPECT_LE(fired.load(), 50);
  }
}

}  // namespace
