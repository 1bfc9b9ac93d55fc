// Not API. The shared state behind Future<T> and Task<T>.
//
// Roles: any thread may hold a handle and call any method. A future completes
// exactly once; waiters (tasks or plain threads) and done-callbacks hang off
// it until then.
//
// Layout of the state:
//   word_     refcount in bits 16..63 (kRefOne per handle or internal owner);
//             bits 0..15 belong to TaskCore's scheduling flags (task_core.hpp).
//   status_   kPending -> kCompleting -> {kResult, kException, kCancelled};
//             kCompleting -> kPending when the claimer could not make its
//             value (a throwing constructor, abandon_claim()).
//   lock_     guards waiters_, callbacks_ and the status change out of
//             kCompleting, never anything else.
//
// Invariants:
//   INV-F1  status_ leaves kPending exactly once, by the CAS in
//           claim_completion(); the loser of a race learns it from the CAS
//           and reports InvalidStateError or false.
//   INV-F2  the value / error_ is written only by the claimer, before
//           publish() stores the final status with release; readers load
//           status_ with acquire, so a reader that sees a final status sees
//           the value.
//   INV-F4  a claim always ends: the claimer either publishes or abandons
//           (no code runs between claim and publish that can throw without
//           abandoning), and nothing that meets kCompleting gives up on it:
//           claim_completion() waits the claimer out and decides again, and
//           a woken waiter waits for publication (await_publication). So
//           a future is never wedged "completing", and a claim loser that
//           says "already done" is right.
//   INV-F3  a waiter or callback is either in a list under lock_, or was
//           taken out of it by publish() under lock_, never both: a waiter
//           that checks the status under lock_ and links itself cannot miss
//           the wakeup, and a waiter unlinks itself under lock_ before its
//           storage goes away.
//
// Memory ordering (the contract Future<T> documents): writes made before
// set_result()/set_exception()/cancel() are visible to any thread once done()
// returns true or get()/result() returns, for fiber and OS-thread waiters.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "intrusive_list.hpp"
#include "spin_lock.hpp"

namespace spindle::detail {

struct Waiter;
class FutureCore;

enum class Status : std::uint8_t {
  kPending = 0,
  kCompleting = 1,  // claimed by a completer that is still writing the value
  kResult = 2,
  kException = 3,
  kCancelled = 4,
};
// done() is `status >= kResult`: the final states sort after the others.
static_assert(Status::kPending < Status::kCompleting && Status::kCompleting < Status::kResult &&
                  Status::kResult < Status::kException && Status::kException < Status::kCancelled,
              "final statuses must compare above kPending and kCompleting");

using DoneCallback = std::function<void(FutureCore*)>;

// One registered done-callback: a node of the future's callback list,
// newest first (reversed into registration order when they run). Pooled like
// futures: most futures get one callback, and a vector per future cost a
// malloc each.
struct CallbackEntry {
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size) noexcept;

  std::uint64_t id;
  DoneCallback fn;
  bool run_inline = false;  // runtime-internal: runs on the completing thread
  CallbackEntry* next = nullptr;
};

class FutureCore {
 public:
  static constexpr std::uint64_t kRefOne = std::uint64_t{1} << 16;
  static constexpr std::uint64_t kFlagMask = kRefOne - 1;
  // The layout above: flags in bits 0..15, the refcount in 16..63 of a
  // 64-bit word; the two fields share no bit and leave none over.
  static_assert(kRefOne == std::uint64_t{1} << 16, "the refcount starts at bit 16");
  static_assert(kFlagMask == 0xFFFF && ~kFlagMask == std::uint64_t{0xFFFF'FFFF'FFFF} << 16,
                "flags are bits 0..15, the refcount bits 16..63");

  FutureCore(const FutureCore&) = delete;
  FutureCore& operator=(const FutureCore&) = delete;

  // Pooled allocation for every future and task (runtime/alloc in future.cpp).
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size) noexcept;

  void ref() noexcept {
    // relaxed: taking a reference needs no ordering; whoever hands the
    // pointer over already synchronized with us (shared_ptr does the same).
    word_.fetch_add(kRefOne, std::memory_order_relaxed);
  }
  void unref() noexcept;  // the last reference destroys the object

  Status status() const noexcept {
    // acquire: pairs with the release store in publish() (INV-F2).
    return status_.load(std::memory_order_acquire);
  }
  bool done() const noexcept { return status() >= Status::kResult; }
  bool cancelled() const noexcept { return status() == Status::kCancelled; }
  bool is_task() const noexcept { return is_task_; }

  // --- completion -------------------------------------------------------
  // The winner of claim_completion() (INV-F1) writes the value and then
  // calls publish(), or abandon_claim() if it cannot (INV-F4). The other
  // entry points claim and publish in one go. A claim that meets another
  // claimer still writing waits for it, so false means done for good.
  [[nodiscard]] bool claim_completion() noexcept;
  void abandon_claim() noexcept;
  // The claimer's write of a failure (or, for a task, the runtime's), before
  // publish(kException or kCancelled) (INV-F2); try_set_error() uses it.
  void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }
  void publish(Status final_status) noexcept;
  // set_exception() for a plain future: throws InvalidStateError if done or
  // if this is a task.
  void set_exception_checked(std::exception_ptr e);
  // Throws InvalidStateError unless this is a pending plain future; used by
  // set_result() before it claims.
  void check_settable() const;
  // Future::cancel(): completes a plain future as cancelled, or requests
  // cancellation of a task. False if already done.
  bool cancel(std::string msg);

  // --- reading ----------------------------------------------------------
  // Throws for pending (InvalidStateError), cancelled (Cancelled) and failed
  // (the exception) states; returns normally when a value is ready. Marks the
  // outcome as retrieved.
  void check_result() const;
  // The exception of a failed future, nullptr for a result; throws for
  // pending and cancelled.
  std::exception_ptr exception_checked() const;
  // The stored exception_ptr for any finished state (Cancelled for a
  // cancelled future). Marks it retrieved.
  std::exception_ptr error_for_outcome() const;
  void mark_retrieved() const noexcept { retrieved_.store(true, std::memory_order_relaxed); }

  // --- callbacks --------------------------------------------------------
  std::uint64_t add_done_callback(DoneCallback cb);
  // Runtime-internal callbacks (combinators, task groups): short, never
  // blocking, never calling user code. They run on the completing thread
  // right after completion — or at once, on the caller's thread, if the
  // future is already done — instead of being scheduled as a task.
  std::uint64_t add_inline_callback(DoneCallback cb);
  std::size_t remove_done_callback(std::uint64_t id);

  // --- waiting (runtime/wait.cpp) ---------------------------------------
  // Until done: suspends the calling task or blocks the calling thread.
  void wait();
  // Waits at most `ns` nanoseconds; true if done. Never consumes anything.
  bool wait_for_ns(std::int64_t ns);

  std::string repr() const;
  const std::exception_ptr& error() const noexcept { return error_; }

  template <class T>
  T* value_ptr() noexcept {
    return reinterpret_cast<T*>(reinterpret_cast<char*>(this) + value_offset_);
  }

 protected:
  explicit FutureCore(bool is_task) noexcept : is_task_(is_task) {}
  virtual ~FutureCore();
  // Writes " result=<value>" for repr(); the typed subclass knows how.
  virtual void write_result_repr(std::ostream& os) const;
  // `value` is the subclass's first member, right after this header (at
  // most a few hundred bytes) and its alignment padding, which the
  // subclasses cap at 4096: the offset fits the 16 bits it is kept in.
  void set_value_offset(const void* value) noexcept {
    value_offset_ = static_cast<std::uint16_t>(reinterpret_cast<const char*>(value) -
                                               reinterpret_cast<const char*>(this));
  }
  void write_state_repr(std::ostream& os) const;

 private:
  // The runtime reaches the fields below through runtime/future_access.hpp.
  friend struct FutureAccess;
  std::uint64_t add_callback(DoneCallback cb, bool run_inline);
  void report_unretrieved() noexcept;

  std::atomic<std::uint64_t> word_{kRefOne};

  std::atomic<Status> status_{Status::kPending};
  SpinLock lock_;
  const bool is_task_;
  mutable std::atomic<bool> retrieved_{false};
  std::uint16_t value_offset_ = 0;
  IntrusiveList<Waiter> waiters_ SPINDLE_GUARDED_BY(lock_);       // oldest first (INV-F3)
  CallbackEntry* callbacks_ SPINDLE_GUARDED_BY(lock_) = nullptr;  // newest first
  std::exception_ptr error_;  // written by the completer before publish (INV-F2)
};

// Moves a Cancelled or other exception into an exception_ptr that result()
// rethrows.
std::exception_ptr make_cancelled(std::string msg);

}  // namespace spindle::detail
