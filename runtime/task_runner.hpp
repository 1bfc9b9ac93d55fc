// Running a task's body and completing it: shared by a task started on its
// own fiber (Worker::run_root) and a child run inline by the task awaiting
// it (wait.cpp).
#pragma once

#include <exception>

namespace spindle::detail {

class TaskCore;

// Runs the body (or, if a cancellation came before the start, nothing) and
// completes the future with the result, the exception, or Cancelled. Never
// throws. The task may suspend inside; the caller may resume on another
// worker.
void execute_task(TaskCore* t) noexcept;
// After execute_task: leaves the registry, marks the scheduling word
// complete and drops the scheduler's reference (task_state.hpp INV-T4).
// `t` may be gone when this returns.
void finish_task(TaskCore* t) noexcept;
// A task picked to start that cannot be given a stack: it completes with
// `e` without running its body, then finishes as above.
void fail_unstarted_task(TaskCore* t, std::exception_ptr e) noexcept;

}  // namespace spindle::detail
