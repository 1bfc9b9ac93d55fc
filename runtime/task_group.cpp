// TaskGroup: asyncio.TaskGroup (Python 3.12's taskgroups.py) made
// thread-safe. The contract is in include/spindle/task_group.hpp.
//
// Roles. The *owner* task runs the body, then finish(). *Children* run on
// any worker; each one's done-callback (on_child_done) runs on any worker.
// Any task of the runtime may call spawn() while the group is open; any
// thread may cancel the owner.
//
// State (TaskGroupState, all guarded by mu_):
//   children_          the unfinished children (one TaskRef each)
//   exiting_           the body is over (asyncio _exiting)
//   aborting_          the children are being cancelled (asyncio _aborting)
//   parent_cancel_requested_  a child's failure cancelled the owner
//   errors_            the children's exceptions, in completion order
//   on_completed_      what the owner waits on while children remain
//
// Invariants
//   INV-G1  a child enters children_ before its done-callback is registered
//           and leaves it in that callback: the group is empty only when
//           every child's callback has run. A child spawns its siblings
//           while it is itself in children_, so the group cannot finish
//           under it.
//   INV-G2  the callback records a failure, and cancels the owner, before it
//           completes on_completed_, all under mu_: once the owner sees the
//           group empty, every error is in errors_ and the request it made
//           is counted in cancelling(), so finish()'s uncancel() takes back
//           exactly that request (asyncio's _parent_cancel_requested).
//   INV-G3  nothing under mu_ suspends or runs user code: children are
//           cancelled after unlocking (a snapshot), the owner under mu_ only
//           because of INV-G2, and request_cancel() only takes spin locks
//           and queues callbacks.
#include <spindle/task_group.hpp>

#include <unordered_map>
#include <vector>

#include <spindle/detail/spin_lock.hpp>
#include <spindle/detail/task_core.hpp>
#include <spindle/this_task.hpp>

namespace spindle::detail {

class TaskGroupState {
 public:
  explicit TaskGroupState(TaskRef parent) : parent_(std::move(parent)) {}

  // asyncio create_task's checks.
  void check_open_locked() const SPINDLE_REQUIRES(mu_) {
    if (aborting_) {
      throw InvalidStateError("TaskGroup is shutting down");
    }
    if (exiting_ && children_.empty()) {
      throw InvalidStateError("TaskGroup is finished");
    }
  }

  // Marks the group aborting and returns the children to cancel.
  std::vector<TaskRef> abort_locked() SPINDLE_REQUIRES(mu_) {
    aborting_ = true;
    std::vector<TaskRef> out;
    out.reserve(children_.size());
    for (auto& [core, ref] : children_) {
      if (!core->done()) {
        out.push_back(ref);
      }
    }
    return out;
  }

  static void cancel_all(std::vector<TaskRef>& ts) {
    for (TaskRef& t : ts) {
      t.cancel();
    }
  }

  void on_child_done(FutureCore* c) {
    std::vector<TaskRef> to_cancel;
    TaskRef dropped;  // released after unlocking (INV-G3)
    {
      SpinGuard lock(mu_);
      auto it = children_.find(c);
      if (it != children_.end()) {
        dropped = std::move(it->second);
        children_.erase(it);
      }
      if (c->status() == Status::kException) {
        errors_.push_back(c->error_for_outcome());  // retrieved: it goes into the group
        if (!aborting_ && !parent_cancel_requested_) {
          // asyncio: abort the children, and cancel the owner once so that
          // the body stops; finish() absorbs that cancellation.
          to_cancel = abort_locked();
          parent_cancel_requested_ = true;
          parent_.cancel();  // INV-G2
        }
      }
      if (children_.empty() && on_completed_) {
        try_set_void(on_completed_->core());
      }
    }
    cancel_all(to_cancel);
  }

  // A spin lock: held only for a few map and flag operations (INV-G3), by
  // a spawner and children completing on other workers at the same time;
  // a sleeping mutex would put both into the kernel under contention.
  SpinLock mu_;
  TaskRef parent_;
  std::unordered_map<FutureCore*, TaskRef> children_ SPINDLE_GUARDED_BY(mu_);  // INV-G1
  bool exiting_ SPINDLE_GUARDED_BY(mu_) = false;
  bool aborting_ SPINDLE_GUARDED_BY(mu_) = false;
  bool parent_cancel_requested_ SPINDLE_GUARDED_BY(mu_) = false;
  std::vector<std::exception_ptr> errors_ SPINDLE_GUARDED_BY(mu_);
  std::optional<Future<void>> on_completed_ SPINDLE_GUARDED_BY(mu_);
};

}  // namespace spindle::detail

namespace spindle {

using detail::TaskGroupState;

TaskGroup::TaskGroup() : state_(std::make_shared<TaskGroupState>(current_task())) {}

TaskGroup::~TaskGroup() = default;

std::size_t TaskGroup::size() const {
  detail::SpinGuard lock(state_->mu_);
  return state_->children_.size();
}

void TaskGroup::check_open() const {
  detail::SpinGuard lock(state_->mu_);
  state_->check_open_locked();
}

void TaskGroup::adopt(TaskRef child) {
  TaskGroupState& s = *state_;
  detail::FutureCore* core = child.core();
  bool cancel_now;
  {
    detail::SpinGuard lock(s.mu_);
    // INV-G1: in children_ before its done-callback is registered, so the
    // callback always finds it (a child may finish before we get here).
    cancel_now = s.aborting_;
    s.children_.emplace(core, child);
  }
  core->add_inline_callback([st = state_](detail::FutureCore* c) { st->on_child_done(c); });
  if (cancel_now) {
    child.cancel();
  }
}

void TaskGroup::finish(std::exception_ptr body_error, bool body_cancelled) {
  TaskGroupState& s = *state_;
  std::exception_ptr propagate_cancellation = body_cancelled ? body_error : nullptr;
  std::vector<TaskRef> to_cancel;
  {
    detail::SpinGuard lock(s.mu_);
    s.exiting_ = true;
    if (body_error && !s.aborting_) {
      // The owner is being cancelled, or the body threw: cancel the children.
      to_cancel = s.abort_locked();
    }
  }
  TaskGroupState::cancel_all(to_cancel);

  // asyncio loops because on_completed can be cancelled again and again by
  // repeated cancellation of the owner.
  for (;;) {
    Future<void> on_completed;
    {
      detail::SpinGuard lock(s.mu_);
      if (s.children_.empty()) {
        break;
      }
      s.on_completed_.emplace();
      on_completed = *s.on_completed_;
    }
    try {
      on_completed.get();
    } catch (const Cancelled&) {
      std::vector<TaskRef> more;
      {
        detail::SpinGuard lock(s.mu_);
        if (!s.aborting_) {
          // The owner is cancelled while children still run: cancel them,
          // and propagate Cancelled once they are done.
          propagate_cancellation = std::current_exception();
          more = s.abort_locked();
        }
      }
      TaskGroupState::cancel_all(more);
    }
  }

  std::vector<std::exception_ptr> errors;
  bool parent_cancel_requested;
  {
    detail::SpinGuard lock(s.mu_);
    errors = std::move(s.errors_);
    s.errors_.clear();
    parent_cancel_requested = s.parent_cancel_requested_;
    s.on_completed_.reset();
  }
  if (parent_cancel_requested) {
    // INV-G2: take back the request a failing child made; if none other is
    // pending, the Cancelled it caused is not reported.
    if (s.parent_.uncancel() == 0) {
      propagate_cancellation = nullptr;
    }
  }
  // Cancelled propagates unless there are errors: those have priority.
  if (propagate_cancellation && errors.empty()) {
    std::rethrow_exception(propagate_cancellation);
  }
  if (body_error && !body_cancelled) {
    errors.push_back(body_error);
  }
  if (!errors.empty()) {
    // If the owner is being cancelled from outside, keep that request
    // pending (asyncio: uncancel() then cancel(), the count stays the same).
    if (s.parent_.cancelling() > 0) {
      s.parent_.uncancel();
      s.parent_.cancel();
    }
    throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  }
}

}  // namespace spindle
