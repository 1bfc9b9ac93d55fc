// The blocking pool behind to_thread(): plain threads for calls that would
// block a worker (file I/O, DNS, a C library that sleeps).
//
// Bounded by Options::blocking_threads; threads start on demand when a job
// finds none idle, and exit after kIdleTimeout without work, so an idle
// runtime keeps none. Jobs run in submission order. A job whose future was
// cancelled before a thread picked it up is dropped without running.
//
// Thread-safety: everything under mu_.
//
//   INV-B1  a job waits in jobs_ only while every one of threads_ is busy
//           or promised a queued job: submit() wakes an idle thread only
//           if the queue holds no more jobs than idle threads, else it
//           starts a thread (up to max_threads_).
//   INV-B2  threads_ counts threads that exist: a thread that cannot be
//           created is never counted, so shutdown() cannot wait for it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "os_mutex.hpp"

namespace spindle::detail {

class BlockingPool {
 public:
  static constexpr std::chrono::milliseconds kIdleTimeout{10000};

  explicit BlockingPool(std::size_t max_threads,
                        std::chrono::milliseconds idle_timeout = kIdleTimeout);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // A job is called once: job(false) on a pool thread to run it (it skips
  // itself if its future was cancelled meanwhile), or job(true) if the pool
  // shuts down first (it cancels its future).
  using Job = std::function<void(bool drop)>;
  // False if the pool is shut down (the job is not taken). Throws
  // std::system_error (and does not take the job) if no thread exists and
  // none can be created.
  bool submit(Job job);
  // Drops queued jobs, waits for running ones and for every thread to
  // leave. Idempotent.
  void shutdown();
  std::size_t threads();

 private:
  void thread_main();

  const std::size_t max_threads_;
  const std::chrono::milliseconds idle_timeout_;
  OsMutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_ SPINDLE_GUARDED_BY(mu_);
  std::size_t threads_ SPINDLE_GUARDED_BY(mu_) = 0;
  std::size_t idle_ SPINDLE_GUARDED_BY(mu_) = 0;
  bool stopping_ SPINDLE_GUARDED_BY(mu_) = false;
  std::condition_variable all_gone_;
};

}  // namespace spindle::detail
