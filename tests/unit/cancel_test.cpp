// Cancellation semantics (DESIGN.md "Cancellation", "Cancellation timing",
// "Errors"): cancel(msg) from tasks and plain threads, propagation into the
// awaited future or task, cleanup that suspends and rethrows, uncancel(),
// cancelling before the first run, check_cancelled(), and what a request
// does when it arrives too late.
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "cancel_outcome.hpp"
#include "occupy_workers.hpp"
#include "polling.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::Future;
using spindle::Task;
using spindle::testing::cancelled_message;
using spindle::testing::OccupyOtherWorkers;
using spindle::testing::RuntimeTest;
using spindle::testing::spin_until;

static_assert(!std::is_base_of_v<std::exception, Cancelled>,
              "Cancelled must not derive from std::exception");

class CancelTest : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(CancelTest);

// ---------------------------------------------------------------------------
// Waking a sleeping task
// ---------------------------------------------------------------------------

TEST_P(CancelTest, CancelFromTaskWakesSleeperAtOnce) {
  rt().block_on([] {
    Future<void> sleeping;
    Future<std::string> seen;
    auto t = spindle::spawn([sleeping, seen]() mutable {
      sleeping.set_result();
      try {
        spindle::sleep(10s);
      } catch (const Cancelled& c) {
        seen.set_result(c.message());
        throw;
      }
      seen.set_result("<slept to the end>");
    });
    sleeping.get();
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(t.cancel("wake up"));
    ASSERT_TRUE(t.wait_for(5s)) << "cancel did not wake the sleeping task";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_TRUE(t.cancelled());
    EXPECT_EQ(seen.get(), "wake up");
    EXPECT_EQ(cancelled_message([&] { t.get(); }), "wake up");
    EXPECT_EQ(t.repr(), "<Task cancelled name='" + t.get_name() + "'>");
  });
}

TEST_P(CancelTest, CancelFromPlainThreadWakesSleeperAtOnce) {
  Future<void> sleeping;
  Future<std::string> seen;
  auto t = rt().spawn([sleeping, seen]() mutable {
    sleeping.set_result();
    try {
      spindle::sleep(10s);
    } catch (const Cancelled& c) {
      seen.set_result(c.message());
      throw;
    }
  });
  ASSERT_TRUE(sleeping.wait_for(5s));
  bool accepted = false;
  std::thread canceller([&] { accepted = t.cancel("from thread"); });
  canceller.join();
  EXPECT_TRUE(accepted);
  ASSERT_TRUE(t.wait_for(5s)) << "cancel from a plain thread did not wake the task";
  EXPECT_TRUE(t.cancelled());
  ASSERT_TRUE(seen.wait_for(5s));
  EXPECT_EQ(seen.result(), "from thread");
  EXPECT_EQ(cancelled_message([&] { t.result(); }), "from thread");
}

TEST_P(CancelTest, CancelViaTaskRefAndPlainThreadWaiterSeesCancelled) {
  auto t = rt().spawn([] { spindle::sleep(10s); }, "sleeper");
  std::string msg;
  std::thread waiter([&] { msg = cancelled_message([&] { t.get(); }); });
  std::vector<spindle::TaskRef> all = rt().all_tasks();
  bool cancelled_one = false;
  for (auto& r : all) {
    if (r.id() == t.id()) {
      cancelled_one = r.cancel("via ref");
    }
  }
  EXPECT_TRUE(cancelled_one);
  waiter.join();
  EXPECT_EQ(msg, "via ref");
}

// ---------------------------------------------------------------------------
// Propagation into what the task awaits
// ---------------------------------------------------------------------------

TEST_P(CancelTest, CancellingTaskBlockedOnFutureCancelsTheFuture) {
  Future<int> f;
  Future<void> about_to_wait;
  auto t = rt().spawn([f, about_to_wait]() mutable {
    about_to_wait.set_result();
    return f.get();
  });
  ASSERT_TRUE(about_to_wait.wait_for(5s));
  std::this_thread::sleep_for(2ms);  // most likely parked in get() by now
  EXPECT_TRUE(t.cancel("abandon"));
  ASSERT_TRUE(t.wait_for(5s));
  EXPECT_TRUE(t.cancelled());
  EXPECT_TRUE(f.cancelled()) << "the awaited future was not cancelled";
  EXPECT_EQ(cancelled_message([&] { f.result(); }), "abandon");
  EXPECT_EQ(cancelled_message([&] { t.result(); }), "abandon");
}

TEST_P(CancelTest, PendingRequestCancelsFutureWhenWaitStarts) {
  // The request arrives while the task runs without suspending; its next
  // wait is on a plain future, which gets the cancellation (DESIGN.md
  // "Cancellation timing").
  std::atomic<bool> started{false}, go{false};
  Future<int> f;
  auto t = rt().spawn([&, f]() mutable {
    started = true;
    spin_until(go);
    return f.get();
  });
  ASSERT_TRUE(spin_until(started));
  EXPECT_TRUE(t.cancel("early"));
  go = true;
  ASSERT_TRUE(t.wait_for(5s)) << "pending cancellation lost: task waits forever";
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(cancelled_message([&] { t.result(); }), "early");
}

TEST_P(CancelTest, CancellingOuterCancelsAwaitedInnerTask) {
  rt().block_on([] {
    std::atomic<bool> inner_cleanup{false};
    Future<void> outer_started, inner_sleeping;
    auto inner = spindle::spawn(
        [&] {
          try {
            inner_sleeping.set_result();
            spindle::sleep(10s);
          } catch (const Cancelled&) {
            inner_cleanup = true;
            throw;
          }
          return 1;
        },
        "inner");
    auto outer = spindle::spawn(
        [inner, outer_started]() mutable {
          outer_started.set_result();
          return inner.get();
        },
        "outer");
    // Both started (a task cancelled before it starts never runs, so it
    // would neither await nor clean up).
    outer_started.get();
    inner_sleeping.get();
    EXPECT_TRUE(outer.cancel("stop both"));
    EXPECT_EQ(cancelled_message([&] { outer.get(); }), "stop both");
    EXPECT_TRUE(outer.cancelled());
    ASSERT_TRUE(inner.wait_for(5s)) << "inner task was not cancelled";
    EXPECT_TRUE(inner.cancelled());
    EXPECT_TRUE(inner_cleanup.load());
    EXPECT_EQ(cancelled_message([&] { inner.result(); }), "stop both");
  });
}

TEST_P(CancelTest, CancellingOuterCancelsInnerChain) {
  // outer awaits middle awaits leaf; one cancel reaches all three.
  rt().block_on([] {
    Future<void> leaf_sleeping, middle_started, outer_started;
    auto leaf = spindle::spawn([leaf_sleeping]() mutable {
      leaf_sleeping.set_result();
      spindle::sleep(10s);
    });
    auto middle = spindle::spawn([leaf, middle_started]() mutable {
      middle_started.set_result();
      leaf.get();
    });
    auto outer = spindle::spawn([middle, outer_started]() mutable {
      outer_started.set_result();
      middle.get();
    });
    // All three started: each is awaiting, or about to await, the next one
    // (a pending request then cancels what it starts to await).
    leaf_sleeping.get();
    middle_started.get();
    outer_started.get();
    outer.cancel("chain");
    EXPECT_THROW(outer.get(), Cancelled);
    ASSERT_TRUE(leaf.wait_for(5s));
    ASSERT_TRUE(middle.wait_for(5s));
    EXPECT_TRUE(leaf.cancelled());
    EXPECT_TRUE(middle.cancelled());
    EXPECT_EQ(cancelled_message([&] { leaf.result(); }), "chain");
  });
}

TEST_P(CancelTest, WaitForIsCancellationPointButDoesNotCancelFuture) {
  Future<int> f;
  Future<void> waiting;
  auto t = rt().spawn([f, waiting]() mutable {
    waiting.set_result();
    return f.wait_for(10s);
  });
  ASSERT_TRUE(waiting.wait_for(5s));
  std::this_thread::sleep_for(1ms);
  t.cancel("stop waiting");
  ASSERT_TRUE(t.wait_for(5s));
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(f.done()) << "wait_for() must never cancel the future it waits on";
  f.set_result(1);
}

// ---------------------------------------------------------------------------
// Cleanup and suppression
// ---------------------------------------------------------------------------

TEST_P(CancelTest, CleanupMaySuspendThenRethrow) {
  // Several tasks so that with more than one worker they migrate while
  // suspended inside their catch blocks; each must rethrow its own exception.
  rt().block_on([] {
    constexpr int kTasks = 8;
    std::vector<Task<int>> ts;
    std::vector<std::shared_ptr<std::atomic<int>>> stage;
    Future<int> from_other_task;
    auto setter = spindle::spawn([from_other_task]() mutable {
      spindle::sleep(3ms);
      from_other_task.set_result(5);
    });
    std::vector<Future<void>> sleeping(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      auto st = std::make_shared<std::atomic<int>>(0);
      stage.push_back(st);
      ts.push_back(spindle::spawn([st, i, from_other_task, s = sleeping[i]]() mutable -> int {
        try {
          s.set_result();
          spindle::sleep(10s);
        } catch (const Cancelled& c) {
          std::exception_ptr before = std::current_exception();
          st->store(1);
          spindle::sleep(1ms);  // cleanup suspends...
          spindle::yield();
          int v = spindle::spawn([] { return 2; }).get();  // ...awaits a task...
          v += from_other_task.get();                      // ...and a future
          EXPECT_EQ(v, 7);
          // The exception being handled is still ours after the switches.
          EXPECT_TRUE(std::current_exception() == before);
          EXPECT_EQ(c.message(), "msg-" + std::to_string(i));
          st->store(2);
          throw;
        }
        return -1;
      }));
    }
    for (auto& s : sleeping) {
      s.get();
    }
    for (int i = 0; i < kTasks; ++i) {
      ts[static_cast<size_t>(i)].cancel("msg-" + std::to_string(i));
    }
    for (int i = 0; i < kTasks; ++i) {
      auto& t = ts[static_cast<size_t>(i)];
      EXPECT_EQ(cancelled_message([&] { t.get(); }), "msg-" + std::to_string(i));
      EXPECT_TRUE(t.cancelled());
      EXPECT_EQ(stage[static_cast<size_t>(i)]->load(), 2) << "cleanup did not finish";
    }
    setter.get();
  });
}

TEST_P(CancelTest, UncancelSuppressesAndTaskReturnsValue) {
  rt().block_on([] {
    Future<void> sleeping;
    auto t = spindle::spawn([sleeping]() mutable {
      sleeping.set_result();
      try {
        spindle::sleep(10s);
      } catch (const Cancelled&) {
        auto me = spindle::current_task();
        EXPECT_EQ(me.cancelling(), 1);
        EXPECT_EQ(me.uncancel(), 0);
        EXPECT_EQ(me.cancelling(), 0);
      }
      spindle::sleep(1ms);  // not cancelled again
      spindle::yield();
      spindle::check_cancelled();
      return 42;
    });
    sleeping.get();
    EXPECT_TRUE(t.cancel());
    EXPECT_EQ(t.get(), 42);
    EXPECT_FALSE(t.cancelled());
    EXPECT_EQ(t.cancelling(), 0);
  });
}

TEST_P(CancelTest, CancellingCountsRequestsAndUncancelDecrements) {
  std::atomic<bool> started{false}, go{false};
  std::atomic<int> seen_cancelling{-1}, after_first_uncancel{-1}, after_second_uncancel{-1};
  std::atomic<bool> check_threw{false};
  auto t = rt().spawn([&] {
    started = true;
    spin_until(go);  // two requests arrive while we run
    auto me = spindle::current_task();
    seen_cancelling = me.cancelling();
    after_first_uncancel = me.uncancel();
    // One request is still pending: the next suspension point delivers it.
    try {
      spindle::check_cancelled();
    } catch (const Cancelled&) {
      check_threw = true;
      after_second_uncancel = me.uncancel();
    }
    spindle::sleep(1ms);  // nothing pending any more
    return 7;
  });
  ASSERT_TRUE(spin_until(started));
  EXPECT_TRUE(t.cancel("one"));
  EXPECT_EQ(t.cancelling(), 1);
  EXPECT_TRUE(t.cancel("two"));
  EXPECT_EQ(t.cancelling(), 2);
  go = true;
  ASSERT_TRUE(t.wait_for(5s));
  EXPECT_EQ(seen_cancelling.load(), 2);
  EXPECT_EQ(after_first_uncancel.load(), 1);
  EXPECT_TRUE(check_threw.load());
  EXPECT_EQ(after_second_uncancel.load(), 0);
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(t.result(), 7);
}

TEST_P(CancelTest, StdExceptionHandlerDoesNotCatchCancelled) {
  std::atomic<bool> caught_std{false}, caught_cancelled{false};
  rt().block_on([&] {
    Future<void> sleeping;
    auto t = spindle::spawn([&, sleeping]() mutable {
      try {
        sleeping.set_result();
        spindle::sleep(10s);
      } catch (const std::exception&) {
        caught_std = true;
      } catch (const Cancelled&) {
        caught_cancelled = true;
        throw;
      }
    });
    sleeping.get();
    t.cancel();
    EXPECT_THROW(t.get(), Cancelled);
  });
  EXPECT_FALSE(caught_std.load());
  EXPECT_TRUE(caught_cancelled.load());
  // The same from get() of a cancelled future.
  Future<int> f;
  f.cancel("x");
  bool std_caught = false, c_caught = false;
  try {
    try {
      f.get();
    } catch (const std::exception&) {
      std_caught = true;
    }
  } catch (const Cancelled&) {
    c_caught = true;
  }
  EXPECT_FALSE(std_caught);
  EXPECT_TRUE(c_caught);
}

TEST_P(CancelTest, ThrowingCancelledEndsTaskCancelled) {
  auto t = rt().spawn([]() -> int { throw Cancelled("by hand"); });
  EXPECT_EQ(cancelled_message([&] { t.get(); }), "by hand");
  EXPECT_TRUE(t.cancelled());
}

// ---------------------------------------------------------------------------
// Timing of a request
// ---------------------------------------------------------------------------

TEST_P(CancelTest, CancelledBeforeFirstRunNeverRunsBody) {
  std::atomic<bool> body_ran{false};
  rt().block_on([&, this] {
    OccupyOtherWorkers busy(workers());
    ASSERT_TRUE(busy.ok()) << "could not occupy the other workers";
    // Every other worker is spinning and this task does not suspend between
    // spawn and cancel: the new task cannot have started.
    auto t = spindle::spawn([&] { body_ran = true; });
    EXPECT_TRUE(t.cancel("before start"));
    EXPECT_EQ(t.cancelling(), 1);
    busy.release();
    EXPECT_EQ(cancelled_message([&] { t.get(); }), "before start");
    EXPECT_TRUE(t.cancelled());
  });
  EXPECT_FALSE(body_ran.load());
}

TEST_P(CancelTest, CancelledBeforeFirstRunFromPlainThread) {
  std::atomic<bool> body_ran{false};
  Future<void> occupied, release_main;
  // The main task occupies workers; the plain thread spawns and cancels.
  auto holder = rt().spawn([&, this] {
    OccupyOtherWorkers busy(workers());
    EXPECT_TRUE(busy.ok());
    occupied.set_result();
    // Keep this worker busy too (no suspension) until the plain thread is done.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!release_main.done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    busy.release();
  });
  if (!occupied.wait_for(5s)) {
    release_main.set_result();
    holder.get();
    FAIL() << "could not occupy the workers";
  }
  auto t = rt().spawn([&] { body_ran = true; });
  EXPECT_TRUE(t.cancel());
  release_main.set_result();
  holder.get();
  EXPECT_THROW(t.get(), Cancelled);
  EXPECT_FALSE(body_ran.load());
}

TEST_P(CancelTest, CheckCancelledInCpuLoop) {
  std::atomic<bool> started{false};
  std::atomic<long> iterations{0};
  auto t = rt().spawn([&] {
    started = true;
    for (;;) {
      spindle::check_cancelled();
      ++iterations;
      std::this_thread::yield();
    }
  });
  ASSERT_TRUE(spin_until(started));
  EXPECT_TRUE(t.cancel("enough"));
  ASSERT_TRUE(t.wait_for(5s)) << "check_cancelled() did not throw";
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(cancelled_message([&] { t.result(); }), "enough");
}

TEST_P(CancelTest, CheckCancelledWithoutRequestReturns) {
  int v = rt().block_on([] {
    for (int i = 0; i < 100; ++i) {
      spindle::check_cancelled();
    }
    return 3;
  });
  EXPECT_EQ(v, 3);
}

TEST_P(CancelTest, CancelOnFinishedTaskReturnsFalse) {
  rt().block_on([] {
    auto t = spindle::spawn([] { return 5; });
    EXPECT_EQ(t.get(), 5);
    EXPECT_FALSE(t.cancel("too late"));
    EXPECT_FALSE(t.cancelled());
    EXPECT_EQ(t.cancelling(), 0);
    EXPECT_EQ(t.result(), 5);

    auto e = spindle::spawn([] { throw std::runtime_error("x"); });
    EXPECT_THROW(e.get(), std::runtime_error);
    EXPECT_FALSE(e.cancel());
    EXPECT_FALSE(spindle::TaskRef(e).cancel());

    auto c = spindle::spawn([] { spindle::sleep(10s); });
    spindle::yield();
    EXPECT_TRUE(c.cancel("first"));
    EXPECT_THROW(c.get(), Cancelled);
    EXPECT_FALSE(c.cancel("second"));
    EXPECT_EQ(cancelled_message([&] { c.result(); }), "first");
    EXPECT_EQ(cancelled_message([&] { c.exception(); }), "first");
  });
}

TEST_P(CancelTest, BodyReturningWithoutSuspensionKeepsResult) {
  // DESIGN.md "Cancellation timing": the request lapses when the body
  // returns before reaching another suspension point.
  std::atomic<bool> started{false}, go{false};
  auto t = rt().spawn([&] {
    started = true;
    spin_until(go);
    return std::string("kept");
  });
  ASSERT_TRUE(spin_until(started));
  EXPECT_TRUE(t.cancel("lapses"));
  go = true;
  ASSERT_TRUE(t.wait_for(5s));
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(t.get(), "kept");
}

TEST_P(CancelTest, CancelFromInsideOwnTaskDeliveredAtNextSuspension) {
  auto r = rt().block_on([] {
    auto t = spindle::spawn([] {
      spindle::current_task().cancel("self");
      int reached = 1;  // code after cancel() still runs...
      try {
        spindle::yield();  // ...until the next suspension point
        reached = 2;
      } catch (const Cancelled& c) {
        EXPECT_EQ(c.message(), "self");
        throw;
      }
      return reached;
    });
    return cancelled_message([&] { t.get(); });
  });
  EXPECT_EQ(r, "self");
}

TEST_P(CancelTest, ManyConcurrentCancels) {
  // Cancels racing with completion: each task ends either with its value or
  // cancelled, and nothing hangs.
  rt().block_on([] {
    std::vector<Task<int>> ts;
    for (int i = 0; i < 200; ++i) {
      ts.push_back(spindle::spawn([i] {
        if (i % 3 == 0) {
          spindle::yield();
        } else if (i % 3 == 1) {
          spindle::sleep(1ms);
        }
        return i;
      }));
    }
    std::thread canceller([&] {
      for (std::size_t i = 0; i < ts.size(); i += 2) {
        ts[i].cancel("race");
      }
    });
    canceller.join();
    for (std::size_t i = 0; i < ts.size(); ++i) {
      ASSERT_TRUE(ts[i].wait_for(5s)) << i;
      if (ts[i].cancelled()) {
        EXPECT_EQ(i % 2, 0u) << "uncancelled task " << i << " ended cancelled";
        EXPECT_EQ(cancelled_message([&] { ts[i].result(); }), "race");
      } else {
        EXPECT_EQ(ts[i].result(), static_cast<int>(i));
      }
    }
  });
}
