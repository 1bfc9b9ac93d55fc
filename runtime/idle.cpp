#include "idle.hpp"

#include <algorithm>

#include "atomic.hpp"

namespace spindle::detail {

Idle::Idle(unsigned num_workers) : num_workers_(num_workers), state_(num_workers * kUnparkOne) {
  sleepers_.reserve(num_workers);
}

bool Idle::should_wake() const {
  // seq_cst fence + load: the load half of INV-I3 on the notify side; the
  // store half was the caller's push.
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
  std::lock_guard<std::mutex> lock(mu_);
  if (!should_wake() || sleepers_.empty()) {
    return -1;
  }
  // The woken worker comes back searching (INV-I1 both counters).
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
    // seq_cst: a searcher's count is what a notifier's should_wake() reads
    // after its push (INV-I3); the CAS makes the bound check and the
    // increment one step (INV-I2). On failure `s` is reloaded.
    if (state_.compare_exchange_weak(s, s + kSearchOne, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

bool Idle::transition_from_searching() {
  std::uint64_t prev = state_.fetch_sub(kSearchOne, std::memory_order_seq_cst);
  return static_cast<unsigned>(prev >> 32) == 1;
}

bool Idle::transition_to_parked(unsigned worker, bool is_searching) {
  std::lock_guard<std::mutex> lock(mu_);
  std::uint64_t dec = kUnparkOne | (is_searching ? kSearchOne : 0);
  // seq_cst: the store half of INV-I3 on the parking side; the caller then
  // fences and re-checks the queues.
  std::uint64_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
  sleepers_.push_back(worker);
  return is_searching && static_cast<unsigned>(prev >> 32) == 1;
}

bool Idle::unpark_worker_by_id(unsigned worker) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(sleepers_.begin(), sleepers_.end(), worker);
  if (it == sleepers_.end()) {
    return false;
  }
  sleepers_.erase(it);
  state_.fetch_add(kUnparkOne, std::memory_order_seq_cst);
  return true;
}

unsigned Idle::num_searching() const {
  return static_cast<unsigned>(state_.load(std::memory_order_relaxed) >> 32);
}
unsigned Idle::num_unparked() const {
  return static_cast<unsigned>(state_.load(std::memory_order_relaxed));
}
std::vector<unsigned> Idle::sleepers() {
  std::lock_guard<std::mutex> lock(mu_);
  return sleepers_;
}

}  // namespace spindle::detail
