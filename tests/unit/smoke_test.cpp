#include <gtest/gtest.h>

#include <spindle/spindle.hpp>

TEST(Smoke, BlockOnReturnsValue) {
  spindle::Runtime rt(spindle::Options{.workers = 2});
  int v = rt.block_on([] { return 42; });
  EXPECT_EQ(v, 42);
}

TEST(Smoke, SpawnAndGet) {
  spindle::Runtime rt(spindle::Options{.workers = 2});
  int v = rt.block_on([] {
    auto t = spindle::spawn([] { return 7; });
    auto u = spindle::spawn([] {
      spindle::sleep(std::chrono::milliseconds(5));
      return 8;
    });
    return t.get() + u.get();
  });
  EXPECT_EQ(v, 15);
}
