// Not API. std::mutex as a capability Clang's thread-safety analysis
// understands (libstdc++'s own std::mutex carries no annotations), for the
// OS-level locks of the runtime's cold paths: the registry's shutdown wait,
// the monitor, the blocking pool, the idle list, the stack and fiber pools.
// Same object code as std::mutex and std::unique_lock.
#pragma once

#include <condition_variable>
#include <mutex>

#include "spindle/detail/thread_annotations.hpp"

namespace spindle::detail {

class SPINDLE_CAPABILITY("mutex") OsMutex {
 public:
  void lock() SPINDLE_ACQUIRE() { m_.lock(); }
  void unlock() SPINDLE_RELEASE() { m_.unlock(); }
  bool try_lock() SPINDLE_TRY_ACQUIRE(true) { return m_.try_lock(); }

 private:
  friend class OsLock;
  std::mutex m_;
};

// Holds an OsMutex for its scope, and can wait on a condition variable
// with it (the wait drops and retakes the mutex inside, which the analysis
// need not see: the mutex is held again when wait returns). A predicate
// that reads guarded data says so: [&]() SPINDLE_REQUIRES(mu_) { ... }.
class SPINDLE_SCOPED_CAPABILITY OsLock {
 public:
  explicit OsLock(OsMutex& m) SPINDLE_ACQUIRE(m) : lock_(m.m_) {}
  ~OsLock() SPINDLE_RELEASE() {}
  OsLock(const OsLock&) = delete;
  OsLock& operator=(const OsLock&) = delete;

  // Drops and retakes the mutex inside the scope.
  void unlock() SPINDLE_RELEASE() { lock_.unlock(); }
  void lock() SPINDLE_ACQUIRE() { lock_.lock(); }

  void wait(std::condition_variable& cv) { cv.wait(lock_); }
  template <class Pred>
  void wait(std::condition_variable& cv, Pred pred) {
    cv.wait(lock_, std::move(pred));
  }
  template <class Duration>
  std::cv_status wait_for(std::condition_variable& cv, const Duration& d) {
    return cv.wait_for(lock_, d);
  }
  template <class Duration, class Pred>
  bool wait_for(std::condition_variable& cv, const Duration& d, Pred pred) {
    return cv.wait_for(lock_, d, std::move(pred));
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace spindle::detail
