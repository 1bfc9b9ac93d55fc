// The readiness word's transitions (io_state.hpp: INV-IO1, INV-IO3,
// INV-IO10).
#include "io_state.hpp"

#include <sys/epoll.h>

namespace spindle::detail {

namespace {

constexpr std::uint32_t kReadEvents = EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t kWriteEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;

// `word` with d's tick one step on, wrapping inside its 24 bits and
// carrying into nothing else (INV-IO1, INV-IO3's full-width compare).
std::uint64_t step_tick(std::uint64_t word, IoDirection d) noexcept {
  const unsigned shift = IoReadiness::tick_shift(d);
  const std::uint64_t tick = ((word >> shift) + 1) & IoReadiness::kTickMask;
  return (word & ~(IoReadiness::kTickMask << shift)) | (tick << shift);
}

}  // namespace

std::uint64_t IoReadiness::with_event(std::uint64_t word, std::uint32_t epoll_events) noexcept {
  // INV-IO1: Go's mapping. RDHUP closes the read side only (tokio #449).
  if ((epoll_events & kReadEvents) != 0) {
    word = step_tick(word | kReadReady, IoDirection::kRead);
  }
  if ((epoll_events & kWriteEvents) != 0) {
    word = step_tick(word | kWriteReady, IoDirection::kWrite);
  }
  if ((epoll_events & (EPOLLRDHUP | EPOLLHUP)) != 0) {
    word |= kReadClosed;
  }
  if ((epoll_events & EPOLLHUP) != 0) {
    word |= kWriteClosed;
  }
  if ((epoll_events & EPOLLERR) != 0) {
    word |= kError;
  }
  if ((epoll_events & EPOLLPRI) != 0) {
    word |= kUrgent;  // INV-IO10: no more clears on a short count
  }
  return word;
}

IoSnapshot IoReadiness::apply_event(std::uint32_t epoll_events) noexcept {
  // INV-IO1: one RMW for the whole event. acq_rel: INV-IO2's pairing with
  // mark_waiting (io_state.hpp, memory orders); the failure load is
  // relaxed because the retried CAS is what orders.
  std::uint64_t old = word_.load(std::memory_order_relaxed);
  while (!word_.compare_exchange_weak(old, with_event(old, epoll_events), std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
  }
  return IoSnapshot{old};
}

bool IoReadiness::clear_ready(IoDirection d, IoSnapshot seen) noexcept {
  return clear_unless(d, seen, 0);
}

void IoReadiness::clear_after_short(IoDirection d, IoSnapshot seen) noexcept {
  // INV-IO10: an urgent mark can end a read short with bytes still queued.
  (void)clear_unless(d, seen, kUrgent);
}

bool IoReadiness::clear_unless(IoDirection d, IoSnapshot seen, std::uint64_t refuse) noexcept {
  // INV-IO3: clear only while d's tick is the one seen before the syscall.
  // INV-IO4: only the ready bit goes; the closed and error bits stay.
  // Acquire loads, also on the CAS's failure: both early returns decide
  // from them, and the caller may rely on what the poller published.
  std::uint64_t old = word_.load(std::memory_order_acquire);
  for (;;) {
    if (IoSnapshot{old}.tick(d) != seen.tick(d)) {
      return false;  // a newer edge: the caller retries the syscall
    }
    if (!IoSnapshot{old}.ready(d)) {
      return true;  // another task's clear of the same edge won
    }
    if ((old & refuse) != 0) {
      return true;  // INV-IO10: the bit stays; the next call tries its syscall
    }
    if (word_.compare_exchange_weak(old, old & ~ready_bit(d), std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      return true;
    }
  }
}

}  // namespace spindle::detail
