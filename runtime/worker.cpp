// The worker loop. Read scheduler.cpp's essay first; this file follows it.
//
// Two kinds of context run on a worker thread:
//   - the scheduler context (main_ctx_, the thread's own stack) runs
//     find_work(): timers, injection queue, local queues, stealing, parking;
//   - fibers run tasks. A fiber that finishes or suspends a task looks for
//     the next one itself (next_local) and switches to it directly — one
//     jump per task switch — and only falls back to the scheduler context
//     when its worker has no local work, or every kMaintenanceInterval picks
//     so that the injection queue and timers are never starved.
//
// The file follows where a worker looks for work: the LIFO slot and the
// local queue (next_local; the queue itself, its claims and its stealing are
// local_queue.{hpp,cpp}), the injection queue (take_injected), stealing
// (search, spin_then_search), timers (fire_timers), then parking (park).
// find_work() strings them together, timers and one injected task first
// (fairness, see there); fibers come last.
#include "worker.hpp"

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <vector>

#include "atomic.hpp"
#include "debug.hpp"
#include "fault.hpp"
#include "future_access.hpp"
#include "monitor.hpp"
#include "overflow_guard.hpp"
#include "perturb.hpp"
#include "scheduler.hpp"
#include "task_access.hpp"
#include "task_runner.hpp"
#include "task_state.hpp"
#include "waiter.hpp"

namespace spindle::detail {
namespace {

// The calling thread's worker. Read only through Worker::current(), which is
// not inlined: a task that suspends may wake up on another thread, and an
// inlined TLS access could be hoisted across the switch (DESIGN.md hazards).
thread_local Worker* t_worker = nullptr;

Fiber* fiber_of(Context* ctx) {
  return reinterpret_cast<Fiber*>(reinterpret_cast<char*>(ctx) - offsetof(Fiber, ctx));
}

}  // namespace

Worker* Worker::current() noexcept {
  Worker* w = t_worker;
  asm volatile("" ::: "memory");
  return w;
}

Worker::Worker(Scheduler& sched, unsigned index)
    : sched_(sched),
      index_(index),
      queue_(index, counters_.overflowed),
      rng_(0x9e3779b9u * (index + 1)) {}

Worker::~Worker() { drain_fibers(); }

void Worker::start() {
  // Every worker exists by now; sized here, on the constructing thread, so
  // that running out of memory fails the Runtime's constructor, not a worker.
  ticks_seen_.assign(sched_.num_workers(), 0);
  if (fault::should_fail(fault::Site::kThread)) {
    throw std::system_error(EAGAIN, std::generic_category(), "spindle: cannot start a worker");
  }
  thread_ = std::thread([this] { thread_main(); });
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::uint32_t Worker::next_random() noexcept {
  // xorshift32: victim selection only.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return rng_;
}

std::uint64_t Worker::take_id() noexcept {
  if (next_id_ == id_limit_) {
    next_id_ = sched_.next_external_id_block();
    id_limit_ = next_id_ + Scheduler::kIdBlock;
  }
  return next_id_++;
}

// ---------------------------------------------------------------------------
// Local queues (owner thread; local_queue.hpp)
// ---------------------------------------------------------------------------

void Worker::push_local(TaskCore* t) { queue_.push(t); }

void Worker::push_woken(TaskCore* t) {
  queue_.push_lifo(t);
  sched_.notify_work_local();
}

bool Worker::rescue_lifo(TaskCore* expected) {
  // The monitor saw `expected` sit in the slot while this worker ran the
  // same task for a whole sampling period: take it out (the CAS decides
  // against the owner picking it meanwhile) and let any worker run it.
  if (!queue_.rescue_lifo(expected)) {
    return false;
  }
  sched_.submit_remote(expected);
  return true;
}

TaskCore* Worker::next_local(bool from_fiber) {
  ticks_.store(ticks_.load(std::memory_order_relaxed) + 1,
               std::memory_order_relaxed);  // relaxed: the monitor samples it
  if (--maintenance_countdown_ == 0) {
    maintenance_countdown_ = kMaintenanceInterval;
    if (from_fiber) {
      return nullptr;  // let the scheduler context look at timers and injections
    }
  }
  // The LIFO slot first, then the ring, then the overflow (INV-LQ2).
  TaskCore* t = nullptr;
  if (TaskCore* l = queue_.take_lifo()) {
    if (lifo_streak_ < kMaxLifoStreak) {
      t = l;
      ++lifo_streak_;
    } else {
      // Two tasks waking each other through the slot would starve the
      // queue: send the slot's task to the back of the line.
      push_local(l);
    }
  }
  if (t == nullptr) {
    lifo_streak_ = 0;
    t = queue_.pop();
    if (t == nullptr) {
      return nullptr;
    }
  }
  note_pick(t);
  return t;
}

void Worker::note_pick(TaskCore* t) {
  if (transition_to_running(t)) {
    counters_.bump(counters_.started);
  } else {
    counters_.bump(counters_.resumed);
  }
  // relaxed: the monitor reads it under every registry lock (INV-R1).
  running_.store(t, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// The scheduler context
// ---------------------------------------------------------------------------

void Worker::thread_main() {
  t_worker = this;
  eh_ = thread_eh_state();
  init_thread_context(main_ctx_);
  OverflowGuard::install_on_this_thread();
  char name[16];
  std::snprintf(name, sizeof name, "spindle-w%u", index_);
  pthread_setname_np(pthread_self(), name);

  while (TaskCore* t = find_work()) {
    Fiber* target = fiber_for(t);
    if (target == nullptr) {
      continue;  // no stack for it: it failed instead of starting
    }
    current_fiber_ = target;
    sched_.monitor().set_busy(index_, true);
    switch_context(main_ctx_, target->ctx, eh_);
    // Back on this thread's own stack: some fiber of ours switched here.
    sched_.monitor().set_busy(index_, false);
    run_post_action();
  }
  OverflowGuard::remove_from_this_thread();
  t_worker = nullptr;
}

TaskCore* Worker::find_work() {
  for (;;) {
    if (sched_.stopping()) {
      return nullptr;
    }
    fire_timers();
    // io_driver.hpp: every scheduler-context visit looks at the sockets
    // without blocking (out of local work, or every kMaintenanceInterval
    // picks), so a busy worker still sees them.
    if (IoDriver& io = sched_.io(); io.has_sources()) {
      io.poll_now();
    }
    // Every visit here takes one injected task first: visits happen at least
    // every kMaintenanceInterval picks, which bounds how long the injection
    // queue waits behind local work (Go's rule).
    TaskCore* t = take_injected(false);
    if (t == nullptr) {
      t = next_local(false);
    }
    if (t == nullptr) {
      t = take_injected(true);
    }
    if (t == nullptr) {
      t = search();
    }
    if (t == nullptr && searching_) {
      t = spin_then_search();
    }
    if (t != nullptr) {
      if (woke_from_park_) {
        // timer.hpp INV-TK2: we may have been the parked worker that an
        // arm counted on to fire a timer; going busy, we hand that on.
        // Our kAwake store (park()), this fence, then the wheels. StoreLoad
        // partner: TimerDomain::arm()'s new deadline, fence, then
        // cover_deadline()'s seq_cst parked_until() loads. Forbidden: the
        // arm reads our old parked_until (counting on us) while we read
        // the wheels without its deadline.
        woke_from_park_ = false;
        full_fence();
        const std::int64_t due = sched_.earliest_deadline();
        if (due != TimerWheel::kNever) {
          sched_.cover_deadline(due);
        }
      }
      if (searching_) {
        searching_ = false;
        if (sched_.idle().transition_from_searching()) {
          sched_.notify_work();  // we were the last searcher: hand the baton on
        }
      }
      return t;
    }
    park();
  }
}

TaskCore* Worker::take_injected(bool batch) {
  InjectQueue& q = sched_.inject();
  if (q.len() == 0) {
    return nullptr;
  }
  TaskCore* buf[kRingCapacity / 2];
  std::size_t want = 1;
  if (batch) {
    std::size_t fair_share = q.len() / sched_.num_workers() + 1;
    want = fair_share < kRingCapacity / 2 ? fair_share : kRingCapacity / 2;
  }
  std::size_t n = q.pop_bulk(buf, want);
  if (n == 0) {
    return nullptr;
  }
  for (std::size_t i = 1; i < n; ++i) {
    push_local(buf[i]);
  }
  counters_.bump(counters_.injected, n);
  note_pick(buf[0]);
  return buf[0];
}

TaskCore* Worker::search() {
  if (!searching_) {
    if (!sched_.idle().transition_to_searching()) {
      return nullptr;
    }
    searching_ = true;
  }
  const unsigned n = sched_.num_workers();
  const unsigned start = n > 1 ? next_random() % n : 0;
  for (unsigned i = 0; i < n; ++i) {
    unsigned v = (start + i) % n;
    if (v == index_) {
      continue;
    }
    std::uint32_t got = sched_.worker(v).local_queue().steal_into(queue_);
    if (got != 0) {
      counters_.bump(counters_.steals);
      counters_.bump(counters_.stolen, got);
      if (TaskCore* t = next_local(false)) {
        return t;
      }
    }
  }
  return take_injected(true);
}

TaskCore* Worker::spin_then_search() {
  // A searcher that found nothing spins for up to kSpinBudgetNs before it
  // parks: work often arrives right away (a producer spawning, a ping-pong
  // partner replying), and a futex round trip costs the waker a system call
  // and the sleeper tens of microseconds. Only searchers spin, and at most
  // half the workers search (idle.hpp INV-I2), so spinning never takes every
  // core.
  bool extended = false;
  snapshot_ticks();
  std::int64_t deadline = now_ns() + kSpinBudgetNs;
  for (;;) {
    do {
      for (int i = 0; i < 32; ++i) {
        cpu_relax();
      }
      if (sched_.any_stealable_work() || sched_.stopping()) {
        return search();
      }
    } while (now_ns() < deadline);
    if (TaskCore* t = take_stuck_lifo()) {
      return t;
    }
    // A task woken while we spun lands in its waker's slot without waking
    // anyone (we were searching: Idle::maybe_should_wake says no), and a
    // slot that filled, or whose owner picked, during the spin proves
    // nothing yet. Watch such a slot for one more spin rather than park on
    // it and leave it to the monitor. Once only: in a ping-pong through a
    // busy worker's slot every spin sees a fresh task, and a searcher that
    // renewed its spin for each would never park.
    if (extended || !snapshot_ticks()) {
      return nullptr;
    }
    extended = true;
    deadline = now_ns() + kSpinBudgetNs;
  }
}

bool Worker::snapshot_ticks() {
  bool any_slot_full = false;
  for (unsigned v = 0; v < ticks_seen_.size(); ++v) {
    Worker& o = sched_.worker(v);
    ticks_seen_[v] = o.ticks();
    any_slot_full |= v != index_ && o.lifo_peek() != nullptr;
  }
  return any_slot_full;
}

// The LIFO slot is not stealable: a woken task waits there for the task
// that woke it to suspend. When that task runs on instead, the woken one
// would wait for the monitor's rescue (one to two 10 ms periods). A
// searcher that saw a worker pick nothing for its whole spin
// (kSpinBudgetNs), so one task ran all along, takes over the task in that
// worker's slot, which waits behind it, as Go steals runnext from a P that
// keeps running (after ~3 us). The rescue's CAS decides against the owner
// taking it meanwhile, as for the monitor (local_queue.hpp INV-LQ1), so the
// test of "stuck" only decides whether to try: taking a runnable task is
// safe whenever the CAS wins.
TaskCore* Worker::take_stuck_lifo() {
  for (unsigned v = 0; v < ticks_seen_.size(); ++v) {
    if (v == index_) {
      continue;
    }
    Worker& o = sched_.worker(v);
    TaskCore* t = o.lifo_peek();
    if (t != nullptr && o.ticks() == ticks_seen_[v] && o.local_queue().rescue_lifo(t)) {
      counters_.bump(counters_.lifo_steals);
      note_pick(t);  // as every task find_work() returns
      return t;
    }
  }
  return nullptr;
}

void Worker::fire_timers() {
  if (sched_.earliest_deadline() == TimerWheel::kNever) {
    return;
  }
  std::int64_t now = now_ns();
  // Our own wheel and any other worker's overdue one (its owner may be busy
  // in a long task).
  thread_local std::vector<Waiter*> wake;
  thread_local std::vector<TimerEntry*> callbacks;
  std::size_t fired = 0;
  for (unsigned i = 0; i < sched_.num_workers(); ++i) {
    TimerWheel& h = sched_.worker((index_ + i) % sched_.num_workers()).timers();
    if (h.next_deadline() <= now) {
      fired += h.take_due(now, wake, callbacks);
    }
  }
  counters_.bump(counters_.timers_fired, fired);
  for (Waiter* w : wake) {
    wake_waiter_owner(w, /*lifo=*/false);  // due together: resume in deadline order
  }
  wake.clear();
  for (TimerEntry* e : callbacks) {
    e->on_fire(e);
  }
  callbacks.clear();
}

void Worker::park() {
  Idle& idle = sched_.idle();
  const bool was_searching = searching_;
  searching_ = false;
  idle.transition_to_parked(index_, was_searching);
  SPINDLE_PERTURB(kParkDecided);
  // timer.hpp INV-TK1: parked, wake-up time not known yet; an arm that
  // reads this kicks us. seq_cst: the parker's store half; the fence below
  // orders it before our wheel reads.
  parked_until_.store(TimerWheel::kNever, std::memory_order_seq_cst);
  // Two StoreLoad pairs share this fence.
  // INV-I3 (idle.hpp): our state RMW, then the fence, then the queues;
  // partner: a pusher's push, fence and Idle::should_wake() load.
  // Forbidden: it reads us counted awake while we read the queues empty.
  // INV-TK1: our parked_until_ store, then the fence, then the wheels;
  // partner: TimerDomain::arm()'s deadline, fence and cover_deadline()'s
  // parked_until() loads. Forbidden: it reads us awake while we read the
  // wheels without its deadline, and we sleep past it.
  full_fence();
  std::int64_t deadline = sched_.earliest_deadline();
  std::int64_t now = deadline == TimerWheel::kNever ? 0 : now_ns();
  if (sched_.any_stealable_work() || (deadline != TimerWheel::kNever && deadline <= now) ||
      sched_.stopping()) {
    parked_until_.store(kAwake, std::memory_order_relaxed);
    if (!idle.unpark_worker_by_id(index_)) {
      searching_ = true;  // a notifier already took us out and counted us searching
    }
    return;
  }
  // relaxed: only lowers what an arm reads; one that still reads kNever
  // kicks us needlessly, never wrongly (INV-TK1).
  parked_until_.store(deadline, std::memory_order_relaxed);
  counters_.bump(counters_.parks);
  if (sched_.fiber_pool().over_keep()) {
    sched_.fiber_pool().trim();  // going idle: give spare stacks' pages back
  }
  sched_.monitor().set_parked(index_, true);
  SPINDLE_PERTURB(kParkSleep);
  const std::int64_t timeout = deadline == TimerWheel::kNever ? -1 : deadline - now;
  IoDriver& io = sched_.io();
  if (io.has_sources() && io.try_acquire()) {
    // io_driver.hpp: sleep in epoll rather than on the futex; unpark()
    // reaches us through the eventfd (Parker kPolling).
    const int n = parker_.park_polling(timeout, [&](std::int64_t t) {
      const int got = io.poll(t, io_events_, kIoEvents);
      io.drain_wakeup(io_events_, got);  // with the token: no later sleeper's wakeup
      return got;
    });
    io.release();  // before dispatching: another parker may poll meanwhile
    io.dispatch(io_events_, n);
  } else {
    parker_.park(timeout);
  }
  parked_until_.store(kAwake, std::memory_order_relaxed);
  woke_from_park_ = true;
  sched_.monitor().set_parked(index_, false);
  if (!idle.unpark_worker_by_id(index_)) {
    searching_ = true;
  }
}

// ---------------------------------------------------------------------------
// Fibers
// ---------------------------------------------------------------------------

Fiber* Worker::fiber_for(TaskCore* t) {
  if (Fiber* f = TaskAccess::fiber(t)) {
    return f;  // a suspended task resumes on its own fiber
  }
  return fresh_fiber_for(t);
}

// Apart from fiber_for, so that the resume path (every yield and wakeup)
// stays a load and a branch: this part sets up an exception frame.
//
// A task that cannot get a stack (mmap failed, the kernel's map count or
// memory is exhausted) completes with that error instead of starting, as a
// failed spawn would report it: its awaiters see std::system_error or
// std::bad_alloc, and the worker goes on. Returns nullptr then.
__attribute__((noinline)) Fiber* Worker::fresh_fiber_for(TaskCore* t) {
  try {
    Fiber* f = fiber_cache_.pop(sched_.fiber_pool(), sched_.stacks(), &Worker::fiber_main);
    f->start = t;
    return f;
  } catch (...) {
    fail_unstarted_task(t, std::current_exception());
    return nullptr;
  }
}

void Worker::fiber_main(Context* ctx) {
  Fiber* self = fiber_of(ctx);
  for (;;) {
    Worker* w = current();
    w->run_post_action();
    TaskCore* t = self->start;
    self->start = nullptr;
    w->run_root(self, t);
    // The task may have migrated us: re-read the worker.
    w = current();
    TaskCore* next = w->next_local(true);
    if (next != nullptr && TaskAccess::fiber(next) == nullptr) {
      self->start = next;  // run it right here, on the same warm stack
      continue;
    }
    w->post_ = PostAction::kRecycleFiber;
    w->post_arg_ = self;
    w->switch_away(self, next);
    // We come back when a worker hands this spare fiber a new task.
  }
}

void Worker::run_root(Fiber* f, TaskCore* t) {
  TaskAccess::fiber(t) = f;
  f->root = t;
  f->current = t;
  execute_task(t);
  // execute_task may have migrated us; nothing below depends on the worker.
  f->root = nullptr;
  f->current = nullptr;
  finish_task(t);
}

void Worker::suspend(PostAction action) {
  Fiber* self = current_fiber_;
  SPINDLE_ASSERT(self != nullptr, "suspend() outside a task");
  if (!self->stack.guarded && !self->canary_untouched()) {
    OverflowGuard::report_overflow(self->current, self->usable_size());
  }
  // Once switched away the task may resume and finish elsewhere: it stops
  // being ours to describe (INV-R1). The resume that follows happens after
  // this store, through the task's wake-up handoff.
  running_.store(nullptr, std::memory_order_relaxed);
  SPINDLE_PERTURB(kSwitch);
  TaskCore* next = next_local(true);
  post_ = action;
  post_arg_ = self->root;
  switch_away(self, next);
  // Resumed, possibly on another worker: its post-action is ours to run.
  current()->run_post_action();
}

void Worker::switch_away(Fiber* self, TaskCore* next) {
  if (next == nullptr) {
    current_fiber_ = nullptr;
    switch_context(self->ctx, main_ctx_, eh_);
    return;  // `this` may be stale now
  }
  Fiber* target = fiber_for(next);
  if (target == nullptr) {
    // `next` failed instead of starting: let the scheduler context pick.
    current_fiber_ = nullptr;
    switch_context(self->ctx, main_ctx_, eh_);
    return;
  }
  current_fiber_ = target;
  switch_context(self->ctx, target->ctx, eh_);
}

void Worker::run_post_action() {
  PostAction action = post_;
  post_ = PostAction::kNone;
  switch (action) {
    case PostAction::kNone:
      return;
    case PostAction::kRelease: {
      auto* t = static_cast<TaskCore*>(post_arg_);
      if (transition_release(t) == ReleaseResult::kSubmit) {
        push_local(t);  // woken while it was switching away (INV-T2)
        sched_.notify_work_local();
      }
      return;
    }
    case PostAction::kYield: {
      // No state transition: a yielding task stays kRunning while it waits
      // in the queue (task_state.hpp INV-T5).
      auto* t = static_cast<TaskCore*>(post_arg_);
      push_local(t);
      sched_.notify_work_local();
      return;
    }
    case PostAction::kRecycleFiber:
      fiber_cache_.push(sched_.fiber_pool(), static_cast<Fiber*>(post_arg_));
      return;
  }
}

void Worker::drain_fibers() { fiber_cache_.drain(sched_.fiber_pool()); }

}  // namespace spindle::detail
