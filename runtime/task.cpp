// TaskCore: names, cancellation requests, running and completing.
//
// task_lock_ guards the cancellation and wait bookkeeping:
//   must_cancel_, notes_->cancel_message  a request not yet delivered as Cancelled
//   num_cancels_                   cancelling(): requests not uncancel()ed
//   current_wait_                  the Waiter the task is suspended on (if any)
//   awaiting_                      the future that wait is for (if any)
//   notes_ (name, cancel message), wait_reason_
//
// Cancellation protocol (asyncio's Task.cancel, made thread-safe):
//   INV-C1  cancel() first offers the request to the awaited future
//           (awaiting_): a plain future gets cancelled, a task gets a
//           request of its own; the awaiting task then learns the outcome
//           from that future, as in asyncio. Only if that fails (nothing
//           awaited, or it is already done) does the task get must_cancel_.
//   INV-C2  must_cancel_ is set under task_lock_, and the task publishes
//           current_wait_ under task_lock_ before it checks must_cancel_:
//           either the canceller sees the wait and fires it, or the task
//           sees the request before it suspends. No cancellation is lost.
//   INV-C3  a request is delivered once: the delivering code clears
//           must_cancel_ under the lock before throwing.
#include <spindle/detail/task_core.hpp>

#include <spindle/errors.hpp>

#include "debug.hpp"
#include "perturb.hpp"
#include "scheduler.hpp"
#include "task_access.hpp"
#include "task_runner.hpp"
#include "task_state.hpp"
#include "waiter.hpp"
#include "worker.hpp"

namespace spindle::detail {

TaskCore::~TaskCore() {
  SPINDLE_ASSERT(awaiting_ == nullptr, "task destroyed while awaiting a future");
}

std::string TaskCore::name() const {
  SpinGuard g(task_lock_);
  if (notes_ == nullptr || notes_->name.empty()) {
    return "Task-" + std::to_string(id_);
  }
  return notes_->name;
}

void TaskCore::set_name(std::string name) {
  auto fresh = std::make_unique<Notes>();  // allocated outside the spin lock
  SpinGuard g(task_lock_);
  if (notes_ == nullptr) {
    notes_ = std::move(fresh);
  }
  notes_->name = std::move(name);
}

bool TaskCore::request_cancel(std::string msg) {
  auto fresh = std::make_unique<Notes>();  // allocated outside the spin lock
  {
    SpinGuard g(task_lock_);
    if (done()) {
      return false;
    }
    // A count of pending requests, 16 bits wide: a task that collects
    // 65,535 requests without uncancel() stays at that count.
    if (num_cancels_ != UINT16_MAX) {
      ++num_cancels_;
    }
  }
  // The awaited future that refused our request (already done): we keep a
  // reference, so no new future can take its address while we compare.
  struct Tried {
    FutureCore* f = nullptr;
    ~Tried() {
      if (f != nullptr) {
        f->unref();
      }
    }
  } tried;
  for (;;) {
    FutureCore* target = nullptr;
    Waiter* fired = nullptr;
    {
      SpinGuard g(task_lock_);
      if (awaiting_ != nullptr && awaiting_ != tried.f) {
        target = awaiting_;
        target->ref();
      } else {
        must_cancel_.store(true, std::memory_order_release);  // see cancel_pending()
        if (notes_ == nullptr) {
          notes_ = std::move(fresh);
        }
        notes_->cancel_message = msg;
        // INV-C2 and waiter.hpp INV-W2: fired under the lock the wait is
        // published under.
        if (current_wait_ != nullptr && current_wait_->try_fire()) {
          fired = current_wait_;
        }
      }
    }
    if (target != nullptr) {
      SPINDLE_PERTURB(kCancelRequest);
      bool accepted = target->cancel(msg);  // INV-C1
      if (accepted) {
        target->unref();
        return true;
      }
      if (tried.f != nullptr) {
        tried.f->unref();
      }
      tried.f = target;  // keeps our reference: compared by address
      continue;
    }
    if (fired != nullptr) {
      SPINDLE_PERTURB(kCancelRequest);
      wake_waiter_owner(fired);
    }
    return true;
  }
}

int TaskCore::cancelling() const {
  SpinGuard g(task_lock_);
  return static_cast<int>(num_cancels_);
}

int TaskCore::uncancel() {
  SpinGuard g(task_lock_);
  if (num_cancels_ > 0) {
    --num_cancels_;
    if (num_cancels_ == 0) {
      must_cancel_.store(false, std::memory_order_relaxed);  // as Python 3.13
    }
  }
  return static_cast<int>(num_cancels_);
}

namespace {

void complete_with_error(TaskCore* t, Status final_status, std::exception_ptr e) noexcept {
  // Nobody else completes a task's future: no claim (task.hpp).
  t->set_error(std::move(e));
  t->publish(final_status);
}

}  // namespace

void execute_task(TaskCore* t) noexcept {
  std::string pre_cancel_message;
  bool pre_cancelled = false;
  if (TaskAccess::cancel_pending(t)) {  // rare: take the lock only then
    SpinGuard g(TaskAccess::lock(t));
    pre_cancelled = TaskAccess::must_cancel(t).load(std::memory_order_relaxed);
    if (pre_cancelled) {
      TaskAccess::must_cancel(t).store(false, std::memory_order_relaxed);  // INV-C3
      pre_cancel_message = TaskAccess::cancel_message(t);
    }
  }
  if (pre_cancelled) {
    // Cancelled before it first ran: the body never starts (asyncio throws
    // into the coroutine before its first line).
    complete_with_error(t, Status::kCancelled, make_cancelled(std::move(pre_cancel_message)));
    return;
  }
  try {
    t->run_body();
    t->publish(Status::kResult);
  } catch (const Cancelled& c) {
    complete_with_error(t, Status::kCancelled, std::current_exception());
  } catch (...) {
    complete_with_error(t, Status::kException, std::current_exception());
  }
}

void fail_unstarted_task(TaskCore* t, std::exception_ptr e) noexcept {
  complete_with_error(t, Status::kException, std::move(e));
  finish_task(t);
}

void finish_task(TaskCore* t) noexcept {
  transition_complete(t);
  if (Worker* w = Worker::current()) {
    w->forget_running(t);  // before the registry lets go of it (INV-R1)
  }
  TaskAccess::sched(t)->registry().remove(t);
  t->unref();  // the scheduler's reference (INV-T4)
}

}  // namespace spindle::detail
