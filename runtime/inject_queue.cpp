#include "inject_queue.hpp"

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wall"
#endif
#include <concurrentqueue/concurrentqueue.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#include "sanitizers.hpp"

namespace spindle::detail {

struct InjectQueue::Impl {
  moodycamel::ConcurrentQueue<TaskCore*> q;
};

InjectQueue::InjectQueue() : impl_(std::make_unique<Impl>()) {}
InjectQueue::~InjectQueue() = default;

void InjectQueue::push(TaskCore* t) {
#if SPINDLE_TSAN_ENABLED
  // moodycamel orders its slots with standalone fences, which TSan does not
  // model: hand TSan the edge explicitly (everything written to the task
  // before the push happens before the popper reads it).
  __tsan_release(t);
#endif
  impl_->q.enqueue(t);
  // seq_cst: the pusher's store half of idle.hpp INV-I3; the fence in
  // Idle::should_wake() (via Scheduler::notify_work()) follows. Partner:
  // Worker::park()'s transition_to_parked(), fence, then len(). Forbidden:
  // the notifier reads the parker counted awake while the parker reads 0.
  len_.fetch_add(1, std::memory_order_seq_cst);
}

std::size_t InjectQueue::pop_bulk(TaskCore** out, std::size_t max) {
  if (len_.load(std::memory_order_relaxed) <= 0) {
    return 0;  // relaxed: a hint only; a miss is caught by the idle protocol
  }
  std::size_t n = impl_->q.try_dequeue_bulk(out, max);
#if SPINDLE_TSAN_ENABLED
  for (std::size_t i = 0; i < n; ++i) {
    __tsan_acquire(out[i]);  // pairs with push()'s __tsan_release
  }
#endif
  if (n != 0) {
    len_.fetch_sub(static_cast<long>(n), std::memory_order_relaxed);
  }
  return n;
}

}  // namespace spindle::detail
