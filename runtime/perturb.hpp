// Schedule perturbation, for tests: at the runtime's decision points (around
// the documented atomic transitions, wake, park, spawn, shutdown and timer
// firing) a seeded generator may yield the thread, spin or sleep, so that a
// race whose window is a few instructions wide opens up to microseconds.
//
// Compiled in when SPINDLE_TEST_HOOKS is set (CMake option of the same name,
// on in every build that builds the tests); elsewhere SPINDLE_PERTURB(...)
// is nothing. Compiled in but off, a point costs one relaxed load and a
// predictable branch.
//
// Replay. Each thread draws from its own generator, seeded from the run's
// seed and the order in which threads first reach a point, so a seed fixes
// every thread's sequence of decisions. It does not fix the OS's own
// scheduling: a seed that failed once reproduces the failure often, not
// always (tests run it several times).
//
// Turned on by a test (enable(), force()) or for a whole process by the
// environment: SPINDLE_PERTURB=<seed>[:<per_mille>].
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail::perturb {

enum class Point : std::uint8_t {
  kSubmitRemote,     // a task is in the injection queue; notify_work() still to come
  kSpawnRegistered,  // a spawned task is registered; the closed_ check still to come
  kShutdownClosed,   // shutdown set closed_; it has not looked at the registry yet
  kRegistryRemoved,  // a finished task has just left the registry
  kTimerCallback,    // a call_later entry fired and looked at closed(); not spawned yet
  kTimerArmed,       // a timer is in its wheel; parked workers not looked at yet
  kParkDecided,      // a worker counted itself parked; the queues not re-checked yet
  kParkSleep,        // a worker is about to sleep on its futex
  kWake,             // a waker won a task's notify transition; the task is not queued yet
  kClaimWon,         // a future is claimed; its value not written yet
  kCancelRequest,    // request_cancel() is about to fire the task's wait
  kSwitch,           // a fiber is about to switch away
  kBlockingWoken,    // a blocking-pool thread woke up; it has not taken a job yet
  kIoShortCount,     // a TCP read or write came back short; its clear still to come
  kIoDrained,        // a call found its socket drained; its wait still to come
  kCount
};

const char* name(Point p) noexcept;

// Random delays at every point: about `per_mille` passes in a thousand are
// delayed (yield, a spin of up to 50 us, or a sleep of up to 200 us).
void enable(std::uint64_t seed, unsigned per_mille = 30);
// Off, and every forced point cleared.
void disable();
// Every pass through `p` sleeps `sleep_us` microseconds (a regression test
// holds one window open); 0 clears it.
void force(Point p, unsigned sleep_us);
std::uint64_t seed() noexcept;
// Passes through `p` while perturbation was on (a test checks it reached
// the window it meant to widen).
std::uint64_t passes(Point p) noexcept;

#if SPINDLE_TEST_HOOKS
inline std::atomic<bool> g_on{false};
void pass_slow(Point p) noexcept;
inline void pass(Point p) noexcept {
  // relaxed: a hint; a pass that misses a concurrent enable() is harmless.
  if (__builtin_expect(g_on.load(std::memory_order_relaxed), 0)) {
    pass_slow(p);
  }
}
#endif

// RAII for tests: on for the scope, off after.
class Scope {
 public:
  explicit Scope(std::uint64_t seed, unsigned per_mille = 30) { enable(seed, per_mille); }
  ~Scope() { disable(); }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
};

}  // namespace spindle::detail::perturb

#if SPINDLE_TEST_HOOKS
#define SPINDLE_PERTURB(point) \
  ::spindle::detail::perturb::pass(::spindle::detail::perturb::Point::point)
#else
#define SPINDLE_PERTURB(point) ((void)0)
#endif
