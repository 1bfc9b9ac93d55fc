// Guards the local run queue: owner push/pop, steal-half, claim + tail
// reclamation (the inline-child path), and the injection queue.
#include <vector>

#include "bench_fixture.hpp"
#include "inject_queue.hpp"
#include "run_queue.hpp"

namespace {

struct Item {
  int v;
};

void BM_RingPushPop(benchmark::State& state) {
  spindle::detail::RunQueue<Item, 256> q;
  Item it{1};
  std::uint32_t idx = 0;
  for (auto _ : state) {
    q.push_back(&it, true, &idx);
    benchmark::DoNotOptimize(q.pop_front());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RingPushPop);

void BM_RingClaimReclaim(benchmark::State& state) {
  spindle::detail::RunQueue<Item, 256> q;
  Item it{1};
  std::uint32_t idx = 0;
  for (auto _ : state) {
    q.push_back(&it, true, &idx);
    benchmark::DoNotOptimize(q.try_claim(idx, &it));
    q.reclaim_tail_holes();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RingClaimReclaim);

void BM_RingStealHalf(benchmark::State& state) {
  spindle::detail::RunQueue<Item, 256> src, dst;
  std::vector<Item> items(128);
  std::uint32_t idx = 0;
  for (auto _ : state) {
    for (auto& it : items) {
      src.push_back(&it, true, &idx);
    }
    std::uint32_t n = src.steal_into([&](Item* it, bool c) { dst.push_back(it, c, &idx); }, 128);
    benchmark::DoNotOptimize(n);
    while (src.pop_front() != nullptr) {
    }
    while (dst.pop_front() != nullptr) {
    }
  }
  state.SetItemsProcessed(state.iterations() * 128);
}
BENCHMARK(BM_RingStealHalf);

void BM_InjectPushPop(benchmark::State& state) {
  spindle::detail::InjectQueue q;
  auto* t = reinterpret_cast<spindle::detail::TaskCore*>(0x1000);
  for (auto _ : state) {
    q.push(t);
    benchmark::DoNotOptimize(q.pop());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InjectPushPop);

}  // namespace
