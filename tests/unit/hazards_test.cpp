// The hazards of stackful tasks that move between threads (DESIGN.md):
// exception state across a switch, thread-locals after migration, stack
// overflow reporting.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cfenv>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime_fixture.hpp"

using namespace std::chrono_literals;

namespace {

struct Tagged : std::runtime_error {
  explicit Tagged(int t) : std::runtime_error("tagged " + std::to_string(t)), tag(t) {}
  int tag;
};

// The documented way to read a thread_local from task code: through a
// function the compiler cannot inline, re-read after every suspension.
thread_local int t_thread_marker = 0;
__attribute__((noinline)) int& thread_marker() {
  int& m = t_thread_marker;
  asm volatile("" ::: "memory");
  return m;
}

// The OS thread id, read fresh: glibc declares pthread_self() (behind
// std::this_thread::get_id()) __attribute__((const)), so after a suspension
// the compiler may reuse the id read before it — the very hazard this file
// is about. gettid is a real system call every time.
std::size_t thread_hash() { return static_cast<std::size_t>(::syscall(SYS_gettid)); }

}  // namespace

// Many tasks suspend inside a catch block, resume (often on another worker)
// and rethrow with `throw;`: each must get its own exception back, and
// std::uncaught_exceptions()/current_exception() must be its own.
TEST(Hazards, SuspendInCatchMigrateAndRethrow) {
  spindle::Runtime rt(spindle::Options{.workers = 4});
  std::atomic<int> migrated{0}, right{0}, wrong{0};
  const int kTasks = 400;
  int rounds = 0;
  auto one_round = [&] {
    std::vector<spindle::Task<void>> ts;
    for (int i = 0; i < kTasks; ++i) {
      ts.push_back(spindle::spawn([&, i] {
        try {
          try {
            throw Tagged(i);
          } catch (const Tagged&) {
            std::size_t before = thread_hash();
            for (int k = 0; k < 3; ++k) {
              spindle::sleep(std::chrono::microseconds(100 + (i % 7) * 50));
              spindle::yield();
            }
            if (thread_hash() != before) {
              migrated.fetch_add(1);
            }
            // Inside the handler, current_exception() is still ours.
            try {
              std::rethrow_exception(std::current_exception());
            } catch (const Tagged& again) {
              if (again.tag != i) {
                wrong.fetch_add(1);
              }
            }
            throw;
          }
        } catch (const Tagged& e) {
          (e.tag == i ? right : wrong).fetch_add(1);
        }
      }));
    }
    for (auto& t : ts) {
      t.get();
    }
  };
  // Migration is likely, not certain: repeat until some task has moved.
  for (; rounds < 50 && migrated.load() == 0; ++rounds) {
    rt.block_on(one_round);
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(right.load(), kTasks * rounds);
  EXPECT_GT(migrated.load(), 0) << "no task migrated; the test proved nothing";
}

// A thread_local read through a non-inlined accessor after a migration reads
// the new thread's value.
TEST(Hazards, ThreadLocalAfterMigrationReadsNewThread) {
  spindle::Runtime rt(spindle::Options{.workers = 4});
  std::atomic<int> migrated{0}, stale{0};
  // Migration is likely, not certain (a loaded machine may keep every task
  // on its worker): repeat until some task has moved, within bounds.
  auto one_round = [&] {
    std::vector<spindle::Task<void>> ts;
    for (int i = 0; i < 200; ++i) {
      ts.push_back(spindle::spawn([&] {
        for (int k = 0; k < 5; ++k) {
          thread_marker() = static_cast<int>(thread_hash() & 0x7fffffff);
          std::size_t before = thread_hash();
          spindle::sleep(200us);
          if (thread_hash() != before) {
            migrated.fetch_add(1);
          }
          if (thread_marker() != 0 &&
              thread_marker() != static_cast<int>(thread_hash() & 0x7fffffff)) {
            // Another task on this thread may have set it too, but always to
            // this thread's hash: anything else is a stale thread's copy.
            stale.fetch_add(1);
          }
        }
      }));
    }
    for (auto& t : ts) {
      t.get();
    }
  };
  for (int round = 0; round < 50 && migrated.load() == 0; ++round) {
    rt.block_on(one_round);
  }
  EXPECT_EQ(stale.load(), 0);
  EXPECT_GT(migrated.load(), 0) << "no task migrated; the test proved nothing";
}

// A task's C++ exception state is its own while it is suspended: another
// task running on the same thread meanwhile sees no exception in flight.
TEST(Hazards, ExceptionStateDoesNotLeakToOtherTasks) {
  spindle::Runtime rt(spindle::Options{.workers = 1});
  bool other_saw_exception = true;
  rt.block_on([&] {
    spindle::Future<void> gate;
    auto holder = spindle::spawn([gate]() mutable {
      try {
        throw std::runtime_error("held");
      } catch (...) {
        gate.get();  // suspended with an exception being handled
      }
    });
    auto other = spindle::spawn([&] { other_saw_exception = std::current_exception() != nullptr; });
    other.get();
    gate.set_result();
    holder.get();
  });
  EXPECT_FALSE(other_saw_exception);
}

// The floating-point control state (SSE MXCSR and the x87 control word on
// x86-64, FPCR on AArch64; the ABI says a call preserves them) belongs to the
// context: a task that changes its rounding mode and suspends neither leaks
// that mode into the task that runs next nor finds it changed when it
// resumes. runtime/context.cpp saves and restores them around the jump.
TEST(Hazards, RoundingModeStaysWithItsTask) {
  spindle::Runtime rt(spindle::Options{.workers = 1});
  int root_saw = -1, other_saw = -1, mine_after = -1;
  rt.block_on([&] {
    spindle::Future<void> gate;
    bool parked = false;  // one worker: no concurrent access
    auto upward = spindle::spawn([&, gate]() mutable {
      std::fesetround(FE_UPWARD);
      parked = true;
      gate.get();  // suspends: the root and `other` run on this worker meanwhile
      mine_after = std::fegetround();
      std::fesetround(FE_TONEAREST);
    });
    while (!parked) {
      spindle::yield();  // `upward` runs until it suspends on the gate
    }
    root_saw = std::fegetround();
    auto other = spindle::spawn([&] { other_saw = std::fegetround(); });
    spindle::yield();  // `other` starts on a fiber of its own
    other.get();
    gate.set_result();
    upward.get();
  });
  EXPECT_EQ(root_saw, FE_TONEAREST) << "a suspended task's rounding mode leaked";
  EXPECT_EQ(other_saw, FE_TONEAREST) << "a suspended task's rounding mode leaked";
  EXPECT_EQ(mine_after, FE_UPWARD) << "a task's rounding mode was lost across a switch";
}

using HazardsDeathTest = ::testing::Test;

// Overflowing a guarded stack names the task, its id and its stack size.
TEST(HazardsDeathTest, GuardedStackOverflowNamesTheTask) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        spindle::Runtime rt(spindle::Options{.workers = 1, .stack_size = 64 * 1024});
        rt.block_on([] {
          auto t = spindle::spawn(
              [] {
                std::function<int(int)> deep = [&](int n) -> int {
                  volatile char pad[512];
                  pad[0] = static_cast<char>(n);
                  return n == 0 ? pad[0] : deep(n - 1) + pad[0];
                };
                return deep(1 << 20);
              },
              "deep-recursion");
          return t.get();
        });
      },
      "stack overflow in task 'deep-recursion' \\(id [0-9]+\\): its stack is [0-9]+ bytes");
}

// Without guard pages, the canary line below the stack (stack.hpp, slot
// layout) catches an overflow at the next switch.
TEST(HazardsDeathTest, UnguardedOverflowIsCaughtByCanary) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        spindle::Runtime rt(
            spindle::Options{.workers = 1, .stack_size = 64 * 1024, .guard_pages = false});
        rt.block_on([] {
          auto t = spindle::spawn(
              [] {
                // An unguarded 64 KiB stack has the guard page's room too
                // (68 KiB less the canary line): write ~2 KiB past its
                // bottom, through the canary line, then suspend.
                volatile char* big = static_cast<char*>(__builtin_alloca(70 * 1024));
                for (int i = 0; i < 70 * 1024; i += 8) {
                  big[i] = 1;
                }
                spindle::yield();
                return static_cast<int>(big[0]);
              },
              "too-big");
          return t.get();
        });
      },
      "stack overflow in task 'too-big'");
}
