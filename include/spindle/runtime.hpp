// Runtime: the worker threads that run spindle tasks (asyncio's event loop,
// multithreaded).
//
//   spindle::Runtime rt;                       // one worker per usable CPU
//   int v = rt.block_on([] { return 42; });    // asyncio.run()
//
// Which calls are legal where: Runtime::spawn, call_soon, call_later,
// stats, dump_tasks, all_tasks and every Future method work from any
// thread. block_on must be called from a plain thread (not from a task).
// Destroying the Runtime (or shutdown()) cancels the tasks still alive, lets
// their cleanup run, and joins every thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "future.hpp"
#include "task.hpp"

namespace spindle {

struct Options {
  unsigned workers = 0;                              // 0: one per CPU this process may use
                                                     // (affinity mask, cgroup CPU quota)
  std::size_t stack_size = 64 * 1024;                // per task, rounded up to pages
  bool guard_pages = true;                           // SIGSEGV on overflow names the task
  std::size_t blocking_threads = 64;                 // max threads for to_thread()
  std::chrono::milliseconds slow_task_warning{100};  // 0: off
};

// The per-worker counters, listed once: SPINDLE_WORKER_STATS(X) expands
// X(name) for each, in this order. WorkerStats declares them from it, and so
// do the runtime's own counters and everything that copies, sums or prints
// them, so a counter added here is carried everywhere.
#define SPINDLE_WORKER_STATS(X)                                    \
  X(spawned)      /* tasks spawned from this worker */             \
  X(started)      /* tasks started on a fiber */                   \
  X(resumed)      /* suspended tasks resumed */                    \
  X(inline_runs)  /* children run inline by an awaiting task */    \
  X(steals)       /* successful steal operations */                \
  X(lifo_steals)  /* tasks taken from a busy worker's LIFO slot */ \
  X(stolen)       /* tasks taken by those steals */                \
  X(injected)     /* tasks taken from the injection queue */       \
  X(overflowed)   /* pushes that went to the overflow list */      \
  X(parks)        /* times the worker went to sleep */             \
  X(timers_fired) /* timer entries fired (wakeups and callbacks) */

struct WorkerStats {
#define SPINDLE_WORKER_STATS_FIELD_(name) std::uint64_t name = 0;
  SPINDLE_WORKER_STATS(SPINDLE_WORKER_STATS_FIELD_)
#undef SPINDLE_WORKER_STATS_FIELD_
};

// The I/O driver's counters (spindle::net), runtime-wide.
struct IoStats {
  std::uint64_t polls_blocking = 0;     // epoll waits by a parking worker
  std::uint64_t polls_nonblocking = 0;  // epoll checks by busy workers and the monitor
  std::uint64_t events = 0;             // socket events taken from epoll
  std::uint64_t wakes = 0;              // tasks woken by them or by close()
  std::uint64_t eagains = 0;            // calls the kernel told to wait
  std::uint64_t drained_waits = 0;      // waits begun with no syscall: nothing came since
                                        // the last one drained the socket
  std::uint64_t registered_fds = 0;     // sockets open now
};

// Taken while the runtime runs, so approximate: each counter is some recent
// value of its own, with no consistency across counters or workers, and
// live_tasks is a sum over the registry's shards read one at a time: at
// least the tasks live throughout the stats() call, at most those live at
// some moment during it (exact when no task starts or ends meanwhile).
struct Stats {
  std::vector<WorkerStats> workers;
  WorkerStats total;
  std::size_t live_tasks = 0;
  std::size_t fibers_pooled = 0;         // spare fibers kept for reuse
  std::size_t guarded_stack_budget = 0;  // stacks that get a guard page
  std::size_t stack_size = 0;            // bytes per task stack, rounded up to pages
  IoStats io;
};

namespace detail {
struct CallLaterState;
}

// Handle of a call_later() callback.
class TimerHandle {
 public:
  TimerHandle() = default;
  explicit TimerHandle(std::shared_ptr<detail::CallLaterState> s) : state_(std::move(s)) {}
  // Prevents the callback from running; false if it already ran, started,
  // or was cancelled.
  bool cancel();
  bool cancelled() const;
  TimePoint when() const;

 private:
  std::shared_ptr<detail::CallLaterState> state_;
};

class Runtime {
 public:
  explicit Runtime(Options options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // asyncio.run(): runs `main` as a task, blocks the calling thread until it
  // finishes, then cancels every task still alive and waits for them (as
  // asyncio.run does), and returns main's result or rethrows its exception.
  template <class F>
  auto block_on(F&& main) {
    auto task = spawn(std::forward<F>(main));
    block_on_wait(task.core());
    return task.result();
  }

  // run_coroutine_threadsafe / create_task from any thread: queued at once;
  // returns without waiting.
  template <class F>
  auto spawn(F&& f, std::string name = {}) -> Task<detail::TaskResult<F>> {
    auto task = detail::make_task(std::forward<F>(f), name);
    detail::spawn_task(scheduler(), static_cast<detail::TaskCore*>(task.core()));
    return task;
  }

  // Thread-safe: runs fn on a worker soon. An exception escaping fn is
  // reported like a task's unretrieved exception.
  void call_soon(std::function<void()> fn);
  TimerHandle call_later(Duration d, std::function<void()> fn);
  template <class Rep, class Period>
  TimerHandle call_later(std::chrono::duration<Rep, Period> d, std::function<void()> fn) {
    return call_later(detail::to_duration(d), std::move(fn));
  }

  void shutdown();
  Stats stats() const;
  // Every live task: id, name, state, what it waits on, who spawned it.
  void dump_tasks(std::ostream& os) const;
  std::vector<TaskRef> all_tasks() const;
  // Receives "exception never retrieved" reports (default: stderr). For a
  // plain Future the TaskRef is empty.
  //
  // Where it runs: synchronously, on whichever thread drops the last handle
  // to the failed task or future — a worker (inside the task that dropped
  // it, or the scheduler context completing a task nobody holds), a plain
  // thread, or a blocking-pool thread. It must not block or suspend. A task's
  // report goes to the handler of the runtime that ran the task, if that
  // runtime is still alive (else stderr); a plain future's report goes to
  // the handler of the runtime whose worker drops it, else of the most
  // recently created live runtime, else stderr. A handler that throws is
  // reported on stderr and ignored.
  void set_exception_handler(std::function<void(const TaskRef&, std::exception_ptr)> handler);

  unsigned workers() const noexcept;

 private:
  detail::Scheduler* scheduler() const;
  void block_on_wait(detail::FutureCore* main);
  std::unique_ptr<detail::Scheduler> sched_;
};

}  // namespace spindle
