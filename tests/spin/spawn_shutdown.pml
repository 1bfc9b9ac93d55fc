/* spawn_shutdown.pml -- spawn from outside vs Runtime shutdown, on
 * x86-TSO (tso.pmh), plus a live task spawning a child (INV-R2).
 *
 * Mirrors runtime/scheduler.cpp Scheduler::spawn (closed() check, registry
 * add, full_fence, closed_ re-check, back out) and spawn_local from a task
 * (no check: INV-S1, a live spawner holds shutdown back), Scheduler::
 * shutdown (closed_.store(seq_cst), full_fence) -> cancel_all_and_wait
 * (registry_.snapshot()/empty_consistent(): every shard locked at once,
 * INV-R2), and runtime/registry.cpp Registry::add/remove under the shard
 * SpinLock (include/spindle/detail/spin_lock.hpp: lock = xchg, unlock =
 * plain release store).
 *
 * Shards: 0 = worker 0's, 1 = worker 1's, 2 = outside spawns. Parent: a
 * task registered in shard 1 (spawned on worker 1), now running on worker
 * 0: it spawns Child into shard 0, then finishes; Child later finishes.
 * Cancellation is abstracted: every live task finishes on its own.
 *
 * Checked (INV-S1): when shutdown decides "no live task", none is live,
 * and a spawner that saw closed_ false after registering never proceeds
 * after that decision (it must back out).
 *
 * Variants (spin -Dx):
 *   PLANT_NO_RECHECK      spawn() does not look at closed_ after registering
 *   PLANT_SHARD_BY_SHARD  shutdown locks and reads one shard at a time
 *   PLANT_RACY_NO_FENCE   shutdown reads the counts without locks
 *                         (Registry::live()) and spawn()'s full_fence is
 *                         gone (NO_CHILD: the TSO effect alone)
 *   PLANT_RACY_RELEASE_CLOSE  lock-free reads, closed_ stored with release
 *                         and shutdown's fence gone (NO_CHILD)
 * Probes, expected to PASS:
 *   RACY_READ NO_CHILD    lock-free reads, both fences kept: the fences do it
 *   NO_SPAWN_FENCE NO_SHUTDOWN_FENCE   both fences removed, locked reads:
 *                         the shard lock's xchg orders it (README)
 */

#define NPROC 3            /* 0 spawner, 1 shutdown, 2 parent/child's workers */
#define CLOSED 0           /* Scheduler::closed_ */
#define LK 1               /* + s: shard s's SpinLock */
#define CT 4               /* + s: shard s's count (guarded by its lock) */
#define NADDR 7
#include "tso.pmh"

#ifdef PLANT_RACY_NO_FENCE
#define RACY_READ
#define NO_SPAWN_FENCE
#define NO_CHILD
#endif
#ifdef PLANT_RACY_RELEASE_CLOSE
#define RACY_READ
#define RELEASE_CLOSE
#define NO_SHUTDOWN_FENCE
#define NO_CHILD
#endif

#define E_IDLE 0
#define E_REGISTERED 1
#define E_REFUSED 2        /* threw InvalidStateError (before or after registering) */
#define E_PROCEEDED 3      /* submitted: a worker will run it */
#define E_FINISHED 4
byte ext = E_IDLE;         /* ghosts */
bool parent_live = true, child_live = false, shut_done = false;

inline lock(p, s) { d_step { blen[p] == 0 && mem[LK + s] == 0 -> mem[LK + s] = 1 } }  /* exchange */
inline unlock(p, s) { ST(p, LK + s, 0) }                                /* store(release) */

/* Registry::add / remove: the count (and list) under the shard lock */
inline reg_add(p, s) { lock(p, s); LD(p, CT + s, c); ST(p, CT + s, c + 1); unlock(p, s) }
inline reg_remove(p, s) { lock(p, s); LD(p, CT + s, c); ST(p, CT + s, c - 1); unlock(p, s) }

proctype Spawner() {      /* Scheduler::spawn from a plain thread */
  short c;
  LD(0, CLOSED, c);                          /* if (closed()) throw */
  if
  :: c -> ext = E_REFUSED
  :: else ->
     ext = E_REGISTERED;
     reg_add(0, 2);                          /* registry_.add(t, num_workers()) */
#ifndef NO_SPAWN_FENCE
     FENCE(0);                               /* full_fence() */
#endif
     LD(0, CLOSED, c);                       /* closed_.load(seq_cst) */
#ifdef PLANT_NO_RECHECK
     c = 0;
#endif
     if
     :: c -> reg_remove(0, 2); ext = E_REFUSED  /* back out, throw */
     :: else ->
        atomic { assert(!shut_done); ext = E_PROCEEDED };  /* INV-S1 */
        /* submit_remote; a worker runs it: finish_task -> registry_.remove */
        ext = E_FINISHED;
        reg_remove(0, 2)
     fi
  fi
}

proctype Parent() {       /* a live task: spawn_local from a task, then finish */
  short c;
  child_live = true;
  reg_add(2, 0);                             /* registry_.add(child, w->index()): no check */
  parent_live = false;
  reg_remove(2, 1);                          /* finish_task(parent) */
  child_live = false;
  reg_remove(2, 0)                           /* the child runs (or is cancelled), finishes */
}

proctype Shutdown() {     /* Scheduler::shutdown -> cancel_all_and_wait */
  short a, b, c;
#ifndef RELEASE_CLOSE
  RMW(1) mem[CLOSED] = 1 END_RMW;            /* closed_.store(true, seq_cst): xchg */
#else
  ST(1, CLOSED, 1);                          /* closed_.store(true, release) */
#endif
#ifndef NO_SHUTDOWN_FENCE
  FENCE(1);                                  /* full_fence() */
#endif
  do
  :: /* "no live task" */
#if defined(RACY_READ)
     LD(1, CT + 0, a); LD(1, CT + 1, b); LD(1, CT + 2, c);   /* Registry::live() */
#elif defined(PLANT_SHARD_BY_SHARD)
     lock(1, 0); LD(1, CT + 0, a); unlock(1, 0);
     lock(1, 1); LD(1, CT + 1, b); unlock(1, 1);
     lock(1, 2); LD(1, CT + 2, c); unlock(1, 2);
#else
     lock(1, 0); lock(1, 1); lock(1, 2);     /* lock_all(): INV-R2, one instant */
     LD(1, CT + 0, a); LD(1, CT + 1, b); LD(1, CT + 2, c);
     unlock(1, 2); unlock(1, 1); unlock(1, 0);
#endif
     if
     :: a + b + c == 0 -> break
     :: else -> a = 0; b = 0; c = 0          /* request_cancel each; wait_empty_for; look again */
     fi
  od;
  atomic {
    shut_done = true;
    assert(!parent_live && !child_live && ext != E_PROCEEDED)  /* INV-S1 / INV-R2 */
  }
}

init {
  atomic {
#ifndef NO_CHILD
    mem[CT + 1] = 1;                         /* the parent, registered by worker 1 */
    run Parent();
#else
    parent_live = false;
#endif
    run Spawner(); run Shutdown();
    run Drainer(0); run Drainer(1); run Drainer(2)
  }
}
