// spindle::Runtime and the process-wide glue (globals.hpp).
#include <spindle/runtime.hpp>
#include <spindle/to_thread.hpp>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "globals.hpp"
#include "os_mutex.hpp"
#include "scheduler.hpp"
#include "task_access.hpp"
#include "worker.hpp"

namespace spindle {
namespace detail {
namespace {

OsMutex g_schedulers_mu;
std::vector<Scheduler*>& live_schedulers() SPINDLE_REQUIRES(g_schedulers_mu) {
  static std::vector<Scheduler*> v;
  return v;
}

}  // namespace

void register_scheduler(Scheduler* s) {
  OsLock lock(g_schedulers_mu);
  live_schedulers().push_back(s);
}

void unregister_scheduler(Scheduler* s) {
  OsLock lock(g_schedulers_mu);
  std::erase(live_schedulers(), s);
}

bool schedule_soon(std::function<void()> fn) {
  Worker* w = Worker::current();
  if (w != nullptr && !w->scheduler().stopping()) {
    // A worker spawns locally, even while its runtime shuts down: task
    // cleanup may complete futures whose callbacks must still run.
    w->scheduler().call_soon(std::move(fn));
    return true;
  }
  // Holding the lock keeps a runtime from being destroyed under us (it
  // unregisters before it goes). One that is closing refuses the spawn.
  OsLock lock(g_schedulers_mu);
  for (auto it = live_schedulers().rbegin(); it != live_schedulers().rend(); ++it) {
    if ((*it)->closed()) {
      continue;
    }
    try {
      (*it)->call_soon(fn);
      return true;
    } catch (const InvalidStateError&) {
      // closed meanwhile: try the next, or run it on this thread
    }
  }
  return false;
}

void report_task_exception(TaskCore* t, std::exception_ptr e) noexcept {
  // The task's runtime may be gone (a handle outlived it): look it up among
  // the live ones and copy its handler under the lock.
  std::function<void(const TaskRef&, std::exception_ptr)> handler;
  {
    OsLock lock(g_schedulers_mu);
    auto& v = live_schedulers();
    Scheduler* owner = TaskAccess::sched(t);
    if (std::find(v.begin(), v.end(), owner) != v.end()) {
      handler = owner->exception_handler();
    }
  }
  TaskRef ref = TaskRef::adopt(t);  // the reference resurrected for us
  if (handler) {
    try {
      handler(ref, std::move(e));
    } catch (...) {
      std::fputs("spindle: the exception handler threw; ignored\n", stderr);
    }
    return;
  }
  std::string line = "spindle: Task exception was never retrieved: " + t->repr() + "\n";
  std::fputs(line.c_str(), stderr);
}

void report_future_exception(const std::string& repr, std::exception_ptr e) noexcept {
  std::function<void(const TaskRef&, std::exception_ptr)> handler;
  {
    OsLock lock(g_schedulers_mu);
    // This worker's runtime, else the newest one not closing, as
    // schedule_soon() picks for the callbacks.
    Worker* w = Worker::current();
    Scheduler* s = w != nullptr ? &w->scheduler() : nullptr;
    for (auto it = live_schedulers().rbegin(); s == nullptr && it != live_schedulers().rend();
         ++it) {
      if (!(*it)->closed()) {
        s = *it;
      }
    }
    if (s != nullptr) {
      handler = s->exception_handler();
    }
  }
  if (handler) {
    try {
      handler(TaskRef(), std::move(e));
    } catch (...) {
      std::fputs("spindle: the exception handler threw; ignored\n", stderr);
    }
    return;
  }
  std::string line = "spindle: Future exception was never retrieved: " + repr + "\n";
  std::fputs(line.c_str(), stderr);
}

void schedule_wake(TaskCore* root, bool lifo) { TaskAccess::sched(root)->wake(root, lifo); }

Scheduler* current_scheduler_or_throw(const char* what) {
  Worker* w = Worker::current();
  if (w == nullptr) {
    throw InvalidStateError(std::string(what) +
                            " called outside a spindle runtime (use Runtime::spawn from "
                            "other threads)");
  }
  return &w->scheduler();
}

void spawn_task(Scheduler* sched, TaskCore* task) { sched->spawn(task); }

void spawn_here(TaskCore* task) {
  Worker* w = Worker::current();
  if (w == nullptr) {
    throw InvalidStateError(
        "spindle::spawn called outside a spindle runtime (use Runtime::spawn from other "
        "threads)");
  }
  w->scheduler().spawn_local(w, task);
}

void submit_blocking(std::function<void(bool drop)> job) {
  Scheduler* s = current_scheduler_or_throw("spindle::to_thread");
  if (!s->blocking_pool().submit(std::move(job))) {
    throw InvalidStateError("to_thread on a runtime that is shut down");
  }
}

[[noreturn]] void throw_empty_handle() {
  throw InvalidStateError("use of an empty (moved-from or default) handle");
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------

Runtime::Runtime(Options options) : sched_(std::make_unique<detail::Scheduler>(options)) {
  detail::register_scheduler(sched_.get());
}

Runtime::~Runtime() {
  if (detail::Worker::current() != nullptr &&
      &detail::Worker::current()->scheduler() == sched_.get()) {
    std::fputs("spindle: a Runtime was destroyed from one of its own tasks\n", stderr);
    std::abort();
  }
  shutdown();
}

detail::Scheduler* Runtime::scheduler() const { return sched_.get(); }

unsigned Runtime::workers() const noexcept { return sched_->num_workers(); }

void Runtime::block_on_wait(detail::FutureCore* main) {
  if (detail::Worker::current() != nullptr) {
    throw InvalidStateError("block_on called from inside a runtime worker; await instead");
  }
  main->wait();
  sched_->cancel_all_and_wait();
}

void Runtime::call_soon(std::function<void()> fn) {
  if (sched_->closed()) {
    throw InvalidStateError("call_soon on a runtime that is shut down");
  }
  sched_->call_soon(std::move(fn));
}

TimerHandle Runtime::call_later(Duration d, std::function<void()> fn) {
  return TimerHandle(sched_->timer_domain().call_later(d.count(), std::move(fn)));
}

void Runtime::shutdown() {
  sched_->shutdown();
  detail::unregister_scheduler(sched_.get());
}

Stats Runtime::stats() const { return sched_->stats(); }

void Runtime::dump_tasks(std::ostream& os) const { sched_->dump_tasks(os); }

std::vector<TaskRef> Runtime::all_tasks() const {
  std::vector<TaskRef> out;
  for (detail::TaskCore* t : sched_->registry().snapshot()) {
    out.push_back(TaskRef::adopt(t));
  }
  return out;
}

void Runtime::set_exception_handler(
    std::function<void(const TaskRef&, std::exception_ptr)> handler) {
  sched_->set_exception_handler(std::move(handler));
}

}  // namespace spindle
