// The slow-task monitor (Options::slow_task_warning): a thread that notices
// a worker stuck in one task — a blocking call, a CPU loop without
// check_cancelled() — and says so on stderr, once per stall, naming the task.
//
// It samples each worker's pick counter; a busy worker whose counter has not
// moved for the threshold is stalled. When every worker is parked the monitor
// sleeps without a timeout (an idle runtime uses no CPU); the first worker
// to unpark wakes it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

namespace spindle::detail {

class Scheduler;

class Monitor {
 public:
  Monitor(Scheduler& sched, unsigned workers, std::chrono::milliseconds threshold);
  ~Monitor();
  void start();
  void stop();

  // Worker hooks (cheap: a relaxed store, plus a wake only when the monitor
  // sleeps deeply).
  void set_busy(unsigned worker, bool busy) noexcept {
    slots_[worker].busy.store(busy, std::memory_order_relaxed);
  }
  void set_parked(unsigned worker, bool parked) noexcept;

 private:
  struct alignas(64) Slot {
    std::atomic<bool> busy{false};
    std::atomic<bool> parked{false};
    std::uint64_t seen_ticks = 0;  // monitor thread only
    std::int64_t seen_at_ms = 0;
    bool warned = false;
  };
  void run();
  void check(std::int64_t now_ms);

  Scheduler& sched_;
  const unsigned workers_;
  const std::chrono::milliseconds threshold_;
  std::unique_ptr<Slot[]> slots_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                   // guarded by mu_
  std::atomic<bool> deep_sleep_{false};
  std::atomic<unsigned> parked_count_{0};
};

}  // namespace spindle::detail
