// gather, gather_settled, wait, as_completed, wait_for, timeout, shield and
// ensure_future: asyncio 3.12 behaviour, in tasks and on plain threads.
//
// Timing: only "not before the deadline" and generous upper bounds
// (kSlack); "slow" children sleep 10 s and are always cancelled or left to
// the runtime's shutdown, so no test waits for them.
#include <spindle/combinators.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "cancel_outcome.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::Clock;
using spindle::Future;
using spindle::InvalidStateError;
using spindle::ReturnWhen;
using spindle::Task;
using spindle::TimeoutError;
using spindle::testing::cancelled_message;
using spindle::testing::RuntimeTest;

namespace {

constexpr auto kSlack = 500ms;  // generous upper bound on any "soon"

auto since(Clock::time_point t0) { return Clock::now() - t0; }

template <class T>
Task<T> after(std::chrono::milliseconds d, T v) {
  return spindle::spawn([d, v] {
    spindle::sleep(d);
    return v;
  });
}

Task<int> never() {
  return spindle::spawn([] {
    spindle::sleep(10s);
    return -1;
  });
}

}  // namespace

class Combinators : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(Combinators);

// ---------------------------------------------------------------------------
// gather
// ---------------------------------------------------------------------------

TEST_P(Combinators, GatherTupleKeepsArgumentOrder) {
  auto r = rt().block_on([] {
    auto slow = after(20ms, 1);
    auto fast = after(1ms, std::string("b"));
    auto v = spindle::spawn([] { spindle::sleep(5ms); });
    Future<double> plain;
    plain.set_result(2.5);
    return spindle::gather(slow, fast, v, plain);
  });
  static_assert(std::is_same_v<decltype(r), std::tuple<int, std::string, std::monostate, double>>);
  EXPECT_EQ(std::get<0>(r), 1);
  EXPECT_EQ(std::get<1>(r), "b");
  EXPECT_EQ(std::get<3>(r), 2.5);
}

TEST_P(Combinators, GatherVectorOfTasksKeepsInputOrder) {
  auto r = rt().block_on([] {
    std::vector<Task<int>> ts;
    for (int i = 0; i < 8; ++i) {
      ts.push_back(after(std::chrono::milliseconds(8 - i), i));  // finish in reverse
    }
    return spindle::gather(ts);
  });
  EXPECT_EQ(r, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST_P(Combinators, GatherVoidVectorReturnsWhenAllDone) {
  std::atomic<int> ran{0};
  rt().block_on([&] {
    std::vector<Future<void>> fs;
    for (int i = 0; i < 5; ++i) {
      fs.push_back(spindle::spawn([&ran, i] {
        spindle::sleep(std::chrono::milliseconds(i));
        ++ran;
      }));
    }
    static_assert(std::is_void_v<decltype(spindle::gather(fs))>);
    spindle::gather(fs);
    for (auto& f : fs) {
      EXPECT_TRUE(f.done());
    }
  });
  EXPECT_EQ(ran.load(), 5);
}

TEST_P(Combinators, GatherEmpty) {
  rt().block_on([] {
    EXPECT_TRUE(spindle::gather(std::vector<Future<int>>{}).empty());
    EXPECT_EQ(spindle::gather(), std::tuple<>());
  });
}

TEST_P(Combinators, GatherFirstExceptionPropagatesAtOnceOthersKeepRunning) {
  rt().block_on([] {
    auto bad = spindle::spawn([]() -> int {
      spindle::sleep(2ms);
      throw std::runtime_error("boom");
    });
    Future<int> gate;  // released only after gather has thrown
    auto good = spindle::spawn([gate]() mutable { return gate.get() + 1; });
    auto t0 = Clock::now();
    try {
      spindle::gather(good, bad);
      ADD_FAILURE() << "gather returned";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    }
    EXPECT_LT(since(t0), kSlack);
    EXPECT_FALSE(good.done());  // not cancelled, still waiting on the gate
    gate.set_result(41);
    EXPECT_EQ(good.get(), 42);
    EXPECT_FALSE(good.cancelled());
  });
}

TEST_P(Combinators, GatherChildCancelledPropagatesCancelledToGatherer) {
  rt().block_on([] {
    Future<int> f;
    auto t = after(1ms, 1);
    auto canceller = spindle::spawn([f]() mutable {
      spindle::sleep(2ms);
      f.cancel("child went away");
    });
    try {
      spindle::gather(t, f);
      ADD_FAILURE() << "gather returned";
    } catch (const Cancelled& c) {
      EXPECT_EQ(c.message(), "child went away");
    }
    // The gathering task itself was not cancelled: it can still suspend.
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
    spindle::sleep(1ms);
    canceller.get();
  });
}

TEST_P(Combinators, CancellingTheGathererCancelsEveryChild) {
  rt().block_on([] {
    std::vector<Task<int>> kids{never(), never(), after(1ms, 7)};
    kids[2].core()->wait();  // done before the gather starts
    Future<void> started;
    auto gatherer = spindle::spawn([kids, started]() mutable {
      started.set_result();
      return spindle::gather(kids);
    });
    started.get();
    spindle::sleep(2ms);
    gatherer.cancel("stop");
    try {
      gatherer.get();
      ADD_FAILURE() << "gatherer not cancelled";
    } catch (const Cancelled& c) {
      EXPECT_EQ(c.message(), "stop");
    }
    EXPECT_TRUE(gatherer.cancelled());
    // asyncio: the gather wakes once the first cancelled child ended.
    int ended = kids[0].done() + kids[1].done();
    EXPECT_GE(ended, 1);
    for (int i = 0; i < 2; ++i) {
      kids[i].core()->wait();
      EXPECT_TRUE(kids[i].cancelled());
      EXPECT_EQ(cancelled_message(kids[i].core()->error()), "stop");
    }
    EXPECT_EQ(kids[2].result(), 7);
  });
}

TEST_P(Combinators, CancelledGathererRaisesAChildsCleanupException) {
  // asyncio: after gather's outer future is cancelled, the first child to
  // end other than normally completes it; an exception wins over Cancelled.
  rt().block_on([] {
    Future<void> child_started;
    auto bad_cleanup = spindle::spawn([child_started]() mutable -> int {
      child_started.set_result();
      try {
        spindle::sleep(10s);
      } catch (const Cancelled&) {
      }
      throw std::logic_error("cleanup failed");
    });
    Future<void> started;
    auto gatherer = spindle::spawn([bad_cleanup, started]() mutable {
      started.set_result();
      return spindle::gather(bad_cleanup);
    });
    started.get();
    child_started.get();
    spindle::sleep(2ms);
    gatherer.cancel();
    EXPECT_THROW(gatherer.get(), std::logic_error);
    EXPECT_FALSE(gatherer.cancelled());
  });
}

TEST_P(Combinators, GatherOnAPlainThread) {
  Future<int> a;
  Future<int> b;
  std::thread setter([a, b]() mutable {
    std::this_thread::sleep_for(2ms);
    b.set_result(2);
    a.set_result(1);
  });
  auto t = rt().spawn([] {
    spindle::sleep(1ms);
    return 3;
  });
  auto r = spindle::gather(a, b, t);
  setter.join();
  EXPECT_EQ(r, std::make_tuple(1, 2, 3));
}

TEST_P(Combinators, GatherAllDoneReportsFirstFailureInArgumentOrder) {
  rt().block_on([] {
    Future<int> ok;
    Future<int> e1;
    Future<int> e2;
    ok.set_result(1);
    e1.set_exception(std::make_exception_ptr(std::runtime_error("first")));
    e2.set_exception(std::make_exception_ptr(std::runtime_error("second")));
    try {
      spindle::gather(std::vector<Future<int>>{ok, e1, e2});
      ADD_FAILURE();
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
  });
}

TEST_P(Combinators, GatherEmptyHandleIsMisuse) {
  rt().block_on([] {
    Future<int> ok;
    Future<int> moved_from = std::move(ok);
    EXPECT_THROW(spindle::gather(ok, moved_from), InvalidStateError);
    EXPECT_THROW(spindle::gather(std::vector<Future<int>>{ok}), InvalidStateError);
    moved_from.set_result(0);
  });
}

TEST_P(Combinators, GatherSettledReportsEveryOutcome) {
  rt().block_on([] {
    auto ok = after(3ms, 5);
    auto bad = spindle::spawn([]() -> int {
      spindle::sleep(1ms);
      throw std::runtime_error("bad");
    });
    Future<int> cancelled;
    cancelled.cancel("gone");
    auto out = spindle::gather_settled(std::vector<Task<int>>{ok, bad});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(out[0].has_value());
    EXPECT_EQ(out[0].value(), 5);
    EXPECT_FALSE(out[1].has_value());
    EXPECT_THROW(out[1].value(), std::runtime_error);
    auto more = spindle::gather_settled(std::vector<Future<int>>{cancelled, ok});
    EXPECT_TRUE(more[0].cancelled());
    EXPECT_EQ(cancelled_message(more[0].error()), "gone");
    EXPECT_EQ(more[1].value(), 5);
    auto [a, b] = spindle::gather_settled(Future<int>(ok), Future<void>(spindle::spawn([] {})));
    EXPECT_EQ(a.value(), 5);
    EXPECT_TRUE(b.has_value());
  });
}

TEST_P(Combinators, CancelledGatherSettledWaitsForEveryChild) {
  rt().block_on([] {
    std::atomic<int> cleaned{0};
    std::atomic<int> entered{0};
    std::vector<Task<void>> kids;
    for (int i = 0; i < 3; ++i) {
      kids.push_back(spindle::spawn([&cleaned, &entered, i] {
        ++entered;
        try {
          spindle::sleep(10s);
        } catch (const Cancelled&) {
          spindle::sleep(std::chrono::milliseconds(2 * i));  // cleanup that suspends
          ++cleaned;
          throw;
        }
      }));
    }
    Future<void> started;
    auto gatherer = spindle::spawn([kids, started]() mutable {
      started.set_result();
      (void)spindle::gather_settled(kids);
    });
    started.get();
    while (entered.load() < 3) {
      spindle::sleep(1ms);
    }
    gatherer.cancel();
    EXPECT_THROW(gatherer.get(), Cancelled);
    EXPECT_EQ(cleaned.load(), 3);  // asyncio: return_exceptions waits for all
    for (auto& k : kids) {
      EXPECT_TRUE(k.cancelled());
    }
  });
}

// ---------------------------------------------------------------------------
// wait
// ---------------------------------------------------------------------------

TEST_P(Combinators, WaitAllCompleted) {
  rt().block_on([] {
    std::vector<Task<int>> ts{after(3ms, 1), after(1ms, 2), after(2ms, 3)};
    auto [done, pending] = spindle::wait(ts);
    EXPECT_EQ(done.size(), 3u);
    EXPECT_TRUE(pending.empty());
    EXPECT_TRUE(done[0] == ts[0]);  // input order kept
  });
}

TEST_P(Combinators, WaitFirstCompletedLeavesTheRestPending) {
  rt().block_on([] {
    std::vector<Task<int>> ts{never(), after(2ms, 2), never()};
    auto t0 = Clock::now();
    auto [done, pending] = spindle::wait(ts, ReturnWhen::FirstCompleted);
    EXPECT_LT(since(t0), kSlack);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].result(), 2);
    ASSERT_EQ(pending.size(), 2u);
    for (auto& p : pending) {
      EXPECT_FALSE(p.done());
      p.cancel();
    }
  });
}

TEST_P(Combinators, WaitFirstExceptionReturnsOnAFailure) {
  rt().block_on([] {
    auto bad = spindle::spawn([]() -> int {
      spindle::sleep(2ms);
      throw std::runtime_error("x");
    });
    auto slow = never();
    Future<int> ok;
    ok.set_result(1);
    std::vector<Future<int>> fs{slow, ok, bad};
    auto [done, pending] = spindle::wait(fs, ReturnWhen::FirstException);
    EXPECT_EQ(done.size(), 2u);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_TRUE(pending[0] == slow);
    EXPECT_THROW(bad.result(), std::runtime_error);
    slow.cancel();
  });
}

TEST_P(Combinators, WaitFirstExceptionIgnoresCancelledAndWaitsForAll) {
  rt().block_on([] {
    Future<int> c;
    c.cancel();
    std::vector<Future<int>> fs{c, after(2ms, 1), after(4ms, 2)};
    auto [done, pending] = spindle::wait(fs, ReturnWhen::FirstException);
    EXPECT_EQ(done.size(), 3u);
    EXPECT_TRUE(pending.empty());
  });
}

TEST_P(Combinators, WaitTimeoutReturnsWhatIsDoneAndCancelsNothing) {
  rt().block_on([] {
    std::vector<Task<int>> ts{after(0ms, 0), never(), never()};
    ts[0].core()->wait();
    auto t0 = Clock::now();
    auto [done, pending] = spindle::wait(ts, ReturnWhen::AllCompleted, 20ms);
    auto took = since(t0);
    EXPECT_GE(took, 20ms);
    EXPECT_LT(took, 20ms + kSlack);
    EXPECT_EQ(done.size(), 1u);
    ASSERT_EQ(pending.size(), 2u);
    for (auto& p : pending) {
      EXPECT_FALSE(p.done());
      EXPECT_FALSE(p.cancelled());
      p.cancel();
    }
  });
}

TEST_P(Combinators, WaitZeroTimeoutPolls) {
  rt().block_on([] {
    auto t = never();
    auto [done, pending] = spindle::wait(std::vector<Task<int>>{t}, ReturnWhen::AllCompleted, 0ms);
    EXPECT_TRUE(done.empty());
    EXPECT_EQ(pending.size(), 1u);
    t.cancel();
  });
}

TEST_P(Combinators, CancellingTheWaiterDoesNotCancelTheFutures) {
  rt().block_on([] {
    Future<int> f;
    auto t = never();
    auto waiter = spindle::spawn([f, t] { (void)spindle::wait(std::vector<Future<int>>{f, t}); });
    auto timed = spindle::spawn([f, t] {
      (void)spindle::wait(std::vector<Future<int>>{f, t}, ReturnWhen::AllCompleted, 10s);
    });
    spindle::sleep(5ms);
    waiter.cancel();
    timed.cancel();
    EXPECT_THROW(waiter.get(), Cancelled);
    EXPECT_THROW(timed.get(), Cancelled);
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(t.done());
    f.set_result(1);
    t.cancel();
  });
}

TEST_P(Combinators, WaitEmptyIsAnError) {
  rt().block_on(
      [] { EXPECT_THROW(spindle::wait(std::vector<Future<int>>{}), std::invalid_argument); });
}

TEST_P(Combinators, WaitOnAPlainThread) {
  auto fast = rt().spawn([] {
    spindle::sleep(1ms);
    return 1;
  });
  auto slow = rt().spawn([] {
    spindle::sleep(10s);
    return 2;
  });
  auto [done, pending] =
      spindle::wait(std::vector<Task<int>>{fast, slow}, ReturnWhen::FirstCompleted, 5s);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result(), 1);
  auto r2 = spindle::wait(std::vector<Task<int>>{slow}, ReturnWhen::AllCompleted, 5ms);
  EXPECT_EQ(r2.pending.size(), 1u);
  slow.cancel();
}

// ---------------------------------------------------------------------------
// as_completed
// ---------------------------------------------------------------------------

TEST_P(Combinators, AsCompletedYieldsInCompletionOrder) {
  auto order = rt().block_on([] {
    // Created slow first. Each also awaits the one meant to finish before
    // it: a stalled worker may resume sleepers that are due together in any
    // order, and the test must not depend on timer precision.
    auto fast = after(1ms, 1);
    auto medium = spindle::spawn([fast] {
      spindle::sleep(5ms);
      fast.core()->wait();
      return 2;
    });
    auto slow = spindle::spawn([medium] {
      spindle::sleep(10ms);
      medium.core()->wait();
      return 3;
    });
    std::vector<Task<int>> ts{slow, fast, medium};
    std::vector<int> seen;
    for (auto& f : spindle::as_completed(ts)) {
      EXPECT_TRUE(f.done());
      seen.push_back(f.get());
    }
    return seen;
  });
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_P(Combinators, AsCompletedTimeoutThrowsWhenAdvancingPastTheDeadline) {
  rt().block_on([] {
    auto slow = never();
    std::vector<Task<int>> ts{slow, after(0ms, 1)};
    ts[1].core()->wait();
    auto t0 = Clock::now();
    auto ac = spindle::as_completed(ts, 20ms);
    EXPECT_EQ(ac.remaining(), 2u);
    EXPECT_EQ(ac.next().result(), 1);
    EXPECT_THROW(ac.next(), TimeoutError);
    EXPECT_GE(since(t0), 20ms);
    EXPECT_THROW(ac.next(), TimeoutError);  // again
    EXPECT_EQ(ac.remaining(), 1u);
    EXPECT_FALSE(slow.cancelled());
    slow.cancel();
  });
}

TEST_P(Combinators, AsCompletedOnAPlainThreadAndEarlyDrop) {
  Future<int> a;
  Future<int> b;
  std::thread setter([a]() mutable {
    std::this_thread::sleep_for(2ms);
    a.set_result(1);
  });
  {
    auto ac = spindle::as_completed(std::vector<Future<int>>{b, a});
    auto it = ac.begin();
    EXPECT_EQ((*it).get(), 1);
  }  // dropped with b still pending: it unhooks itself
  setter.join();
  b.set_result(2);
  int n = 0;
  for (auto& f : spindle::as_completed(std::vector<Future<int>>{})) {
    (void)f;
    ++n;
  }
  EXPECT_EQ(n, 0);
}

TEST_P(Combinators, CancellingTheAsCompletedConsumer) {
  rt().block_on([] {
    Future<int> f;
    auto consumer = spindle::spawn([f] {
      auto ac = spindle::as_completed(std::vector<Future<int>>{f});
      return ac.next().get();
    });
    spindle::sleep(3ms);
    consumer.cancel();
    EXPECT_THROW(consumer.get(), Cancelled);
    EXPECT_FALSE(f.done());
    // A cancelled step can be retried once the task suppressed it.
    Future<void> started;
    auto again = spindle::spawn([f, started]() mutable {
      started.set_result();
      auto ac = spindle::as_completed(std::vector<Future<int>>{f});
      try {
        (void)ac.next();
      } catch (const Cancelled&) {
        spindle::current_task().uncancel();
      }
      return ac.next().get();
    });
    started.get();
    spindle::sleep(3ms);
    again.cancel();
    spindle::sleep(3ms);
    f.set_result(9);
    EXPECT_EQ(again.get(), 9);
  });
}

// ---------------------------------------------------------------------------
// wait_for
// ---------------------------------------------------------------------------

TEST_P(Combinators, WaitForReturnsTheResultInTime) {
  rt().block_on([] {
    EXPECT_EQ(spindle::wait_for(after(1ms, 5), 5s), 5);
    Future<int> done;
    done.set_result(4);
    EXPECT_EQ(spindle::wait_for(done, 0ms), 4);
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
    spindle::sleep(1ms);  // no stray cancellation left behind
  });
}

TEST_P(Combinators, WaitForTimesOutAndCancelsTheTask) {
  rt().block_on([] {
    auto t = never();
    auto t0 = Clock::now();
    EXPECT_THROW(spindle::wait_for(t, 10ms), TimeoutError);
    EXPECT_GE(since(t0), 10ms);
    EXPECT_LT(since(t0), 10ms + kSlack);
    EXPECT_TRUE(t.cancelled());  // waited for until it really finished
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
    spindle::sleep(1ms);
  });
}

TEST_P(Combinators, WaitForPlainFutureIsCancelledOnTimeout) {
  rt().block_on([] {
    Future<int> f;
    EXPECT_THROW(spindle::wait_for(f, 2ms), TimeoutError);
    EXPECT_TRUE(f.cancelled());
  });
}

TEST_P(Combinators, WaitForReturnsTheValueOfATaskThatSuppressedTheCancel) {
  rt().block_on([] {
    Future<void> started;
    auto stubborn = spindle::spawn([started]() mutable {
      started.set_result();
      try {
        spindle::sleep(10s);
      } catch (const Cancelled&) {
        spindle::current_task().uncancel();
        spindle::sleep(2ms);
        return 42;
      }
      return 0;
    });
    started.get();  // not cancelled before it starts (that would end it cancelled)
    EXPECT_EQ(spindle::wait_for(stubborn, 5ms), 42);
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
  });
}

TEST_P(Combinators, WaitForRethrowsAFailureDuringCancellation) {
  rt().block_on([] {
    Future<void> started;
    auto t = spindle::spawn([started]() mutable -> int {
      started.set_result();
      try {
        spindle::sleep(10s);
      } catch (const Cancelled&) {
      }
      throw std::runtime_error("failed while cancelled");
    });
    started.get();
    EXPECT_THROW(spindle::wait_for(t, 5ms), std::runtime_error);
  });
}

TEST_P(Combinators, CancellingTheWaitForCallerCancelsTheFuture) {
  rt().block_on([] {
    auto inner = never();
    Future<void> started;
    auto waiter = spindle::spawn([inner, started]() mutable {
      started.set_result();
      return spindle::wait_for(inner, 10s);
    });
    started.get();
    spindle::sleep(3ms);
    waiter.cancel("outer");
    EXPECT_THROW(waiter.get(), Cancelled);
    EXPECT_TRUE(inner.cancelled());
  });
}

TEST_P(Combinators, WaitForOnAPlainThread) {
  auto quick = rt().spawn([] {
    spindle::sleep(1ms);
    return 1;
  });
  EXPECT_EQ(spindle::wait_for(quick, 5s), 1);
  auto slow = rt().spawn([] {
    spindle::sleep(10s);
    return 2;
  });
  auto t0 = Clock::now();
  EXPECT_THROW(spindle::wait_for(slow, 5ms), TimeoutError);
  EXPECT_GE(since(t0), 5ms);
  EXPECT_TRUE(slow.cancelled());
  Future<int> never_set;
  EXPECT_THROW(spindle::wait_for(never_set, 1ms), TimeoutError);
  EXPECT_TRUE(never_set.cancelled());
}

// ---------------------------------------------------------------------------
// timeout / timeout_at
// ---------------------------------------------------------------------------

TEST_P(Combinators, TimeoutReturnsTheBodysResult) {
  rt().block_on([] {
    int v = spindle::timeout(5s, [] {
      spindle::sleep(1ms);
      return 3;
    });
    EXPECT_EQ(v, 3);
    spindle::timeout(5s, [](spindle::Timeout& t) { EXPECT_FALSE(t.expired()); });
  });
}

TEST_P(Combinators, TimeoutExpiresWithTimeoutError) {
  rt().block_on([] {
    auto t0 = Clock::now();
    bool expired = false;
    try {
      spindle::timeout(10ms, [&](spindle::Timeout& tm) {
        try {
          spindle::sleep(10s);
        } catch (const Cancelled&) {
          expired = tm.expired();
          throw;
        }
      });
      ADD_FAILURE() << "no TimeoutError";
    } catch (const TimeoutError&) {
    }
    EXPECT_TRUE(expired);
    EXPECT_GE(since(t0), 10ms);
    EXPECT_LT(since(t0), 10ms + kSlack);
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
    spindle::sleep(1ms);  // the task is not cancelled any more
  });
}

TEST_P(Combinators, TimeoutLetsAnOutsideCancellationThrough) {
  rt().block_on([] {
    auto t = spindle::spawn([] { spindle::timeout(10s, [] { spindle::sleep(10s); }); });
    spindle::sleep(3ms);
    t.cancel("outside");
    try {
      t.get();
      ADD_FAILURE();
    } catch (const Cancelled& c) {
      EXPECT_EQ(c.message(), "outside");
    }
  });
}

TEST_P(Combinators, TimeoutExpiredAndCancelledFromOutsideIsCancelled) {
  // asyncio: expired, but uncancel() shows a newer request -> Cancelled.
  rt().block_on([] {
    auto t = spindle::spawn([] {
      spindle::timeout(1ms, [] {
        try {
          spindle::sleep(10s);
        } catch (const Cancelled&) {
        }
        spindle::current_task().cancel("outside");  // a request of its own
        spindle::sleep(10s);
      });
    });
    EXPECT_THROW(t.get(), Cancelled);
    EXPECT_TRUE(t.cancelled());
  });
}

TEST_P(Combinators, NestedTimeoutsReportTheirOwnExpiry) {
  rt().block_on([] {
    // The inner one expires: its TimeoutError is caught inside the outer.
    int r = spindle::timeout(5s, [] {
      try {
        spindle::timeout(2ms, [] { spindle::sleep(10s); });
      } catch (const TimeoutError&) {
        return 1;
      }
      return 0;
    });
    EXPECT_EQ(r, 1);
    // The outer one expires while the inner one is far from its deadline.
    bool inner_saw_timeout = false;
    try {
      spindle::timeout(3ms, [&] {
        try {
          spindle::timeout(10s, [] { spindle::sleep(10s); });
        } catch (const TimeoutError&) {
          inner_saw_timeout = true;
        }
      });
      ADD_FAILURE();
    } catch (const TimeoutError&) {
    }
    EXPECT_FALSE(inner_saw_timeout);
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
  });
}

TEST_P(Combinators, TimeoutRescheduleAndWhen) {
  rt().block_on([] {
    auto deadline = Clock::now() + 50ms;
    int v = spindle::timeout_at(deadline, [&](spindle::Timeout& tm) {
      EXPECT_EQ(tm.when(), deadline);
      tm.reschedule(Clock::now() + 10s);  // later
      spindle::sleep(60ms);
      return 7;
    });
    EXPECT_EQ(v, 7);
    auto t0 = Clock::now();
    EXPECT_THROW(spindle::timeout(10s,
                                  [](spindle::Timeout& tm) {
                                    tm.reschedule(Clock::now() + 2ms);  // earlier
                                    spindle::sleep(10s);
                                  }),
                 TimeoutError);
    EXPECT_LT(since(t0), kSlack);
    // No deadline at all.
    spindle::timeout(1ms, [](spindle::Timeout& tm) {
      tm.reschedule(spindle::TimePoint::max());
      spindle::sleep(5ms);
    });
  });
}

TEST_P(Combinators, TimeoutRescheduleAfterExpiryIsMisuse) {
  rt().block_on([] {
    EXPECT_THROW(spindle::timeout(1ms,
                                  [](spindle::Timeout& tm) {
                                    try {
                                      spindle::sleep(10s);
                                    } catch (const Cancelled&) {
                                      EXPECT_THROW(tm.reschedule(Clock::now() + 1s),
                                                   InvalidStateError);
                                      throw;
                                    }
                                  }),
                 TimeoutError);
  });
}

TEST_P(Combinators, TimeoutAlreadyPastCancelsAtTheFirstSuspensionPoint) {
  rt().block_on([] {
    int steps = 0;
    EXPECT_THROW(spindle::timeout_at(Clock::now() - 1s,
                                     [&] {
                                       ++steps;  // runs: no suspension yet
                                       spindle::yield();
                                       ++steps;
                                     }),
                 TimeoutError);
    EXPECT_EQ(steps, 1);
    // A body that never suspends finishes; the request lapses.
    EXPECT_EQ(spindle::timeout(0ms, [] { return 5; }), 5);
    spindle::sleep(1ms);
  });
}

TEST_P(Combinators, TimeoutIsDisarmedWhenTheBodyFinishesFirst) {
  rt().block_on([] {
    spindle::timeout(5ms, [] {});
    spindle::sleep(15ms);  // would throw Cancelled if the timer still fired
    SUCCEED();
  });
}

TEST_P(Combinators, TimeoutOutsideATaskIsMisuse) {
  EXPECT_THROW(spindle::timeout(1s, [] {}), InvalidStateError);
}

TEST_P(Combinators, TimeoutPassesOtherExceptionsThrough) {
  rt().block_on([] {
    EXPECT_THROW(spindle::timeout(1s, []() -> int { throw std::out_of_range("x"); }),
                 std::out_of_range);
    spindle::sleep(1ms);
  });
}

// ---------------------------------------------------------------------------
// shield / ensure_future
// ---------------------------------------------------------------------------

TEST_P(Combinators, ShieldKeepsTheInnerTaskRunning) {
  rt().block_on([] {
    auto inner = after(20ms, std::string("critical"));
    auto s = spindle::shield(inner);
    EXPECT_TRUE(s.cancel());
    EXPECT_FALSE(inner.cancelled());
    EXPECT_EQ(inner.get(), "critical");
    // A task awaiting the shield is cancelled; the inner one is not.
    auto inner2 = after(10ms, 2);
    auto waiter = spindle::spawn([inner2] { return spindle::shield(inner2).get(); });
    spindle::sleep(2ms);
    waiter.cancel();
    EXPECT_THROW(waiter.get(), Cancelled);
    EXPECT_EQ(inner2.get(), 2);
  });
}

TEST_P(Combinators, ShieldForwardsTheOutcome) {
  rt().block_on([] {
    EXPECT_EQ(spindle::shield(after(1ms, 3)).get(), 3);
    auto bad = spindle::spawn([]() -> int {
      spindle::sleep(1ms);
      throw std::runtime_error("inner failed");
    });
    EXPECT_THROW(spindle::shield(bad).get(), std::runtime_error);
    Future<int> f;
    auto s = spindle::shield(f);
    f.cancel();
    EXPECT_THROW(s.get(), Cancelled);
    EXPECT_TRUE(s.cancelled());
    Future<void> done;
    done.set_result();
    EXPECT_TRUE(spindle::shield(done) == done);
  });
}

TEST_P(Combinators, EnsureFuture) {
  rt().block_on([] {
    Future<int> f;
    EXPECT_TRUE(spindle::ensure_future(f) == f);
    auto t = after(1ms, 1);
    Task<int> same = spindle::ensure_future(t);
    EXPECT_EQ(same.id(), t.id());
    auto spawned = spindle::ensure_future([] { return std::string("ran"); });
    static_assert(std::is_same_v<decltype(spawned), Task<std::string>>);
    EXPECT_EQ(spawned.get(), "ran");
    f.set_result(0);
  });
}
