// Stress: spawn storms with stealing, and fork-join trees.
//
// Conservation: every task body runs exactly once (a per-task counter), every
// handle yields the right value, the sums match.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "runtime_fixture.hpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using spindle::stress::await_bounded;
using spindle::stress::dump_some;
using spindle::stress::mix;
using spindle::testing::RuntimeTest;
using spindle::testing::scaled;

namespace {

// Sanitizer builds create fibers slowly (TSan clears ~1 MB of state per
// fiber): allow more time before calling it a hang.
constexpr auto kHang = (SPINDLE_TSAN_ENABLED || SPINDLE_ASAN_ENABLED) ? 120s : 30s;

long count_not_once(const std::vector<std::atomic<std::uint8_t>>& ran) {
  long bad = 0;
  for (const auto& r : ran) {
    bad += r.load(std::memory_order_relaxed) != 1;
  }
  return bad;
}

// What a storm task does, chosen by a hash of its index.
long storm_body(long i, std::vector<std::atomic<std::uint8_t>>& ran,
                std::atomic<long>& grandchildren) {
  ran[i].fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t h = mix(i);
  switch (h % 64) {
    case 0:
    case 1:
    case 2:
    case 3:
      spindle::yield();
      break;
    case 4:
      spindle::sleep(std::chrono::microseconds(h % 1000));  // 0-1 ms
      break;
    case 5:
    case 6: {
      // Spawn 1-4 children and join them.
      const long k = 1 + static_cast<long>((h >> 8) % 4);
      std::vector<spindle::Task<long>> kids;
      for (long c = 0; c < k; ++c) {
        kids.push_back(spindle::spawn([c, &grandchildren] {
          grandchildren.fetch_add(1, std::memory_order_relaxed);
          if (c % 2 == 1) {
            spindle::yield();
          }
          return c;
        }));
      }
      long s = 0;
      for (auto& t : kids) {
        s += t.get();
      }
      if (s != k * (k - 1) / 2) {
        return -1'000'000'000;  // poisons the sum
      }
      break;
    }
    default:
      break;
  }
  return i;
}

class SpawnStorm : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(SpawnStorm);

// One task spawns 100k tiny tasks without yielding (so they pile up in its
// queue and overflow), then joins them; idle workers steal.
TEST_P(SpawnStorm, OneSpawnerJoinsAll) {
  const long n = scaled(100000);
  std::vector<std::atomic<std::uint8_t>> ran(n);
  std::atomic<long> grandchildren{0};
  auto main = rt().spawn([&] {
    std::vector<spindle::Task<long>> ts;
    ts.reserve(n);
    for (long i = 0; i < n; ++i) {
      ts.push_back(
          spindle::spawn([i, &ran, &grandchildren] { return storm_body(i, ran, grandchildren); }));
    }
    long s = 0;
    // Join in a scrambled order half the time: awaiting a not-yet-started
    // task deep in the queue claims it out of the middle of the ring.
    if (mix(n) % 2 == 0) {
      for (auto& t : ts) {
        s += t.get();
      }
    } else {
      long stride = 7919;
      while (std::gcd(stride, n) != 1) {
        ++stride;
      }
      for (long i = 0; i < n; ++i) {
        s += ts[(i * stride) % n].get();  // a permutation of [0, n)
      }
    }
    return s;
  });
  long s = await_bounded<long>(rt(), main, "OneSpawnerJoinsAll", kHang);
  EXPECT_EQ(s, n * (n - 1) / 2);
  EXPECT_EQ(count_not_once(ran), 0) << "a task body ran zero or several times";
  auto st = rt().stats();
  std::printf("  [OneSpawnerJoinsAll w%u] started=%llu inline=%llu stolen=%llu overflowed=%llu\n",
              workers(), static_cast<unsigned long long>(st.total.started),
              static_cast<unsigned long long>(st.total.inline_runs),
              static_cast<unsigned long long>(st.total.stolen),
              static_cast<unsigned long long>(st.total.overflowed));
}

// Each spawned task spawns its own successor and the join happens through a
// countdown: a long fire-and-forget chain fanned out 8 ways.
TEST_P(SpawnStorm, FireAndForgetFanOut) {
  const long n = scaled(100000);
  std::vector<std::atomic<std::uint8_t>> ran(n);
  std::atomic<long> left{n};
  spindle::Future<void> all_done;
  std::function<void(long)> node = [&](long i) {
    ran[i].fetch_add(1, std::memory_order_relaxed);
    // Children 8i+1 .. 8i+8: a complete 8-ary tree over [0, n).
    for (long c = 8 * i + 1; c <= 8 * i + 8 && c < n; ++c) {
      spindle::spawn([&node, c] { node(c); });
    }
    if (mix(i) % 16 == 0) {
      spindle::yield();
    }
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      all_done.set_result();
    }
  };
  rt().spawn([&node] { node(0); });
  ASSERT_TRUE(all_done.wait_for(kHang)) << "only " << n - left.load() << " of " << n << " ran";
  EXPECT_EQ(count_not_once(ran), 0);
}

// Several plain threads spawn at once through Runtime::spawn (the injection
// queue) and each joins its own tasks from outside.
TEST_P(SpawnStorm, FromPlainThreads) {
  constexpr long kThreads = 4;
  const long per = std::max(1L, scaled(100000) / kThreads);
  const long n = per * kThreads;
  std::vector<std::atomic<std::uint8_t>> ran(n);
  std::atomic<long> grandchildren{0};
  std::atomic<long> total{0};
  std::atomic<long> hung{0};
  std::vector<std::thread> threads;
  for (long k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      std::vector<spindle::Task<long>> ts;
      ts.reserve(per);
      for (long j = 0; j < per; ++j) {
        long i = k * per + j;
        ts.push_back(
            rt().spawn([i, &ran, &grandchildren] { return storm_body(i, ran, grandchildren); }));
      }
      long s = 0;
      for (auto& t : ts) {
        if (!t.wait_for(kHang)) {
          hung.fetch_add(1);
          return;
        }
        s += t.get();
      }
      total.fetch_add(s);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  if (hung.load() != 0) {
    dump_some(rt());
  }
  ASSERT_EQ(hung.load(), 0) << "a task spawned from a plain thread never finished";
  EXPECT_EQ(total.load(), n * (n - 1) / 2);
  EXPECT_EQ(count_not_once(ran), 0);
}

// Plain threads and a task spawn concurrently, and the task joins everything
// (handles travel from the threads to the task through futures).
TEST_P(SpawnStorm, MixedSpawnersOneJoiner) {
  constexpr long kThreads = 3;
  const long per = std::max(1L, scaled(60000) / (kThreads + 1));
  const long n = per * (kThreads + 1);
  std::vector<std::atomic<std::uint8_t>> ran(n);
  std::atomic<long> grandchildren{0};
  std::vector<spindle::Future<std::vector<spindle::Task<long>>>> batches(kThreads + 1);
  std::vector<std::thread> threads;
  for (long k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      std::vector<spindle::Task<long>> ts;
      for (long j = 0; j < per; ++j) {
        long i = k * per + j;
        ts.push_back(
            rt().spawn([i, &ran, &grandchildren] { return storm_body(i, ran, grandchildren); }));
      }
      batches[k].set_result(std::move(ts));
    });
  }
  auto joiner = rt().spawn([&] {
    std::vector<spindle::Task<long>> mine;
    for (long j = 0; j < per; ++j) {
      long i = kThreads * per + j;
      mine.push_back(
          spindle::spawn([i, &ran, &grandchildren] { return storm_body(i, ran, grandchildren); }));
    }
    batches[kThreads].set_result(std::move(mine));
    long s = 0;
    for (auto& b : batches) {
      for (auto& t : b.get()) {
        s += t.get();
      }
    }
    return s;
  });
  for (auto& t : threads) {
    t.join();
  }
  long s = await_bounded<long>(rt(), joiner, "MixedSpawnersOneJoiner", kHang);
  EXPECT_EQ(s, n * (n - 1) / 2);
  EXPECT_EQ(count_not_once(ran), 0);
}

// ---------------------------------------------------------------------------
// Fork-join (skynet): 10-ary, 100k leaves, with random yields in leaves so
// that real suspensions mix with children run inline by their parents.
// ---------------------------------------------------------------------------

class ForkJoin : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(ForkJoin);

struct Sky {
  std::atomic<long> leaves{0};
  std::uint64_t salt = 0;
  unsigned yield_one_in = 8;
  bool interior_yields = false;

  long run(long num, long size) {
    if (size == 1) {
      leaves.fetch_add(1, std::memory_order_relaxed);
      const std::uint64_t h = mix(static_cast<std::uint64_t>(num) ^ salt);
      if (h % yield_one_in == 0) {
        spindle::yield();
        if (h % (yield_one_in * 64) == 0) {
          spindle::sleep(std::chrono::microseconds(h % 200));
        }
      }
      return num;
    }
    std::vector<spindle::Task<long>> kids;
    kids.reserve(10);
    const long sub = size / 10;
    for (long i = 0; i < 10; ++i) {
      kids.push_back(spindle::spawn([this, num, i, sub] { return run(num + i * sub, sub); }));
    }
    if (interior_yields && mix(static_cast<std::uint64_t>(num) ^ salt ^ 0x55) % 5 == 0) {
      spindle::yield();  // let thieves start some of the children
    }
    long s = 0;
    for (auto& k : kids) {
      s += k.get();
    }
    return s;
  }
};

TEST_P(ForkJoin, SkynetRepeatedWithRandomYields) {
  const long reps = std::max(1L, scaled(6));
  for (long r = 0; r < reps; ++r) {
    Sky sky;
    sky.salt = mix(r + 1000);
    sky.yield_one_in = (r % 3 == 0) ? 2 : (r % 3 == 1) ? 8 : 64;
    sky.interior_yields = r % 2 == 1;
    // 100k leaves; 10k when scaled down (sanitizers), where every yielding
    // leaf's fresh fiber is expensive.
    const long size = spindle::testing::stress_scale() >= 1 ? 100000 : 10000;
    auto main = rt().spawn([&sky, size] { return sky.run(0, size); });
    long v = await_bounded<long>(rt(), main, "Skynet", kHang);
    EXPECT_EQ(v, size * (size - 1) / 2) << "rep " << r;
    EXPECT_EQ(sky.leaves.load(), size) << "rep " << r;
  }
  auto st = rt().stats();
  std::printf("  [Skynet w%u] started=%llu inline=%llu stolen=%llu\n", workers(),
              static_cast<unsigned long long>(st.total.started),
              static_cast<unsigned long long>(st.total.inline_runs),
              static_cast<unsigned long long>(st.total.stolen));
}

// Several skynets at once, started from plain threads.
TEST_P(ForkJoin, ConcurrentSkynetsFromThreads) {
  constexpr int kTrees = 3;
  const long size = scaled(4) >= 4 ? 100000 : 10000;
  std::vector<std::unique_ptr<Sky>> skies;
  std::vector<spindle::Task<long>> roots;
  for (int k = 0; k < kTrees; ++k) {
    skies.push_back(std::make_unique<Sky>());
    skies.back()->salt = mix(k + 77);
    skies.back()->yield_one_in = 4;
    skies.back()->interior_yields = k % 2 == 0;
  }
  std::vector<std::thread> th;
  std::vector<long> got(kTrees, -1);
  for (int k = 0; k < kTrees; ++k) {
    th.emplace_back([&, k] {
      Sky* s = skies[k].get();
      auto root = rt().spawn([s, size] { return s->run(0, size); });
      got[k] = await_bounded<long>(rt(), root, "ConcurrentSkynetsFromThreads tree", kHang);
    });
  }
  for (auto& t : th) {
    t.join();
  }
  for (int k = 0; k < kTrees; ++k) {
    EXPECT_EQ(got[k], size * (size - 1) / 2) << "tree " << k;
    EXPECT_EQ(skies[k]->leaves.load(), size) << "tree " << k;
  }
}

}  // namespace

namespace {

// More workers than CPUs: a thief is often preempted in the middle of a
// steal, which pins its victim's ring slots (the steal cursor) while the
// victim keeps popping. Spawners flood their queues past the ring into the
// overflow list, yield (so their worker serves the queue: refills from the
// overflow while thieves steal from both), then join.
TEST(SpawnStormOversubscribed, OverflowRefillWithPreemptedThieves) {
  spindle::Options o;
  o.workers = 8;
  spindle::Runtime rt(o);
  // CPU hogs outside the runtime make preemption of workers (and of
  // thieves in mid-steal) frequent.
  std::atomic<bool> stop_noise{false};
  std::vector<std::thread> noise;
  for (int k = 0; k < 2; ++k) {
    noise.emplace_back([&stop_noise] {
      while (!stop_noise.load(std::memory_order_relaxed)) {
        volatile long x = 0;
        for (int i = 0; i < 20000; ++i) {
          x = x + i;
        }
      }
    });
  }
  struct Joiner {
    std::atomic<bool>& stop;
    std::vector<std::thread>& th;
    ~Joiner() {
      stop.store(true);
      for (auto& t : th) {
        t.join();
      }
    }
  } joiner{stop_noise, noise};
  const long rounds = std::max(1L, scaled(50));
  constexpr long kSpawners = 6;
  constexpr long kChildren = 1500;
  for (long r = 0; r < rounds; ++r) {
    std::vector<spindle::Task<long>> spawners;
    for (long s = 0; s < kSpawners; ++s) {
      spawners.push_back(rt.spawn([r, s] {
        std::vector<spindle::Task<long>> kids;
        kids.reserve(kChildren);
        for (long i = 0; i < kChildren; ++i) {
          kids.push_back(spindle::spawn([i, r, s] {
            if (mix(i ^ (r << 20) ^ (s << 40)) % 3 == 0) {
              spindle::yield();
            }
            return i;
          }));
        }
        spindle::yield();
        long sum = 0;
        for (long i = kChildren - 1; i >= 0; --i) {
          sum += kids[i].get();
        }
        return sum;
      }));
    }
    for (auto& sp : spawners) {
      EXPECT_EQ(await_bounded<long>(rt, sp, "OverflowRefillWithPreemptedThieves", kHang),
                kChildren * (kChildren - 1) / 2);
    }
  }
}

}  // namespace
