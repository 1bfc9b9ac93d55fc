// Guards timer arming and cancelling (runtime/timer.hpp): every sleep and
// wait_for arms one entry and cancels it when woken early.
#include <vector>

#include "bench_fixture.hpp"
#include "timer.hpp"

namespace {

void BM_TimerArmCancel(benchmark::State& state) {
  spindle::detail::TimerHeap heap;
  const int background = static_cast<int>(state.range(0));
  std::vector<spindle::detail::TimerEntry> others(static_cast<std::size_t>(background));
  std::int64_t now = spindle::detail::now_ns();
  for (int i = 0; i < background; ++i) {
    others[i].deadline_ns = now + 1'000'000'000 + i;
    heap.insert(&others[i]);
  }
  spindle::detail::TimerEntry e;
  for (auto _ : state) {
    e.deadline_ns = now + 500'000'000;
    heap.insert(&e);
    heap.remove(&e);
  }
  for (auto& o : others) {
    heap.remove(&o);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TimerArmCancel)->Arg(0)->Arg(1000)->Arg(100000)->ArgName("armed");

void BM_SleepZeroLengthYield(benchmark::State& state) {
  spindle::Runtime rt(spindle::bench::options_for(state));
  constexpr int kSleeps = 2000;
  for (auto _ : state) {
    rt.block_on([] {
      for (int i = 0; i < kSleeps; ++i) {
        spindle::sleep(std::chrono::nanoseconds(1000));
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * kSleeps);
}
BENCHMARK(BM_SleepZeroLengthYield)->Arg(1)->ArgName("workers")->UseRealTime();

}  // namespace
