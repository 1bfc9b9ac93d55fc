#include "monitor.hpp"

#include <cstdio>
#include <string>
#include <system_error>

#include "atomic.hpp"
#include "fault.hpp"
#include "scheduler.hpp"
#include "task_access.hpp"
#include "timer.hpp"
#include "worker.hpp"

namespace spindle::detail {

Monitor::Monitor(Scheduler& sched, unsigned workers, std::chrono::milliseconds threshold)
    : sched_(sched), workers_(workers), threshold_(threshold), slots_(new Slot[workers]) {}

Monitor::~Monitor() { stop(); }

void Monitor::start() {
  if (fault::should_fail(fault::Site::kThread)) {
    throw std::system_error(EAGAIN, std::generic_category(), "spindle: cannot start the monitor");
  }
  thread_ = std::thread([this] { run(); });
}

void Monitor::stop() {
  {
    OsLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Monitor::set_parked(unsigned worker, bool parked) noexcept {
  slots_[worker].parked.store(parked, std::memory_order_relaxed);
  if (parked) {
    parked_count_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  parked_count_.fetch_sub(1, std::memory_order_seq_cst);
  // INV-MN1 (monitor.hpp), StoreLoad: our decrement, a full fence, then
  // deep_sleep_; the monitor stores deep_sleep_, fences, then reads the
  // count: Dekker's pattern. The four accesses are seq_cst, so their one
  // total order alone forbids both reading the old value: either it sees
  // us unparked, or we see it asleep and wake it. The fences add nothing to
  // that and cost nothing here (a worker leaving its park); they keep both
  // sides in the fence form the rest of the runtime's StoreLoad pairs use.
  full_fence();
  if (deep_sleep_.load(std::memory_order_seq_cst)) {
    OsLock lock(mu_);
    cv_.notify_all();
  }
}

void Monitor::run() {
  pthread_setname_np(pthread_self(), "spindle-monitor");
  auto period = kPeriod;
  if (threshold_.count() > 0 && threshold_ / 2 < period) {
    period = std::max(threshold_ / 2, std::chrono::milliseconds(1));
  }
  OsLock lock(mu_);
  while (!stop_) {
    if (parked_count_.load(std::memory_order_relaxed) == workers_) {
      // Everyone sleeps: so do we, until a worker unparks.
      // INV-MN1: our store, fence, then the count; pairs with
      // set_parked(false)'s decrement, fence and deep_sleep_ load.
      // Forbidden: we read every worker parked and sleep while the worker
      // that unparked reads deep_sleep_ false and does not wake us.
      deep_sleep_.store(true, std::memory_order_seq_cst);
      full_fence();
      if (parked_count_.load(std::memory_order_seq_cst) == workers_) {
        lock.wait(cv_);
      }
      deep_sleep_.store(false, std::memory_order_relaxed);
      continue;
    }
    lock.wait_for(cv_, period);
    if (stop_) {
      break;
    }
    lock.unlock();
    check(now_ns() / 1'000'000);
    lock.lock();
  }
}

void Monitor::check(std::int64_t now_ms) {
  // io_driver.hpp: nobody sleeps in epoll and nobody has polled for a
  // period, so every worker is busy: look at the sockets for them.
  IoDriver& io = sched_.io();
  if (io.has_sources() && !io.sleeper() &&
      now_ms - io.last_poll_ns() / 1'000'000 >= kPeriod.count()) {
    io.poll_now();
  }
  bool stuck_with_work = false;
  for (unsigned i = 0; i < workers_; ++i) {
    Slot& s = slots_[i];
    Worker& w = sched_.worker(i);
    std::uint64_t ticks = w.ticks();
    TaskCore* lifo = w.lifo_peek();
    bool busy = s.busy.load(std::memory_order_relaxed) && !s.parked.load(std::memory_order_relaxed);
    if (!busy || ticks != s.seen_ticks || s.seen_at_ms == 0) {
      s.seen_ticks = ticks;
      s.seen_at_ms = now_ms;
      s.seen_lifo = lifo;
      s.warned = false;
      continue;
    }
    // Stuck for a whole period.
    if (lifo != nullptr && lifo == s.seen_lifo) {
      w.rescue_lifo(lifo);
    }
    s.seen_lifo = w.lifo_peek();
    stuck_with_work = stuck_with_work || w.has_stealable_work();
    if (threshold_.count() <= 0 || s.warned || now_ms - s.seen_at_ms < threshold_.count()) {
      continue;
    }
    s.warned = true;
    std::uint64_t id = 0;
    std::string name;
    if (!sched_.registry().describe_running(w.running(), &id, &name)) {
      continue;  // it has just switched away: not stuck after all
    }
    std::fprintf(stderr,
                 "spindle: task '%s' (id %llu) has run for %lld ms on worker %u without "
                 "suspending; it blocks that worker. Move blocking calls to to_thread(), or call "
                 "check_cancelled()/yield() in long loops.\n",
                 name.c_str(), static_cast<unsigned long long>(id),
                 static_cast<long long>(now_ms - s.seen_at_ms), i);
  }
  if (stuck_with_work) {
    sched_.notify_work();  // fenced: wakes a sleeper if nobody searches
  }
  // timer.hpp INV-TK3: the safety net under INV-TK1. A timer overdue by
  // more than kOverdue while a worker sleeps means the worker counted on
  // to fire it went busy without handing the duty on in time: wake one.
  const std::int64_t due = sched_.earliest_deadline();
  if (due != TimerWheel::kNever && now_ns() - due > kOverdueNs) {
    sched_.kick_parked_worker();
  }
}

}  // namespace spindle::detail
