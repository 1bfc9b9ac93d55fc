// The combinator examples of the asyncio tutorials that seeds_test.cpp
// lists (004 "Tasks & Futures": wait, as_completed, gather, TaskGroup, shield +
// wait_for; 002: gather over a shared Future), translated to spindle with
// their printed output asserted.
//
// As in seeds_test.cpp: every example "prints" into an Output; sleeps are
// scaled down (0.1 s -> 10 ms and so on); where several workers make the
// order across tasks free, a test asserts what asyncio itself guarantees and
// says so. Where the tutorial's outcome depends only on timer precision (a
// split between done and pending, an order of completion), the test adds
// margins or explicit dependencies so the outcome is the tutorial's on any
// machine: a stalled worker may resume sleepers that are due together in
// any order, where asyncio resumes them in deadline order.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <spindle/combinators.hpp>
#include <spindle/task_group.hpp>

#include "printed_output.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::ExceptionGroup;
using spindle::Future;
using spindle::ReturnWhen;
using spindle::Task;
using spindle::TaskGroup;
using spindle::TimeoutError;
using spindle::testing::Output;
using spindle::testing::pos;
using spindle::testing::RuntimeTest;

namespace {

// async def work(n): await asyncio.sleep(n * 0.1); return n   (0.1 s -> 10 ms)
Task<int> work(int n, std::chrono::milliseconds unit = 10ms) {
  return spindle::spawn([n, unit] {
    spindle::sleep(unit * n);
    return n;
  });
}

std::vector<int> results_of(const std::vector<Future<int>>& fs) {
  std::vector<int> out;
  for (const auto& f : fs) {
    out.push_back(f.result());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

class ToolboxSeeds : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(ToolboxSeeds);

// ---------------------------------------------------------------------------
// 004 §7.1 asyncio.wait(): ALL_COMPLETED, then FIRST_COMPLETED and
// FIRST_EXCEPTION on the same (now finished) tasks.
// ---------------------------------------------------------------------------
TEST_P(ToolboxSeeds, WaitAllThenFirstCompletedThenFirstException) {
  rt().block_on([] {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(work(i));
    }
    auto all = spindle::wait(tasks);
    EXPECT_EQ(all.done.size(), 5u);
    EXPECT_TRUE(all.pending.empty());
    EXPECT_EQ(results_of(all.done), (std::vector<int>{0, 1, 2, 3, 4}));
    // Everything is finished: both return at once with all five done.
    auto first = spindle::wait(tasks, ReturnWhen::FirstCompleted);
    EXPECT_EQ(first.done.size(), 5u);
    auto exc = spindle::wait(tasks, ReturnWhen::FirstException);
    EXPECT_EQ(exc.done.size(), 5u);
  });
}

// §7.1 with fresh tasks: FIRST_COMPLETED returns with work(0) alone (the
// others sleep a second apart here, so nothing else can finish meanwhile).
TEST_P(ToolboxSeeds, WaitFirstCompleted) {
  rt().block_on([] {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(work(i, 1s));
    }
    auto [done, pending] = spindle::wait(tasks, ReturnWhen::FirstCompleted);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].result(), 0);
    EXPECT_EQ(pending.size(), 4u);
    for (auto& t : pending) {
      t.cancel();
    }
  });
}

// §7.1 FIRST_EXCEPTION, with work(1) failing (once work(0) is done): wait
// returns on the failure.
TEST_P(ToolboxSeeds, WaitFirstException) {
  rt().block_on([] {
    std::vector<Task<int>> tasks;
    tasks.push_back(work(0));
    tasks.push_back(spindle::spawn([first = tasks[0]]() -> int {
      first.core()->wait();
      spindle::sleep(10ms);
      throw std::invalid_argument("ValueError");
    }));
    for (int i = 2; i < 5; ++i) {
      tasks.push_back(work(i, 1s));
    }
    auto [done, pending] = spindle::wait(tasks, ReturnWhen::FirstException);
    EXPECT_EQ(done.size(), 2u);
    EXPECT_EQ(pending.size(), 3u);
    EXPECT_THROW(tasks[1].result(), std::invalid_argument);
    for (auto& t : pending) {
      t.cancel();
    }
  });
}

// §7.2 asyncio.wait(tasks, timeout=0.25) prints "Done: 3, Pending: 2", then
// cancels the pending ones. The timeout is the tutorial's 250 ms; work(0..2)
// sleep 0..2 ms and work(3), work(4) 10 s here.
TEST_P(ToolboxSeeds, WaitTimeoutLeavesTasksPendingThenCancelThem) {
  Output out;
  rt().block_on([&] {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(work(i, i < 3 ? 1ms : 10s));
    }
    auto t0 = spindle::Clock::now();
    auto [done, pending] = spindle::wait(tasks, ReturnWhen::AllCompleted, 250ms);
    EXPECT_GE(spindle::Clock::now() - t0, 250ms);
    out.print("Done: " + std::to_string(done.size()) +
              ", Pending: " + std::to_string(pending.size()));
    for (auto& t : pending) {
      EXPECT_FALSE(t.done());  // the timeout cancels nothing by itself
      t.cancel();
    }
    for (auto& t : pending) {
      t.core()->wait();
      EXPECT_TRUE(t.cancelled());
    }
  });
  EXPECT_EQ(out.lines(), std::vector<std::string>{"Done: 3, Pending: 2"});
}

// §7.3 asyncio.as_completed(): created slow, fast, medium; processed fast,
// medium, slow (0.3/0.1/0.2 s -> 30/10/20 ms). Each fetch also awaits the
// one the tutorial's delays finish before it (see the top of the file).
TEST_P(ToolboxSeeds, AsCompletedFastMediumSlow) {
  Output out;
  rt().block_on([&] {
    auto fetch = [](std::string url, std::chrono::milliseconds delay,
                    std::optional<Task<std::string>> before = {}) {
      return spindle::spawn([url, delay, before] {
        spindle::sleep(delay);
        if (before) {
          before->core()->wait();
        }
        return "Data from " + url;
      });
    };
    auto fast = fetch("fast.com", 10ms);
    auto medium = fetch("medium.com", 20ms, fast);
    std::vector<Task<std::string>> tasks{fetch("slow.com", 30ms, medium), fast, medium};
    for (auto& f : spindle::as_completed(tasks)) {
      out.print(f.get());
    }
  });
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"Data from fast.com", "Data from medium.com",
                                                   "Data from slow.com"}));
}

// §8.3 Collecting all results: gather preserves order; wait + result() gives
// the same values in no particular order.
TEST_P(ToolboxSeeds, GatherPreservesOrder) {
  rt().block_on([] {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(work(4 - i));  // the last one finishes first
    }
    EXPECT_EQ(spindle::gather(tasks), (std::vector<int>{4, 3, 2, 1, 0}));
    auto [done, pending] = spindle::wait(tasks);
    EXPECT_EQ(results_of(done), (std::vector<int>{0, 1, 2, 3, 4}));
  });
}

// §5.1 Basic TaskGroup: prints 2, 4, 6 once the group is left.
TEST_P(ToolboxSeeds, TaskGroupBasic) {
  Output out;
  rt().block_on([&] {
    auto twice = [](int n) {
      return [n] {
        spindle::sleep(10ms);
        return n * 2;
      };
    };
    Task<int> t1, t2, t3;
    spindle::task_group([&](TaskGroup& tg) {
      t1 = tg.spawn(twice(1));
      t2 = tg.spawn(twice(2));
      t3 = tg.spawn(twice(3));
    });
    out.print(std::to_string(t1.result()));
    out.print(std::to_string(t2.result()));
    out.print(std::to_string(t3.result()));
  });
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"2", "4", "6"}));
}

// §5.3 Error handling with TaskGroup: `except* ValueError as eg` prints
// "Caught: Something went wrong!". In asyncio both sleeps end in the same
// loop step and good_task, created first, finishes before bad_task fails;
// with several workers that order is not fixed, so bad_task also waits for
// good_task to be done — and good_task's result stays reachable.
TEST_P(ToolboxSeeds, TaskGroupCollectsAValueError) {
  Output out;
  Task<std::string> t1;
  rt().block_on([&] {
    try {
      spindle::task_group([&](TaskGroup& tg) {
        t1 = tg.spawn([] {
          spindle::sleep(10ms);
          return std::string("OK");
        });
        tg.spawn([&t1]() -> std::string {
          spindle::sleep(10ms);
          t1.core()->wait();
          throw std::invalid_argument("Something went wrong!");
        });
      });
    } catch (const ExceptionGroup& eg) {
      for (const auto& e : eg.exceptions()) {
        try {
          std::rethrow_exception(e);
        } catch (const std::invalid_argument& v) {  // except* ValueError
          out.print(std::string("Caught: ") + v.what());
        }
      }
    }
  });
  EXPECT_EQ(out.lines(), std::vector<std::string>{"Caught: Something went wrong!"});
  EXPECT_EQ(t1.result(), "OK");
}

// §8.2 Task shielding: wait_for(shield(task), 0.5) times out, the task runs
// on, and awaiting it again gives its result. The 1 s of important_work is
// a gate opened once the 50 ms timeout fired (no race between two timers).
TEST_P(ToolboxSeeds, ShieldWithWaitFor) {
  Output out;
  rt().block_on([&] {
    Future<void> one_second;
    auto task = spindle::spawn([one_second] {
      one_second.core()->wait();
      return std::string("Critical result");
    });
    try {
      std::string result = spindle::wait_for(spindle::shield(task), 50ms);
      out.print("no timeout: " + result);
    } catch (const TimeoutError&) {
      out.print("Timeout, but task still running!");
      EXPECT_FALSE(task.done());
      EXPECT_FALSE(task.cancelled());
      one_second.set_result();
      std::string result = task.get();
      out.print("Got result: " + result);
    }
  });
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"Timeout, but task still running!",
                                                   "Got result: Critical result"}));
}

// §4.3 Practical Future example: gather(producer(future), consumer(future)).
TEST_P(ToolboxSeeds, ProducerConsumerThroughAFutureWithGather) {
  Output out;
  rt().block_on([&] {
    Future<std::string> future;
    auto producer = spindle::spawn([future]() mutable {
      spindle::sleep(10ms);
      future.set_result("Data ready!");
    });
    auto consumer = spindle::spawn([&out, future]() mutable {
      out.print("Waiting for data...");
      std::string result = future.get();
      out.print("Got: " + result);
    });
    spindle::gather(producer, consumer);
  });
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"Waiting for data...", "Got: Data ready!"}));
}

// 002: results = await asyncio.gather(foo(future), bar(future)). asyncio
// prints foo's first line before bar's (start order); here they start on
// different workers, so only the "happens after" lines are fixed.
TEST_P(ToolboxSeeds, GatherOfTwoCoroutinesSharingAFuture) {
  Output out;
  rt().block_on([&] {
    Future<std::string> future;
    auto bar = spindle::ensure_future([&out, future]() mutable {
      out.print("bar will sleep for 3 seconds");
      spindle::sleep(30ms);
      out.print("bar resolving the future");
      future.set_result("future is resolved");
    });
    auto foo = spindle::ensure_future([&out, future]() mutable {
      out.print("foo will await the future");
      future.get();
      out.print("foo finds the future resolved");
    });
    auto results = spindle::gather(foo, bar);
    static_assert(std::tuple_size_v<decltype(results)> == 2);
  });
  out.print("main exiting");
  auto lines = out.lines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_LT(pos(lines, "bar will sleep for 3 seconds"), pos(lines, "bar resolving the future"));
  EXPECT_LT(pos(lines, "foo will await the future"), pos(lines, "foo finds the future resolved"));
  EXPECT_LT(pos(lines, "bar resolving the future"), pos(lines, "foo finds the future resolved"));
  EXPECT_EQ(lines.back(), "main exiting");
}
