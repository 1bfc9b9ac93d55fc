/* run_queue.pml -- runtime/run_queue.hpp RunQueue at kCapacity = 4.
 *
 * Owner: push_back, pop_front, and try_claim of its own entry followed by
 * reclaim_tail_holes (worker.cpp Worker::try_claim calls it when the
 * claimer runs on the owner); one stealer: steal_into (max_batch =
 * kRingCapacity / 2); one claimer thread: try_claim. head_ is one word
 * (steal, real): every read and CAS of it is one atomic step here.
 * Memory is sequentially consistent: INV-Q4's seq_cst StoreLoad pairing
 * (stealers_ vs tail_) is what SC gives. Indices are small integers (NPUSH
 * pushes never wrap): the C++ mod-2^32 differences become differences.
 *
 * Step granularity: a step that only the owner can observe, or whose
 * interleavings all commute with it, is one d_step (push_back; one CAS +
 * take of pop_front; reclaim's scan). The steps INV-Q4 is about stay
 * separate: the stealer's tail load, each slot it reads after its claim;
 * reclaim's tail exchange, stealers_ load, head load, restore.
 *
 * Checked: INV-Q1 after every owner operation and in pop_front
 * (SPINDLE_ASSERT "head passed tail"), the stealer's "steal cursor moved"
 * assertion, INV-Q2 (every pushed entry taken exactly once by pop, steal or
 * claim; checked at the end after draining), INV-Q3 (push never writes a
 * slot whose previous index a consumer has not passed: ghost busy[]).
 *
 * Planted bugs (spin -DPLANT_x):
 *   PLANT_PLAIN_TAKE          take() keeps a claimable entry's plain load
 *                             instead of exchange(0)                -> INV-Q2
 *   PLANT_PUSH_CHECKS_REAL    push_back's full test uses real, not steal
 *                                                                   -> INV-Q3
 *   PLANT_RECLAIM_IGNORES_STEALERS  reclaim lowers tail without the
 *                             stealers_ check                       -> INV-Q4/Q1
 *   PLANT_RECLAIM_NO_HEAD_RECHECK   reclaim trusts its first head read
 *                                                                   -> INV-Q1/Q2
 */

#define CAP 4        /* kCapacity */
#define MAXB 2       /* max_batch: kRingCapacity / 2 (Worker::steal_into) */
#ifndef NPUSH
#define NPUSH 5
#endif
#ifndef NSTEALS
#define NSTEALS 2
#endif
#define NCLAIMS 1
#define NOWNCLAIMS 2

byte slot[CAP];             /* slots_: entry * 2 | claimable, 0 = hole */
byte hsteal = 0, hreal = 0; /* head_ = steal:32 | real:32 */
byte tail = 0;              /* tail_ */
byte stealers = 0;          /* stealers_ */
/* ghosts */
byte taken = 0;             /* bit v: entry v was taken */
byte ntaken = 0, npushed = 0;  /* entries taken / pushed into the ring (not overflowed) */
byte busy = 0;              /* bit s: slot s's index not yet passed by a consumer */
byte fin = 0;               /* stealer + claimer finished */

#define INV_Q1 assert(hsteal <= hreal && hreal <= tail && tail - hsteal <= CAP)
/* ghost bookkeeping of a consumer that passes index i, having read w */
#define TAKEN(v) assert(!(taken & (1 << (v)))); taken = taken | (1 << (v)); ntaken++  /* INV-Q2 */
#define TOOK(i, w) busy = busy & ~(1 << ((i) % CAP)); \
                   if :: w != 0 -> TAKEN(w / 2) :: else -> skip fi

/* RunQueue::take of a non-claimable entry or a hole (plain load), or the
 * first half (the load) of a claimable one; needx: exchange still due.
 * The C++ leaves a non-claimable entry in its slot; nothing reads a slot
 * outside [real, tail) but a claimer, whose CAS wants the claimable tag:
 * zeroing it here only merges states. */
#define TAKE_LOAD(i, w, needx) w = slot[(i) % CAP]; needx = (w & 1); \
                   if :: !needx -> TOOK(i, w); slot[(i) % CAP] = 0 :: else -> skip fi
#ifndef PLANT_PLAIN_TAKE
#define TAKE_XCHG(i, w) w = slot[(i) % CAP]; slot[(i) % CAP] = 0; TOOK(i, w)  /* exchange(0) */
#else
#define TAKE_XCHG(i, w) TOOK(i, w)                   /* BUG: keeps the plain load */
#endif

/* RunQueue::try_claim(index, v): compare_exchange(v|1 -> 0). The claimer
 * knows v and its index (queue_slot_); picking the slot s instead covers
 * every claim that can succeed (each v is pushed once), and a failed CAS
 * changes nothing. */
#define ANY_CLAIMABLE ((slot[0] & 1) || (slot[1] & 1) || (slot[2] & 1) || (slot[3] & 1))
#define PICK(u) if :: slot[0] & 1 -> u = 0 :: slot[1] & 1 -> u = 1 \
                   :: slot[2] & 1 -> u = 2 :: slot[3] & 1 -> u = 3 fi
#define TRY_CLAIM(s, ok) \
  if :: slot[s] & 1 -> TAKEN(slot[s] / 2); slot[s] = 0; ok = true \
     :: else -> ok = false fi

proctype Owner() {
  byte v = 1, u, t, hr, w, got, low, nr, k, nown = 0;
  bool ok, needx, lowered, inflight, isempty;
  do
  :: v <= NPUSH ->                             /* RunQueue::push_back(v, claimable) */
     if :: ok = true :: ok = false fi;         /* claimable: a task nobody has started */
     d_step {
       t = tail;                               /* relaxed: we are its only writer */
#ifndef PLANT_PUSH_CHECKS_REAL
       k = hsteal;                             /* steal_part(head_.load(acquire)) */
#else
       k = hreal;                              /* BUG */
#endif
       if
       :: t - k >= CAP -> skip                 /* full: Worker::push_overflow */
       :: else ->
          assert(!(busy & (1 << (t % CAP))));  /* INV-Q3 */
          slot[t % CAP] = v * 2 + ok;          /* queue_slot, slot.store(release) */
          busy = busy | (1 << (t % CAP)); npushed++;
          tail = t + 1                         /* tail_.store(release) */
       fi;
       v++; t = 0; k = 0; ok = false
     }
  :: hreal != tail ->                          /* RunQueue::pop_front (a no-op when empty) */
     do
     :: d_step {                               /* head_ load + compare_exchange_weak */
          t = tail; isempty = (hreal == t);
          if
          :: !isempty ->
             assert(t > hreal);                /* "head passed tail (INV-Q1)" */
             hr = hreal;
             if :: hsteal == hr -> hsteal = hr + 1 :: else -> skip fi;
             hreal = hr + 1;
             TAKE_LOAD(hr, w, needx)           /* take(real) */
          :: else -> skip
          fi
        };
        if
        :: isempty -> break
        :: !isempty && needx -> d_step { TAKE_XCHG(hr, w) }
        :: else -> skip
        fi;
        if :: w != 0 -> got = w / 2; break :: else -> skip fi   /* a hole: next index */
     od;
     atomic { INV_Q1; got = 0; t = 0; hr = 0; w = 0; needx = false; isempty = false }
  :: atomic { nown < NOWNCLAIMS && ANY_CLAIMABLE ->  /* a task here runs a child inline */
       nown++; PICK(u); TRY_CLAIM(u, ok); u = 0 }     /* Worker::try_claim -> ring_.try_claim */
     if
     :: ok ->                                  /* current() == &owner: reclaim_tail_holes */
        d_step {
          t = tail; hr = hreal;                /* real_part(head_.load(acquire)) */
          if
          :: hr == t || slot[(t - 1) % CAP] != 0 -> lowered = false  /* nothing to trim */
          :: else ->
             lowered = true; low = t;          /* [low, t) are holes, low > real */
             do
             :: low - 1 > hr && slot[(low - 1) % CAP] == 0 -> low--
             :: else -> break
             od
          fi
        };
        if
        :: lowered && low != t ->
           tail = low;                         /* tail_.exchange(low, seq_cst) */
#ifndef PLANT_RECLAIM_IGNORES_STEALERS
           inflight = (stealers != 0);         /* stealers_.load(seq_cst) */
#endif
#ifndef PLANT_RECLAIM_NO_HEAD_RECHECK
           nr = hreal;                         /* head_.load(seq_cst) */
#else
           nr = hr;                            /* BUG: the first look */
#endif
           if
           :: inflight || low <= nr ->
              tail = t; lowered = false        /* INV-Q4: keep the holes */
           :: else ->
              d_step {                         /* ghost: [low, t) are gone */
                k = low;
                do :: k < t -> busy = busy & ~(1 << (k % CAP)); k++ :: else -> break od;
                t = low; k = 0
              }
           fi
        :: else -> skip
        fi;
        if
        :: lowered ->                          /* a lone hole at the head: pop it */
           d_step {
             if
             :: hreal == t - 1 && hsteal == t - 1 && slot[(t - 1) % CAP] == 0 ->
                hsteal = t; hreal = t; busy = busy & ~(1 << ((t - 1) % CAP))  /* CAS head */
             :: else -> skip
             fi
           }
        :: else -> skip
        fi
     :: else -> skip
     fi;
     atomic { INV_Q1; ok = false; t = 0; hr = 0; low = 0; nr = 0; lowered = false; inflight = false }
  :: v > NPUSH && fin == 2 -> break
  od;
  do                                           /* drain what is left */
  :: d_step {
       t = tail; isempty = (hreal == t);
       if
       :: !isempty -> hr = hreal; hsteal = hr + 1; hreal = hr + 1; TAKE_LOAD(hr, w, needx);
          if :: needx -> TAKE_XCHG(hr, w) :: else -> skip fi
       :: else -> skip
       fi
     };
     if :: isempty -> break :: else -> skip fi
  od;
  assert(hsteal == hreal && hreal == tail);
  assert(ntaken == npushed)                    /* INV-Q2: each pushed entry taken once */
}

/* RunQueue::steal_into, NSTEALS times */
proctype Stealer() {
  byte hs, hr, t, n, i, w, k = 0;
  bool ok, needx, gave_up;
  do
  :: k < NSTEALS ->
     k++;
     d_step {
       if
       :: hsteal != hreal || tail == hreal -> gave_up = true  /* the relaxed look first */
       :: else -> stealers++                  /* stealers_.fetch_add(seq_cst) (INV-Q4) */
       fi
     };
     do
     :: gave_up -> break
     :: else ->
        d_step {                              /* head_.load(seq_cst) */
          hs = hsteal; hr = hreal;
          if :: hs != hr -> stealers--; gave_up = true :: else -> skip fi  /* another stealer */
        };
        if :: gave_up -> break :: else -> skip fi;
        t = tail;                             /* tail_.load(seq_cst) */
        if
        :: t <= hr || t - hr > CAP -> stealers--; gave_up = true; break  /* none, or torn */
        :: else -> n = (t - hr) - (t - hr) / 2; if :: n > MAXB -> n = MAXB :: else -> skip fi
        fi;
        d_step {                              /* CAS [real, real+n), steal kept; leave_steal */
          if
          :: hsteal == hs && hreal == hr -> hreal = hr + n; ok = true; stealers--
          :: else -> ok = false               /* retry with a fresh head */
          fi
        };
        if :: ok -> break :: else -> skip fi
     od;
     if
     :: !gave_up ->
        i = 0;
        do
        :: i < n ->                           /* take(real + i) -> thief.push_local */
           d_step { TAKE_LOAD(hr + i, w, needx) };
           if :: needx -> d_step { TAKE_XCHG(hr + i, w) } :: else -> skip fi;
           i++
        :: else -> break
        od;
        atomic {                              /* CAS steal = real, until it holds */
          assert(hsteal == hr);               /* "steal cursor moved under a stealer" */
          hsteal = hreal
        }
     :: else -> skip
     fi;
     d_step { hs = 0; hr = 0; t = 0; n = 0; i = 0; w = 0; ok = false; needx = false; gave_up = false }
  :: else -> break
  od;
  fin++
}

/* a task on another thread awaiting an unstarted child: Worker::try_claim */
proctype Claimer() {
  byte u, k = 0;
  bool ok;
  do
  :: atomic { k < NCLAIMS && ANY_CLAIMABLE -> k++; PICK(u); TRY_CLAIM(u, ok); u = 0; ok = false }
  :: true -> break                             /* (a failed claim changes nothing) */
  od;
  fin++
}

init {
  atomic { run Owner(); run Stealer(); run Claimer() }
}
