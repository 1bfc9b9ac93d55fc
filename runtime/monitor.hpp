// The monitor: a thread that watches for workers stuck in one task — a
// blocking call, a CPU loop without check_cancelled() — and
//   1. says so on stderr once per stall, naming the task, after
//      Options::slow_task_warning (if not 0);
//   2. rescues a task left in a stuck worker's LIFO slot (a task woken by
//      the one that then kept running): after one sampling period it moves
//      it to the injection queue, where idle workers take it;
//   3. wakes a parked worker when a stuck worker's queue holds stealable
//      work and nobody searches (a local push skips the fenced wakeup, see
//      Scheduler::notify_work_local, and may have missed a sleeper);
//   4. wakes a parked worker when a timer is overdue by more than
//      kOverdueNs (timer.hpp INV-TK3), whatever its owner is doing.
//
// It samples each worker's pick counter every kPeriod (or half the warning
// threshold, if shorter); a busy worker whose counter has not moved between
// two samples is stuck. When every worker is parked the monitor sleeps
// without a timeout (an idle runtime uses no CPU); the first worker to
// unpark wakes it.
//
//   INV-MN1  the monitor never sleeps deeply while a worker is unparked:
//            a worker decrements parked_count_, fences, then reads
//            deep_sleep_; the monitor sets deep_sleep_, fences, then reads
//            parked_count_ (Dekker; StoreLoad on both sides), so one of them
//            sees the other and the monitor stays, or is woken, awake.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "os_mutex.hpp"

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
  static constexpr std::chrono::milliseconds kPeriod{10};
  static constexpr std::int64_t kOverdueNs = 2'000'000;

  struct alignas(64) Slot {
    std::atomic<bool> busy{false};
    std::atomic<bool> parked{false};
    std::uint64_t seen_ticks = 0;  // monitor thread only
    std::int64_t seen_at_ms = 0;
    void* seen_lifo = nullptr;
    bool warned = false;
  };
  void run();
  void check(std::int64_t now_ms);

  Scheduler& sched_;
  const unsigned workers_;
  const std::chrono::milliseconds threshold_;
  std::unique_ptr<Slot[]> slots_;
  std::thread thread_;
  OsMutex mu_;
  std::condition_variable cv_;
  bool stop_ SPINDLE_GUARDED_BY(mu_) = false;
  std::atomic<bool> deep_sleep_{false};
  std::atomic<unsigned> parked_count_{0};
};

}  // namespace spindle::detail
