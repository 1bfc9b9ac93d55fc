// spindle's scheduler: how tasks find a thread to run on.
//
// == Pieces ==
//
// A Runtime owns N workers (one OS thread each; N = the CPUs this process may
// use). Each worker has:
//   - a LIFO slot: the task most recently woken by the running task. It runs
//     next, while the data the waker just wrote is still in cache (Go's
//     runnext, tokio's lifo_slot). At most kMaxLifoStreak picks in a row come
//     from the slot; then its task goes to the back of the queue, so two
//     tasks ping-ponging through the slot cannot starve a third. Other
//     workers do not steal from the slot, except a searcher that saw its
//     worker pick nothing for a whole spin (~30 us: the waker runs on
//     instead of suspending, Worker::take_stuck_lifo); the monitor rescues
//     what is left after 10-20 ms.
//   - a ring (run_queue.hpp): bounded FIFO, 256 entries, stealable.
//   - an overflow list: FIFO behind the ring, under a spin lock. A worker
//     with thousands of runnable tasks keeps them all local and in order;
//     whenever the overflow holds anything, new work queues behind it, and
//     an empty ring refills from its head. (Tokio instead moves overflow to
//     the global queue, which it checks every 61st task: past 256 runnable
//     connections a one-worker server's p99 goes from milliseconds to
//     ~100 ms. We keep FIFO order instead.)
//   - a timer wheel (timer.hpp), a parker (parker.hpp), a fiber cache.
// Shared by all workers: the injection queue for work from other threads
// (inject_queue.hpp), the idle accounting (idle.hpp), the task registry
// (registry.hpp), the stack allocator and fiber pool, and the timer domain
// (call_later.hpp), which arms timers on the wheels and runs call_later.
//
// == Picking the next task ==
//
// A fiber whose task suspends or finishes picks the next task itself:
// LIFO slot, then ring, then overflow; it switches straight to that task's
// fiber (or, for a task that never ran, runs it on its own stack if it is
// free, or on a spare fiber). Every kMaintenanceInterval (61) picks — or
// when nothing is local — it switches to the worker's scheduler context,
// which fires due timers, takes one task from the injection queue (so the
// queue is served at least every 61 picks), then local work, then a batch
// from the injection queue, then steals, then parks.
//
// == Stealing and parking ==
//
// An idle worker becomes a *searcher* (at most half the workers search at
// once) and steals half of a random victim's ring, or half of its overflow
// when the ring is empty. Finding nothing, it parks on its futex, with a
// timeout at the earliest timer of any worker. Work made available while
// nobody searches unparks one sleeper, which comes back as a searcher; a
// searcher that finds work, if it was the last one, wakes another. The last
// searcher to park re-checks every queue after announcing itself parked
// (idle.hpp INV-I3), so no wakeup is lost. An idle runtime therefore sleeps
// in futex_wait with no timers armed: no CPU.
//
// == Running a child inline ==
//
// A task that awaits a child no worker has started takes the child out of
// its queue slot (local_queue.hpp try_claim) and runs the child's body on its
// own stack, as oneTBB and Cilk do: no fiber, no switch, no queue traffic.
// Only tasks that really suspend ever need a stack of their own. The room
// left on the awaiting task's stack bounds the nesting.
//
// == Waking ==
//
// Wakeups go through the task state word (task_state.hpp) and one-shot
// waiters (waiter.hpp). A task woken while still switching away is re-queued
// by its own worker after the switch (PostAction::kRelease), never by the
// waker, so a fiber is never resumed while it still runs elsewhere.
//
// == Rejected designs ==
//   - One fiber per task, always: a fork-join tree of a million tasks would
//     need a million stack switches and stacks; inline children need none.
//   - Scheduler context between every pair of tasks (Go's g0 hop): two
//     jumps per switch instead of one.
//   - A global queue for overflow (tokio): breaks FIFO service under load.
#include "scheduler.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "atomic.hpp"
#include "debug.hpp"
#include "future_access.hpp"
#include "perturb.hpp"
#include "sanitizers.hpp"
#include "task_access.hpp"
#include "task_state.hpp"
#include "worker.hpp"

namespace spindle::detail {
namespace {

// CPUs from the cgroup v2 quota ("max 100000" means none), if any.
unsigned cgroup_cpu_limit() {
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota, period;
  if (!(f >> quota >> period) || quota == "max") {
    return 0;
  }
  double q = std::stod(quota), p = std::stod(period);
  if (q <= 0 || p <= 0) {
    return 0;
  }
  return static_cast<unsigned>(std::max(1.0, (q + p - 1) / p));
}

}  // namespace

unsigned default_worker_count() {
  cpu_set_t set;
  unsigned n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    n = static_cast<unsigned>(CPU_COUNT(&set));
  }
  if (n == 0) {
    n = static_cast<unsigned>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  }
  unsigned quota = cgroup_cpu_limit();
  if (quota != 0 && quota < n) {
    n = quota;
  }
  return n;
}

Options Scheduler::with_worker_count(Options options) {
  // Resolved once: the idle accounting, the registry and the workers must
  // agree even if the CPU affinity changes while we start.
  if (options.workers == 0) {
    options.workers = default_worker_count();
  }
  // A task records its registry shard (a worker index, or one past the
  // last for spawns from outside) in 16 bits (task_core.hpp).
  static_assert(kMaxWorkers <= std::uint16_t{0xFFFF},
                "the outside shard, index kMaxWorkers, fits TaskCore::registry_shard_");
  if (options.workers > kMaxWorkers) {
    throw std::invalid_argument("spindle: Options::workers is " + std::to_string(options.workers) +
                                "; at most " + std::to_string(kMaxWorkers) + " are supported");
  }
  return options;
}

Scheduler::Scheduler(const Options& options)
    : options_(with_worker_count(options)),
      io_(new IoDriver()),
      stacks_(options.stack_size, options.guard_pages),
      // Spare fibers kept when idle. Under TSan every fiber counts against
      // its 8,128-thread limit, so keep fewer there.
      fiber_pool_(stacks_, SPINDLE_TSAN_ENABLED ? 256 : 4096),
      idle_(options_.workers),
      registry_(options_.workers + 1),
      blocking_pool_(options.blocking_threads) {
  const unsigned n = options_.workers;
  workers_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i));
    workers_.back()->parker().set_interrupt(&IoDriver::interrupt_thunk, io_.get());
  }
  monitor_ = std::make_unique<Monitor>(*this, n, options.slow_task_warning);
  try {
    for (auto& w : workers_) {
      w->start();
    }
    monitor_->start();
  } catch (...) {
    // A thread could not be created: stop the ones that were, so that the
    // caller gets the error and no thread outlives this half-built runtime.
    // seq_cst as in shutdown(), though no StoreLoad partner can race here:
    // the runtime was never handed out, so nothing spawns (INV-S1) or calls
    // call_later (INV-CL3); the workers see stopping_ after unpark().
    closed_.store(true, std::memory_order_seq_cst);
    stopping_.store(true, std::memory_order_seq_cst);
    for (auto& w : workers_) {
      w->parker().unpark();
    }
    for (auto& w : workers_) {
      w->join();
    }
    monitor_->stop();
    throw;
  }
}

Scheduler::~Scheduler() { shutdown(); }

std::uint64_t Scheduler::next_external_id() noexcept {
  // relaxed: uniqueness needs only atomicity.
  return next_id_.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Scheduler::next_external_id_block() noexcept {
  return next_id_.fetch_add(kIdBlock, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

void Scheduler::spawn(TaskCore* t) {
  Worker* w = Worker::current();
  if (w != nullptr && &w->scheduler() == this) {
    spawn_local(w, t);
    return;
  }
  if (closed()) {
    throw InvalidStateError("spawn on a runtime that is shut down");
  }
  TaskAccess::sched(t) = this;
  TaskAccess::id(t) = next_external_id();
  // Not yet shared with anyone: plain stores. The queue push publishes them.
  FutureAccess::word(t).store(initial_task_word(), std::memory_order_relaxed);
  registry_.add(t, num_workers());
  SPINDLE_PERTURB(kSpawnRegistered);
  // INV-S1: shutdown closes, fences, then looks at the registry; we
  // register, fence, then look at `closed` again (seq_cst StoreLoad on both
  // sides, partner: the closed_ store and fence in shutdown()): either
  // shutdown sees this task (and cancels and awaits it) or we see the close
  // and back out. Forbidden: we read closed_ false while shutdown's
  // registry look misses our task.
  full_fence();
  if (closed_.load(std::memory_order_seq_cst)) {
    back_out_spawn(t);
  }
  submit_remote(t);
}

void Scheduler::back_out_spawn(TaskCore* t) {
  registry_.remove(t);
  t->unref();  // the scheduler's reference; the caller's handle frees it
  throw InvalidStateError("spawn on a runtime that is shut down");
}

void Scheduler::spawn_local(Worker* w, TaskCore* t) {
  if (&w->scheduler() != this) {
    spawn(t);  // a worker of another runtime spawning onto this one
    return;
  }
  TaskAccess::sched(t) = this;
  TaskAccess::id(t) = w->take_id();
  Fiber* f = w->current_fiber();
  const bool from_task = f != nullptr && f->current != nullptr;
  if (from_task) {
    TaskAccess::spawner_id(t) = TaskAccess::id(f->current);
  }
  FutureAccess::word(t).store(initial_task_word(), std::memory_order_relaxed);
  registry_.add(t, w->index());
  if (!from_task) {
    SPINDLE_PERTURB(kSpawnRegistered);
    // INV-S1: a spawn from the scheduler context (a call_later callback
    // firing) has no live task holding shutdown back, so it is ordered
    // against closed_ as an outside spawn is: we register, fence, look;
    // shutdown closes, fences, looks at the registry (StoreLoad partner:
    // the closed_ store and fence in shutdown()). Forbidden: we read
    // closed_ false while shutdown's registry look misses our task.
    full_fence();
    if (closed_.load(std::memory_order_seq_cst)) {
      back_out_spawn(t);
    }
  }
  w->counters().bump(w->counters().spawned);
  w->push_local(t);
  notify_work_local();
}

void Scheduler::wake(TaskCore* t, bool lifo) {
  if (transition_notify(t) == NotifyResult::kNothing) {
    return;  // running (its owner re-queues it) or already queued
  }
  SPINDLE_PERTURB(kWake);
  Worker* w = Worker::current();
  if (w != nullptr && &w->scheduler() == this) {
    if (lifo) {
      w->push_woken(t);
    } else {
      w->push_local(t);
      notify_work_local();
    }
  } else {
    submit_remote(t);
  }
}

void Scheduler::submit_remote(TaskCore* t) {
  // INV-S2: once `t` is in the queue a worker may run it to completion and
  // the runtime may shut down and be freed while we still look at the idle
  // state and the parkers. Counted first (relaxed: the count happens-before
  // the push, which happens-before t's completion and shutdown's registry
  // check); shutdown waits for the count to drop, and our release
  // decrement orders every access here before it.
  remote_in_flight_.fetch_add(1, std::memory_order_relaxed);
  inject_.push(t);
  SPINDLE_PERTURB(kSubmitRemote);
  notify_work();
  remote_in_flight_.fetch_sub(1, std::memory_order_release);
}

void Scheduler::notify_work() {
  int w = idle_.worker_to_notify();
  if (w >= 0) {
    workers_[static_cast<unsigned>(w)]->parker().unpark();
  }
}

namespace {

struct CallSoonBody {
  std::function<void()> fn;
  void operator()() { fn(); }
};

}  // namespace

void Scheduler::call_soon(std::function<void()> fn) {
  std::string name = "call_soon";
  auto task = make_task(CallSoonBody{std::move(fn)}, name);
  TaskAccess::internal(static_cast<TaskCore*>(task.core())) = true;
  spawn(static_cast<TaskCore*>(task.core()));
}

void Scheduler::cover_deadline(std::int64_t due) {
  // INV-TK1: the caller stored a deadline (or its own kAwake) and fenced.
  // A parked worker that wakes by `due` covers it: it fires every overdue
  // wheel, then parks again or, going busy, hands the duty on
  // (Worker::find_work). Otherwise kick one that would wake too late.
  Worker* late = nullptr;
  for (auto& other : workers_) {
    const std::int64_t until = other->parked_until();
    if (until == Worker::kAwake) {
      continue;
    }
    if (until <= due) {
      return;
    }
    late = other.get();
  }
  if (late != nullptr) {
    late->parker().unpark();  // it recomputes its timeout from every wheel
  }
}

void Scheduler::kick_parked_worker() {
  for (auto& w : workers_) {
    if (w->parked_until() != Worker::kAwake) {
      w->parker().unpark();
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------

void Scheduler::cancel_all_and_wait() {
  // A worker of another runtime may shut this one down: it blocks its
  // thread meanwhile, as any blocking call in a task does.
  if (Worker* w = Worker::current(); w != nullptr && &w->scheduler() == this) {
    throw InvalidStateError("a runtime cannot be shut down or block_on'd from its own worker");
  }
  const std::int64_t start = now_ns();
  std::int64_t next_warning = start + 5'000'000'000;
  for (;;) {
    std::vector<TaskCore*> live = registry_.snapshot();
    if (live.empty() && registry_.empty_consistent()) {
      return;  // INV-R2: one consistent look, after closed_ (INV-S1)
    }
    for (TaskCore* t : live) {
      // A task that swallowed our earlier request (uncancel) is asked again.
      if (!t->done() && t->cancelling() == 0) {
        t->request_cancel("");
      }
      t->unref();
    }
    if (registry_.wait_empty_for(100)) {
      return;
    }
    if (now_ns() >= next_warning) {
      next_warning += 5'000'000'000;
      std::fprintf(stderr,
                   "spindle: shutdown has waited %lld s for %zu task(s) to finish after "
                   "cancellation:\n",
                   static_cast<long long>((now_ns() - start) / 1'000'000'000), registry_.live());
      std::ostringstream os;
      dump_tasks(os);
      std::fputs(os.str().c_str(), stderr);
    }
  }
}

void Scheduler::shutdown() {
  OsLock lock(shutdown_mu_);
  if (stopping_.load(std::memory_order_acquire)) {
    return;
  }
  closed_.store(true, std::memory_order_seq_cst);
  // INV-S1: pairs with the register, fence and closed_ re-check in spawn()
  // and spawn_local(): either they see closed_ and back out, or the
  // registry look in cancel_all_and_wait() sees their task.
  full_fence();
  SPINDLE_PERTURB(kShutdownClosed);
  cancel_all_and_wait();
  blocking_pool_.shutdown();
  monitor_->stop();
  stopping_.store(true, std::memory_order_seq_cst);
  // call_later.hpp INV-CL3: pairs with the arm, fence and
  // stopping_seq_cst() re-check in TimerDomain::call_later(): either it
  // sees stopping_ and takes its entry back, or drain() below finds it.
  full_fence();
  for (auto& w : workers_) {
    w->parker().unpark();
  }
  for (auto& w : workers_) {
    w->join();
  }
  if (registry_.live() != 0) {
    // Never expected: every task finished before the workers were stopped,
    // and nothing can spawn once closed. Say so rather than hide it.
    std::fprintf(stderr, "spindle: %zu task(s) left unfinished at shutdown\n", registry_.live());
  }
  // Timers that never fired, and TimerHandles cancelling meanwhile
  // (call_later.hpp INV-CL2, INV-CL4).
  timer_domain_.drain();
  for (auto& w : workers_) {
    w->drain_fibers();
  }
  // INV-S2: a thread that made a task runnable from outside may still be
  // in submit_remote(), after that task (and so every task) finished.
  while (remote_in_flight_.load(std::memory_order_acquire) != 0) {
    std::this_thread::yield();
  }
}

// ---------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------

std::int64_t Scheduler::earliest_deadline() noexcept {
  std::int64_t d = TimerWheel::kNever;
  for (auto& w : workers_) {
    d = std::min(d, w->timers().next_deadline());
  }
  return d;
}

bool Scheduler::any_stealable_work() noexcept {
  if (inject_.len() != 0) {
    return true;
  }
  for (auto& w : workers_) {
    if (w->has_stealable_work()) {
      return true;
    }
  }
  return false;
}

Stats Scheduler::stats() {
  Stats s;
  for (auto& w : workers_) {
    const WorkerStats ws = w->counters().snapshot();
#define SPINDLE_WORKER_STATS_SUM_(name) s.total.name += ws.name;
    SPINDLE_WORKER_STATS(SPINDLE_WORKER_STATS_SUM_)
#undef SPINDLE_WORKER_STATS_SUM_
    s.workers.push_back(ws);
  }
  s.live_tasks = registry_.live();
  s.fibers_pooled = fiber_pool_.size();
  s.guarded_stack_budget = stacks_.guard_budget();
  s.stack_size = stacks_.stack_size();
  IoCounters& io = io_->counters();
  s.io.polls_blocking = io.polls_blocking.load(std::memory_order_relaxed);
  s.io.polls_nonblocking = io.polls_nonblocking.load(std::memory_order_relaxed);
  s.io.events = io.events.load(std::memory_order_relaxed);
  s.io.wakes = io.wakes.load(std::memory_order_relaxed);
  s.io.eagains = io.eagains.load(std::memory_order_relaxed);
  s.io.drained_waits = io.drained_waits.load(std::memory_order_relaxed);
  s.io.registered_fds = io_->registered();
  return s;
}

void Scheduler::dump_tasks(std::ostream& os) {
  std::vector<TaskCore*> live = registry_.snapshot(/*include_internal=*/true);
  std::sort(live.begin(), live.end(), [](TaskCore* a, TaskCore* b) { return a->id() < b->id(); });
  os << "spindle: " << live.size() << " live task(s)\n";
  for (TaskCore* t : live) {
    std::uint64_t word = FutureAccess::word(t).load(std::memory_order_acquire);
    const char* state = (word & kComplete)   ? "finishing"
                        : (word & kRunning)  ? "running"
                        : (word & kNotified) ? ((word & kStarted) ? "runnable" : "queued")
                                             : "suspended";
    std::string waits;
    std::uint64_t spawner;
    {
      SpinGuard g(TaskAccess::lock(t));
      if (TaskAccess::wait_reason(t) != nullptr) {
        waits = TaskAccess::wait_reason(t);
      }
      if (FutureCore* f = TaskAccess::awaiting(t)) {
        waits += f->is_task() ? " task #" + std::to_string(static_cast<TaskCore*>(f)->id())
                              : std::string(" a future");
      }
      spawner = TaskAccess::spawner_id(t);
    }
    os << "  #" << t->id() << " '" << t->name() << "' " << state;
    if (TaskAccess::internal(t)) {
      os << " (runtime callback)";
    }
    if (!waits.empty()) {
      os << ", waiting on " << waits;
    }
    if (t->cancelling() > 0) {
      os << ", cancelling=" << t->cancelling();
    }
    os << ", spawned by ";
    if (spawner != 0) {
      os << '#' << spawner;
    } else {
      os << "outside";
    }
    os << '\n';
    t->unref();
  }
}

void Scheduler::set_exception_handler(std::function<void(const TaskRef&, std::exception_ptr)> h) {
  OsLock lock(handler_mu_);
  exception_handler_ = std::move(h);
}

std::function<void(const TaskRef&, std::exception_ptr)> Scheduler::exception_handler() {
  OsLock lock(handler_mu_);
  return exception_handler_;
}

}  // namespace spindle::detail
