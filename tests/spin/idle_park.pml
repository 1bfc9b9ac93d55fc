/* idle_park.pml -- no lost wakeup between an outside pusher and parking
 * workers, on x86-TSO (tso.pmh).
 *
 * Mirrors runtime/idle.hpp/idle.cpp (INV-I1..I3: should_wake,
 * worker_to_notify, transition_to_searching/from_searching/to_parked,
 * unpark_worker_by_id), runtime/worker.cpp (Worker::find_work,
 * take_injected, next_local, search, spin_then_search, park), runtime/
 * scheduler.cpp (Scheduler::submit_remote, notify_work, any_stealable_work),
 * runtime/inject_queue.cpp (InjectQueue::push/pop_bulk, len_) and
 * runtime/parker.cpp (Parker::park/unpark, the permit). No timers, no
 * shutdown: parked_until_ is kept only as the seq_cst store it is.
 *
 * Processes: Pusher (a plain thread: Runtime::spawn -> submit_remote, NPUSH
 * tasks), two Workers, one Drainer each. Every mu_ critical section is one
 * RMW step: its lock and unlock are lock-prefixed and only state_ (itself
 * RMW-only) is read outside it. Rings hold what take_injected(true) moves
 * locally; the ring protocol itself is run_queue.pml's.
 *
 * Checked: INV-I3 -- when nothing can move any more (timeout: workers
 * asleep in futex_wait, buffers drained), every pushed task was taken.
 *
 * Variants (spin -Dx):
 *   PLANT_NO_RECHECK        park() sleeps without re-checking the queues
 *   PLANT_NO_PERMIT         Parker::unpark only wakes a thread already in
 *                           futex_wait (no permit for a park() to come)
 *   PLANT_NOTIFY_NO_FENCE   should_wake() without its full_fence, and the
 *                           len_ bump relaxed. On x86 `lock xadd` would still
 *                           fence; C++ (and ARM) give a relaxed RMW no
 *                           StoreLoad order, modelled as a buffered store
 *                           (NPUSH = 1: the pusher is its only writer).
 * Probes, expected to PASS:
 *   RELAXED_LEN             the relaxed len_ bump alone: the fence saves it
 *   NO_NOTIFY_FENCE NO_PARK_FENCE   both INV-I3 full_fence() calls removed,
 *                           nothing else: on x86-TSO the seq_cst RMWs on
 *                           len_ and state_ already drain (README).
 */

#define NPROC 3            /* 0 pusher, 1 + w worker w */
#define QTAIL 0            /* moodycamel producer tail: plain store by the pusher */
#define QDEQ 1             /* moodycamel dequeue count: RMW by consumers */
#define LEN 2              /* InjectQueue::len_ */
#define SRCH 3             /* Idle::state_ num_searching (one word with UNPK) */
#define UNPK 4             /* Idle::state_ num_unparked */
#define PST 5              /* + w: Parker::state_ of worker w */
#define RT 7               /* + w: worker w's ring tail_ (owner's plain store) */
#define RH 9               /* + w: worker w's ring head_ (CAS) */
#define NADDR 11
#include "tso.pmh"

#define NW 2
#ifdef PLANT_NOTIFY_NO_FENCE
#define NO_NOTIFY_FENCE
#define RELAXED_LEN
#endif
#ifdef RELAXED_LEN
#define NPUSH 1
#endif
#ifndef NPUSH
#define NPUSH 2
#endif
#define P_EMPTY 0
#define P_PARKED 1
#define P_NOTIFIED 2

byte sl0 = 0, sl1 = 0, nsl = 0;  /* Idle::sleepers_ (worker + 1), oldest first */
byte taken = 0;                  /* ghost: tasks a worker took to run */

/* Parker::unpark (target tw) */
inline unpark(p, tw) {
#ifndef PLANT_NO_PERMIT
  RMW(p) mem[PST + tw] = P_NOTIFIED END_RMW  /* exchange(kNotified); futex_wake if kParked */
#else
  RMW(p) if :: mem[PST + tw] == P_PARKED -> mem[PST + tw] = P_NOTIFIED :: else -> skip fi END_RMW
#endif
}

/* Scheduler::notify_work -> Idle::worker_to_notify */
inline notify_work(p) {
#ifndef NO_NOTIFY_FENCE
  FENCE(p);                                   /* should_wake: full_fence() (INV-I3) */
#endif
  d_step { ok = (mem[SRCH] == 0 && mem[UNPK] < NW) };  /* state_.load(seq_cst) */
  if
  :: ok ->
     RMW(p)                                   /* lock mu_; should_wake() again; ... */
       if
       :: mem[SRCH] == 0 && mem[UNPK] < NW && nsl > 0 ->
          mem[UNPK]++; mem[SRCH]++;           /* comes back searching (INV-I1) */
          if                                  /* sleepers_.back(), pop_back() */
          :: nsl == 2 -> tw = sl1 - 1; sl1 = 0
          :: else -> tw = sl0 - 1; sl0 = 0
          fi;
          nsl--; found = true
       :: else -> found = false
       fi
     END_RMW;                                 /* ... unlock mu_ */
     if :: found -> unpark(p, tw) :: else -> skip fi
  :: else -> skip
  fi
}

proctype Pusher() {
  byte i = 0, tw;
  short a;
  bool ok, found;
  do
  :: i < NPUSH ->                             /* Scheduler::submit_remote(t) */
     LD(0, QTAIL, a); ST(0, QTAIL, a + 1);     /* inject_.push: moodycamel enqueue */
#ifndef RELAXED_LEN
     RMW(0) mem[LEN]++ END_RMW;                /* len_.fetch_add(1, seq_cst): lock xadd */
#else
     LD(0, LEN, a); ST(0, LEN, a + 1);         /* relaxed bump, see header */
#endif
     notify_work(0);
     i++; a = 0; tw = 0; ok = false; found = false
  :: else -> break
  od
}

/* worker.cpp Worker::push_local -> ring push_back: slot, then tail (plain) */
#define RING_PUSH LD(p, RT + w, t); ST(p, RT + w, t + 1)

/* Worker::take_injected(batch) -> InjectQueue::pop_bulk */
inline take_injected(batch) {
  LD(p, LEN, a);                              /* q.len() == 0: return nullptr */
  if
  :: a > 0 ->
     want = 1;
     if :: batch -> want = a / NW + 1 :: else -> skip fi;  /* fair share (< kRingCapacity/2) */
     LD(p, LEN, a);                           /* pop_bulk's relaxed hint */
     if
     :: a > 0 ->
        RMW(p)                                /* try_dequeue_bulk */
          n = mem[QTAIL] - mem[QDEQ]; if :: n > want -> n = want :: else -> skip fi;
          mem[QDEQ] = mem[QDEQ] + n
        END_RMW;
        if
        :: n > 0 ->
           RMW(p) mem[LEN] = mem[LEN] - n END_RMW;  /* len_.fetch_sub */
           do :: n > 1 -> RING_PUSH; n-- :: else -> break od;  /* push_local(buf[1..n)) */
           got = true                         /* note_pick(buf[0]) */
        :: else -> skip
        fi
     :: else -> skip
     fi
  :: else -> skip
  fi
}

/* Worker::next_local -> ring pop_front */
inline next_local() {
  LD(p, RH + w, h); LD(p, RT + w, t);
  if
  :: h != t ->
     RMW(p) if :: mem[RH + w] == h -> mem[RH + w] = h + 1; got = true :: else -> skip fi END_RMW
  :: else -> skip
  fi
}

/* Worker::search: transition_to_searching, steal_into the other worker,
 * then take_injected(true) */
inline search() {
  if
  :: !searching ->
     RMW(p) if :: 2 * mem[SRCH] >= NW -> ok = false :: else -> mem[SRCH]++; ok = true fi END_RMW;
     searching = ok                           /* INV-I2 */
  :: else -> skip
  fi;
  if
  :: searching ->
     LD(p, RH + 1 - w, h); LD(p, RT + 1 - w, t);  /* victim's head, tail */
     if
     :: t - h > 0 ->
        n = (t - h) - (t - h) / 2;
        RMW(p) if :: mem[RH + 1 - w] == h -> mem[RH + 1 - w] = h + n; ok = true :: else -> ok = false fi END_RMW;
        if
        :: ok -> do :: n > 1 -> RING_PUSH; n-- :: else -> break od; got = true  /* then next_local */
        :: else -> skip
        fi
     :: else -> skip
     fi;
     if :: !got -> take_injected(true) :: else -> skip fi
  :: else -> skip
  fi
}

/* Scheduler::any_stealable_work: inject_.len(), then every ring */
inline any_stealable() {
  LD(p, LEN, a); ok = (a > 0);
  LD(p, RH + 0, h); LD(p, RT + 0, t); ok = ok || (t != h);
  LD(p, RH + 1, h); LD(p, RT + 1, t); ok = ok || (t != h)
}

proctype Worker(byte w) {
  byte p = w + 1, tw, old;
  short a, h, t, n, want;
  bool searching = false, got, ok, found, was, there;
  do
  :: /* Worker::find_work (no timers, never stopping) */
     take_injected(false);
     if :: !got -> next_local() :: else -> skip fi;
     if :: !got -> take_injected(true) :: else -> skip fi;
     if :: !got -> search() :: else -> skip fi;
     if
     :: !got && searching ->                  /* spin_then_search: one look, then search */
        any_stealable(); if :: ok -> search() :: else -> skip fi
     :: else -> skip
     fi;
     if
     :: got ->
        assert(taken < NPUSH); taken++;       /* the task runs */
        if
        :: searching ->                       /* the last searcher hands the baton on */
           searching = false;
           RMW(p) ok = (mem[SRCH] == 1); mem[SRCH]-- END_RMW;  /* transition_from_searching */
           if :: ok -> notify_work(p) :: else -> skip fi
        :: else -> skip
        fi
     :: else ->                               /* Worker::park */
        was = searching; searching = false;
        RMW(p)                                /* transition_to_parked, under mu_ */
          mem[UNPK]--; if :: was -> mem[SRCH]-- :: else -> skip fi;
          if :: nsl == 0 -> sl0 = w + 1 :: else -> sl1 = w + 1 fi; nsl++
        END_RMW;
        FENCE(p);                             /* parked_until_.store(kNever, seq_cst): xchg */
#ifndef NO_PARK_FENCE
        FENCE(p);                             /* full_fence(): INV-I3, parking side */
#endif
        any_stealable();                      /* the re-check */
#ifdef PLANT_NO_RECHECK
        ok = false;
#endif
        if
        :: ok -> skip                         /* work: do not sleep */
        :: else ->                            /* Parker::park(-1) */
           RMW(p) old = mem[PST + w]; mem[PST + w] = P_EMPTY END_RMW;  /* exchange(kEmpty) */
           if
           :: old == P_NOTIFIED -> skip       /* a permit: return at once */
           :: else ->
              RMW(p)
                if :: mem[PST + w] == P_EMPTY -> mem[PST + w] = P_PARKED; ok = true
                   :: else -> ok = false fi   /* CAS kEmpty -> kParked */
              END_RMW;
              if
              :: !ok -> ST(p, PST + w, P_EMPTY)  /* take the permit: store(kEmpty) */
              :: ok ->
end_park:        mem[PST + w] != P_PARKED;       /* futex_wait(&state_, kParked) */
                 RMW(p) mem[PST + w] = P_EMPTY END_RMW
              fi
           fi
        fi;
        RMW(p)                                /* unpark_worker_by_id, under mu_ */
          if
          :: sl0 == w + 1 -> sl0 = sl1; sl1 = 0; nsl--; mem[UNPK]++; there = true
          :: sl1 == w + 1 -> sl1 = 0; nsl--; mem[UNPK]++; there = true
          :: else -> there = false
          fi
        END_RMW;
        searching = !there                    /* a notifier took us out: counted searching */
     fi;
     d_step { tw = 0; old = 0; a = 0; h = 0; t = 0; n = 0; want = 0;
              got = false; ok = false; found = false; was = false; there = false }
  od
}

/* INV-I3: no state where nothing can move with a pushed task not taken */
active proctype Checker() {
end_check:
  timeout -> assert(taken == NPUSH)
}

init {
  atomic {
    mem[UNPK] = NW;                           /* Idle::Idle: every worker unparked */
    run Pusher(); run Worker(0); run Worker(1);
    run Drainer(0); run Drainer(1); run Drainer(2)
  }
}
