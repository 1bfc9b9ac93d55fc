// Stress: the slow-task monitor describing a running task while tasks
// switch away and finish under it (registry.hpp INV-R1).
//
// With a 2 ms threshold the monitor names a running task many times a
// second, from its own thread, while that task may be yielding, sleeping or
// finishing on either worker. The tasks are fire-and-forget: once one
// finishes, the registry drops the last reference and frees it, so a
// monitor that read a task after that point reads freed memory — which
// AddressSanitizer reports and ThreadSanitizer flags as a race.
#include <atomic>
#include <chrono>
#include <string>

#include "runtime_fixture.hpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using spindle::stress::mix;
using spindle::testing::scaled;

namespace {

// Busy for about `d` of wall time without suspending.
void hog(std::chrono::microseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    spindle::stress::spin_for(100);
  }
}

TEST(MonitorStress, SlowTaskWarningsRaceTasksSwitchingAwayAndFinishing) {
  const long n = scaled(240);
  std::atomic<long> finished{0};
  ::testing::internal::CaptureStderr();
  {
    spindle::Options o;
    o.workers = 2;
    o.slow_task_warning = 2ms;
    spindle::Runtime rt(o);
    rt.block_on([&] {
      for (long i = 0; i < n; ++i) {
        std::uint64_t h = mix(static_cast<std::uint64_t>(i));
        // Dropped at once: the runtime holds the only reference.
        (void)spindle::spawn(
            [&finished, h] {
              hog(std::chrono::microseconds(1500 + h % 2500));
              if (h & 1) {
                spindle::yield();
              } else {
                spindle::sleep(std::chrono::microseconds(h % 300));
              }
              hog(std::chrono::microseconds(h % 3000));
              finished.fetch_add(1, std::memory_order_relaxed);
            },
            "hog-" + std::to_string(i));
      }
      // block_on cancels what is left when it returns (asyncio.run): wait.
      auto deadline = std::chrono::steady_clock::now() + 60s;
      while (finished.load() < n && std::chrono::steady_clock::now() < deadline) {
        spindle::sleep(1ms);
      }
    });
    ASSERT_EQ(finished.load(), n) << "hogs still running after 60 s";
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  // The hogs are what the monitor saw: it names them, by their given names.
  EXPECT_NE(err.find("task 'hog-"), std::string::npos) << err.substr(0, 2000);
}

}  // namespace
