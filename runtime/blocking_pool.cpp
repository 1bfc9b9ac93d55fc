#include "blocking_pool.hpp"

#include <pthread.h>

#include <system_error>

#include "fault.hpp"
#include "perturb.hpp"

namespace spindle::detail {

BlockingPool::BlockingPool(std::size_t max_threads, std::chrono::milliseconds idle_timeout)
    : max_threads_(max_threads == 0 ? 1 : max_threads), idle_timeout_(idle_timeout) {}

BlockingPool::~BlockingPool() { shutdown(); }

bool BlockingPool::submit(Job job) {
  OsLock lock(mu_);
  if (stopping_) {
    return false;
  }
  jobs_.push_back(std::move(job));
  // INV-B1: an idle thread is free only if no queued job is already
  // promised to it. A notified thread stays counted in idle_ until it
  // runs, so two quick submits must not both count on the same one.
  if (jobs_.size() <= idle_) {
    cv_.notify_one();
    return true;
  }
  if (threads_ < max_threads_) {
    try {
      // Detached, counted by threads_: shutdown() waits for the count to
      // reach zero, and a leaving thread's last touch of the pool is
      // unlocking mu_. Counted only once it exists.
      if (fault::should_fail(fault::Site::kThread)) {
        throw std::system_error(EAGAIN, std::generic_category(),
                                "spindle: cannot start a blocking-pool thread");
      }
      std::thread([this] { thread_main(); }).detach();
      ++threads_;
    } catch (...) {
      if (threads_ == 0) {
        // Nobody would ever run it: hand it back with the error.
        jobs_.pop_back();
        throw;
      }
      // A running thread takes it when it is free: the job waits, as it
      // would behind a full pool.
    }
  }
  return true;
}

void BlockingPool::thread_main() {
  pthread_setname_np(pthread_self(), "spindle-block");
  OsLock lock(mu_);
  for (;;) {
    while (jobs_.empty() && !stopping_) {
      ++idle_;
      bool woke = lock.wait_for(
          cv_, idle_timeout_, [&]() SPINDLE_REQUIRES(mu_) { return !jobs_.empty() || stopping_; });
      if (woke) {
        // Woken and still counted idle, not yet holding a job: the window
        // INV-B1 is about.
        lock.unlock();
        SPINDLE_PERTURB(kBlockingWoken);
        lock.lock();
      }
      --idle_;
      if (!woke) {
        --threads_;  // idle too long: shrink
        all_gone_.notify_all();
        return;
      }
    }
    if (jobs_.empty()) {  // stopping and nothing left
      --threads_;
      all_gone_.notify_all();
      return;
    }
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job(false);
    job = nullptr;  // the job's captures die outside the lock
    lock.lock();
  }
}

void BlockingPool::shutdown() {
  std::deque<Job> dropped;
  {
    OsLock lock(mu_);
    stopping_ = true;
    dropped.swap(jobs_);
    cv_.notify_all();
    lock.wait(all_gone_, [&]() SPINDLE_REQUIRES(mu_) { return threads_ == 0; });
  }
  for (Job& job : dropped) {
    job(true);  // never ran: cancels its future, so no waiter hangs
  }
}

std::size_t BlockingPool::threads() {
  OsLock lock(mu_);
  return threads_;
}

}  // namespace spindle::detail
