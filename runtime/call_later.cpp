// TimerDomain and TimerHandle: arming across workers, call_later, the
// shutdown drain. The protocol (INV-CL1..CL4) is in call_later.hpp.
#include "call_later.hpp"

#include <thread>
#include <vector>

#include <spindle/errors.hpp>
#include <spindle/runtime.hpp>

#include "atomic.hpp"
#include "debug.hpp"
#include "perturb.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace spindle {
namespace detail {
namespace {

using Phase = CallLaterPhase;

// A worker took the entry out of its wheel (take_due) and runs this outside
// the lock.
void fire_call_later(TimerEntry* e) {
  auto* st = static_cast<CallLaterState*>(e);
  // INV-CL2: the worker unlinked the entry, so the reference is ours to drop
  // (at the end of this call).
  std::shared_ptr<CallLaterState> keep = std::move(st->self);
  Phase armed = Phase::kArmed;
  // A runtime that is closing runs no more timer callbacks (as a closed
  // asyncio loop): nothing spawned now could be awaited by shutdown.
  const Phase outcome = st->sched->closed() ? Phase::kCancelled : Phase::kFired;
  SPINDLE_PERTURB(kTimerCallback);
  // acq_rel: INV-CL1, decides fire vs cancel once; pairs with the CAS in
  // TimerHandle::cancel().
  if (st->phase.compare_exchange_strong(armed, outcome, std::memory_order_acq_rel) &&
      outcome == Phase::kFired) {
    try {
      st->sched->call_soon(std::move(st->fn));
    } catch (const InvalidStateError&) {
      // Closed since the look above (scheduler.hpp INV-S1): dropped, as a
      // callback of a closed loop.
    }
  }
}

}  // namespace

std::shared_ptr<CallLaterState> TimerDomain::call_later(std::int64_t delay_ns,
                                                        std::function<void()> fn) {
  if (sched_.closed()) {
    throw InvalidStateError("call_later on a runtime that is shut down");
  }
  auto s = std::make_shared<CallLaterState>();
  s->fn = std::move(fn);
  s->sched = &sched_;
  s->gate = gate_;
  s->deadline_ns = deadline_after_ns(now_ns(), delay_ns);  // saturating: max means never
  s->on_fire = &fire_call_later;
  if (s->deadline_ns == kNeverNs) {
    return s;  // never fires: nothing to arm (cancel() finds no wheel)
  }
  s->self = s;  // INV-CL2
  arm(s.get(), Worker::current());
  // INV-CL3: shutdown stops the workers, then drains the timers; we armed,
  // then look again (seq_cst StoreLoad on both sides, with the stopping_
  // store and fence in Scheduler::shutdown()): an entry armed too late is
  // taken back here rather than left in a wheel about to be destroyed.
  // Forbidden: we read stopping_ false while the drain, after shutdown's
  // fence, misses our entry in the wheel.
  full_fence();
  if (sched_.stopping_seq_cst()) {
    Phase armed = Phase::kArmed;
    // acq_rel: INV-CL1, as in fire_call_later(). A failed CAS means a worker
    // fired it before stopping (nobody else has the handle yet).
    if (s->phase.compare_exchange_strong(armed, Phase::kCancelled, std::memory_order_acq_rel) &&
        s->wheel->remove(s.get())) {
      s->self.reset();  // INV-CL2: we unlinked it; else the drain did
    }
    throw InvalidStateError("call_later on a runtime that is shut down");
  }
  return s;
}

void TimerDomain::arm(TimerEntry* e, Worker* w) {
  TimerWheel* wheel;
  if (w != nullptr && &w->scheduler() == &sched_) {
    wheel = &w->timers();
  } else {
    // relaxed: only spreads the arms; any worker's wheel is correct.
    wheel =
        &sched_.worker(remote_rr_.fetch_add(1, std::memory_order_relaxed) % sched_.num_workers())
             .timers();
  }
  const bool earliest = wheel->insert(e);
  SPINDLE_PERTURB(kTimerArmed);
  if (!earliest) {
    return;  // not a new earliest: whoever covers the earlier one covers it (INV-TK2)
  }
  // INV-TK1 (timer.hpp): our wheel's new next deadline, a fence, then the
  // parked workers' wake-up times (cover_deadline(), seq_cst loads).
  // Partner: Worker::park()'s parked_until_ store, fence, then wheel reads
  // (and Worker::find_work()'s kAwake, fence, wheels: INV-TK2). Forbidden:
  // we read a worker's stale parked_until while it reads the wheels
  // without our deadline, so nobody wakes for it.
  full_fence();
  sched_.cover_deadline(wheel->next_deadline());
}

void TimerDomain::drain() {
  // Timers that never fired: call_later entries still hold themselves.
  std::vector<Waiter*> wake;
  std::vector<TimerEntry*> callbacks;
  for (unsigned i = 0; i < sched_.num_workers(); ++i) {
    sched_.worker(i).timers().take_all(wake, callbacks);
  }
  SPINDLE_ASSERT(wake.empty(), "a task waiter outlived every task");
  for (TimerEntry* e : callbacks) {
    auto* st = static_cast<CallLaterState*>(e);
    // relaxed: INV-CL1, no worker is left to fire it, and a racing cancel()
    // learns the outcome from its own CAS; nothing is published with it.
    st->phase.store(Phase::kCancelled, std::memory_order_relaxed);
    std::shared_ptr<CallLaterState> drop = std::move(st->self);  // INV-CL2: take_all unlinked it
  }
  // INV-CL4: no TimerHandle::cancel() reaches a wheel from here on, so the
  // workers (and their wheels) may be destroyed once those inside are out.
  // seq_cst store, then the cancellers load below: our side of the
  // StoreLoad pair with TimerHandle::cancel()'s increment, then its
  // wheels_gone load. Forbidden: we read no canceller while a canceller
  // reads wheels_gone false and goes on into a wheel about to be destroyed.
  gate_->wheels_gone.store(true, std::memory_order_seq_cst);
  // seq_cst: the load after our flag store, the other half of the Dekker
  // pair with cancel()'s increment and flag load; its acquire pairs with
  // cancel()'s release decrement.
  while (gate_->cancellers.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// TimerHandle
// ---------------------------------------------------------------------------

bool TimerHandle::cancel() {
  if (!state_) {
    return false;
  }
  detail::CallLaterPhase armed = detail::CallLaterPhase::kArmed;
  // acq_rel: INV-CL1, decides cancel vs fire once (pairs with the CAS in
  // fire_call_later()).
  if (!state_->phase.compare_exchange_strong(armed, detail::CallLaterPhase::kCancelled,
                                             std::memory_order_acq_rel)) {
    return false;
  }
  detail::CancelGate& g = *state_->gate;
  // seq_cst: INV-CL4, StoreLoad with the wheels_gone load below; partner:
  // TimerDomain::drain()'s wheels_gone store, then its cancellers load.
  // Forbidden: we read wheels_gone false while the drain reads no
  // canceller and lets the wheels be destroyed under us.
  g.cancellers.fetch_add(1, std::memory_order_seq_cst);
  // seq_cst: INV-CL4, the load after our increment.
  if (!g.wheels_gone.load(std::memory_order_seq_cst) && state_->wheel != nullptr &&
      state_->wheel->remove(state_.get())) {
    std::shared_ptr<detail::CallLaterState> drop = std::move(state_->self);  // INV-CL2
  }
  // Else a firing worker, or the drain, took it out and drops `self`.
  // release: INV-CL4, our wheel accesses happen before the drain goes on.
  g.cancellers.fetch_sub(1, std::memory_order_release);
  return true;
}

bool TimerHandle::cancelled() const {
  // acquire: pairs with the release half of the CAS that made it
  // kCancelled; only the answer depends on it.
  return state_ &&
         state_->phase.load(std::memory_order_acquire) == detail::CallLaterPhase::kCancelled;
}

TimePoint TimerHandle::when() const {
  if (!state_) {
    return TimePoint{};
  }
  return TimePoint(Duration(state_->deadline_ns));
}

}  // namespace spindle
