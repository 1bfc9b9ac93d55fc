// Shared helpers for spindle's Google Benchmark suites (regression guards,
// not marketing). Worker counts sweep 1, 2, ... up to the usable CPUs.
#pragma once

#include <benchmark/benchmark.h>

#include <thread>

#include <spindle/spindle.hpp>

namespace spindle::bench {

inline void worker_args(benchmark::internal::Benchmark* b) {
  unsigned hw = std::thread::hardware_concurrency();
  for (unsigned w = 1; w <= hw; w *= 2) {
    b->Arg(static_cast<int>(w));
  }
  if ((hw & (hw - 1)) != 0) {
    b->Arg(static_cast<int>(hw));
  }
  b->ArgName("workers")->UseRealTime();
}

inline Options options_for(const benchmark::State& state) {
  Options o;
  o.workers = static_cast<unsigned>(state.range(0));
  o.slow_task_warning = std::chrono::milliseconds(0);
  return o;
}

}  // namespace spindle::bench
