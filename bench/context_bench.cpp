// Guards the raw fiber switch (runtime/context.cpp): two contexts jumping
// back and forth, with the exception-state swap and sanitizer hooks that
// every switch pays. The physical floor for yield.
#include "bench_fixture.hpp"
#include "context.hpp"
#include "stack.hpp"

namespace {

using spindle::detail::Context;

Context g_main, g_fiber;
bool g_stop = false;

void ping_entry(Context*) {
  for (;;) {
    spindle::detail::switch_context(g_fiber, g_main);
  }
}

void BM_ContextSwitchRoundTrip(benchmark::State& state) {
  spindle::detail::StackAllocator stacks(64 * 1024, false);
  spindle::detail::StackRegion r = stacks.allocate();
  spindle::detail::init_thread_context(g_main);
  spindle::detail::make_context(g_fiber, r.lo, r.size - 64, &ping_entry, "bench");
  for (auto _ : state) {
    spindle::detail::switch_context(g_main, g_fiber);
  }
  g_stop = true;
  state.SetItemsProcessed(state.iterations() * 2);  // two switches per round trip
}
BENCHMARK(BM_ContextSwitchRoundTrip);

}  // namespace
