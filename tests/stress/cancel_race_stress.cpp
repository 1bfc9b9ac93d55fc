// Stress: cancel() racing with completion.
//
// Every task ends in exactly one of {result, cancelled}; a cancelled task's
// get() throws Cancelled with the message; cancel() returns false only for a
// task that was already done, and cancelling() counts the true returns; the
// future a task awaited ends in a state consistent with the task's outcome.
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
using spindle::stress::mix;
using spindle::stress::spin_for;
using spindle::stress::wait_bounded;
using spindle::testing::RuntimeTest;
using spindle::testing::scaled;

namespace {

constexpr auto kHang = 60s;

enum class Outcome { kResult, kCancelled, kOther };

template <class T>
Outcome outcome_of(spindle::Task<T>& t, T expect, const std::string& msg, long* wrong) {
  try {
    T v = t.get();
    if (v != expect) {
      ++*wrong;
    }
    if (t.cancelled()) {
      ++*wrong;
    }
    return Outcome::kResult;
  } catch (const spindle::Cancelled& c) {
    if (c.message() != msg || !t.cancelled()) {
      ++*wrong;
    }
    return Outcome::kCancelled;
  } catch (...) {
    return Outcome::kOther;
  }
}

class CancelRace : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(CancelRace);

// Tasks finish their bodies while a plain thread and a task cancel them.
// A body that started and reached no suspension point must end with its
// result (the request lapses); one that yields may end either way.
TEST_P(CancelRace, CancelRacesBodyCompletion) {
  constexpr long kBatch = 512;
  const long batches = std::max(1L, scaled(100000) / kBatch);
  long wrong = 0, other = 0, lapse_violations = 0, cancel_false_not_done = 0, count_mismatch = 0,
       cancelled_n = 0, result_n = 0;
  for (long b = 0; b < batches; ++b) {
    std::vector<std::atomic<int>> started(kBatch);
    std::vector<std::atomic<int>> trues(kBatch);
    std::vector<spindle::Task<long>> ts;
    ts.reserve(kBatch);
    for (long j = 0; j < kBatch; ++j) {
      const std::uint64_t h = mix(b * kBatch + j);
      ts.push_back(rt().spawn([&started, j, h]() -> long {
        started[j].store(1, std::memory_order_relaxed);
        spin_for(h % 400);
        if (h % 4 == 0) {
          spindle::yield();
        }
        if (h % 16 == 1) {
          spindle::sleep(std::chrono::microseconds(h % 50));
        }
        return j;
      }));
    }
    auto canceller = [&](long from, long step) {
      for (long j = from; j < kBatch; j += step) {
        bool was_done = ts[j].done();
        bool r = ts[j].cancel("c");
        if (r) {
          trues[j].fetch_add(1);
        }
        if (was_done && r) {
          ++cancel_false_not_done;  // cancel() true on a done task (single writer per j)
        }
        if (!r && !ts[j].done()) {
          ++cancel_false_not_done;
        }
      }
    };
    // One plain thread cancels even slots; a task cancels odd slots, and
    // also every slot a second time from the other end.
    std::thread th([&] { canceller(0, 2); });
    auto ct = rt().spawn([&] {
      for (long j = 1; j < kBatch; j += 2) {
        bool r = ts[j].cancel("c");
        if (r) {
          trues[j].fetch_add(1);
        }
      }
      for (long j = kBatch - 2; j >= 0; j -= 2) {
        if (mix(j + b) % 3 == 0) {
          bool r = ts[j].cancel("c");
          if (r) {
            trues[j].fetch_add(1);
          }
        }
      }
    });
    th.join();
    wait_bounded(rt(), ct, "CancelRacesBodyCompletion canceller task", kHang);
    ct.get();
    for (long j = 0; j < kBatch; ++j) {
      wait_bounded(rt(), ts[j], "CancelRacesBodyCompletion task", kHang);
      Outcome o = outcome_of<long>(ts[j], j, "c", &wrong);
      const std::uint64_t h = mix(b * kBatch + j);
      const bool suspends = (h % 4 == 0) || (h % 16 == 1);
      if (o == Outcome::kOther) {
        ++other;
      } else if (o == Outcome::kCancelled) {
        ++cancelled_n;
        if (trues[j].load() == 0) {
          ++wrong;  // cancelled although no cancel() succeeded
        }
        if (started[j].load() && !suspends) {
          ++lapse_violations;
        }
      } else {
        ++result_n;
      }
      if (ts[j].cancelling() != trues[j].load()) {
        ++count_mismatch;
      }
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(other, 0) << "a task ended with an exception other than Cancelled";
  EXPECT_EQ(lapse_violations, 0)
      << "a started task with no suspension point was cancelled instead of returning";
  EXPECT_EQ(cancel_false_not_done, 0) << "cancel() result inconsistent with done()";
  EXPECT_EQ(count_mismatch, 0) << "cancelling() != number of successful cancel() calls";
  std::printf("  [CancelRacesBodyCompletion] results=%ld cancelled=%ld\n", result_n, cancelled_n);
}

// Tasks await plain futures; one plain thread completes them while another
// cancels the tasks. Exactly one of {setter, cancel} completes each future;
// a cancelled future means a cancelled task; a task that returned got the
// setter's value; a task cancelled in get() either cancelled its future or
// lost the race to the setter (the future keeps its value).
TEST_P(CancelRace, CancelRacesAwaitedFutureSet) {
  constexpr long kBatch = 512;
  const long batches = std::max(1L, scaled(60000) / kBatch);
  long wrong = 0, other = 0, inconsistent = 0, cancel_false_not_done = 0, count_mismatch = 0;
  long n_cancelled = 0, n_result = 0, n_cancelled_waiting = 0, n_cancelled_raced_result = 0;
  for (long b = 0; b < batches; ++b) {
    std::vector<spindle::Future<long>> fs(kBatch);
    std::vector<std::atomic<int>> started(kBatch);
    std::vector<std::atomic<int>> set_ok(kBatch);
    std::vector<int> cancel_true(kBatch, 0);
    std::vector<spindle::Task<long>> ts;
    ts.reserve(kBatch);
    // Mode 0: get(); mode 1: wait_for(long) then result() (never cancels
    // the future); mode 2: awaits via a child task that awaits the future.
    auto mode_of = [b](long j) { return static_cast<int>(mix(b * 7 + j) % 3); };
    for (long j = 0; j < kBatch; ++j) {
      spindle::Future<long> f = fs[j];
      int mode = mode_of(j);
      ts.push_back(rt().spawn([f, mode, &started, j]() mutable -> long {
        started[j].store(1);
        if (mode == 0) {
          return f.get();
        }
        if (mode == 1) {
          if (!f.wait_for(1h)) {
            return -1;
          }
          return f.result();
        }
        auto child = spindle::spawn([f]() mutable { return f.get(); });
        return child.get();
      }));
    }
    if (b % 2 == 1) {
      // Half the batches: let the tasks reach their waits first.
      auto until = std::chrono::steady_clock::now() + 2s;
      for (long j = 0; j < kBatch && std::chrono::steady_clock::now() < until; ++j) {
        while (!started[j].load() && std::chrono::steady_clock::now() < until) {
          std::this_thread::yield();
        }
      }
    }
    std::atomic<int> ready{0};
    std::thread setter([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      for (long j = 0; j < kBatch; ++j) {
        try {
          fs[j].set_result(j);
          set_ok[j].store(1);
        } catch (const spindle::InvalidStateError&) {
        }
      }
    });
    std::thread canceller([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      for (long j = 0; j < kBatch; ++j) {
        bool was_done = ts[j].done();
        bool r = ts[j].cancel("x");
        cancel_true[j] = r;
        if ((was_done && r) || (!r && !ts[j].done())) {
          ++cancel_false_not_done;
        }
      }
    });
    setter.join();
    canceller.join();
    for (long j = 0; j < kBatch; ++j) {
      wait_bounded(rt(), ts[j], "CancelRacesAwaitedFutureSet task", kHang);
      Outcome o = outcome_of<long>(ts[j], j, "x", &wrong);
      const int mode = mode_of(j);
      const bool fut_done = fs[j].done();
      const bool fut_cancelled = fs[j].cancelled();
      const char* why = nullptr;
      if (!fut_done) {
        why = "nobody completed the future";
      } else if (set_ok[j].load() == fut_cancelled) {
        why = "not exactly one of {setter, cancel} completed the future";
      } else if (o == Outcome::kOther) {
        ++other;
        continue;
      } else if (o == Outcome::kCancelled) {
        ++n_cancelled;
        n_cancelled_waiting += started[j].load();
        if (!cancel_true[j]) {
          why = "task cancelled but cancel() returned false";
        } else if (mode == 0 && started[j].load() && !fut_cancelled) {
          // The cancel found the future already claimed by the setter and
          // woke the task before the value was published: the task ends
          // cancelled and the future keeps its result (asyncio does the same
          // when _must_cancel is set as the awaited future completes).
          ++n_cancelled_raced_result;
        } else if (mode == 1 && fut_cancelled) {
          why = "wait_for() cancelled the future";
        }
      } else {
        ++n_result;
        if (fut_cancelled || !set_ok[j].load()) {
          why = "task returned a result but the setter did not win";
        }
      }
      if (why == nullptr && fut_cancelled && o != Outcome::kCancelled) {
        why = "future cancelled but the task was not";
      }
      if (why != nullptr) {
        if (++inconsistent <= 5) {
          ADD_FAILURE() << why << ": batch " << b << " task " << j << " mode " << mode
                        << " started=" << started[j].load() << " set_ok=" << set_ok[j].load()
                        << " cancel()=" << cancel_true[j] << " task=" << ts[j].repr()
                        << " future=" << fs[j].repr();
        }
      }
      if (ts[j].cancelling() != cancel_true[j]) {
        ++count_mismatch;
      }
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(inconsistent, 0) << "task outcome, future state and setter disagree";
  EXPECT_EQ(cancel_false_not_done, 0);
  EXPECT_EQ(count_mismatch, 0);
  std::printf(
      "  [CancelRacesAwaitedFutureSet] results=%ld cancelled=%ld (after starting: %ld; while "
      "the future got its result: %ld)\n",
      n_result, n_cancelled, n_cancelled_waiting, n_cancelled_raced_result);
}

// A parent spawns a child and awaits it (often inline, sometimes after the
// child started elsewhere) while the parent is cancelled: the child ends
// cancelled iff the parent does.
TEST_P(CancelRace, CancelRacesAwaitedTask) {
  constexpr long kBatch = 512;
  const long batches = std::max(1L, scaled(60000) / kBatch);
  long wrong = 0, other = 0, inconsistent = 0, no_child = 0, both_cancelled = 0, both_result = 0;
  for (long b = 0; b < batches; ++b) {
    std::vector<spindle::Task<long>> children(kBatch);
    std::vector<std::atomic<int>> has_child(kBatch);
    std::vector<spindle::Task<long>> parents;
    parents.reserve(kBatch);
    for (long j = 0; j < kBatch; ++j) {
      const std::uint64_t h = mix(b * 131 + j);
      parents.push_back(rt().spawn([&children, &has_child, j, h]() -> long {
        auto c = spindle::spawn([j, h]() -> long {
          spin_for(h % 300);
          if (h % 3 == 0) {
            spindle::yield();
          }
          if (h % 7 == 0) {
            spindle::sleep(std::chrono::microseconds(h % 200));
          }
          return j;
        });
        children[j] = c;  // published before any suspension point
        has_child[j].store(1, std::memory_order_release);
        if (h % 5 == 0) {
          spin_for(200);  // give a thief time to start the child first
        }
        return c.get();
      }));
    }
    std::thread canceller([&] {
      for (long j = 0; j < kBatch; ++j) {
        // Lag behind the workers by a varying amount so that cancels land
        // before, during and after the parents' waits.
        spin_for(mix(b + j * 3) % (b % 2 == 0 ? 500 : 5000));
        parents[j].cancel("p");
      }
    });
    canceller.join();
    for (long j = 0; j < kBatch; ++j) {
      wait_bounded(rt(), parents[j], "CancelRacesAwaitedTask parent", kHang);
      Outcome po = outcome_of<long>(parents[j], j, "p", &wrong);
      if (po == Outcome::kOther) {
        ++other;
        continue;
      }
      if (!has_child[j].load(std::memory_order_acquire)) {
        ++no_child;
        if (po != Outcome::kCancelled) {
          ++inconsistent;  // returned without running its body?
        }
        continue;
      }
      wait_bounded(rt(), children[j], "CancelRacesAwaitedTask child", kHang);
      long w2 = 0;
      Outcome co = outcome_of<long>(children[j], j, "p", &w2);
      wrong += w2;
      if (co == Outcome::kOther) {
        ++other;
        continue;
      }
      if (co != po) {
        ++inconsistent;
      }
      both_cancelled += co == Outcome::kCancelled && po == Outcome::kCancelled;
      both_result += co == Outcome::kResult && po == Outcome::kResult;
    }
    for (auto& c : children) {
      c = spindle::Task<long>();
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(inconsistent, 0) << "parent and awaited child outcomes disagree";
  std::printf(
      "  [CancelRacesAwaitedTask] cancelled before start=%ld, both cancelled=%ld, both "
      "returned=%ld\n",
      no_child, both_cancelled, both_result);
}

// Many threads cancel one task over and over while it keeps swallowing the
// cancellation and going back to sleep: no request is lost or counted twice,
// and the task always wakes.
TEST_P(CancelRace, ConcurrentCancellersOfOneSleeper) {
  const long rounds = std::max(1L, scaled(150));
  constexpr int kCancellers = 4;
  const long per_thread = 50;
  long count_mismatch = 0, never_caught = 0;
  for (long r = 0; r < rounds; ++r) {
    std::atomic<bool> stop{false};
    std::atomic<long> caught{0};
    std::atomic<bool> running{false};
    auto t = rt().spawn([&stop, &caught, &running]() -> long {
      running.store(true);
      for (;;) {
        try {
          spindle::sleep(1h);
        } catch (const spindle::Cancelled&) {
          caught.fetch_add(1);
          if (stop.load()) {
            return caught.load();
          }
        }
      }
    });
    // A task cancelled before it starts never runs its body: wait for it.
    auto until = std::chrono::steady_clock::now() + kHang;
    while (!running.load()) {
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "sleeper never started";
      std::this_thread::yield();
    }
    std::atomic<long> trues{0};
    std::vector<std::thread> th;
    for (int k = 0; k < kCancellers; ++k) {
      th.emplace_back([&] {
        for (long i = 0; i < per_thread; ++i) {
          if (t.cancel("again")) {
            trues.fetch_add(1);
          }
          if (i % 8 == 0) {
            std::this_thread::yield();
          }
        }
      });
    }
    for (auto& x : th) {
      x.join();
    }
    stop.store(true);
    if (t.cancel("last")) {
      trues.fetch_add(1);
    }
    wait_bounded(rt(), t, "ConcurrentCancellersOfOneSleeper", kHang);
    long got = t.get();
    if (got < 1) {
      ++never_caught;
    }
    if (t.cancelling() != trues.load()) {
      ++count_mismatch;
    }
    EXPECT_LE(got, trues.load());
  }
  EXPECT_EQ(count_mismatch, 0);
  EXPECT_EQ(never_caught, 0);
}

// A chain of tasks, each awaiting the next, the last one sleeping a random
// short time: cancelling the head races with the tail finishing. The whole
// chain ends one way: the tail's result propagated, or everything at and
// above the point the cancellation reached is cancelled.
TEST_P(CancelRace, CancelChainRacesTailCompletion) {
  const long rounds = std::max(1L, scaled(3000));
  constexpr int kDepth = 5;
  long inconsistent = 0, other = 0, n_cancel = 0;
  for (long r = 0; r < rounds; ++r) {
    const std::uint64_t h = mix(r);
    auto links = std::make_shared<std::vector<spindle::TaskRef>>(kDepth);
    std::function<long(int)> level = [&, links, h](int d) -> long {
      if (d == kDepth - 1) {
        spindle::sleep(std::chrono::microseconds(h % 100));
        return 7;
      }
      auto next = spindle::spawn([&level, d] { return level(d + 1) + 1; });
      (*links)[d + 1] = next;
      return next.get();
    };
    auto head = rt().spawn([&level] { return level(0); });
    (*links)[0] = head;
    std::this_thread::sleep_for(std::chrono::microseconds(mix(r + 1) % 120));
    head.cancel("chain");
    wait_bounded(rt(), head, "CancelChainRacesTailCompletion head", kHang);
    long w = 0;
    Outcome o = outcome_of<long>(head, 7 + kDepth - 1, "chain", &w);
    if (o == Outcome::kOther || w != 0) {
      ++other;
      continue;
    }
    n_cancel += o == Outcome::kCancelled;
    // Outcomes must be monotone down the chain: once a level returned its
    // result, every level above it that awaited it returns too.
    bool below_result = false;
    for (int d = kDepth - 1; d >= 0; --d) {
      spindle::TaskRef& t = (*links)[d];
      if (!t.valid()) {
        continue;  // never spawned (an ancestor was cancelled first)
      }
      wait_bounded(rt(), t, "CancelChainRacesTailCompletion link", kHang);
      if (below_result && t.cancelled()) {
        ++inconsistent;
      }
      below_result = !t.cancelled();
    }
  }
  EXPECT_EQ(other, 0);
  EXPECT_EQ(inconsistent, 0) << "a task was cancelled although the task it awaited returned";
  std::printf("  [CancelChainRacesTailCompletion] cancelled heads=%ld of %ld\n", n_cancel, rounds);
}

}  // namespace
