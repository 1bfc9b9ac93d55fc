// Future<T>: every method, for T = int, std::string, void and a move-only
// type, called from tasks and from plain threads (DESIGN.md "Future<T> and
// Task<T>", "Errors").
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "cancel_outcome.hpp"
#include "parking_support.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::Future;
using spindle::InvalidStateError;
using spindle::testing::cancelled_message;
using spindle::testing::RuntimeTest;

namespace {

using MoveOnly = std::unique_ptr<int>;
static_assert(!std::is_copy_constructible_v<MoveOnly>);

thread_local bool t_inside_add_done_callback = false;

bool starts_with_finished(const std::string& r) { return r.rfind("<Future finished", 0) == 0; }

}  // namespace

class FutureTest : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(FutureTest);

// ---------------------------------------------------------------------------
// States and results
// ---------------------------------------------------------------------------

TEST_P(FutureTest, PendingStateFromPlainThread) {
  Future<int> f;
  EXPECT_TRUE(f.valid());
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_THROW(f.result(), InvalidStateError);
  EXPECT_THROW(f.exception(), InvalidStateError);
  EXPECT_EQ(f.repr(), "<Future pending>");
  EXPECT_FALSE(f.wait_for(1ms));
}

TEST_P(FutureTest, PendingStateFromTask) {
  rt().block_on([] {
    Future<std::string> f;
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_THROW(f.result(), InvalidStateError);
    EXPECT_THROW(f.exception(), InvalidStateError);
    EXPECT_EQ(f.repr(), "<Future pending>");
    EXPECT_FALSE(f.wait_for(1ms));  // times out inside a task too
    EXPECT_FALSE(f.done());
  });
}

TEST_P(FutureTest, IntResult) {
  Future<int> f;
  f.set_result(42);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 42);
  EXPECT_EQ(f.result(), 42);  // copyable: every retrieval gets it
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.get(), 42);
  EXPECT_EQ(f.repr(), "<Future finished result=42>");
  Future<int> copy = f;  // a copy is the same future
  EXPECT_TRUE(copy == f);
  EXPECT_EQ(copy.result(), 42);
}

TEST_P(FutureTest, StringResultFromTask) {
  std::string got = rt().block_on([] {
    Future<std::string> f;
    f.set_result(std::string("the result"));
    EXPECT_TRUE(f.done());
    EXPECT_EQ(f.exception(), nullptr);
    EXPECT_EQ(f.repr(), "<Future finished result='the result'>");
    return f.get();
  });
  EXPECT_EQ(got, "the result");
}

TEST_P(FutureTest, VoidResult) {
  Future<void> f;
  EXPECT_EQ(f.repr(), "<Future pending>");
  f.set_result();
  EXPECT_TRUE(f.done());
  EXPECT_NO_THROW(f.result());
  EXPECT_NO_THROW(f.get());
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.repr(), "<Future finished>");
  EXPECT_THROW(f.set_result(), InvalidStateError);
  rt().block_on([f]() mutable {
    EXPECT_TRUE(f.wait_for(1ms));
    f.get();
  });
}

TEST_P(FutureTest, MoveOnlyResultIsMovedOutOnce) {
  Future<MoveOnly> f;
  f.set_result(std::make_unique<int>(7));
  EXPECT_TRUE(f.done());
  EXPECT_TRUE(f.wait_for(1ms));  // waiting consumes nothing
  MoveOnly v = rt().block_on([f]() mutable { return f.get(); });
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, 7);
  // Documented: only the first retrieval gets a move-only value.
  EXPECT_TRUE(f.result() == nullptr);
}

TEST_P(FutureTest, MoveOnlyAcrossThreads) {
  Future<MoveOnly> f;
  std::thread setter([f]() mutable { f.set_result(std::make_unique<int>(11)); });
  MoveOnly v = f.get();
  setter.join();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, 11);
}

TEST_P(FutureTest, MoveOnlyDoneCallbackAndRepr) {
  auto seen = std::make_shared<Future<int>>();
  Future<MoveOnly> f;
  EXPECT_EQ(f.repr(), "<Future pending>");
  f.add_done_callback([seen](Future<MoveOnly> g) {
    MoveOnly v = g.result();  // the first retrieval takes the value
    seen->set_result(v ? *v : -1);
  });
  rt().spawn([f]() mutable { f.set_result(std::make_unique<int>(23)); }).get();
  ASSERT_TRUE(seen->wait_for(5s));
  EXPECT_EQ(seen->result(), 23);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_TRUE(starts_with_finished(f.repr())) << f.repr();
}

TEST_P(FutureTest, ExceptionState) {
  Future<int> f;
  f.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  std::exception_ptr e = f.exception();
  ASSERT_NE(e, nullptr);
  try {
    std::rethrow_exception(e);
  } catch (const std::runtime_error& ex) {
    EXPECT_STREQ(ex.what(), "boom");
  }
  EXPECT_THROW(f.result(), std::runtime_error);
  EXPECT_THROW(f.get(), std::runtime_error);
  std::string r = f.repr();
  EXPECT_EQ(r.rfind("<Future finished exception=", 0), 0u) << r;
  EXPECT_NE(r.find("boom"), std::string::npos) << r;
  EXPECT_EQ(r.back(), '>') << r;
}

TEST_P(FutureTest, ExceptionFromTaskAndCustomType) {
  struct Custom {
    int code;
  };
  Future<std::string> f;
  rt().block_on([f]() mutable { f.set_exception(std::make_exception_ptr(Custom{17})); });
  int code = rt().block_on([f]() mutable {
    try {
      f.get();
    } catch (const Custom& c) {
      return c.code;
    }
    return -1;
  });
  EXPECT_EQ(code, 17);
}

// ---------------------------------------------------------------------------
// Cancellation of a plain future
// ---------------------------------------------------------------------------

TEST_P(FutureTest, CancelWithMessage) {
  Future<int> f;
  EXPECT_TRUE(f.cancel("no longer needed"));
  EXPECT_TRUE(f.done());
  EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(f.repr(), "<Future cancelled>");
  EXPECT_EQ(cancelled_message([&] { f.result(); }), "no longer needed");
  EXPECT_EQ(cancelled_message([&] { f.exception(); }), "no longer needed");
  EXPECT_EQ(cancelled_message([&] { f.get(); }), "no longer needed");
  EXPECT_FALSE(f.cancel("again"));  // already done
  EXPECT_EQ(cancelled_message([&] { f.result(); }), "no longer needed");
  EXPECT_THROW(f.set_result(1), InvalidStateError);
}

TEST_P(FutureTest, CancelOnDoneFutureReturnsFalse) {
  Future<int> a;
  a.set_result(1);
  EXPECT_FALSE(a.cancel());
  EXPECT_FALSE(a.cancelled());
  EXPECT_EQ(a.result(), 1);

  Future<void> b;
  b.set_exception(std::make_exception_ptr(std::logic_error("x")));
  EXPECT_FALSE(b.cancel("late"));
  EXPECT_FALSE(b.cancelled());
  EXPECT_THROW(b.result(), std::logic_error);
}

TEST_P(FutureTest, CancelWakesTaskWaiterWithMessage) {
  Future<int> f;
  auto waiter = rt().spawn([f]() mutable { return f.get(); });
  std::this_thread::sleep_for(2ms);  // usually parked by now; either way works
  EXPECT_TRUE(f.cancel("stop"));
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_EQ(cancelled_message([&] { waiter.result(); }), "stop");
}

TEST_P(FutureTest, CancelWakesThreadWaiter) {
  Future<std::string> f;
  std::string msg;
  std::thread waiter([&] { msg = cancelled_message([&] { f.get(); }); });
  std::this_thread::sleep_for(2ms);
  rt().block_on([f]() mutable { EXPECT_TRUE(f.cancel("from a task")); });
  waiter.join();
  EXPECT_EQ(msg, "from a task");
}

// ---------------------------------------------------------------------------
// Misuse
// ---------------------------------------------------------------------------

TEST_P(FutureTest, SetResultTwiceIsInvalidState) {
  Future<int> f;
  f.set_result(1);
  EXPECT_THROW(f.set_result(2), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
               InvalidStateError);
  EXPECT_EQ(f.result(), 1);

  Future<std::string> g;
  g.set_exception(std::make_exception_ptr(std::runtime_error("first")));
  EXPECT_THROW(g.set_result("x"), InvalidStateError);
  EXPECT_THROW(g.set_exception(std::make_exception_ptr(std::runtime_error("second"))),
               InvalidStateError);
  EXPECT_THROW(g.result(), std::runtime_error);

  Future<void> c;
  c.cancel();
  EXPECT_THROW(c.set_result(), InvalidStateError);
}

TEST_P(FutureTest, SetResultTwiceFromTaskIsInvalidState) {
  rt().block_on([] {
    Future<MoveOnly> f;
    f.set_result(std::make_unique<int>(1));
    EXPECT_THROW(f.set_result(std::make_unique<int>(2)), InvalidStateError);
    EXPECT_EQ(*f.result(), 1);
  });
}

TEST_P(FutureTest, SetExceptionNullIsInvalidState) {
  Future<int> f;
  EXPECT_THROW(f.set_exception(nullptr), InvalidStateError);
  EXPECT_FALSE(f.done());  // the failed call changed nothing
  f.set_result(3);
  EXPECT_EQ(f.get(), 3);
}

TEST_P(FutureTest, EmptyHandleIsInvalidState) {
  Future<int> f;
  Future<int> g = std::move(f);
  EXPECT_FALSE(f.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(static_cast<bool>(f));
  EXPECT_TRUE(g.valid());
  EXPECT_THROW(f.done(), InvalidStateError);
  EXPECT_THROW(f.cancelled(), InvalidStateError);
  EXPECT_THROW(f.result(), InvalidStateError);
  EXPECT_THROW(f.exception(), InvalidStateError);
  EXPECT_THROW(f.set_result(1), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
               InvalidStateError);
  EXPECT_THROW(f.cancel(), InvalidStateError);
  EXPECT_THROW(f.add_done_callback([](Future<int>) {}), InvalidStateError);
  EXPECT_THROW(f.remove_done_callback(1), InvalidStateError);
  EXPECT_THROW(f.get(), InvalidStateError);
  EXPECT_THROW(f.wait_for(1ms), InvalidStateError);
  EXPECT_THROW(f.repr(), InvalidStateError);
  // g is unaffected.
  EXPECT_FALSE(g.done());

  // Move assignment empties the source too; an empty handle can be reassigned.
  Future<void> a, b;
  b = std::move(a);
  EXPECT_THROW(a.done(), InvalidStateError);  // NOLINT(bugprone-use-after-move)
  a = Future<void>{};
  EXPECT_FALSE(a.done());
}

TEST_P(FutureTest, EmptyHandleInsideTask) {
  rt().block_on([] {
    Future<void> f;
    Future<void> g(std::move(f));
    EXPECT_THROW(f.get(), InvalidStateError);  // NOLINT(bugprone-use-after-move)
    EXPECT_THROW(f.wait_for(1ms), InvalidStateError);
    EXPECT_THROW(f.set_result(), InvalidStateError);
    spindle::Task<int> empty;
    EXPECT_FALSE(empty.valid());
    EXPECT_THROW(empty.get(), InvalidStateError);
    EXPECT_THROW(empty.get_name(), InvalidStateError);
  });
}

// ---------------------------------------------------------------------------
// get() and wait_for() across threads and tasks
// ---------------------------------------------------------------------------

TEST_P(FutureTest, TaskWaitsForPlainThread) {
  Future<std::string> f;
  auto t = rt().spawn([f]() mutable { return f.get() + "!"; });
  std::thread setter([f]() mutable {
    std::this_thread::sleep_for(2ms);
    f.set_result("hi");
  });
  EXPECT_EQ(t.get(), "hi!");
  setter.join();
}

TEST_P(FutureTest, ThreadWaitsForTask) {
  Future<int> f;
  rt().spawn([f]() mutable {
    spindle::sleep(2ms);
    f.set_result(5);
  });
  EXPECT_EQ(f.get(), 5);
}

TEST_P(FutureTest, ManyWaitersAllWoken) {
  Future<int> f;
  std::vector<spindle::Task<int>> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back(rt().spawn([f, i]() mutable { return f.get() + i; }));
  }
  std::vector<std::thread> threads;
  std::atomic<int> thread_sum{0};
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([f, &thread_sum]() mutable { thread_sum += f.get(); });
  }
  std::this_thread::sleep_for(1ms);
  f.set_result(100);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(tasks[static_cast<size_t>(i)].get(), 100 + i);
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(thread_sum.load(), 300);
}

TEST_P(FutureTest, WaitForTrueFalseWithoutConsuming) {
  Future<int> f;
  // Plain thread.
  EXPECT_FALSE(f.wait_for(2ms));
  EXPECT_FALSE(f.wait_for(0ms));
  EXPECT_FALSE(f.done());
  // Task: times out, then succeeds once another thread sets it.
  bool timed_out = rt().block_on([f] { return !f.wait_for(2ms); });
  EXPECT_TRUE(timed_out);
  std::thread setter([f]() mutable {
    std::this_thread::sleep_for(3ms);
    f.set_result(9);
  });
  bool ok = rt().block_on([f] { return f.wait_for(5s); });
  setter.join();
  EXPECT_TRUE(ok);
  EXPECT_TRUE(f.wait_for(0ms));
  EXPECT_TRUE(f.wait_for(1ms));
  EXPECT_EQ(f.result(), 9);  // waiting did not consume the value
  EXPECT_EQ(f.get(), 9);
}

TEST_P(FutureTest, WaitForReturnsEarlyWhenDone) {
  Future<void> f;
  std::thread setter([f]() mutable {
    std::this_thread::sleep_for(2ms);
    f.set_result();
  });
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(f.wait_for(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // not the full timeout
  setter.join();
}

TEST_P(FutureTest, WaitForDoesNotCancelOrMarkRetrieved) {
  Future<int> f;
  f.set_exception(std::make_exception_ptr(std::out_of_range("oops")));
  EXPECT_TRUE(f.wait_for(1ms));
  EXPECT_THROW(f.get(), std::out_of_range);
}

// Memory ordering: a plain (non-atomic) write made before set_result() is
// visible after get() returns on another thread (TSan checks this too).
TEST_P(FutureTest, PlainWriteBeforeSetResultVisibleAfterGet) {
  for (int i = 0; i < 200; ++i) {
    auto data = std::make_shared<std::vector<int>>();
    Future<void> f;
    // Writer: a plain thread; reader: a task.
    std::thread writer([data, f, i]() mutable {
      data->assign(64, i);
      f.set_result();
    });
    bool ok = rt().block_on([data, f]() mutable {
      f.get();
      return data->size() == 64;
    });
    writer.join();
    ASSERT_TRUE(ok) << "iteration " << i;
    EXPECT_EQ((*data)[63], i);
  }
  for (int i = 0; i < 200; ++i) {
    int plain = 0;
    Future<int> f;
    // Writer: a task; reader: this plain thread.
    rt().spawn([&plain, f, i]() mutable {
      plain = i + 1;
      f.set_result(i);
    });
    ASSERT_EQ(f.get(), i);
    ASSERT_EQ(plain, i + 1);
  }
  // Writer: a task; reader: a task on (possibly) another worker.
  int results = rt().block_on([] {
    int good = 0;
    for (int i = 0; i < 200; ++i) {
      auto box = std::make_shared<std::string>();
      Future<void> f;
      auto w = spindle::spawn([box, f, i]() mutable {
        *box = "value-" + std::to_string(i);
        f.set_result();
      });
      f.get();
      good += *box == "value-" + std::to_string(i);
      w.get();
    }
    return good;
  });
  EXPECT_EQ(results, 200);
}

TEST_P(FutureTest, CompletionRaceHasOneWinner) {
  for (int round = 0; round < 50; ++round) {
    Future<int> f;
    std::atomic<int> winners{0}, losers{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i) {
      ts.emplace_back([&, f, i]() mutable {
        try {
          if (i % 2 == 0) {
            f.set_result(i);
            ++winners;
          } else if (f.cancel("c")) {
            ++winners;
          } else {
            ++losers;
          }
        } catch (const InvalidStateError&) {
          ++losers;
        }
      });
    }
    for (auto& t : ts) {
      t.join();
    }
    EXPECT_EQ(winners.load(), 1);
    EXPECT_EQ(losers.load(), 3);
    EXPECT_TRUE(f.done());
  }
}

// ---------------------------------------------------------------------------
// Done-callbacks
// ---------------------------------------------------------------------------

TEST_P(FutureTest, CallbacksRunInRegistrationOrderWithFuture) {
  struct Shared {
    std::mutex mu;
    std::vector<std::string> log;
    Future<void> all;
  };
  auto s = std::make_shared<Shared>();
  Future<std::string> f;
  for (int i = 0; i < 6; ++i) {
    f.add_done_callback([s, f, i](Future<std::string> g) {
      std::lock_guard<std::mutex> l(s->mu);
      s->log.push_back(std::to_string(i) + ":" + g.result() + (g == f ? ":same" : ":other"));
      if (i == 5) {
        s->all.set_result();
      }
    });
  }
  EXPECT_FALSE(s->all.done());
  std::thread setter([f]() mutable { f.set_result("r"); });
  setter.join();
  ASSERT_TRUE(s->all.wait_for(5s));
  std::lock_guard<std::mutex> l(s->mu);
  EXPECT_EQ(s->log, (std::vector<std::string>{"0:r:same", "1:r:same", "2:r:same", "3:r:same",
                                              "4:r:same", "5:r:same"}));
}

TEST_P(FutureTest, CallbacksFromTaskSeeCancelledAndException) {
  auto seen = std::make_shared<Future<std::string>>();
  auto seen2 = std::make_shared<Future<std::string>>();
  // rt().spawn(...).get() rather than block_on: block_on's final sweep
  // cancels the queued callback (RuntimeApi.BlockOnEndStillRunsPendingDoneCallbacks).
  rt().spawn([seen, seen2] {
        Future<int> c;
        c.add_done_callback([seen](Future<int> g) {
          seen->set_result(g.cancelled() ? "cancelled:" + cancelled_message([&] { g.result(); })
                                         : "not cancelled");
        });
        c.cancel("bye");
        Future<void> e;
        e.add_done_callback([seen2](Future<void> g) {
          try {
            std::rethrow_exception(g.exception());
          } catch (const std::exception& ex) {
            seen2->set_result(ex.what());
          }
        });
        e.set_exception(std::make_exception_ptr(std::runtime_error("bad")));
      })
      .get();
  ASSERT_TRUE(seen->wait_for(5s));
  EXPECT_EQ(seen->result(), "cancelled:bye");
  ASSERT_TRUE(seen2->wait_for(5s));
  EXPECT_EQ(seen2->result(), "bad");
}

TEST_P(FutureTest, CallbackAddedAfterCompletionRunsSoonNotInline) {
  // From a plain thread.
  {
    Future<int> f;
    f.set_result(4);
    auto ran = std::make_shared<Future<bool>>();  // value: ran inline?
    t_inside_add_done_callback = true;
    f.add_done_callback(
        [ran](Future<int> g) { ran->set_result(t_inside_add_done_callback || g.result() != 4); });
    t_inside_add_done_callback = false;
    ASSERT_TRUE(ran->wait_for(5s)) << "callback added after completion never ran";
    EXPECT_FALSE(ran->result()) << "callback ran inside add_done_callback";
  }
  // From a task: nothing in between may let it run on this worker either.
  auto ran = std::make_shared<Future<bool>>();
  // rt().spawn(...).get() rather than block_on: block_on's final sweep
  // cancels the queued callback (RuntimeApi.BlockOnEndStillRunsPendingDoneCallbacks).
  rt().spawn([ran] {
        Future<void> f;
        f.set_result();
        t_inside_add_done_callback = true;
        // (Another worker may run it at once; only running inline is wrong.)
        f.add_done_callback([ran](Future<void>) { ran->set_result(t_inside_add_done_callback); });
        t_inside_add_done_callback = false;
      })
      .get();
  ASSERT_TRUE(ran->wait_for(5s)) << "callback added after completion never ran";
  EXPECT_FALSE(ran->result()) << "callback ran inside add_done_callback";
}

TEST_P(FutureTest, RemoveDoneCallback) {
  struct Shared {
    std::mutex mu;
    std::vector<int> order;
    Future<void> last;
  };
  auto s = std::make_shared<Shared>();
  Future<int> f;
  auto record = [s](int i) {
    return [s, i](Future<int>) {
      std::lock_guard<std::mutex> l(s->mu);
      s->order.push_back(i);
    };
  };
  spindle::CallbackId a = f.add_done_callback(record(1));
  spindle::CallbackId b = f.add_done_callback(record(2));
  spindle::CallbackId c = f.add_done_callback(record(3));
  f.add_done_callback([s](Future<int>) { s->last.set_result(); });
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_EQ(f.remove_done_callback(b), 1u);
  EXPECT_EQ(f.remove_done_callback(b), 0u);       // already removed
  EXPECT_EQ(f.remove_done_callback(987654), 0u);  // never registered
  f.set_result(0);
  ASSERT_TRUE(s->last.wait_for(5s));
  // The batch runs in order, so the removed one would have run before "last".
  {
    std::lock_guard<std::mutex> l(s->mu);
    EXPECT_EQ(s->order, (std::vector<int>{1, 3}));
  }
  // After completion nothing is registered any more.
  EXPECT_EQ(f.remove_done_callback(a), 0u);
}

TEST_P(FutureTest, RemoveDoneCallbackFromTask) {
  auto ran = std::make_shared<std::atomic<bool>>(false);
  auto done = std::make_shared<Future<void>>();
  // rt().spawn(...).get() rather than block_on: block_on's final sweep
  // cancels the queued callback (RuntimeApi.BlockOnEndStillRunsPendingDoneCallbacks).
  rt().spawn([ran, done] {
        Future<void> f;
        auto id = f.add_done_callback([ran](Future<void>) { *ran = true; });
        f.add_done_callback([done](Future<void>) { done->set_result(); });
        EXPECT_EQ(f.remove_done_callback(id), 1u);
        f.set_result();
      })
      .get();
  ASSERT_TRUE(done->wait_for(5s));
  EXPECT_FALSE(ran->load());
}

TEST_P(FutureTest, ThrowingCallbackDoesNotStopTheOthers) {
  auto second = std::make_shared<Future<int>>();
  Future<int> f;
  f.add_done_callback([](Future<int>) { throw std::runtime_error("callback failure (expected)"); });
  f.add_done_callback([second](Future<int> g) { second->set_result(g.result()); });
  f.set_result(8);
  ASSERT_TRUE(second->wait_for(5s));
  EXPECT_EQ(second->result(), 8);
}

TEST_P(FutureTest, CallbackSeesWritesMadeBeforeCompletion) {
  for (int i = 0; i < 100; ++i) {
    auto data = std::make_shared<int>(0);
    auto seen = std::make_shared<Future<int>>();
    Future<void> f;
    f.add_done_callback([data, seen](Future<void>) { seen->set_result(*data); });
    std::thread t([data, f, i]() mutable {
      *data = i;
      f.set_result();
    });
    t.join();
    ASSERT_TRUE(seen->wait_for(5s));
    ASSERT_EQ(seen->result(), i);
  }
}

// With no runtime alive, callbacks run on the completing thread (future.hpp).
TEST(FutureNoRuntime, WorksWithoutRuntime) {
  Future<int> f;
  std::thread::id cb_thread;
  int seen = 0;
  f.add_done_callback([&](Future<int> g) {
    cb_thread = std::this_thread::get_id();
    seen = g.result();
  });
  std::thread setter([f]() mutable { f.set_result(12); });
  EXPECT_EQ(f.get(), 12);
  setter.join();
  EXPECT_EQ(seen, 12);
  EXPECT_NE(cb_thread, std::thread::id());
  EXPECT_NE(cb_thread, std::this_thread::get_id());
  EXPECT_EQ(f.repr(), "<Future finished result=12>");
}

// --- a value constructor that throws (future_core.hpp INV-F4) -------------

namespace {

struct ThrowsOnConvert {
  explicit ThrowsOnConvert(int v) : value(v) {}
  ThrowsOnConvert(const char*) { throw std::runtime_error("cannot convert"); }
  int value = 0;
};

// Its move constructor succeeds `moves_ok` times down a chain of moves,
// then throws: 0 fails the first move, 1 the second (set_result moves a
// value it made before claiming into the future after claiming).
struct ThrowingMove {
  static constexpr int kNeverFails = 1 << 30;
  int value = 0;
  int moves_ok = kNeverFails;
  explicit ThrowingMove(int v, int ok = kNeverFails) : value(v), moves_ok(ok) {}
  ThrowingMove(const ThrowingMove&) = default;
  ThrowingMove(ThrowingMove&& o) : value(o.value), moves_ok(o.moves_ok - 1) {
    if (o.moves_ok <= 0) {
      throw std::runtime_error("move failed");
    }
  }
};

// The future is pending and fully usable after a failed set_result.
template <class T>
void expect_still_pending_and_usable(spindle::Future<T> f, T good) {
  EXPECT_FALSE(f.done());
  EXPECT_EQ(f.repr(), "<Future pending>");
  f.set_result(std::move(good));
  EXPECT_TRUE(f.done());
}

}  // namespace

TEST_P(FutureTest, ThrowingConversionLeavesTheFuturePending) {
  spindle::Future<ThrowsOnConvert> f;
  EXPECT_THROW(f.set_result("x"), std::runtime_error);
  expect_still_pending_and_usable(f, ThrowsOnConvert(3));
  EXPECT_EQ(f.result().value, 3);
}

TEST_P(FutureTest, ThrowingMoveLeavesTheFuturePending) {
  for (int moves_ok : {0, 1}) {
    spindle::Future<ThrowingMove> f;
    EXPECT_THROW(f.set_result(ThrowingMove(1, moves_ok)), std::runtime_error) << moves_ok;
    expect_still_pending_and_usable(f, ThrowingMove(2));
    EXPECT_EQ(f.result().value, 2);
  }
}

TEST_P(FutureTest, ThrowingValueDoesNotWedgeCancelOrWaiters) {
  // Before INV-F4 the failed claim stayed "completing" for ever: cancel()
  // returned false, set_exception() said already done, and a task woken by
  // cancellation spun its worker for ever waiting for the publication.
  spindle::Future<ThrowingMove> f;
  EXPECT_THROW(f.set_result(ThrowingMove(1, 0)), std::runtime_error);
  EXPECT_TRUE(f.cancel("gave up"));
  EXPECT_TRUE(f.cancelled());

  spindle::Future<ThrowingMove> g;
  EXPECT_THROW(g.set_result(ThrowingMove(1, 0)), std::runtime_error);
  g.set_exception(std::make_exception_ptr(std::logic_error("instead")));
  EXPECT_THROW(g.result(), std::logic_error);

  spindle::Future<ThrowingMove> h;
  std::string msg = rt().block_on([h]() mutable {
    auto waiter = spindle::spawn([h]() mutable { return h.get().value; });
    spindle::testing::await_parked(waiter);  // parked on h, not merely queued
    EXPECT_THROW(h.set_result(ThrowingMove(1, 0)), std::runtime_error);
    waiter.cancel("stop waiting");
    try {
      waiter.get();
    } catch (const spindle::Cancelled& c) {
      return c.message();
    }
    return std::string("not cancelled");
  });
  EXPECT_EQ(msg, "stop waiting");
  EXPECT_TRUE(h.cancelled()) << "the waiter's cancellation reaches the awaited future";
}

TEST_P(FutureTest, CallbackIdsAreUniqueAcrossFutures) {
  // A remove_done_callback() id names one registration in the process,
  // never another future's (ids were per-future 32-bit counters, reused and
  // wrapping).
  spindle::Future<int> a, b;
  std::vector<spindle::CallbackId> ids;
  for (int i = 0; i < 1000; ++i) {
    ids.push_back(a.add_done_callback([](spindle::Future<int>) {}));
    ids.push_back(b.add_done_callback([](spindle::Future<int>) {}));
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "an id was handed out twice";
  EXPECT_EQ(b.remove_done_callback(ids.front()) + a.remove_done_callback(ids.front()), 1u);
}
