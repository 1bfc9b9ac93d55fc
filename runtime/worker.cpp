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

// Queue slot encoding (TaskCore::queue_slot_): where a not-yet-started task
// waits, so that try_claim() can find it.
//   bit 63       in the worker's overflow list (else in its ring)
//   bits 32..62  worker index + 1 (0: not in a local queue)
//   bits 0..31   ring index
constexpr std::uint64_t kInOverflow = std::uint64_t{1} << 63;
constexpr std::uint64_t ring_slot(unsigned worker, std::uint32_t index) {
  return (static_cast<std::uint64_t>(worker + 1) << 32) | index;
}
constexpr std::uint64_t overflow_slot(unsigned worker) {
  return kInOverflow | (static_cast<std::uint64_t>(worker + 1) << 32);
}
// The encoding, as try_claim() decodes it ((slot >> 32) & 0x7fffffff):
// the largest worker index and ring index come back intact, and bit 63
// is set for the overflow list only.
static_assert(kInOverflow == std::uint64_t{1} << 63, "bit 63 marks the overflow list");
static_assert(((ring_slot(Scheduler::kMaxWorkers - 1, 0xffffffffu) >> 32) & 0x7fffffffu) ==
                      Scheduler::kMaxWorkers &&
                  static_cast<std::uint32_t>(ring_slot(Scheduler::kMaxWorkers - 1, 0xffffffffu)) ==
                      0xffffffffu &&
                  (ring_slot(Scheduler::kMaxWorkers - 1, 0xffffffffu) & kInOverflow) == 0,
              "ring slot: worker + 1 in bits 32..62, ring index in 0..31, bit 63 clear");
static_assert(((overflow_slot(Scheduler::kMaxWorkers - 1) >> 32) & 0x7fffffffu) ==
                      Scheduler::kMaxWorkers &&
                  (overflow_slot(Scheduler::kMaxWorkers - 1) & kInOverflow) != 0,
              "overflow slot: worker + 1 in bits 32..62, bit 63 set");

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
    : sched_(sched), index_(index), rng_(0x9e3779b9u * (index + 1)) {}

Worker::~Worker() { drain_fibers(); }

void Worker::start() {
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
// Local queues (owner thread)
// ---------------------------------------------------------------------------

bool Worker::try_ring_push(TaskCore* t) {
  // Only a task nobody has started can be claimed (to run inline). We own
  // `t` here, so a relaxed look at its flags is current.
  const bool claimable = !(FutureAccess::word(t).load(std::memory_order_relaxed) & kStarted);
  std::uint32_t index = ring_.tail_index();
  if (claimable) {
    // Published before the entry so that a claimer that finds the entry
    // also finds where it is; a stale slot only makes a claim fail.
    TaskAccess::queue_slot(t).store(ring_slot(index_, index), std::memory_order_relaxed);
  }
  std::uint32_t got;
  if (!ring_.push_back(t, claimable, &got)) {
    return false;
  }
  SPINDLE_ASSERT(got == index, "run queue index moved under its owner");
  return true;
}

void Worker::ring_push(TaskCore* t) {
  if (!try_ring_push(t)) {
    push_overflow(t);
  }
}

void Worker::push_local(TaskCore* t) {
  // FIFO across ring and overflow: while the overflow holds anything, new
  // work goes behind it.
  if (overflow_len_.load(std::memory_order_relaxed) != 0) {
    push_overflow(t);
  } else {
    ring_push(t);
  }
}

void Worker::push_overflow(TaskCore* t) {
  SpinGuard g(overflow_lock_);
  TaskAccess::overflow_next(t) = nullptr;
  TaskAccess::overflow_prev(t) = overflow_tail_;
  if (overflow_tail_ != nullptr) {
    TaskAccess::overflow_next(overflow_tail_) = t;
  } else {
    overflow_head_ = t;
  }
  overflow_tail_ = t;
  TaskAccess::queue_slot(t).store(overflow_slot(index_), std::memory_order_relaxed);
  // relaxed: read by the owner as a hint and by the idle re-check after a
  // seq_cst fence; the list itself is guarded by the lock.
  overflow_len_.store(overflow_len_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  counters_.bump(counters_.overflowed);
}

void Worker::push_woken(TaskCore* t) {
  // acq_rel: the monitor may take the slot's task (rescue_lifo); the
  // exchange gives the task to exactly one of us.
  TaskCore* prev = lifo_.exchange(t, std::memory_order_acq_rel);
  if (prev != nullptr) {
    push_local(prev);
  }
  sched_.notify_work_local();
}

bool Worker::rescue_lifo(TaskCore* expected) {
  // The monitor saw `expected` sit in the slot while this worker ran the
  // same task for a whole sampling period: take it out (the CAS decides
  // against the owner picking it meanwhile) and let any worker run it.
  if (!lifo_.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
    return false;
  }
  sched_.submit_remote(expected);
  return true;
}

TaskCore* Worker::refill_from_overflow() {
  {
    SpinGuard g(overflow_lock_);
    std::uint32_t moved = 0;
    while (overflow_head_ != nullptr && moved < kRingCapacity / 2) {
      // Unlink first: once in the ring, the task belongs to whoever takes it
      // (a thief may move it into its own overflow list, a claimer may run
      // and free it), so its links must not be touched after the push.
      TaskCore* t = overflow_head_;
      TaskCore* next = TaskAccess::overflow_next(t);
      TaskAccess::overflow_next(t) = TaskAccess::overflow_prev(t) = nullptr;
      // The ring is empty, but a stealer may still be copying out of it and
      // hold up to half its slots: stop when it is full. (Never fall back to
      // push_overflow here: we hold the overflow lock.)
      if (!try_ring_push(t)) {
        TaskAccess::overflow_next(t) = next;  // still the head: relink
        TaskAccess::queue_slot(t).store(overflow_slot(index_), std::memory_order_relaxed);
        break;
      }
      overflow_head_ = next;
      if (next != nullptr) {
        TaskAccess::overflow_prev(next) = nullptr;
      } else {
        overflow_tail_ = nullptr;
      }
      ++moved;
    }
    overflow_len_.store(overflow_len_.load(std::memory_order_relaxed) - moved,
                        std::memory_order_relaxed);
  }
  return ring_.pop_front();
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
  TaskCore* t = nullptr;
  if (lifo_.load(std::memory_order_relaxed) != nullptr) {
    // acquire: pairs with push_woken's exchange (and the monitor's rescue).
    TaskCore* l = lifo_.exchange(nullptr, std::memory_order_acquire);
    if (l != nullptr && lifo_streak_ < kMaxLifoStreak) {
      t = l;
      ++lifo_streak_;
    } else if (l != nullptr) {
      // Two tasks waking each other through the slot would starve the
      // queue: send the slot's task to the back of the line.
      push_local(l);
    }
  }
  if (t == nullptr) {
    lifo_streak_ = 0;
    t = ring_.pop_front();
    if (t == nullptr && overflow_len_.load(std::memory_order_relaxed) != 0) {
      t = refill_from_overflow();
    }
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

bool Worker::has_stealable_work() const noexcept {
  return !ring_.empty() || overflow_len_.load(std::memory_order_relaxed) != 0;
}

std::size_t Worker::queued() const noexcept {
  return ring_.len() + overflow_len_.load(std::memory_order_relaxed) +
         (lifo_.load(std::memory_order_relaxed) != nullptr);
}

// ---------------------------------------------------------------------------
// Claiming a queued task to run it inline (any thread)
// ---------------------------------------------------------------------------

bool Worker::try_claim(TaskCore* t) {
  std::uint64_t slot = TaskAccess::queue_slot(t).load(std::memory_order_acquire);
  unsigned w = static_cast<unsigned>((slot >> 32) & 0x7fffffffu);
  Scheduler* sched = TaskAccess::sched(t);
  if (w == 0 || sched == nullptr || w > sched->num_workers()) {
    return false;  // in the injection queue, or nowhere we can reach
  }
  Worker& owner = sched->worker(w - 1);
  if (slot & kInOverflow) {
    SpinGuard g(owner.overflow_lock_);
    if (TaskAccess::queue_slot(t).load(std::memory_order_relaxed) != slot) {
      return false;  // moved on while we took the lock
    }
    TaskCore* prev = TaskAccess::overflow_prev(t);
    TaskCore* next = TaskAccess::overflow_next(t);
    (prev != nullptr ? TaskAccess::overflow_next(prev) : owner.overflow_head_) = next;
    (next != nullptr ? TaskAccess::overflow_prev(next) : owner.overflow_tail_) = prev;
    TaskAccess::overflow_next(t) = TaskAccess::overflow_prev(t) = nullptr;
    TaskAccess::queue_slot(t).store(0, std::memory_order_relaxed);
    owner.overflow_len_.store(owner.overflow_len_.load(std::memory_order_relaxed) - 1,
                              std::memory_order_relaxed);
    return true;
  }
  std::uint32_t index = static_cast<std::uint32_t>(slot);
  if (!owner.ring_.try_claim(index, t)) {
    return false;
  }
  if (current() == &owner) {
    owner.ring_.reclaim_tail_holes();
  }
  return true;
}

// ---------------------------------------------------------------------------
// Stealing (victim side runs on the thief's thread)
// ---------------------------------------------------------------------------

std::uint32_t Worker::steal_into(Worker& thief) {
  std::uint32_t moved =
      ring_.steal_into([&](TaskCore* t, bool) { thief.push_local(t); }, kRingCapacity / 2);
  if (moved != 0 || overflow_len_.load(std::memory_order_relaxed) == 0) {
    return moved;
  }
  // The ring is empty but the owner (busy in a long task) has overflow: take
  // half of it. Collected first, pushed after unlocking, so two workers
  // stealing from each other never hold both overflow locks.
  TaskCore* batch[kRingCapacity / 2];
  std::uint32_t n = 0;
  {
    SpinGuard g(overflow_lock_);
    std::size_t len = overflow_len_.load(std::memory_order_relaxed);
    std::size_t want = len - len / 2;
    while (overflow_head_ != nullptr && n < want && n < kRingCapacity / 2) {
      TaskCore* t = overflow_head_;
      overflow_head_ = TaskAccess::overflow_next(t);
      if (overflow_head_ != nullptr) {
        TaskAccess::overflow_prev(overflow_head_) = nullptr;
      } else {
        overflow_tail_ = nullptr;
      }
      TaskAccess::overflow_next(t) = TaskAccess::overflow_prev(t) = nullptr;
      TaskAccess::queue_slot(t).store(0, std::memory_order_relaxed);
      batch[n++] = t;
    }
    overflow_len_.store(len - n, std::memory_order_relaxed);
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    thief.push_local(batch[i]);
  }
  return n;
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
    std::uint32_t got = sched_.worker(v).steal_into(*this);
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
  const std::int64_t deadline = now_ns() + kSpinBudgetNs;
  do {
    for (int i = 0; i < 32; ++i) {
      cpu_relax();
    }
    if (sched_.any_stealable_work() || sched_.stopping()) {
      return search();
    }
  } while (now_ns() < deadline);
  return nullptr;
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
  parker_.park(deadline == TimerWheel::kNever ? -1 : deadline - now);
  parked_until_.store(kAwake, std::memory_order_relaxed);
  woke_from_park_ = true;
  sched_.monitor().set_parked(index_, false);
  if (!idle.unpark_worker_by_id(index_)) {
    searching_ = true;
  }
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
