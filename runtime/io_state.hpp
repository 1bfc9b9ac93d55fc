// The readiness word of one registered socket: what epoll last reported
// for each direction, and whether tasks wait on it. The first piece of the
// I/O driver; the driver, the waiter lists and the slot lifetime are in
// io_driver.hpp.
//
// Roles
//   poller   apply_event(): the thread that took the driver's events (a
//            worker parked in epoll, a busy worker's non-blocking poll, the
//            monitor). Any thread, concurrently with everything.
//   task     snapshot(), clear_ready(), clear_after_short(): a task about to
//            retry or wait after EAGAIN or a short transfer. Several tasks
//            may do so at once (a listener's acceptors, a reader and a
//            writer).
//   locker   mark_waiting(), clear_waiting(): whoever holds the socket's
//            waiter-list lock (a task linking its Waiter; the poller or
//            close() emptying a list).
//   closer   mark_closing(): close(), from any thread.
//
// Layout (one std::atomic<u64>; static_asserts below pin it)
//   bit  0      kReadReady     an edge said readable and no EAGAIN cleared it
//   bit  1      kWriteReady    the same for writing
//   bit  2      kReadClosed    the peer shut down its side (RDHUP) or HUP
//   bit  3      kWriteClosed   HUP: nothing more can be written
//   bit  4      kError         ERR: the next syscall reports the error
//   bit  5      kReadWaiters   the read waiter list may be non-empty
//   bit  6      kWriteWaiters  the write waiter list may be non-empty
//   bit  7      kClosing       close() began; every wait fails with EBADF
//   bit  8      kUrgent        a PRI event: TCP urgent data came at least once
//   bits 16..39 read tick      events that touched the read side, mod 2^24
//   bits 40..63 write tick     the same for the write side
//
// Invariants
//   INV-IO1  One event is applied in one RMW, which ORs its bits and steps
//            the tick of each direction it touches, and of no other. The
//            directions are Go's: IN, RDHUP, HUP or ERR touch the read side;
//            OUT, HUP or ERR the write side. PRI touches the read side too
//            and sets kUrgent (INV-IO10). RDHUP sets kReadClosed only,
//            never a write-side bit (a peer's half-close is not a hang-up:
//            tokio #449). The ticks are separate so that a write edge never
//            makes a reader's clear fail forever (tokio #8054, one shared
//            tick made a busy writer livelock its reader).
//   INV-IO2  No lost wakeup. A waiting task links its Waiter under the list
//            lock, then sets its direction's waiter bit by an RMW, still
//            under the lock, and looks at the previous value: ready or
//            closing there (IoSnapshot::wait_would_return) means it
//            unlinks and retries instead of sleeping. The poller's RMW
//            returns the previous value too, and the poller fires the list
//            if that value had the waiter bit. Both are RMWs on this one
//            word, so one of them reads the other's write: either the task
//            sees the readiness, or the poller sees the bit and finds the
//            linked Waiter. The driver also applies each event under the
//            list lock (io_driver.hpp INV-IO7), which serializes the two
//            anyway; the RMW pairing is what the word itself promises. A
//            call whose syscall succeeds (a ready socket) takes no lock.
//   INV-IO3  A task clears kReadReady or kWriteReady only for the edge it
//            saw: clear_ready() is a CAS that succeeds only while that
//            direction's tick equals the snapshot taken before the syscall
//            that said EAGAIN. A failed clear means a newer edge arrived
//            after the snapshot, and the caller retries the syscall at once.
//            Ticks are compared at their full 24 bits (tokio #8331: a tick
//            truncated to 8 bits matched a stale snapshot and hung a read).
//            Not promised: a snapshot whose tick comes round again, after a
//            multiple of 2^24 events touching that side during one syscall,
//            passes the check and clears a readiness that only a later edge
//            restores.
//   INV-IO4  kReadClosed, kWriteClosed, kError, kClosing and kUrgent are
//            never cleared while the word lives: a socket does not reopen, and a
//            task that saw EOF or an error must see it again on every call.
//   INV-IO5  The waiter bits are set and cleared only under the list lock
//            (mark_waiting, clear_waiting), so a bit set means "look under
//            the lock" and a bit clear, read by an RMW, means the list was
//            empty when the lock was last released.
//   INV-IO10  A clear ready bit means a syscall found its side drained (the
//             receive queue empty, the send buffer full) and no edge of that
//             side has been applied since: so a call whose snapshot shows
//             its side neither ready, closed, errored nor closing (drained())
//             waits without making the syscall, which could only say EAGAIN.
//             This holds because the bit is cleared only by INV-IO3's
//             tick-checked clear, after
//               - EAGAIN, or
//               - a TCP recv or send that moved fewer bytes than asked, but
//                 more than none (clear_after_short). Linux returns short
//                 from tcp_recvmsg only once the receive queue and the
//                 backlog are empty, and from tcp_sendmsg only once the send
//                 buffer is full (it sets SOCK_NOSPACE then, so freed space
//                 raises EPOLLOUT), which is what EAGAIN says (tokio clears
//                 readiness on a short read for the same reason).
//             Any byte or space that comes after the syscall looked raises
//             an edge whose event is applied after it: before the clear,
//             the tick check fails it; after, the bit is set again. And a
//             fresh word has both ready bits set (kFresh), so every socket's
//             first call tries its syscall whatever epoll's first event says.
//             One exception, by design: a read stops short at TCP's urgent
//             mark with bytes still queued behind it, and no edge follows.
//             The driver registers EPOLLPRI, which epoll reports while an
//             urgent mark is pending; its event sets kUrgent, and
//             clear_after_short refuses once kUrgent is set, so such a
//             socket keeps the try-first rule for good. The urgent segment's
//             event is applied before the clear (kUrgent refuses it), or
//             between the snapshot and the clear (the tick refuses it), or
//             after (it sets the ready bit again). Datagram sockets never
//             clear on a short count: each recv takes one datagram.
//
// Memory orders
//   apply_event and mark_waiting are acq_rel: each publishes its write to
//   the other (INV-IO2) and acquires what the other did before it (the
//   poller needs the task's linked Waiter, which the lock's release and
//   acquire also order; the task needs the data the kernel wrote, which the
//   syscall itself orders). clear_ready is acq_rel for the same pairing
//   with apply_event, on every path: its early returns decide from an
//   acquire load. snapshot is acquire. clear_waiting is release, under the
//   lock, which orders it anyway. mark_closing is acq_rel. close() then
//   takes the list lock and fires every Waiter; a task that sets its
//   waiter bit after the closing bit reads kClosing in its RMW's previous
//   value and never sleeps, which follows from both being RMWs on this
//   word (INV-IO2) whatever their orders; acq_rel makes what close() did
//   before visible to that task.
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail {

enum class IoDirection : unsigned { kRead = 0, kWrite = 1 };

// What one RMW saw, decoded.
struct IoSnapshot {
  std::uint64_t word = 0;
  bool ready(IoDirection d) const noexcept;
  bool closed(IoDirection d) const noexcept;  // that side's closed bit
  bool error() const noexcept;
  bool closing() const noexcept;
  bool waiters(IoDirection d) const noexcept;
  std::uint32_t tick(IoDirection d) const noexcept;
  // The wait must not sleep: ready or closing. Not the closed and error
  // bits, which stay (INV-IO4): an RDHUP, HUP or ERR event also sets the
  // ready bits (INV-IO1), so the caller retries at once and meets the EOF
  // or the error; if its syscall still says EAGAIN (a UDP socket after its
  // ICMP error was reported, or shut down for reading), the clear and the
  // wait that follow must sleep, or the reader spins uncancellably.
  bool wait_would_return(IoDirection d) const noexcept;
  bool urgent() const noexcept;
  // INV-IO10: d's syscall would only say EAGAIN; wait without making it.
  bool drained(IoDirection d) const noexcept;
};

class IoReadiness {
 public:
  static constexpr std::uint64_t kReadReady = 1u << 0;
  static constexpr std::uint64_t kWriteReady = 1u << 1;
  static constexpr std::uint64_t kReadClosed = 1u << 2;
  static constexpr std::uint64_t kWriteClosed = 1u << 3;
  static constexpr std::uint64_t kError = 1u << 4;
  static constexpr std::uint64_t kReadWaiters = 1u << 5;
  static constexpr std::uint64_t kWriteWaiters = 1u << 6;
  static constexpr std::uint64_t kClosing = 1u << 7;
  static constexpr std::uint64_t kUrgent = 1u << 8;
  // A new socket's word: both sides ready, so its first calls try their
  // syscalls (INV-IO10).
  static constexpr std::uint64_t kFresh = kReadReady | kWriteReady;
  static constexpr unsigned kTickBits = 24;
  static constexpr std::uint64_t kTickMask = (std::uint64_t{1} << kTickBits) - 1;
  static constexpr unsigned kReadTickShift = 16;
  static constexpr unsigned kWriteTickShift = 40;

  static constexpr std::uint64_t ready_bit(IoDirection d) noexcept {
    return d == IoDirection::kRead ? kReadReady : kWriteReady;
  }
  static constexpr std::uint64_t closed_bit(IoDirection d) noexcept {
    return d == IoDirection::kRead ? kReadClosed : kWriteClosed;
  }
  static constexpr std::uint64_t waiter_bit(IoDirection d) noexcept {
    return d == IoDirection::kRead ? kReadWaiters : kWriteWaiters;
  }
  static constexpr unsigned tick_shift(IoDirection d) noexcept {
    return d == IoDirection::kRead ? kReadTickShift : kWriteTickShift;
  }

  // The word after an event with these epoll bits (EPOLLIN...) is applied
  // to `word`: INV-IO1's mapping and tick steps, as a pure function, so the
  // model test can check it on every bit combination.
  static std::uint64_t with_event(std::uint64_t word, std::uint32_t epoll_events) noexcept;

  // poller: applies one event (INV-IO1) and returns the word before it; its
  // waiter bits say which lists to look at under the lock (INV-IO2).
  IoSnapshot apply_event(std::uint32_t epoll_events) noexcept;

  // task: the word now, before the syscall whose EAGAIN may clear it.
  IoSnapshot snapshot() const noexcept { return IoSnapshot{word_.load(std::memory_order_acquire)}; }

  // task, after EAGAIN: clears d's ready bit if d's tick is still the one
  // in `seen` (INV-IO3). False: a newer edge came; retry the syscall.
  bool clear_ready(IoDirection d, IoSnapshot seen) noexcept;

  // task, after a TCP recv or send that moved 0 < n < asked bytes: the same
  // clear, unless urgent data ever came (INV-IO10). The call has its bytes,
  // so a failed clear only means the next call tries its syscall.
  void clear_after_short(IoDirection d, IoSnapshot seen) noexcept;

  // locker: sets d's waiter bit and returns the word before (INV-IO2, IO5).
  IoSnapshot mark_waiting(IoDirection d) noexcept {
    return IoSnapshot{word_.fetch_or(waiter_bit(d), std::memory_order_acq_rel)};
  }
  // locker: d's list is empty (INV-IO5).
  void clear_waiting(IoDirection d) noexcept {
    word_.fetch_and(~waiter_bit(d), std::memory_order_release);
  }
  // The driver, recycling the slot for a new socket: nobody else uses it.
  void reset() noexcept { word_.store(kFresh, std::memory_order_relaxed); }
  // closer: returns the word before (INV-IO4: the bit stays).
  IoSnapshot mark_closing() noexcept {
    return IoSnapshot{word_.fetch_or(kClosing, std::memory_order_acq_rel)};
  }

 private:
  // clear_ready's CAS loop; leaves the bit set while the word has any bit
  // of `refuse`.
  bool clear_unless(IoDirection d, IoSnapshot seen, std::uint64_t refuse) noexcept;

  std::atomic<std::uint64_t> word_{kFresh};
};

static_assert(IoReadiness::kUrgent < (std::uint64_t{1} << IoReadiness::kReadTickShift),
              "the flag bits sit below the read tick");
static_assert(IoReadiness::kReadTickShift + IoReadiness::kTickBits == IoReadiness::kWriteTickShift,
              "the read tick ends where the write tick begins");
static_assert(IoReadiness::kWriteTickShift + IoReadiness::kTickBits == 64,
              "the write tick fills the word's top bits");

inline bool IoSnapshot::ready(IoDirection d) const noexcept {
  return (word & IoReadiness::ready_bit(d)) != 0;
}
inline bool IoSnapshot::closed(IoDirection d) const noexcept {
  return (word & IoReadiness::closed_bit(d)) != 0;
}
inline bool IoSnapshot::error() const noexcept { return (word & IoReadiness::kError) != 0; }
inline bool IoSnapshot::closing() const noexcept { return (word & IoReadiness::kClosing) != 0; }
inline bool IoSnapshot::waiters(IoDirection d) const noexcept {
  return (word & IoReadiness::waiter_bit(d)) != 0;
}
inline std::uint32_t IoSnapshot::tick(IoDirection d) const noexcept {
  return static_cast<std::uint32_t>((word >> IoReadiness::tick_shift(d)) & IoReadiness::kTickMask);
}
inline bool IoSnapshot::wait_would_return(IoDirection d) const noexcept {
  return ready(d) || closing();
}
inline bool IoSnapshot::urgent() const noexcept { return (word & IoReadiness::kUrgent) != 0; }
inline bool IoSnapshot::drained(IoDirection d) const noexcept {
  // Not after EOF or an error (INV-IO4): the syscall reports those.
  return !ready(d) && !closed(d) && !error() && !closing();
}

}  // namespace spindle::detail
