// Stress: cross-thread wake races on futures.
//
// Conservation everywhere: every value set is received exactly once, every
// waiter wakes, nothing hangs (hangs turn into an abort with a task dump).
//   - task <-> task ping-pong on fresh futures (tasks migrate between workers)
//   - plain threads set, tasks get; tasks set, plain threads get
//   - plain thread <-> task ping-pong (both sides block)
//   - 8 plain threads race to complete each future (set_result,
//     set_exception, cancel): exactly one wins, the others get
//     InvalidStateError / false, and the waiting task sees the winner
//   - add_done_callback racing set_result: each callback runs exactly once
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "polling.hpp"
#include "runtime_fixture.hpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using spindle::stress::await_bounded;
using spindle::stress::mix;
using spindle::testing::eventually;
using spindle::testing::RuntimeTest;
using spindle::testing::scaled;

namespace {

constexpr auto kHang = 60s;

class WakeRace : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(WakeRace);

// Pairs of tasks ping-pong over fresh futures; with several pairs on several
// workers, tasks are stolen and woken across threads.
TEST_P(WakeRace, TaskTaskPingPong) {
  const long lanes = 4;
  const long per = std::max(1L, scaled(100000) / lanes / 2);  // 2 set/get per round
  std::atomic<long> received{0};
  auto main = rt().spawn([&] {
    std::vector<spindle::Task<long>> ts;
    for (long lane = 0; lane < lanes; ++lane) {
      auto req = std::make_shared<std::vector<spindle::Future<long>>>(per);
      auto resp = std::make_shared<std::vector<spindle::Future<long>>>(per);
      ts.push_back(spindle::spawn([req, resp, per, lane, &received] {
        long sum = 0;
        for (long i = 0; i < per; ++i) {
          // Set through a handle of our own: the partner drops its slot as
          // soon as get() returns, which may be before set_result() has
          // finished with the future.
          spindle::Future<long>((*req)[i]).set_result(i);
          sum += (*resp)[i].get();
          received.fetch_add(1, std::memory_order_relaxed);
          (*resp)[i] = spindle::Future<long>();  // drop early
          if (mix(lane * 1000003 + i) % 61 == 0) {
            spindle::yield();
          }
        }
        return sum;
      }));
      ts.push_back(spindle::spawn([req, resp, per, lane, &received] {
        long sum = 0;
        for (long i = 0; i < per; ++i) {
          long v = (*req)[i].get();
          received.fetch_add(1, std::memory_order_relaxed);
          sum += v;
          spindle::Future<long>((*resp)[i]).set_result(2 * v + 1);  // as above
          (*req)[i] = spindle::Future<long>();
          if (mix(lane * 7919 + i) % 53 == 0) {
            // A little CPU work so that an idle worker steals the partner.
            volatile long spin = 0;
            for (int k = 0; k < 2000; ++k) {
              spin = spin + k;
            }
          }
        }
        return sum;
      }));
    }
    std::vector<long> sums;
    for (auto& t : ts) {
      sums.push_back(t.get());
    }
    return sums;
  });
  std::vector<long> sums = await_bounded<std::vector<long>>(rt(), main, "TaskTaskPingPong", kHang);
  const long expect_pong = per * (per - 1) / 2;
  const long expect_ping = 2 * expect_pong + per;
  for (long lane = 0; lane < lanes; ++lane) {
    EXPECT_EQ(sums[2 * lane], expect_ping) << "lane " << lane;
    EXPECT_EQ(sums[2 * lane + 1], expect_pong) << "lane " << lane;
  }
  EXPECT_EQ(received.load(), 2 * lanes * per);
}

// Two plain threads complete futures that tasks are (mostly) already
// suspended on: every wake comes from outside the runtime.
TEST_P(WakeRace, ThreadSetsTaskGets) {
  const long n = scaled(100000);
  const long consumers = 8;
  std::vector<spindle::Future<long>> fs(n);
  std::vector<std::atomic<int>> seen(n);
  std::vector<spindle::Task<long>> ts;
  for (long c = 0; c < consumers; ++c) {
    ts.push_back(rt().spawn([&fs, &seen, c, n] {
      long sum = 0;
      for (long i = c; i < n; i += consumers) {
        long v = fs[i].get();
        seen[v].fetch_add(1, std::memory_order_relaxed);
        sum += v;
      }
      return sum;
    }));
  }
  std::vector<std::thread> setters;
  for (long s = 0; s < 2; ++s) {
    setters.emplace_back([&fs, s, n] {
      for (long i = s; i < n; i += 2) {
        fs[i].set_result(i);
        if (mix(i) % 97 == 0) {
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : setters) {
    t.join();
  }
  long total = 0;
  for (auto& t : ts) {
    total += await_bounded<long>(rt(), t, "ThreadSetsTaskGets consumer", kHang);
  }
  EXPECT_EQ(total, n * (n - 1) / 2);
  long bad = 0;
  for (long i = 0; i < n; ++i) {
    bad += seen[i].load() != 1;
  }
  EXPECT_EQ(bad, 0) << "values not received exactly once";
}

// Tasks complete futures that two plain threads block on (futex wakes from
// workers).
TEST_P(WakeRace, TaskSetsThreadGets) {
  const long n = scaled(100000);
  const long producers = 4;
  std::vector<spindle::Future<long>> fs(n);
  std::vector<spindle::Task<void>> ts;
  for (long p = 0; p < producers; ++p) {
    ts.push_back(rt().spawn([&fs, p, n] {
      for (long i = p; i < n; i += producers) {
        fs[i].set_result(i);
        if (mix(i * 3 + 1) % 31 == 0) {
          spindle::yield();
        }
      }
    }));
  }
  std::atomic<long> total{0};
  std::atomic<long> count{0};
  std::atomic<long> hung{-1};
  std::vector<std::thread> getters;
  for (long g = 0; g < 2; ++g) {
    getters.emplace_back([&, g] {
      long sum = 0, cnt = 0;
      for (long i = g; i < n; i += 2) {
        if (!fs[i].wait_for(kHang)) {
          hung.store(i);
          return;
        }
        sum += fs[i].get();
        ++cnt;
      }
      total.fetch_add(sum);
      count.fetch_add(cnt);
    });
  }
  for (auto& t : getters) {
    t.join();
  }
  ASSERT_EQ(hung.load(), -1) << "a plain thread never woke for future " << hung.load();
  for (auto& t : ts) {
    await_bounded<void>(rt(), t, "TaskSetsThreadGets producer", kHang);
  }
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(total.load(), n * (n - 1) / 2);
}

// A plain thread and a task ping-pong: the thread blocks in futex_wait, the
// task suspends; each side wakes the other every round.
TEST_P(WakeRace, ThreadTaskPingPong) {
  const long pairs = 2;
  const long rounds = std::max(1L, scaled(20000) / pairs);
  std::vector<std::thread> threads;
  std::vector<spindle::Task<long>> tasks;
  std::atomic<long> thread_sum{0};
  std::atomic<long> hung{0};
  for (long p = 0; p < pairs; ++p) {
    auto req = std::make_shared<std::vector<spindle::Future<long>>>(rounds);
    auto resp = std::make_shared<std::vector<spindle::Future<long>>>(rounds);
    tasks.push_back(rt().spawn([req, resp, rounds] {
      long sum = 0;
      for (long i = 0; i < rounds; ++i) {
        long v = (*req)[i].get();
        sum += v;
        (*resp)[i].set_result(v + 1);
      }
      return sum;
    }));
    threads.emplace_back([req, resp, rounds, &thread_sum, &hung] {
      long sum = 0;
      for (long i = 0; i < rounds; ++i) {
        (*req)[i].set_result(i);
        if (i % 2 == 0) {
          sum += (*resp)[i].get();  // a blocking get
        } else {
          if (!(*resp)[i].wait_for(kHang)) {
            hung.fetch_add(1);
            return;
          }
          sum += (*resp)[i].result();
        }
      }
      thread_sum.fetch_add(sum);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  ASSERT_EQ(hung.load(), 0);
  long task_sum = 0;
  for (auto& t : tasks) {
    task_sum += await_bounded<long>(rt(), t, "ThreadTaskPingPong task", kHang);
  }
  const long base = rounds * (rounds - 1) / 2;
  EXPECT_EQ(task_sum, pairs * base);
  EXPECT_EQ(thread_sum.load(), pairs * (base + rounds));
}

// Eight plain threads race to complete the same futures (set_result,
// set_exception or cancel) while tasks wait on them: exactly one completer
// wins each future, the losers are told so, and the waiter sees the winner.
TEST_P(WakeRace, ManyThreadsRaceToComplete) {
  constexpr int kThreads = 8;
  constexpr long kBatch = 256;
  const long batches = std::max(1L, scaled(20000) / kBatch);

  struct Slot {
    spindle::Future<int> f;
    std::atomic<int> wins{0};
    std::atomic<int> winner{-1};
    std::atomic<int> losers{0};
  };
  std::vector<Slot> slots(kBatch);
  std::barrier sync(kThreads + 1);
  std::atomic<bool> quit{false};
  std::atomic<long> wrong_loss{0};

  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      for (;;) {
        sync.arrive_and_wait();  // batch ready
        if (quit.load()) {
          return;
        }
        // Start at different offsets now and then so that threads meet.
        for (long j = 0; j < kBatch; ++j) {
          Slot& s = slots[j];
          bool won = false;
          try {
            switch (k % 4) {
              case 0:
              case 1:
                s.f.set_result(k);
                won = true;
                break;
              case 2:
                s.f.set_exception(std::make_exception_ptr(std::runtime_error(std::to_string(k))));
                won = true;
                break;
              case 3:
                won = s.f.cancel(std::to_string(k));
                break;
            }
          } catch (const spindle::InvalidStateError&) {
            won = false;
          } catch (...) {
            wrong_loss.fetch_add(1);
          }
          if (won) {
            s.wins.fetch_add(1);
            s.winner.store(k);
          } else {
            s.losers.fetch_add(1);
          }
        }
        sync.arrive_and_wait();  // batch done
      }
    });
  }

  long mismatches = 0, bad_wins = 0;
  for (long b = 0; b < batches; ++b) {
    for (auto& s : slots) {
      s.f = spindle::Future<int>();
      s.wins.store(0);
      s.winner.store(-1);
      s.losers.store(0);
    }
    // Waiters: one task per future, decoding the outcome.
    std::vector<spindle::Task<int>> waiters;
    waiters.reserve(kBatch);
    for (long j = 0; j < kBatch; ++j) {
      spindle::Future<int> f = slots[j].f;
      waiters.push_back(rt().spawn([f]() mutable -> int {
        try {
          return f.get();
        } catch (const spindle::Cancelled& c) {
          return 100 + std::stoi(c.message());
        } catch (const std::runtime_error& e) {
          return 200 + std::stoi(e.what());
        }
      }));
    }
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    for (long j = 0; j < kBatch; ++j) {
      Slot& s = slots[j];
      int got = await_bounded<int>(rt(), waiters[j], "ManyThreadsRaceToComplete waiter", kHang);
      if (s.wins.load() != 1 || s.losers.load() != kThreads - 1) {
        ++bad_wins;
        continue;
      }
      int w = s.winner.load();
      int expect = (w % 4 == 3) ? 100 + w : (w % 4 == 2) ? 200 + w : w;
      mismatches += got != expect;
      // The future's own state agrees with the winner.
      if (w % 4 == 3) {
        mismatches += !s.f.cancelled();
      } else if (w % 4 == 2) {
        mismatches += s.f.exception() == nullptr;
      } else {
        mismatches += s.f.result() != w;
      }
    }
  }
  quit.store(true);
  sync.arrive_and_wait();
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(bad_wins, 0) << "a future was completed by zero or several threads";
  EXPECT_EQ(mismatches, 0) << "a waiter or the future disagrees with the winner";
  EXPECT_EQ(wrong_loss.load(), 0) << "a loser got an exception other than InvalidStateError";
}

// Done-callbacks registered by one thread while another completes the
// futures: each callback runs exactly once and sees the result.
TEST_P(WakeRace, DoneCallbacksRaceCompletion) {
  const long n = scaled(50000);
  std::vector<spindle::Future<long>> fs(n);
  std::vector<std::atomic<int>> runs(n);
  std::atomic<long> total_runs{0};
  std::atomic<long> wrong_value{0};
  std::thread adder([&] {
    for (long i = 0; i < n; ++i) {
      for (int k = 0; k < 2; ++k) {
        fs[i].add_done_callback([&, i](spindle::Future<long> g) {
          if (g.result() != i) {
            wrong_value.fetch_add(1);
          }
          runs[i].fetch_add(1, std::memory_order_relaxed);
          total_runs.fetch_add(1, std::memory_order_release);
        });
      }
    }
  });
  // A task completes half, a plain thread the other half.
  auto setter_task = rt().spawn([&] {
    for (long i = 0; i < n; i += 2) {
      fs[i].set_result(i);
      if (i % 512 == 0) {
        spindle::yield();
      }
    }
  });
  std::thread setter([&] {
    for (long i = 1; i < n; i += 2) {
      fs[i].set_result(i);
    }
  });
  adder.join();
  setter.join();
  await_bounded<void>(rt(), setter_task, "DoneCallbacksRaceCompletion setter", kHang);
  bool all = eventually([&] { return total_runs.load(std::memory_order_acquire) >= 2 * n; }, kHang);
  ASSERT_TRUE(all) << "only " << total_runs.load() << " of " << 2 * n << " callbacks ran";
  std::this_thread::sleep_for(10ms);  // would a callback run twice?
  long bad = 0;
  for (long i = 0; i < n; ++i) {
    bad += runs[i].load() != 2;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(total_runs.load(), 2 * n);
  EXPECT_EQ(wrong_value.load(), 0);
}

// A task waits with a timeout while a plain thread completes the future at
// about the same moment: the timer and the completion race to fire one
// waiter. Never early, never lost.
TEST_P(WakeRace, WaitForTimeoutRacesCompletion) {
  const long n = scaled(4000);
  constexpr long kBatch = 200;
  long early = 0, wrong = 0;
  for (long base = 0; base < n; base += kBatch) {
    const long m = std::min(kBatch, n - base);
    std::vector<spindle::Future<long>> fs(m);
    std::vector<spindle::Task<long>> ts;
    for (long j = 0; j < m; ++j) {
      spindle::Future<long> f = fs[j];
      const auto d = std::chrono::microseconds(1 + mix(base + j) % 300);
      ts.push_back(rt().spawn([f, d]() -> long {
        long timeouts = 0;
        for (;;) {
          auto t0 = std::chrono::steady_clock::now();
          bool ok = f.wait_for(d);
          auto el = std::chrono::steady_clock::now() - t0;
          if (ok) {
            if (!f.done()) {
              return -2;  // said done but is not
            }
            return f.result() * 1000 + std::min(timeouts, 999L);
          }
          if (el < d) {
            return -1;  // timed out early
          }
          ++timeouts;
        }
      }));
    }
    std::thread setter([&fs, m, base] {
      for (long j = 0; j < m; ++j) {
        std::this_thread::sleep_for(std::chrono::microseconds(mix(base + j + 77) % 200));
        fs[j].set_result(base + j);
      }
    });
    setter.join();
    for (long j = 0; j < m; ++j) {
      long r = await_bounded<long>(rt(), ts[j], "WaitForTimeoutRacesCompletion", kHang);
      if (r == -1) {
        ++early;
      } else if (r < 0 || r / 1000 != base + j) {
        ++wrong;
      }
    }
  }
  EXPECT_EQ(early, 0) << "wait_for returned false before its timeout";
  EXPECT_EQ(wrong, 0);
}

}  // namespace
