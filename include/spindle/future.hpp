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
// Memory ordering: writes made before set_result(), set_exception() or
// cancel() are visible to any thread once done() returns true, or get(),
// result() or exception() returns, for task and plain-thread waiters alike.
// Done-callbacks see the same.
//
// Not promised: callbacks run on a runtime worker "soon" after completion,
// in registration order relative to one another, but not at any particular
// moment or on any particular thread. With no runtime alive they run on the
// completing thread. For a move-only T, result() moves the value out: only
// the first retrieval gets it.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
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
};

template <class T>
std::optional<Stored<T>>& value_of(FutureCore* c) {
  return *c->value_ptr<std::optional<Stored<T>>>();
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
    requires(!std::is_void_v<T> && std::is_convertible_v<U &&, detail::Stored<T>>)
  void set_result(U&& value) {
    detail::FutureCore* core = c();
    core->check_settable();
    if (!core->claim_completion()) {
      throw InvalidStateError("set_result() on a future that is already done");
    }
    detail::value_of<T>(core).emplace(std::forward<U>(value));
    core->publish(detail::Status::kResult);
  }
  void set_result()
    requires std::is_void_v<T>
  {
    detail::FutureCore* core = c();
    core->check_settable();
    if (!core->claim_completion()) {
      throw InvalidStateError("set_result() on a future that is already done");
    }
    detail::value_of<T>(core).emplace();
    core->publish(detail::Status::kResult);
  }
  void set_exception(std::exception_ptr e) { c()->set_exception_checked(std::move(e)); }

  // Future: cancels it now (false if already done). Task: requests
  // cancellation, delivered at the task's next suspension point.
  bool cancel(std::string msg = {}) { return c()->cancel(std::move(msg)); }

  // Called once, in registration order, after completion, on a runtime
  // worker; a callback added after completion is scheduled at once (never
  // run inside this call).
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
    return wait_for(std::chrono::ceil<Duration>(d));
  }

  // <Future pending>, <Future finished result=...>, <Future cancelled>,
  // <Future finished exception=...>
  std::string repr() const { return c()->repr(); }

  detail::FutureCore* core() const noexcept { return core_; }

  friend bool operator==(const Future& a, const Future& b) noexcept { return a.core_ == b.core_; }

 protected:
  template <class>
  friend class Future;
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
