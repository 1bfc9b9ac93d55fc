// FutureCore: completion, results, done-callbacks, repr, lifetime.
// The protocol (INV-F1..F3) is documented in future_core.hpp.
#include <spindle/detail/future_core.hpp>

#include <sched.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include <spindle/detail/task_core.hpp>
#include <spindle/errors.hpp>

#include "alloc.hpp"
#include "atomic.hpp"
#include "debug.hpp"
#include "globals.hpp"
#include "parker.hpp"
#include "perturb.hpp"
#include "task_access.hpp"
#include "waiter.hpp"

namespace spindle::detail {

void* FutureCore::operator new(std::size_t size) { return pool_alloc(size); }
void FutureCore::operator delete(void* p, std::size_t size) noexcept { pool_free(p, size); }

void* CallbackEntry::operator new(std::size_t size) { return pool_alloc(size); }
void CallbackEntry::operator delete(void* p, std::size_t size) noexcept { pool_free(p, size); }

namespace {
void delete_list(CallbackEntry* e) noexcept {
  while (e != nullptr) {
    CallbackEntry* next = e->next;
    delete e;
    e = next;
  }
}
}  // namespace

FutureCore::~FutureCore() {
  SPINDLE_ASSERT(waiters_.empty(), "future destroyed with waiters linked");
  delete_list(callbacks_);
}

void FutureCore::write_result_repr(std::ostream&) const {}

void FutureCore::unref() noexcept {
  // acq_rel: release publishes our uses of the object; the final decrement
  // acquires everyone else's before destruction (shared_ptr's protocol).
  std::uint64_t prev = word_.fetch_sub(kRefOne, std::memory_order_acq_rel);
  if ((prev >> 16) != 1) {
    return;
  }
  if (status_.load(std::memory_order_acquire) == Status::kException &&
      !retrieved_.load(std::memory_order_relaxed)) {
    report_unretrieved();
    return;
  }
  delete this;
}

void FutureCore::report_unretrieved() noexcept {
  retrieved_.store(true, std::memory_order_relaxed);
  // Resurrect with one reference for the report; it is released by the
  // reporter, and the object goes then (retrieved now, so no second report).
  word_.fetch_add(kRefOne, std::memory_order_relaxed);
  if (is_task_) {
    report_task_exception(static_cast<TaskCore*>(this), error_);
    return;
  }
  report_future_exception(repr(), error_);
  unref();
}

bool FutureCore::claim_completion() noexcept {
  for (unsigned spins = 0;; ++spins) {
    Status expected = Status::kPending;
    // acq_rel: INV-F1, one winner; the winner's later value writes are
    // published by publish()'s release store. The acquire on failure pairs
    // with publish()/abandon_claim(), so a loser that sees a final status
    // also sees the outcome.
    if (status_.compare_exchange_strong(expected, Status::kCompleting, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      SPINDLE_PERTURB(kClaimWon);
      return true;
    }
    if (expected != Status::kCompleting) {
      return false;  // done for good
    }
    // INV-F4: another claimer is writing its value (a few instructions) or
    // may still abandon; wait it out and decide again.
    if (spins < 64) {
      cpu_relax();
    } else {
      sched_yield();
    }
  }
}

void FutureCore::abandon_claim() noexcept {
  // INV-F4: nothing was published; back to pending. release: pairs with
  // the next claimer's acquire CAS, ordering our (destroyed) partial writes
  // before its own.
  SPINDLE_ASSERT(status_.load(std::memory_order_relaxed) == Status::kCompleting,
                 "abandon_claim() without a claim");
  status_.store(Status::kPending, std::memory_order_release);
}

namespace {

// Done-callbacks of one completion, run together in registration order.
struct CallbackBatch {
  FutureCore* future;
  CallbackEntry* entries;  // registration order
  CallbackBatch(FutureCore* f, CallbackEntry* e) : future(f), entries(e) { future->ref(); }
  ~CallbackBatch() {
    delete_list(entries);
    future->unref();
  }
  void run() {
    for (CallbackEntry* e = entries; e != nullptr; e = e->next) {
      try {
        e->fn(future);
      } catch (...) {
        std::string line = "spindle: exception in a done-callback: " +
                           describe_exception(std::current_exception()) + "\n";
        std::fputs(line.c_str(), stderr);
      }
    }
  }
};

// `newest_first`: a future's callback list as stored.
void dispatch_callbacks(FutureCore* f, CallbackEntry* newest_first) {
  // Into registration order, internal callbacks set apart: they run here
  // and now; the user's go to a worker as one batch, in order.
  CallbackEntry* user = nullptr;
  CallbackEntry* internal = nullptr;
  while (newest_first != nullptr) {
    CallbackEntry* e = newest_first;
    newest_first = e->next;
    CallbackEntry*& list = e->run_inline ? internal : user;
    e->next = list;
    list = e;
  }
  for (CallbackEntry* e = internal; e != nullptr; e = e->next) {
    e->fn(f);
  }
  delete_list(internal);
  if (user == nullptr) {
    return;
  }
  auto batch = std::make_shared<CallbackBatch>(f, user);
  if (!schedule_soon([batch] { batch->run(); })) {
    batch->run();  // no runtime alive: run on this thread
  }
}

}  // namespace

void FutureCore::publish(Status final_status) noexcept {
  // A task completes only itself and skips the claim (task.hpp).
  SPINDLE_ASSERT(status_.load(std::memory_order_relaxed) == Status::kCompleting ||
                     (is_task_ && status_.load(std::memory_order_relaxed) == Status::kPending),
                 "publish() without a claim");
  Waiter* winners = nullptr;
  CallbackEntry* callbacks;
  {
    SpinGuard g(lock_);
    // release: INV-F2, the value/error written by the claimer.
    status_.store(final_status, std::memory_order_release);
    Waiter* w = waiters_.take_all();
    while (w != nullptr) {
      Waiter* next = w->next;
      w->linked = false;
      IntrusiveList<Waiter>::clear_links(w);
      if (w->try_fire()) {
        if (w->root == nullptr) {
          futex_wake(&w->state, 1);  // INV-W3: a thread waiter, under our lock
        } else {
          w->next = winners;  // we own a winner's node until we wake it
          winners = w;
        }
      }
      w = next;
    }
    callbacks = callbacks_;
    callbacks_ = nullptr;
  }
  // Winners were collected newest-first; wake them oldest-first.
  Waiter* ordered = nullptr;
  bool several = winners != nullptr && winners->next != nullptr;
  while (winners != nullptr) {
    Waiter* next = winners->next;
    winners->next = ordered;
    ordered = winners;
    winners = next;
  }
  while (ordered != nullptr) {
    Waiter* next = ordered->next;
    ordered->next = nullptr;
    wake_waiter_owner(ordered, /*lifo=*/!several);  // the node may be gone after this
    ordered = next;
  }
  if (callbacks != nullptr) {
    dispatch_callbacks(this, callbacks);
  }
}

void FutureCore::check_settable() const {
  if (is_task_) {
    throw InvalidStateError("set_result()/set_exception() are not allowed on a Task");
  }
  // Only a final status refuses: a claim in progress may still be
  // abandoned (INV-F4), and the claim that follows waits it out.
  if (done()) {
    throw InvalidStateError("the future is already done");
  }
}

void FutureCore::set_exception_checked(std::exception_ptr e) {
  if (!e) {
    throw InvalidStateError("set_exception() needs an exception, not a null exception_ptr");
  }
  check_settable();
  if (!claim_completion()) {
    throw InvalidStateError("the future is already done");
  }
  error_ = std::move(e);
  publish(Status::kException);
}

bool FutureCore::cancel(std::string msg) {
  if (is_task_) {
    return static_cast<TaskCore*>(this)->request_cancel(std::move(msg));
  }
  if (done()) {
    return false;
  }
  // Made before the claim: it allocates, and may throw (INV-F4).
  std::exception_ptr cancelled = make_cancelled(std::move(msg));
  if (!claim_completion()) {
    return false;
  }
  error_ = std::move(cancelled);
  publish(Status::kCancelled);
  return true;
}

void FutureCore::check_result() const {
  switch (status()) {
    case Status::kPending:
    case Status::kCompleting:
      throw InvalidStateError("Result is not set.");
    case Status::kResult:
      mark_retrieved();
      return;
    case Status::kException:
    case Status::kCancelled:
      mark_retrieved();
      std::rethrow_exception(error_);
  }
}

std::exception_ptr FutureCore::exception_checked() const {
  switch (status()) {
    case Status::kPending:
    case Status::kCompleting:
      throw InvalidStateError("Exception is not set.");
    case Status::kCancelled:
      mark_retrieved();
      std::rethrow_exception(error_);
    case Status::kException:
      mark_retrieved();
      return error_;
    case Status::kResult:
      return nullptr;
  }
  return nullptr;
}

std::exception_ptr FutureCore::error_for_outcome() const {
  Status s = status();
  SPINDLE_ASSERT(s >= Status::kResult, "outcome of a pending future");
  mark_retrieved();
  return s == Status::kResult ? nullptr : error_;
}

namespace {

// Callback ids are unique in the process and never reused (64 bits taken
// in blocks per thread), so a stale id never removes a newer callback, on
// this future or any other. noinline: a thread-local must not be cached
// across a fiber switch (DESIGN.md hazards).
__attribute__((noinline)) std::uint64_t next_callback_id() noexcept {
  constexpr std::uint64_t kBlock = 1 << 16;
  static std::atomic<std::uint64_t> g_next{1};
  thread_local std::uint64_t next = 0, limit = 0;
  if (next == limit) {
    next = g_next.fetch_add(kBlock, std::memory_order_relaxed);  // uniqueness only
    limit = next + kBlock;
  }
  return next++;
}

}  // namespace

std::uint64_t FutureCore::add_callback(DoneCallback cb, bool run_inline) {
  FutureCore* f = this;
  auto* e = new CallbackEntry{next_callback_id(), std::move(cb), run_inline, nullptr};
  {
    SpinGuard g(lock_);
    if (status() < Status::kResult) {
      e->next = callbacks_;
      callbacks_ = e;
      return e->id;
    }
  }
  std::uint64_t id = e->id;
  if (run_inline) {
    e->fn(f);  // already done: an internal callback runs at once
    delete e;
    return id;
  }
  // Already done: scheduled at once, never run inside this call.
  dispatch_callbacks(f, e);
  return id;
}

std::uint64_t FutureCore::add_done_callback(DoneCallback cb) {
  return add_callback(std::move(cb), false);
}

std::uint64_t FutureCore::add_inline_callback(DoneCallback cb) {
  return add_callback(std::move(cb), true);
}

std::size_t FutureCore::remove_done_callback(std::uint64_t id) {
  CallbackEntry* removed = nullptr;
  std::size_t n = 0;
  {
    SpinGuard g(lock_);
    for (CallbackEntry** link = &callbacks_; *link != nullptr;) {
      CallbackEntry* e = *link;
      if (e->id == id) {
        *link = e->next;
        e->next = removed;
        removed = e;
        ++n;
      } else {
        link = &e->next;
      }
    }
  }
  delete_list(removed);  // outside the lock: a callback's captures may be heavy
  return n;
}

void FutureCore::write_state_repr(std::ostream& os) const {
  switch (status()) {
    case Status::kPending:
    case Status::kCompleting:
      os << "pending";
      break;
    case Status::kCancelled:
      os << "cancelled";
      break;
    case Status::kResult:
      os << "finished";
      break;
    case Status::kException:
      os << "finished";
      break;
  }
}

std::string FutureCore::repr() const {
  std::ostringstream os;
  Status s = status();
  os << (is_task_ ? "<Task " : "<Future ");
  write_state_repr(os);
  if (is_task_) {
    os << " name='" << static_cast<const TaskCore*>(this)->name() << "'";
  }
  if (s == Status::kResult) {
    write_result_repr(os);
  } else if (s == Status::kException) {
    os << " exception=" << describe_exception(error_);
  }
  os << ">";
  return os.str();
}

std::exception_ptr make_cancelled(std::string msg) {
  return std::make_exception_ptr(Cancelled(std::move(msg)));
}

void wake_waiter_owner(Waiter* w, bool lifo) {
  if (w->root == nullptr) {
    futex_wake(&w->state, 1);
    return;
  }
  TaskCore* root = w->root;
  schedule_wake(root, lifo);
}

}  // namespace spindle::detail
