// The I/O driver: one edge-triggered epoll per runtime, the registration of
// each socket (IoSource), and the waits of tasks on them.
//
// Who polls (Go's netpoller, inside the idle protocol of idle.hpp):
//   - a worker about to park takes the driver's token and sleeps in
//     epoll_pwait2 until its earliest timer deadline, instead of on its
//     futex (Parker::park_polling); unpark() ends that sleep through the
//     driver's eventfd. A worker that finds the token taken parks on its
//     futex as before: someone is already in epoll.
//   - a worker that visits its scheduler context (out of local work, or
//     every kMaintenanceInterval picks) polls without blocking, so busy
//     workers see sockets too.
//   - the monitor polls without blocking when nobody has polled for a
//     sampling period and nobody sleeps in epoll, so one task that never
//     yields cannot stall every socket (tokio #4730).
// Non-blocking polls need no token: epoll_wait is thread-safe and each
// poller has its own buffer. The token only says "one thread sleeps in
// epoll". So when every worker is parked, one of them holds it: the last to
// park either found it free or found it held by a parked worker.
// A poller fires the Waiters of each socket reported, FIFO and never into
// the LIFO slot (Scheduler::wake with lifo = false).
//
// An IoSource lives in a chunk of the driver's slot table and is never
// freed while the driver lives: its slot is recycled, with a new
// generation, once the fd is released and its socket object is gone. The
// epoll event names a slot by index and generation, so an event that was
// already taken from the kernel when its socket closed (and its fd number
// was reused) finds another generation and is dropped.
//
// Invariants (the readiness word's are INV-IO1..IO5 in io_state.hpp)
//   INV-IO6  A waiting task's Waiter is linked in its direction's FIFO list
//            under the source's lock, and so unlinked by whoever fires it
//            (the poller, close()) or by the task after it woke. Each edge
//            fires every Waiter of its direction: a woken task may be
//            cancelled before it retries, and waking only one could leave
//            the rest asleep beside a ready socket.
//   INV-IO7  An event is applied and its Waiters fired under the source's
//            lock, after checking the event's generation there; recycling
//            bumps the generation under the same lock. So a stale event
//            never touches a recycled socket's word (whose closed bits,
//            INV-IO4, would then stick to an innocent socket).
//   INV-IO8  ops_ counts the calls inside the socket (entered and not yet
//            left, including their waits). After kOpsClosed is set the
//            count never rises (enter() is a CAS that refuses), so it
//            reaches zero with kOpsClosed set exactly once, and whoever
//            takes it there (close() itself or the last leave()) releases
//            the fd: no thread is inside a syscall on an fd number that
//            another socket may already reuse.
//   INV-IO9  The slot is recycled exactly once, by whichever of two RMWs
//            comes second: the releaser's fetch_or of kOpsReleased, after
//            its ::close (INV-IO8), and drop_owner()'s fetch_or of
//            kOpsOwnerGone. Each reads the other's bit. Neither thread
//            touches the slot after its RMW unless it recycles: the slot
//            may already be another socket's. (An earlier version let the
//            owner recycle on seeing a zero count, while the releaser was
//            still between its count RMW and its ::close: the close then
//            hit the next socket's fd. The cold review's program found it.)
//
// Memory orders: ops_ RMWs are acq_rel, so that the releasing thread sees
// every syscall the others made on the fd before it closes it. The slot
// table's chunk pointers are published with release and read with acquire.
// Everything else a poller and a task share goes under the source's lock.
#pragma once

#include <spindle/detail/intrusive_list.hpp>
#include <spindle/detail/spin_lock.hpp>
#include <spindle/detail/thread_annotations.hpp>

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "io_state.hpp"
#include "os_mutex.hpp"
#include "waiter.hpp"

namespace spindle::detail {

class IoDriver;
class TaskCore;

// The driver's counters, read by Runtime::stats().
struct IoCounters {
  std::atomic<std::uint64_t> polls_blocking{0};
  std::atomic<std::uint64_t> polls_nonblocking{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> wakes{0};
  std::atomic<std::uint64_t> eagains{0};
  std::atomic<std::uint64_t> drained_waits{0};
  void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);  // relaxed: statistics only
  }
};

class IoSource {
 public:
  int fd() const noexcept { return fd_; }
  IoDriver& driver() const noexcept { return *driver_; }
  IoReadiness& readiness() noexcept { return readiness_; }
  bool closed() const noexcept { return (ops_.load(std::memory_order_acquire) & kOpsClosed) != 0; }

  // INV-IO8: false once closed. Every true must be matched by leave().
  bool enter() noexcept;
  void leave() noexcept;
  // Idempotent. Wakes every waiter (they see kClosing: EBADF); releases
  // the fd now, or at the last leave().
  void close() noexcept;
  // The socket object is gone: close(), then recycle once the fd is
  // released (INV-IO9).
  void drop_owner() noexcept;

  // The calling task waits until `d` may be ready, closed or in error, or
  // the task is cancelled (throws Cancelled). `what` names the wait for
  // dump_tasks(). Throws InvalidStateError on a plain thread.
  void wait(IoDirection d, const char* what);

 private:
  friend class IoDriver;
  static constexpr std::uint32_t kOpsClosed = 1u << 31;
  static constexpr std::uint32_t kOpsOwnerGone = 1u << 30;
  static constexpr std::uint32_t kOpsReleased = 1u << 29;
  static constexpr std::uint32_t kOpsCount = kOpsReleased - 1;

  // Fires every Waiter of `d` (INV-IO6) and clears its waiter bit.
  void fire_all(IoDirection d) SPINDLE_REQUIRES(lock_);
  void release_fd() noexcept;

  IoReadiness readiness_;
  std::atomic<std::uint32_t> ops_{0};
  SpinLock lock_;
  IntrusiveList<Waiter> waiters_[2] SPINDLE_GUARDED_BY(lock_);
  // INV-IO7: bumped under lock_ at recycling; read under it by the poller.
  std::uint32_t generation_ SPINDLE_GUARDED_BY(lock_) = 0;
  int fd_ = -1;
  std::uint32_t index_ = 0;
  IoDriver* driver_ = nullptr;
};

class IoDriver {
 public:
  IoDriver();
  // The runtime is done with the driver. It is freed now, or by the last
  // live socket's recycling (a socket may outlive its runtime; it can then
  // only be closed).
  void retire() noexcept;
  // retire() was called: nobody polls any more, so a wait would be forever.
  bool retired() const noexcept { return retired_.load(std::memory_order_acquire); }
  IoDriver(const IoDriver&) = delete;
  IoDriver& operator=(const IoDriver&) = delete;

  // Registers `fd` (non-blocking, owned from now on: closed on failure too)
  // for edge-triggered read and write readiness.
  IoSource* add(int fd);

  // The polling token: one poller at a time.
  bool try_acquire() noexcept;
  void release() noexcept;
  bool sleeper() const noexcept { return token_.load(std::memory_order_relaxed); }
  // Anything registered? (relaxed: a hint for who should poll)
  bool has_sources() const noexcept { return registered_.load(std::memory_order_relaxed) != 0; }

  // One epoll_pwait2 into `buf` for up to `timeout_ns` (< 0: forever, 0:
  // do not block; blocking needs the token). Returns the events stored.
  int poll(std::int64_t timeout_ns, epoll_event* buf, int cap);
  // The sleeper, after its blocking poll and before release(): drains the
  // eventfd if it was among the `n` events. The eventfd is level-triggered
  // and drained by the token holder only, so that a non-blocking poller
  // that takes its event too leaves the wakeup in place, and a sleeper
  // drains no wakeup meant for the next one (it took the token after us).
  void drain_wakeup(const epoll_event* buf, int n) noexcept;
  // Fires the Waiters of the `n` events in `buf` (the eventfd's skipped).
  void dispatch(const epoll_event* buf, int n);
  // poll(0) and dispatch, with a buffer on this stack. Returns the events.
  int poll_now();
  // Ends a blocking poll early (Parker's interrupt).
  void interrupt() noexcept;
  static void interrupt_thunk(void* self) noexcept { static_cast<IoDriver*>(self)->interrupt(); }

  std::int64_t last_poll_ns() const noexcept {
    return last_poll_ns_.load(std::memory_order_relaxed);
  }
  IoCounters& counters() noexcept { return counters_; }
  std::uint64_t registered() const noexcept { return registered_.load(std::memory_order_relaxed); }

  static constexpr int kMaxEvents = 128;  // per poll

 private:
  friend class IoSource;
  static constexpr unsigned kChunkShift = 8;
  static constexpr unsigned kChunk = 1u << kChunkShift;
  static constexpr unsigned kMaxChunks = 1u << 14;  // 4M sockets per runtime

  IoSource* slot(std::uint32_t index) const noexcept {
    return chunks_[index >> kChunkShift].load(std::memory_order_acquire) + (index & (kChunk - 1));
  }
  ~IoDriver();
  void recycle(IoSource* s) noexcept;
  void unref() noexcept;
  void deregister(int fd) noexcept;

  int epfd_ = -1;
  int eventfd_ = -1;
  std::atomic<bool> token_{false};
  std::atomic<bool> retired_{false};
  std::atomic<std::int64_t> last_poll_ns_{0};
  std::atomic<std::uint64_t> registered_{0};
  // The runtime's reference plus one per slot in use; the last unref frees.
  std::atomic<std::uint64_t> refs_{1};
  IoCounters counters_;

  OsMutex slots_mu_;
  std::vector<IoSource*> free_ SPINDLE_GUARDED_BY(slots_mu_);
  std::uint32_t next_index_ SPINDLE_GUARDED_BY(slots_mu_) = 0;
  std::atomic<IoSource*> chunks_[kMaxChunks] = {};
};

}  // namespace spindle::detail
