// Baselines without spindle, for scale: an OS-thread handoff through a
// mutex/condvar queue, and std::async per task.
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "bench_fixture.hpp"

namespace {

void BM_ThreadCondvarPingPong(benchmark::State& state) {
  std::mutex mu;
  std::condition_variable cv;
  int turn = 0;
  bool stop = false;
  std::thread other([&] {
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      cv.wait(l, [&] { return turn == 1 || stop; });
      if (stop) {
        return;
      }
      turn = 0;
      cv.notify_all();
    }
  });
  for (auto _ : state) {
    std::unique_lock<std::mutex> l(mu);
    turn = 1;
    cv.notify_all();
    cv.wait(l, [&] { return turn == 0; });
  }
  {
    std::lock_guard<std::mutex> l(mu);
    stop = true;
  }
  cv.notify_all();
  other.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadCondvarPingPong)->UseRealTime();

void BM_StdAsyncSpawnJoin(benchmark::State& state) {
  for (auto _ : state) {
    auto f = std::async(std::launch::async, [] { return 1; });
    benchmark::DoNotOptimize(f.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StdAsyncSpawnJoin)->UseRealTime();

}  // namespace
