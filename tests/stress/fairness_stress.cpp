// Stress: yield fairness and starvation freedom under load.
//
//   - N tasks yielding many times on one worker all progress together;
//   - two tasks waking each other through the LIFO slot cannot starve
//     yielders, remote spawns (injection queue) or timers;
//   - an injected task runs while local tasks yield forever.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime_fixture.hpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using spindle::stress::await_bounded;
using spindle::testing::scaled;

namespace {

constexpr auto kHang = 60s;

spindle::Options one_worker() {
  spindle::Options o;
  o.workers = 1;
  return o;
}

// N yielders on one worker: when any of them finishes its K yields, every
// other has made at least K/2 (round-robin service of the run queue), and
// none is left behind.
TEST(YieldFairness, AllYieldersProgressOnOneWorker) {
  spindle::Runtime rt(one_worker());
  const long n = 64;
  const long k = std::max(20L, scaled(2000));
  std::vector<std::atomic<long>> progress(n);
  std::atomic<long> min_seen_at_first_finish{-1};
  std::atomic<bool> first{true};
  std::vector<spindle::Task<void>> ts;
  // Spawn from one task so all start together on the worker.
  auto main = rt.spawn([&] {
    for (long i = 0; i < n; ++i) {
      ts.push_back(spindle::spawn([&, i] {
        for (long y = 0; y < k; ++y) {
          progress[i].store(y + 1, std::memory_order_relaxed);
          spindle::yield();
        }
        if (first.exchange(false)) {
          long m = k;
          for (long j = 0; j < n; ++j) {
            m = std::min(m, progress[j].load(std::memory_order_relaxed));
          }
          min_seen_at_first_finish.store(m);
        }
      }));
    }
    for (auto& t : ts) {
      t.get();
    }
  });
  await_bounded<void>(rt, main, "AllYieldersProgressOnOneWorker", kHang);
  EXPECT_GE(min_seen_at_first_finish.load(), k / 2) << "a yielder starved while another finished";
  for (long i = 0; i < n; ++i) {
    EXPECT_EQ(progress[i].load(), k);
  }
}

// Two tasks ping-pong through futures (each wake goes to the LIFO slot)
// while yielders, a sleeper and remote spawns must still get their turn.
class LifoStarvation : public spindle::testing::RuntimeTest {};
SPINDLE_WORKER_PARAMS(LifoStarvation);

struct Step {
  spindle::Future<int> ack;
  spindle::Future<std::shared_ptr<Step>> next;
};

TEST_P(LifoStarvation, PingPongDoesNotStarveOthers) {
  std::atomic<bool> stop{false};
  std::atomic<long> pings{0};
  // A hands B a fresh Step through `out` and waits for its ack; B acks and
  // waits for the next Step. Every wake is task-to-task on one worker, so
  // it goes through the LIFO slot. Runs until `stop`.
  spindle::Future<std::shared_ptr<Step>> first;
  auto side_a = rt().spawn([&stop, &pings, first]() mutable {
    spindle::Future<std::shared_ptr<Step>> out = first;
    long i = 0;
    for (; !stop.load(std::memory_order_relaxed); ++i) {
      auto s = std::make_shared<Step>();
      out.set_result(s);
      s->ack.get();
      pings.fetch_add(1, std::memory_order_relaxed);
      out = s->next;
    }
    out.set_result(nullptr);
    return i;
  });
  auto side_b = rt().spawn([first]() mutable {
    spindle::Future<std::shared_ptr<Step>> in = first;
    long i = 0;
    for (;; ++i) {
      std::shared_ptr<Step> s = in.get();
      if (!s) {
        return i;
      }
      s->ack.set_result(1);
      in = s->next;
    }
  });

  // Wait until the ping-pong is in full swing.
  auto until = std::chrono::steady_clock::now() + kHang;
  while (pings.load() < 100 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(100us);
  }
  ASSERT_GE(pings.load(), 100) << "ping-pong never got going";

  // 1. Yielders spawned from outside (injection queue) finish.
  const long yielders = 8;
  std::vector<spindle::Task<long>> ys;
  for (long i = 0; i < yielders; ++i) {
    ys.push_back(rt().spawn([] {
      for (int y = 0; y < 200; ++y) {
        spindle::yield();
      }
      return 1L;
    }));
  }
  // 2. A sleeper wakes (timers get fired).
  auto sleeper = rt().spawn([] {
    auto t0 = spindle::Clock::now();
    spindle::sleep(2ms);
    return spindle::Clock::now() - t0 >= 2ms ? 1L : 0L;
  });
  // 3. A remote one-shot runs.
  auto one_shot = rt().spawn([] { return 7L; });

  long yield_done = 0;
  for (auto& y : ys) {
    if (y.wait_for(20s)) {
      yield_done += y.get();
    }
  }
  bool sleeper_ok = sleeper.wait_for(20s);
  bool one_shot_ok = one_shot.wait_for(20s);
  const bool still_pinging = !side_a.done();
  stop.store(true);
  long ra = await_bounded<long>(rt(), side_a, "ping side", kHang);
  long rb = await_bounded<long>(rt(), side_b, "pong side", kHang);
  EXPECT_EQ(yield_done, yielders) << "yielders starved by a LIFO ping-pong";
  EXPECT_TRUE(sleeper_ok) << "a sleeper starved by a LIFO ping-pong";
  if (sleeper_ok) {
    EXPECT_EQ(sleeper.get(), 1) << "sleep returned early";
  }
  EXPECT_TRUE(one_shot_ok) << "an injected task starved by a LIFO ping-pong";
  EXPECT_GE(rb, ra - 1);
  if (!still_pinging) {
    std::printf(
        "  [PingPongDoesNotStarveOthers] note: ping-pong ended (%ld rounds) before "
        "the others finished\n",
        ra);
  }
}

// One worker, local tasks that yield forever: a task spawned from another
// thread (injection queue) and a call_soon callback still run.
TEST(YieldFairness, InjectedWorkRunsBehindEndlessYielders) {
  spindle::Runtime rt(one_worker());
  std::atomic<bool> stop{false};
  std::vector<spindle::Task<void>> loops;
  auto spawner = rt.spawn([&] {
    for (int i = 0; i < 300; ++i) {  // more than a ring holds: overflow too
      loops.push_back(spindle::spawn([&stop] {
        while (!stop.load(std::memory_order_relaxed)) {
          spindle::yield();
        }
      }));
    }
  });
  await_bounded<void>(rt, spawner, "spawner", kHang);
  const long rounds = std::max(1L, scaled(200));
  long late = 0;
  for (long r = 0; r < rounds; ++r) {
    auto t = rt.spawn([] { return 1; });
    if (!t.wait_for(10s)) {
      ++late;
      break;
    }
    spindle::Future<void> cb_ran;
    rt.call_soon([cb_ran]() mutable { cb_ran.set_result(); });
    if (!cb_ran.wait_for(10s)) {
      ++late;
      break;
    }
  }
  stop.store(true);
  for (auto& l : loops) {
    await_bounded<void>(rt, l, "endless yielder", kHang);
  }
  EXPECT_EQ(late, 0) << "injected work starved behind local yielders";
}

// Yield fairness across workers: with every worker saturated by yielders,
// all make progress and the total number of yields adds up.
class YieldLoad : public spindle::testing::RuntimeTest {};
SPINDLE_WORKER_PARAMS(YieldLoad);

TEST_P(YieldLoad, EveryYielderFinishes) {
  const long n = 256;
  const long k = std::max(10L, scaled(400));
  std::atomic<long> total{0};
  auto main = rt().spawn([&] {
    std::vector<spindle::Task<long>> ts;
    for (long i = 0; i < n; ++i) {
      ts.push_back(spindle::spawn([&, i] {
        long mine = 0;
        for (long y = 0; y < k + (i % 7); ++y) {
          spindle::yield();
          ++mine;
          total.fetch_add(1, std::memory_order_relaxed);
        }
        return mine;
      }));
    }
    long s = 0;
    for (auto& t : ts) {
      s += t.get();
    }
    return s;
  });
  long s = await_bounded<long>(rt(), main, "EveryYielderFinishes", kHang);
  long expect = 0;
  for (long i = 0; i < n; ++i) {
    expect += k + (i % 7);
  }
  EXPECT_EQ(s, expect);
  EXPECT_EQ(total.load(), expect);
}

}  // namespace

namespace {

// A task wakes another (completes the future it waits on) and then keeps its
// worker busy — a CPU loop with check_cancelled(), never yielding — until
// the woken task has run. With another worker idle, the woken task must
// run there: work parked where no idle worker can reach it (the waker's
// LIFO slot) is a hang here. Repeated, because where the tasks sit varies.
class WakeThenSpin : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Workers, WakeThenSpin, ::testing::Values(2u, 4u),
                         [](const ::testing::TestParamInfo<unsigned>& i) {
                           return "w" + std::to_string(i.param);
                         });

TEST_P(WakeThenSpin, WokenTaskRunsWhileWakerSpins) {
  spindle::Options o;
  o.workers = GetParam();
  spindle::Runtime rt(o);
  const long rounds = std::max(1L, scaled(50));
  long stuck = 0;
  for (long r = 0; r < rounds && stuck == 0; ++r) {
    auto main = rt.spawn([r]() -> bool {
      spindle::Future<int> f;
      std::atomic<bool> waiting{false};
      std::atomic<bool> ran{false};
      auto y = spindle::spawn([f, &waiting, &ran]() mutable {
        waiting.store(true);
        f.get();
        ran.store(true);
      });
      while (!waiting.load()) {
        spindle::yield();
      }
      spindle::sleep(std::chrono::microseconds(200 + r % 300));  // let y suspend
      f.set_result(1);                                           // wakes y from this worker
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!ran.load() && std::chrono::steady_clock::now() < deadline) {
        spindle::check_cancelled();
      }
      bool ok = ran.load();
      y.get();  // (suspends; y runs here at the latest)
      return ok;
    });
    if (!await_bounded<bool>(rt, main, "WokenTaskRunsWhileWakerSpins", kHang)) {
      ++stuck;
    }
  }
  EXPECT_EQ(stuck, 0) << "a woken task did not run for 10 s while its waker spun and "
                         "another worker was idle";
}

}  // namespace
