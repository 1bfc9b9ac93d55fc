// The task scheduling word: flags in the low bits of FutureCore::word_,
// the reference count above them (after tokio's task/state.rs).
//
// Roles
//   worker     runs the task (transition_to_running, release, yield,
//              complete) — only the worker that popped or claimed it.
//   waker      any thread that won a Waiter (waiter.hpp) and must make the
//              task runnable again (notify).
//
// Layout (bits of word_)
//   0  kRunning   a worker owns the task: it is executing on a fiber, or
//                 its fiber is in the middle of switching away.
//   1  kNotified  the task is in a run queue, or must be put in one by the
//                 worker that owns it as soon as the switch away completes.
//   2  kComplete  the body has finished; terminal.
//   3  kStarted   the body has begun (on its own fiber or inline).
//   16.. refcount (FutureCore::kRefOne).
//
// Invariants
//   INV-T1  a task is in at most one run-queue slot, and only while
//           kNotified is set and kRunning is clear: nobody else schedules
//           it, so it runs on one worker at a time.
//   INV-T2  a wake that finds the task running only sets kNotified; the
//           owner re-queues it after its fiber is fully switched out
//           (release()), so no wake is lost and no fiber is resumed while
//           still running on another thread.
//   INV-T3  every wake corresponds to one fired Waiter, and a Waiter fires
//           once (waiter.hpp): a suspended task gets exactly one wake per
//           suspension, hence one queue entry.
//   INV-T4  the scheduler holds one reference from spawn until kComplete;
//           run-queue entries, fibers and waiters borrow it.
//   INV-T5  a task that yields keeps kRunning (and no kNotified) while it
//           waits in a run queue: it has no armed waiter, so no wake can
//           look at its flags, and the worker that pops it takes it as it
//           is — the yield path costs no RMW on the task word.
//
// Transitions (every one is an RMW on word_, so there is one modification
// order; all are acq_rel: the acquire side sees the task's fiber and fields
// as the previous owner left them, the release side publishes ours)
//   spawn             -> kNotified, refs 2 (handle + scheduler)  [plain init]
//   to_running        kNotified & !kRunning -> kRunning | kStarted, clears
//                     kNotified                                [worker pop]
//   notify            !kRunning & !kNotified -> kNotified: caller submits;
//                     kRunning -> kRunning | kNotified: owner submits;
//                     kNotified or kComplete: nothing            [waker]
//   release           clears kRunning; if kNotified, caller submits
//                                                   [owner, after switch]
//   yield             no change (INV-T5); the popper sees kRunning without
//                     kNotified and keeps it                [owner, after switch]
//   complete          kRunning -> kComplete                         [owner]
#pragma once

#include <atomic>
#include <cstdint>

#include <spindle/detail/task_core.hpp>

#include "debug.hpp"
#include "future_access.hpp"

namespace spindle::detail {

inline constexpr std::uint64_t kRunning = 1;
inline constexpr std::uint64_t kNotified = 2;
inline constexpr std::uint64_t kComplete = 4;
inline constexpr std::uint64_t kStarted = 8;
static_assert((kRunning | kNotified | kComplete | kStarted) <= FutureCore::kFlagMask,
              "task flags must stay below the refcount");
// The layout table above: one bit each, at bits 0..3, none shared.
static_assert(kRunning == std::uint64_t{1} << 0 && kNotified == std::uint64_t{1} << 1 &&
                  kComplete == std::uint64_t{1} << 2 && kStarted == std::uint64_t{1} << 3,
              "task flags sit at the bits the layout table gives");
static_assert((kRunning + kNotified + kComplete + kStarted) ==
                  (kRunning | kNotified | kComplete | kStarted),
              "task flags do not overlap");

// clang-format 14 reads [[nodiscard]] here as the enum's name and glues the braces on.
// clang-format off
enum class [[nodiscard]] NotifyResult { kSubmit, kNothing };
enum class [[nodiscard]] ReleaseResult { kSubmit, kIdle };
// clang-format on

inline std::uint64_t initial_task_word() noexcept { return kNotified | 2 * FutureCore::kRefOne; }

// Worker took the task from a queue (or claimed it to run inline). Returns
// true if this is its first run.
inline bool transition_to_running(TaskCore* t) noexcept {
  auto& w = FutureAccess::word(t);
  std::uint64_t cur = w.load(std::memory_order_relaxed);
  if ((cur & (kRunning | kNotified)) == kRunning) {
    return false;  // a yielded task, still ours (INV-T5)
  }
  for (;;) {
    SPINDLE_ASSERT((cur & kNotified) && !(cur & (kRunning | kComplete)),
                   "task state: run of a task that is not queued (INV-T1)");
    std::uint64_t next = (cur & ~kNotified) | kRunning | kStarted;
    if (w.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      return !(cur & kStarted);
    }
  }
}

inline NotifyResult transition_notify(TaskCore* t) noexcept {
  auto& w = FutureAccess::word(t);
  std::uint64_t cur = w.load(std::memory_order_relaxed);
  for (;;) {
    if (cur & (kNotified | kComplete)) {
      return NotifyResult::kNothing;
    }
    std::uint64_t next = cur | kNotified;
    if (w.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      // INV-T2: a running task is re-queued by its owner.
      return (cur & kRunning) ? NotifyResult::kNothing : NotifyResult::kSubmit;
    }
  }
}

inline ReleaseResult transition_release(TaskCore* t) noexcept {
  // acq_rel: release publishes the suspended fiber to the next waker;
  // acquire sees a waker's notify.
  std::uint64_t prev = FutureAccess::word(t).fetch_and(~kRunning, std::memory_order_acq_rel);
  SPINDLE_ASSERT(prev & kRunning, "task state: release of a task that is not running");
  return (prev & kNotified) ? ReleaseResult::kSubmit : ReleaseResult::kIdle;
}

inline void transition_complete(TaskCore* t) noexcept {
  auto& w = FutureAccess::word(t);
  std::uint64_t cur = w.load(std::memory_order_relaxed);
  for (;;) {
    std::uint64_t next = (cur & ~(kRunning | kNotified)) | kComplete;
    if (w.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      return;
    }
  }
}

inline bool task_started(const TaskCore* t) noexcept {
  return FutureAccess::word(t).load(std::memory_order_acquire) & kStarted;
}
inline bool task_complete_flag(const TaskCore* t) noexcept {
  return FutureAccess::word(t).load(std::memory_order_acquire) & kComplete;
}

}  // namespace spindle::detail
