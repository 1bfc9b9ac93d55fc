// Guards Queue throughput: a bounded Queue (capacity 1024) between 1 and N
// producer/consumer task pairs spread over the workers, where put/get must
// stay on their non-allocating fast paths and blocked getters get items by
// direct hand-off; and the single-thread put_nowait/get_nowait fast path.
#include <thread>
#include <vector>

#include <spindle/queue.hpp>

#include "bench_fixture.hpp"

namespace {

using spindle::bench::options_for;

constexpr long kItems = 200000;
constexpr std::size_t kCapacity = 1024;

// {workers, pairs}: workers sweep as worker_args does; pairs 1 and 4.
void queue_args(benchmark::internal::Benchmark* b) {
  unsigned hw = std::thread::hardware_concurrency();
  std::vector<unsigned> ws;
  for (unsigned w = 1; w <= hw; w *= 2) {
    ws.push_back(w);
  }
  if ((hw & (hw - 1)) != 0) {
    ws.push_back(hw);
  }
  for (unsigned w : ws) {
    for (int pairs : {1, 4}) {
      b->Args({static_cast<int>(w), pairs});
    }
  }
  b->ArgNames({"workers", "pairs"})->UseRealTime();
}

void BM_QueueThroughput(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  const int pairs = static_cast<int>(state.range(1));
  const long per = kItems / pairs;
  for (auto _ : state) {
    long sum = rt.block_on([pairs, per] {
      spindle::Queue<long> q(kCapacity);
      std::vector<spindle::Task<void>> producers;
      std::vector<spindle::Task<long>> consumers;
      for (int p = 0; p < pairs; ++p) {
        consumers.push_back(spindle::spawn([&q, per] {
          long s = 0;
          for (long i = 0; i < per; ++i) {
            s += q.get();
          }
          return s;
        }));
        producers.push_back(spindle::spawn([&q, per] {
          for (long i = 0; i < per; ++i) {
            q.put(i);
          }
        }));
      }
      long s = 0;
      for (auto& p : producers) {
        p.get();
      }
      for (auto& c : consumers) {
        s += c.get();
      }
      return s;
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * per * pairs);
}
BENCHMARK(BM_QueueThroughput)->Apply(queue_args);

void BM_QueueNowaitFastPath(benchmark::State& state) {
  spindle::Queue<long> q(kCapacity);
  long s = 0;
  for (auto _ : state) {
    q.put_nowait(1);
    s += q.get_nowait();
  }
  benchmark::DoNotOptimize(s);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueueNowaitFastPath);

}  // namespace
