#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::testing::RuntimeTest;

class Sanity : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(Sanity);

TEST_P(Sanity, CancelSleepingTask) {
  std::string msg = rt().block_on([] {
    auto t = spindle::spawn([] { spindle::sleep(10s); });
    spindle::sleep(5ms);
    t.cancel("stop now");
    try {
      t.get();
    } catch (const spindle::Cancelled& c) {
      return c.message();
    }
    return std::string("not cancelled");
  });
  EXPECT_EQ(msg, "stop now");
}

TEST_P(Sanity, ExceptionPropagates) {
  EXPECT_THROW(rt().block_on([] {
    auto t = spindle::spawn([]() -> int { throw std::runtime_error("boom"); });
    return t.get();
  }),
               std::runtime_error);
}

TEST_P(Sanity, FutureAcrossThreads) {
  spindle::Future<int> f;
  std::thread setter([f]() mutable {
    std::this_thread::sleep_for(5ms);
    f.set_result(99);
  });
  int v = rt().block_on([f]() mutable { return f.get(); });
  setter.join();
  EXPECT_EQ(v, 99);
}

TEST_P(Sanity, PlainThreadWaitsOnTask) {
  auto t = rt().spawn([] {
    spindle::sleep(2ms);
    return 5;
  });
  EXPECT_EQ(t.get(), 5);
}

TEST_P(Sanity, ManyTasks) {
  long sum = rt().block_on([] {
    std::vector<spindle::Task<long>> ts;
    for (long i = 0; i < 10000; ++i) {
      ts.push_back(spindle::spawn([i] {
        if (i % 7 == 0) {
          spindle::yield();
        }
        return i;
      }));
    }
    long s = 0;
    for (auto& t : ts) {
      s += t.get();
    }
    return s;
  });
  EXPECT_EQ(sum, 10000L * 9999 / 2);
}

TEST_P(Sanity, Skynet) {
  std::function<long(long, long)> sky = [&](long num, long size) -> long {
    if (size == 1) {
      return num;
    }
    std::vector<spindle::Task<long>> kids;
    for (long i = 0; i < 10; ++i) {
      long sub = size / 10;
      kids.push_back(spindle::spawn([&sky, num, i, sub] { return sky(num + i * sub, sub); }));
    }
    long s = 0;
    for (auto& k : kids) {
      s += k.get();
    }
    return s;
  };
  long r = rt().block_on([&] { return sky(0, 100000); });
  EXPECT_EQ(r, 4999950000L);
}

TEST_P(Sanity, DoneCallbacksInOrder) {
  std::vector<int> order;
  std::mutex mu;
  spindle::Future<int> f;
  spindle::Future<void> all;
  std::atomic<int> n{0};
  for (int i = 0; i < 5; ++i) {
    f.add_done_callback([&, i](spindle::Future<int> g) {
      {
        std::lock_guard<std::mutex> l(mu);
        order.push_back(i * 100 + g.result());
      }
      if (++n == 5) {
        all.set_result();
      }
    });
  }
  f.set_result(1);
  all.get();
  EXPECT_EQ(order, (std::vector<int>{1, 101, 201, 301, 401}));
}

// The teardown's leak check can fail: while a task sleeps, it is live and
// holds a fiber (and its stack) outside the spare pool.
TEST(SanityLeftovers, CheckSeesASuspendedTaskAndItsFiber) {
  spindle::Runtime rt(spindle::Options{.workers = 2});
  spindle::testing::LeftoverCheck check(rt);
  std::atomic<bool> asleep{false};
  auto t = rt.spawn([&asleep] {
    asleep = true;
    spindle::sleep(10s);
  });
  while (!asleep.load()) {
    std::this_thread::sleep_for(100us);
  }
  std::this_thread::sleep_for(5ms);  // let it park
  ::testing::AssertionResult r = check.nothing_left();
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("1 live task(s)"), std::string::npos) << r.message();
  EXPECT_GE(check.fibers_outside_pool(), 1);
  t.cancel();
  rt.shutdown();
  EXPECT_TRUE(check.nothing_left());
}
