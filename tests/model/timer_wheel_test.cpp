// TimerWheel (runtime/timer.hpp) against a reference model: random arms,
// cancels and clock jumps across every level. An entry never fires before
// its deadline (INV-TW3), and every entry whose tick has passed fires at the
// first look after it (not late by more than a tick).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "timer.hpp"
#include "waiter.hpp"

namespace {

using spindle::detail::TimerEntry;
using spindle::detail::TimerWheel;
using spindle::detail::Waiter;

constexpr std::int64_t kTick = std::int64_t{1} << TimerWheel::kTickShift;

std::uint64_t ceil_tick(std::int64_t ns) {
  return (static_cast<std::uint64_t>(ns) + kTick - 1) / kTick;
}

void noop(TimerEntry*) {}

class TimerWheelModel : public ::testing::TestWithParam<int> {};

TEST_P(TimerWheelModel, NeverEarlyNeverMissedAcrossAllLevels) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(GetParam()));
  // Fixed but odd starting clocks, so runs are reproducible and the wheel
  // starts at different positions within its levels.
  std::int64_t now =
      (std::int64_t{1} << 42) + static_cast<std::int64_t>(rng() % (std::uint64_t{1} << 40));
  TimerWheel wheel(now);
  std::vector<std::unique_ptr<TimerEntry>> entries;
  std::set<TimerEntry*> armed;
  std::vector<Waiter*> wake;
  std::vector<TimerEntry*> fired;
  const std::int64_t scales[] = {10'000,         1'000'000,         100'000'000,
                                 10'000'000'000, 3'600'000'000'000, 400'000'000'000'000};
  for (int step = 0; step < 20000; ++step) {
    int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      auto e = std::make_unique<TimerEntry>();
      std::int64_t scale = scales[rng() % 6];
      e->deadline_ns = now + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(scale));
      e->on_fire = &noop;
      wheel.insert(e.get());
      armed.insert(e.get());
      entries.push_back(std::move(e));
    } else if (op < 7 && !armed.empty()) {
      auto it = armed.begin();
      std::advance(it, static_cast<long>(rng() % armed.size()));
      ASSERT_TRUE(wheel.remove(*it));
      ASSERT_FALSE(wheel.remove(*it)) << "removed twice";
      armed.erase(it);
    } else {
      // Advance the clock: usually a little, sometimes far.
      std::int64_t scale = scales[rng() % 6];
      now += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(scale / 256 + 1));
      fired.clear();
      wheel.take_due(now, wake, fired);
      for (TimerEntry* e : fired) {
        ASSERT_LE(e->deadline_ns, now) << "fired early";
        ASSERT_EQ(armed.erase(e), 1u) << "fired twice or after removal";
      }
      std::uint64_t now_tick = static_cast<std::uint64_t>(now) / kTick;
      for (TimerEntry* e : armed) {
        ASSERT_GT(ceil_tick(e->deadline_ns), now_tick)
            << "a due entry was not fired: step " << step << " level " << int(e->level) << " tick "
            << e->tick << " now_tick " << now_tick << "\n"
            << wheel.debug_string();
      }
      // The advertised next deadline is never later than any armed entry.
      for (TimerEntry* e : armed) {
        ASSERT_LE(wheel.next_deadline(),
                  static_cast<std::int64_t>(ceil_tick(e->deadline_ns) * kTick));
      }
    }
    ASSERT_EQ(wheel.size(), armed.size());
  }
  EXPECT_TRUE(wake.empty());
  EXPECT_GT(entries.size(), 8000u);
  std::printf("[ model ] %zu entries armed over the run, %zu still armed\n", entries.size(),
              armed.size());
}

INSTANTIATE_TEST_SUITE_P(Seeds, TimerWheelModel, ::testing::Range(1, 101));

TEST(TimerWheel, FarFutureEntriesFireWhenTheirTimeComes) {
  TimerWheel wheel;
  std::int64_t now = spindle::detail::now_ns();
  TimerEntry year, soon;
  year.deadline_ns = now + 365LL * 24 * 3600 * 1'000'000'000;
  soon.deadline_ns = now + 5'000'000;
  year.on_fire = soon.on_fire = &noop;
  wheel.insert(&year);
  wheel.insert(&soon);
  std::vector<Waiter*> wake;
  std::vector<TimerEntry*> fired;
  wheel.take_due(now + 4'000'000, wake, fired);
  EXPECT_TRUE(fired.empty());
  wheel.take_due(now + 6'000'000, wake, fired);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], &soon);
  fired.clear();
  wheel.take_due(year.deadline_ns - 1, wake, fired);
  EXPECT_TRUE(fired.empty());
  wheel.take_due(year.deadline_ns + kTick, wake, fired);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], &year);
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.next_deadline(), TimerWheel::kNever);
}

TEST(TimerWheel, WaiterEntriesFireOnce) {
  TimerWheel wheel;
  std::int64_t now = spindle::detail::now_ns();
  Waiter w;
  TimerEntry a, b;
  a.deadline_ns = b.deadline_ns = now + 1000;
  a.waiter = b.waiter = &w;  // two sources for one waiter: one wins
  wheel.insert(&a);
  wheel.insert(&b);
  std::vector<Waiter*> wake;
  std::vector<TimerEntry*> fired;
  EXPECT_EQ(wheel.take_due(now + 10 * kTick, wake, fired), 2u);
  EXPECT_EQ(wake.size(), 1u);
  EXPECT_TRUE(w.fired());
}

}  // namespace
