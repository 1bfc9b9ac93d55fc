// Queue, LifoQueue, PriorityQueue (DESIGN.md "Synchronization and queues",
// Python 3.13 asyncio.Queue): maxsize/full/empty, the _nowait errors, FIFO
// order of blocked getters and putters, task_done/join, both shutdown modes,
// cancellation safety (a cancelled get loses no item, a cancelled put
// enqueues nothing), plain threads and tasks on one queue.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spindle/queue.hpp>

#include "cancel_outcome.hpp"
#include "parking_support.hpp"
#include "race.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::testing::await_parked;
using spindle::testing::kRaceRounds;
using spindle::testing::race;
using spindle::testing::RuntimeTest;
using spindle::testing::throws_cancelled;

class QueueTest : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(QueueTest);

TEST(QueuePlain, SizesAndNowaitErrors) {
  spindle::Queue<int> q(2);
  EXPECT_EQ(q.maxsize(), 2u);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  EXPECT_THROW(q.get_nowait(), spindle::QueueEmpty);
  q.put_nowait(1);
  q.put(2);  // not full: no blocking, no runtime needed
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), spindle::QueueFull);
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_EQ(q.get(), 2);
  EXPECT_TRUE(q.empty());

  spindle::Queue<int> unbounded;
  EXPECT_EQ(unbounded.maxsize(), 0u);
  for (int i = 0; i < 10000; ++i) {
    unbounded.put_nowait(i);
  }
  EXPECT_FALSE(unbounded.full());
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(unbounded.get_nowait(), i);
  }
}

TEST(QueuePlain, LifoAndPriorityOrder) {
  spindle::LifoQueue<int> lifo;
  for (int i : {1, 2, 3}) {
    lifo.put_nowait(i);
  }
  EXPECT_EQ(lifo.get_nowait(), 3);
  EXPECT_EQ(lifo.get_nowait(), 2);
  EXPECT_EQ(lifo.get_nowait(), 1);

  spindle::PriorityQueue<int> pq;
  for (int i : {5, 1, 4, 2, 3, 1}) {
    pq.put_nowait(i);
  }
  std::vector<int> out;
  while (!pq.empty()) {
    out.push_back(pq.get_nowait());
  }
  EXPECT_EQ(out, (std::vector<int>{1, 1, 2, 3, 4, 5}));

  spindle::PriorityQueue<std::pair<int, std::string>> jobs;
  jobs.put_nowait({2, "b"});
  jobs.put_nowait({1, "a"});
  jobs.put_nowait({3, "c"});
  EXPECT_EQ(jobs.get_nowait().second, "a");
  EXPECT_EQ(jobs.get_nowait().second, "b");

  spindle::PriorityQueue<int, std::greater<int>> maxq(2);
  maxq.put_nowait(1);
  maxq.put_nowait(7);
  EXPECT_THROW(maxq.put_nowait(3), spindle::QueueFull);
  EXPECT_EQ(maxq.get_nowait(), 7);
}

TEST(QueuePlain, MoveOnlyItems) {
  spindle::Queue<std::unique_ptr<int>> q;
  q.put(std::make_unique<int>(7));
  auto p = q.get();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 7);
}

TEST(QueuePlain, TaskDoneTooManyTimes) {
  spindle::Queue<int> q;
  EXPECT_THROW(q.task_done(), std::invalid_argument);
  q.put_nowait(1);
  q.put_nowait(2);
  EXPECT_EQ(q.get_nowait(), 1);
  q.task_done();
  q.task_done();  // counts items put, not items got (as asyncio)
  EXPECT_THROW(q.task_done(), std::invalid_argument);
  q.join();  // nothing unfinished: returns at once
}

TEST_P(QueueTest, BlockedGettersServedFifo) {
  spindle::Queue<int> q;
  std::vector<int> got(4, -1);
  rt().block_on([&] {
    std::vector<spindle::Task<void>> ts;
    for (int i = 0; i < 4; ++i) {
      ts.push_back(spindle::spawn([&, i] { got[i] = q.get(); }));
      await_parked(ts.back());
    }
    for (int i = 0; i < 4; ++i) {
      q.put(100 + i);
    }
    for (auto& t : ts) {
      t.get();
    }
  });
  EXPECT_EQ(got, (std::vector<int>{100, 101, 102, 103}));
}

TEST_P(QueueTest, BlockedPuttersServedFifo) {
  spindle::Queue<int> q(1);
  std::vector<int> out;
  rt().block_on([&] {
    q.put(0);
    std::vector<spindle::Task<void>> ts;
    for (int i = 1; i <= 4; ++i) {
      ts.push_back(spindle::spawn([&, i] { q.put(i); }));
      await_parked(ts.back());
    }
    EXPECT_TRUE(q.full());
    EXPECT_THROW(q.put_nowait(99), spindle::QueueFull);  // no barging past putters
    for (int i = 0; i < 5; ++i) {
      out.push_back(q.get());
    }
    for (auto& t : ts) {
      t.get();
    }
  });
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_P(QueueTest, BoundedProducerConsumerKeepsOrder) {
  spindle::Queue<int> q(4);
  constexpr int kItems = 2000;
  rt().block_on([&] {
    auto producer = spindle::spawn([&] {
      for (int i = 0; i < kItems; ++i) {
        q.put(i);
        EXPECT_LE(q.qsize(), 4u);
      }
    });
    for (int i = 0; i < kItems; ++i) {
      ASSERT_EQ(q.get(), i);
    }
    producer.get();
  });
}

TEST_P(QueueTest, PlainThreadsAndTasksShareAQueue) {
  spindle::Queue<int> q(8);
  constexpr int kPerProducer = 1000;
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        q.put(p * kPerProducer + i);
      }
    });
  }
  auto task_producer = rt().spawn([&] {
    for (int i = 0; i < kPerProducer; ++i) {
      q.put(2 * kPerProducer + i);
    }
  });
  std::vector<int> seen_by_thread;
  std::thread consumer([&] {
    for (int i = 0; i < kPerProducer; ++i) {
      seen_by_thread.push_back(q.get());
    }
  });
  auto task_consumer = rt().spawn([&] {
    std::vector<int> seen;
    for (int i = 0; i < 2 * kPerProducer; ++i) {
      seen.push_back(q.get());
    }
    return seen;
  });
  for (auto& t : producers) {
    t.join();
  }
  task_producer.get();
  consumer.join();
  std::vector<int> all = task_consumer.get();
  all.insert(all.end(), seen_by_thread.begin(), seen_by_thread.end());
  std::set<int> uniq(all.begin(), all.end());
  EXPECT_EQ(all.size(), 3u * kPerProducer);
  EXPECT_EQ(uniq.size(), 3u * kPerProducer);
  EXPECT_TRUE(q.empty());
}

TEST_P(QueueTest, CancelledGetLosesNoItem) {
  spindle::Queue<int> q;
  rt().block_on([&] {
    auto a = spindle::spawn([&] { return q.get(); });
    auto b = spindle::spawn([&] { return q.get(); });
    await_parked(a);
    await_parked(b);
    a.cancel();
    EXPECT_TRUE(throws_cancelled([&] { a.get(); }));
    q.put(1);
    EXPECT_EQ(b.get(), 1);  // the cancelled getter took nothing
    q.put(2);
    EXPECT_EQ(q.get_nowait(), 2);
  });
}

// A getter cancelled just as a putter hands it an item: the item is either
// returned by that getter or goes to the next getter; never lost.
TEST_P(QueueTest, CancelRacingPutLosesNoItem) {
  int kept = 0, cancelled = 0;
  for (int iter = 0; iter < kRaceRounds; ++iter) {
    spindle::Queue<int> q;
    auto a = rt().spawn([&] { return q.get(); });
    await_parked(a);
    auto b = rt().spawn([&] { return q.get(); });
    await_parked(b);
    race([&] { q.put(1); }, [&] { a.cancel(); });
    ASSERT_TRUE(a.wait_for(10s));
    if (a.cancelled()) {
      ++cancelled;
      ASSERT_TRUE(b.wait_for(10s)) << "item lost (iteration " << iter << ")";
      EXPECT_EQ(b.get(), 1);
    } else {
      ++kept;
      EXPECT_EQ(a.get(), 1);
      q.put(2);
      EXPECT_EQ(b.get(), 2);
    }
    EXPECT_TRUE(q.empty());
  }
  EXPECT_EQ(kept + cancelled, kRaceRounds);
  RecordProperty("kept", kept);
  RecordProperty("cancelled", cancelled);
}

TEST_P(QueueTest, CancelledPutEnqueuesNothing) {
  spindle::Queue<int> q(1);
  rt().block_on([&] {
    q.put(0);
    auto a = spindle::spawn([&] { q.put(1); });
    auto b = spindle::spawn([&] { q.put(2); });
    await_parked(a);
    await_parked(b);
    a.cancel();
    EXPECT_TRUE(throws_cancelled([&] { a.get(); }));
    EXPECT_EQ(q.get(), 0);
    EXPECT_EQ(q.get(), 2);  // b got the slot; a's item never went in
    b.get();
    EXPECT_TRUE(q.empty());
  });
}

TEST_P(QueueTest, TaskDoneAndJoin) {
  spindle::Queue<int> q;
  std::atomic<int> processed{0};
  rt().block_on([&] {
    for (int i = 0; i < 10; ++i) {
      q.put(i);
    }
    std::vector<spindle::Task<void>> workers_;
    for (int w = 0; w < 3; ++w) {
      workers_.push_back(spindle::spawn([&] {
        for (;;) {
          q.get();
          spindle::sleep(50us);
          ++processed;
          q.task_done();
        }
      }));
    }
    q.join();
    EXPECT_EQ(processed.load(), 10);
    for (auto& w : workers_) {
      w.cancel();
      EXPECT_TRUE(throws_cancelled([&] { w.get(); }));
    }
  });
  EXPECT_THROW(q.task_done(), std::invalid_argument);
}

TEST_P(QueueTest, JoinFromPlainThreadAndCancelledJoin) {
  spindle::Queue<int> q;
  q.put(1);
  rt().block_on([&] {
    auto j = spindle::spawn([&] { q.join(); });
    await_parked(j);
    j.cancel();
    EXPECT_TRUE(throws_cancelled([&] { j.get(); }));
  });
  std::thread joiner([&] { q.join(); });
  rt().block_on([&] {
    EXPECT_EQ(q.get(), 1);
    q.task_done();
  });
  joiner.join();
}

TEST_P(QueueTest, ShutdownKeepsItemsForGetters) {
  spindle::Queue<int> q(2);
  rt().block_on([&] {
    q.put(1);
    q.put(2);
    auto putter = spindle::spawn([&] { q.put(3); });
    await_parked(putter);
    q.shutdown();
    EXPECT_THROW(putter.get(), spindle::QueueShutDown);  // blocked putter woken
    EXPECT_THROW(q.put(4), spindle::QueueShutDown);
    EXPECT_THROW(q.put_nowait(4), spindle::QueueShutDown);
    EXPECT_EQ(q.get(), 1);
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_THROW(q.get(), spindle::QueueShutDown);
    EXPECT_THROW(q.get_nowait(), spindle::QueueShutDown);
  });
}

TEST_P(QueueTest, ShutdownWakesBlockedGetters) {
  spindle::Queue<int> q;
  std::thread th([&] { EXPECT_THROW(q.get(), spindle::QueueShutDown); });
  rt().block_on([&] {
    std::vector<spindle::Task<int>> ts;
    for (int i = 0; i < 3; ++i) {
      ts.push_back(spindle::spawn([&] { return q.get(); }));
      await_parked(ts.back());
    }
    q.shutdown();
    for (auto& t : ts) {
      EXPECT_THROW(t.get(), spindle::QueueShutDown);
    }
  });
  th.join();
}

TEST_P(QueueTest, ShutdownImmediateDrainsAndReleasesJoin) {
  spindle::Queue<std::shared_ptr<int>> q;
  auto item = std::make_shared<int>(5);
  rt().block_on([&] {
    q.put(item);
    q.put(std::make_shared<int>(6));
    q.put(std::make_shared<int>(7));
    auto taken = q.get();  // one taken, not yet done
    auto joiner = spindle::spawn([&] { q.join(); });
    await_parked(joiner);
    q.shutdown(true);
    EXPECT_EQ(q.qsize(), 0u);
    EXPECT_EQ(item.use_count(), 2);  // drained items destroyed; `taken` holds one
    EXPECT_FALSE(joiner.done());     // the taken item is still unfinished
    EXPECT_THROW(q.get(), spindle::QueueShutDown);
    q.task_done();
    joiner.get();
    EXPECT_THROW(q.task_done(), std::invalid_argument);
  });
}

TEST_P(QueueTest, ShutdownImmediateUnblocksGettersAndJoin) {
  spindle::Queue<int> q;
  rt().block_on([&] {
    auto g = spindle::spawn([&] { return q.get(); });
    await_parked(g);
    q.put_nowait(1);  // handed straight to g
    EXPECT_EQ(g.get(), 1);
    q.put_nowait(2);
    auto joiner = spindle::spawn([&] { q.join(); });
    await_parked(joiner);
    auto g2 = spindle::spawn([&] {
      q.get();  // takes 2
      return q.get();
    });
    await_parked(g2);
    q.task_done();  // for item 1
    q.shutdown(true);
    EXPECT_THROW(g2.get(), spindle::QueueShutDown);
    q.task_done();  // for item 2
    joiner.get();
  });
}

TEST_P(QueueTest, LifoAndPriorityBlockingGet) {
  spindle::LifoQueue<int> lifo(3);
  spindle::PriorityQueue<int> pq(3);
  rt().block_on([&] {
    auto g = spindle::spawn([&] { return pq.get(); });
    await_parked(g);
    pq.put(9);
    EXPECT_EQ(g.get(), 9);
    for (int i : {3, 1, 2}) {
      pq.put(i);
      lifo.put(i);
    }
    auto p = spindle::spawn([&] {
      pq.put(0);
      lifo.put(0);
    });
    await_parked(p);
    EXPECT_EQ(pq.get(), 1);
    EXPECT_EQ(lifo.get(), 2);
    p.get();
    EXPECT_EQ(pq.get(), 0);
    EXPECT_EQ(lifo.get(), 0);
    EXPECT_EQ(lifo.get(), 1);
    EXPECT_EQ(lifo.get(), 3);
  });
}
