#include "idle.hpp"

#include <algorithm>

#include "atomic.hpp"

namespace spindle::detail {

Idle::Idle(unsigned num_workers) : num_workers_(num_workers), state_(num_workers * kUnparkOne) {
  sleepers_.reserve(num_workers);
}

bool Idle::should_wake() const {
  // seq_cst fence + load: the notify side of INV-I3; the store before the
  // fence is the caller's push (InjectQueue::push(), or a run-queue push
  // before Scheduler::notify_work_local()). StoreLoad partner: the
  // parker's transition_to_parked() RMW, then the fence and the queue loads
  // in Worker::park(). Forbidden: we read the parker still counted awake
  // (so wake nobody) while its re-check reads the queues without our push.
  full_fence();
  std::uint64_t s = state_.load(std::memory_order_seq_cst);
  unsigned searching = static_cast<unsigned>(s >> 32);
  unsigned unparked = static_cast<unsigned>(s);
  return searching == 0 && unparked < num_workers_;
}

int Idle::worker_to_notify() {
  if (!should_wake()) {
    return -1;
  }
  OsLock lock(mu_);
  if (!should_wake() || sleepers_.empty()) {
    return -1;
  }
  // The woken worker comes back searching (INV-I1 both counters).
  // seq_cst, though no StoreLoad rests on this RMW (INV-I3): a pusher whose
  // should_wake() reads it counts the woken worker and wakes nobody, and
  // that worker sleeps again only through transition_to_parked(), whose
  // fence and re-check (Worker::park()) pair with that pusher's fence.
  state_.fetch_add(kUnparkOne | kSearchOne, std::memory_order_seq_cst);
  unsigned w = sleepers_.back();
  sleepers_.pop_back();
  return static_cast<int>(w);
}

bool Idle::transition_to_searching() {
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (2 * static_cast<unsigned>(s >> 32) >= num_workers_) {
      return false;  // INV-I2
    }
    // The CAS makes the bound check and the increment one step (INV-I2).
    // seq_cst, though no StoreLoad rests on it: a notifier's should_wake()
    // that reads this count wakes nobody, and is safe because we stop
    // searching only by transition_from_searching() (staying unparked) or
    // transition_to_parked(), whose fence and re-check in Worker::park()
    // pair with the notifier's fence (INV-I3). Our first sweep may miss
    // the push (steal_into() probes with relaxed loads). On failure `s` is
    // reloaded.
    if (state_.compare_exchange_weak(s, s + kSearchOne, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

bool Idle::transition_from_searching() {
  // seq_cst, though no StoreLoad rests on it: we stay unparked, so a
  // notifier that reads the count without us still sees us counted
  // unparked, and we sleep only through transition_to_parked() and the
  // re-check that pairs with its fence (INV-I3). The last searcher's
  // notify_work() (Worker::find_work) hands the search on for parallelism.
  std::uint64_t prev = state_.fetch_sub(kSearchOne, std::memory_order_seq_cst);
  return static_cast<unsigned>(prev >> 32) == 1;
}

bool Idle::transition_to_parked(unsigned worker, bool is_searching) {
  OsLock lock(mu_);
  std::uint64_t dec = kUnparkOne | (is_searching ? kSearchOne : 0);
  // seq_cst: the store half of INV-I3 on the parking side; the caller
  // (Worker::park()) then fences and re-checks the queues. StoreLoad
  // partner: a pusher's push, fence and should_wake() load. Forbidden: that
  // pusher reads us still counted awake (so wakes nobody) while our
  // re-check reads the queues without its push.
  std::uint64_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
  sleepers_.push_back(worker);
  return is_searching && static_cast<unsigned>(prev >> 32) == 1;
}

bool Idle::unpark_worker_by_id(unsigned worker) {
  OsLock lock(mu_);
  auto it = std::find(sleepers_.begin(), sleepers_.end(), worker);
  if (it == sleepers_.end()) {
    return false;
  }
  sleepers_.erase(it);
  // seq_cst, though no StoreLoad rests on this RMW (INV-I3): a pusher whose
  // should_wake() reads it counts us awake and wakes nobody, and we sleep
  // again only through transition_to_parked(), whose fence and re-check
  // (Worker::park()) pair with that pusher's fence.
  state_.fetch_add(kUnparkOne, std::memory_order_seq_cst);
  return true;
}

}  // namespace spindle::detail
