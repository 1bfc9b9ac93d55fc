// Future<T>: asyncio.Future made thread-safe.
//
// A Future<T> is a shared, copyable handle to one pending-or-finished
// outcome (T may be void). Future<T>{} creates a new pending future, as
// asyncio.Future() does; a moved-from handle is empty and every method of an
// empty handle throws InvalidStateError.
//
// Every method is safe from any thread. get() suspends the calling task (or
// blocks the calling plain thread) until the future is done.
//
// Not promised: one handle object used by a method in one thread while
// another thread assigns or destroys that same object (std::shared_ptr's
// rule). A completer may still be inside set_result() when a waiter's get()
// returns, so a waiter that then drops the completer's handle (a shared
// slot both use) frees the future under it; give each thread its own copy.
//
// Memory ordering: writes made before set_result(), set_exception() or
// cancel() are visible to any thread once done() returns true, or get(),
// result() or exception() returns, for task and plain-thread waiters alike.
// Done-callbacks see the same.
//
// Where done-callbacks run. A future belongs to no runtime. The callbacks
// of one completion run together, in registration order, as one task on a
// runtime that the completing thread picks at that moment (the thread
// calling set_result(), set_exception() or cancel(); for a callback added to
// a future already done, the one calling add_done_callback()):
//   1. a worker of a runtime that has not yet stopped its workers picks its
//      own runtime, even while that runtime shuts down;
//   2. any other thread (a plain thread, a to_thread() pool thread) picks,
//      among the live runtimes (from construction until shutdown() has
//      returned), the most recently constructed one that has not begun to
//      shut down;
//   3. with no such runtime, the callbacks run on the completing thread,
//      before the call that completed the future (or added the callback)
//      returns.
// So with several runtimes alive, a plain thread's set_result() sends the
// callbacks to the newest runtime, whichever runtime created the future or
// waits on it; a to_thread() future completes on a pool thread and follows
// rule 2, not necessarily its own runtime.
//
// Not promised: callbacks run "soon" after completion, but not at any
// particular moment or on any particular worker of that runtime. For a
// move-only T, result() moves the value out: only the first retrieval gets
// it.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/future_core.hpp"
#include "detail/value_repr.hpp"
#include "errors.hpp"

namespace spindle {

using Duration = std::chrono::nanoseconds;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using CallbackId = std::uint64_t;

template <class T>
class Future;
template <class T>
class Task;

namespace detail {

struct Unit {};
template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, Unit, T>;

[[noreturn]] void throw_empty_handle();

// Storage for a plain future's value.
template <class T>
class FutureState final : public FutureCore {
 public:
  FutureState() noexcept : FutureCore(false) { set_value_offset(&value_); }
  ~FutureState() override = default;

 private:
  void write_result_repr(std::ostream& os) const override {
    if constexpr (!std::is_void_v<T>) {
      if (value_) {
        os << " result=";
        write_value_repr(os, *value_);
      }
    }
  }
  std::optional<Stored<T>> value_;
  static_assert(alignof(std::optional<Stored<T>>) <= 4096,
                "a future's value type may be aligned to at most 4096 bytes");
};

template <class T>
std::optional<Stored<T>>& value_of(FutureCore* c) {
  return *c->value_ptr<std::optional<Stored<T>>>();
}

// Claims `c` and stores a value made from `args`, then publishes it; false,
// with nothing constructed, if `c` is already done. A constructor that throws
// never leaves `c` claimed (future_core.hpp INV-F4): the value is made before
// the claim unless making it cannot throw, and a move that throws abandons
// the claim. The exception reaches the caller; the future stays pending.
template <class T, class... Args>
bool try_emplace_result(FutureCore* c, Args&&... args) {
  using S = Stored<T>;
  if constexpr (std::is_nothrow_constructible_v<S, Args&&...>) {
    if (!c->claim_completion()) {
      return false;
    }
    value_of<T>(c).emplace(std::forward<Args>(args)...);
  } else {
    if (c->done()) {
      return false;
    }
    S made(std::forward<Args>(args)...);
    if (!c->claim_completion()) {
      return false;
    }
    if constexpr (std::is_nothrow_move_constructible_v<S>) {
      value_of<T>(c).emplace(std::move(made));
    } else {
      try {
        value_of<T>(c).emplace(std::move(made));
      } catch (...) {
        c->abandon_claim();
        throw;
      }
    }
  }
  c->publish(Status::kResult);
  return true;
}

// Fails `c` with `e`; false if it is already done.
inline bool try_set_error(FutureCore* c, std::exception_ptr e) noexcept {
  if (!c->claim_completion()) {
    return false;
  }
  c->set_error(std::move(e));
  c->publish(Status::kException);
  return true;
}

template <class T>
T take_result(FutureCore* c) {
  c->check_result();
  if constexpr (std::is_void_v<T>) {
    return;
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return *value_of<T>(c);
  } else {
    return std::move(*value_of<T>(c));
  }
}

inline std::int64_t to_ns(Duration d) { return d.count(); }

// Saturating time arithmetic, used by every timed wait, sleep and timer, on
// tasks and plain threads alike: a timeout too large to add to the clock
// means "never" (TimePoint::max(), kNeverNs), a negative one "already due".
inline constexpr std::int64_t kNeverNs = std::numeric_limits<std::int64_t>::max();
inline std::int64_t deadline_after_ns(std::int64_t now, std::int64_t d) noexcept {
  if (d <= 0) {
    return now;
  }
  std::int64_t out;
  return __builtin_add_overflow(now, d, &out) ? kNeverNs : out;
}
inline TimePoint deadline_after(Duration d) noexcept {
  return TimePoint(Duration(deadline_after_ns(Clock::now().time_since_epoch().count(), d.count())));
}
// Any duration as nanoseconds, rounded up, saturating at Duration::max() and
// min() (hours::max() does not fit in nanoseconds).
template <class Rep, class Period>
Duration to_duration(std::chrono::duration<Rep, Period> d) noexcept {
  const std::chrono::duration<long double, std::nano> wide = d;
  if (wide.count() >= static_cast<long double>(Duration::max().count())) {
    return Duration::max();
  }
  if (wide.count() <= static_cast<long double>(Duration::min().count())) {
    return Duration::min();
  }
  return std::chrono::ceil<Duration>(d);
}

}  // namespace detail

template <class T>
class Future {
 public:
  using value_type = T;

  // A new pending future.
  Future() : core_(new detail::FutureState<T>()) {}
  Future(const Future& o) noexcept : core_(o.core_) {
    if (core_ != nullptr) {
      core_->ref();
    }
  }
  Future(Future&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  Future& operator=(const Future& o) noexcept {
    Future(o).swap(*this);
    return *this;
  }
  Future& operator=(Future&& o) noexcept {
    Future(std::move(o)).swap(*this);
    return *this;
  }
  ~Future() {
    if (core_ != nullptr) {
      core_->unref();
    }
  }
  void swap(Future& o) noexcept { std::swap(core_, o.core_); }

  // False for a moved-from handle.
  bool valid() const noexcept { return core_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  bool done() const { return c()->done(); }
  bool cancelled() const { return c()->cancelled(); }

  // Pending: InvalidStateError; cancelled: Cancelled; failed: rethrows.
  T result() const { return detail::take_result<T>(c()); }
  // Pending: InvalidStateError; cancelled: throws Cancelled; else the
  // exception or nullptr.
  std::exception_ptr exception() const { return c()->exception_checked(); }

  template <class U = T>
  requires(!std::is_void_v<T> &&
           std::is_convertible_v<U&&, detail::Stored<T>>) void set_result(U&& value) {
    detail::FutureCore* core = c();
    core->check_settable();
    if (!detail::try_emplace_result<T>(core, std::forward<U>(value))) {
      throw InvalidStateError("set_result() on a future that is already done");
    }
  }
  void set_result() requires std::is_void_v<T> {
    detail::FutureCore* core = c();
    core->check_settable();
    if (!detail::try_emplace_result<T>(core)) {
      throw InvalidStateError("set_result() on a future that is already done");
    }
  }
  void set_exception(std::exception_ptr e) { c()->set_exception_checked(std::move(e)); }

  // Future: cancels it now (false if already done). Task: requests
  // cancellation, delivered at the task's next suspension point.
  bool cancel(std::string msg = {}) { return c()->cancel(std::move(msg)); }

  // Called once, in registration order, after completion, on a runtime
  // worker (see "Where done-callbacks run" above); a callback added after
  // completion is scheduled at once, and runs inside this call only when no
  // runtime can take it (rule 3).
  CallbackId add_done_callback(std::function<void(Future<T>)> cb) {
    return c()->add_done_callback([cb = std::move(cb)](detail::FutureCore* core) {
      core->ref();
      cb(Future<T>(core));
    });
  }
  std::size_t remove_done_callback(CallbackId id) { return c()->remove_done_callback(id); }

  // await: suspends the calling task, or blocks the calling plain thread,
  // until done; then as result().
  T get() {
    detail::FutureCore* core = c();
    if (!core->done()) {
      core->wait();
    }
    return detail::take_result<T>(core);
  }

  // Waits without consuming anything; false on timeout. A suspension point
  // for a task (it may throw Cancelled), but it never cancels the future.
  bool wait_for(Duration d) const { return c()->wait_for_ns(detail::to_ns(d)); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    return wait_for(detail::to_duration(d));
  }

  // <Future pending>, <Future finished result=...>, <Future cancelled>,
  // <Future finished exception=...>
  std::string repr() const { return c()->repr(); }

  detail::FutureCore* core() const noexcept { return core_; }

  friend bool operator==(const Future& a, const Future& b) noexcept { return a.core_ == b.core_; }

 protected:
  // Adopts one reference.
  explicit Future(detail::FutureCore* adopted) noexcept : core_(adopted) {}
  detail::FutureCore* c() const {
    if (core_ == nullptr) {
      detail::throw_empty_handle();
    }
    return core_;
  }

  detail::FutureCore* core_;

 public:
  // Adopts one reference of `core` (internal; used by combinators).
  static Future adopt(detail::FutureCore* core) noexcept { return Future(core); }
};

}  // namespace spindle
