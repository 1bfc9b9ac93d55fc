// The readiness word of a socket (runtime/io_state.hpp) on its own, with
// no driver: every epoll bit combination against INV-IO1's mapping, the
// split ticks and their wrap, the clear rule (INV-IO3, INV-IO4), and,
// across two threads, that a task about to sleep and the poller applying
// an edge never miss each other (INV-IO2).
#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "io_state.hpp"
#include "runtime_fixture.hpp"

namespace {

using spindle::detail::IoDirection;
using spindle::detail::IoReadiness;
using spindle::detail::IoSnapshot;

constexpr IoDirection kRead = IoDirection::kRead;
constexpr IoDirection kWrite = IoDirection::kWrite;

IoSnapshot after(std::uint64_t word, std::uint32_t events) {
  return IoSnapshot{IoReadiness::with_event(word, events)};
}

TEST(IoState, APeersHalfCloseClosesTheReadSideOnly) {
  IoSnapshot s = after(0, EPOLLIN | EPOLLRDHUP);
  EXPECT_TRUE(s.ready(kRead));
  EXPECT_TRUE(s.closed(kRead));
  EXPECT_FALSE(s.ready(kWrite));
  EXPECT_FALSE(s.closed(kWrite)) << "RDHUP must not look like a hang-up (a writer may go on)";
  EXPECT_EQ(s.tick(kRead), 1u);
  EXPECT_EQ(s.tick(kWrite), 0u);
}

TEST(IoState, HangUpAndErrorWakeBothSides) {
  IoSnapshot hup = after(0, EPOLLHUP);
  EXPECT_TRUE(hup.closed(kRead) && hup.closed(kWrite));
  EXPECT_TRUE(hup.ready(kRead) && hup.ready(kWrite));
  EXPECT_FALSE(hup.error());
  IoSnapshot err = after(0, EPOLLERR);
  EXPECT_TRUE(err.error());
  EXPECT_TRUE(err.wait_would_return(kRead) && err.wait_would_return(kWrite));
  EXPECT_EQ(err.tick(kRead), 1u);
  EXPECT_EQ(err.tick(kWrite), 1u);
}

// INV-IO1 over all 64 combinations of the six bits that matter, applied to
// a word that already has flags and ticks: bits are only added, and each
// tick steps by one exactly when its side is touched.
TEST(IoState, EveryEventStepsTheTicksOfTheSidesItTouchesAndNoOther) {
  const std::uint32_t bits[] = {EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR, EPOLLPRI};
  const std::uint64_t start = (std::uint64_t{77} << IoReadiness::kReadTickShift) |
                              (std::uint64_t{5} << IoReadiness::kWriteTickShift) |
                              IoReadiness::kReadWaiters;
  for (unsigned mask = 0; mask < 64; ++mask) {
    std::uint32_t ev = 0;
    for (unsigned b = 0; b < 6; ++b) {
      if ((mask & (1u << b)) != 0) {
        ev |= bits[b];
      }
    }
    const bool reads = (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    const bool writes = (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    IoSnapshot s = after(start, ev);
    SCOPED_TRACE(mask);
    EXPECT_EQ(s.word & start & ~(IoReadiness::kTickMask << IoReadiness::kReadTickShift) &
                  ~(IoReadiness::kTickMask << IoReadiness::kWriteTickShift),
              IoReadiness::kReadWaiters)
        << "a flag was lost";
    EXPECT_EQ(s.tick(kRead), reads ? 78u : 77u);
    EXPECT_EQ(s.tick(kWrite), writes ? 6u : 5u);
    EXPECT_EQ(s.ready(kRead), reads);
    EXPECT_EQ(s.ready(kWrite), writes);
    EXPECT_EQ(s.closed(kRead), (ev & (EPOLLRDHUP | EPOLLHUP)) != 0);
    EXPECT_EQ(s.closed(kWrite), (ev & EPOLLHUP) != 0);
    EXPECT_EQ(s.error(), (ev & EPOLLERR) != 0);
    EXPECT_EQ(s.urgent(), (ev & EPOLLPRI) != 0);
  }
}

TEST(IoState, TicksWrapInsideTheirOwnBits) {
  const std::uint64_t full_read = IoReadiness::kTickMask << IoReadiness::kReadTickShift;
  IoSnapshot r = after(full_read | (std::uint64_t{9} << IoReadiness::kWriteTickShift), EPOLLIN);
  EXPECT_EQ(r.tick(kRead), 0u);
  EXPECT_EQ(r.tick(kWrite), 9u) << "the read tick carried into the write tick";
  const std::uint64_t full_write = IoReadiness::kTickMask << IoReadiness::kWriteTickShift;
  IoSnapshot w = after(full_write | (std::uint64_t{3} << IoReadiness::kReadTickShift), EPOLLOUT);
  EXPECT_EQ(w.tick(kWrite), 0u);
  EXPECT_EQ(w.tick(kRead), 3u);
  EXPECT_TRUE(w.ready(kWrite));
}

// INV-IO3: the tick is compared at its full width. A snapshot 256 edges
// old (the same low 8 bits) must not pass.
TEST(IoState, AClearFailsAfterANewerEdgeOfItsSideEvenAFullByteOfThemLater) {
  IoReadiness r;
  r.apply_event(EPOLLIN);
  IoSnapshot seen = r.snapshot();
  for (int i = 0; i < 256; ++i) {
    r.apply_event(EPOLLIN);
  }
  EXPECT_EQ(r.snapshot().tick(kRead) & 0xff, seen.tick(kRead) & 0xff);
  EXPECT_FALSE(r.clear_ready(kRead, seen));
  EXPECT_TRUE(r.snapshot().ready(kRead)) << "a newer edge's readiness was cleared";
  EXPECT_TRUE(r.clear_ready(kRead, r.snapshot()));
  EXPECT_FALSE(r.snapshot().ready(kRead));
}

// INV-IO1/IO3: a busy writer's edges do not fail a reader's clear (one
// shared tick would: the reader retries forever while the writer writes).
TEST(IoState, WriteEdgesDoNotFailAReadersClear) {
  IoReadiness r;
  r.apply_event(EPOLLIN | EPOLLOUT);
  IoSnapshot seen = r.snapshot();
  for (int i = 0; i < 10; ++i) {
    r.apply_event(EPOLLOUT);
  }
  EXPECT_TRUE(r.clear_ready(kRead, seen));
  IoSnapshot now = r.snapshot();
  EXPECT_FALSE(now.ready(kRead));
  EXPECT_TRUE(now.ready(kWrite)) << "the read clear touched the write side";
}

// INV-IO4: EOF and errors stay, so every later call sees them.
TEST(IoState, AClearKeepsClosedErrorAndClosing) {
  IoReadiness r;
  r.apply_event(EPOLLIN | EPOLLRDHUP | EPOLLERR);
  r.mark_closing();
  EXPECT_TRUE(r.clear_ready(kRead, r.snapshot()));
  IoSnapshot s = r.snapshot();
  EXPECT_FALSE(s.ready(kRead));
  EXPECT_TRUE(s.closed(kRead) && s.error() && s.closing());
  EXPECT_TRUE(s.wait_would_return(kRead)) << "closing stops every wait";
}

// The closed and error bits stay (INV-IO4) but do not stop a wait by
// themselves: once an EAGAIN cleared the ready bit they set, a wait must
// sleep. A UDP socket shut down for reading, or whose ICMP error was
// already reported, says EAGAIN with both bits set; stopping the wait
// there would spin its reader, uncancellably.
TEST(IoState, ClosedAndErrorBitsAloneDoNotStopAWait) {
  IoReadiness r;
  r.apply_event(EPOLLIN | EPOLLRDHUP | EPOLLERR);
  IoSnapshot seen = r.snapshot();
  EXPECT_TRUE(seen.wait_would_return(kRead)) << "the event's ready bit: retry the syscall first";
  EXPECT_TRUE(r.clear_ready(kRead, seen));
  IoSnapshot s = r.mark_waiting(kRead);
  EXPECT_TRUE(s.closed(kRead) && s.error());
  EXPECT_FALSE(s.wait_would_return(kRead));
}

TEST(IoState, WaiterBitsComeAndGoUnderTheLockOnly) {
  IoReadiness r;
  EXPECT_FALSE(r.mark_waiting(kRead).waiters(kRead));
  EXPECT_TRUE(r.mark_waiting(kRead).waiters(kRead));
  EXPECT_FALSE(r.snapshot().waiters(kWrite));
  IoSnapshot before = r.apply_event(EPOLLIN);
  EXPECT_TRUE(before.waiters(kRead)) << "the poller would not look at the list";
  r.clear_waiting(kRead);
  EXPECT_FALSE(r.snapshot().waiters(kRead));
  EXPECT_TRUE(r.snapshot().ready(kRead)) << "clear_waiting touched readiness";
}

// INV-IO10: a new socket's first call tries its syscall, and an EAGAIN
// makes the next call wait without one, until an edge comes.
TEST(IoState, AFreshWordIsReadyBothWaysAndAClearedOneIsDrained) {
  IoReadiness r;
  IoSnapshot fresh = r.snapshot();
  EXPECT_TRUE(fresh.ready(kRead) && fresh.ready(kWrite));
  EXPECT_FALSE(fresh.drained(kRead) || fresh.drained(kWrite));
  EXPECT_EQ(fresh.tick(kRead), 0u);
  r.reset();
  EXPECT_EQ(r.snapshot().word, IoReadiness::kFresh) << "a recycled slot starts like a new one";
  EXPECT_TRUE(r.clear_ready(kRead, r.snapshot()));
  EXPECT_TRUE(r.snapshot().drained(kRead));
  EXPECT_FALSE(r.snapshot().drained(kWrite)) << "the read clear touched the write side";
  r.apply_event(EPOLLIN);
  EXPECT_FALSE(r.snapshot().drained(kRead));
}

// INV-IO10 with INV-IO4: EOF, an error or close() make every call try its
// syscall (or fail) even with the ready bit cleared, since no edge may come.
TEST(IoState, EofErrorAndClosingAreNeverDrained) {
  const std::uint32_t events[] = {EPOLLRDHUP, EPOLLHUP, EPOLLERR};
  for (std::uint32_t ev : events) {
    IoReadiness r;
    r.apply_event(ev);
    EXPECT_TRUE(r.clear_ready(kRead, r.snapshot()));
    EXPECT_FALSE(r.snapshot().drained(kRead)) << "event " << ev;
  }
  IoReadiness c;
  EXPECT_TRUE(c.clear_ready(kWrite, c.snapshot()));
  c.mark_closing();
  EXPECT_FALSE(c.snapshot().drained(kWrite));
}

// INV-IO10: a short count clears like EAGAIN, under the same tick check,
// unless urgent data ever came (a read can stop at the urgent mark with
// bytes still queued, and no edge follows).
TEST(IoState, AShortCountClearsLikeEagainButNeverAfterUrgentData) {
  IoReadiness r;
  IoSnapshot seen = r.snapshot();
  r.clear_after_short(kRead, seen);
  EXPECT_TRUE(r.snapshot().drained(kRead));

  IoReadiness newer;
  IoSnapshot old_seen = newer.snapshot();
  newer.apply_event(EPOLLIN);  // an edge between the snapshot and the clear
  newer.clear_after_short(kRead, old_seen);
  EXPECT_TRUE(newer.snapshot().ready(kRead)) << "a newer edge's readiness was cleared";

  IoReadiness urgent;
  urgent.apply_event(EPOLLIN | EPOLLPRI);
  IoSnapshot u = urgent.snapshot();
  EXPECT_TRUE(u.urgent());
  urgent.clear_after_short(kRead, u);
  EXPECT_TRUE(urgent.snapshot().ready(kRead)) << "a short read at the urgent mark cleared";
  EXPECT_TRUE(urgent.clear_ready(kRead, urgent.snapshot())) << "EAGAIN still clears";
  EXPECT_TRUE(urgent.snapshot().urgent()) << "kUrgent is never cleared (INV-IO4)";
}

TEST(IoState, APriorityEventIsARead) {
  IoSnapshot s = after(0, EPOLLPRI);
  EXPECT_TRUE(s.ready(kRead) && s.urgent());
  EXPECT_EQ(s.tick(kRead), 1u);
  EXPECT_FALSE(s.ready(kWrite));
  EXPECT_EQ(s.tick(kWrite), 0u);
}

// INV-IO2 across threads. Round i, on its own word: a task that found the
// socket not ready links a waiter under the list lock and sets its waiter
// bit (retrying if the bit's RMW saw readiness or closing); the poller
// applies an edge and, if its RMW saw the bit, takes the lock and fires
// the linked waiter; or close() does the same with its closing bit. The
// two threads meet at the start of each round, so the RMWs land in both
// orders. The task must always end up either seeing the edge or fired.
struct Socket {
  Socket() { (void)word.clear_ready(kRead, word.snapshot()); }  // drained, as after EAGAIN
  IoReadiness word;
  std::mutex list_lock;
  bool linked = false;             // guarded by list_lock
  std::atomic<bool> fired{false};  // set under list_lock
};

void fire_waiters(Socket& s) {
  std::lock_guard<std::mutex> g(s.list_lock);
  if (s.linked) {
    s.linked = false;
    s.fired.store(true, std::memory_order_release);
  }
  s.word.clear_waiting(kRead);
}

TEST(IoState, ATaskAboutToSleepAndAnEdgeNeverMissEachOther) {
  const long rounds = spindle::testing::scaled(3000);
  std::vector<std::unique_ptr<Socket>> sockets;
  for (long i = 0; i < rounds; ++i) {
    sockets.push_back(std::make_unique<Socket>());
  }
  std::atomic<long> task_at{-1};
  std::atomic<long> poller_at{-1};
  std::atomic<long> lost{-1};
  std::atomic<long> slept{0};
  auto meet = [&lost](std::atomic<long>& mine, std::atomic<long>& other, long i) {
    mine.store(i, std::memory_order_release);
    while (other.load(std::memory_order_acquire) < i && lost.load() < 0) {
      std::this_thread::yield();
    }
  };
  std::thread poller([&] {
    for (long i = 0; i < rounds; ++i) {
      meet(poller_at, task_at, i);
      Socket& s = *sockets[static_cast<std::size_t>(i)];
      if (i % 3 == 2) {
        s.word.mark_closing();  // every third round close() instead: it fires
        fire_waiters(s);        // whatever is linked, whatever the bits said
      } else if (s.word.apply_event(EPOLLIN).waiters(kRead)) {
        fire_waiters(s);
      }
    }
  });
  for (long i = 0; i < rounds && lost.load() < 0; ++i) {
    meet(task_at, poller_at, i);
    Socket& s = *sockets[static_cast<std::size_t>(i)];
    if (s.word.snapshot().wait_would_return(kRead)) {
      continue;  // the fast path: no lock
    }
    {
      std::lock_guard<std::mutex> g(s.list_lock);
      s.linked = true;
      if (s.word.mark_waiting(kRead).wait_would_return(kRead)) {
        s.linked = false;  // ready meanwhile: retry instead of sleeping
        continue;
      }
    }
    slept.fetch_add(1, std::memory_order_relaxed);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!s.fired.load(std::memory_order_acquire)) {
      if (std::chrono::steady_clock::now() > until) {
        lost.store(i);
        break;
      }
      std::this_thread::yield();
    }
  }
  poller.join();
  EXPECT_LT(lost.load(), 0) << "round " << lost.load() << ": the waiter slept through its edge";
  std::printf("[ measured ] %ld of %ld rounds slept and were fired\n", slept.load(), rounds);
  EXPECT_GT(slept.load(), 0) << "no round exercised the sleeping side of the race";
}

}  // namespace
