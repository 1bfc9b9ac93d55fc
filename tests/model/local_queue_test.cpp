// A worker's local queue (runtime/local_queue.hpp) on unspawned task
// records, with no scheduler: the LIFO slot and its displacement into the
// ring, the ring filling into the overflow list (INV-LQ2's order), the
// refill, claims of each slot kind (INV-LQ3), steals from the ring and from
// the overflow, and, across threads, that every task is taken exactly once
// (INV-LQ1) while the owner pushes, pops and claims, thieves steal, and a
// claimer claims.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <spindle/spindle.hpp>

#include "future_access.hpp"
#include "local_queue.hpp"
#include "runtime_fixture.hpp"
#include "task_access.hpp"
#include "task_state.hpp"

namespace {

using spindle::detail::FutureAccess;
using spindle::detail::LocalQueue;
using spindle::detail::TaskAccess;
using spindle::detail::TaskCore;

constexpr std::uint32_t kRing = LocalQueue::kRingCapacity;

// N unspawned task records, numbered by their id.
struct Records {
  explicit Records(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      std::string name;
      tasks.push_back(spindle::detail::make_task([] {}, name));
      TaskCore* t = core(i);
      TaskAccess::id(t) = i;
    }
  }
  TaskCore* core(std::size_t i) const { return static_cast<TaskCore*>(tasks[i].core()); }
  std::vector<spindle::Task<void>> tasks;
};

void mark_started(TaskCore* t) {
  FutureAccess::word(t).fetch_or(spindle::detail::kStarted, std::memory_order_relaxed);
}

std::uint64_t ring_slot(unsigned worker, std::uint32_t index) {
  return (static_cast<std::uint64_t>(worker + 1) << 32) | index;
}

struct Queue {
  explicit Queue(unsigned index) : q(std::make_unique<LocalQueue>(index, overflowed)) {}
  std::atomic<std::uint64_t> overflowed{0};
  std::unique_ptr<LocalQueue> q;
};

std::uint64_t id_of(TaskCore* t) { return t == nullptr ? ~std::uint64_t{0} : t->id(); }

}  // namespace

TEST(LocalQueueModel, LifoSlotDisplacesIntoTheRing) {
  Records r(3);
  Queue w(0);
  LocalQueue& q = *w.q;
  EXPECT_EQ(q.take_lifo(), nullptr);
  q.push(r.core(0));
  q.push_lifo(r.core(1));
  q.push_lifo(r.core(2));  // displaces 1 behind 0
  EXPECT_EQ(q.lifo_peek(), r.core(2));
  EXPECT_EQ(q.queued(), 3u);
  EXPECT_EQ(q.ring_len(), 2u);
  EXPECT_EQ(q.take_lifo(), r.core(2));
  EXPECT_EQ(q.take_lifo(), nullptr);
  EXPECT_EQ(id_of(q.pop()), 0u);
  EXPECT_EQ(id_of(q.pop()), 1u);
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_EQ(q.queued(), 0u);
  EXPECT_EQ(w.overflowed.load(), 0u);
}

TEST(LocalQueueModel, RescueTakesOnlyTheTaskItSaw) {
  Records r(2);
  Queue w(0);
  LocalQueue& q = *w.q;
  q.push_lifo(r.core(0));
  EXPECT_FALSE(q.rescue_lifo(r.core(1)));
  EXPECT_EQ(q.lifo_peek(), r.core(0));
  EXPECT_TRUE(q.rescue_lifo(r.core(0)));
  EXPECT_EQ(q.lifo_peek(), nullptr);
  EXPECT_EQ(q.take_lifo(), nullptr);
  EXPECT_FALSE(q.rescue_lifo(r.core(0))) << "rescued twice";
}

TEST(LocalQueueModel, FullRingOverflowsAndKeepsFifoOrder) {
  const std::size_t n = kRing + 200;
  Records r(n + 1);
  Queue w(3);
  LocalQueue& q = *w.q;
  for (std::size_t i = 0; i < n; ++i) {
    q.push(r.core(i));
  }
  EXPECT_EQ(q.ring_len(), kRing);
  EXPECT_EQ(q.overflow_len(), 200u);
  EXPECT_EQ(w.overflowed.load(), 200u);
  EXPECT_TRUE(q.has_stealable_work());
  // An overflowed task's slot: bit 63, worker 3 + 1.
  std::uint64_t s = LocalQueue::slot_of(r.core(kRing));
  EXPECT_NE(s & LocalQueue::kInOverflow, 0u);
  EXPECT_EQ(LocalQueue::slot_worker(s), 4u);
  // A ring task's slot: its ring index, worker 3 + 1.
  EXPECT_EQ(LocalQueue::slot_of(r.core(5)), ring_slot(3, 5));
  // Popping makes room in the ring, but while the overflow holds anything
  // new work queues behind it (INV-LQ2).
  EXPECT_EQ(id_of(q.pop()), 0u);
  q.push(r.core(n));
  EXPECT_EQ(q.overflow_len(), 201u);
  // FIFO over everything, through the refills.
  for (std::size_t i = 1; i <= n; ++i) {
    ASSERT_EQ(id_of(q.pop()), i);
    if (i == kRing) {
      // The ring ran dry at kRing - 1: the refill moved half a ring.
      EXPECT_EQ(q.ring_len(), kRing / 2 - 1);
      EXPECT_EQ(q.overflow_len(), 201u - kRing / 2);
    }
  }
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_EQ(q.overflow_len(), 0u);
  EXPECT_FALSE(q.has_stealable_work());
}

TEST(LocalQueueModel, RefillGivesMovedTasksARingSlot) {
  Records r(kRing + 2);
  Queue w(0);
  LocalQueue& q = *w.q;
  for (std::size_t i = 0; i < kRing + 2; ++i) {
    q.push(r.core(i));
  }
  TaskCore* moved = r.core(kRing);
  const std::uint64_t old_slot = LocalQueue::slot_of(moved);
  ASSERT_NE(old_slot & LocalQueue::kInOverflow, 0u);
  for (std::uint32_t i = 0; i < kRing; ++i) {
    ASSERT_EQ(id_of(q.pop()), i);
  }
  EXPECT_EQ(id_of(q.pop()), kRing);  // the refill, then its first task
  TaskCore* last = r.core(kRing + 1);
  const std::uint64_t stale = old_slot;  // `last` had the same overflow slot
  EXPECT_EQ(LocalQueue::slot_of(last) & LocalQueue::kInOverflow, 0u) << "refill re-slots (INV-LQ3)";
  EXPECT_FALSE(q.claim(last, stale)) << "a stale overflow slot must not claim";
  EXPECT_TRUE(q.claim(last, LocalQueue::slot_of(last)));
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(LocalQueueModel, ClaimFromTheRing) {
  Records r(4);
  Queue w(0);
  LocalQueue& q = *w.q;
  for (std::size_t i = 0; i < 3; ++i) {
    q.push(r.core(i));
  }
  TaskCore* b = r.core(1);
  const std::uint64_t sb = LocalQueue::slot_of(b);
  EXPECT_EQ(sb, ring_slot(0, 1));
  EXPECT_TRUE(q.claim(b, sb));
  EXPECT_FALSE(q.claim(b, sb)) << "claimed twice";
  EXPECT_FALSE(q.claim(r.core(2), sb)) << "a claim must name the right entry";
  // The last entry, claimed by the owner: both trailing holes are trimmed.
  TaskCore* c = r.core(2);
  EXPECT_TRUE(q.claim(c, LocalQueue::slot_of(c)));
  q.reclaim_tail_holes();
  EXPECT_EQ(q.ring_len(), 1u);
  q.push(r.core(3));
  EXPECT_EQ(LocalQueue::slot_of(r.core(3)), ring_slot(0, 1)) << "the trimmed slots are reused";
  EXPECT_EQ(id_of(q.pop()), 0u);
  EXPECT_EQ(id_of(q.pop()), 3u);
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(LocalQueueModel, StartedTasksAreNotClaimable) {
  Records r(1);
  Queue w(0);
  LocalQueue& q = *w.q;
  TaskCore* started = r.core(0);
  mark_started(started);
  q.push(started);
  EXPECT_EQ(LocalQueue::slot_of(started), 0u) << "no slot for a started task";
  EXPECT_FALSE(q.claim(started, ring_slot(0, 0))) << "its entry carries no claim tag";
  EXPECT_FALSE(LocalQueue::try_claim(started)) << "no scheduler, no slot";
  EXPECT_EQ(id_of(q.pop()), 0u);
  EXPECT_EQ(q.pop(), nullptr);
}

// A claimer checks "not started" before it reads the slot and takes the
// overflow lock (run_inline()); that check may be stale by then: the task
// ran, was queued again into the overflow (which stores an overflow slot for
// a started task too), and maybe moved on into the ring (which keeps that
// slot). Under the lock the claim must see that the task started and fail:
// unlinking it would run a started task inline, or unlink a task that is not
// in the list and lose the list's tasks.
TEST(LocalQueueModel, AStaleClaimOfAStartedTaskInTheOverflowFails) {
  Records r(kRing + 2);
  Queue w(0);
  LocalQueue& q = *w.q;
  for (std::uint32_t i = 0; i < kRing; ++i) {
    q.push(r.core(i));
  }
  TaskCore* ran = r.core(kRing);
  TaskCore* behind = r.core(kRing + 1);
  mark_started(ran);
  q.push(ran);  // the ring is full: into the overflow
  q.push(behind);
  const std::uint64_t slot = LocalQueue::slot_of(ran);
  ASSERT_NE(slot & LocalQueue::kInOverflow, 0u);
  EXPECT_FALSE(q.claim(ran, slot)) << "claimed a started task out of the overflow";
  // Drain the ring; the refill moves `ran` into the ring, keeping its slot.
  for (std::uint32_t i = 0; i < kRing; ++i) {
    ASSERT_EQ(id_of(q.pop()), i);
  }
  EXPECT_EQ(id_of(q.pop()), kRing);
  EXPECT_FALSE(q.claim(behind, slot)) << "a slot naming another task's old place claimed";
  EXPECT_FALSE(q.claim(ran, slot)) << "claimed a started task the overflow no longer holds";
  EXPECT_EQ(id_of(q.pop()), kRing + 1) << "a stale claim broke the queue";
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(LocalQueueModel, ClaimFromTheOverflowHeadMiddleAndTail) {
  const std::size_t n = kRing + 5;
  Records r(n);
  Queue w(1);
  LocalQueue& q = *w.q;
  for (std::size_t i = 0; i < n; ++i) {
    q.push(r.core(i));
  }
  ASSERT_EQ(q.overflow_len(), 5u);
  auto claim = [&](std::size_t i) {
    TaskCore* t = r.core(i);
    std::uint64_t s = LocalQueue::slot_of(t);
    EXPECT_NE(s & LocalQueue::kInOverflow, 0u);
    bool ok = q.claim(t, s);
    if (ok) {
      EXPECT_EQ(LocalQueue::slot_of(t), 0u) << "a claimed task leaves with slot 0";
      EXPECT_FALSE(q.claim(t, s)) << "claimed twice";
    }
    return ok;
  };
  EXPECT_TRUE(claim(kRing + 2));  // middle
  EXPECT_TRUE(claim(kRing));      // head
  EXPECT_TRUE(claim(kRing + 4));  // tail
  EXPECT_EQ(q.overflow_len(), 2u);
  q.push(r.core(kRing + 4));  // re-link a claimed task: at the tail
  EXPECT_EQ(q.overflow_len(), 3u);
  std::vector<std::uint64_t> got;
  while (TaskCore* t = q.pop()) {
    got.push_back(id_of(t));
  }
  ASSERT_EQ(got.size(), kRing + 3);
  for (std::uint32_t i = 0; i < kRing; ++i) {
    ASSERT_EQ(got[i], i);
  }
  EXPECT_EQ(got[kRing], kRing + 1);
  EXPECT_EQ(got[kRing + 1], kRing + 3);
  EXPECT_EQ(got[kRing + 2], kRing + 4);
}

TEST(LocalQueueModel, StealHalfTheRing) {
  Records r(10);
  Queue victim(0), thief(1);
  for (std::size_t i = 0; i < 10; ++i) {
    victim.q->push(r.core(i));
  }
  EXPECT_EQ(victim.q->steal_into(*thief.q), 5u);
  // Stolen tasks are re-slotted in the thief's ring.
  EXPECT_EQ(LocalQueue::slot_worker(LocalQueue::slot_of(r.core(0))), 2u);
  for (std::uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(id_of(thief.q->pop()), i);
  }
  EXPECT_EQ(thief.q->pop(), nullptr);
  for (std::uint32_t i = 5; i < 10; ++i) {
    EXPECT_EQ(id_of(victim.q->pop()), i);
  }
  EXPECT_EQ(victim.q->steal_into(*thief.q), 0u);
}

TEST(LocalQueueModel, StealFromTheOverflowOnceTheRingIsEmpty) {
  const std::size_t n = kRing + 10;
  Records r(n);
  Queue victim(0), thief(1);
  for (std::size_t i = 0; i < n; ++i) {
    victim.q->push(r.core(i));
  }
  // Ring steals halve the ring down to nothing; the overflow is untouched.
  std::uint32_t stolen = 0;
  while (victim.q->ring_len() != 0) {
    std::uint32_t got = victim.q->steal_into(*thief.q);
    ASSERT_NE(got, 0u);
    stolen += got;
  }
  EXPECT_EQ(stolen, kRing);
  EXPECT_EQ(victim.q->overflow_len(), 10u);
  // The thief's ring is full now: its own pushes overflow.
  EXPECT_EQ(thief.q->ring_len(), kRing);
  // Then half of the overflow, from its head.
  EXPECT_EQ(victim.q->steal_into(*thief.q), 5u);
  EXPECT_EQ(victim.q->overflow_len(), 5u);
  TaskCore* t = r.core(kRing);
  std::uint64_t s = LocalQueue::slot_of(t);
  EXPECT_EQ(LocalQueue::slot_worker(s), 2u) << "re-slotted in the thief's queue";
  EXPECT_NE(s & LocalQueue::kInOverflow, 0u);
  EXPECT_EQ(thief.overflowed.load(), 5u);
  for (std::size_t i = 0; i < kRing + 5; ++i) {
    ASSERT_EQ(id_of(thief.q->pop()), i);
  }
  EXPECT_EQ(thief.q->pop(), nullptr);
  for (std::size_t i = kRing + 5; i < n; ++i) {
    ASSERT_EQ(id_of(victim.q->pop()), i);
  }
  EXPECT_EQ(victim.q->pop(), nullptr);
}

// Threads: the owner pushes every task (some through the LIFO slot), pops,
// and claims some of its own just-pushed tasks as a fork-join parent does;
// two thieves steal into their own queues and pop from them; a claimer
// claims tasks wherever their slot says they are. Every task must be taken
// exactly once. The ring overflows under the owner's bursts, so the overflow
// list's refill, steal and claim paths all run concurrently.
TEST(LocalQueueModel, EveryTaskTakenExactlyOnceAcrossThreads) {
  const std::size_t n = static_cast<std::size_t>(spindle::testing::scaled(200000));
  Records r(n);
  constexpr unsigned kThieves = 2;
  std::vector<std::unique_ptr<Queue>> queues;
  for (unsigned i = 0; i <= kThieves; ++i) {
    queues.push_back(std::make_unique<Queue>(i));
  }
  std::unique_ptr<std::atomic<int>[]> taken(new std::atomic<int>[n]);
  for (std::size_t i = 0; i < n; ++i) {
    taken[i].store(0, std::memory_order_relaxed);
  }
  std::atomic<std::size_t> total{0};
  auto take = [&](TaskCore* t) {
    taken[t->id()].fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_relaxed);
  };
  auto claim_anywhere = [&](TaskCore* t) {
    std::uint64_t s = LocalQueue::slot_of(t);
    unsigned w = LocalQueue::slot_worker(s);
    return w != 0 && w <= queues.size() && queues[w - 1]->q->claim(t, s);
  };
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (unsigned k = 1; k <= kThieves; ++k) {
    threads.emplace_back([&, k] {
      LocalQueue& own = *queues[k]->q;
      while (!done.load(std::memory_order_acquire)) {
        queues[0]->q->steal_into(own);
        while (TaskCore* t = own.pop()) {
          take(t);
        }
      }
    });
  }
  threads.emplace_back([&] {
    std::mt19937 rng(12345);
    while (!done.load(std::memory_order_acquire)) {
      TaskCore* t = r.core(rng() % n);
      if (claim_anywhere(t)) {
        take(t);
      }
    }
  });
  {
    LocalQueue& q = *queues[0]->q;
    std::mt19937 rng(777);
    std::size_t next = 0;
    while (next < n) {
      // A burst, sometimes bigger than the ring.
      std::size_t burst = 1 + rng() % (rng() % 8 == 0 ? 3 * kRing : 16);
      std::size_t end = next + burst < n ? next + burst : n;
      std::size_t first = next;
      for (; next < end; ++next) {
        if (rng() % 8 == 0) {
          q.push_lifo(r.core(next));
        } else {
          q.push(r.core(next));
        }
      }
      // A fork-join parent claims its last children, newest first.
      for (std::size_t i = end; i-- > first && i + 4 > end;) {
        TaskCore* t = r.core(i);
        std::uint64_t s = LocalQueue::slot_of(t);
        if (LocalQueue::slot_worker(s) == 1 && q.claim(t, s)) {
          if (!(s & LocalQueue::kInOverflow)) {
            q.reclaim_tail_holes();
          }
          take(t);
        }
      }
      for (std::size_t k = rng() % 24; k > 0; --k) {
        TaskCore* t = q.take_lifo();
        if (t == nullptr) {
          t = q.pop();
        }
        if (t == nullptr) {
          break;
        }
        take(t);
      }
    }
    // A lost task would keep us here: bounded, so a broken queue fails.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      TaskCore* t = q.take_lifo();
      if (t == nullptr) {
        t = q.pop();
      }
      if (t != nullptr) {
        take(t);
      } else if (total.load(std::memory_order_relaxed) >= n) {
        break;
      } else if (std::chrono::steady_clock::now() > give_up) {
        ADD_FAILURE() << "tasks lost: " << n - total.load() << " never taken";
        break;
      } else {
        std::this_thread::yield();  // the rest sits in the thieves' queues
      }
    }
  }
  done.store(true, std::memory_order_release);
  for (auto& t : threads) {
    t.join();
  }
  std::size_t lost = 0, doubled = 0;
  for (std::size_t i = 0; i < n; ++i) {
    int c = taken[i].load(std::memory_order_relaxed);
    lost += c == 0;
    doubled += c > 1;
  }
  EXPECT_EQ(lost, 0u) << "tasks never taken";
  EXPECT_EQ(doubled, 0u) << "tasks taken more than once";
  EXPECT_EQ(total.load(), n);
  EXPECT_GT(queues[0]->overflowed.load(), 0u) << "the overflow list was never used";
  for (auto& w : queues) {
    EXPECT_EQ(w->q->queued(), 0u);
  }
}
