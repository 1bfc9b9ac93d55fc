// Test support: a Runtime per test, parameterized over worker counts, with a
// leak check at teardown (marl's fixture: no task, fiber or stack left
// over, leftovers.hpp), and the stress-test scale.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <spindle/spindle.hpp>

#include "leftovers.hpp"
#include "sanitizers.hpp"

namespace spindle::testing {

// SPINDLE_STRESS_SCALE (default 1) multiplies stress iterations; sanitizer
// builds run a quarter (TSan/ASan slow everything 5-20x).
inline double stress_scale() {
  double s = 1.0;
  if (const char* env = std::getenv("SPINDLE_STRESS_SCALE")) {
    s = std::atof(env);
  }
#if SPINDLE_TSAN_ENABLED || SPINDLE_ASAN_ENABLED
  s /= 4;
#endif
  return s > 0 ? s : 1.0;
}
inline long scaled(long n) {
  long v = static_cast<long>(static_cast<double>(n) * stress_scale());
  return v > 0 ? v : 1;
}

// ThreadSanitizer counts every fiber as a thread and dies past 8,128 of
// them: tests that hold many tasks suspended at once stay below this.
inline long max_suspended_tasks(long n) {
#if SPINDLE_TSAN_ENABLED
  return n < 3000 ? n : 3000;
#else
  return n;
#endif
}

class RuntimeTest : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    Options o;
    o.workers = GetParam();
    rt_ = std::make_unique<Runtime>(o);
    leftovers_.emplace(*rt_);
  }
  void TearDown() override {
    rt_->shutdown();
    EXPECT_EQ(rt_->stats().live_tasks, 0u) << "tasks leaked past shutdown";
    EXPECT_TRUE(leftovers_->nothing_left());
    leftovers_.reset();
    rt_.reset();
  }
  Runtime& rt() { return *rt_; }
  unsigned workers() const { return GetParam(); }

 private:
  std::unique_ptr<Runtime> rt_;
  std::optional<LeftoverCheck> leftovers_;
};

// More workers than cores, so that workers are descheduled in the middle of
// a protocol (STYLE.md D: marl's "oversubscribed" count).
inline unsigned oversubscribed_workers() {
  return 2 * std::max(1u, std::thread::hardware_concurrency()) + 1;
}

// "w4"; the oversubscribed count is marked, as its number differs between
// machines: "w5_oversubscribed" on two cores.
inline std::string worker_param_name(const ::testing::TestParamInfo<unsigned>& i) {
  std::string name = "w" + std::to_string(i.param);
  return i.param == oversubscribed_workers() ? name + "_oversubscribed" : name;
}

}  // namespace spindle::testing

// Instantiates a RuntimeTest-derived suite over 1, 2, 4 and 8 workers and
// more workers than cores.
#define SPINDLE_WORKER_PARAMS(Suite)                                                   \
  INSTANTIATE_TEST_SUITE_P(                                                            \
      Workers, Suite,                                                                  \
      ::testing::Values(1u, 2u, 4u, 8u, ::spindle::testing::oversubscribed_workers()), \
      ::spindle::testing::worker_param_name)
