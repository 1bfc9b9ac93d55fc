// Combinators: asyncio's gather, wait, as_completed, wait_for, timeout,
// shield and ensure_future, over Future<T> and Task<T>.
//
//   auto [a, b] = spindle::gather(spawn(f), spawn(g));      // asyncio.gather
//   auto [done, pending] = spindle::wait(tasks, ReturnWhen::FirstCompleted);
//   for (auto& f : spindle::as_completed(tasks)) use(f.get());
//   int v = spindle::wait_for(task, 50ms);                   // TimeoutError
//   spindle::timeout(50ms, [&] { return conn.read(); });     // asyncio.timeout
//
// Semantics are Python 3.12's asyncio unless a comment says otherwise. Every
// function taking futures accepts a Future<T>, a Task<T>, or any range whose
// elements convert to Future<T> (std::vector<Task<int>> for instance); the
// results come back as Future<T> handles, equal (operator==) to the ones
// passed in.
//
// Where they work: gather, gather_settled, wait, as_completed, wait_for and
// shield work in tasks and on plain threads (which block). timeout() and
// timeout_at() need a task (InvalidStateError elsewhere): they cancel the
// calling task at the deadline. ensure_future of a callable needs a runtime
// worker, as spawn() does.
//
// Memory ordering: everything a future's completer wrote before completing it
// is visible once a combinator reports that future done (as Future::get()).
//
// Deliberate differences from asyncio, each explained where it applies:
//   - wait() keeps the input order in done/pending (asyncio returns sets) and
//     does not mark the exceptions it sees as retrieved;
//   - as_completed() yields the futures themselves (asyncio's `async for`
//     form), and hands out a future that finished before it is asked for
//     even once the deadline has passed;
//   - the empty input of wait() throws std::invalid_argument (ValueError);
//   - Timeout::when() is a TimePoint (TimePoint::max(): no deadline, where
//     asyncio uses None), and a reschedule() into the past cancels at once
//     rather than via call_soon;
//   - wait_for() on a plain thread (no asyncio counterpart) blocks, and on
//     timeout cancels f and blocks until f finished.
// Kept as asyncio although spindle's own cancellation would differ: a task
// cancelled while blocked in gather() wakes only when asyncio's outer future
// would complete (see gather), not the moment its wait is cancelled.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/combinators_impl.hpp"
#include "errors.hpp"
#include "future.hpp"
#include "runtime.hpp"
#include "task.hpp"
#include "this_task.hpp"

namespace spindle {

// asyncio.FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED.
enum class ReturnWhen : int { FirstCompleted, FirstException, AllCompleted };

template <class T>
struct WaitResult {
  std::vector<Future<T>> done;
  std::vector<Future<T>> pending;
};

// One child's outcome in gather_settled() (asyncio's return_exceptions=True):
// a value, or the exception_ptr of a failure or cancellation.
template <class T>
class Outcome {
 public:
  using value_type = T;
  explicit Outcome(std::exception_ptr error, bool cancelled = false) noexcept
      : error_(std::move(error)), cancelled_(cancelled) {}
  explicit Outcome(std::in_place_t, T value) : value_(std::move(value)) {}

  // The outcome of a finished future; marks a failure as retrieved. For a
  // move-only T the value is moved out of the future.
  static Outcome of(const Future<T>& f) {
    detail::FutureCore* c = f.core();
    if (c->status() == detail::Status::kResult) {
      return Outcome(std::in_place, f.result());
    }
    return Outcome(c->error_for_outcome(), c->status() == detail::Status::kCancelled);
  }

  bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  // True if the child was cancelled (error() then holds a Cancelled).
  bool cancelled() const noexcept { return cancelled_; }
  // The value; rethrows error() if there is none.
  T& value() & {
    check();
    return *value_;
  }
  const T& value() const& {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }
  // nullptr when there is a value.
  std::exception_ptr error() const noexcept { return error_; }

 private:
  void check() const {
    if (!value_) {
      std::rethrow_exception(error_);
    }
  }
  std::optional<T> value_;
  std::exception_ptr error_;
  bool cancelled_ = false;
};

template <>
class Outcome<void> {
 public:
  using value_type = void;
  Outcome() noexcept = default;
  explicit Outcome(std::exception_ptr error, bool cancelled = false) noexcept
      : error_(std::move(error)), cancelled_(cancelled) {}
  static Outcome of(const Future<void>& f) {
    detail::FutureCore* c = f.core();
    if (c->status() == detail::Status::kResult) {
      c->mark_retrieved();
      return Outcome();
    }
    return Outcome(c->error_for_outcome(), c->status() == detail::Status::kCancelled);
  }
  bool has_value() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return has_value(); }
  bool cancelled() const noexcept { return cancelled_; }
  void value() const {
    if (error_) {
      std::rethrow_exception(error_);
    }
  }
  std::exception_ptr error() const noexcept { return error_; }

 private:
  std::exception_ptr error_;
  bool cancelled_ = false;
};

namespace detail {

template <class T>
ValueOrMonostate<T> result_or_monostate(const Future<T>& f) {
  if constexpr (std::is_void_v<T>) {
    f.result();
    return std::monostate{};
  } else {
    return f.result();
  }
}

template <class... Ts>
void gather_pack(bool settled, const Future<Ts>&... fs) {
  FutureCore* cores[] = {fs.core()..., nullptr};
  for (std::size_t i = 0; i < sizeof...(Ts); ++i) {
    if (cores[i] == nullptr) {
      throw_empty_handle();
    }
  }
  gather_wait(cores, sizeof...(Ts), settled);
}

}  // namespace detail

// ---------------------------------------------------------------------------
// gather
// ---------------------------------------------------------------------------
// asyncio.gather(*fs): the results in argument order (std::monostate for a
// Future<void>). The first failure propagates at once — an exception, or
// Cancelled for a cancelled child — and the other children keep running.
// Cancelling the gathering task cancels every child that is not done.
//
// On cancellation of the gathering task (asyncio's _GatheringFuture.cancel):
// every child is cancelled with the same message; the call then throws once
// the first child ends other than normally or all are done — Cancelled, or a
// child's exception if the first to end failed with one, as asyncio's outer
// future would. asyncio resumes the awaiting task at that moment too.
template <class... Ts>
auto gather(Future<Ts>... fs) -> std::tuple<detail::ValueOrMonostate<Ts>...> {
  detail::gather_pack(false, fs...);
  // Braced initialization evaluates left to right.
  return std::tuple<detail::ValueOrMonostate<Ts>...>{detail::result_or_monostate(fs)...};
}

// asyncio.gather(*fs) over a range: std::vector<T> in input order, or void
// for a range of Future<void>.
template <detail::FutureRange R>
auto gather(R&& fs) {
  using T = detail::RangeValue<R>;
  auto v = detail::to_future_vector(std::forward<R>(fs));
  auto cores = detail::cores_of(v);
  detail::gather_wait(cores.data(), cores.size(), false);
  if constexpr (std::is_void_v<T>) {
    for (auto& f : v) {
      f.result();
    }
    return;
  } else {
    std::vector<T> out;
    out.reserve(v.size());
    for (auto& f : v) {
      out.push_back(f.result());
    }
    return out;
  }
}

// asyncio.gather(*fs, return_exceptions=True): waits for every child and
// returns each one's Outcome in input order; never throws a child's failure.
// Cancelling the gathering task cancels the children, waits for all of them,
// then throws Cancelled (as asyncio does).
template <detail::FutureRange R>
auto gather_settled(R&& fs) -> std::vector<Outcome<detail::RangeValue<R>>> {
  using T = detail::RangeValue<R>;
  auto v = detail::to_future_vector(std::forward<R>(fs));
  auto cores = detail::cores_of(v);
  detail::gather_wait(cores.data(), cores.size(), true);
  std::vector<Outcome<T>> out;
  out.reserve(v.size());
  for (auto& f : v) {
    out.push_back(Outcome<T>::of(f));
  }
  return out;
}

template <class... Ts>
auto gather_settled(Future<Ts>... fs) -> std::tuple<Outcome<Ts>...> {
  detail::gather_pack(true, fs...);
  return std::tuple<Outcome<Ts>...>{Outcome<Ts>::of(fs)...};
}

// ---------------------------------------------------------------------------
// wait
// ---------------------------------------------------------------------------
// asyncio.wait(fs, timeout, return_when): returns as soon as the condition
// holds (FirstException: a future failed with an exception — a cancelled one
// does not count — or all are done), or when the timeout passes, with the
// futures split into done and pending (input order kept). Nothing is ever
// cancelled: not on timeout, and not when the waiting task is cancelled
// (Cancelled is thrown, the futures run on). An empty input throws
// std::invalid_argument, as asyncio raises ValueError.
template <detail::FutureRange R>
WaitResult<detail::RangeValue<R>> wait(R&& fs, ReturnWhen return_when = ReturnWhen::AllCompleted,
                                       std::optional<Duration> timeout = {}) {
  using T = detail::RangeValue<R>;
  auto v = detail::to_future_vector(std::forward<R>(fs));
  if (v.empty()) {
    throw std::invalid_argument("spindle::wait: the set of futures is empty");
  }
  auto cores = detail::cores_of(v);
  detail::wait_until(cores.data(), cores.size(), return_when, timeout);
  WaitResult<T> out;
  for (auto& f : v) {
    (f.done() ? out.done : out.pending).push_back(std::move(f));
  }
  return out;
}

// ---------------------------------------------------------------------------
// as_completed
// ---------------------------------------------------------------------------
// The input range returned by as_completed(): each step hands out the next
// future to finish (already done: get()/result() do not block). Single pass.
// Advancing blocks the calling task or thread; past the deadline, with no
// finished future left to hand out, it throws TimeoutError (and throws again
// on the next attempt). Dropping the range early is fine: it unhooks itself
// from the futures, which run on.
template <class T>
class AsCompleted {
 public:
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    using reference = Future<T>&;

    iterator() = default;
    // Waits for the next future (once per step).
    Future<T>& operator*() const { return owner_->current(); }
    Future<T>* operator->() const { return &owner_->current(); }
    iterator& operator++() {
      owner_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.owner_ == nullptr || it.owner_->remaining() == 0;
    }

   private:
    friend class AsCompleted;
    explicit iterator(AsCompleted* owner) : owner_(owner) {}
    AsCompleted* owner_ = nullptr;
  };

  AsCompleted(std::shared_ptr<detail::AsCompletedState> state, std::size_t total)
      : state_(std::move(state)), total_(total) {}
  AsCompleted(AsCompleted&&) noexcept = default;
  AsCompleted& operator=(AsCompleted&&) noexcept = default;

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // The next future to finish; InvalidStateError once all were handed out.
  Future<T> next() {
    Future<T> f = std::move(current());
    ++taken_;
    return f;
  }
  // How many futures are still to be handed out.
  std::size_t remaining() const noexcept { return total_ - taken_; }

 private:
  Future<T>& current() {
    if (!current_.valid()) {
      if (taken_ == total_) {
        throw InvalidStateError("as_completed: every future was already handed out");
      }
      current_ = Future<T>::adopt(detail::as_completed_next(*state_));
    }
    return current_;
  }
  void advance() {
    current() = Future<T>::adopt(nullptr);
    ++taken_;
  }

  std::shared_ptr<detail::AsCompletedState> state_;
  std::size_t total_ = 0;
  std::size_t taken_ = 0;
  // The future the iterator points at, fetched on demand; an empty handle
  // (valid() false) until then and after each step.
  Future<T> current_ = Future<T>::adopt(nullptr);
};

// asyncio.as_completed(fs, timeout): the futures in the order they finish.
// The deadline is counted from this call. Cancelling the iterating task
// does not cancel the futures.
template <detail::FutureRange R>
AsCompleted<detail::RangeValue<R>> as_completed(R&& fs, std::optional<Duration> timeout = {}) {
  auto v = detail::to_future_vector(std::forward<R>(fs));
  auto cores = detail::cores_of(v);
  return AsCompleted<detail::RangeValue<R>>(
      detail::as_completed_start(cores.data(), cores.size(), timeout), v.size());
}

// ---------------------------------------------------------------------------
// timeout / timeout_at
// ---------------------------------------------------------------------------

template <class F>
auto timeout_at(TimePoint when, F&& body);

// asyncio.Timeout: the deadline of one timeout()/timeout_at() scope. The body
// may take a Timeout& to look at or move its deadline. Thread-safe.
class Timeout {
 public:
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;
  ~Timeout();

  // The current deadline (TimePoint::max(): none).
  TimePoint when() const;
  // Moves the deadline (TimePoint::max(): none; a past one cancels the task
  // at once). InvalidStateError once the timeout expired or the scope ended,
  // as asyncio raises RuntimeError.
  void reschedule(TimePoint when);
  // True once the deadline fired (the task was cancelled by this timeout).
  bool expired() const;

 private:
  template <class F>
  friend auto timeout_at(TimePoint when, F&& body);
  // Enters the scope: arms the timer for the calling task
  // (InvalidStateError outside a task).
  explicit Timeout(TimePoint when);
  // Leaves the scope (idempotent) and disarms the timer. True if the body's
  // Cancelled came from this timeout, so TimeoutError must replace it
  // (asyncio.Timeout.__aexit__: expired, and uncancel() <= the count seen at
  // entry).
  bool leave(bool body_cancelled) noexcept;

  std::shared_ptr<detail::TimeoutState> state_;
};

// asyncio.timeout_at(when): runs body in the calling task (it must be one:
// InvalidStateError otherwise) and returns its result. At the deadline the
// task is cancelled; if the body then ends with Cancelled, TimeoutError is
// thrown instead. A cancellation from elsewhere still comes out as
// Cancelled, and nested timeouts each report their own expiry. A deadline
// already past cancels the task at its first suspension point. body may take
// a Timeout&.
template <class F>
auto timeout_at(TimePoint when, F&& body) {
  constexpr bool kTakesTimeout = std::is_invocable_v<F&, Timeout&>;
  auto run = [&](Timeout& tm) -> decltype(auto) {
    if constexpr (kTakesTimeout) {
      return std::invoke(body, tm);
    } else {
      return std::invoke(body);
    }
  };
  using R = decltype(run(std::declval<Timeout&>()));
  Timeout tm(when);
  try {
    if constexpr (std::is_void_v<R>) {
      run(tm);
      tm.leave(false);
      return;
    } else {
      R result = run(tm);
      tm.leave(false);
      return result;
    }
  } catch (const Cancelled&) {
    if (tm.leave(true)) {
      throw TimeoutError("spindle::timeout: the deadline passed");
    }
    throw;
  } catch (...) {
    tm.leave(false);
    throw;
  }
}

// asyncio.timeout(delay): timeout_at(now + d, body).
template <class Rep, class Period, class F>
auto timeout(std::chrono::duration<Rep, Period> d, F&& body) {
  return timeout_at(detail::deadline_after(detail::to_duration(d)), std::forward<F>(body));
}

// ---------------------------------------------------------------------------
// wait_for
// ---------------------------------------------------------------------------
// asyncio.wait_for(f, d) (3.12: timeout() around the await): f's result; at
// the deadline f is cancelled and waited for: f ended cancelled ->
// TimeoutError; f suppressed the cancellation and returned -> that value; f
// failed -> that exception. Cancelling the waiting task cancels f too. On a
// plain thread: f.wait_for(d), then the same cancel-and-wait.
template <class T, class Rep, class Period>
T wait_for(Future<T> f, std::chrono::duration<Rep, Period> d) {
  if (!f.valid()) {
    detail::throw_empty_handle();
  }
  const Duration limit = detail::to_duration(d);
  if (f.done()) {
    return f.get();  // the body would not suspend: no timer needed
  }
  if (in_task()) {
    return timeout(limit, [&f]() -> T { return f.get(); });
  }
  if (f.wait_for(limit)) {
    return f.get();
  }
  f.cancel();
  f.core()->wait();
  if (f.cancelled()) {
    throw TimeoutError("spindle::wait_for: the deadline passed");
  }
  return f.get();
}

// ---------------------------------------------------------------------------
// shield / ensure_future
// ---------------------------------------------------------------------------
// asyncio.shield(f): a new future that completes with f's outcome.
// Cancelling it (or a task awaiting it) does not cancel f, which runs on and
// can be awaited again. An f already done is returned as is. For a move-only
// T the value is moved from f into the shield's future.
template <class T>
Future<T> shield(Future<T> inner) {
  if (!inner.valid()) {
    detail::throw_empty_handle();
  }
  if (inner.done()) {
    return inner;
  }
  Future<T> outer;
  CallbackId id = inner.add_done_callback([outer](Future<T> in) {
    detail::FutureCore* ic = in.core();
    detail::FutureCore* oc = outer.core();
    if (oc->done()) {
      if (!in.cancelled()) {
        (void)ic->error_for_outcome();  // asyncio marks it retrieved
      }
      return;
    }
    if (in.cancelled()) {
      oc->cancel({});
    } else if (ic->status() == detail::Status::kException) {
      detail::try_set_error(oc, ic->error_for_outcome());
    } else if constexpr (std::is_void_v<T>) {
      in.result();
      detail::try_set_void(oc);
    } else {
      detail::try_set_value<T>(oc, in.result());
    }
  });
  outer.add_done_callback([inner, id](Future<T>) mutable {
    if (!inner.done()) {
      inner.remove_done_callback(id);
    }
  });
  return outer;
}

// asyncio.ensure_future: a Future or Task as is; a callable is spawned as a
// Task on the current runtime (InvalidStateError outside one).
template <class T>
Future<T> ensure_future(Future<T> f) {
  return f;
}
template <class T>
Task<T> ensure_future(Task<T> t) {
  return t;
}
template <class F>
requires(!detail::FutureHandle<F> &&
         std::is_invocable_v<std::decay_t<F>&>) auto ensure_future(F&& f) {
  return spawn(std::forward<F>(f));
}

}  // namespace spindle
