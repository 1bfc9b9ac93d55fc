// Guards timer arming and cancelling (runtime/timer.hpp): every sleep and
// wait_for arms one entry and cancels it when woken early.
#include <algorithm>
#include <chrono>
#include <vector>

#include "bench_fixture.hpp"
#include "timer.hpp"

namespace {

void BM_TimerArmCancel(benchmark::State& state) {
  spindle::detail::TimerWheel wheel;
  const int background = static_cast<int>(state.range(0));
  std::vector<spindle::detail::TimerEntry> others(static_cast<std::size_t>(background));
  std::int64_t now = spindle::detail::now_ns();
  for (int i = 0; i < background; ++i) {
    others[i].deadline_ns = now + 1'000'000'000 + i;
    wheel.insert(&others[i]);
  }
  spindle::detail::TimerEntry e;
  for (auto _ : state) {
    e.deadline_ns = now + 500'000'000;
    wheel.insert(&e);
    wheel.remove(&e);
  }
  for (auto& o : others) {
    wheel.remove(&o);
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

namespace {

// How late a 1 ms sleep wakes up on an idle runtime (median lateness as a
// counter, microseconds). Guards the park timeout and timer firing path.
void BM_SleepLateness(benchmark::State& state) {
  spindle::Runtime rt(spindle::bench::options_for(state));
  std::vector<double> late_us;
  for (auto _ : state) {
    double us = rt.block_on([] {
      auto t0 = std::chrono::steady_clock::now();
      spindle::sleep(std::chrono::milliseconds(1));
      return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0 -
                                                       std::chrono::milliseconds(1))
          .count();
    });
    late_us.push_back(us);
  }
  std::sort(late_us.begin(), late_us.end());
  state.counters["late_us_median"] = late_us[late_us.size() / 2];
  state.counters["late_us_p99"] = late_us[late_us.size() * 99 / 100];
}
BENCHMARK(BM_SleepLateness)->Arg(2)->ArgName("workers")->UseRealTime()->Iterations(300);

}  // namespace
