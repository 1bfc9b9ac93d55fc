// Stress: a bounded Queue between producers and consumers on different
// workers and plain threads, with consumer tasks cancelled at random.
//
// Conservation: every item put is delivered exactly once (a cancelled get()
// loses nothing, a handed-over item is never duplicated), join() returns
// once every item is task_done(), and shutdown() ends every consumer.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <spindle/queue.hpp>

#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::testing::RuntimeTest;
using spindle::testing::scaled;

namespace {

constexpr auto kHang = 60s;

class QueueStress : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(QueueStress);

// Consumers record an item the moment get() returns (no suspension point in
// between), so a consumer cancelled later still accounts for what it took.
struct Ledger {
  explicit Ledger(long n) : seen(static_cast<std::size_t>(n)) {}
  void record(long v) {
    if (seen[static_cast<std::size_t>(v)].fetch_add(1) != 0) {
      dupes.fetch_add(1);
    }
    total.fetch_add(1);
  }
  std::vector<std::atomic<int>> seen;
  std::atomic<long> total{0};
  std::atomic<long> dupes{0};
};

TEST_P(QueueStress, ExactlyOnceWithRandomConsumerCancellation) {
  const long kItems = scaled(100000);
  const int kTaskProducers = 3;
  const int kConsumers = 4;
  spindle::Queue<long> q(16);
  Ledger ledger(kItems);
  std::atomic<long> cancels{0};

  // `in_task`: yields now and then (a plain thread cannot).
  auto consume_until_shutdown = [&q, &ledger](bool in_task) {
    for (;;) {
      long v;
      try {
        v = q.get();
      } catch (const spindle::QueueShutDown&) {
        return;
      }
      ledger.record(v);
      q.task_done();
      if (in_task && v % 3 == 0) {
        spindle::yield();  // a cancellation may land here instead of in get()
      }
    }
  };
  auto consume = [&consume_until_shutdown] { consume_until_shutdown(true); };

  // Producers: tasks and one plain thread, each a disjoint range.
  const int parts = kTaskProducers + 1;
  auto produce = [&q, kItems](int p) {
    for (long v = p; v < kItems; v += parts) {
      q.put(v);
    }
  };
  std::vector<spindle::Task<void>> producers;
  for (int p = 0; p < kTaskProducers; ++p) {
    producers.push_back(rt().spawn([&produce, p] { produce(p); }));
  }
  std::thread thread_producer([&] { produce(kTaskProducers); });
  std::thread thread_consumer([&] { consume_until_shutdown(false); });

  std::mutex consumers_mu;
  std::vector<spindle::Task<void>> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.push_back(rt().spawn(consume));
  }
  std::atomic<bool> stop{false};
  std::thread canceller([&] {
    std::mt19937 rng(12345);
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
      std::lock_guard<std::mutex> g(consumers_mu);
      auto& victim = consumers[rng() % consumers.size()];
      victim.cancel("stress");
      if (!victim.wait_for(kHang)) {
        std::fprintf(stderr, "HANG: cancelled consumer never finished\n");
        std::abort();
      }
      cancels.fetch_add(1);
      victim = rt().spawn(consume);  // a fresh consumer takes its place
    }
  });

  for (auto& p : producers) {
    p.get();
  }
  thread_producer.join();
  auto deadline = std::chrono::steady_clock::now() + kHang;
  while (ledger.total.load() < kItems) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "HANG: %ld of %ld items delivered, qsize %zu\n", ledger.total.load(),
                   kItems, q.qsize());
      rt().dump_tasks(std::cerr);
      std::abort();
    }
    std::this_thread::sleep_for(100us);
  }
  stop = true;
  canceller.join();
  q.join();  // every item was task_done()
  q.shutdown();
  thread_consumer.join();
  for (auto& c : consumers) {
    try {
      c.get();
    } catch (const spindle::Cancelled&) {
    }
  }
  EXPECT_EQ(ledger.total.load(), kItems);
  EXPECT_EQ(ledger.dupes.load(), 0);
  for (long v = 0; v < kItems; ++v) {
    ASSERT_EQ(ledger.seen[static_cast<std::size_t>(v)].load(), 1) << "item " << v;
  }
  EXPECT_TRUE(q.empty());
  EXPECT_GT(cancels.load(), 0);
}

// Putters cancelled at random on a tiny queue: a cancelled put() never
// enqueues, a completed one always does.
TEST_P(QueueStress, CancelledPutsNeverEnqueue) {
  const auto kRun = std::chrono::milliseconds(scaled(400));
  const long kPuts = 1L << 40;  // until told to stop
  spindle::Queue<long> q(2);
  std::atomic<long> completed{0}, next{0};
  auto put_loop = [&] {
    for (;;) {
      long v = next.fetch_add(1);
      if (v >= kPuts) {
        return;
      }
      q.put(v);
      completed.fetch_add(1);
    }
  };
  std::vector<spindle::Task<void>> putters;
  for (int i = 0; i < 4; ++i) {
    putters.push_back(rt().spawn(put_loop));
  }
  std::atomic<long> got{0};
  std::thread consumer([&] {
    for (;;) {
      try {
        q.get();
      } catch (const spindle::QueueShutDown&) {
        return;  // shut down and drained
      }
      got.fetch_add(1);
    }
  });
  std::mt19937 rng(7);
  long cancelled = 0;
  auto until = std::chrono::steady_clock::now() + kRun;
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
    auto& victim = putters[rng() % putters.size()];
    victim.cancel();
    ASSERT_TRUE(victim.wait_for(kHang));
    if (victim.cancelled()) {
      ++cancelled;
    }
    victim = rt().spawn(put_loop);
  }
  next.store(kPuts);  // every put_loop returns after its current put
  for (auto& p : putters) {
    ASSERT_TRUE(p.wait_for(kHang));
  }
  q.shutdown();
  consumer.join();
  EXPECT_EQ(got.load(), completed.load());
  EXPECT_GT(cancelled, 0);
}

}  // namespace
