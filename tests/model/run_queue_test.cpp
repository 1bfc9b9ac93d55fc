// RunQueue (runtime/run_queue.hpp) in isolation, with a tiny capacity:
// FIFO order, capacity, holes left by claims, tail reclamation, steal-half,
// and a multi-threaded conservation check (every pushed entry is taken by
// exactly one of: owner pop, steal, claim).
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "run_queue.hpp"
#include "runtime_fixture.hpp"

namespace {

using spindle::detail::RunQueue;

struct Item {
  int id = 0;
  std::atomic<std::uint32_t> index{0};
  std::atomic<bool> queued{false};
};

using Q = RunQueue<Item, 8>;

// Threads stealing batches of up to 4 from `q` into `take` until stop().
class Thieves {
 public:
  template <class Take>
  Thieves(Q& q, Take& take, int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([&q, &take, this] {
        while (!done_.load(std::memory_order_acquire)) {
          q.steal_into(take, 4);
        }
      });
    }
  }
  ~Thieves() { stop(); }
  void stop() {
    done_.store(true, std::memory_order_release);
    for (auto& t : threads_) {
      t.join();
    }
    threads_.clear();
  }

 private:
  std::atomic<bool> done_{false};
  std::vector<std::thread> threads_;
};

// Entries taken by nobody and by more than one taker.
struct Tally {
  int lost = 0, doubled = 0;
};
Tally tally(const std::vector<std::atomic<int>>& taken) {
  Tally t;
  for (const auto& n : taken) {
    t.lost += n.load() == 0;
    t.doubled += n.load() > 1;
  }
  return t;
}

TEST(RunQueue, FifoAndCapacity) {
  Q q;
  std::vector<Item> items(9);
  std::uint32_t idx;
  for (int i = 0; i < 8; ++i) {
    items[i].id = i;
    ASSERT_TRUE(q.push_back(&items[i], true, &idx));
    EXPECT_EQ(idx, static_cast<std::uint32_t>(i));
  }
  EXPECT_FALSE(q.push_back(&items[8], true, &idx)) << "a full ring must refuse";
  EXPECT_EQ(q.len(), 8u);
  for (int i = 0; i < 8; ++i) {
    Item* it = q.pop_front();
    ASSERT_NE(it, nullptr);
    EXPECT_EQ(it->id, i);
  }
  EXPECT_EQ(q.pop_front(), nullptr);
  EXPECT_TRUE(q.empty());
}

TEST(RunQueue, ClaimLeavesAHoleThatPopSkips) {
  Q q;
  Item a, b, c;
  a.id = 1, b.id = 2, c.id = 3;
  std::uint32_t ia, ib, ic;
  ASSERT_TRUE(q.push_back(&a, true, &ia));
  ASSERT_TRUE(q.push_back(&b, true, &ib));
  ASSERT_TRUE(q.push_back(&c, true, &ic));
  EXPECT_TRUE(q.try_claim(ib, &b));
  EXPECT_FALSE(q.try_claim(ib, &b)) << "an entry is claimed once";
  EXPECT_FALSE(q.try_claim(ia, &b)) << "a claim must name the right entry";
  EXPECT_EQ(q.pop_front(), &a);
  EXPECT_EQ(q.pop_front(), &c);
  EXPECT_EQ(q.pop_front(), nullptr);
}

TEST(RunQueue, ReclaimTailHolesKeepsTheRingShort) {
  Q q;
  std::vector<Item> items(64);
  std::uint32_t idx;
  // Depth-first fork-join: push, claim the newest, reclaim; the ring never
  // fills even after far more pushes than its capacity.
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(q.push_back(&items[i], true, &idx)) << "ring filled with holes at " << i;
    ASSERT_TRUE(q.try_claim(idx, &items[i]));
    q.reclaim_tail_holes();
    EXPECT_TRUE(q.empty());
  }
  // A hole below a live entry stays until popped past.
  Item x, y;
  std::uint32_t ix, iy;
  ASSERT_TRUE(q.push_back(&x, true, &ix));
  ASSERT_TRUE(q.push_back(&y, true, &iy));
  ASSERT_TRUE(q.try_claim(ix, &x));
  q.reclaim_tail_holes();
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(q.pop_front(), &y);
}

TEST(RunQueue, ReclaimDropsEveryTrailingHoleAtOnce) {
  // skynet's pattern: a parent pushes its children (ten there; as many as
  // fit here) and claims them in push order, so the holes pile up at the
  // tail only once the last is claimed.
  constexpr int kKids = 7;  // + the live entry fills Q's 8 slots
  Q q;
  Item live;
  std::vector<Item> kids(kKids);
  std::vector<std::uint32_t> idx(kKids);
  std::uint32_t il;
  ASSERT_TRUE(q.push_back(&live, false, &il));
  for (int i = 0; i < kKids; ++i) {
    ASSERT_TRUE(q.push_back(&kids[i], true, &idx[i]));
  }
  for (int i = 0; i < kKids; ++i) {
    ASSERT_TRUE(q.try_claim(idx[i], &kids[i]));
    q.reclaim_tail_holes();
    EXPECT_EQ(q.len(), i < kKids - 1 ? kKids + 1u : 1u) << "after claiming child " << i;
  }
  EXPECT_EQ(q.tail_index(), il + 1) << "tail back right above the live entry";
  // With nothing live below, the holes go down to the head, and the last
  // one (the head itself) is consumed like a pop.
  EXPECT_EQ(q.pop_front(), &live);
  for (int i = 0; i < kKids; ++i) {
    ASSERT_TRUE(q.push_back(&kids[i], true, &idx[i]));
  }
  for (int i = 0; i < kKids; ++i) {
    ASSERT_TRUE(q.try_claim(idx[i], &kids[i]));
  }
  q.reclaim_tail_holes();
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.head_within_tail());
  EXPECT_EQ(q.pop_front(), nullptr);
}

TEST(RunQueue, StealTakesTheOlderHalf) {
  Q src, dst;
  std::vector<Item> items(5);
  std::uint32_t idx;
  for (int i = 0; i < 5; ++i) {
    items[i].id = i;
    ASSERT_TRUE(src.push_back(&items[i], true, &idx));
  }
  std::vector<int> got;
  std::uint32_t n = src.steal_into([&](Item* it, bool) { got.push_back(it->id); }, 8);
  EXPECT_EQ(n, 3u);  // ceil(5 / 2)
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(src.pop_front()->id, 3);
  EXPECT_EQ(src.steal_into([&](Item*, bool) {}, 8), 1u);
  EXPECT_EQ(src.steal_into([&](Item*, bool) {}, 8), 0u);
}

// Owner pushes/pops/claims its newest and reclaims; thieves steal; a claimer
// thread claims random published entries. Every entry is taken exactly once.
TEST(RunQueueStress, ConservationUnderStealsAndClaims) {
  const int kItems = static_cast<int>(spindle::testing::scaled(200000));
  const int kThieves = 2;
  std::vector<Item> items(kItems);
  std::vector<std::atomic<int>> taken(kItems);
  for (int i = 0; i < kItems; ++i) {
    items[i].id = i;
  }
  Q q;
  std::atomic<bool> done{false};
  std::atomic<int> published{0};
  auto take = [&](Item* it, bool = false) {
    taken[it->id].fetch_add(1, std::memory_order_relaxed);
  };

  Thieves thieves(q, take, kThieves);
  std::thread claimer([&] {
    std::mt19937 rng(7);
    while (!done.load(std::memory_order_acquire)) {
      int n = published.load(std::memory_order_acquire);
      if (n == 0) {
        continue;
      }
      int i = static_cast<int>(rng() % static_cast<unsigned>(n));
      Item& it = items[i];
      if (it.queued.load(std::memory_order_acquire) &&
          q.try_claim(it.index.load(std::memory_order_acquire), &it)) {
        take(&it);
      }
    }
  });

  std::mt19937 rng(42);
  for (int i = 0; i < kItems; ++i) {
    std::uint32_t idx = 0;
    while (!q.push_back(&items[i], /*claimable=*/i % 3 != 0, &idx)) {
      if (Item* it = q.pop_front()) {
        take(it);
      }
    }
    items[i].index.store(idx, std::memory_order_release);
    items[i].queued.store(true, std::memory_order_release);
    published.store(i + 1, std::memory_order_release);
    switch (rng() % 4) {
      case 0:
        if (Item* it = q.pop_front()) {
          take(it);
        }
        break;
      case 1:
        // Claim the newest (as a task awaiting a child it just spawned).
        if (q.try_claim(idx, &items[i])) {
          take(&items[i]);
          q.reclaim_tail_holes();
        }
        break;
      default:
        break;
    }
  }
  while (Item* it = q.pop_front()) {
    take(it);
  }
  thieves.stop();
  done.store(true, std::memory_order_release);
  claimer.join();
  while (Item* it = q.pop_front()) {
    take(it);
  }
  Tally t = tally(taken);
  EXPECT_EQ(t.lost, 0);
  EXPECT_EQ(t.doubled, 0);
}

// Fork-join as skynet does it: the owner pushes a few claimable children,
// then claims them oldest first (a parent get()ting them in order), so the
// last claim leaves a run of holes at the tail that one reclaim walks down.
// Thieves steal meanwhile. A thief that read the tail before that walk and
// claims after it must not move head past the lowered tail (INV-Q1, INV-Q4):
// the owner checks after every reclaim, and every entry is taken once.
TEST(RunQueueStress, ReclaimAfterInOrderClaimsKeepsHeadWithinTail) {
  const int kRounds = static_cast<int>(spindle::testing::scaled(300000));
  const int kThieves = 2;
  const int kFanout = 6;
  std::vector<Item> items(static_cast<std::size_t>(kRounds) * kFanout);
  std::vector<std::atomic<int>> taken(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    items[i].id = static_cast<int>(i);
  }
  Q q;
  auto take = [&](Item* it, bool = false) {
    taken[it->id].fetch_add(1, std::memory_order_relaxed);
  };
  Thieves thieves(q, take, kThieves);
  int broken = 0;
  for (int r = 0; r < kRounds && broken == 0; ++r) {
    Item* kids = &items[static_cast<std::size_t>(r) * kFanout];
    std::uint32_t idx[kFanout];
    int pushed = 0;
    for (; pushed < kFanout; ++pushed) {
      if (!q.push_back(&kids[pushed], /*claimable=*/true, &idx[pushed])) {
        break;
      }
    }
    for (int k = 0; k < pushed; ++k) {
      if (q.try_claim(idx[k], &kids[k])) {
        take(&kids[k]);
      }
    }
    q.reclaim_tail_holes();
    if (!q.head_within_tail()) {
      ++broken;
    }
    for (int k = pushed; k < kFanout; ++k) {
      take(&kids[k]);  // never queued: the ring was full
    }
  }
  thieves.stop();
  EXPECT_EQ(broken, 0) << "a steal moved head past the reclaimed tail";
  if (broken == 0) {  // else pop_front() would assert INV-Q1
    while (Item* it = q.pop_front()) {
      take(it);
    }
    Tally t = tally(taken);
    EXPECT_EQ(t.lost, 0);
    EXPECT_EQ(t.doubled, 0);
  }
}

}  // namespace
