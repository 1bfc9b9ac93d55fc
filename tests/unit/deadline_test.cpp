// Deadlines saturate (future.hpp deadline_after): a timeout too large to add
// to the clock means "never", a negative one "already due" — the same for
// tasks, plain threads and timers. Before, now + Duration::max() was a
// signed overflow: a task's wait_for(max) returned false at once and
// call_later(max) fired at once, while a plain thread waited for ever.
#include <atomic>
#include <chrono>
#include <thread>

#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Duration;
using spindle::testing::RuntimeTest;

class Deadline : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(Deadline);

namespace {

// Completes `f` from a plain thread after a moment.
std::thread set_later(spindle::Future<int> f) {
  return std::thread([f]() mutable {
    std::this_thread::sleep_for(20ms);
    f.set_result(5);
  });
}

}  // namespace

TEST(DeadlineArithmetic, SaturatesAndClampsNegatives) {
  using spindle::detail::deadline_after_ns;
  using spindle::detail::kNeverNs;
  EXPECT_EQ(deadline_after_ns(100, Duration::max().count()), kNeverNs);
  EXPECT_EQ(deadline_after_ns(kNeverNs - 5, 10), kNeverNs);
  EXPECT_EQ(deadline_after_ns(100, 5), 105);
  EXPECT_EQ(deadline_after_ns(100, -5), 100);
  EXPECT_EQ(deadline_after_ns(100, Duration::min().count()), 100);
  EXPECT_EQ(spindle::detail::to_duration(std::chrono::hours::max()), Duration::max());
  EXPECT_EQ(spindle::detail::to_duration(std::chrono::hours::min()), Duration::min());
  EXPECT_EQ(spindle::detail::to_duration(std::chrono::microseconds(3)), Duration(3000));
}

TEST_P(Deadline, HugeWaitForMeansNeverInATask) {
  spindle::Future<int> f;
  std::thread t = set_later(f);
  bool done = rt().block_on([f] { return f.wait_for(Duration::max()); });
  t.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(f.result(), 5);
}

TEST_P(Deadline, HugeWaitForMeansNeverOnAPlainThread) {
  spindle::Future<int> f;
  std::thread t = set_later(f);
  EXPECT_TRUE(f.wait_for(std::chrono::hours::max()));
  t.join();
}

TEST_P(Deadline, HugeChronoDurationsMeanNeverInATask) {
  spindle::Future<int> f;
  std::thread t = set_later(f);
  bool done = rt().block_on([f] { return f.wait_for(std::chrono::hours::max()); });
  t.join();
  EXPECT_TRUE(done);
}

TEST_P(Deadline, NegativeWaitForIsAlreadyDue) {
  spindle::Future<int> f;
  EXPECT_FALSE(f.wait_for(-1s));
  EXPECT_FALSE(rt().block_on([f] { return f.wait_for(Duration::min()); }));
  f.set_result(1);
  EXPECT_TRUE(rt().block_on([f] { return f.wait_for(-1s); }));
}

TEST_P(Deadline, EventWaitForMaxWaitsForTheSet) {
  spindle::Event ev;
  bool got = rt().block_on([&] {
    auto setter = spindle::spawn([&] {
      spindle::sleep(20ms);
      ev.set();
    });
    bool r = ev.wait_for(Duration::max());
    setter.get();
    return r;
  });
  EXPECT_TRUE(got);
}

TEST_P(Deadline, SleepMaxLastsUntilCancelled) {
  std::string outcome = rt().block_on([] {
    auto sleeper = spindle::spawn([] { spindle::sleep(Duration::max()); });
    spindle::sleep(20ms);
    if (sleeper.done()) {
      return std::string("woke early");
    }
    sleeper.cancel("enough");
    try {
      sleeper.get();
    } catch (const spindle::Cancelled& c) {
      return c.message();
    }
    return std::string("not cancelled");
  });
  EXPECT_EQ(outcome, "enough");
}

TEST_P(Deadline, CallLaterMaxNeverFires) {
  std::atomic<bool> fired{false};
  spindle::TimerHandle h = rt().call_later(Duration::max(), [&] { fired = true; });
  EXPECT_EQ(h.when(), spindle::TimePoint::max());
  auto h2 = rt().call_later(std::chrono::hours::max(), [&] { fired = true; });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(fired.load());
  EXPECT_TRUE(h.cancel());
  EXPECT_TRUE(h2.cancel());
}

TEST_P(Deadline, TimeoutMaxNeverExpires) {
  int v = rt().block_on([] {
    return spindle::timeout(Duration::max(), [] {
      spindle::sleep(10ms);
      return 3;
    });
  });
  EXPECT_EQ(v, 3);
}

TEST_P(Deadline, CallLaterNegativeFiresAtOnce) {
  std::atomic<bool> fired{false};
  rt().call_later(-1s, [&] { fired = true; });
  for (int i = 0; i < 2000 && !fired.load(); ++i) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(fired.load());
}
