// Every live task of a runtime, for all_tasks(), dump_tasks() and shutdown.
//
// Sharded: one intrusive list per worker plus one for spawns from outside,
// each under its own spin lock. A task is added by its spawner (to the
// spawning worker's shard, usually uncontended) and removed when it
// completes, before the scheduler drops its reference (task_state.hpp
// INV-T4) — so a snapshot taken under a shard lock may take references to
// every task it sees.
//
//   INV-R2  "No task is live" is decided only with every shard locked at once
//           (empty_consistent(); snapshot() likewise sees one instant).
//           Once closed (Scheduler INV-S1) nothing spawns without a live
//           spawner, so a runtime seen empty stays empty. The count live()
//           gives without the locks is only approximate (bounds at live())
//           and decides nothing.
//   INV-R1  A worker's running task pointer (Worker::running()) is cleared by
//           that worker before the task can leave the registry: when the task
//           switches away (it may then finish elsewhere) and in finish_task()
//           before remove(). So a reader holding every shard lock that sees a
//           task there sees a registered task, which the scheduler's
//           reference keeps alive until the reader unlocks. Relaxed accesses
//           suffice: a clear followed by a removal happens-before the
//           removal's unlock, hence before the reader's lock of that shard,
//           so the reader cannot see the cleared pointer any more.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <spindle/detail/intrusive_list.hpp>
#include <spindle/detail/spin_lock.hpp>

#include "os_mutex.hpp"
#include "task_access.hpp"

namespace spindle::detail {

class TaskCore;

// A task's registry links (TaskCore::registry_prev_/registry_next_).
struct RegistryLinks {
  static TaskCore*& prev(TaskCore* t) noexcept { return TaskAccess::registry_prev(t); }
  static TaskCore*& next(TaskCore* t) noexcept { return TaskAccess::registry_next(t); }
};

class Registry {
 public:
  explicit Registry(unsigned shards);

  void add(TaskCore* t, unsigned shard);
  void remove(TaskCore* t);
  // New references to every live task (caller unrefs); runtime-internal
  // tasks (call_soon callbacks) only if asked for.
  std::vector<TaskCore*> snapshot(bool include_internal = false);
  // The id and name of the task in `running` (a worker's running task, see
  // INV-R1), read with every shard locked; false if it holds none. For the
  // slow-task warning: costs a few lock round trips, never a walk.
  bool describe_running(const std::atomic<TaskCore*>& running, std::uint64_t* id,
                        std::string* name);
  // A racy sum of the shards' counts (statistics), approximate while
  // tasks come and go: each shard is read at its own moment, so the sum is
  // at least the number of tasks registered throughout the call and at most
  // the number registered at some moment during it (a child added to a
  // shard already read is missed, a parent removed from one not yet read is
  // not counted: the sum may even be 0 while a task is always live). Exact
  // when nothing is added or removed during the call.
  std::size_t live() const noexcept;
  // INV-R2: whether no task is registered, decided with every shard locked
  // at once, so no add or remove can fall between two shards' reads (a
  // child added to shard 1 by a parent then leaving shard 0 would fool a
  // shard-by-shard look). Shutdown decides "no live task" with this.
  bool empty_consistent();
  // Blocks the calling plain thread until no task is live or the timeout
  // (ms) passes; true when empty.
  bool wait_empty_for(std::int64_t timeout_ms);

 private:
  // Newest first; nothing needs the tail, so a head-only list.
  using TaskList = IntrusiveHeadList<TaskCore, RegistryLinks>;
  struct alignas(64) Shard {
    SpinLock lock;
    TaskList tasks;         // guarded by lock (or lock_all())
    std::size_t count = 0;  // guarded by lock (or lock_all()); read racily by live()
  };
  // Every shard's lock, taken in index order (the one order in which more
  // than one is held). Unchecked by the thread-safety analysis, which
  // cannot follow a lock per loop iteration: tasks and count are guarded by
  // their shard's lock, and read by lock_all()'s callers under all of them.
  void lock_all() noexcept SPINDLE_NO_THREAD_SAFETY_ANALYSIS;
  void unlock_all() noexcept SPINDLE_NO_THREAD_SAFETY_ANALYSIS;

  std::unique_ptr<Shard[]> shards_;
  unsigned nshards_;
  std::atomic<int> empty_waiters_{0};
  OsMutex empty_mu_;
  std::condition_variable empty_cv_;
};

}  // namespace spindle::detail
