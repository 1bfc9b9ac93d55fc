#include "registry.hpp"

#include <chrono>

#include "atomic.hpp"
#include "debug.hpp"
#include "perturb.hpp"
#include "task_access.hpp"

namespace spindle::detail {

Registry::Registry(unsigned shards) : shards_(new Shard[shards]), nshards_(shards) {}

void Registry::add(TaskCore* t, unsigned shard) {
  // Callers pass a worker index or num_workers() (spawns from outside), both
  // below nshards_: no modulo on the spawn path (a divide was a quarter of
  // this function's cost in skynet).
  SPINDLE_ASSERT(shard < nshards_, "registry: shard index out of range");
  TaskAccess::registry_shard(t) = static_cast<std::uint16_t>(shard);
  Shard& s = shards_[shard];
  SpinGuard g(s.lock);
  __atomic_store_n(&s.count, s.count + 1, __ATOMIC_RELAXED);  // see live()
  s.tasks.push_front(t);
}

void Registry::remove(TaskCore* t) {
  Shard& s = shards_[TaskAccess::registry_shard(t)];
  std::size_t left;
  {
    SpinGuard g(s.lock);
    left = s.count - 1;
    __atomic_store_n(&s.count, left, __ATOMIC_RELAXED);
    s.tasks.remove(t);
  }
  SPINDLE_PERTURB(kRegistryRemoved);
  // A shard that empties tells a shutdown waiting for all of them. seq_cst:
  // pairs with wait_empty_for()'s increment and fence (StoreLoad: our count
  // store, then the waiter count; its increment, then the counts, INV-R2).
  // Forbidden: we read no waiter while the waiter's empty_consistent()
  // reads our shard's old count, and it sleeps its full timeout.
  if (left == 0) {
    full_fence();
    if (empty_waiters_.load(std::memory_order_seq_cst) > 0) {
      OsLock lock(empty_mu_);
      empty_cv_.notify_all();
    }
  }
}

std::size_t Registry::live() const noexcept {
  // Per-shard counts, each written under its lock; read without it (a
  // relaxed snapshot: exact once the registry is quiescent, e.g. shutdown).
  std::size_t n = 0;
  for (unsigned i = 0; i < nshards_; ++i) {
    n += __atomic_load_n(&shards_[i].count, __ATOMIC_RELAXED);
  }
  return n;
}

void Registry::lock_all() noexcept {
  // In index order, the only order in which more than one shard is held.
  for (unsigned i = 0; i < nshards_; ++i) {
    shards_[i].lock.lock();
  }
}

void Registry::unlock_all() noexcept {
  for (unsigned i = nshards_; i-- > 0;) {
    shards_[i].lock.unlock();
  }
}

std::vector<TaskCore*> Registry::snapshot(bool include_internal) {
  std::vector<TaskCore*> out;
  std::size_t room = live() + 64;
  for (;;) {
    out.reserve(room);  // never allocate (or throw) with the shards locked
    lock_all();         // INV-R2: one instant
    std::size_t total = 0;
    for (unsigned i = 0; i < nshards_; ++i) {
      total += shards_[i].count;
    }
    if (total <= out.capacity()) {
      for (unsigned i = 0; i < nshards_; ++i) {
        for (TaskCore* t = shards_[i].tasks.front(); t != nullptr; t = TaskList::next(t)) {
          if (include_internal || !TaskAccess::internal(t)) {
            t->ref();
            out.push_back(t);  // within capacity: no allocation
          }
        }
      }
      unlock_all();
      return out;
    }
    unlock_all();
    room = total + total / 4 + 64;  // grew meanwhile: make room and look again
  }
}

bool Registry::empty_consistent() {
  lock_all();  // INV-R2
  bool empty = true;
  for (unsigned i = 0; i < nshards_ && empty; ++i) {
    empty = shards_[i].count == 0;
  }
  unlock_all();
  return empty;
}

bool Registry::describe_running(const std::atomic<TaskCore*>& running, std::uint64_t* id,
                                std::string* name) {
  lock_all();
  TaskCore* t = running.load(std::memory_order_relaxed);  // INV-R1
  if (t != nullptr) {
    *id = t->id();
    *name = t->name();  // takes the task's own lock, never a shard lock
  }
  unlock_all();
  return t != nullptr;
}

bool Registry::wait_empty_for(std::int64_t timeout_ms) {
  OsLock lock(empty_mu_);
  // seq_cst, then a fence: pairs with remove()'s count store, fence and
  // empty_waiters_ load (StoreLoad: either the last remover sees a waiter
  // and notifies, or our empty_consistent() below sees its count, INV-R2).
  empty_waiters_.fetch_add(1, std::memory_order_seq_cst);
  full_fence();
  bool empty = lock.wait_for(empty_cv_, std::chrono::milliseconds(timeout_ms),
                             [&] { return empty_consistent(); });
  empty_waiters_.fetch_sub(1, std::memory_order_relaxed);
  return empty;
}

}  // namespace spindle::detail
