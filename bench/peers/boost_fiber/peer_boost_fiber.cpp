// peer_boost_fiber: Boost.Fiber (1.81) peer for the spindle benchmark comparison.
//
//   peer_boost_fiber --workload NAME --workers N [--quick]
//   -> one line on stdout: RESULT {"runtime":"boost_fiber",...}; exit 0.
//
// Scheduler: boost::fibers::algo::work_stealing on N threads, set up the way
// Boost.Fiber's own work_stealing example / skynet_stealing_* benchmarks do it:
// the main thread and N-1 helper threads each call
// use_scheduling_algorithm<work_stealing>(N) (suspend=false, the default: idle
// threads spin looking for work; in 1.81 that constructor itself blocks until
// all N threads have registered, so the helpers are started first), meet at a
// boost::fibers::barrier, and the
// helpers then park their main fiber on a condition_variable_any until the
// workload is over. The clock starts only after the barrier. The workload body
// runs on the main thread's main fiber (a fiber like any other, but pinned).
//
// Stacks: boost::fibers::fixedsize_stack with its default size, 128 KiB
// (stack_traits::default_size()); on Linux that is std::malloc'd, no guard page,
// and only the touched pages become resident. Every fiber below is created with
// std::allocator_arg and that allocator. Optional knobs (not needed by the
// runner): PEER_BF_STACK=protected switches to guarded stacks built exactly like
// protected_fixedsize_stack (mmap + PROT_NONE guard page = 2 kernel mappings per
// fiber, so vm.max_map_count=65530 caps it near 32,700 live fibers);
// PEER_BF_STACK_KB=<n> changes the stack size. Built with -O2 -DNDEBUG (Boost's
// internal BOOST_ASSERTs off, as in any release build). There is no pooled stack
// allocator here: boost::fibers::pooled_fixedsize_stack wraps a boost::pool<>
// without a lock, and under work_stealing a fiber's stack may be freed on a
// different thread than the one that allocated it. A failed
// stack allocation is caught and reported as check "FAIL: ..." with the count of
// fibers reached, after the ones already started have been joined.
//
// Workloads (same work as spindle's; "join" = boost::fibers::fiber::join()):
//  skynet          10-ary tree, 1,000,000 leaves (1,111,111 fibers incl. root),
//                  written like Boost's performance/fiber/skynet_stealing_async.cpp:
//                  each node starts its 10 children with
//                  boost::fibers::async(launch::dispatch, ...) and sums
//                  future::get() in order. The root is itself an async fiber.
//  spawn_join      main fiber constructs N fibers (default launch::post) running
//                  an empty lambda, keeps every boost::fibers::fiber in a vector,
//                  then joins them in spawn order. value = wall/N.
//  yield           2*workers fibers each call boost::this_fiber::yield() Y times;
//                  joined. value = wall/(fibers*Y).
//  pingpong        fibers A and B, two boost::fibers::buffered_channel<long>(2)
//                  (A->B and B->A). buffered_channel's capacity must be a power of
//                  2 >= 2 and it holds capacity-1 items, so (2) is a capacity-1
//                  channel. One round trip = A push, B pop, B push, A pop.
//  sleepers        N fibers each boost::this_fiber::sleep_for(1 s) (quick: 0.2 s);
//                  all are spawned first, then joined in order. value = wall ms.
//  sleepers_event  N fibers each lock one boost::fibers::mutex, bump an atomic
//                  "waiting" counter and wait on one boost::fibers::condition_variable
//                  for a bool flag; the main fiber yields until waiting == N, sets the
//                  flag under the mutex, notify_all() once, joins all. value = wall
//                  ms from first spawn to last join.
//  gather_10k      G rounds of: 10,000 boost::fibers::async(launch::post, f, i)
//                  returning i, futures kept in a vector, get() in order, sum
//                  checked == 49,995,000. value = wall/(G*10000).
//  queue_mpmc      one boost::fibers::buffered_channel<long>(1024) (holds 1023),
//                  `workers` producer fibers push disjoint ranges of 0..M-1,
//                  `workers` consumer fibers pop until the channel is closed
//                  (main closes it after joining the producers) and sum.
//  mutex_contended 4*workers fibers each take one boost::fibers::mutex K times
//                  (std::lock_guard) and increment a shared counter.
// Sizes: full / --quick as in the comparison table (see sizes() below).

#include <sys/mman.h>
#include <boost/fiber/all.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bf = boost::fibers;
using clock_type = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- output ----
std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20)
      o += ' ';
    else
      o += c;
  }
  return o;
}

struct Result {
  double value = 0;
  const char* unit = "ms";
  long long n = 0;
  std::string check = "ok";
};

void print_result(const std::string& wl, int workers, const Result& r) {
  std::printf(
      "RESULT {\"runtime\":\"boost_fiber\",\"workload\":\"%s\",\"workers\":%d,"
      "\"value\":%.3f,\"unit\":\"%s\",\"n\":%lld,\"check\":\"%s\"}\n",
      json_escape(wl).c_str(), workers, r.value, r.unit, r.n, json_escape(r.check).c_str());
  std::fflush(stdout);
}

double ns_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::nano>(clock_type::now() - t0).count();
}

// ---------------------------------------------------------------- stacks ----
// Thin value-type stack allocator. Default: boost::fibers::fixedsize_stack
// (Boost's default). PEER_BF_STACK=protected: the same mmap + PROT_NONE guard
// page that boost::context::protected_fixedsize_stack does, but with the
// mprotect result checked (Boost only BOOST_ASSERTs it, so with NDEBUG an
// exhausted vm.max_map_count silently yields an unguarded stack, without NDEBUG
// it aborts) -- so the failure can be caught and reported.
struct StackAlloc {
  bool guarded = false;
  std::size_t size = boost::context::stack_traits::default_size();

  boost::context::stack_context allocate() {
    if (!guarded) return bf::fixedsize_stack(size).allocate();
    const std::size_t ps = boost::context::stack_traits::page_size();
    const std::size_t bytes = ((size + ps - 1) / ps + 1) * ps;  // + guard page
    void* vp = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vp == MAP_FAILED) throw std::runtime_error("mmap of a guarded stack failed (ENOMEM)");
    if (::mprotect(vp, ps, PROT_NONE) != 0) {
      ::munmap(vp, bytes);
      throw std::runtime_error("mprotect of a guard page failed (vm.max_map_count?)");
    }
    boost::context::stack_context sctx;
    sctx.size = bytes;
    sctx.sp = static_cast<char*>(vp) + bytes;
    return sctx;
  }
  void deallocate(boost::context::stack_context& sctx) noexcept {
    if (!guarded) {
      bf::fixedsize_stack(size).deallocate(sctx);
      return;
    }
    ::munmap(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
  }
};

StackAlloc make_stack_alloc() {
  StackAlloc a;
  if (const char* k = std::getenv("PEER_BF_STACK")) a.guarded = std::strcmp(k, "protected") == 0;
  if (const char* kb = std::getenv("PEER_BF_STACK_KB")) {
    long v = std::atol(kb);
    if (v > 0) a.size = static_cast<std::size_t>(v) * 1024;
  }
  return a;
}

StackAlloc g_salloc;

std::string stack_desc() {
  return std::string(g_salloc.guarded ? "guarded (protected_fixedsize_stack-style) stack "
                                      : "fixedsize_stack ") +
         std::to_string(g_salloc.size / 1024) + " KiB";
}

// Spawns n fibers running make(i)() into `out`; returns how many were created.
// A stack allocation failure stops spawning and is reported via `err`.
template <class Make>
long long spawn_n(std::vector<bf::fiber>& out, long long n, Make make, std::string& err) {
  out.reserve(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) {
    try {
      out.emplace_back(std::allocator_arg, g_salloc, make(i));
    } catch (const std::exception& e) {
      err = std::string(e.what()) + " (" + stack_desc() + ")";
      return i;
    }
  }
  return n;
}

void join_all(std::vector<bf::fiber>& fs) {
  for (auto& f : fs) f.join();
}

std::string fail_reached(const std::string& err, long long reached, long long want) {
  return "FAIL: stack allocation failed after " + std::to_string(reached) + " of " +
         std::to_string(want) + " fibers: " + err;
}

// ------------------------------------------------------------- workloads ----
std::uint64_t skynet(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  size /= 10;
  bf::future<std::uint64_t> results[10];
  for (std::uint64_t i = 0; i < 10; ++i)
    results[i] =
        bf::async(bf::launch::dispatch, std::allocator_arg, g_salloc, skynet, num + i * size, size);
  std::uint64_t sum = 0;
  for (auto& f : results) sum += f.get();
  return sum;
}

Result run_skynet(bool quick) {
  const std::uint64_t leaves = quick ? 100000 : 1000000;
  const std::uint64_t want = leaves * (leaves - 1) / 2;
  Result r;
  r.unit = "ms";
  r.n = 0;
  for (std::uint64_t l = leaves; l >= 1; l /= 10) r.n += static_cast<long long>(l);
  auto t0 = clock_type::now();
  std::uint64_t sum = 0;
  try {
    sum =
        bf::async(bf::launch::post, std::allocator_arg, g_salloc, skynet, std::uint64_t{0}, leaves)
            .get();
  } catch (const std::exception& e) {
    r.value = ns_since(t0) / 1e6;
    r.check = std::string("FAIL: ") + e.what() + " (" + stack_desc() + ")";
    return r;
  }
  r.value = ns_since(t0) / 1e6;
  if (sum != want) r.check = "FAIL: sum " + std::to_string(sum) + " != " + std::to_string(want);
  return r;
}

Result run_spawn_join(bool quick) {
  const long long n = quick ? 100000 : 1000000;
  Result r;
  r.unit = "ns";
  std::vector<bf::fiber> fs;
  std::string err;
  auto t0 = clock_type::now();
  long long got = spawn_n(
      fs, n, [](long long) { return [] {}; }, err);
  join_all(fs);
  double ns = ns_since(t0);
  r.n = got;
  r.value = ns / static_cast<double>(got ? got : 1);
  if (got != n) r.check = fail_reached(err, got, n);
  return r;
}

Result run_yield(bool quick, int workers) {
  const long long y = quick ? 100000 : 1000000;
  const long long tasks = 2LL * workers;
  Result r;
  r.unit = "ns";
  std::atomic<long long> total{0};
  std::vector<bf::fiber> fs;
  std::string err;
  auto t0 = clock_type::now();
  long long got = spawn_n(
      fs, tasks,
      [&](long long) {
        return [&total, y] {
          for (long long k = 0; k < y; ++k) boost::this_fiber::yield();
          total.fetch_add(y, std::memory_order_relaxed);
        };
      },
      err);
  join_all(fs);
  double ns = ns_since(t0);
  r.n = tasks * y;
  r.value = ns / static_cast<double>(tasks * y);
  if (got != tasks)
    r.check = fail_reached(err, got, tasks);
  else if (total.load() != tasks * y)
    r.check = "FAIL: yields " + std::to_string(total.load());
  return r;
}

Result run_pingpong(bool quick) {
  const long long rounds = quick ? 20000 : 200000;
  Result r;
  r.unit = "ns";
  r.n = rounds;
  bf::buffered_channel<long long> ab(2), ba(2);  // capacity 2 == holds 1 item
  bool ok = true;
  auto t0 = clock_type::now();
  bf::fiber a(std::allocator_arg, g_salloc, [&] {
    for (long long i = 0; i < rounds; ++i) {
      ab.push(i);
      long long v = -1;
      ba.pop(v);
      if (v != i) ok = false;
    }
  });
  bf::fiber b(std::allocator_arg, g_salloc, [&] {
    for (long long i = 0; i < rounds; ++i) {
      long long v = -1;
      ab.pop(v);
      ba.push(v);
    }
  });
  a.join();
  b.join();
  r.value = ns_since(t0) / static_cast<double>(rounds);
  if (!ok) r.check = "FAIL: token mismatch";
  return r;
}

Result run_sleepers(bool quick) {
  const long long n = quick ? 100000 : 1000000;
  const auto dur = quick ? std::chrono::milliseconds(200) : std::chrono::milliseconds(1000);
  Result r;
  r.unit = "ms";
  std::atomic<long long> woke{0};
  std::vector<bf::fiber> fs;
  std::string err;
  auto t0 = clock_type::now();
  long long got = spawn_n(
      fs, n,
      [&](long long) {
        return [&woke, dur] {
          boost::this_fiber::sleep_for(dur);
          woke.fetch_add(1, std::memory_order_relaxed);
        };
      },
      err);
  join_all(fs);
  r.value = ns_since(t0) / 1e6;
  r.n = got;
  if (got != n)
    r.check = fail_reached(err, got, n);
  else if (woke.load() != n)
    r.check = "FAIL: woke " + std::to_string(woke.load());
  return r;
}

Result run_sleepers_event(bool quick) {
  const long long n = quick ? 100000 : 1000000;
  Result r;
  r.unit = "ms";
  bf::mutex mtx;
  bf::condition_variable cv;
  bool fired = false;
  std::atomic<long long> waiting{0}, woke{0};
  std::vector<bf::fiber> fs;
  std::string err;
  auto t0 = clock_type::now();
  long long got = spawn_n(
      fs, n,
      [&](long long) {
        return [&] {
          std::unique_lock<bf::mutex> lk(mtx);
          waiting.fetch_add(1, std::memory_order_relaxed);
          cv.wait(lk, [&] { return fired; });
          woke.fetch_add(1, std::memory_order_relaxed);
        };
      },
      err);
  while (waiting.load(std::memory_order_relaxed) < got) boost::this_fiber::yield();
  {
    std::lock_guard<bf::mutex> lk(mtx);
    fired = true;
  }
  cv.notify_all();
  join_all(fs);
  r.value = ns_since(t0) / 1e6;
  r.n = got;
  if (got != n)
    r.check = fail_reached(err, got, n);
  else if (woke.load() != n)
    r.check = "FAIL: woke " + std::to_string(woke.load());
  return r;
}

long long gather_task(long long i) { return i; }

Result run_gather(bool quick) {
  const int rounds = quick ? 5 : 50;
  const long long per = 10000;
  Result r;
  r.unit = "ns";
  r.n = rounds * per;
  std::vector<bf::future<long long>> futs;
  futs.reserve(per);
  auto t0 = clock_type::now();
  for (int g = 0; g < rounds; ++g) {
    futs.clear();
    try {
      for (long long i = 0; i < per; ++i)
        futs.push_back(bf::async(bf::launch::post, std::allocator_arg, g_salloc, gather_task, i));
    } catch (const std::exception& e) {
      for (auto& f : futs) f.wait();
      r.check = fail_reached(std::string(e.what()) + " (" + stack_desc() + ")",
                             static_cast<long long>(futs.size()), per);
      r.value = ns_since(t0) / static_cast<double>(r.n);
      return r;
    }
    long long sum = 0;
    for (auto& f : futs) sum += f.get();
    if (sum != 49995000LL && r.check == "ok")
      r.check = "FAIL: round " + std::to_string(g) + " sum " + std::to_string(sum);
  }
  r.value = ns_since(t0) / static_cast<double>(r.n);
  return r;
}

Result run_queue_mpmc(bool quick, int workers) {
  const long long m = quick ? 100000 : 1000000;
  const long long want = m * (m - 1) / 2;
  Result r;
  r.unit = "ns";
  r.n = m;
  bf::buffered_channel<long> ch(1024);
  std::atomic<long long> total{0};
  std::vector<bf::fiber> prod, cons;
  std::string err;
  auto t0 = clock_type::now();
  long long gc = spawn_n(
      cons, workers,
      [&](long long) {
        return [&] {
          long long sum = 0;
          long v;
          while (ch.pop(v) == bf::channel_op_status::success) sum += v;
          total.fetch_add(sum, std::memory_order_relaxed);
        };
      },
      err);
  long long gp = spawn_n(
      prod, workers,
      [&](long long p) {
        long long lo = m * p / workers, hi = m * (p + 1) / workers;
        return [&ch, lo, hi] {
          for (long long v = lo; v < hi; ++v) ch.push(static_cast<long>(v));
        };
      },
      err);
  join_all(prod);
  ch.close();
  join_all(cons);
  r.value = ns_since(t0) / static_cast<double>(m);
  if (gc != workers || gp != workers)
    r.check = "FAIL: could not spawn: " + err;
  else if (total.load() != want)
    r.check = "FAIL: sum " + std::to_string(total.load()) + " != " + std::to_string(want);
  return r;
}

Result run_mutex(bool quick, int workers) {
  const long long k = quick ? 10000 : 100000;
  const long long tasks = 4LL * workers;
  Result r;
  r.unit = "ns";
  r.n = tasks * k;
  bf::mutex mtx;
  long long counter = 0;
  std::vector<bf::fiber> fs;
  std::string err;
  auto t0 = clock_type::now();
  long long got = spawn_n(
      fs, tasks,
      [&](long long) {
        return [&mtx, &counter, k] {
          for (long long i = 0; i < k; ++i) {
            std::lock_guard<bf::mutex> lk(mtx);
            ++counter;
          }
        };
      },
      err);
  join_all(fs);
  r.value = ns_since(t0) / static_cast<double>(tasks * k);
  if (got != tasks)
    r.check = fail_reached(err, got, tasks);
  else if (counter != tasks * k)
    r.check = "FAIL: counter " + std::to_string(counter);
  return r;
}

// ------------------------------------------------------------- scheduler ----
std::mutex g_done_mtx;
bf::condition_variable_any g_done_cv;
bool g_done = false;

void helper_thread(std::uint32_t n, bf::barrier* b) {
  bf::use_scheduling_algorithm<bf::algo::work_stealing>(n);
  b->wait();
  std::unique_lock<std::mutex> lk(g_done_mtx);
  g_done_cv.wait(lk, [] { return g_done; });
}

int usage() {
  std::fprintf(stderr,
               "usage: peer_boost_fiber --workload NAME --workers N [--quick]\n"
               "workloads: skynet spawn_join yield pingpong sleepers sleepers_event "
               "gather_10k queue_mpmc mutex_contended\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string wl;
  int workers = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--workload" && i + 1 < argc)
      wl = argv[++i];
    else if (a == "--workers" && i + 1 < argc)
      workers = std::atoi(argv[++i]);
    else if (a == "--quick")
      quick = true;
    else
      return usage();
  }
  static const char* known[] = {"skynet",     "spawn_join", "yield",
                                "pingpong",   "sleepers",   "sleepers_event",
                                "gather_10k", "queue_mpmc", "mutex_contended"};
  bool ok_name = false;
  for (auto* k : known) ok_name = ok_name || wl == k;
  if (!ok_name || workers < 1) return usage();

  g_salloc = make_stack_alloc();

  // Scheduler threads first (Boost's work_stealing example), then the clock.
  // Boost 1.81's work_stealing constructor itself waits until all N threads
  // have registered, so the helpers must be started before the main thread
  // installs its scheduler.
  const auto n = static_cast<std::uint32_t>(workers);
  bf::barrier b{n};
  std::vector<std::thread> threads;
  for (std::uint32_t i = 1; i < n; ++i) threads.emplace_back(helper_thread, n, &b);
  bf::use_scheduling_algorithm<bf::algo::work_stealing>(n);
  b.wait();

  Result r;
  try {
    if (wl == "skynet")
      r = run_skynet(quick);
    else if (wl == "spawn_join")
      r = run_spawn_join(quick);
    else if (wl == "yield")
      r = run_yield(quick, workers);
    else if (wl == "pingpong")
      r = run_pingpong(quick);
    else if (wl == "sleepers")
      r = run_sleepers(quick);
    else if (wl == "sleepers_event")
      r = run_sleepers_event(quick);
    else if (wl == "gather_10k")
      r = run_gather(quick);
    else if (wl == "queue_mpmc")
      r = run_queue_mpmc(quick, workers);
    else if (wl == "mutex_contended")
      r = run_mutex(quick, workers);
  } catch (const std::exception& e) {
    r.check = std::string("FAIL: exception: ") + e.what();
  }

  {
    std::lock_guard<std::mutex> lk(g_done_mtx);
    g_done = true;
  }
  g_done_cv.notify_all();
  for (auto& t : threads) t.join();

  print_result(wl, workers, r);
  return 0;
}
