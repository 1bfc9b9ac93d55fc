// The runtime's lifecycle and wake paths under schedule perturbation
// (runtime/perturb.hpp), across many seeds: every decision point may yield,
// spin or sleep, so windows of a few instructions (a waker between its push
// and its notify, a timer callback between its closed() look and its spawn,
// a parent leaving the registry as its child enters it) open up.
//
// Each seed runs every scenario; a failure names its seed, and
//   SPINDLE_PERTURB_SEED=<seed> ./spindle_stress_tests --gtest_filter='Perturbed.*'
// runs just that one again (a seed fixes every thread's decisions, not the
// OS's scheduling: run it a few times). SPINDLE_PERTURB_SEEDS sets how many
// seeds (default 40, scaled by SPINDLE_STRESS_SCALE).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spindle/spindle.hpp>

#include "leftovers.hpp"
#include "perturb.hpp"
#include "runtime_fixture.hpp"
#include "stress_support.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
namespace perturb = spindle::detail::perturb;

namespace {

constexpr unsigned kPerMille = 40;

spindle::Options opts(unsigned workers) {
  spindle::Options o;
  o.workers = workers;
  o.slow_task_warning = std::chrono::milliseconds(0);  // perturbation stalls workers on purpose
  return o;
}

// Aborts the process, naming the seed, if `fn` has not returned in time: a
// hang is a failure too.
void bounded(std::uint64_t seed, const char* what, const std::function<void()>& fn) {
  spindle::testing::run_with_watchdog(120s, fn, [&] {
    std::fprintf(stderr, "HANG: perturbed scenario '%s', seed=%llu\n", what,
                 static_cast<unsigned long long>(seed));
  });
}

// Plain threads complete futures that tasks await, and the runtime is torn
// down at once after (Scheduler INV-S2).
void foreign_wakers(std::uint64_t seed) {
  for (int round = 0; round < 4; ++round) {
    std::vector<spindle::Future<int>> fs(4);
    std::vector<std::thread> producers;
    long sum = 0;
    {
      spindle::Runtime rt(opts(2));
      for (int i = 0; i < 4; ++i) {
        producers.emplace_back([f = fs[i], i]() mutable { f.set_result(i + 1); });
      }
      sum = rt.block_on([&] {
        std::vector<spindle::Task<int>> ts;
        for (auto& f : fs) {
          ts.push_back(spindle::spawn([f]() mutable { return f.get(); }));
        }
        long s = 0;
        for (auto& t : ts) {
          s += t.get();
        }
        return s;
      });
    }
    for (auto& p : producers) {
      p.join();
    }
    EXPECT_EQ(sum, 10) << "seed=" << seed;
  }
}

// call_later callbacks fire around shutdown: each one that started also
// finished, and nothing outlives shutdown (INV-S1, INV-R2).
void timers_at_shutdown(std::uint64_t seed) {
  for (int round = 0; round < 4; ++round) {
    std::atomic<int> started{0}, finished{0};
    spindle::Runtime rt(opts(2));
    spindle::testing::LeftoverCheck leftovers(rt);
    for (int i = 0; i < 8; ++i) {
      rt.call_later(std::chrono::microseconds(100 * i), [&] {
        started.fetch_add(1);
        struct Finish {
          std::atomic<int>& n;
          ~Finish() { n.fetch_add(1); }
        } finish{finished};
        spindle::sleep(1ms);
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 * round));
    rt.shutdown();
    EXPECT_EQ(rt.stats().live_tasks, 0u) << "seed=" << seed;
    EXPECT_TRUE(leftovers.nothing_left()) << "seed=" << seed;
    EXPECT_EQ(started.load(), finished.load()) << "seed=" << seed;
  }
}

// A spawn tree still growing when shutdown starts: children are spawned
// into one registry shard while their parents leave another (INV-R2);
// shutdown must cancel and await every one of them.
void spawn_tree_at_shutdown(std::uint64_t seed) {
  for (int round = 0; round < 3; ++round) {
    std::atomic<int> entered{0}, left{0};
    spindle::Runtime rt(opts(2));
    spindle::testing::LeftoverCheck leftovers(rt);
    std::function<void(int)> grow = [&](int depth) {
      entered.fetch_add(1);
      struct Leave {
        std::atomic<int>& n;
        ~Leave() { n.fetch_add(1); }
      } leave{left};
      if (depth == 0) {
        spindle::sleep(200us);
        return;
      }
      for (int i = 0; i < 2; ++i) {
        spindle::spawn([&grow, depth] { grow(depth - 1); });  // not awaited: it outlives us
      }
      spindle::yield();
    };
    rt.spawn([&] { grow(5); });
    std::this_thread::sleep_for(std::chrono::microseconds(300 * round));
    rt.shutdown();
    EXPECT_EQ(rt.stats().live_tasks, 0u) << "seed=" << seed;
    EXPECT_TRUE(leftovers.nothing_left()) << "seed=" << seed;
    EXPECT_EQ(entered.load(), left.load()) << "seed=" << seed << ": a task never ended";
  }
}

// Tasks on different workers wake one another, and wait with timeouts that
// race the wakeups; some are cancelled mid-wait. Every exchange is counted.
void wake_and_cancel_races(std::uint64_t seed) {
  spindle::Runtime rt(opts(3));
  const int exchanges = 60;
  long total = rt.block_on([&] {
    spindle::Queue<int> ping(1), pong(1);
    auto a = spindle::spawn([&] {
      long s = 0;
      for (int i = 0; i < exchanges; ++i) {
        ping.put(i);
        s += pong.get();
      }
      return s;
    });
    auto b = spindle::spawn([&] {
      for (int i = 0; i < exchanges; ++i) {
        pong.put(ping.get() + 1);
      }
      return 0L;
    });
    int cancelled = 0;
    for (int i = 0; i < 20; ++i) {
      spindle::Future<int> f;
      auto waiter = spindle::spawn([f]() mutable { return f.wait_for(200us) ? f.result() : -1; });
      if (i % 3 == 0) {
        waiter.cancel("racing");
      } else {
        f.set_result(i);
      }
      try {
        int v = waiter.get();
        EXPECT_TRUE(v == i || v == -1) << "seed=" << seed;
      } catch (const spindle::Cancelled&) {
        ++cancelled;
      }
    }
    EXPECT_LE(cancelled, 7) << "seed=" << seed;
    return a.get() + b.get();
  });
  EXPECT_EQ(total, static_cast<long>(exchanges) * (exchanges + 1) / 2) << "seed=" << seed;
}

// A timer fires while its owner computes (timer.hpp INV-TK1..TK3).
void timer_behind_busy_owner(std::uint64_t seed) {
  spindle::Runtime rt(opts(2));
  rt.block_on([&] {
    spindle::sleep(5ms);
    std::atomic<bool> fired{false};
    const auto t0 = std::chrono::steady_clock::now();
    rt.call_later(2ms, [&] { fired.store(true); });
    while (!fired.load() && std::chrono::steady_clock::now() - t0 < 2s) {
    }
    EXPECT_TRUE(fired.load()) << "seed=" << seed;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "seed=" << seed;
  });
}

// A job that waits for three quick ones submitted right after it: they
// must all get threads while the pool has room (blocking_pool INV-B1).
void blocking_pool_bursts(std::uint64_t seed) {
  spindle::Options o = opts(2);
  o.blocking_threads = 4;
  spindle::Runtime rt(o);
  rt.block_on([&] {
    for (int round = 0; round < 3; ++round) {
      std::atomic<int> quick_done{0};
      auto slow = spindle::to_thread([&] {
        const auto give_up = std::chrono::steady_clock::now() + 2s;
        while (quick_done.load() < 3 && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(100us);
        }
        return quick_done.load();
      });
      std::vector<spindle::Future<void>> quick;
      for (int i = 0; i < 3; ++i) {
        quick.push_back(spindle::to_thread([&] { quick_done.fetch_add(1); }));
      }
      EXPECT_EQ(slow.get(), 3) << "seed=" << seed << ": a quick job waited behind a blocked one";
      for (auto& q : quick) {
        q.get();
      }
    }
  });
}

struct Scenario {
  const char* name;
  void (*run)(std::uint64_t);
};
const Scenario kScenarios[] = {
    {"foreign_wakers", foreign_wakers},
    {"timers_at_shutdown", timers_at_shutdown},
    {"spawn_tree_at_shutdown", spawn_tree_at_shutdown},
    {"wake_and_cancel_races", wake_and_cancel_races},
    {"timer_behind_busy_owner", timer_behind_busy_owner},
    {"blocking_pool_bursts", blocking_pool_bursts},
};

std::vector<std::uint64_t> seeds() {
  if (const char* one = std::getenv("SPINDLE_PERTURB_SEED"); one != nullptr && *one != '\0') {
    return {std::strtoull(one, nullptr, 10)};
  }
  long n = 40;
  if (const char* v = std::getenv("SPINDLE_PERTURB_SEEDS"); v != nullptr && *v != '\0') {
    n = std::atol(v);
  }
  n = spindle::testing::scaled(n);
  // A fresh base each run (printed), so repeated runs cover new seeds.
  std::uint64_t base =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::vector<std::uint64_t> out;
  for (long i = 0; i < n; ++i) {
    out.push_back((base + static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ull) % 1000000007ull);
  }
  return out;
}

}  // namespace

std::uint64_t total_passes() {
  std::uint64_t n = 0;
  for (unsigned p = 0; p < static_cast<unsigned>(perturb::Point::kCount); ++p) {
    n += perturb::passes(static_cast<perturb::Point>(p));
  }
  return n;
}

TEST(Perturbed, LifecycleAndWakePathsAcrossSeeds) {
  const std::uint64_t passes_before = total_passes();
  for (std::uint64_t seed : seeds()) {
    for (const Scenario& s : kScenarios) {
      SCOPED_TRACE(std::string("scenario ") + s.name + ", seed=" + std::to_string(seed));
      perturb::Scope on(seed, kPerMille);
      bounded(seed, s.name, [&] { s.run(seed); });
      if (::testing::Test::HasFailure()) {
        std::fprintf(stderr, "perturbed scenario '%s' failed: seed=%llu\n", s.name,
                     static_cast<unsigned long long>(seed));
        return;
      }
    }
  }
  // The hooks were live: every scenario crosses many decision points.
  EXPECT_GT(total_passes() - passes_before, 1000u);
  for (unsigned p = 0; p < static_cast<unsigned>(perturb::Point::kCount); ++p) {
    std::printf("perturbation point %-16s %llu passes\n",
                perturb::name(static_cast<perturb::Point>(p)),
                static_cast<unsigned long long>(perturb::passes(static_cast<perturb::Point>(p))));
  }
}
