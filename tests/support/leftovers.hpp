// What a runtime must not hold once it has shut down: a live task, a fiber
// outside the spare pool (one a task still holds, or one lost), or a stack
// without a fiber. RuntimeTest checks it at every teardown (marl's
// leak-checking fixture); tests that make a Runtime of their own check it
// after their shutdown().
#pragma once

#include <cstddef>

#include <gtest/gtest.h>
#include <spindle/spindle.hpp>

#include "scheduler.hpp"
#include "task_access.hpp"

namespace spindle::testing {

class LeftoverCheck {
 public:
  // Learns rt's scheduler (Runtime keeps it private) from an empty task it
  // runs: construct while rt accepts work.
  explicit LeftoverCheck(Runtime& rt) {
    Task<void> probe = rt.spawn([] {});
    probe.get();
    sched_ = detail::TaskAccess::sched(static_cast<detail::TaskCore*>(probe.core()));
  }

  // After rt.shutdown() (which returns every worker's spare fibers to the
  // pool): no task is live, and every stack in use is a pooled fiber's.
  ::testing::AssertionResult nothing_left() const {
    const std::size_t tasks = sched_->registry().live();
    const long outside = fibers_outside_pool();
    if (tasks == 0 && outside == 0) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "left over after shutdown: " << tasks << " live task(s); " << outside
           << " fiber(s) or stack(s) outside the spare pool";
  }

  // Stacks in use that no spare fiber owns: fibers that tasks or workers
  // hold, or stacks that were lost (negative: a stack released twice).
  // Exact only while the runtime is quiet (after shutdown).
  long fibers_outside_pool() const {
    const auto pooled = static_cast<long>(sched_->fiber_pool().size());
    const auto stacks = static_cast<long>(sched_->stacks().in_use());
    return stacks - pooled;
  }

 private:
  detail::Scheduler* sched_ = nullptr;
};

}  // namespace spindle::testing
