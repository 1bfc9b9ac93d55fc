// to_thread(fn): asyncio.to_thread. Runs a blocking call on the runtime's
// blocking pool (plain threads, at most Options::blocking_threads) and
// returns a Future of its result, so a task can await it without stalling a
// worker.
//
// Cancelling the Future before a pool thread starts fn means fn never runs;
// once fn runs it runs to the end (a thread cannot be interrupted) and its
// result is discarded. Callable from a task or any worker thread; from other
// threads use the Runtime's spawn to reach a runtime first.
#pragma once

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "future.hpp"
#include "task.hpp"

namespace spindle {

namespace detail {
// Hands a job to the calling worker's runtime's blocking pool; throws
// InvalidStateError outside a runtime or after shutdown.
void submit_blocking(std::function<void(bool drop)> job);
}  // namespace detail

template <class F>
auto to_thread(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  Future<R> result;
  detail::submit_blocking([result, fn = std::forward<F>(fn)](bool drop) mutable {
    if (drop) {
      result.cancel("runtime shut down before the call ran");
      return;
    }
    if (result.done()) {
      return;  // cancelled before it started: never runs
    }
    // Whatever fn throws reaches the future, InvalidStateError included;
    // a future cancelled while fn ran simply drops the outcome (the try_
    // calls return false without throwing).
    detail::FutureCore* core = result.core();
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        detail::try_emplace_result<R>(core);
      } else {
        detail::try_emplace_result<R>(core, fn());
      }
    } catch (...) {
      detail::try_set_error(core, std::current_exception());
    }
  });
  return result;
}

}  // namespace spindle
