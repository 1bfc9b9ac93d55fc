// Guards the overhead the combinators add on top of spawn + get: gather of
// 10,000 tasks (one done-callback and one call_soon batch per child, one
// suspension of the gatherer), gather of two tasks called in a loop (the
// fixed cost of one gather: state, callbacks, the outer future), task_group
// spawn-and-join of 10,000 children (a map insert and a callback per child),
// and a timeout() scope whose body returns at once (arming and disarming one
// timer: the fixed cost of every wait_for that has to wait). Compare with
// task_bench.cpp's BM_SpawnJoinEmpty.
#include <spindle/combinators.hpp>
#include <spindle/task_group.hpp>

#include <chrono>
#include <vector>

#include "bench_fixture.hpp"

namespace {

using spindle::bench::options_for;
using spindle::bench::worker_args;

constexpr int kChildren = 10000;

void BM_Gather10k(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  for (auto _ : state) {
    long sum = rt.block_on([] {
      std::vector<spindle::Task<long>> ts;
      ts.reserve(kChildren);
      for (long i = 0; i < kChildren; ++i) {
        ts.push_back(spindle::spawn([i] { return i; }));
      }
      long s = 0;
      for (long v : spindle::gather(ts)) {
        s += v;
      }
      return s;
    });
    if (sum != static_cast<long>(kChildren) * (kChildren - 1) / 2) {
      state.SkipWithError("wrong sum");
    }
  }
  state.SetItemsProcessed(state.iterations() * kChildren);
}
BENCHMARK(BM_Gather10k)->Apply(worker_args);

void BM_GatherPairLoop(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  constexpr int kCalls = 2000;
  for (auto _ : state) {
    int sum = rt.block_on([] {
      int s = 0;
      for (int i = 0; i < kCalls; ++i) {
        auto [a, b] =
            spindle::gather(spindle::spawn([] { return 1; }), spindle::spawn([] { return 2; }));
        s += a + b;
      }
      return s;
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kCalls);
}
BENCHMARK(BM_GatherPairLoop)->Apply(worker_args);

void BM_TaskGroupSpawnJoin10k(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  for (auto _ : state) {
    rt.block_on([] {
      spindle::task_group([](spindle::TaskGroup& tg) {
        for (int i = 0; i < kChildren; ++i) {
          tg.spawn([] {});
        }
      });
    });
  }
  state.SetItemsProcessed(state.iterations() * kChildren);
}
BENCHMARK(BM_TaskGroupSpawnJoin10k)->Apply(worker_args);

void BM_TimeoutScope(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  constexpr int kCalls = 10000;
  for (auto _ : state) {
    int sum = rt.block_on([] {
      int s = 0;
      for (int i = 0; i < kCalls; ++i) {
        s += spindle::timeout(std::chrono::seconds(10), [i] { return i & 1; });
      }
      return s;
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kCalls);
}
BENCHMARK(BM_TimeoutScope)->Apply(worker_args);

}  // namespace
