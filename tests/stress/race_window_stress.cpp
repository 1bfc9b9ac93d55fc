// Races whose windows are a few instructions wide, held open with the
// schedule-perturbation hooks (runtime/perturb.hpp): each test forces a
// sleep at one decision point, so the interleaving that used to break the
// runtime happens on nearly every run, and asserts what must hold then.
//
//   - a plain thread that wakes a task must not touch the runtime after the
//     task's completion let the runtime be destroyed (Scheduler INV-S2);
//   - a call_later callback that fires while shutdown runs is either awaited
//     by shutdown or dropped, never left behind (INV-S1, registry INV-R2);
//   - a timer whose owner computes without suspending still fires while
//     another worker is idle (timer.hpp INV-TK1..TK3).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <spindle/spindle.hpp>

#include "leftovers.hpp"
#include "perturb.hpp"
#include "runtime_fixture.hpp"
#include "scheduler.hpp"
#include "timer.hpp"
#include "worker.hpp"

using namespace std::chrono_literals;
using spindle::detail::perturb::Point;
using spindle::testing::scaled;

namespace {

// Holds `p` open (every pass sleeps `us`) for the scope.
class Forced {
 public:
  Forced(Point p, unsigned us) : p_(p), before_(spindle::detail::perturb::passes(p)) {
    spindle::detail::perturb::force(p, us);
  }
  ~Forced() { spindle::detail::perturb::force(p_, 0); }
  std::uint64_t passes() const { return spindle::detail::perturb::passes(p_) - before_; }

 private:
  Point p_;
  std::uint64_t before_;
};

spindle::Options workers(unsigned n) {
  spindle::Options o;
  o.workers = n;
  o.slow_task_warning = std::chrono::milliseconds(0);  // the tests hog workers on purpose
  return o;
}

// Called from a task of a two-worker runtime: spins (never suspends) until
// the worker not running this task is parked with no wake-up time.
void await_other_worker_parked_without_deadline() {
  spindle::detail::Worker* self = spindle::detail::Worker::current();
  spindle::detail::Scheduler& sched = self->scheduler();
  spindle::detail::Worker& other = sched.worker(self->index() == 0 ? 1 : 0);
  const auto give_up = std::chrono::steady_clock::now() + 2s;
  while (other.parked_until() != spindle::detail::TimerWheel::kNever &&
         std::chrono::steady_clock::now() < give_up) {
  }
  ASSERT_EQ(other.parked_until(), spindle::detail::TimerWheel::kNever)
      << "the other worker never parked without a deadline";
  const auto settle = std::chrono::steady_clock::now() + 2ms;
  while (std::chrono::steady_clock::now() < settle) {
  }
}

}  // namespace

TEST(RaceWindow, PlainThreadWakerNeverTouchesAFreedRuntime) {
  // The producer makes block_on's main task runnable, then sleeps inside
  // submit_remote() before notify_work(). A ticking task keeps a worker
  // awake, so it finds the main task in the injection queue at once;
  // block_on returns and the runtime is destroyed while the producer is
  // still inside. Before INV-S2 this was a heap-use-after-free (ASan), and
  // a read of freed idle state elsewhere. The window is held 30 ms: a
  // loaded machine's shutdown outlasts a 3 ms one, and ASan then saw nothing.
  Forced window(Point::kSubmitRemote, 30000);
  for (long i = 0; i < scaled(10); ++i) {
    spindle::Future<int> answer;
    std::thread producer;
    {
      spindle::Runtime rt(workers(2));
      std::atomic<bool> stop{false};
      producer = std::thread([answer]() mutable {
        std::this_thread::sleep_for(2ms);
        answer.set_result(7);
      });
      int got = rt.block_on([&, answer]() mutable {
        auto ticker = spindle::spawn([&] {
          while (!stop.load(std::memory_order_relaxed)) {
            spindle::yield();
          }
        });
        int v = answer.get();
        stop.store(true, std::memory_order_relaxed);
        ticker.get();
        return v;
      });
      EXPECT_EQ(got, 7);
    }  // ~Runtime, with the producer possibly still in submit_remote()
    producer.join();
  }
  EXPECT_GT(window.passes(), 0u) << "the window was never reached";
}

TEST(RaceWindow, CallLaterFiringDuringShutdownIsAwaitedOrDropped) {
  // The callback's timer fires and its worker sleeps right after looking at
  // closed(); meanwhile shutdown closes and looks for live tasks. Before
  // INV-S1 the callback task was registered after shutdown's last look:
  // it outlived shutdown ("task(s) left unfinished") or ran after it.
  Forced window(Point::kTimerCallback, 3000);
  for (long i = 0; i < scaled(10); ++i) {
    std::atomic<int> started{0}, finished{0};
    spindle::Runtime rt(workers(2));
    spindle::testing::LeftoverCheck leftovers(rt);
    rt.call_later(1ms, [&] {
      started.fetch_add(1);
      struct Finish {
        std::atomic<int>& n;
        ~Finish() { n.fetch_add(1); }
      } finish{finished};
      spindle::sleep(5ms);
    });
    std::this_thread::sleep_for(2ms);  // the timer fires; its worker is in the window
    rt.shutdown();
    EXPECT_EQ(rt.stats().live_tasks, 0u) << "a task outlived shutdown";
    EXPECT_TRUE(leftovers.nothing_left());
    EXPECT_EQ(started.load(), finished.load()) << "a callback ran but never finished";
  }
  EXPECT_GT(window.passes(), 0u) << "the window was never reached";
}

TEST(RaceWindow, TimerFiresWhileItsOwnerComputes) {
  // A task arms a timer on its own worker and then computes without
  // suspending; the other worker is parked with no deadline. Before
  // INV-TK1 nobody kicked it, and the timer fired only when the computation
  // ended (a 10 ms timeout became the computation's length). The bound is
  // fifty times the timer's delay: a latency guarantee, not a speed test.
  spindle::Runtime rt(workers(2));
  for (int round = 0; round < 3; ++round) {
    rt.block_on([&] {
      spindle::sleep(30ms);
      // Without suspending, wait until the other worker is parked with no
      // deadline (and a little longer, so that it sleeps in the kernel): the
      // arm below is then the only thing that could wake it in time.
      await_other_worker_parked_without_deadline();
      const auto t0 = std::chrono::steady_clock::now();
      std::atomic<bool> fired{false};
      if (round == 1) {
        // The same through sleep(): a second task arms it and suspends.
        spindle::spawn([&] {
          spindle::sleep(10ms);
          fired.store(true);
        });
      } else {
        rt.call_later(10ms, [&] { fired.store(true); });
      }
      while (!fired.load() && std::chrono::steady_clock::now() - t0 < 1s) {
        // computes: never suspends
      }
      EXPECT_TRUE(fired.load()) << "round " << round << ": the timer starved behind its owner";
      EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms) << "round " << round;
    });
  }
}
