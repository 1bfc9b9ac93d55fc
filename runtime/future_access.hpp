// Runtime-internal access to FutureCore's private fields (FutureCore
// befriends this one struct, as TaskCore befriends TaskAccess, so the public
// header needs no list of runtime classes and no "runtime-private" members).
#pragma once

#include <atomic>
#include <cstdint>

#include <spindle/detail/future_core.hpp>

namespace spindle::detail {

struct FutureAccess {
  // The refcount and, for a task, the scheduling flags (task_state.hpp).
  static std::atomic<std::uint64_t>& word(FutureCore* f) { return f->word_; }
  static const std::atomic<std::uint64_t>& word(const FutureCore* f) { return f->word_; }
  // Guards the waiter list, the callbacks and the status change out of
  // kCompleting (future_core.hpp INV-F3).
  static SpinLock& lock(FutureCore* f) SPINDLE_RETURN_CAPABILITY(f->lock_) { return f->lock_; }
  // The waiters linked on the future, oldest first; under lock(). Each
  // Waiter's `linked` flag says whether it is in the list (waiter.hpp).
  static IntrusiveList<Waiter>& waiters(FutureCore* f) SPINDLE_REQUIRES(f->lock_) {
    return f->waiters_;
  }
};

}  // namespace spindle::detail
