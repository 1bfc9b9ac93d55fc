// Not API. The building block of every lock and queue in sync.hpp and
// queue.hpp: a FIFO of blocked waiters, each waiting on its own
// Future<void>, as asyncio's locks keep a deque of futures.
//
// Roles
//   waiter   the task or plain thread that blocks: it builds a WaitNode on
//            its own stack (allocating the node's future only now, when it
//            must block), links it under the primitive's lock, and waits
//            with Future<void>::get() — which suspends a task and blocks a
//            plain thread.
//   granter  whoever hands the waiter what it waits for (unlock, release,
//            put, set, notify, shutdown): under the primitive's lock it pops
//            the node and claims the node's future (claim_completion, one
//            CAS), writes any payload into the node, and after dropping the
//            lock publishes the future (the wake-up) through a WakeBatch.
//   canceller  cancelling a task blocked in get() cancels the node's future
//            (task.cpp INV-C1): it, too, claims the future.
//
// Invariants
//   INV-L1  The first claim of a node's future decides: a granter's claim
//           means "granted", a cancel's claim means "not granted". Both go
//           through FutureCore::claim_completion(), so exactly one wins, and
//           the loser sees it (claim fails / cancel() returns false). A
//           granter records its win in node.granted under the primitive's
//           lock; a waiter whose wait ended abnormally (get() threw,
//           wait_for() timed out) reads it in revoke(), under the same lock.
//           (The future's status alone cannot tell: a second cancel request
//           may find the future mid-cancel, kCompleting, and wake the task.)
//   INV-L2  A node is linked in a list only under the primitive's lock, and
//           leaves it under that lock: popped by a granter, or removed by
//           its waiter in revoke(). The waiter's frame outlives every access
//           to the node, because (a) granters touch nodes only under the
//           lock and (b) the waiter's exit path takes the lock (revoke) or
//           has seen the future done — which happens after the granter's
//           critical section. After the lock is dropped, the granter holds
//           only a counted reference to the future core, never the node.
//   INV-L3  A granted waiter whose get() still throws Cancelled (the
//           cancel arrived while the future was claimed but not yet
//           published, so the core delivers it as a task cancellation) must
//           pass the grant on — re-release the permit, hand the mutex on,
//           put the item back — before it rethrows: nothing is lost and no
//           wake-up is stolen. A granted waiter whose get() returns keeps the
//           grant; its cancellation is delivered at its next suspension point
//           (a done future cannot be cancelled).
//
// Rejected designs:
//   - One future shared by all waiters (e.g. per Event generation):
//     cancelling one waiting task cancels the future it awaits (INV-C1), so
//     every other waiter would see Cancelled too.
//   - Publishing under the lock: the wake path (run-queue push, maybe a
//     futex wake) would lengthen every critical section.
//   - Using the runtime's private Waiter directly: one allocation less per
//     blocking wait, but it would duplicate park_task's cancellation
//     protocol outside the core; the pooled Future<void> costs ~tens of ns.
//
// Memory ordering: a payload written into a node by the granter under the
// lock is visible to the waiter after get() returns (publish() is a release,
// get() an acquire), and to a revoking waiter through the lock.
#pragma once

#include <cstddef>
#include <vector>

#include "../future.hpp"
#include "future_core.hpp"
#include "intrusive_list.hpp"
#include "spin_lock.hpp"

namespace spindle::detail {

struct WaitNode {
  Future<void> fut;          // allocated when the node is made: only on a blocking path
  WaitNode* prev = nullptr;  // WaitList links (intrusive_list.hpp), under the primitive's lock
  WaitNode* next = nullptr;
  bool linked = false;   // in a WaitList (under the primitive's lock)
  bool granted = false;  // a granter claimed `fut` (under the primitive's lock)
};

// An intrusive doubly linked FIFO of WaitNodes, with each node's `linked`
// flag and a count. Every method runs under the owning primitive's lock
// (INV-L2).
class WaitList {
 public:
  bool empty() const noexcept { return list_.empty(); }
  std::size_t size() const noexcept { return size_; }
  void push_back(WaitNode* n) noexcept {
    list_.push_back(n);
    n->linked = true;
    ++size_;
  }
  void push_front(WaitNode* n) noexcept {
    list_.push_front(n);
    n->linked = true;
    ++size_;
  }
  // A node no longer linked (popped by a granter) is left alone.
  void remove(WaitNode* n) noexcept {
    if (!n->linked) {
      return;
    }
    list_.remove(n);
    n->linked = false;
    --size_;
  }
  WaitNode* pop_front() noexcept {
    WaitNode* n = list_.pop_front();
    if (n != nullptr) {
      n->linked = false;
      --size_;
    }
    return n;
  }

 private:
  IntrusiveList<WaitNode> list_;
  std::size_t size_ = 0;
};

// Claims a node's future for a granter (INV-L1). Returns the core with a
// reference of its own (handed to a WakeBatch), or nullptr if the waiter was
// cancelled first. Runs under the primitive's lock.
inline FutureCore* claim_node(WaitNode* n) noexcept {
  FutureCore* c = n->fut.core();
  if (!c->claim_completion()) {
    return nullptr;
  }
  n->granted = true;
  c->ref();
  return c;
}

// Pops nodes until one can be claimed; nullptr when the list runs out.
// Nodes whose claim fails were cancelled: their waiters find them unlinked
// in revoke(). Runs under the primitive's lock.
inline WaitNode* pop_and_claim(WaitList& list, FutureCore*& core) noexcept {
  while (WaitNode* n = list.pop_front()) {
    if ((core = claim_node(n)) != nullptr) {
      return n;
    }
  }
  core = nullptr;
  return nullptr;
}

// Called by a waiter, under the primitive's lock, when its wait ended other
// than by a normal return (get() threw, wait_for() timed out). Settles
// INV-L1: true if a granter claimed the node first (INV-L3 applies); false
// if not — then the node is unlinked, and since granters only claim linked
// nodes under this lock, nobody can grant it any more.
inline bool revoke(WaitList& list, WaitNode& n) noexcept {
  if (n.granted) {
    return true;
  }
  list.remove(&n);
  return false;
}

// The wake-ups claimed under a lock, published after it is dropped (so the
// critical section never includes the scheduler's wake path). Declare it
// before the lock guard: the guard unlocks first, then this publishes.
// One wake-up needs no allocation; broadcasts spill into a vector.
class WakeBatch {
 public:
  WakeBatch() = default;
  WakeBatch(const WakeBatch&) = delete;
  WakeBatch& operator=(const WakeBatch&) = delete;
  ~WakeBatch() { run(); }

  void add(FutureCore* claimed) {
    if (n_ < kInline) {
      inline_[n_++] = claimed;
    } else {
      try {
        more_.push_back(claimed);
      } catch (...) {
        finish(claimed);  // out of memory: wake it now, under the lock
      }
    }
  }
  bool empty() const noexcept { return n_ == 0; }
  // Publishes every claimed future (the waiter wakes), dropping our
  // references. Idempotent.
  void run() noexcept {
    for (std::size_t i = 0; i < n_; ++i) {
      finish(inline_[i]);
    }
    n_ = 0;
    for (FutureCore* c : more_) {
      finish(c);
    }
    more_.clear();
  }

 private:
  static void finish(FutureCore* c) noexcept {
    value_of<void>(c).emplace();
    c->publish(Status::kResult);
    c->unref();
  }
  static constexpr std::size_t kInline = 4;
  FutureCore* inline_[kInline];
  std::size_t n_ = 0;
  std::vector<FutureCore*> more_;
};

}  // namespace spindle::detail
