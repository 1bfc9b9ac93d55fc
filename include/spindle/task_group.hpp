// Structured concurrency: asyncio.TaskGroup (Python 3.12).
//
//   int n = spindle::task_group([](spindle::TaskGroup& tg) {
//     auto a = tg.spawn([] { return fetch("a"); });
//     auto b = tg.spawn([] { return fetch("b"); });
//     return 2;                    // the body's result is task_group's result
//   });                            // returns once a and b are done
//
// task_group(body) runs body in the calling task (InvalidStateError outside
// one) and returns once every child is done. The first child to fail (an
// exception other than Cancelled) cancels every other child and the body
// itself; the body's resulting Cancelled is absorbed (uncancel()). All
// failures then come out together as one ExceptionGroup ("unhandled errors
// in a TaskGroup"); a body that threw adds its exception last, so a body
// exception always comes out inside an ExceptionGroup, as in asyncio.
// Cancelled children are not failures. Cancelling the owning task cancels
// the children; once they are done, Cancelled propagates (unless some child
// failed: the ExceptionGroup wins, and the task's cancellation stays
// pending, as asyncio's uncancel()+cancel() leaves it). Groups nest.
//
// TaskGroup::spawn works from the body and from the children (pass the group
// by reference) — any task of the owner's runtime — while the group is
// open; it throws
// InvalidStateError once the group is shutting down (a failure or a
// cancellation is cancelling the children) or finished (the body is done and
// no child is left). As in asyncio, the body having returned does not close
// the group while children are still running. Children run in parallel with
// the body, so a child's failure may start the shutdown while the body is
// still spawning: that spawn() throws InvalidStateError (asyncio raises
// RuntimeError for a spawn after the shutdown began), which, unless the
// body catches it, joins the ExceptionGroup as the body's exception. The
// TaskGroup object lives in task_group()'s frame: never use it after
// task_group() returned.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/combinators_impl.hpp"
#include "errors.hpp"
#include "future.hpp"
#include "task.hpp"

namespace spindle {

template <class F>
auto task_group(F&& body);

class TaskGroup {
 public:
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup();

  // asyncio.TaskGroup.create_task: spawns f as a child (spindle::spawn, so
  // from a task of the owner's runtime: the body or a child) and returns its
  // Task. InvalidStateError if the group is shutting down or finished; f is
  // then destroyed without running. A child spawned while the group starts
  // shutting down on another thread is cancelled at once.
  template <class F>
  auto spawn(F&& f, std::string name = {}) -> Task<detail::TaskResult<F>> {
    check_open();  // before f is moved from
    auto task = ::spindle::spawn(std::forward<F>(f), std::move(name));
    adopt(task.ref());
    return task;
  }

  // Children not finished yet.
  std::size_t size() const;

 private:
  template <class F>
  friend auto task_group(F&& body);

  // The calling task becomes the owner (InvalidStateError outside a task).
  TaskGroup();
  void check_open() const;
  // Makes a just-spawned task a child (cancelled at once if the group began
  // shutting down since check_open()).
  void adopt(TaskRef child);
  // asyncio.TaskGroup.__aexit__: cancels the children if the body failed or
  // was cancelled, waits for every child, then returns normally or throws
  // (Cancelled or ExceptionGroup).
  void finish(std::exception_ptr body_error, bool body_cancelled);

  std::shared_ptr<detail::TaskGroupState> state_;
};

// Runs body(TaskGroup&) in the calling task and returns its result once every
// child is done (see the top of this file).
template <class F>
auto task_group(F&& body) {
  using R = std::invoke_result_t<F&, TaskGroup&>;
  TaskGroup tg;
  std::exception_ptr error;
  bool cancelled = false;
  std::optional<detail::Stored<std::decay_t<R>>> result;
  try {
    if constexpr (std::is_void_v<R>) {
      std::invoke(body, tg);
    } else {
      result.emplace(std::invoke(body, tg));
    }
  } catch (const Cancelled&) {
    error = std::current_exception();
    cancelled = true;
  } catch (...) {
    error = std::current_exception();
  }
  // Outside the handlers: finish() suspends.
  tg.finish(std::move(error), cancelled);
  if constexpr (!std::is_void_v<R>) {
    return std::decay_t<R>(std::move(*result));
  }
}

}  // namespace spindle
