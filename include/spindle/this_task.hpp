// Calls made from inside a running task: asyncio.sleep, current_task,
// all_tasks and friends. Each suspending call is a cancellation point: a
// pending cancel() is delivered there as a Cancelled exception.
//
// Thread-locals and migration: a task may suspend on one worker thread and
// resume on another. Never keep a reference or pointer to a thread_local
// across a suspending call (get(), sleep, yield, a lock or queue wait): after
// it, re-read the thread_local — through a function the compiler cannot
// inline. spindle's own per-thread state is read that way. Beware also of
// functions declared __attribute__((const)): glibc declares pthread_self()
// so (it is behind std::this_thread::get_id()), and the compiler may reuse a
// value computed before the suspension.
#pragma once

#include <chrono>
#include <vector>

#include "future.hpp"
#include "task.hpp"

namespace spindle {

// asyncio.sleep(0): lets every other runnable task run, then continues.
void yield();
void sleep(Duration d);
void sleep_until(TimePoint t);
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  sleep(detail::to_duration(d));
}
template <class Dur>
void sleep_until(std::chrono::time_point<Clock, Dur> t) {
  sleep_until(std::chrono::time_point_cast<Duration>(t));
}
// A suspension point for CPU-bound loops: throws Cancelled if a
// cancellation is pending, otherwise returns at once.
void check_cancelled();

// The task running this code; throws InvalidStateError outside a task.
TaskRef current_task();
// True when called from inside a task.
bool in_task() noexcept;
// Every live task of the calling task's runtime.
std::vector<TaskRef> all_tasks();

}  // namespace spindle
