// A worker's timers: a binary min-heap of intrusive entries under a spin
// lock. Sleeps arm on the worker that runs the task; call_later from outside
// the runtime picks a worker. Any thread may cancel an entry (a task woken
// early removes its own entry, wherever it now runs); expired entries are
// fired by the owner when it looks for work, or by an idle worker.
//
// next_deadline_ mirrors the heap's minimum so workers can decide how long
// to park without taking the lock (relaxed: a stale value only makes a
// worker wake early or check again; every arm that lowers it also kicks a
// parked worker).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include <spindle/detail/spin_lock.hpp>

namespace spindle::detail {

struct Waiter;
class TimerHeap;

struct TimerEntry {
  static constexpr std::uint32_t kNotInHeap = std::numeric_limits<std::uint32_t>::max();

  std::int64_t deadline_ns = 0;
  std::uint32_t index = kNotInHeap;  // under the heap's lock
  TimerHeap* heap = nullptr;         // set on insert, under the heap's lock
  Waiter* waiter = nullptr;          // fired under the lock (waiter.hpp INV-W2)
  // Callback entries (call_later): run after removal, outside the lock.
  void (*on_fire)(TimerEntry*) = nullptr;
};

std::int64_t now_ns() noexcept;  // steady clock

class TimerHeap {
 public:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

  // Returns true if the entry became the new minimum (a parked worker may
  // need to shorten its sleep).
  bool insert(TimerEntry* e);
  // True if the entry was still armed (and now is not).
  bool remove(TimerEntry* e);
  // Removes every entry due at `now`. Waiter entries are fired under the
  // lock and their tasks collected into `wake`; callback entries go to
  // `callbacks`. Returns the number of entries handled.
  std::size_t take_due(std::int64_t now, std::vector<Waiter*>& wake,
                       std::vector<TimerEntry*>& callbacks);
  std::int64_t next_deadline() const noexcept {
    return next_deadline_.load(std::memory_order_relaxed);
  }
  std::size_t size();

 private:
  void sift_up(std::uint32_t i);
  void sift_down(std::uint32_t i);
  void remove_at(std::uint32_t i);
  void update_next();

  SpinLock lock_;
  std::vector<TimerEntry*> heap_;  // guarded by lock_
  std::atomic<std::int64_t> next_deadline_{kNever};
};

}  // namespace spindle::detail
