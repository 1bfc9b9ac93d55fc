// A runtime's timers above the per-worker wheels (timer.hpp): which wheel an
// entry arms on, call_later callbacks and their TimerHandles, and what
// shutdown does with the timers that never fired.
//
// Roles.
//   - Any thread arms: a task's sleep or timed wait on its own worker's
//     wheel (wait.cpp), call_later on the calling worker's wheel or, from
//     outside the runtime, on a worker picked round-robin.
//   - A worker firing due timers (Worker::fire_timers) runs a call_later
//     entry's on_fire after taking it out of its wheel, outside the lock.
//   - Any thread holding a TimerHandle may cancel it, even after the runtime
//     is gone: the handle shares the entry and the CancelGate, never the
//     scheduler.
//   - Shutdown, after every worker stopped, drains the wheels (drain()).
//
// Per-field ownership of a CallLaterState:
//   fn, sched, gate       written by call_later() before the entry is armed,
//                         then read-only (the wheel lock publishes them);
//                         fn is moved out only by the winner of kArmed ->
//                         kFired (INV-CL1).
//   phase                 atomic; see the table below.
//   self                  set before arming; dropped once, by whoever takes
//                         the entry out of its wheel (INV-CL2).
//   TimerEntry's fields   the wheel's, under its lock (timer.hpp).
//
// Phase transitions. Every transition out of kArmed but the drain's is a CAS,
// so the phase has one modification order and exactly one of them wins;
// kFired and kCancelled are final.
//
//   from     to          who                                  op     order
//   kArmed   kFired      on_fire, runtime not closed          CAS    acq_rel
//   kArmed   kCancelled  on_fire, runtime closed              CAS    acq_rel
//   kArmed   kCancelled  TimerHandle::cancel()                CAS    acq_rel
//   kArmed   kCancelled  call_later() armed too late (CL3)    CAS    acq_rel
//   kArmed   kCancelled  drain(), every worker stopped        store  relaxed
//
// An entry whose deadline is never (kNeverNs) is not armed at all: it stays
// kArmed until cancel(), which finds no wheel.
//
// Invariants:
//   INV-CL1  phase leaves kArmed at most once, and only the CAS that moves
//            it to kFired runs the callback (through call_soon). The drain's
//            plain store cannot break this: it runs after the workers
//            stopped and on entries it took out of the wheels, so no on_fire
//            follows, and a cancel() racing it either won before (the store
//            writes the same value) or fails its CAS and returns false.
//   INV-CL2  an armed entry holds itself (`self`); whoever unlinks it from
//            its wheel — the firing worker (take_due), a cancel() or a
//            call_later() take-back whose remove() returned true, or the
//            drain (take_all) — drops `self`. Unlinking is under the wheel
//            lock and happens once, so `self` is dropped once.
//   INV-CL3  call_later() arms, fences, then reads the scheduler's stopping
//            flag; shutdown stores stopping, fences, joins the workers, then
//            drains. Dekker (seq_cst StoreLoad on both sides): either the
//            drain finds the entry, or call_later() sees stopping and takes
//            the entry back itself, so none is left in a wheel about to be
//            destroyed.
//   INV-CL4  a canceller touches a wheel only while counted in the gate's
//            `cancellers` and after reading `wheels_gone == false`; the
//            drain sets `wheels_gone`, then waits for `cancellers` to drain
//            before the wheels can be destroyed. seq_cst on the increment,
//            the flag store and both loads (StoreLoad on each side, Dekker):
//            either the canceller sees the flag, or the drain sees it
//            counted.
//
// Rejected designs.
//   - cancel() asking the scheduler whether its wheels still exist: after
//     ~Runtime there is no scheduler to ask; the gate is the only shared
//     state that outlives it.
//   - Cancelling by a flag alone, leaving the entry in the wheel until due:
//     a cancelled far-future timer would keep its callback's captures alive
//     until then.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "timer.hpp"

namespace spindle::detail {

class Scheduler;
class Worker;

// Outlives the scheduler, so that a TimerHandle::cancel() racing (or
// following) ~Runtime can tell whether the timer wheels still exist (INV-CL4).
struct CancelGate {
  std::atomic<int> cancellers{0};
  std::atomic<bool> wheels_gone{false};
};

enum class CallLaterPhase : std::uint8_t {
  kArmed,      // in a wheel (or never due); the only state that can change
  kFired,      // on_fire won: the callback was handed to call_soon
  kCancelled,  // cancel() won, or the runtime was closing or shut down
};
// One byte with a lock-free CAS: fire and cancel decide the phase without
// a lock (INV-CL1), and a cancel() may run after ~Runtime.
static_assert(sizeof(CallLaterPhase) == 1 && std::atomic<CallLaterPhase>::is_always_lock_free,
              "the phase is one lock-free byte");

struct CallLaterState : TimerEntry {
  std::function<void()> fn;
  Scheduler* sched = nullptr;
  std::shared_ptr<CancelGate> gate;
  std::atomic<CallLaterPhase> phase{CallLaterPhase::kArmed};  // INV-CL1
  std::shared_ptr<CallLaterState> self;  // INV-CL2: keeps the entry alive while in a wheel
};

// Owned by the Scheduler, one per runtime.
class TimerDomain {
 public:
  explicit TimerDomain(Scheduler& sched) noexcept : sched_(sched) {}
  TimerDomain(const TimerDomain&) = delete;
  TimerDomain& operator=(const TimerDomain&) = delete;

  // Runtime::call_later: runs `fn` (through call_soon) after `delay_ns`,
  // unless cancelled first. Throws InvalidStateError once the runtime is
  // closed. Any thread.
  std::shared_ptr<CallLaterState> call_later(std::int64_t delay_ns, std::function<void()> fn);

  // Arms `e` on worker `w`'s wheel if `w` is one of ours (the caller's own
  // worker, already looked up; nullptr off the runtime), else on a worker
  // picked round-robin; kicks a parked worker if no idle worker would wake
  // in time for it (timer.hpp INV-TK1). Any thread, while the workers run.
  void arm(TimerEntry* e, Worker* w);

  // Shutdown, after every worker stopped and before the wheels are
  // destroyed: takes every entry still armed out of the wheels, cancels and
  // drops the call_later ones (INV-CL1, INV-CL2), then closes the gate and
  // waits for cancellers still inside (INV-CL4). Once.
  void drain();

 private:
  Scheduler& sched_;
  std::atomic<unsigned> remote_rr_{0};  // round-robin for arms from outside
  std::shared_ptr<CancelGate> gate_ = std::make_shared<CancelGate>();
};

}  // namespace spindle::detail
