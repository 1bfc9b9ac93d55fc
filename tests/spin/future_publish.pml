/* future_publish.pml -- future completion, abandoned claims, and the
 * cancellation hand-off to a task that awaits the future.
 *
 * Mirrors include/spindle/detail/future_core.hpp (INV-F1..F4),
 * runtime/future.cpp (claim_completion, abandon_claim, publish, cancel),
 * include/spindle/future.hpp (try_emplace_result, throwing-move branch),
 * runtime/wait.cpp (FutureCore::wait, link_unless_done, park_task,
 * unlink_waiter, await_publication, deliver_cancellation) and
 * runtime/task.cpp (TaskCore::request_cancel, INV-C1..C3).
 *
 * Processes: Setter (set_result whose value construction may throw, then
 * abandon_claim), Failer (set_exception racing it), NCANCEL Cancellers
 * (task.cancel() on the awaiting task), Task (a task blocked in
 * future.get()). Spin loops (claim_completion's retry, await_publication)
 * are blocking guards: a loop that would spin forever is a process that
 * never terminates, i.e. an invalid end state.
 * Suspension is the abstract wake token of task_word.pml (which checks the
 * real task word): suspend = wait for the one wake, wake = give it.
 *
 * Checked: INV-F1 (completes at most once); INV-F4 (a claim loser that says
 * "done" is right; nothing is wedged in kCompleting); INV-F3/no waiter left
 * parked (all processes terminate); INV-T3 (one wake per suspension); at the
 * end the future is done and the task saw what was published: the value if
 * kResult, Cancelled if kCancelled (a cancellation never leaves it pending).
 *
 * As written, Setter/Failer are the internal entry points try_emplace_result
 * / try_set_error (to_thread.hpp, combinators). -DCHECK_SETTABLE=1 puts the
 * public Future::set_result / set_exception in front: check_settable() as
 * future.cpp has it (status != kPending throws "already done"). That FAILS
 * INV-F4: it says "done" during another setter's claim, which may abandon;
 * the future is then pending with nobody to set it (NCANCEL=0: the awaiting
 * task hangs). -DCHECK_SETTABLE=2 (throw only on a final status) passes.
 *
 * Planted bugs (spin -DPLANT_x):
 *   PLANT_OLD_CLAIM             claim_completion() returns false on
 *                               kCompleting (the code before INV-F4)
 *   PLANT_NO_ABANDON            a throwing setter leaves the claim in place
 *   PLANT_PUBLISH_NO_FIRE       publish() unlinks waiters but fires none
 *   PLANT_LINK_NO_STATUS_CHECK  link_unless_done() links without re-checking
 *                               the status under the lock
 */

#define kPending    0
#define kCompleting 1
#define kResult     2
#define kException  3
#define kCancelled  4
#define VALUE 42
#ifndef NCANCEL
#define NCANCEL 2
#endif

#define O_NONE 0
#define O_VALUE 1      /* get() returned the value */
#define O_CANCELLED 2  /* get() rethrew the future's Cancelled */
#define O_THROWN 3     /* deliver_cancellation() threw with the future not done */
#define O_ERROR 4      /* get() rethrew the future's exception */

byte status = kPending; /* FutureCore::status_ */
bool flock = false;     /* FutureCore::lock_ */
bool tlock = false;     /* TaskCore::task_lock_ (of the awaiting task) */
bool linked = false;    /* the task's Waiter is in the future's list (Waiter::linked) */
bool wfired = false;    /* Waiter::state_ */
bool must_cancel = false, current_wait = false, awaiting = false;  /* under tlock */
bool task_done = false; /* the awaiting task's own future is done */
bool notified = false;  /* the task's pending wake (task_state.hpp kNotified) */
byte publishes = 0;     /* ghost */
byte value = 0;         /* the value slot, written by the claimer before publish */
byte outcome = O_NONE;  /* ghost: how the task's get() ended */
bool said_done = false; /* ghost: someone was told "already done" */

inline lock(l) { atomic { !l -> l = true } }  /* SpinLock::lock */
inline unlock(l) { l = false }                /* SpinLock::unlock */

/* wake_waiter_owner -> schedule_wake -> Scheduler::wake (transition_notify) */
inline wake_task() {
  atomic { assert(!notified); notified = true }  /* INV-T3: one wake per suspension */
}

/* future.cpp FutureCore::claim_completion */
inline claim_completion(ok) {
  do
  :: atomic {  /* status_.compare_exchange_strong(kPending -> kCompleting) */
       if
       :: status == kPending -> status = kCompleting; ok = true; seen = kPending
       :: else -> ok = false; seen = status
       fi
     };
     if
     :: ok -> break
     :: !ok && seen != kCompleting -> break  /* done for good */
     :: !ok && seen == kCompleting ->
#ifdef PLANT_OLD_CLAIM
        break                                /* BUG: reports "already done" */
#else
        status != kCompleting                /* INV-F4: wait the claimer out, decide again */
#endif
     fi
  od
}

/* future.cpp FutureCore::publish (after a successful claim) */
inline publish(final) {
  won = false;
  lock(flock);
  assert(publishes == 0); publishes++;       /* INV-F1 */
  status = final;                            /* release store, under lock_ */
  if
  :: linked ->                               /* take every linked waiter (INV-F3) */
     linked = false;
#ifndef PLANT_PUBLISH_NO_FIRE
     atomic { won = !wfired; wfired = true } /* w->try_fire() */
#endif
  :: else -> skip
  fi;
  unlock(flock);
  if
  :: won -> wake_task()                      /* wake_waiter_owner, outside the lock */
  :: else -> skip
  fi
}

/* future.cpp FutureCore::cancel on a plain future */
inline future_cancel(res) {
  if
  :: status >= kResult -> res = false; said_done = true  /* if (done()) return false */
  :: else ->
     claim_completion(ok);
     if
     :: ok -> publish(kCancelled); res = true
     :: else -> res = false; said_done = true
     fi
  fi;
  assert(res || status >= kResult)           /* INV-F4: "already done" is right */
}

/* Future::set_result -> FutureCore::check_settable (CHECK_SETTABLE) */
#if CHECK_SETTABLE == 1
#define SETTABLE (status == kPending)        /* future.cpp today: != kPending throws */
#else
#define SETTABLE (status < kResult)          /* only a final status is "done" */
#endif

/* future.hpp try_emplace_result (non-nothrow-move branch) */
proctype Setter() {
  bool ok, won;
  byte seen;
#ifdef CHECK_SETTABLE
  if
  :: !SETTABLE -> said_done = true; goto out /* throw InvalidStateError("already done") */
  :: else -> skip
  fi;
#endif
  if
  :: status >= kResult -> said_done = true   /* c->done(): return false */
  :: else ->
     claim_completion(ok);                   /* S made(...) is built first */
     if
     :: ok ->
        if
        :: value = VALUE; publish(kResult)   /* emplace(std::move(made)) succeeded */
        :: assert(status == kCompleting);    /* the move threw: */
#ifndef PLANT_NO_ABANDON
           assert(!said_done);               /* INV-F4: nobody was told "done" */
           status = kPending                 /* c->abandon_claim(); throw; */
#else
           skip                              /* BUG: claim left in place */
#endif
        fi
     :: else -> said_done = true             /* false: already done */
     fi
  fi;
out:
  skip
}

/* FutureCore::set_exception_checked (CHECK_SETTABLE), or try_set_error */
proctype Failer() {
  bool ok, won;
  byte seen;
#ifdef CHECK_SETTABLE
  if
  :: !SETTABLE -> said_done = true; goto out /* check_settable() throws */
  :: else -> skip
  fi;
#endif
  claim_completion(ok);
  if
  :: ok -> publish(kException)               /* set_error(e); publish(kException) */
  :: else -> said_done = true                /* false / throw: already done */
  fi;
out:
  skip
}

/* task.cpp TaskCore::request_cancel (one request) */
proctype Canceller() {
  bool target, fired, accepted, tried = false, ok, won;
  byte seen;
  lock(tlock);
  if
  :: task_done -> unlock(tlock); goto out    /* if (done()) return false */
  :: else -> unlock(tlock)                   /* ++num_cancels_ */
  fi;
  do
  :: target = false; fired = false;
     lock(tlock);
     if
     :: awaiting && !tried -> target = true  /* INV-C1: offer it to the awaited future */
     :: else ->
        must_cancel = true;                  /* INV-C2: set under task_lock_ ... */
        if
        :: current_wait -> atomic { fired = !wfired; wfired = true }  /* ... and fire the wait */
        :: else -> skip
        fi
     fi;
     unlock(tlock);
     if
     :: target ->
        future_cancel(accepted);             /* target->cancel(msg) */
        if
        :: accepted -> break
        :: else -> tried = true              /* refused (done): tried = target */
        fi
     :: else ->
        if
        :: fired -> wake_task()
        :: else -> skip
        fi;
        break
     fi
  od;
out:
  skip
}

/* wait.cpp FutureCore::wait() for a task, then take_result (get()) */
proctype Task() {
  bool pending, accepted, ok, won;
  byte seen;
  do
  :: status >= kResult -> break              /* while (!done()) */
  :: else ->
     lock(flock);                            /* link_unless_done */
     if
#ifndef PLANT_LINK_NO_STATUS_CHECK
     :: status >= kResult -> unlock(flock); break
#endif
     :: else -> wfired = false; linked = true; unlock(flock)  /* a fresh Waiter, linked */
     fi;
     /* park_task(self, w, this, "future") */
     lock(tlock);
     current_wait = true; awaiting = true; pending = must_cancel;
     unlock(tlock);
     if
     :: pending ->                           /* a request pending when the wait starts */
        future_cancel(accepted);             /* awaiting->cancel(msg) (INV-C1) */
        if
        :: accepted -> lock(tlock); must_cancel = false; unlock(tlock)
        :: else -> skip
        fi
     :: else -> skip
     fi;
     do                                      /* do suspend(kRelease) while (!w.fired()) */
     :: atomic { notified -> notified = false };
        if
        :: wfired -> break
        :: else -> skip
        fi
     od;
     lock(tlock);
     current_wait = false; awaiting = false;
     unlock(tlock);
     lock(flock); linked = false; unlock(flock);  /* unlink_waiter, always under the lock */
     status != kCompleting;                  /* await_publication */
     if
     :: status < kResult ->                  /* !done(): deliver_cancellation(self) */
        if
        :: must_cancel ->                    /* cancel_pending(), without the lock */
           lock(tlock);
           if
           :: must_cancel -> must_cancel = false; unlock(tlock);  /* INV-C3 */
              outcome = O_THROWN; goto finished                   /* throw Cancelled */
           :: else -> unlock(tlock)
           fi
        :: else -> skip
        fi
     :: else -> skip
     fi
  od;
  if                                         /* take_result -> check_result */
  :: status == kResult -> assert(value == VALUE); outcome = O_VALUE  /* INV-F2 */
  :: status == kCancelled -> outcome = O_CANCELLED
  :: status == kException -> outcome = O_ERROR
  fi;
finished:
  lock(tlock); task_done = true; unlock(tlock)  /* the task completes (publish of its own future) */
}

init {
  atomic {
    run Setter(); run Task();
#if NCANCEL > 0
    run Canceller();
#endif
#if NCANCEL > 1
    run Canceller();
#endif
#ifndef NO_FAILER
    run Failer()
#endif
  };
  _nr_pr == 1;
  assert(status >= kResult);                 /* not wedged, not left pending (INV-F4, INV-C1) */
  assert((status == kResult && outcome == O_VALUE) ||
         (status == kCancelled && outcome == O_CANCELLED) ||
         (status == kException && outcome == O_ERROR))  /* the waiter saw what was published */
}
