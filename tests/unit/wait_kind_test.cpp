// The wait kind a parked task reports to tests (runtime/wait_kind.hpp,
// tests/support/parking_support.hpp): one kind per way of waiting, none
// while the task runs or once it is done.
#include <atomic>
#include <chrono>

#include "cancel_outcome.hpp"
#include "parking_support.hpp"
#include "polling.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Future;
using spindle::TaskRef;
using spindle::testing::eventually;
using spindle::testing::RuntimeTest;
using spindle::testing::spin_until;
using spindle::testing::throws_cancelled;
using spindle::testing::wait_kind;
using spindle::testing::WaitKind;

class WaitKindTest : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(WaitKindTest);

TEST_P(WaitKindTest, EachWayOfWaitingReportsItsKind) {
  Future<void> gate;
  auto getter = rt().spawn([gate]() mutable { gate.get(); });
  auto timed = rt().spawn([gate] { return gate.wait_for(10s); });
  auto sleeper = rt().spawn([] { spindle::sleep(10s); });
  EXPECT_TRUE(eventually([&] { return wait_kind(getter) == WaitKind::kFuture; }));
  EXPECT_TRUE(eventually([&] { return wait_kind(timed) == WaitKind::kFutureTimed; }));
  EXPECT_TRUE(eventually([&] { return wait_kind(sleeper) == WaitKind::kSleep; }));

  gate.set_result();
  sleeper.cancel();
  getter.get();
  EXPECT_TRUE(timed.get());
  EXPECT_TRUE(throws_cancelled([&] { sleeper.get(); }));
  EXPECT_EQ(wait_kind(getter), WaitKind::kNone);
  EXPECT_EQ(wait_kind(timed), WaitKind::kNone);
  EXPECT_EQ(wait_kind(sleeper), WaitKind::kNone);
}

TEST_P(WaitKindTest, RunningTaskWaitsForNothing) {
  std::atomic<bool> started{false}, release{false};
  auto spinner = rt().spawn([&] {
    started = true;
    spin_until(release);  // runs on, never parks
  });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  EXPECT_EQ(wait_kind(spinner), WaitKind::kNone);
  release = true;
  spinner.get();
}

// On one worker nobody can start the child first: awaiting it runs it
// inline on the parent's fiber, and the parent reports that meanwhile.
class WaitKindOneWorker : public RuntimeTest {};
INSTANTIATE_TEST_SUITE_P(Workers, WaitKindOneWorker, ::testing::Values(1u),
                         spindle::testing::worker_param_name);

TEST_P(WaitKindOneWorker, AwaitingAnUnstartedChildRunsItInline) {
  WaitKind seen = rt().block_on([] {
    TaskRef parent = spindle::current_task();
    auto child = spindle::spawn([parent] { return wait_kind(parent); });
    return child.get();
  });
  EXPECT_EQ(seen, WaitKind::kInlineChild);
}
