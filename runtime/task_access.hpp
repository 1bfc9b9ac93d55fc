// Runtime-internal access to TaskCore's private fields (TaskCore befriends
// this one struct so the public header needs no list of runtime classes).
#pragma once

#include <spindle/detail/task_core.hpp>

namespace spindle::detail {

struct TaskAccess {
  static std::uint64_t& id(TaskCore* t) { return t->id_; }
  static std::uint64_t& spawner_id(TaskCore* t) { return t->spawner_id_; }
  static Scheduler*& sched(TaskCore* t) { return t->sched_; }
  static Fiber*& fiber(TaskCore* t) { return t->fiber_; }
  static TaskCore*& inline_parent(TaskCore* t) { return t->inline_parent_; }
  static std::atomic<std::uint64_t>& queue_slot(TaskCore* t) { return t->queue_slot_; }
  static TaskCore*& overflow_prev(TaskCore* t) { return t->overflow_prev_; }
  static TaskCore*& overflow_next(TaskCore* t) { return t->overflow_next_; }
  static TaskCore*& registry_prev(TaskCore* t) { return t->registry_prev_; }
  static TaskCore*& registry_next(TaskCore* t) { return t->registry_next_; }
  static std::uint16_t& registry_shard(TaskCore* t) { return t->registry_shard_; }
  static SpinLock& lock(TaskCore* t) SPINDLE_RETURN_CAPABILITY(t->task_lock_) {
    return t->task_lock_;
  }
  static std::atomic<bool>& must_cancel(TaskCore* t) { return t->must_cancel_; }
  // The fast-path check outside task_lock_ (acquire: pairs with the release
  // store made under the lock by request_cancel).
  static bool cancel_pending(TaskCore* t) {
    return t->must_cancel_.load(std::memory_order_acquire);
  }
  static bool& internal(TaskCore* t) { return t->internal_; }
  // Under task_lock_. Empty when the task was never cancelled with one.
  static const std::string& cancel_message(TaskCore* t) SPINDLE_REQUIRES(t->task_lock_) {
    return t->notes_ ? t->notes_->cancel_message : empty_string();
  }
  static Waiter*& current_wait(TaskCore* t) SPINDLE_REQUIRES(t->task_lock_) {
    return t->current_wait_;
  }
  static FutureCore*& awaiting(TaskCore* t) SPINDLE_REQUIRES(t->task_lock_) { return t->awaiting_; }
  static const char*& wait_reason(TaskCore* t) SPINDLE_REQUIRES(t->task_lock_) {
    return t->wait_reason_;
  }
  // A given name, or empty; read without task_lock_ only by the overflow
  // report, which is about to abort the process anyway (hence unchecked).
  static const std::string& raw_name(TaskCore* t) SPINDLE_NO_THREAD_SAFETY_ANALYSIS {
    return t->notes_ ? t->notes_->name : empty_string();
  }
  static const std::string& empty_string() {
    static const std::string empty;
    return empty;
  }
};

}  // namespace spindle::detail
