// Process-wide glue between futures (which know no runtime) and the
// runtimes alive in the process.
#pragma once

#include <exception>
#include <functional>
#include <string>

namespace spindle::detail {

class Scheduler;
class TaskCore;

// Runtimes register while they accept work.
void register_scheduler(Scheduler* s);
void unregister_scheduler(Scheduler* s);

// Runs fn on a worker soon: the calling worker's runtime, else the most
// recently created live runtime. False if no runtime can take it (the
// caller then runs it itself).
bool schedule_soon(std::function<void()> fn);

// A task's exception was never retrieved: to its runtime's handler, or
// stderr when that runtime is gone. Takes over one reference of `t`.
void report_task_exception(TaskCore* t, std::exception_ptr e) noexcept;

// A plain future's exception was never retrieved: to the handler of the
// calling worker's runtime, else of the most recent live runtime (with an
// empty TaskRef), else stderr.
void report_future_exception(const std::string& repr, std::exception_ptr e) noexcept;

// Makes a task runnable after a Waiter of it fired (waiter.hpp).
void schedule_wake(TaskCore* root, bool lifo);

}  // namespace spindle::detail
