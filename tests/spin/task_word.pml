/* task_word.pml -- the task scheduling word and one-shot Waiters.
 *
 * Mirrors runtime/task_state.hpp (transition_to_running, transition_notify,
 * transition_release, yield = no transition, transition_complete),
 * runtime/waiter.hpp (Waiter::try_fire, one CAS kArmed->kFired),
 * runtime/worker.cpp (Worker::thread_main/suspend/switch_away/
 * run_post_action) and runtime/wait.cpp park_task's
 *   `do suspend(kRelease) while (!w.fired())` loop.
 *
 * One task, NWORKERS workers sharing one abstract run queue (the LIFO slot,
 * rings, overflow and injection queue all behave alike here: an entry is
 * popped by exactly one worker), NWAKERS firers that race for each Waiter.
 * The task waits NWAITS times; after each wait it may yield. Each wait may
 * meet a pending cancellation, in which case the task itself races the
 * firers with w.try_fire() (wait.cpp park_task, awaiting == nullptr).
 * The fiber is a separate process: `on_cpu` is true from the moment a worker
 * switches to it until its switch away has completed.
 *
 * Checked: INV-T1 (one queue slot; to_running's SPINDLE_ASSERT), INV-T2
 * (never resumed while still running/switching elsewhere), INV-T3 (each
 * fired Waiter gives exactly one wake, and the task resumes only after its
 * Waiter fired), INV-T5 (a yielded entry is taken as is), no lost wake
 * (the task always completes: any stuck task is an invalid end state).
 *
 * Planted bugs (spin -DPLANT_x):
 *   PLANT_RELEASE_NO_REQUEUE     release() ignores kNotified      -> lost wake
 *   PLANT_RELEASE_BEFORE_SWITCH  suspend() releases before the switch away
 *                                completes (no PostAction)        -> double run
 *   PLANT_NOTIFY_RUNNING_SUBMITS notify submits a running task    -> INV-T1/T2
 *   PLANT_SKIP_SUSPEND_IF_FIRED  park_task skips suspend when another firer
 *                                already won                      -> stale wake
 */

#define kRunning  1
#define kNotified 2
#define kComplete 4
#define kStarted  8

#ifndef NWORKERS
#define NWORKERS 3
#endif
#ifndef NWAKERS
#define NWAKERS 2
#endif
#ifndef NWAITS
#define NWAITS 3
#endif

#define P_NONE 0      /* PostAction::kNone */
#define P_RELEASE 1   /* PostAction::kRelease */
#define P_YIELD 2     /* PostAction::kYield */
#define P_FINISHED 3  /* fiber_main after run_root: kRecycleFiber */

byte word = kNotified;  /* task_state.hpp initial_task_word() (refcount not modelled) */
byte inq = 1;           /* run-queue entries holding the task: Scheduler::spawn's submit */
bool yielded = false;   /* ghost: the queued entry was pushed by PostAction::kYield */
bool on_cpu = false;    /* ghost: the fiber executes (or is mid-switch) on some thread */
byte runner = 0;        /* worker (1-based) whose thread runs the fiber; 0 none */
byte post[NWORKERS + 1];/* Worker::post_ of each worker */
byte wgen = 0;          /* which Waiter (one per park_task call) */
bool linked = false;    /* the Waiter is published to the firers (future list/timer/cancel slot) */
bool wfired = false;    /* Waiter::state == kFired */

/* Worker::push_local / Scheduler::submit_remote: the task enters a queue */
inline push() {
  assert(inq == 0);  /* INV-T1: at most one run-queue slot */
  assert((yielded -> ((word & (kRunning | kNotified)) == kRunning)
                   : ((word & (kRunning | kNotified)) == kNotified)));  /* INV-T1 / INV-T5 */
  inq++
}

/* task_state.hpp transition_notify + scheduler.cpp Scheduler::wake (one RMW) */
inline notify() {
  atomic {
    assert(!(word & (kNotified | kComplete)));  /* INV-T3: the one wake of this suspension */
    if
    :: word & (kNotified | kComplete) -> skip        /* NotifyResult::kNothing */
#ifndef PLANT_NOTIFY_RUNNING_SUBMITS
    :: (word & (kNotified | kComplete)) == 0 && (word & kRunning) ->
       word = word | kNotified                        /* INV-T2: the owner re-queues it */
    :: (word & (kNotified | kComplete | kRunning)) == 0 ->
#else
    :: (word & (kNotified | kComplete)) == 0 ->       /* BUG: submits even when running */
#endif
       word = word | kNotified; push()                /* kSubmit: Scheduler::wake pushes */
    fi
  }
}

/* transition_release (fetch_and ~kRunning) + the kSubmit branch of
 * worker.cpp run_post_action case kRelease */
inline release() {
  atomic {
    prev = word; word = word & ~kRunning;
    assert(prev & kRunning);  /* SPINDLE_ASSERT in transition_release */
#ifndef PLANT_RELEASE_NO_REQUEUE
    if
    :: prev & kNotified -> push()  /* woken while switching away (INV-T2) */
    :: else -> skip
    fi
#endif
  }
}

/* worker.cpp Worker::suspend -> switch_away; resumes when a worker switches back */
inline suspend(action) {
#ifdef PLANT_RELEASE_BEFORE_SWITCH
  if
  :: action == P_RELEASE -> release(); post[runner] = P_NONE  /* BUG: still on our stack */
  :: else -> post[runner] = action
  fi;
#else
  post[runner] = action;           /* post_ = action (Worker::suspend) */
#endif
  atomic { on_cpu = false; runner = 0 };  /* switch_context done: off this stack */
  on_cpu                                  /* a worker switched back to us */
}

proctype Task() {
  byte i = 0, prev;
  bool by_us;
  on_cpu;  /* first run: thread_main/fiber_main -> run_root -> execute_task */
  do
  :: i < NWAITS ->
     /* park_task steps 1-3: a fresh Waiter, published to every source */
     atomic { wgen++; wfired = false; linked = true };
     by_us = false;
     if
     :: atomic { !wfired -> wfired = true; by_us = true }  /* pending cancel: fired_by_us = w.try_fire() */
     :: skip
     fi;
     if
#ifdef PLANT_SKIP_SUSPEND_IF_FIRED
     :: !by_us && !wfired ->  /* BUG: another firer won: "no need" to suspend */
#else
     :: !by_us ->             /* suspend even if another firer already won (INV-T3) */
#endif
        do
        :: suspend(P_RELEASE);
           assert(wfired);  /* INV-T3: resumed only by this Waiter's wake */
           if
           :: wfired -> break  /* while (!w.fired()) */
           :: else -> skip
           fi
        od
     :: else -> skip
     fi;
     linked = false;  /* step 5: unlinked from every source, under its lock */
     i++;
     if
     :: suspend(P_YIELD)  /* spindle::yield(): PostAction::kYield, no transition (INV-T5) */
     :: skip
     fi
  :: else -> break
  od;
  /* finish_task -> transition_complete (kRunning -> kComplete) */
  atomic { word = (word & ~(kRunning | kNotified)) | kComplete };
  post[runner] = P_FINISHED;
  atomic { on_cpu = false; runner = 0 }  /* fiber_main switches away for good */
}

proctype Worker(byte me) {
  byte prev;
end_idle:
  do
  :: atomic { inq > 0 -> inq-- };  /* next_local / take_injected / steal: one entry */
     /* worker.cpp note_pick -> transition_to_running */
     atomic {
       if
       :: (word & (kRunning | kNotified)) == kRunning ->
          assert(yielded); yielded = false  /* a yielded task, still ours (INV-T5) */
       :: else ->
          assert((word & kNotified) && !(word & (kRunning | kComplete)));  /* INV-T1 */
          word = (word & ~kNotified) | kRunning | kStarted
       fi
     };
     /* thread_main: switch_context(main_ctx_, fiber) */
     atomic { assert(!on_cpu); on_cpu = true; runner = me };  /* INV-T2 */
     runner != me;  /* the fiber switched away: back on this thread's stack */
     /* Worker::run_post_action */
     if
     :: post[me] == P_RELEASE -> release()
     :: post[me] == P_YIELD -> atomic { yielded = true; push() }  /* push_local, no RMW (INV-T5) */
     :: post[me] == P_FINISHED || post[me] == P_NONE -> skip
     fi;
     post[me] = P_NONE
  od
}

/* a firer: a completing future (publish), a timer (take_due), a canceller
 * (request_cancel): finds the Waiter under its source's lock, try_fire(),
 * and the winner alone calls wake_waiter_owner -> Scheduler::wake */
proctype Waker() {
  byte last = 0;
  bool won;
end_w:
  do
  :: atomic { linked && wgen != last -> last = wgen; won = !wfired; wfired = true };  /* INV-W1 CAS */
     if
     :: won -> notify()
     :: else -> skip
     fi
  od
}

init {
  byte k;
  atomic {
    run Task();
    k = 1;
    do :: k <= NWORKERS -> run Worker(k); k++ :: else -> break od;
    k = 0;
    do :: k < NWAKERS -> run Waker(); k++ :: else -> break od
  }
}
