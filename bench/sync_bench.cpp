// Guards the Mutex: its uncontended fast path (one CAS each way, no
// allocation) and its throughput under contention — 4 x workers tasks each
// locking K times — where "normal mode" barging must keep the critical
// section running instead of paying a context switch per hand-over. A
// std::mutex taken by the same tasks is the baseline (it blocks workers,
// but for a critical section this short that is what people reach for).
#include <mutex>
#include <vector>

#include <spindle/sync.hpp>

#include "bench_fixture.hpp"

namespace {

using spindle::bench::options_for;
using spindle::bench::worker_args;

constexpr long kLocksPerTask = 2000;

void BM_MutexUncontended(benchmark::State& state) {
  spindle::Mutex m;
  long counter = 0;
  for (auto _ : state) {
    m.lock();
    ++counter;
    m.unlock();
  }
  benchmark::DoNotOptimize(counter);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexUncontended);

template <class M>
void contended(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  const int tasks = 4 * static_cast<int>(state.range(0));
  for (auto _ : state) {
    long counter = rt.block_on([tasks] {
      M m;
      long counter = 0;
      std::vector<spindle::Task<void>> ts;
      ts.reserve(static_cast<std::size_t>(tasks));
      for (int t = 0; t < tasks; ++t) {
        ts.push_back(spindle::spawn([&m, &counter] {
          for (long k = 0; k < kLocksPerTask; ++k) {
            std::lock_guard<M> g(m);
            ++counter;
          }
        }));
      }
      for (auto& t : ts) {
        t.get();
      }
      return counter;
    });
    benchmark::DoNotOptimize(counter);
  }
  state.SetItemsProcessed(state.iterations() * tasks * kLocksPerTask);
}

void BM_MutexContended(benchmark::State& state) { contended<spindle::Mutex>(state); }
BENCHMARK(BM_MutexContended)->Apply(worker_args);

void BM_StdMutexContendedBaseline(benchmark::State& state) { contended<std::mutex>(state); }
BENCHMARK(BM_StdMutexContendedBaseline)->Apply(worker_args);

// Contention with a suspension inside the critical section every 64th time:
// waiters really queue, so this exercises the slow path, the wake-up and the
// starvation hand-off.
void BM_MutexContendedWithYield(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  const int tasks = 4 * static_cast<int>(state.range(0));
  for (auto _ : state) {
    long counter = rt.block_on([tasks] {
      spindle::Mutex m;
      long counter = 0;
      std::vector<spindle::Task<void>> ts;
      for (int t = 0; t < tasks; ++t) {
        ts.push_back(spindle::spawn([&m, &counter] {
          for (long k = 0; k < kLocksPerTask; ++k) {
            std::lock_guard<spindle::Mutex> g(m);
            if (++counter % 64 == 0) {
              spindle::yield();
            }
          }
        }));
      }
      for (auto& t : ts) {
        t.get();
      }
      return counter;
    });
    benchmark::DoNotOptimize(counter);
  }
  state.SetItemsProcessed(state.iterations() * tasks * kLocksPerTask);
}
BENCHMARK(BM_MutexContendedWithYield)->Apply(worker_args);

}  // namespace
