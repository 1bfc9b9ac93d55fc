// Runtime: block_on (asyncio.run), call_soon, call_later, shutdown, stats,
// dump_tasks, all_tasks, sleep/sleep_until/yield, worker counts (DESIGN.md
// "Runtime", "Inside a task"). Timing is asserted only as "never early" plus
// loose upper bounds.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "polling.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::Clock;
using spindle::Future;
using spindle::Task;
using spindle::testing::eventually;
using spindle::testing::RuntimeTest;

namespace {

constexpr int kThreads = 4, kEach = 50;

// Generous: machines are noisy (TSan, shared cores).
constexpr auto kSlack = 500ms;

struct MainError {
  std::string what;
};

}  // namespace

class RuntimeApi : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(RuntimeApi);

// ---------------------------------------------------------------------------
// block_on
// ---------------------------------------------------------------------------

TEST_P(RuntimeApi, BlockOnReturnsValue) {
  EXPECT_EQ(rt().block_on([] { return 42; }), 42);
  EXPECT_EQ(rt().block_on([] { return std::string("str"); }), "str");
  bool ran = false;
  rt().block_on([&] { ran = true; });
  EXPECT_TRUE(ran);
  // Several block_on calls on one runtime, one after another.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rt().block_on([i] {
      spindle::yield();
      return i;
    }),
              i);
  }
}

TEST_P(RuntimeApi, BlockOnRunsMainAsATask) {
  auto r = rt().block_on([] {
    EXPECT_TRUE(spindle::in_task());
    return spindle::current_task().get_name();
  });
  EXPECT_FALSE(r.empty());
}

TEST_P(RuntimeApi, BlockOnRethrows) {
  EXPECT_THROW(rt().block_on([]() -> int { throw std::runtime_error("main failed"); }),
               std::runtime_error);
  try {
    rt().block_on([] {
      spindle::sleep(1ms);
      throw MainError{"custom"};
    });
    ADD_FAILURE() << "no exception";
  } catch (const MainError& e) {
    EXPECT_EQ(e.what, "custom");
  }
  // The runtime is still usable afterwards.
  EXPECT_EQ(rt().block_on([] { return 1; }), 1);
}

TEST_P(RuntimeApi, BlockOnMainCancelledRethrowsCancelled) {
  try {
    rt().block_on([] {
      spindle::current_task().cancel("main cancelled");
      spindle::yield();
    });
    ADD_FAILURE() << "no exception";
  } catch (const Cancelled& c) {
    EXPECT_EQ(c.message(), "main cancelled");
  }
}

TEST_P(RuntimeApi, BlockOnCancelsTasksStillAliveAtTheEnd) {
  // asyncio.run: when main returns, every task still alive is cancelled and
  // its cleanup runs before block_on returns.
  auto cleanup = std::make_shared<std::atomic<int>>(0);
  Task<void> bg = rt().block_on([cleanup] {
    Future<void> started;
    auto t = spindle::spawn(
        [cleanup, started]() mutable {
          started.set_result();
          try {
            spindle::sleep(10s);  // "forever"
          } catch (const Cancelled&) {
            spindle::sleep(1ms);  // cleanup may suspend
            cleanup->fetch_add(1);
            throw;
          }
        },
        "background");
    started.get();
    return t;  // main ends without awaiting it
  });
  EXPECT_EQ(cleanup->load(), 1) << "block_on returned before the cleanup ran";
  EXPECT_TRUE(bg.done());
  EXPECT_TRUE(bg.cancelled());
  EXPECT_EQ(rt().stats().live_tasks, 0u);
}

TEST_P(RuntimeApi, BlockOnEndStillRunsPendingDoneCallbacks) {
  // A done-callback is called once after completion (DESIGN.md), even if
  // main returns right after completing the future: asyncio.run drains the
  // ready callbacks, it does not drop them. A busy task keeps the worker(s)
  // occupied so the callback is still queued when main ends.
  auto ran = std::make_shared<std::atomic<int>>(0);
  rt().block_on([ran] {
    auto busy = spindle::spawn([] {
      auto until = std::chrono::steady_clock::now() + 20ms;
      while (std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();  // never suspends
      }
    });
    Future<int> f;
    f.add_done_callback([ran](Future<int> g) { ran->fetch_add(g.result()); });
    f.set_result(1);
    (void)busy;
  });
  EXPECT_TRUE(eventually([&] { return ran->load() == 1; }, 500ms))
      << "a done-callback scheduled before block_on ended never ran";
}

TEST_P(RuntimeApi, BlockOnFromInsideTaskIsInvalidState) {
  bool threw = rt().block_on([this] {
    try {
      rt().block_on([] { return 1; });
    } catch (const spindle::InvalidStateError&) {
      return true;
    }
    return false;
  });
  EXPECT_TRUE(threw);
}

// ---------------------------------------------------------------------------
// call_soon / call_later
// ---------------------------------------------------------------------------

TEST_P(RuntimeApi, CallSoonRunsOnAWorker) {
  Future<std::thread::id> where;
  rt().call_soon([where]() mutable { where.set_result(std::this_thread::get_id()); });
  ASSERT_TRUE(where.wait_for(5s)) << "call_soon callback never ran";
  EXPECT_NE(where.result(), std::this_thread::get_id());
}

TEST_P(RuntimeApi, CallSoonIsThreadSafe) {
  auto count = std::make_shared<std::atomic<int>>(0);
  Future<void> all;
  std::vector<std::thread> ths;
  for (int i = 0; i < kThreads; ++i) {
    ths.emplace_back([&, count, all] {
      for (int j = 0; j < kEach; ++j) {
        rt().call_soon([count, all]() mutable {
          if (count->fetch_add(1) + 1 == kThreads * kEach) {
            all.set_result();
          }
        });
      }
    });
  }
  // And from inside a task (spawned, not block_on: block_on's final sweep
  // would also cancel the other threads' queued callbacks — see
  // BlockOnEndStillRunsPendingDoneCallbacks).
  rt().spawn([this, count, all] {
        rt().call_soon([count, all]() mutable {
          if (count->fetch_add(1) + 1 == kThreads * kEach) {
            all.set_result();
          }
        });
      })
      .get();
  for (auto& t : ths) {
    t.join();
  }
  ASSERT_TRUE(eventually([&] { return count->load() >= kThreads * kEach; }));
  EXPECT_TRUE(eventually([&] { return count->load() == kThreads * kEach + 1; }));
  // The callback that took the count to the total sets `all` just after
  // its increment, which the count alone may show us first.
  EXPECT_TRUE(eventually([&] { return all.done(); }));
}

TEST_P(RuntimeApi, CallLaterRunsAfterDelayNeverBefore) {
  auto start = std::chrono::steady_clock::now();
  Future<std::chrono::steady_clock::time_point> fired;
  auto h = rt().call_later(
      20ms, [fired]() mutable { fired.set_result(std::chrono::steady_clock::now()); });
  EXPECT_GE(h.when(), Clock::now() - 1s);  // sane deadline
  ASSERT_TRUE(fired.wait_for(5s)) << "call_later callback never ran";
  auto elapsed = fired.result() - start;
  EXPECT_GE(elapsed, 20ms) << "call_later fired early";
  EXPECT_LT(elapsed, 20ms + kSlack);
  EXPECT_FALSE(h.cancel()) << "cancel() after the callback ran must return false";
  EXPECT_FALSE(h.cancelled());
}

TEST_P(RuntimeApi, CallLaterWithZeroOrNegativeDelayRunsSoon) {
  Future<int> a, b;
  rt().call_later(0ms, [a]() mutable { a.set_result(1); });
  rt().call_later(-5ms, [b]() mutable { b.set_result(2); });
  ASSERT_TRUE(a.wait_for(5s));
  ASSERT_TRUE(b.wait_for(5s));
  EXPECT_EQ(a.result() + b.result(), 3);
}

TEST_P(RuntimeApi, CallLaterFromTask) {
  Future<int> fired;
  rt().block_on(
      [this, fired] { rt().call_later(2ms, [fired]() mutable { fired.set_result(1); }); });
  ASSERT_TRUE(fired.wait_for(5s));
  EXPECT_EQ(fired.result(), 1);
}

TEST_P(RuntimeApi, TimerHandleCancelPreventsCallback) {
  auto ran = std::make_shared<std::atomic<bool>>(false);
  auto h = rt().call_later(15ms, [ran] { *ran = true; });
  EXPECT_TRUE(h.cancel());
  EXPECT_TRUE(h.cancelled());
  EXPECT_FALSE(h.cancel());  // only once
  // A later timer as a checkpoint: by the time it fired, the cancelled one
  // (due earlier) would have fired too.
  Future<void> later;
  rt().call_later(40ms, [later]() mutable { later.set_result(); });
  ASSERT_TRUE(later.wait_for(5s));
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(ran->load()) << "a cancelled call_later callback ran";
}

TEST_P(RuntimeApi, EmptyTimerHandle) {
  spindle::TimerHandle h;
  EXPECT_FALSE(h.cancel());
  EXPECT_FALSE(h.cancelled());
}

// ---------------------------------------------------------------------------
// shutdown
// ---------------------------------------------------------------------------

TEST_P(RuntimeApi, ShutdownCancelsRunningTasksAndRunsCleanup) {
  auto cleaned = std::make_shared<std::atomic<int>>(0);
  std::vector<Task<int>> ts;
  std::vector<Future<void>> started(3);
  for (int i = 0; i < 3; ++i) {
    ts.push_back(rt().spawn([cleaned, s = started[static_cast<size_t>(i)]]() mutable {
      s.set_result();
      try {
        spindle::sleep(10s);
      } catch (const Cancelled&) {
        spindle::sleep(1ms);  // cleanup may suspend during shutdown
        spindle::yield();
        cleaned->fetch_add(1);
        throw;
      }
      return 0;
    }));
  }
  for (auto& s : started) {
    ASSERT_TRUE(s.wait_for(5s));
  }
  auto before = std::chrono::steady_clock::now();
  rt().shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  EXPECT_EQ(cleaned->load(), 3);
  for (auto& t : ts) {
    EXPECT_TRUE(t.done());
    EXPECT_TRUE(t.cancelled());
  }
  EXPECT_EQ(rt().stats().live_tasks, 0u);
  // After shutdown, new work is refused with an error, not lost silently.
  EXPECT_THROW(rt().spawn([] {}), spindle::InvalidStateError);
  EXPECT_THROW(rt().call_soon([] {}), spindle::InvalidStateError);
  rt().shutdown();  // idempotent
}

TEST(RuntimeLifetime, DestructorCancelsAndJoins) {
  auto cleaned = std::make_shared<std::atomic<bool>>(false);
  Task<void> t;
  {
    spindle::Runtime rt(spindle::Options{.workers = 2});
    Future<void> started;
    t = rt.spawn([cleaned, started]() mutable {
      started.set_result();
      try {
        spindle::sleep(10s);
      } catch (const Cancelled&) {
        cleaned->store(true);
        throw;
      }
    });
    ASSERT_TRUE(started.wait_for(5s));
  }
  EXPECT_TRUE(cleaned->load());
  EXPECT_TRUE(t.cancelled());  // the handle outlives the runtime
}

// ---------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------

TEST_P(RuntimeApi, StatsCountsLiveTasksAndWorkers) {
  spindle::Stats s0 = rt().stats();
  EXPECT_EQ(s0.workers.size(), static_cast<size_t>(workers()));
  EXPECT_EQ(s0.workers.size(), static_cast<size_t>(rt().workers()));
  EXPECT_EQ(s0.live_tasks, 0u);

  Future<void> gate;
  std::vector<Task<void>> ts;
  for (int i = 0; i < 3; ++i) {
    ts.push_back(rt().spawn([gate] { gate.wait_for(5s); }));
  }
  EXPECT_EQ(rt().stats().live_tasks, 3u);
  gate.set_result();
  for (auto& t : ts) {
    t.get();
  }
  EXPECT_TRUE(eventually([&] { return rt().stats().live_tasks == 0; }));
  spindle::Stats s1 = rt().stats();
  EXPECT_EQ(s1.workers.size(), static_cast<size_t>(workers()));
  EXPECT_GE(s1.total.started + s1.total.inline_runs, 3u);
  EXPECT_GT(s1.stack_size, 0u);
}

TEST_P(RuntimeApi, DumpTasksListsNamesAndIds) {
  Future<void> gate;
  auto a = rt().spawn([gate] { gate.wait_for(5s); }, "dump-alpha");
  auto b = rt().spawn([gate] { gate.wait_for(5s); }, "dump-beta");
  std::ostringstream os;
  rt().dump_tasks(os);
  std::string out = os.str();
  EXPECT_NE(out.find("dump-alpha"), std::string::npos) << out;
  EXPECT_NE(out.find("dump-beta"), std::string::npos) << out;
  EXPECT_NE(out.find(std::to_string(a.id())), std::string::npos) << out;
  EXPECT_NE(out.find(std::to_string(b.id())), std::string::npos) << out;
  gate.set_result();
  a.get();
  b.get();
  ASSERT_TRUE(eventually([&] { return rt().stats().live_tasks == 0; }));
  std::ostringstream after;
  rt().dump_tasks(after);
  EXPECT_EQ(after.str().find("dump-alpha"), std::string::npos) << after.str();
}

TEST_P(RuntimeApi, AllTasksFromPlainThread) {
  Future<void> gate;
  std::vector<Task<void>> ts;
  for (int i = 0; i < 4; ++i) {
    ts.push_back(rt().spawn([gate] { gate.wait_for(5s); }, "at-" + std::to_string(i)));
  }
  std::set<std::string> names;
  std::thread th([&] {
    for (auto& r : rt().all_tasks()) {
      names.insert(r.get_name());
    }
  });
  th.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(names.count("at-" + std::to_string(i))) << i;
  }
  gate.set_result();
  for (auto& t : ts) {
    t.get();
  }
}

// ---------------------------------------------------------------------------
// sleep, sleep_until, yield
// ---------------------------------------------------------------------------

TEST_P(RuntimeApi, SleepNeverReturnsEarly) {
  auto elapsed = rt().block_on([] {
    auto start = std::chrono::steady_clock::now();
    spindle::sleep(20ms);
    return std::chrono::steady_clock::now() - start;
  });
  EXPECT_GE(elapsed, 20ms);
  EXPECT_LT(elapsed, 20ms + kSlack);
}

TEST_P(RuntimeApi, ConcurrentSleepersAllWakeOnTime) {
  auto late = rt().block_on([] {
    std::vector<Task<bool>> ts;
    for (int i = 0; i < 20; ++i) {
      ts.push_back(spindle::spawn([i] {
        auto d = std::chrono::milliseconds(1 + i % 5);
        auto start = std::chrono::steady_clock::now();
        spindle::sleep(d);
        return std::chrono::steady_clock::now() - start >= d;
      }));
    }
    int early = 0;
    for (auto& t : ts) {
      early += !t.get();
    }
    return early;
  });
  EXPECT_EQ(late, 0) << "some sleeps returned early";
}

TEST_P(RuntimeApi, SleepUntil) {
  rt().block_on([] {
    auto target = Clock::now() + 15ms;
    spindle::sleep_until(target);
    auto now = Clock::now();
    EXPECT_GE(now, target);
    EXPECT_LT(now, target + kSlack);
    // A deadline in the past returns at once (after letting others run).
    auto start = Clock::now();
    spindle::sleep_until(Clock::now() - 1s);
    spindle::sleep(0ms);
    spindle::sleep(-5ms);
    EXPECT_LT(Clock::now() - start, kSlack);
  });
}

TEST_P(RuntimeApi, YieldLetsOtherTasksRun) {
  rt().block_on([this] {
    std::atomic<bool> child_ran{false};
    auto child = spindle::spawn([&] { child_ran = true; });
    spindle::yield();
    if (workers() == 1) {
      // asyncio.sleep(0): every task that was already runnable runs first.
      EXPECT_TRUE(child_ran.load());
    }
    for (int i = 0; i < 100000 && !child_ran.load(); ++i) {
      spindle::yield();
    }
    EXPECT_TRUE(child_ran.load());
    child.get();
  });
}

// Not parameterized: the interleaving order is only defined on one worker.
TEST(RuntimeApiOneWorker, YieldingTasksInterleave) {
  // Two tasks that only yield make progress together: neither runs to the
  // end before the other starts, on one worker (round-robin, like asyncio).
  spindle::Runtime rt(spindle::Options{.workers = 1});
  std::vector<std::string> log = rt.block_on([] {
    std::mutex mu;
    std::vector<std::string> out;
    auto body = [&](std::string name) {
      return [&, name] {
        for (int i = 0; i < 3; ++i) {
          {
            std::lock_guard<std::mutex> l(mu);
            out.push_back(name + std::to_string(i));
          }
          spindle::yield();
        }
      };
    };
    auto a = spindle::spawn(body("a"));
    auto b = spindle::spawn(body("b"));
    spindle::yield();
    a.wait_for(5s);
    b.wait_for(5s);
    a.get();
    b.get();
    return out;
  });
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"}));
}

// ---------------------------------------------------------------------------
// Worker counts
// ---------------------------------------------------------------------------

TEST_P(RuntimeApi, WorkersMatchesOption) {
  EXPECT_EQ(rt().workers(), workers());
  EXPECT_EQ(rt().stats().workers.size(), static_cast<size_t>(workers()));
}

TEST_P(RuntimeApi, AllWorkersRunInParallel) {
  // N tasks that spin (never suspending) until all N are running at once:
  // only possible with N worker threads.
  const int n = static_cast<int>(workers());
  auto running = std::make_shared<std::atomic<int>>(0);
  std::vector<Task<bool>> ts;
  for (int i = 0; i < n; ++i) {
    ts.push_back(rt().spawn([running, n] {
      running->fetch_add(1);
      auto deadline = std::chrono::steady_clock::now() + 5s;
      while (running->load() < n && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      return running->load() >= n;
    }));
  }
  for (auto& t : ts) {
    EXPECT_TRUE(t.get());
  }
  std::set<std::thread::id> threads;
  std::mutex mu;
  rt().block_on([&] {
    std::vector<Task<void>> more;
    for (int i = 0; i < 50; ++i) {
      more.push_back(spindle::spawn([&] {
        std::lock_guard<std::mutex> l(mu);
        threads.insert(std::this_thread::get_id());
      }));
    }
    for (auto& t : more) {
      t.get();
    }
  });
  EXPECT_LE(threads.size(), static_cast<size_t>(n));
}

TEST(RuntimeOptions, ExplicitWorkerCounts) {
  for (unsigned n : {1u, 3u}) {
    spindle::Runtime rt(spindle::Options{.workers = n});
    EXPECT_EQ(rt.workers(), n);
    EXPECT_EQ(rt.stats().workers.size(), n);
    EXPECT_EQ(rt.block_on([] { return 5; }), 5);
  }
  spindle::Runtime def;  // 0: one per usable CPU
  EXPECT_GE(def.workers(), 1u);
  EXPECT_LE(def.workers(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(RuntimeOptions, TooManyWorkersIsRefusedWithAMessage) {
  try {
    spindle::Runtime rt(spindle::Options{.workers = 70'000});
    FAIL() << "a runtime with 70,000 workers was created";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("at most 65534"), std::string::npos) << e.what();
  }
}

TEST(TaskLayout, AnUnnamedTaskWithAnEmptyCallableFitsTheSmallerPoolClass) {
  // Not a speed assertion: a layout guard. The pool serves 192- and 256-byte
  // classes; a field added to TaskCore that pushes an empty task past 192
  // bytes makes every million-task workload zero a third more memory.
  auto empty = [] {};
  EXPECT_LE(sizeof(spindle::detail::TaskImpl<void, decltype(empty)>), 192u);
}

TEST(RuntimeOptions, SmallStackSizeIsHonoured) {
  spindle::Runtime rt(spindle::Options{.workers = 1, .stack_size = 32 * 1024});
  EXPECT_GE(rt.stats().stack_size, 16u * 1024);
  EXPECT_EQ(rt.block_on([] {
    spindle::sleep(1ms);
    return 2;
  }),
            2);
}

TEST(RuntimeApi, AnotherRuntimeCanBeDestroyedInsideATask) {
  // A task of runtime A owns runtime B and lets it go: B's shutdown blocks
  // A's worker for a moment, as any blocking call does. It used to throw
  // out of ~Runtime (std::terminate).
  spindle::Options o;
  o.workers = 2;
  spindle::Runtime a(o);
  int got = a.block_on([] {
    spindle::Options ob;
    ob.workers = 1;
    auto b = std::make_unique<spindle::Runtime>(ob);
    auto forever = b->spawn([] { spindle::sleep(std::chrono::hours(1)); });
    int v = b->spawn([] { return 6; }).get();  // awaited across runtimes
    b.reset();                                 // cancels `forever`, joins B's threads
    return forever.cancelled() ? v + 1 : -1;
  });
  EXPECT_EQ(got, 7);
}
