// Not API. A task: a future plus the callable that completes it, the
// scheduling word, cancellation state and bookkeeping for all_tasks().
//
// The scheduling flags live in the low bits of FutureCore::word_ and are
// documented with their transitions in runtime/task_state.hpp. Everything
// under task_lock_ is documented in runtime/task.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "future_core.hpp"

namespace spindle::detail {

class Scheduler;
struct Fiber;

class TaskCore : public FutureCore {
 public:
  std::uint64_t id() const noexcept { return id_; }
  std::string name() const;
  void set_name(std::string name);

  // Task.cancel(msg): false if the task is already done.
  bool request_cancel(std::string msg);
  int cancelling() const;
  int uncancel();

  Scheduler* scheduler() const noexcept { return sched_; }

  // Runs the callable and stores its value; exceptions propagate to the
  // runtime's trampoline, which completes the future with them.
  virtual void run_body() = 0;

 protected:
  // Takes the name only if one was given (the default name is made on
  // demand from the id), so spawning an unnamed task copies no string.
  explicit TaskCore(std::string& name) : FutureCore(true) {
    if (!name.empty()) {
      notes_.reset(new Notes{std::move(name), {}});
    }
  }
  ~TaskCore() override;

 private:
  // The runtime reaches the fields below through runtime/task_access.hpp.
  friend struct TaskAccess;

  std::uint64_t id_ = 0;
  std::uint64_t spawner_id_ = 0;  // 0: spawned from outside any task
  Scheduler* sched_ = nullptr;

  // Owned by the worker running the task (no lock): the fiber this task
  // started on, and the task whose fiber runs this one inline.
  Fiber* fiber_ = nullptr;
  TaskCore* inline_parent_ = nullptr;

  // Where the not-yet-started task sits in a run queue, so that a task
  // awaiting it can take it and run it inline (runtime/run_queue.hpp).
  std::atomic<std::uint64_t> queue_slot_{0};
  TaskCore* overflow_prev_ = nullptr;  // guarded by the owning worker's overflow lock
  TaskCore* overflow_next_ = nullptr;

  // all_tasks() registry links, guarded by the registry shard's lock.
  TaskCore* registry_prev_ = nullptr;
  TaskCore* registry_next_ = nullptr;
  // The small fields share one 8-byte word, which keeps a task with an
  // empty callable at 192 bytes (a pool class of its own, not 256): a
  // million live tasks zero a quarter less fresh memory.
  std::uint16_t registry_shard_ = 0;  // a worker index; Scheduler caps workers
  // cancelling(): requests not uncancel()ed; saturates (task.cpp).
  std::uint16_t num_cancels_ SPINDLE_GUARDED_BY(task_lock_) = 0;

  // Guarded by task_lock_ (runtime/task.cpp documents the protocol).
  mutable SpinLock task_lock_;
  // Written under task_lock_; also read without it by the fast paths that
  // only need to know whether a request is pending (acquire).
  std::atomic<bool> must_cancel_{false};
  // A runtime-internal task (call_soon callbacks): not listed by all_tasks()
  // and not cancelled when block_on ends — queued callbacks still run, as
  // asyncio.run lets them. Set before spawning, then read-only.
  bool internal_ = false;
  // The strings few tasks have: a given name and a cancel message. Kept out
  // of line so that an unnamed, uncancelled task (nearly all of them) is
  // 56 bytes smaller: a million live tasks touch that much less memory.
  struct Notes {
    std::string name;
    std::string cancel_message;
  };
  std::unique_ptr<Notes> notes_ SPINDLE_GUARDED_BY(task_lock_);
  Waiter* current_wait_ SPINDLE_GUARDED_BY(task_lock_) = nullptr;
  // The awaiting code holds a handle while it is set.
  FutureCore* awaiting_ SPINDLE_GUARDED_BY(task_lock_) = nullptr;
  const char* wait_reason_ SPINDLE_GUARDED_BY(task_lock_) = nullptr;
};

}  // namespace spindle::detail
