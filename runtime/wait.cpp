// Waiting: Future::get()/wait_for() for tasks and plain threads, sleep,
// yield, check_cancelled, and running a not-yet-started child inline.
//
// A task's wait (park_task) follows one pattern everywhere:
//   1. build a Waiter on this stack, root = the task owning this fiber;
//   2. publish it to every source that may fire it (future list, timer wheel)
//      under each source's lock;
//   3. publish it as current_wait_ under task_lock_ and look for a pending
//      cancellation (task.cpp INV-C2);
//   4. suspend until it fired (waiter.hpp INV-W1: exactly one wake);
//   5. unpublish it from every source, under each lock (INV-W2), before
//      this frame returns.
#include <spindle/detail/future_core.hpp>
#include <spindle/detail/task_core.hpp>
#include <spindle/errors.hpp>
#include <spindle/future.hpp>
#include <spindle/this_task.hpp>

#include <sched.h>

#include <algorithm>

#include "atomic.hpp"
#include "debug.hpp"
#include "future_access.hpp"
#include "park.hpp"
#include "parker.hpp"
#include "scheduler.hpp"
#include "task_access.hpp"
#include "task_runner.hpp"
#include "task_state.hpp"
#include "timer.hpp"
#include "wait_kind.hpp"
#include "waiter.hpp"
#include "worker.hpp"

namespace spindle::detail {
namespace {

TaskCore* current_task_core() noexcept {
  Worker* w = Worker::current();
  if (w == nullptr) {
    return nullptr;
  }
  Fiber* f = w->current_fiber();
  return f != nullptr ? f->current : nullptr;
}

[[noreturn]] __attribute__((noinline, cold)) void throw_outside_task(const char* what) {
  throw InvalidStateError(std::string(what) + " called outside a spindle task");
}

// Small enough to inline into yield() and sleep(): the message is built
// out of line, only when it is thrown.
inline TaskCore* current_task_or_throw(const char* what) {
  TaskCore* t = current_task_core();
  if (t == nullptr) {
    throw_outside_task(what);
  }
  return t;
}

TaskCore* current_root() noexcept { return Worker::current()->current_fiber()->root; }

// INV-C3: a pending request is delivered here, once.
void deliver_cancellation(TaskCore* self) {
  if (!TaskAccess::cancel_pending(self)) {
    return;  // the common case, without the lock
  }
  std::string msg;
  {
    SpinGuard g(TaskAccess::lock(self));
    if (!TaskAccess::must_cancel(self).load(std::memory_order_relaxed)) {
      return;  // uncancel()ed meanwhile
    }
    TaskAccess::must_cancel(self).store(false, std::memory_order_relaxed);
    msg = TaskAccess::cancel_message(self);
  }
  throw Cancelled(std::move(msg));
}

void link_waiter(FutureCore* f, Waiter* w) SPINDLE_REQUIRES(FutureAccess::lock(f)) {
  FutureAccess::waiters(f).push_back(w);
  w->linked = true;
}

// Always under the lock, even when publish() already unlinked the node: a
// waiter that returns has then seen publish() leave the future for good, so
// it may destroy the future at once (the setter may have used the same
// handle, holding no reference of its own).
void unlink_waiter(FutureCore* f, Waiter* w) {
  SpinGuard g(FutureAccess::lock(f));
  if (!w->linked) {
    return;
  }
  FutureAccess::waiters(f).remove(w);
  w->linked = false;
}

// A completer claimed the future (kCompleting) and is about to publish it:
// wait those few instructions out rather than report "not done". A task
// woken by cancel() at that moment must still get the result, so that a
// value handed to it (a queue item, a lock) is never lost; the cancellation
// stays pending for its next suspension point.
void await_publication(FutureCore* f) noexcept {
  for (unsigned spins = 0; f->status() == Status::kCompleting; ++spins) {
    if (spins < 128) {
      cpu_relax();
    } else {
      sched_yield();
    }
  }
}

// Links a waiter unless the future is already done. False if done.
bool link_unless_done(FutureCore* f, Waiter* w) {
  SpinGuard g(FutureAccess::lock(f));
  if (f->status() >= Status::kResult) {
    return false;
  }
  link_waiter(f, w);
  return true;
}

// A timed wait's timer, on the calling worker (TimerDomain::arm kicks a
// parked worker if this becomes the earliest deadline). A deadline of never
// arms nothing: the wait ends only by its other sources.
void arm_own_timer(TimerEntry* e) {
  if (e->deadline_ns != kNeverNs) {
    Worker* w = Worker::current();
    w->scheduler().timer_domain().arm(e, w);
  }
}
void disarm_own_timer(TimerEntry* e) {
  if (e->wheel != nullptr) {
    e->wheel->remove(e);
  }
}

// Steps 3 and 4 of the pattern above. `reason` is a wait_text() (wait_kind.hpp).
void park_task(TaskCore* self, Waiter& w, FutureCore* awaiting, const char* reason) {
  bool pending;
  std::string msg;
  {
    SpinGuard g(TaskAccess::lock(self));
    TaskAccess::current_wait(self) = &w;
    // No reference: the caller holds a handle to `awaiting` for the whole
    // wait, and request_cancel() takes its own under this lock.
    TaskAccess::awaiting(self) = awaiting;
    TaskAccess::wait_reason(self) = reason;
    pending = TaskAccess::must_cancel(self).load(std::memory_order_relaxed);
    if (pending) {
      msg = TaskAccess::cancel_message(self);
    }
  }
  bool fired_by_us = false;
  if (pending) {
    if (awaiting != nullptr) {
      // A request pending when the wait starts cancels the awaited future
      // instead, as if it had arrived during the wait (INV-C1).
      if (awaiting->cancel(msg)) {
        SpinGuard g(TaskAccess::lock(self));
        TaskAccess::must_cancel(self).store(false, std::memory_order_relaxed);
      }
    } else {
      fired_by_us = w.try_fire();
    }
  }
  if (!fired_by_us) {
    // Suspend even if another firer already won: its wake is on its way and
    // must be consumed here (task_state.hpp INV-T3).
    do {
      Worker::current()->suspend(PostAction::kRelease);
    } while (!w.fired());
  }
  {
    SpinGuard g(TaskAccess::lock(self));
    TaskAccess::current_wait(self) = nullptr;
    TaskAccess::awaiting(self) = nullptr;
    TaskAccess::wait_reason(self) = nullptr;
  }
}

// Blocks a plain thread until `f` is done or `timeout_ns` (< 0: never)
// passes. True if done.
bool thread_wait(FutureCore* f, std::int64_t timeout_ns) {
  if (f->done()) {
    return true;
  }
  Waiter w;
  w.root = nullptr;
  if (!link_unless_done(f, &w)) {
    return true;
  }
  // Saturating (kNeverNs: no deadline), as for tasks.
  const std::int64_t deadline = timeout_ns < 0 ? kNeverNs : deadline_after_ns(now_ns(), timeout_ns);
  while (!w.fired()) {
    std::int64_t left = -1;
    if (deadline != kNeverNs) {
      left = deadline - now_ns();
      if (left <= 0) {
        break;
      }
    }
    futex_wait(&w.state, Waiter::kArmed, left);
  }
  unlink_waiter(f, &w);  // also waits out a firer's futex_wake (INV-W3)
  return f->done();
}

std::size_t inline_stack_reserve(const Fiber* f) {
  return std::max<std::size_t>(16 * 1024, f->stack.size / 4);
}

// Runs `child` (not started, queued) inside `self`, on this fiber. False if
// it could not be taken; the caller then waits for it normally.
bool run_inline(TaskCore* self, TaskCore* child) {
  if (task_started(child) || TaskAccess::sched(child) != TaskAccess::sched(self)) {
    return false;
  }
  Worker* w = Worker::current();
  Fiber* f = w->current_fiber();
  char probe;
  std::size_t room = static_cast<std::size_t>(&probe - f->stack.lo);
  if (room < inline_stack_reserve(f)) {
    return false;
  }
  if (!LocalQueue::try_claim(child)) {
    return false;
  }
  // Only entries pushed as claimable (not started) can be claimed, so this
  // is the child's first run.
  bool first = transition_to_running(child);
  SPINDLE_ASSERT(first, "claimed a task that had already started");
  w->note_inline_run();
  bool pending;
  std::string msg;
  {
    SpinGuard g(TaskAccess::lock(self));
    // cancel(self) reaches the child (INV-C1); our caller's handle keeps it alive.
    TaskAccess::awaiting(self) = child;
    TaskAccess::wait_reason(self) = wait_text(WaitKind::kInlineChild);
    pending = TaskAccess::must_cancel(self).load(std::memory_order_relaxed);
    if (pending) {
      TaskAccess::must_cancel(self).store(false, std::memory_order_relaxed);
      msg = TaskAccess::cancel_message(self);
    }
  }
  if (pending) {
    child->request_cancel(msg);
  }
  TaskAccess::inline_parent(child) = self;
  f->current = child;
  execute_task(child);
  // The child may have suspended and migrated us; the fiber is the same.
  f->current = self;
  TaskAccess::inline_parent(child) = nullptr;
  {
    SpinGuard g(TaskAccess::lock(self));
    TaskAccess::awaiting(self) = nullptr;
    TaskAccess::wait_reason(self) = nullptr;
  }
  finish_task(child);
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// FutureCore waiting
// ---------------------------------------------------------------------------

void FutureCore::wait() {
  TaskCore* self = current_task_core();
  if (self == nullptr) {
    thread_wait(this, -1);
    return;
  }
  if (this == self) {
    throw InvalidStateError("a task cannot await itself");
  }
  if (is_task() && !done()) {
    auto* target = static_cast<TaskCore*>(this);
    // An inline ancestor of ours started before we did, so a target that
    // has not started cannot be one: only a started target needs the walk.
    if (!task_started(target)) {
      if (run_inline(self, target)) {
        return;
      }
    } else {
      for (TaskCore* p = TaskAccess::inline_parent(self); p != nullptr;
           p = TaskAccess::inline_parent(p)) {
        if (p == target) {
          throw InvalidStateError("a task cannot await a task that is waiting for it");
        }
      }
    }
  }
  while (!done()) {
    Waiter w;
    w.root = current_root();
    if (!link_unless_done(this, &w)) {
      return;
    }
    park_task(self, w, this, wait_text(WaitKind::kFuture));
    unlink_waiter(this, &w);
    await_publication(this);
    if (!done()) {
      deliver_cancellation(self);  // woken by cancel(): throws
    }
  }
}

bool FutureCore::wait_for_ns(std::int64_t ns) {
  TaskCore* self = current_task_core();
  if (self == nullptr) {
    return thread_wait(this, ns < 0 ? 0 : ns);
  }
  if (done() || ns <= 0) {
    return done();
  }
  Waiter w;
  w.root = current_root();
  if (!link_unless_done(this, &w)) {
    return true;
  }
  TimerEntry timer;
  timer.deadline_ns = deadline_after_ns(now_ns(), ns);
  timer.waiter = &w;
  arm_own_timer(&timer);  // none for a deadline of never
  park_task(self, w, nullptr, wait_text(WaitKind::kFutureTimed));
  disarm_own_timer(&timer);
  unlink_waiter(this, &w);
  await_publication(this);
  deliver_cancellation(self);
  return done();
}

// ---------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------

bool in_task_now() noexcept { return current_task_core() != nullptr; }

}  // namespace spindle::detail

namespace spindle {

void yield() {
  detail::TaskCore* self = detail::current_task_or_throw("spindle::yield");
  detail::deliver_cancellation(self);
  detail::Worker::current()->suspend(detail::PostAction::kYield);
  detail::deliver_cancellation(self);
}

void sleep(Duration d) { sleep_until(detail::deadline_after(d)); }

void sleep_until(TimePoint t) {
  detail::TaskCore* self = detail::current_task_or_throw("spindle::sleep");
  detail::deliver_cancellation(self);
  const std::int64_t deadline = t.time_since_epoch().count();
  if (deadline <= detail::now_ns()) {
    yield();
    return;
  }
  detail::Waiter w;
  w.root = detail::current_root();
  detail::TimerEntry timer;
  timer.deadline_ns = deadline;  // TimePoint::max(): until cancelled
  timer.waiter = &w;
  detail::arm_own_timer(&timer);
  detail::park_task(self, w, nullptr, detail::wait_text(detail::WaitKind::kSleep));
  detail::disarm_own_timer(&timer);
  detail::deliver_cancellation(self);
}

void check_cancelled() {
  detail::deliver_cancellation(detail::current_task_or_throw("spindle::check_cancelled"));
}

TaskRef current_task() {
  detail::TaskCore* self = detail::current_task_or_throw("spindle::current_task");
  self->ref();
  return TaskRef::adopt(self);
}

bool in_task() noexcept { return detail::in_task_now(); }

std::vector<TaskRef> all_tasks() {
  detail::TaskCore* self = detail::current_task_or_throw("spindle::all_tasks");
  std::vector<TaskRef> out;
  for (detail::TaskCore* t : detail::TaskAccess::sched(self)->registry().snapshot()) {
    out.push_back(TaskRef::adopt(t));
  }
  return out;
}

}  // namespace spindle

namespace spindle::detail {

TaskCore* task_or_throw(const char* what) { return current_task_or_throw(what); }
TaskCore* running_root() noexcept { return current_root(); }
void park_current(TaskCore* self, Waiter& w, const char* reason) {
  park_task(self, w, nullptr, reason);
}
void deliver_pending_cancel(TaskCore* self) { deliver_cancellation(self); }

}  // namespace spindle::detail
