// Guards wakeups through futures: a token passed back and forth between two
// tasks (LIFO-slot wake path, cross-worker when stolen), and a plain thread
// setting a future that a task awaits (injection-queue wake path).
#include <thread>

#include "bench_fixture.hpp"

namespace {

using spindle::bench::options_for;
using spindle::bench::worker_args;

struct Ball {
  long n;
  spindle::Future<Ball> reply;
};

void BM_FuturePingPong(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  constexpr long kRounds = 20000;
  for (auto _ : state) {
    rt.block_on([] {
      spindle::Future<Ball> to_b;
      auto b = spindle::spawn([to_b]() mutable {
        for (long i = 0; i < kRounds; ++i) {
          Ball ball = to_b.get();
          spindle::Future<Ball> next;
          ball.reply.set_result(Ball{ball.n + 1, next});
          to_b = next;
        }
      });
      for (long i = 0; i < kRounds; ++i) {
        spindle::Future<Ball> back;
        to_b.set_result(Ball{i, back});
        to_b = back.get().reply;
      }
      b.get();
    });
  }
  state.SetItemsProcessed(state.iterations() * kRounds);
}
BENCHMARK(BM_FuturePingPong)->Apply(worker_args);

// A plain thread sets, a task gets, then the task sets and the thread gets.
void BM_ThreadToTaskRoundTrip(benchmark::State& state) {
  spindle::Runtime rt(options_for(state));
  constexpr long kRounds = 2000;
  for (auto _ : state) {
    spindle::Future<spindle::Future<long>> first;
    auto task = rt.spawn([first]() mutable {
      spindle::Future<long> f = first.get();
      for (long i = 0; i < kRounds; ++i) {
        spindle::Future<spindle::Future<long>> unused;
        f.set_result(i);
        break;
      }
    });
    spindle::Future<long> back;
    first.set_result(back);
    benchmark::DoNotOptimize(back.get());
    task.get();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadToTaskRoundTrip)->Apply(worker_args);

}  // namespace
