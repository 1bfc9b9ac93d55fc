// Task<T>, TaskRef and spawn(): asyncio.Task and create_task on a
// multithreaded runtime.
//
// A Task<T> is a Future<T> whose outcome is produced by running a callable
// on a runtime worker. set_result() and set_exception() on a task throw
// InvalidStateError. cancel(msg) requests cancellation: the task throws
// Cancelled(msg) at its next suspension point (any wait, sleep, yield, lock,
// queue call, or check_cancelled()); if the body returns first, the task
// completes with its result and the request lapses.
//
// spawn() queues the task and returns at once; the caller keeps running, and
// an idle worker may start the task immediately. A task awaited (get()) by
// another task before any worker started it may run inline, on the awaiting
// task's stack, with the same observable behaviour.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/task_core.hpp"
#include "future.hpp"

namespace spindle {

namespace detail {

class Scheduler;

// Registers and queues a freshly built task on `sched`, from any thread.
// Takes over the creator's reference for the scheduler and leaves the
// caller one (the handle).
void spawn_task(Scheduler* sched, TaskCore* task);
// The same on the calling worker's runtime; throws InvalidStateError on a
// thread that is not a runtime worker.
void spawn_here(TaskCore* task);

template <class T, class F>
class TaskImpl final : public TaskCore {
 public:
  template <class G>
  TaskImpl(G&& fn, std::string& name) : TaskCore(name), fn_(std::forward<G>(fn)) {
    set_value_offset(&value_);
  }

  void run_body() override {
    try {
      // Only the task itself completes its future, so it needs no claim
      // (future_core.hpp INV-F1 holds trivially): the runtime publishes.
      if constexpr (std::is_void_v<T>) {
        std::invoke(*fn_);
        fn_.reset();
        value_.emplace();
      } else {
        T result = std::invoke(*fn_);
        fn_.reset();
        value_.emplace(std::move(result));
      }
    } catch (...) {
      fn_.reset();  // the body's captures die when the task finishes
      throw;
    }
  }

 private:
  void write_result_repr(std::ostream& os) const override {
    if constexpr (!std::is_void_v<T>) {
      if (value_) {
        os << " result=";
        write_value_repr(os, *value_);
      }
    }
  }
  // The value first: its offset from the header is kept in 16 bits
  // (set_value_offset), so it must not sit behind a callable of any size.
  std::optional<Stored<T>> value_;
  std::optional<F> fn_;
  static_assert(alignof(std::optional<Stored<T>>) <= 4096,
                "a task's result type may be aligned to at most 4096 bytes");
};

template <class F>
using TaskResult = std::invoke_result_t<std::decay_t<F>&>;

}  // namespace detail

// A type-erased handle to any task (current_task(), all_tasks()).
class TaskRef {
 public:
  TaskRef() noexcept = default;
  TaskRef(const TaskRef& o) noexcept : core_(o.core_) {
    if (core_ != nullptr) {
      core_->ref();
    }
  }
  TaskRef(TaskRef&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  TaskRef& operator=(TaskRef o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~TaskRef() {
    if (core_ != nullptr) {
      core_->unref();
    }
  }
  // Adopts one reference.
  static TaskRef adopt(detail::TaskCore* core) noexcept {
    TaskRef r;
    r.core_ = core;
    return r;
  }

  bool valid() const noexcept { return core_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  std::uint64_t id() const { return c()->id(); }
  std::string get_name() const { return c()->name(); }
  void set_name(std::string name) { c()->set_name(std::move(name)); }
  bool cancel(std::string msg = {}) { return c()->request_cancel(std::move(msg)); }
  int cancelling() const { return c()->cancelling(); }
  int uncancel() { return c()->uncancel(); }
  bool done() const { return c()->done(); }
  bool cancelled() const { return c()->cancelled(); }
  std::string repr() const { return c()->repr(); }
  // Waits until the task is done, without retrieving its outcome.
  void wait() const {
    if (!c()->done()) {
      c()->wait();
    }
  }

  detail::TaskCore* core() const noexcept { return core_; }
  friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept { return a.core_ == b.core_; }

 private:
  detail::TaskCore* c() const {
    if (core_ == nullptr) {
      detail::throw_empty_handle();
    }
    return core_;
  }
  detail::TaskCore* core_ = nullptr;
};

template <class T>
class Task : public Future<T> {
 public:
  // An empty handle; only assignment and valid() are meaningful.
  Task() noexcept : Future<T>(nullptr) {}

  std::string get_name() const { return tc()->name(); }
  void set_name(std::string name) { tc()->set_name(std::move(name)); }
  std::uint64_t id() const { return tc()->id(); }
  // Number of pending cancellation requests.
  int cancelling() const { return tc()->cancelling(); }
  // Decrements the pending requests; returns the new count.
  int uncancel() { return tc()->uncancel(); }
  TaskRef ref() const {
    tc()->ref();
    return TaskRef::adopt(tc());
  }
  operator TaskRef() const { return ref(); }

  // Adopts one reference of a task core (internal).
  static Task adopt_task(detail::TaskCore* core) noexcept { return Task(core); }

 private:
  explicit Task(detail::TaskCore* adopted) noexcept : Future<T>(adopted) {}
  detail::TaskCore* tc() const { return static_cast<detail::TaskCore*>(this->c()); }
};

namespace detail {

template <class F>
auto make_task(F&& f, std::string& name) {
  using R = TaskResult<F>;
  auto* core = new TaskImpl<R, std::decay_t<F>>(std::forward<F>(f), name);
  return Task<R>::adopt_task(core);
}

}  // namespace detail

// asyncio.create_task, from inside a task (or any worker thread of a
// runtime): queued at once on the current runtime; the caller keeps running.
// Outside a runtime it throws InvalidStateError — use Runtime::spawn.
template <class F>
auto spawn(F&& f, std::string name = {}) -> Task<detail::TaskResult<F>> {
  auto task = detail::make_task(std::forward<F>(f), name);
  detail::spawn_here(static_cast<detail::TaskCore*>(task.core()));
  return task;
}

}  // namespace spindle
