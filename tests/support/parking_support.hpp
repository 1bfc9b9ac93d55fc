// What a task is parked on, for tests that must act only once a task is
// blocked (tests/unit/queue_test.cpp, tests/unit/sync_test.cpp,
// tests/unit/future_test.cpp): its wait kind as an enum, the future it
// awaits, and a bounded wait until it is parked.
#pragma once

#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <spindle/spindle.hpp>

#include "task_access.hpp"
#include "wait_kind.hpp"

namespace spindle::testing {

using detail::WaitKind;

// What `t` is waiting for right now (WaitKind::kNone if it is not parked).
inline WaitKind wait_kind(const TaskRef& t) {
  detail::TaskCore* c = t.core();
  detail::SpinGuard g(detail::TaskAccess::lock(c));
  return detail::wait_kind(detail::TaskAccess::wait_reason(c));
}

// True once `t` is parked on a future, with or without a timeout. Every
// primitive links its wait node before it parks, so a task seen here is
// queued in the primitive.
inline bool parked_on_future(const TaskRef& t) {
  WaitKind k = wait_kind(t);
  return k == WaitKind::kFuture || k == WaitKind::kFutureTimed;
}

// The future `t` is parked on (nullptr if none).
inline const void* parked_future(const TaskRef& t) {
  detail::TaskCore* c = t.core();
  detail::SpinGuard g(detail::TaskAccess::lock(c));
  return detail::TaskAccess::awaiting(c);
}

// Waits (yielding in a task, sleeping on a thread) until `t` is parked on a
// future other than `other`; fails the test after 5 s.
inline void await_parked(const TaskRef& t, const void* other = nullptr) {
  using namespace std::chrono_literals;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!parked_on_future(t) || (other != nullptr && parked_future(t) == other)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "task never blocked";
    if (in_task()) {
      yield();
    } else {
      std::this_thread::sleep_for(20us);
    }
  }
}

}  // namespace spindle::testing
