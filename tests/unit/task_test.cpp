// Task<T>, TaskRef, spawn, current_task, all_tasks, names, ids, repr,
// misuse, and the "exception never retrieved" report (DESIGN.md "Inside a
// task", "Future<T> and Task<T>", "Errors").
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "polling.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::Future;
using spindle::InvalidStateError;
using spindle::Task;
using spindle::TaskRef;
using spindle::testing::eventually;
using spindle::testing::RuntimeTest;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Records every "exception never retrieved" report. Shared so a late report
// (after the test body) cannot touch a dead object.
struct Reports {
  std::mutex mu;
  std::vector<std::string> names;
  std::vector<std::string> whats;
  Future<void> first;
  std::atomic<int> count{0};

  static std::shared_ptr<Reports> install(spindle::Runtime& rt) {
    auto r = std::make_shared<Reports>();
    rt.set_exception_handler([r](const TaskRef& t, std::exception_ptr e) {
      std::string what = spindle::describe_exception(e);
      {
        std::lock_guard<std::mutex> l(r->mu);
        r->names.push_back(t.valid() ? t.get_name() : "<no task>");
        r->whats.push_back(what);
      }
      if (r->count.fetch_add(1) == 0) {
        r->first.set_result();
      }
    });
    return r;
  }
  std::vector<std::string> names_snapshot() {
    std::lock_guard<std::mutex> l(mu);
    return names;
  }
};

struct CustomError {
  int code;
  std::string text;
};

}  // namespace

class TaskTest : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(TaskTest);

// ---------------------------------------------------------------------------
// Spawning
// ---------------------------------------------------------------------------

TEST_P(TaskTest, SpawnedTaskReturnsResult) {
  int v = rt().block_on([] {
    auto t = spindle::spawn([] { return 21 * 2; });
    return t.get();
  });
  EXPECT_EQ(v, 42);
}

TEST_P(TaskTest, SpawnReturnsAtOnceAndCallerKeepsRunning) {
  rt().block_on([this] {
    Future<void> gate;
    std::atomic<bool> parent_continued{false};
    std::atomic<bool> saw_parent_at_start{false};
    auto child = spindle::spawn([&] {
      saw_parent_at_start = parent_continued.load();
      gate.get();  // cannot finish before the parent opens the gate
      return parent_continued.load();
    });
    // spawn() returned while the child cannot have finished.
    parent_continued = true;
    EXPECT_FALSE(child.done());
    spindle::yield();
    EXPECT_FALSE(child.done());
    gate.set_result();
    EXPECT_TRUE(child.get());
    if (workers() == 1) {
      // One worker: the child can only start once the parent suspends, so
      // spawn() must not have run it eagerly on the caller's stack.
      EXPECT_TRUE(saw_parent_at_start.load());
    }
  });
}

TEST_P(TaskTest, SpawnManyChildrenBeforeAwaitingAny) {
  rt().block_on([] {
    std::atomic<int> started{0};
    Future<void> gate;
    std::vector<Task<int>> kids;
    for (int i = 0; i < 50; ++i) {
      kids.push_back(spindle::spawn([&started, gate, i]() mutable {
        ++started;
        gate.get();
        return i;
      }));
    }
    // All 50 were created without waiting for any of them.
    for (auto& k : kids) {
      EXPECT_FALSE(k.done());
    }
    gate.set_result();
    int sum = 0;
    for (auto& k : kids) {
      sum += k.get();
    }
    EXPECT_EQ(sum, 49 * 50 / 2);
    EXPECT_EQ(started.load(), 50);
  });
}

TEST_P(TaskTest, RuntimeSpawnFromPlainThread) {
  std::atomic<int> result{0};
  std::atomic<bool> ran_in_task{false};
  std::thread th([&] {
    auto t = rt().spawn(
        [&] {
          ran_in_task = spindle::in_task();
          spindle::sleep(1ms);
          return 77;
        },
        "from-thread");
    EXPECT_EQ(t.get_name(), "from-thread");
    result = t.get();
  });
  th.join();
  EXPECT_EQ(result.load(), 77);
  EXPECT_TRUE(ran_in_task.load());
  EXPECT_FALSE(spindle::in_task());
}

TEST_P(TaskTest, RuntimeSpawnFromManyThreads) {
  std::vector<std::thread> ths;
  std::atomic<int> sum{0};
  for (int i = 0; i < 4; ++i) {
    ths.emplace_back([&, i] {
      for (int j = 0; j < 25; ++j) {
        sum += rt().spawn([i, j] { return i * 100 + j; }).get();
      }
    });
  }
  for (auto& t : ths) {
    t.join();
  }
  int expect = 0;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 25; ++j) {
      expect += i * 100 + j;
    }
  }
  EXPECT_EQ(sum.load(), expect);
}

TEST_P(TaskTest, VoidAndMoveOnlyTasks) {
  auto p = rt().block_on([] {
    std::atomic<bool> ran{false};
    auto v = spindle::spawn([&] { ran = true; });
    v.get();
    EXPECT_TRUE(ran.load());
    EXPECT_TRUE(v.done());
    auto m = spindle::spawn([] { return std::make_unique<int>(5); });
    return m.get();
  });
  ASSERT_TRUE(p != nullptr);
  EXPECT_EQ(*p, 5);
}

// A callable larger than 64 KiB: the task finds its result at a 16-bit
// offset from its header, which must not wrap past the callable.
TEST_P(TaskTest, ResultOfATaskWithAHugeCallableIsIntact) {
  constexpr std::size_t kBytes = 70000;
  auto pattern = std::make_unique<std::array<unsigned char, kBytes>>();
  for (std::size_t i = 0; i < kBytes; ++i) {
    (*pattern)[i] = static_cast<unsigned char>(i * 7);
  }
  // Built on this plain thread's stack: a task's 64 KiB stack could not hold it.
  auto t = rt().spawn([bytes = *pattern]() {
    unsigned long sum = 0;
    for (unsigned char b : bytes) {
      sum += b;
    }
    return std::string("sum=") + std::to_string(sum);
  });
  unsigned long want = 0;
  for (unsigned char b : *pattern) {
    want += b;
  }
  EXPECT_EQ(t.get(), "sum=" + std::to_string(want));
  EXPECT_EQ(t.result(), "sum=" + std::to_string(want)) << "the stored result changed";
}

// ---------------------------------------------------------------------------
// Names, ids, current_task, all_tasks
// ---------------------------------------------------------------------------

TEST_P(TaskTest, DefaultNameIsTaskDashId) {
  rt().block_on([] {
    auto t = spindle::spawn([] {});
    EXPECT_EQ(t.get_name(), "Task-" + std::to_string(t.id()));
    t.get();
    EXPECT_EQ(t.get_name(), "Task-" + std::to_string(t.id()));
  });
  auto u = rt().spawn([] { return 1; });
  EXPECT_EQ(u.get_name(), "Task-" + std::to_string(u.id()));
  u.get();
}

TEST_P(TaskTest, SetAndGetName) {
  rt().block_on([] {
    auto t = spindle::spawn([] { return spindle::current_task().get_name(); }, "worker-a");
    EXPECT_EQ(t.get_name(), "worker-a");
    EXPECT_EQ(t.get(), "worker-a");
    t.set_name("renamed");
    EXPECT_EQ(t.get_name(), "renamed");
    EXPECT_EQ(t.repr(), "<Task finished name='renamed' result='worker-a'>");

    // Through a TaskRef (current_task) from inside the task.
    auto u = spindle::spawn([] {
      TaskRef me = spindle::current_task();
      me.set_name("self-named");
      return me.get_name();
    });
    EXPECT_EQ(u.get(), "self-named");
    EXPECT_EQ(u.get_name(), "self-named");
  });
}

TEST_P(TaskTest, IdsAreUnique) {
  std::vector<std::uint64_t> ids = rt().block_on([] {
    std::vector<Task<std::uint64_t>> ts;
    for (int i = 0; i < 200; ++i) {
      ts.push_back(spindle::spawn([] { return spindle::current_task().id(); }));
    }
    std::vector<std::uint64_t> out;
    for (auto& t : ts) {
      std::uint64_t inside = t.get();
      EXPECT_EQ(inside, t.id());
      out.push_back(t.id());
    }
    return out;
  });
  // Plus tasks spawned from plain threads.
  for (int i = 0; i < 20; ++i) {
    auto t = rt().spawn([] {});
    ids.push_back(t.id());
    t.get();
  }
  std::set<std::uint64_t> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
}

TEST_P(TaskTest, CurrentTaskMatchesHandle) {
  rt().block_on([] {
    Future<void> gate;
    auto t = spindle::spawn(
        [gate]() mutable {
          TaskRef me = spindle::current_task();
          gate.get();
          TaskRef again = spindle::current_task();  // after a suspension (may migrate)
          EXPECT_TRUE(me == again);
          return me.id();
        },
        "cur");
    TaskRef ref = t;  // Task converts to TaskRef
    EXPECT_EQ(ref.id(), t.id());
    EXPECT_EQ(ref.get_name(), "cur");
    EXPECT_FALSE(ref.done());
    gate.set_result();
    EXPECT_EQ(t.get(), t.id());
    EXPECT_TRUE(ref.done());
    EXPECT_FALSE(ref.cancelled());
    EXPECT_EQ(ref.repr(), t.repr());

    TaskRef main_ref = spindle::current_task();
    EXPECT_NE(main_ref.id(), t.id());
    EXPECT_FALSE(main_ref.done());
  });
}

TEST_P(TaskTest, AllTasksInsideTask) {
  rt().block_on([] {
    Future<void> gate;
    auto a = spindle::spawn([gate] { gate.wait_for(5s); }, "all-a");
    auto b = spindle::spawn([gate] { gate.wait_for(5s); }, "all-b");
    std::vector<TaskRef> all = spindle::all_tasks();
    std::set<std::uint64_t> ids;
    for (auto& t : all) {
      ids.insert(t.id());
    }
    EXPECT_TRUE(ids.count(spindle::current_task().id()));
    EXPECT_TRUE(ids.count(a.id()));
    EXPECT_TRUE(ids.count(b.id()));
    gate.set_result();
    a.get();
    b.get();
    // Finished tasks are no longer listed (soon: the worker that ran them
    // unregisters them right after completing their futures).
    auto listed = [&] {
      for (auto& t : spindle::all_tasks()) {
        if (t.id() == a.id() || t.id() == b.id()) {
          return true;
        }
      }
      return false;
    };
    for (int i = 0; i < 5000 && listed(); ++i) {
      spindle::sleep(1ms);
    }
    EXPECT_FALSE(listed());
  });
}

TEST_P(TaskTest, AllTasksFromPlainThread) {
  Future<void> gate;
  auto t = rt().spawn([gate] { gate.wait_for(5s); }, "listed");
  bool found = false;
  for (auto& r : rt().all_tasks()) {
    if (r.id() == t.id()) {
      found = true;
      EXPECT_EQ(r.get_name(), "listed");
      EXPECT_FALSE(r.done());
    }
  }
  EXPECT_TRUE(found);
  gate.set_result();
  t.get();
}

// ---------------------------------------------------------------------------
// repr
// ---------------------------------------------------------------------------

TEST_P(TaskTest, ReprOfEachState) {
  rt().block_on([] {
    Future<void> gate;
    auto p = spindle::spawn([gate] { gate.wait_for(5s); });
    EXPECT_EQ(p.repr(), "<Task pending name='Task-" + std::to_string(p.id()) + "'>");
    gate.set_result();
    p.get();
    EXPECT_EQ(p.repr(), "<Task finished name='Task-" + std::to_string(p.id()) + "'>");

    auto s = spindle::spawn([] { return std::string("the result"); }, "x");
    s.get();
    EXPECT_EQ(s.repr(), "<Task finished name='x' result='the result'>");

    auto i = spindle::spawn([] { return 42; }, "n");
    i.get();
    EXPECT_EQ(i.repr(), "<Task finished name='n' result=42>");

    auto c = spindle::spawn([] { spindle::sleep(10s); }, "x");
    spindle::yield();
    c.cancel();
    EXPECT_THROW(c.get(), Cancelled);
    EXPECT_EQ(c.repr(), "<Task cancelled name='x'>");

    auto e = spindle::spawn([]() -> int { throw std::runtime_error("kaput"); }, "x");
    EXPECT_THROW(e.get(), std::runtime_error);
    std::string r = e.repr();
    EXPECT_TRUE(starts_with(r, "<Task finished name='x' exception=")) << r;
    EXPECT_NE(r.find("kaput"), std::string::npos) << r;
    EXPECT_EQ(r.back(), '>') << r;
  });
}

// ---------------------------------------------------------------------------
// Misuse
// ---------------------------------------------------------------------------

TEST_P(TaskTest, SetResultOnTaskIsInvalidState) {
  rt().block_on([] {
    Future<void> gate;
    auto t = spindle::spawn([gate] {
      gate.wait_for(5s);
      return 1;
    });
    EXPECT_THROW(t.set_result(5), InvalidStateError);
    EXPECT_THROW(t.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                 InvalidStateError);
    EXPECT_FALSE(t.done());
    gate.set_result();
    EXPECT_EQ(t.get(), 1);
    EXPECT_THROW(t.set_result(5), InvalidStateError);
    EXPECT_THROW(t.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                 InvalidStateError);
    EXPECT_EQ(t.result(), 1);

    auto v = spindle::spawn([] {});
    v.get();
    EXPECT_THROW(v.set_result(), InvalidStateError);
  });
}

TEST_P(TaskTest, SetResultOnTaskFromPlainThread) {
  Future<void> gate;
  auto t = rt().spawn([gate] { gate.wait_for(5s); });
  EXPECT_THROW(t.set_result(), InvalidStateError);
  gate.set_result();
  t.get();
}

TEST_P(TaskTest, TaskAwaitingItselfIsInvalidState) {
  auto slot = std::make_shared<Task<int>>();
  Future<void> ready;
  auto t = rt().spawn([slot, ready]() mutable -> int {
    ready.get();
    try {
      slot->get();  // awaiting itself
    } catch (const InvalidStateError& e) {
      EXPECT_NE(std::string(e.what()), "");
      try {
        spindle::current_task().wait();  // through a TaskRef
      } catch (const InvalidStateError&) {
        return 1;
      }
      return 2;
    }
    return 3;
  });
  *slot = t;
  ready.set_result();
  ASSERT_TRUE(t.wait_for(5s)) << "a task awaiting itself hangs";
  EXPECT_EQ(t.result(), 1);
  slot.reset();  // break the cycle
}

TEST_P(TaskTest, CallsOutsideRuntimeAreInvalidState) {
  // A runtime exists, but this thread is not one of its workers.
  auto expect_clear = [](auto fn, const char* what) {
    try {
      fn();
      ADD_FAILURE() << what << " did not throw";
    } catch (const InvalidStateError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
      EXPECT_NE(msg.find("outside"), std::string::npos) << msg;
    } catch (...) {
      ADD_FAILURE() << what << " threw something other than InvalidStateError";
    }
  };
  expect_clear([] { spindle::spawn([] {}); }, "spawn");
  expect_clear([] { spindle::sleep(1ms); }, "sleep");
  expect_clear([] { spindle::sleep_until(spindle::Clock::now() + 1ms); }, "sleep");
  expect_clear([] { spindle::yield(); }, "yield");
  expect_clear([] { spindle::current_task(); }, "current_task");
  expect_clear([] { spindle::check_cancelled(); }, "check_cancelled");
  expect_clear([] { spindle::all_tasks(); }, "all_tasks");
  EXPECT_FALSE(spindle::in_task());
  // From another plain thread too.
  std::thread th([&] {
    expect_clear([] { spindle::yield(); }, "yield");
    expect_clear([] { spindle::current_task(); }, "current_task");
  });
  th.join();
}

TEST(TaskNoRuntime, CallsWithNoRuntimeAreInvalidState) {
  EXPECT_THROW(spindle::spawn([] { return 1; }), InvalidStateError);
  EXPECT_THROW(spindle::sleep(1ms), InvalidStateError);
  EXPECT_THROW(spindle::sleep_until(spindle::Clock::now()), InvalidStateError);
  EXPECT_THROW(spindle::yield(), InvalidStateError);
  EXPECT_THROW(spindle::current_task(), InvalidStateError);
  EXPECT_THROW(spindle::check_cancelled(), InvalidStateError);
  EXPECT_THROW(spindle::all_tasks(), InvalidStateError);
  EXPECT_THROW(TaskRef().id(), InvalidStateError);
  EXPECT_THROW(TaskRef().cancel(), InvalidStateError);
}

TEST_P(TaskTest, EmptyTaskRefIsInvalidState) {
  TaskRef r;
  EXPECT_FALSE(r.valid());
  EXPECT_THROW(r.id(), InvalidStateError);
  EXPECT_THROW(r.get_name(), InvalidStateError);
  EXPECT_THROW(r.cancel("x"), InvalidStateError);
  EXPECT_THROW(r.done(), InvalidStateError);
  EXPECT_THROW(r.repr(), InvalidStateError);
  EXPECT_THROW(r.wait(), InvalidStateError);
  auto t = rt().spawn([] { return 1; });
  TaskRef a = t;
  TaskRef b = std::move(a);
  EXPECT_THROW(a.id(), InvalidStateError);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.id(), t.id());
  Task<int> moved = std::move(t);
  EXPECT_THROW(t.get(), InvalidStateError);  // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(t.get_name(), InvalidStateError);
  EXPECT_THROW(t.id(), InvalidStateError);
  EXPECT_EQ(moved.get(), 1);
}

// ---------------------------------------------------------------------------
// Exceptions
// ---------------------------------------------------------------------------

TEST_P(TaskTest, StdExceptionTypesPropagateThroughGet) {
  rt().block_on([] {
    auto a = spindle::spawn([]() -> int { throw std::out_of_range("range!"); });
    try {
      a.get();
      ADD_FAILURE() << "no exception";
    } catch (const std::out_of_range& e) {  // the dynamic type is kept
      EXPECT_STREQ(e.what(), "range!");
    }
    auto b = spindle::spawn([] {
      spindle::yield();
      throw std::invalid_argument("arg!");
    });
    EXPECT_THROW(b.get(), std::invalid_argument);
    EXPECT_TRUE(b.done());
    EXPECT_FALSE(b.cancelled());
    EXPECT_THROW(b.result(), std::invalid_argument);
    std::exception_ptr e = b.exception();
    ASSERT_NE(e, nullptr);
    EXPECT_THROW(std::rethrow_exception(e), std::invalid_argument);
  });
}

TEST_P(TaskTest, CustomExceptionTypesPropagateThroughGet) {
  auto t = rt().spawn([]() -> std::string {
    spindle::sleep(1ms);
    throw CustomError{404, "not found"};
  });
  try {
    t.get();  // from a plain thread
    ADD_FAILURE() << "no exception";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 404);
    EXPECT_EQ(e.text, "not found");
  }
  int thrown = rt().block_on([] {
    auto u = spindle::spawn([] { throw 17; });
    try {
      u.get();
    } catch (int v) {
      return v;
    }
    return 0;
  });
  EXPECT_EQ(thrown, 17);
}

TEST_P(TaskTest, BlockOnRethrowsCustomType) {
  try {
    rt().block_on([]() -> int { throw CustomError{1, "main failed"}; });
    ADD_FAILURE() << "no exception";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.text, "main failed");
  }
}

// ---------------------------------------------------------------------------
// "Task exception was never retrieved"
// ---------------------------------------------------------------------------

TEST_P(TaskTest, UnretrievedExceptionIsReportedWhenLastHandleGoes) {
  auto reports = Reports::install(rt());
  {
    auto t = rt().spawn([]() -> int { throw std::runtime_error("nobody looked"); }, "lonely");
    ASSERT_TRUE(t.wait_for(5s));  // waiting does not retrieve
    EXPECT_TRUE(t.done());
  }  // the last handle goes (ours or the scheduler's)
  ASSERT_TRUE(reports->first.wait_for(5s)) << "unretrieved exception was not reported";
  std::lock_guard<std::mutex> l(reports->mu);
  ASSERT_EQ(reports->names.size(), 1u);
  EXPECT_EQ(reports->names[0], "lonely");
  EXPECT_NE(reports->whats[0].find("nobody looked"), std::string::npos) << reports->whats[0];
}

TEST_P(TaskTest, UnretrievedExceptionOfDroppedHandleInsideTask) {
  auto reports = Reports::install(rt());
  rt().block_on([] {
    auto t = spindle::spawn([] { throw std::logic_error("fire and forget"); }, "forgotten");
    // Let it finish (block_on would cancel it otherwise), without retrieving.
    EXPECT_TRUE(t.wait_for(5s));
  });
  ASSERT_TRUE(reports->first.wait_for(5s)) << "unretrieved exception was not reported";
  EXPECT_EQ(reports->names_snapshot(), std::vector<std::string>{"forgotten"});
}

TEST_P(TaskTest, RetrievedExceptionIsNotReported) {
  auto reports = Reports::install(rt());
  {
    // block_on first: when it ends it cancels every task still alive.
    auto by_task = rt().block_on([] {
      auto t = spindle::spawn([] { throw std::runtime_error("4"); }, "by-task-get");
      EXPECT_THROW(t.get(), std::runtime_error);
      return t;
    });
    auto by_get = rt().spawn([]() -> int { throw std::runtime_error("1"); }, "by-get");
    auto by_result = rt().spawn([]() -> int { throw std::runtime_error("2"); }, "by-result");
    auto by_exception = rt().spawn([] { throw std::runtime_error("3"); }, "by-exception");
    EXPECT_THROW(by_get.get(), std::runtime_error);
    ASSERT_TRUE(by_result.wait_for(5s));
    EXPECT_THROW(by_result.result(), std::runtime_error);
    ASSERT_TRUE(by_exception.wait_for(5s));
    EXPECT_NE(by_exception.exception(), nullptr);
    EXPECT_TRUE(by_task.done());
    // Let the scheduler drop its references first, so that ours are last.
    ASSERT_TRUE(eventually([&] { return rt().stats().live_tasks == 0; }));
  }
  // A sentinel that is never retrieved: once it is reported, any wrong report
  // of the four above would have happened too.
  {
    auto s = rt().spawn([]() -> int { throw std::runtime_error("sentinel"); }, "sentinel");
    ASSERT_TRUE(s.wait_for(5s));
  }
  ASSERT_TRUE(reports->first.wait_for(5s)) << "the sentinel was not reported";
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(reports->names_snapshot(), std::vector<std::string>{"sentinel"});
}

TEST_P(TaskTest, SuccessfulAndCancelledTasksAreNotReported) {
  auto reports = Reports::install(rt());
  {
    auto ok = rt().spawn([] { return 1; }, "ok");
    auto c = rt().spawn([] { spindle::sleep(10s); }, "cancelled");
    ASSERT_TRUE(ok.wait_for(5s));
    c.cancel();
    ASSERT_TRUE(c.wait_for(5s));
    EXPECT_TRUE(c.cancelled());
  }
  {
    auto s = rt().spawn([]() -> int { throw std::runtime_error("sentinel"); }, "sentinel");
    ASSERT_TRUE(s.wait_for(5s));
  }
  ASSERT_TRUE(reports->first.wait_for(5s));
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(reports->names_snapshot(), std::vector<std::string>{"sentinel"});
}

TEST_P(TaskTest, CallSoonExceptionIsReported) {
  auto reports = Reports::install(rt());
  rt().call_soon([] { throw std::runtime_error("from call_soon"); });
  ASSERT_TRUE(reports->first.wait_for(5s));
  std::lock_guard<std::mutex> l(reports->mu);
  ASSERT_EQ(reports->whats.size(), 1u);
  EXPECT_NE(reports->whats[0].find("from call_soon"), std::string::npos);
}

TEST_P(TaskTest, UnretrievedPlainFutureExceptionIsReportedToHandler) {
  // runtime.hpp: the handler receives "exception never retrieved" reports;
  // "for a plain Future the TaskRef is empty".
  auto reports = Reports::install(rt());
  {
    Future<int> f;
    f.set_exception(std::make_exception_ptr(std::runtime_error("plain future failure")));
  }  // last handle: reported now
  ASSERT_TRUE(reports->first.wait_for(500ms)) << "plain future's exception was not reported";
  std::lock_guard<std::mutex> l(reports->mu);
  ASSERT_EQ(reports->names.size(), 1u);
  EXPECT_EQ(reports->names[0], "<no task>");
  EXPECT_NE(reports->whats[0].find("plain future failure"), std::string::npos);
}

// future.hpp, rule 2 (as for callbacks): from a plain thread, the report
// goes to the newest runtime that has not begun to shut down, not to one
// that is closing.
TEST_P(TaskTest, UnretrievedPlainFutureExceptionSkipsAClosingRuntime) {
  auto reports_open = Reports::install(rt());
  auto closing = std::make_unique<spindle::Runtime>();  // the newest runtime
  auto reports_closing = Reports::install(*closing);
  auto failed = std::make_unique<Future<int>>();
  failed->set_exception(std::make_exception_ptr(std::runtime_error("dropped while closing")));
  Future<void> started, in_shutdown, dropped;
  auto t = closing->spawn([started, in_shutdown, dropped]() mutable {
    try {
      started.set_result();  // a task cancelled before it starts never runs its body
      spindle::sleep(1h);
    } catch (const Cancelled&) {
      in_shutdown.set_result();  // the runtime is closing: its destructor cancelled us
      dropped.get();
      throw;
    }
  });
  std::thread dropper([&] {
    if (!in_shutdown.wait_for(10s)) {
      ADD_FAILURE() << "the shutdown did not cancel the task";
    }
    failed.reset();  // the last handle, on a plain thread: reported now
    dropped.set_result();
  });
  started.get();
  closing.reset();
  dropper.join();
  ASSERT_TRUE(reports_open->first.wait_for(5s)) << "the report did not reach the open runtime";
  EXPECT_EQ(reports_closing->count.load(), 0) << "the report went to the closing runtime";
  std::lock_guard<std::mutex> l(reports_open->mu);
  ASSERT_EQ(reports_open->whats.size(), 1u);
  EXPECT_NE(reports_open->whats[0].find("dropped while closing"), std::string::npos);
}

TEST_P(TaskTest, ChildOutlivesParent) {
  // asyncio: a task keeps running after the task that created it finished.
  Future<void> gate;
  Task<Task<int>> parent = rt().spawn([gate] {
    return spindle::spawn([gate]() mutable {
      gate.get();
      return 9;
    });
  });
  Task<int> child = parent.get();
  EXPECT_TRUE(parent.done());
  EXPECT_FALSE(child.done());
  gate.set_result();
  EXPECT_EQ(child.get(), 9);
}
