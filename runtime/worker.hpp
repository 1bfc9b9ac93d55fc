// A worker: one OS thread running tasks from its local queues, stealing when
// idle, parking when there is nothing to do. The loop and its fairness rules
// are described in scheduler.cpp's essay; worker.cpp implements them.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <spindle/runtime.hpp>

#include "context.hpp"
#include "fiber.hpp"
#include "local_queue.hpp"
#include "parker.hpp"
#include "timer.hpp"

namespace spindle::detail {

class Scheduler;
class TaskCore;

// What the context we switch to must do first, on our behalf, once our
// stack is no longer in use (we cannot publish ourselves before the switch:
// another worker could resume us while we are still running).
enum class PostAction : std::uint8_t {
  kNone,
  kRelease,       // a task suspended: clear kRunning, re-queue if notified
  kYield,         // a task yielded: re-queue it behind the others
  kRecycleFiber,  // a fiber whose task finished: back to the cache
};

// Per-worker counters, one per WorkerStats field (SPINDLE_WORKER_STATS):
// written by the owner only (relaxed atomics so other threads may read them
// for stats()).
struct WorkerCounters {
#define SPINDLE_WORKER_COUNTER_(name) std::atomic<std::uint64_t> name{0};
  SPINDLE_WORKER_STATS(SPINDLE_WORKER_COUNTER_)
#undef SPINDLE_WORKER_COUNTER_
  void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    // relaxed: a single writer (the owner), so load + store loses nothing;
    // readers only want some recent value.
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Every counter, read from any thread. relaxed: each value is some recent
  // one; stats() promises no consistency across counters or workers.
  WorkerStats snapshot() const noexcept {
    WorkerStats s;
#define SPINDLE_WORKER_COUNTER_(name) s.name = name.load(std::memory_order_relaxed);
    SPINDLE_WORKER_STATS(SPINDLE_WORKER_COUNTER_)
#undef SPINDLE_WORKER_COUNTER_
    return s;
  }
};

class Worker {
 public:
  static constexpr std::uint32_t kRingCapacity = LocalQueue::kRingCapacity;
  // Every kMaintenanceInterval picks the worker goes through its scheduler
  // context: injection queue and timers get their turn (Go uses 61).
  static constexpr std::uint32_t kMaintenanceInterval = 61;
  // Consecutive LIFO-slot picks before the slot yields to the queue.
  static constexpr std::uint32_t kMaxLifoStreak = 3;
  // How long a searcher spins before parking, as a time: a PAUSE costs
  // from a few ns to 27 ns (this project's AMD machine) depending on the
  // CPU, and the old bound of 200 rounds of 32 meant ~170 us there, so a
  // task waking every millisecond kept 17% of a core busy spinning.
  static constexpr std::int64_t kSpinBudgetNs = 30'000;

  Worker(Scheduler& sched, unsigned index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void join();

  // The worker of the calling thread, or nullptr. Never inlined — not even
  // into worker.cpp — so the thread-local's address is computed afresh on
  // every call: inlined, the compiler may keep the thread's TLS base in a
  // callee-saved register across a fiber switch and read the previous
  // thread's variable after a migration (TSan caught exactly that).
  __attribute__((noinline)) static Worker* current() noexcept;

  unsigned index() const noexcept { return index_; }
  Scheduler& scheduler() noexcept { return sched_; }
  Fiber* current_fiber() const noexcept { return current_fiber_; }
  TimerWheel& timers() noexcept { return timers_; }
  Parker& parker() noexcept { return parker_; }
  // When this worker, parked, will wake by itself (TimerWheel::kNever: not
  // before it is unparked); kAwake while it is not parked (timer.hpp
  // INV-TK1). Any thread.
  static constexpr std::int64_t kAwake = -1;
  std::int64_t parked_until() const noexcept {
    // seq_cst: INV-TK1's load half, in Scheduler::cover_deadline() after
    // TimerDomain::arm()'s fence; partner: Worker::park()'s store, fence
    // and wheel reads (either we see it parked or it sees the deadline).
    return parked_until_.load(std::memory_order_seq_cst);
  }
  WorkerCounters& counters() noexcept { return counters_; }
  LocalQueue& local_queue() noexcept { return queue_; }
  std::uint64_t ticks() const noexcept { return ticks_.load(std::memory_order_relaxed); }
  // The root task this worker picked and is running, or nullptr (INV-R1 in
  // registry.hpp says when another thread may look at it).
  const std::atomic<TaskCore*>& running() const noexcept { return running_; }
  // Called by finish_task() on the worker completing `t`, before `t` leaves
  // the registry (INV-R1).
  void forget_running(TaskCore* t) noexcept {
    if (running_.load(std::memory_order_relaxed) == t) {
      running_.store(nullptr, std::memory_order_relaxed);  // ordered by the registry lock
    }
  }
  bool in_task() const noexcept { return current_fiber_ != nullptr; }

  // --- owner thread only -------------------------------------------------
  // Queues a runnable task (kNotified set) behind the others.
  void push_local(TaskCore* t);
  // Queues a task just woken by the running one in the LIFO slot.
  void push_woken(TaskCore* t);
  // Switches the running task's fiber away. Returns when the task is
  // resumed — possibly on another worker: re-read Worker::current().
  void suspend(PostAction action);
  // Called from a fiber whose task just finished (fiber_main).
  std::uint64_t take_id() noexcept;
  // A child task run inline counts as progress for the slow-task monitor.
  void note_inline_run() noexcept {
    counters_.bump(counters_.inline_runs);
    ticks_.store(ticks_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // --- any thread --------------------------------------------------------
  // The monitor's view of the LIFO slot, and its rescue of a task stuck
  // there behind a worker that does not come back to pick (any thread):
  // the rescued task goes to the injection queue.
  TaskCore* lifo_peek() const noexcept { return queue_.lifo_peek(); }
  bool rescue_lifo(TaskCore* expected);
  // Is there work another worker could take (ring or overflow)?
  bool has_stealable_work() const noexcept { return queue_.has_stealable_work(); }

  // --- scheduler side ----------------------------------------------------
  // Drops every queued task's entry (shutdown, after all tasks finished).
  void drain_fibers();

 private:
  static void fiber_main(Context* ctx);
  void thread_main();
  TaskCore* find_work();
  TaskCore* next_local(bool from_fiber);
  void note_pick(TaskCore* t);
  TaskCore* take_injected(bool batch);
  TaskCore* search();
  TaskCore* spin_then_search();
  bool snapshot_ticks();  // true: some other worker's LIFO slot holds a task
  TaskCore* take_stuck_lifo();
  void park();
  void fire_timers();
  void run_post_action();
  void switch_away(Fiber* self, TaskCore* next);
  Fiber* fiber_for(TaskCore* t);
  Fiber* fresh_fiber_for(TaskCore* t);
  void run_root(Fiber* f, TaskCore* t);
  std::uint32_t next_random() noexcept;

  Scheduler& sched_;
  const unsigned index_;
  std::thread thread_;

  // The LIFO slot, the ring and the overflow list (local_queue.hpp).
  alignas(64) LocalQueue queue_;

  // Owner-only scheduling state.
  alignas(64) std::uint32_t lifo_streak_ = 0;
  Fiber* current_fiber_ = nullptr;
  PostAction post_ = PostAction::kNone;
  void* post_arg_ = nullptr;
  Context main_ctx_;
  EhState* eh_ = nullptr;  // this worker thread's exception globals
  FiberCache fiber_cache_;
  bool searching_ = false;
  bool woke_from_park_ = false;  // INV-TK1: hand timer duty on when going busy
  std::uint32_t rng_;
  std::uint64_t next_id_ = 0, id_limit_ = 0;
  std::uint32_t maintenance_countdown_ = kMaintenanceInterval;
  std::atomic<std::uint64_t> ticks_{0};
  std::atomic<TaskCore*> running_{nullptr};  // for the slow-task monitor (INV-R1)

  alignas(64) Parker parker_;
  std::atomic<std::int64_t> parked_until_{kAwake};  // INV-TK1
  TimerWheel timers_;
  // Its own cache lines: bumped on every pick, while other workers read the
  // timer wheel's next deadline just above it each time they look for work
  // (sharing a line cost a searching worker ~17% of a 2-worker yield run).
  alignas(64) WorkerCounters counters_;

  // Each worker's pick count when this one's spin began (spin_then_search;
  // owner thread only; sized by start()). Last: read only by a searcher, it
  // stays off the hot lines.
  std::vector<std::uint64_t> ticks_seen_;
  // What this worker's blocking poll took from epoll (park()).
  static constexpr int kIoEvents = 128;
  epoll_event io_events_[kIoEvents];
};

}  // namespace spindle::detail
