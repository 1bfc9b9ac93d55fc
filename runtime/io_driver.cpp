#include "io_driver.hpp"

#include <spindle/detail/task_core.hpp>

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <system_error>

#include "park.hpp"
#include "timer.hpp"

namespace spindle::detail {
namespace {

// The eventfd's epoll data: no slot has this index.
constexpr std::uint64_t kEventfdTag = ~std::uint64_t{0};

std::uint64_t event_tag(std::uint32_t index, std::uint32_t generation) noexcept {
  return (static_cast<std::uint64_t>(generation) << 32) | index;
}

[[noreturn]] void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

// ---------------------------------------------------------------------------
// IoSource
// ---------------------------------------------------------------------------

bool IoSource::enter() noexcept {
  std::uint32_t v = ops_.load(std::memory_order_relaxed);
  do {
    if ((v & kOpsClosed) != 0) {
      return false;  // INV-IO8: the count never rises once closed
    }
    // acq_rel on success: orders our syscalls after the socket's setup and
    // before a releaser's close (INV-IO8).
  } while (
      !ops_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_relaxed));
  return true;
}

void IoSource::leave() noexcept {
  // acq_rel: our syscalls happen-before the release of the fd by whoever
  // takes the count to zero, and theirs before ours if it is us.
  const std::uint32_t v = ops_.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if ((v & kOpsClosed) != 0 && (v & kOpsCount) == 0) {
    release_fd();  // INV-IO8: the last call out of a closed socket
  }
}

void IoSource::close() noexcept {
  const std::uint32_t v = ops_.fetch_or(kOpsClosed, std::memory_order_acq_rel);
  if ((v & kOpsClosed) != 0) {
    return;  // idempotent
  }
  // INV-IO2 with kClosing: a waiter that links after this RMW reads it in
  // its mark_waiting and does not sleep; one linked before is fired here.
  readiness_.mark_closing();
  {
    SpinGuard g(lock_);
    fire_all(IoDirection::kRead);
    fire_all(IoDirection::kWrite);
  }
  if ((v & kOpsCount) == 0) {
    release_fd();  // INV-IO8: nobody inside
  }
}

void IoSource::drop_owner() noexcept {
  close();
  // INV-IO9: acq_rel pairs with release_fd()'s RMW: whichever is second
  // sees the other's bit, and the releaser's ::close happens-before it.
  const std::uint32_t v = ops_.fetch_or(kOpsOwnerGone, std::memory_order_acq_rel);
  if ((v & kOpsReleased) != 0) {
    driver_->recycle(this);
  }
}

void IoSource::release_fd() noexcept {
  driver_->deregister(fd_);
  ::close(fd_);
  // INV-IO9: after this RMW the slot is not ours unless we recycle it.
  IoDriver* driver = driver_;
  const std::uint32_t v = ops_.fetch_or(kOpsReleased, std::memory_order_acq_rel);
  if ((v & kOpsOwnerGone) != 0) {
    driver->recycle(this);
  }
}

void IoSource::fire_all(IoDirection d) {
  auto& list = waiters_[static_cast<unsigned>(d)];
  while (Waiter* w = list.pop_front()) {
    w->linked = false;
    // INV-W1: one wake per Waiter; a canceller that won already woke it.
    // INV-W2: under the lock we found it by, so the owner cannot be gone.
    if (w->try_fire()) {
      driver_->counters_.bump(driver_->counters_.wakes);
      wake_waiter_owner(w, /*lifo=*/false);
    }
  }
  readiness_.clear_waiting(d);  // INV-IO5: under the lock, list empty
}

void IoSource::wait(IoDirection d, const char* what) {
  TaskCore* self = task_or_throw(what);
  Waiter w;
  w.root = running_root();
  auto& list = waiters_[static_cast<unsigned>(d)];
  {
    SpinGuard g(lock_);
    list.push_back(&w);
    w.linked = true;
    // INV-IO2: linked, then the bit by an RMW that reads what the poller
    // (or close()) did before it.
    const IoSnapshot before = readiness_.mark_waiting(d);
    if (before.wait_would_return(d)) {
      list.remove(&w);
      w.linked = false;
      if (list.empty()) {
        readiness_.clear_waiting(d);
      }
      return;  // the caller retries its syscall
    }
  }
  park_current(self, w, what);
  {
    SpinGuard g(lock_);
    if (w.linked) {  // woken by cancel(), a timeout: still in the list
      list.remove(&w);
      w.linked = false;
      if (list.empty()) {
        readiness_.clear_waiting(d);
      }
    }
  }
  deliver_pending_cancel(self);
}

// ---------------------------------------------------------------------------
// IoDriver
// ---------------------------------------------------------------------------

IoDriver::IoDriver() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    throw_errno(errno, "spindle: epoll_create1");
  }
  eventfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eventfd_ < 0) {
    const int err = errno;
    ::close(epfd_);
    throw_errno(err, "spindle: eventfd");
  }
  // Level-triggered, and drained only by the sleeper (dispatch): a
  // non-blocking poller may take the same event, and with an edge it would
  // swallow the wakeup meant for the thread in epoll.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEventfdTag;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, eventfd_, &ev) != 0) {
    const int err = errno;
    ::close(eventfd_);
    ::close(epfd_);
    throw_errno(err, "spindle: epoll_ctl(eventfd)");
  }
}

IoDriver::~IoDriver() {
  ::close(eventfd_);
  ::close(epfd_);
  for (auto& c : chunks_) {
    delete[] c.load(std::memory_order_relaxed);
  }
}

void IoDriver::retire() noexcept {
  retired_.store(true, std::memory_order_release);
  unref();
}

void IoDriver::unref() noexcept {
  // acq_rel: every slot's last use happens-before the delete.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete this;
  }
}

IoSource* IoDriver::add(int fd) {
  IoSource* s = nullptr;
  std::uint32_t generation = 0;
  {
    OsLock lock(slots_mu_);
    if (!free_.empty()) {
      s = free_.back();
      free_.pop_back();
    } else {
      const std::uint32_t index = next_index_;
      if ((index >> kChunkShift) >= kMaxChunks) {
        lock.unlock();
        ::close(fd);
        throw_errno(EMFILE, "spindle: too many sockets in one runtime");
      }
      if ((index & (kChunk - 1)) == 0) {
        IoSource* chunk = new (std::nothrow) IoSource[kChunk];
        if (chunk == nullptr) {
          lock.unlock();
          ::close(fd);  // add() owns fd, also when it fails
          throw std::bad_alloc();
        }
        // release: the slots' construction before any reader's acquire.
        chunks_[index >> kChunkShift].store(chunk, std::memory_order_release);
      }
      ++next_index_;
      s = slot(index);
      s->index_ = index;
      s->driver_ = this;
    }
  }
  {
    SpinGuard g(s->lock_);
    generation = s->generation_;
  }
  // The slot is ours alone now: recycled (nobody inside, no waiter), and a
  // stale event for its old generation is dropped (INV-IO7).
  s->readiness_.reset();
  s->ops_.store(0, std::memory_order_relaxed);
  s->fd_ = fd;
  refs_.fetch_add(1, std::memory_order_relaxed);  // relaxed: our caller holds a reference
  registered_.fetch_add(1, std::memory_order_relaxed);
  epoll_event ev{};
  // EPOLLPRI: urgent data must stop short-count clears (INV-IO10).
  ev.events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = event_tag(s->index_, generation);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    // Never published: release and recycle it here (INV-IO8, IO9 by hand).
    ::close(fd);
    registered_.fetch_sub(1, std::memory_order_relaxed);
    s->ops_.store(IoSource::kOpsClosed | IoSource::kOpsReleased | IoSource::kOpsOwnerGone,
                  std::memory_order_relaxed);
    recycle(s);
    throw_errno(err, "spindle: epoll_ctl(ADD)");
  }
  return s;
}

void IoDriver::deregister(int fd) noexcept {
  // Closing the fd would drop it from the epoll set anyway unless a dup of
  // it lives on (a fork, dup()): then only this removes it.
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  registered_.fetch_sub(1, std::memory_order_relaxed);
}

void IoDriver::recycle(IoSource* s) noexcept {
  {
    SpinGuard g(s->lock_);
    ++s->generation_;  // INV-IO7: stale events for the old fd now miss
  }
  {
    OsLock lock(slots_mu_);
    free_.push_back(s);
  }
  unref();
}

bool IoDriver::try_acquire() noexcept {
  // acquire/release: the token guards no data, only who sleeps in epoll;
  // they order the holders' polls one after the other all the same.
  return !token_.load(std::memory_order_relaxed) &&
         !token_.exchange(true, std::memory_order_acquire);
}

void IoDriver::release() noexcept { token_.store(false, std::memory_order_release); }

int IoDriver::poll(std::int64_t timeout_ns, epoll_event* buf, int cap) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    tsp = &ts;
  }
  counters_.bump(timeout_ns == 0 ? counters_.polls_nonblocking : counters_.polls_blocking);
  int n = ::epoll_pwait2(epfd_, buf, cap, tsp, nullptr);
  if (n < 0 && errno == ENOSYS) {
    // A kernel before 5.11 (or a seccomp filter): milliseconds, rounded
    // up so that a timer is never polled early in a loop.
    const int ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999'999) / 1'000'000);
    n = ::epoll_wait(epfd_, buf, cap, ms);
  }
  if (n < 0) {
    n = 0;  // EINTR: as a spurious wakeup, every caller re-checks
  }
  // relaxed: the monitor's "nobody polled lately" hint
  last_poll_ns_.store(now_ns(), std::memory_order_relaxed);
  return n;
}

void IoDriver::drain_wakeup(const epoll_event* buf, int n) noexcept {
  for (int i = 0; i < n; ++i) {
    if (buf[i].data.u64 == kEventfdTag) {
      std::uint64_t drained;
      [[maybe_unused]] ssize_t r = ::read(eventfd_, &drained, sizeof drained);
      return;
    }
  }
}

void IoDriver::dispatch(const epoll_event* buf, int n) {
  std::uint64_t events = 0;
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = buf[i];
    if (ev.data.u64 == kEventfdTag) {
      continue;  // the sleeper drained it (drain_wakeup)
    }
    ++events;
    const auto index = static_cast<std::uint32_t>(ev.data.u64);
    const auto generation = static_cast<std::uint32_t>(ev.data.u64 >> 32);
    IoSource* s = slot(index);
    SpinGuard g(s->lock_);
    if (s->generation_ != generation) {
      continue;  // INV-IO7: the socket it was for is gone
    }
    // INV-IO1: one RMW per event; INV-IO2: its previous value says whom to wake.
    const IoSnapshot before = s->readiness_.apply_event(ev.events);
    const IoSnapshot after{IoReadiness::with_event(before.word, ev.events)};
    for (IoDirection d : {IoDirection::kRead, IoDirection::kWrite}) {
      if (before.waiters(d) && after.tick(d) != before.tick(d)) {
        s->fire_all(d);
      }
    }
  }
  counters_.bump(counters_.events, events);
}

int IoDriver::poll_now() {
  epoll_event buf[kMaxEvents];
  const int n = poll(0, buf, kMaxEvents);
  dispatch(buf, n);
  return n;
}

void IoDriver::interrupt() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(eventfd_, &one, sizeof one);
}

}  // namespace spindle::detail
