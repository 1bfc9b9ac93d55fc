// The runtime's global injection queue: tasks spawned or woken from threads
// that are not workers of this runtime. The only user of moodycamel's
// ConcurrentQueue (lock-free MPMC, no global FIFO order across producers;
// per-producer order is kept).
//
// len_ is our own count, kept beside the queue because the idle protocol
// needs a value it can order with a seq_cst fence: a pusher increments it
// after enqueueing and before checking for sleeping workers; a worker about
// to park reads it after announcing that it parks (idle.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

namespace spindle::detail {

class TaskCore;

class InjectQueue {
 public:
  InjectQueue();
  ~InjectQueue();
  InjectQueue(const InjectQueue&) = delete;
  InjectQueue& operator=(const InjectQueue&) = delete;

  void push(TaskCore* t);
  // Up to `max` tasks into `out`; returns how many.
  std::size_t pop_bulk(TaskCore** out, std::size_t max);
  TaskCore* pop() {
    TaskCore* t = nullptr;
    return pop_bulk(&t, 1) == 1 ? t : nullptr;
  }
  std::size_t len() const noexcept {
    // seq_cst: the parker's load half of idle.hpp INV-I3 when called from
    // Worker::park()'s re-check (after transition_to_parked() and a fence);
    // partner: push()'s increment, then Idle::should_wake()'s fence and
    // load. Forbidden: we read 0 while that notifier reads the parker
    // counted awake. Elsewhere (take_injected) a hint.
    long n = len_.load(std::memory_order_seq_cst);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  alignas(64) std::atomic<long> len_{0};
};

}  // namespace spindle::detail
