// The type-erased cores of gather, wait, as_completed and timeout
// (include/spindle/combinators.hpp has the contract).
//
// Roles. The *caller* (a task or a plain thread) starts a combinator and
// waits on one private plain Future<void> (the "signal"). The *children*'
// done-callbacks run on any worker, concurrently with each other and with
// the caller, and complete the signal when the combinator's condition holds.
// A *canceller* on any thread may cancel the caller; when the caller is
// blocked in signal.get() that cancels the signal (task.cpp INV-C1), and the
// caller wakes with Cancelled.
//
// Invariants
//   INV-K1  each state's counters and lists are guarded by its mutex mu_;
//           no critical section suspends, and none runs user code (cancel()
//           and completing a plain future only queue callbacks and wake
//           waiters).
//   INV-K2  a signal is completed with try_set_*(), which never throws: the
//           loser of a race with the canceller (or another callback) just
//           learns that it lost (future_core.hpp INV-F1).
//   INV-K3  callbacks hold a weak_ptr to the state, except where the state
//           must outlive the caller (none here): once the caller returned,
//           a late callback finds no state and at most marks the child's
//           exception retrieved (gather, as asyncio's _done_callback does).
//   INV-K4  a Timeout's timer callback cancels the task while holding the
//           Timeout's mutex, and leaving the scope takes that mutex: the
//           request is counted (cancelling()) before the scope can look at
//           the count, so uncancel() never misses it and a late timer never
//           cancels the task after the scope ended.
//
// Rejected designs. A helper task per timeout (sleep, then cancel): a fiber
// per wait_for, where a timer entry does. The caller looping over get() of
// each child (cheap, runs unstarted children inline) cannot report the first
// failure before the earlier children finish.
#include <spindle/combinators.hpp>

#include <algorithm>
#include <deque>
#include <mutex>

#include <spindle/detail/task_core.hpp>

#include "os_mutex.hpp"
#include "scheduler.hpp"

namespace spindle::detail {

std::string cancel_message_of(const std::exception_ptr& e) {
  if (!e) {
    return {};
  }
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled& c) {
    return c.message();
  } catch (...) {
    return {};
  }
}

namespace {

// Runtime::call_later on the runtime that runs `task` (callable from any
// thread).
TimerHandle call_later_on(TaskCore* task, Duration d, std::function<void()> fn) {
  return TimerHandle(task->scheduler()->timer_domain().call_later(d.count(), std::move(fn)));
}

}  // namespace

// ---------------------------------------------------------------------------
// gather
// ---------------------------------------------------------------------------
namespace {

class GatherState {
 public:
  GatherState(std::size_t n, bool settled) : n_(n), settled_(settled) {}

  // The handle never changes after construction: readable without the lock.
  const Future<void>& outer() const noexcept { return outer_; }

  void on_child_done(FutureCore* c) {
    OsLock lock(mu_);  // INV-K1
    ++finished_;
    const Status s = c->status();
    const bool failed = s != Status::kResult;
    std::exception_ptr e;
    if (failed) {
      e = c->error_for_outcome();  // retrieved: gather reports it or drops it (asyncio)
    }
    if (!settled_ && failed) {
      if (try_set_error(outer_.core(), e)) {  // INV-K2
        return;
      }
      // The outer future is done already: cancelled by the caller's
      // cancellation, or completed by an earlier failure.
      if (!late_failure_seen_) {
        late_failure_seen_ = true;
        late_failure_ = s == Status::kException ? e : nullptr;
      }
    } else if (finished_ == n_) {
      try_set_void(outer_.core());
    }
    finish_after_cancel_locked();
  }

  // After the caller's cancellation: a future completed when asyncio's
  // cancelled outer future would complete (see gather's comment).
  Future<void> arm_after_cancel() {
    OsLock lock(mu_);
    cancel_requested_ = true;
    after_cancel_.emplace();
    finish_after_cancel_locked();
    return *after_cancel_;
  }

 private:
  void finish_after_cancel_locked() SPINDLE_REQUIRES(mu_) {
    if (!cancel_requested_ || after_cancel_->done()) {
      return;
    }
    if (!settled_ && late_failure_seen_) {
      if (late_failure_) {
        try_set_error(after_cancel_->core(), late_failure_);
      } else {
        try_set_void(after_cancel_->core());
      }
    } else if (finished_ == n_) {
      try_set_void(after_cancel_->core());
    }
  }

  OsMutex mu_;
  const std::size_t n_;
  const bool settled_;
  const Future<void> outer_;
  std::size_t finished_ SPINDLE_GUARDED_BY(mu_) = 0;
  bool cancel_requested_ SPINDLE_GUARDED_BY(mu_) = false;
  bool late_failure_seen_ SPINDLE_GUARDED_BY(mu_) = false;
  std::exception_ptr late_failure_ SPINDLE_GUARDED_BY(mu_);
  std::optional<Future<void>> after_cancel_ SPINDLE_GUARDED_BY(mu_);
};

}  // namespace

void gather_wait(FutureCore* const* children, std::size_t n, bool settled) {
  if (n == 0) {
    return;
  }
  // Fast path: everything finished already; no callbacks, no suspension.
  // asyncio would report the first failure in argument order (callbacks of
  // done futures run in registration order) and mark every other retrieved.
  if (std::all_of(children, children + n, [](FutureCore* c) { return c->done(); })) {
    std::exception_ptr first;
    if (!settled) {
      for (std::size_t i = 0; i < n; ++i) {
        if (children[i]->status() != Status::kResult) {
          std::exception_ptr e = children[i]->error_for_outcome();
          if (!first) {
            first = std::move(e);
          }
        }
      }
    }
    if (first) {
      std::rethrow_exception(first);
    }
    return;
  }

  auto state = std::make_shared<GatherState>(n, settled);
  std::weak_ptr<GatherState> weak = state;
  for (std::size_t i = 0; i < n; ++i) {
    children[i]->add_inline_callback([weak](FutureCore* c) {
      if (auto s = weak.lock()) {
        s->on_child_done(c);
      } else if (c->status() != Status::kResult) {
        (void)c->error_for_outcome();  // INV-K3: gather is over; asyncio marks it retrieved
      }
    });
  }

  Future<void> outer = state->outer();
  std::exception_ptr cancelled;
  try {
    outer.get();
    return;
  } catch (const Cancelled&) {
    if (!outer.cancelled()) {
      throw;  // a child's cancellation, propagated like any other failure
    }
    cancelled = std::current_exception();
  }
  // The calling task was cancelled while it waited (INV-C1 cancelled
  // `outer`). Outside the catch block: we suspend again below.
  const std::string msg = cancel_message_of(cancelled);
  for (std::size_t i = 0; i < n; ++i) {
    children[i]->cancel(msg);
  }
  Future<void> after = state->arm_after_cancel();
  after.get();  // a child's exception, or a further cancellation, comes out here
  std::rethrow_exception(cancelled);
}

// ---------------------------------------------------------------------------
// wait
// ---------------------------------------------------------------------------
namespace {

bool wait_condition(ReturnWhen when, std::size_t finished, std::size_t n, bool failed) {
  switch (when) {
    case ReturnWhen::FirstCompleted:
      return finished > 0;
    case ReturnWhen::FirstException:
      return failed || finished == n;
    case ReturnWhen::AllCompleted:
      return finished == n;
  }
  return finished == n;
}

class WaitState {
 public:
  WaitState(std::size_t n, ReturnWhen when) : n_(n), when_(when) {}
  const Future<void>& signal() const noexcept { return signal_; }

  void on_done(FutureCore* c) {
    OsLock lock(mu_);  // INV-K1
    ++finished_;
    // asyncio: FIRST_EXCEPTION counts `not f.cancelled() and f.exception()`.
    failed_ = failed_ || c->status() == Status::kException;
    if (wait_condition(when_, finished_, n_, failed_)) {
      try_set_void(signal_.core());  // INV-K2
    }
  }

 private:
  OsMutex mu_;
  const std::size_t n_;
  const ReturnWhen when_;
  const Future<void> signal_;
  std::size_t finished_ SPINDLE_GUARDED_BY(mu_) = 0;
  bool failed_ SPINDLE_GUARDED_BY(mu_) = false;
};

}  // namespace

void wait_until(FutureCore* const* fs, std::size_t n, ReturnWhen when,
                std::optional<Duration> timeout) {
  // Fast path: the condition holds already (asyncio checks this first too).
  std::size_t finished = 0;
  bool failed = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (fs[i]->done()) {
      ++finished;
      failed = failed || fs[i]->status() == Status::kException;
    }
  }
  if (wait_condition(when, finished, n, failed)) {
    return;
  }
  if (timeout && timeout->count() <= 0) {
    return;
  }

  auto state = std::make_shared<WaitState>(n, when);
  std::weak_ptr<WaitState> weak = state;
  std::vector<CallbackId> ids(n);
  for (std::size_t i = 0; i < n; ++i) {
    ids[i] = fs[i]->add_inline_callback([weak](FutureCore* c) {
      if (auto s = weak.lock()) {
        s->on_done(c);
      }
    });
  }
  // asyncio removes its callbacks however the wait ends.
  struct Unhook {
    FutureCore* const* fs;
    std::size_t n;
    const std::vector<CallbackId>& ids;
    ~Unhook() {
      for (std::size_t i = 0; i < n; ++i) {
        fs[i]->remove_done_callback(ids[i]);
      }
    }
  } unhook{fs, n, ids};

  Future<void> signal = state->signal();
  if (timeout) {
    // A suspension point that never cancels `signal`; the waiting task's
    // cancellation is thrown from it and cancels none of the futures.
    signal.wait_for(*timeout);
  } else {
    signal.get();  // cancelling the task cancels only `signal`
  }
}

// ---------------------------------------------------------------------------
// as_completed
// ---------------------------------------------------------------------------

class AsCompletedState {
 public:
  explicit AsCompletedState(std::optional<TimePoint> deadline) : deadline_(deadline) {}
  ~AsCompletedState() {
    for (const Hook& h : hooks_) {
      h.future->remove_done_callback(h.id);
      h.future->unref();
    }
    for (FutureCore* c : ready_) {
      c->unref();
    }
  }

  // Setup only, before any other thread can see the state.
  void hook(FutureCore* f, CallbackId id) {
    f->ref();
    hooks_.push_back(Hook{f, id});
  }

  void on_done(FutureCore* c) {
    Future<void> signal;
    {
      OsLock lock(mu_);  // INV-K1
      c->ref();
      ready_.push_back(c);
      signal = signal_;
    }
    try_set_void(signal.core());  // INV-K2
  }

  FutureCore* next() {
    for (;;) {
      Future<void> signal;
      {
        OsLock lock(mu_);
        if (!ready_.empty()) {
          FutureCore* c = ready_.front();
          ready_.pop_front();
          return c;
        }
        if (deadline_ && Clock::now() >= *deadline_) {
          throw TimeoutError("spindle::as_completed: the deadline passed");
        }
        // A signal that fired for futures already handed out, or that the
        // caller's cancellation completed: start a fresh one. Every later
        // on_done() sees the new one (it reads signal_ under mu_).
        if (signal_.done()) {
          signal_ = Future<void>();
        }
        signal = signal_;
      }
      if (deadline_) {
        signal.wait_for(*deadline_ - Clock::now());
      } else {
        signal.get();
      }
    }
  }

 private:
  struct Hook {
    FutureCore* future;
    CallbackId id;
  };
  OsMutex mu_;
  const std::optional<TimePoint> deadline_;
  std::vector<Hook> hooks_;                                // written during setup only
  std::deque<FutureCore*> ready_ SPINDLE_GUARDED_BY(mu_);  // one reference each
  Future<void> signal_ SPINDLE_GUARDED_BY(mu_);
};

std::shared_ptr<AsCompletedState> as_completed_start(FutureCore* const* fs, std::size_t n,
                                                     std::optional<Duration> timeout) {
  std::optional<TimePoint> deadline;
  if (timeout) {
    deadline = detail::deadline_after(*timeout);
  }
  auto state = std::make_shared<AsCompletedState>(deadline);
  std::weak_ptr<AsCompletedState> weak = state;
  for (std::size_t i = 0; i < n; ++i) {
    CallbackId id = fs[i]->add_inline_callback([weak](FutureCore* c) {
      if (auto s = weak.lock()) {
        s->on_done(c);
      }
    });
    state->hook(fs[i], id);
  }
  return state;
}

FutureCore* as_completed_next(AsCompletedState& s) { return s.next(); }

// ---------------------------------------------------------------------------
// Timeout
// ---------------------------------------------------------------------------
// asyncio.Timeout's states: kEntered (armed or no deadline), kExpiring (the
// deadline fired and cancelled the task), kExpired and kExited (left).

class TimeoutState : public std::enable_shared_from_this<TimeoutState> {
 public:
  enum class Phase { kEntered, kExpiring, kExpired, kExited };

  OsMutex mu_;
  Phase phase_ SPINDLE_GUARDED_BY(mu_) = Phase::kEntered;
  TimePoint when_ SPINDLE_GUARDED_BY(mu_);
  TimerHandle timer_ SPINDLE_GUARDED_BY(mu_);
  std::uint64_t generation_ SPINDLE_GUARDED_BY(mu_) = 0;  // tells stale timers apart
  TaskRef task_;                                          // set before sharing
  int cancelling_at_entry_ = 0;                           // set before sharing

  // Arms the timer for when_.
  void arm_locked() SPINDLE_REQUIRES(mu_) {
    ++generation_;
    if (when_ == TimePoint::max()) {
      return;
    }
    const Duration left = when_ - Clock::now();
    if (left.count() <= 0) {
      expire_locked();
      return;
    }
    std::weak_ptr<TimeoutState> weak = weak_from_this();
    const std::uint64_t gen = generation_;
    timer_ = call_later_on(task_.core(), left, [weak, gen] {
      if (auto s = weak.lock()) {
        OsLock lock(s->mu_);
        if (s->phase_ == Phase::kEntered && s->generation_ == gen) {
          s->expire_locked();
        }
      }
    });
  }

  // INV-K4: the cancel request is made under mu_.
  void expire_locked() SPINDLE_REQUIRES(mu_) {
    phase_ = Phase::kExpiring;
    task_.cancel();
  }

  void disarm_locked() noexcept SPINDLE_REQUIRES(mu_) {
    timer_.cancel();
    timer_ = TimerHandle();
  }
};

}  // namespace spindle::detail

namespace spindle {

Timeout::Timeout(TimePoint when) : state_(std::make_shared<detail::TimeoutState>()) {
  state_->task_ = current_task();  // InvalidStateError outside a task
  state_->cancelling_at_entry_ = state_->task_.cancelling();
  detail::OsLock lock(state_->mu_);
  state_->when_ = when;
  state_->arm_locked();
}

Timeout::~Timeout() { leave(false); }

TimePoint Timeout::when() const {
  detail::OsLock lock(state_->mu_);
  return state_->when_;
}

bool Timeout::expired() const {
  detail::OsLock lock(state_->mu_);
  using P = detail::TimeoutState::Phase;
  return state_->phase_ == P::kExpiring || state_->phase_ == P::kExpired;
}

void Timeout::reschedule(TimePoint when) {
  detail::OsLock lock(state_->mu_);
  using P = detail::TimeoutState::Phase;
  switch (state_->phase_) {
    case P::kEntered:
      break;
    case P::kExpiring:
      throw InvalidStateError("Cannot change state of expiring Timeout");
    case P::kExpired:
      throw InvalidStateError("Cannot change state of expired Timeout");
    case P::kExited:
      throw InvalidStateError("Cannot change state of finished Timeout");
  }
  state_->disarm_locked();
  state_->when_ = when;
  state_->arm_locked();
}

bool Timeout::leave(bool body_cancelled) noexcept {
  detail::OsLock lock(state_->mu_);  // INV-K4
  using P = detail::TimeoutState::Phase;
  switch (state_->phase_) {
    case P::kExpired:
    case P::kExited:
      return false;  // left already
    case P::kEntered:
      state_->disarm_locked();
      state_->phase_ = P::kExited;
      return false;
    case P::kExpiring:
      state_->disarm_locked();
      state_->phase_ = P::kExpired;
      // asyncio.Timeout.__aexit__: the cancellation was ours if, once ours
      // is taken back, no newer request is pending than at entry.
      return state_->task_.uncancel() <= state_->cancelling_at_entry_ && body_cancelled;
  }
  return false;
}

}  // namespace spindle
