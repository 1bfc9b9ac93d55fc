// The runtime behind spindle::Runtime: workers, injection queue, idle
// accounting, task registry, stacks. The design essay is in scheduler.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spindle/runtime.hpp>

#include "blocking_pool.hpp"
#include "call_later.hpp"
#include "fiber.hpp"
#include "idle.hpp"
#include "inject_queue.hpp"
#include "io_driver.hpp"
#include "monitor.hpp"
#include "os_mutex.hpp"
#include "registry.hpp"
#include "stack.hpp"
#include "timer.hpp"

namespace spindle::detail {

class Worker;
class TaskCore;

// Lifecycle invariants (scheduler.cpp):
//   INV-S1  every spawn that no live task holds back — from outside, or
//           from a worker's scheduler context (a call_later callback) —
//           registers, fences, then reads closed_ and backs out if set;
//           shutdown stores closed_, fences, then decides "no live task"
//           (registry.hpp INV-R2). Dekker: either shutdown sees the task and
//           awaits it, or the spawner sees the close. A spawn from a task
//           needs no fence: its spawner is live, registered, until after.
//   INV-S2  a thread that is not one of our workers and makes a task
//           runnable (submit_remote) is counted in remote_in_flight_ from
//           before the push until it stops touching the scheduler; shutdown
//           waits for the count to drop before the scheduler may be freed.
class Scheduler {
 public:
  explicit Scheduler(const Options& options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const Options& options() const noexcept { return options_; }
  unsigned num_workers() const noexcept { return static_cast<unsigned>(workers_.size()); }
  Worker& worker(unsigned i) noexcept { return *workers_[i]; }
  InjectQueue& inject() noexcept { return inject_; }
  Idle& idle() noexcept { return idle_; }
  Registry& registry() noexcept { return registry_; }
  StackAllocator& stacks() noexcept { return stacks_; }
  FiberPool& fiber_pool() noexcept { return fiber_pool_; }
  BlockingPool& blocking_pool() noexcept { return blocking_pool_; }

  // --- tasks -------------------------------------------------------------
  void spawn(TaskCore* t);
  // spawn() from one of our own workers, already looked up.
  void spawn_local(Worker* w, TaskCore* t);
  // The winner of a Waiter wakes its task (waiter.hpp INV-W1); `lifo` as
  // in wake_waiter_owner().
  void wake(TaskCore* t, bool lifo = true);
  // Queues a runnable task from a thread that is not one of our workers.
  void submit_remote(TaskCore* t);
  // After making work available: unpark a worker if nobody is searching.
  void notify_work();
  // The same after pushing onto the calling worker's own queue. That worker
  // runs the task itself if nobody helps, so a missed wakeup here costs
  // parallelism, never liveness: the full fence of INV-I3 is paid only when
  // a relaxed look suggests a worker may be asleep with nobody searching.
  void notify_work_local() {
    if (idle_.maybe_should_wake()) {
      notify_work();
    }
  }
  void call_soon(std::function<void()> fn);
  // call_later, arming timers, the shutdown drain (call_later.hpp).
  TimerDomain& timer_domain() noexcept { return timer_domain_; }
  // After a fence (timer.hpp INV-TK1): makes sure some parked worker wakes
  // by `due`, kicking one if none would.
  void cover_deadline(std::int64_t due);
  // Wakes one parked worker, if any (the monitor, for an overdue timer).
  void kick_parked_worker();

  // --- lifecycle ---------------------------------------------------------
  // Cancels every live task and waits until none is left (asyncio.run's
  // ending). Re-cancels tasks that swallowed the request; warns on stderr
  // every few seconds while tasks remain.
  void cancel_all_and_wait();
  void shutdown();
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  // The same flag read seq_cst, after the caller's fence: the StoreLoad
  // partner of shutdown's store and fence (call_later.hpp INV-CL3).
  bool stopping_seq_cst() const noexcept { return stopping_.load(std::memory_order_seq_cst); }

  // --- introspection -----------------------------------------------------
  Stats stats();
  void dump_tasks(std::ostream& os);
  std::int64_t earliest_deadline() noexcept;
  bool any_stealable_work() noexcept;
  std::uint64_t next_external_id() noexcept;
  // Workers take task ids in blocks so spawning does not contend on one
  // counter; ids are unique, increasing per spawning worker.
  static constexpr std::uint64_t kIdBlock = 1024;
  static constexpr unsigned kMaxWorkers = 65534;
  // `options` with workers resolved (0: one per usable CPU) and checked.
  static Options with_worker_count(Options options);
  std::uint64_t next_external_id_block() noexcept;
  Monitor& monitor() noexcept { return *monitor_; }
  IoDriver& io() noexcept { return *io_; }

  void set_exception_handler(std::function<void(const TaskRef&, std::exception_ptr)> h);
  std::function<void(const TaskRef&, std::exception_ptr)> exception_handler();

 private:
  // A spawn that saw closed_ after registering (INV-S1): undone, then
  // InvalidStateError.
  [[noreturn]] void back_out_spawn(TaskCore* t);

  Options options_;
  // Retired, not deleted, at destruction: sockets may outlive the runtime.
  struct IoRetire {
    void operator()(IoDriver* d) const noexcept { d->retire(); }
  };
  std::unique_ptr<IoDriver, IoRetire> io_;
  StackAllocator stacks_;
  FiberPool fiber_pool_;
  InjectQueue inject_;
  Idle idle_;
  Registry registry_;
  BlockingPool blocking_pool_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Monitor> monitor_;
  std::atomic<bool> closed_{false};    // shutdown began: no new outside spawns
  std::atomic<bool> stopping_{false};  // workers must exit their loops
  std::atomic<std::uint64_t> next_id_{1};
  // INV-S2: threads inside submit_remote(); shutdown waits for zero.
  std::atomic<std::uint64_t> remote_in_flight_{0};
  TimerDomain timer_domain_{*this};
  OsMutex handler_mu_;
  std::function<void(const TaskRef&, std::exception_ptr)> exception_handler_
      SPINDLE_GUARDED_BY(handler_mu_);
  OsMutex shutdown_mu_;  // one shutdown() at a time
};

unsigned default_worker_count();

// The scheduler of the calling worker thread; throws InvalidStateError on a
// thread that is not a runtime worker (`what` names the caller).
Scheduler* current_scheduler_or_throw(const char* what);

}  // namespace spindle::detail
