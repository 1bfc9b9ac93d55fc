// Schedule perturbation (perturb.hpp).
#include "perturb.hpp"

#include <sched.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace spindle::detail::perturb {
namespace {

constexpr unsigned kPoints = static_cast<unsigned>(Point::kCount);

std::atomic<std::uint64_t> g_seed{0};
std::atomic<unsigned> g_per_mille{0};
std::atomic<std::uint64_t> g_epoch{0};    // bumped by enable(): threads reseed
std::atomic<std::uint64_t> g_ordinal{0};  // threads in order of first pass
std::atomic<unsigned> g_forced[kPoints];  // sleep_us per point, 0: none
std::atomic<std::uint64_t> g_passes[kPoints];

std::uint64_t splitmix(std::uint64_t& s) noexcept {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct ThreadState {
  std::uint64_t epoch = ~std::uint64_t{0};
  std::uint64_t rng = 0;
};

// noinline: a task may pass a point on one worker and the next on another;
// the thread-local's address must be computed afresh (DESIGN.md hazards).
__attribute__((noinline)) ThreadState& thread_state() noexcept {
  thread_local ThreadState s;
  return s;
}

void spin_for_us(unsigned us) noexcept {
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1'000'000 + (now.tv_nsec - start.tv_nsec) / 1000 < us);
}

void sleep_for_us(unsigned us) noexcept {
  timespec ts{static_cast<time_t>(us / 1'000'000), static_cast<long>(us % 1'000'000) * 1000};
  nanosleep(&ts, nullptr);
}

void update_on() noexcept {
  bool on = g_per_mille.load(std::memory_order_relaxed) != 0;
  for (unsigned i = 0; i < kPoints && !on; ++i) {
    on = g_forced[i].load(std::memory_order_relaxed) != 0;
  }
#if SPINDLE_TEST_HOOKS
  g_on.store(on, std::memory_order_relaxed);
#endif
}

// SPINDLE_PERTURB=<seed>[:<per_mille>] turns it on for the whole process.
struct FromEnvironment {
  FromEnvironment() {
    const char* v = std::getenv("SPINDLE_PERTURB");
    if (v == nullptr || *v == '\0') {
      return;
    }
    char* end = nullptr;
    std::uint64_t seed = std::strtoull(v, &end, 10);
    unsigned per_mille = 30;
    if (end != nullptr && *end == ':') {
      per_mille = static_cast<unsigned>(std::strtoul(end + 1, nullptr, 10));
    }
    enable(seed, per_mille);
    std::fprintf(stderr, "spindle: schedule perturbation on, seed=%llu per_mille=%u\n",
                 static_cast<unsigned long long>(seed), per_mille);
  }
} g_from_environment;

}  // namespace

const char* name(Point p) noexcept {
  static const char* const names[kPoints] = {
      "submit_remote",  "spawn_registered", "shutdown_closed", "registry_removed",
      "timer_callback", "timer_armed",      "park_decided",    "park_sleep",
      "wake",           "claim_won",        "cancel_request",  "switch",
      "blocking_woken", "io_short_count",   "io_drained"};
  unsigned i = static_cast<unsigned>(p);
  return i < kPoints ? names[i] : "?";
}

void enable(std::uint64_t seed, unsigned per_mille) {
  g_seed.store(seed, std::memory_order_relaxed);
  g_per_mille.store(per_mille > 1000 ? 1000 : per_mille, std::memory_order_relaxed);
  g_ordinal.store(0, std::memory_order_relaxed);
  g_epoch.fetch_add(1, std::memory_order_relaxed);
  update_on();
}

void disable() {
  g_per_mille.store(0, std::memory_order_relaxed);
  for (auto& f : g_forced) {
    f.store(0, std::memory_order_relaxed);
  }
  update_on();
}

void force(Point p, unsigned sleep_us) {
  g_forced[static_cast<unsigned>(p)].store(sleep_us, std::memory_order_relaxed);
  update_on();
}

std::uint64_t seed() noexcept { return g_seed.load(std::memory_order_relaxed); }

std::uint64_t passes(Point p) noexcept {
  return g_passes[static_cast<unsigned>(p)].load(std::memory_order_relaxed);
}

#if SPINDLE_TEST_HOOKS
void pass_slow(Point p) noexcept {
  const unsigned i = static_cast<unsigned>(p);
  g_passes[i].fetch_add(1, std::memory_order_relaxed);  // a tally only
  if (unsigned us = g_forced[i].load(std::memory_order_relaxed); us != 0) {
    sleep_for_us(us);
    return;
  }
  const unsigned per_mille = g_per_mille.load(std::memory_order_relaxed);
  if (per_mille == 0) {
    return;
  }
  ThreadState& ts = thread_state();
  const std::uint64_t epoch = g_epoch.load(std::memory_order_relaxed);
  if (ts.epoch != epoch) {
    ts.epoch = epoch;
    const std::uint64_t ordinal = g_ordinal.fetch_add(1, std::memory_order_relaxed);
    ts.rng = g_seed.load(std::memory_order_relaxed) ^ (ordinal * 0xd1b54a32d192ed03ull);
  }
  const std::uint64_t r = splitmix(ts.rng);
  if (r % 1000 >= per_mille) {
    return;
  }
  switch ((r >> 10) % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      sched_yield();
      break;
    case 5:
    case 6:
    case 7:
      spin_for_us(1 + static_cast<unsigned>((r >> 20) % 50));
      break;
    default:
      sleep_for_us(10 + static_cast<unsigned>((r >> 20) % 190));
      break;
  }
}
#endif

}  // namespace spindle::detail::perturb
