// Not API. What the templates of combinators.hpp and task_group.hpp must
// see: the concepts that accept any Future-like handle or range of them, the
// "complete unless already done" helpers, and the type-erased cores that do
// the waiting (runtime/combinators.cpp, runtime/task_group.cpp).
//
// The cores work on FutureCore* so that one non-template implementation
// serves every T; the templates only convert handles and read results.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "../future.hpp"
#include "../runtime.hpp"
#include "future_core.hpp"

namespace spindle {

enum class ReturnWhen : int;  // combinators.hpp

namespace detail {

// --- handles and ranges ----------------------------------------------------

// Future<T>, Task<T> or anything else that converts to Future<E::value_type>.
// (clang-format 14 mangles concept definitions.)
// clang-format off
template <class E>
concept HasValueType = requires { typename E::value_type; };

template <class E>
concept FutureHandle = HasValueType<std::remove_cvref_t<E>> &&
                       std::is_convertible_v<const std::remove_cvref_t<E>&,
                                             Future<typename std::remove_cvref_t<E>::value_type>>;

template <class R>
concept FutureRange =
    std::ranges::input_range<R> && FutureHandle<std::ranges::range_reference_t<R>>;
// clang-format on

template <FutureRange R>
using RangeValue = typename std::remove_cvref_t<std::ranges::range_reference_t<R>>::value_type;

// gather's element type: void children give std::monostate.
template <class T>
using ValueOrMonostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Copies the handles of any Future range into a vector (throws
// InvalidStateError for an empty handle).
template <FutureRange R>
std::vector<Future<RangeValue<R>>> to_future_vector(R&& range) {
  std::vector<Future<RangeValue<R>>> out;
  if constexpr (std::ranges::sized_range<R>) {
    out.reserve(std::ranges::size(range));
  }
  for (auto&& f : range) {
    Future<RangeValue<R>> g = f;
    if (!g.valid()) {
      throw_empty_handle();
    }
    out.push_back(std::move(g));
  }
  return out;
}

template <class T>
std::vector<FutureCore*> cores_of(const std::vector<Future<T>>& fs) {
  std::vector<FutureCore*> out;
  out.reserve(fs.size());
  for (const Future<T>& f : fs) {
    out.push_back(f.core());
  }
  return out;
}

// --- completing our own plain futures ---------------------------------------
// Each returns false, without throwing, when the future is already done (it
// was cancelled by a task's cancel(), or someone else won; INV-F1).

inline bool try_set_void(FutureCore* c) noexcept { return try_emplace_result<void>(c); }

// A value whose move throws fails the future with that exception instead
// (the future is never left claimed, future_core.hpp INV-F4).
template <class T>
bool try_set_value(FutureCore* c, Stored<T>&& v) {
  try {
    return try_emplace_result<T>(c, std::move(v));
  } catch (...) {
    return try_set_error(c, std::current_exception());
  }
}

// The message of a Cancelled held by `e` ("" for anything else).
std::string cancel_message_of(const std::exception_ptr& e);

// --- type-erased cores (runtime/combinators.cpp) ---------------------------

// gather(): returns once every child has a result (settled: once every child
// is done). Not settled: the first failure (exception, or a child's
// cancellation) is rethrown at once. If the calling task is cancelled while
// it waits, every child is cancelled with the same message and the call
// returns as asyncio's gather does (see combinators.hpp).
void gather_wait(FutureCore* const* children, std::size_t n, bool settled);

// wait(): returns once `when` holds, or the timeout passed (nullopt: never).
void wait_until(FutureCore* const* fs, std::size_t n, ReturnWhen when,
                std::optional<Duration> timeout);

// as_completed(): the shared state of one iteration.
class AsCompletedState;
std::shared_ptr<AsCompletedState> as_completed_start(FutureCore* const* fs, std::size_t n,
                                                     std::optional<Duration> timeout);
// The next future to finish, as a new reference; blocks; throws TimeoutError
// once the deadline passed and nothing finished is left to hand out.
FutureCore* as_completed_next(AsCompletedState& s);

class TimeoutState;
class TaskGroupState;

}  // namespace detail
}  // namespace spindle
