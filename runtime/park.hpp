// Parking the calling task on a Waiter, for wait sources outside wait.cpp
// (the I/O driver). The pattern is wait.cpp's: link the Waiter into every
// source that may fire it, park_current(), unlink it under each source's
// lock, then deliver_pending_cancel().
#pragma once

namespace spindle::detail {

class TaskCore;
struct Waiter;

// The running task; InvalidStateError naming `what` on a plain thread.
TaskCore* task_or_throw(const char* what);
// The task that owns the running fiber: what a Waiter's root must be.
TaskCore* running_root() noexcept;
// Publishes `w` as the task's wait (so cancel() fires it) and suspends
// until it fired. `reason` is a wait_text() (wait_kind.hpp).
void park_current(TaskCore* self, Waiter& w, const char* reason);
// Throws Cancelled if a cancellation is pending (task.cpp INV-C3).
void deliver_pending_cancel(TaskCore* self);

}  // namespace spindle::detail
