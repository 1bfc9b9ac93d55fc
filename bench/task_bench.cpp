// Guards the cost of a task's life: spawn + join of an empty task (inline
// claim path and stolen path), yield (one direct fiber switch plus queue
// traffic), and skynet (1,000,000 leaves: fork-join with inline children).
#include <atomic>
#include <vector>

#include "bench_fixture.hpp"

namespace {

using spindle::bench::options_for;
using spindle::bench::worker_args;

void BM_SpawnJoinEmpty(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  constexpr int kBatch = 10000;
  for (auto _ : state) {
    rt.block_on([] {
      std::vector<spindle::Task<void>> ts;
      ts.reserve(kBatch);
      for (int i = 0; i < kBatch; ++i) {
        ts.push_back(spindle::spawn([] {}));
      }
      for (auto& t : ts) {
        t.get();
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SpawnJoinEmpty)->Apply(worker_args);

void BM_Yield(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  const int tasks = 2 * static_cast<int>(state.range(0));
  constexpr int kYields = 20000;
  for (auto _ : state) {
    rt.block_on([tasks] {
      std::vector<spindle::Task<void>> ts;
      for (int i = 0; i < tasks; ++i) {
        ts.push_back(spindle::spawn([] {
          for (int k = 0; k < kYields; ++k) {
            spindle::yield();
          }
        }));
      }
      for (auto& t : ts) {
        t.get();
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * tasks * kYields);
}
BENCHMARK(BM_Yield)->Apply(worker_args);

long long skynet(long long num, long long size) {
  if (size == 1) {
    return num;
  }
  const long long sub = size / 10;
  spindle::Task<long long> kids[10];
  for (int i = 0; i < 10; ++i) {
    kids[i] = spindle::spawn([num, i, sub] { return skynet(num + i * sub, sub); });
  }
  long long sum = 0;
  for (auto& k : kids) {
    sum += k.get();
  }
  return sum;
}

void BM_Skynet1M(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  for (auto _ : state) {
    long long sum = rt.block_on([] { return skynet(0, 1000000); });
    if (sum != 499999500000LL) {
      state.SkipWithError("wrong sum");
    }
  }
  state.SetItemsProcessed(state.iterations() * 1111111);
}
BENCHMARK(BM_Skynet1M)->Apply(worker_args)->Unit(benchmark::kMillisecond);

}  // namespace
