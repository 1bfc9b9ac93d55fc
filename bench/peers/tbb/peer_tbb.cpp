// peer_tbb: oneTBB (2021.8, Debian 12) peer for the spindle benchmark comparison.
//
//   peer_tbb --workload NAME --workers N [--quick]
//   -> one line on stdout: RESULT {"runtime":"tbb",...}; exit 0.
//
// Scheduler: tbb::task_arena arena(N) (one slot for the calling thread, N-1 for
// TBB workers) plus tbb::global_control(max_allowed_parallelism, N) so N may
// exceed the core count. Before the clock starts, a warm-up in the arena waits
// until N distinct threads have run a task, so worker threads already exist.
// Every workload body runs inside arena.execute([&]{ ... }).
//
// oneTBB tasks are not stackful: they run to completion on the stack of the
// thread that picks them up (TBB workers get 4 MiB thread stacks, the main thread
// its usual 8 MiB); a task has no stack of its own. A task that waits in
// tbb::task_group::wait() keeps its thread busy by running other tasks. oneTBB has
// no task-suspending sleep, mutex or channel (tbb::task::suspend exists, but it is
// a low-level hook for async I/O, not a primitive these workloads would use), so
// yield, pingpong, sleepers, sleepers_event and queue_mpmc print
// "unsupported": true. concurrent_bounded_queue blocks threads, not tasks.
//
// Workloads:
//  skynet          10-ary tree, 1,000,000 leaves, 1,111,111 tasks incl. root:
//                  each node makes a tbb::task_group, run()s 10 children that
//                  write their sums into a local array, then wait() (the pattern
//                  of oneTBB's task_group Fibonacci example). The root is run in
//                  a task_group too.
//  spawn_join      one task_group, run() N empty lambdas, one wait(). TBB keeps
//                  no per-task handle: the join is the single task_group::wait()
//                  for all N, not N joins in spawn order. value = wall/N.
//  gather_10k      G rounds of: one task_group, run() 10,000 lambdas each writing
//                  its index i into slot i of a std::vector<long long>, wait(),
//                  sum the vector in order, check == 49,995,000.
//  mutex_contended 4*workers tasks (task_group) each take one tbb::spin_mutex K
//                  times (scoped_lock) and increment a shared counter. Judged fair
//                  enough to report: the same lock/increment work is done, but
//                  waiters spin (with TBB's pause/yield backoff) on at most N
//                  threads instead of being suspended, and a task keeps its thread
//                  for all K iterations. Compare with that caveat in mind.
// Sizes: full / --quick as in the comparison table (see each run_*()).

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/spin_mutex.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

using clock_type = std::chrono::steady_clock;

namespace {

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
      "RESULT {\"runtime\":\"tbb\",\"workload\":\"%s\",\"workers\":%d,"
      "\"value\":%.3f,\"unit\":\"%s\",\"n\":%lld,\"check\":\"%s\"}\n",
      json_escape(wl).c_str(), workers, r.value, r.unit, r.n, json_escape(r.check).c_str());
  std::fflush(stdout);
}

void print_unsupported(const std::string& wl, int workers, const std::string& why) {
  std::printf(
      "RESULT {\"runtime\":\"tbb\",\"workload\":\"%s\",\"workers\":%d,"
      "\"unsupported\":true,\"reason\":\"%s\"}\n",
      json_escape(wl).c_str(), workers, json_escape(why).c_str());
  std::fflush(stdout);
}

double ns_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::nano>(clock_type::now() - t0).count();
}

// ------------------------------------------------------------- workloads ----
std::uint64_t skynet(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  size /= 10;
  std::uint64_t r[10];
  tbb::task_group tg;
  for (std::uint64_t i = 0; i < 10; ++i)
    tg.run([&r, i, num, size] { r[i] = skynet(num + i * size, size); });
  tg.wait();
  std::uint64_t sum = 0;
  for (auto v : r) sum += v;
  return sum;
}

Result run_skynet(bool quick) {
  const std::uint64_t leaves = quick ? 100000 : 1000000;
  const std::uint64_t want = leaves * (leaves - 1) / 2;
  Result r;
  r.unit = "ms";
  for (std::uint64_t l = leaves; l >= 1; l /= 10) r.n += static_cast<long long>(l);
  std::uint64_t sum = 0;
  auto t0 = clock_type::now();
  tbb::task_group root;
  root.run([&] { sum = skynet(0, leaves); });
  root.wait();
  r.value = ns_since(t0) / 1e6;
  if (sum != want) r.check = "FAIL: sum " + std::to_string(sum) + " != " + std::to_string(want);
  return r;
}

Result run_spawn_join(bool quick) {
  const long long n = quick ? 100000 : 1000000;
  Result r;
  r.unit = "ns";
  r.n = n;
  auto t0 = clock_type::now();
  tbb::task_group tg;
  for (long long i = 0; i < n; ++i) tg.run([] {});
  tg.wait();
  r.value = ns_since(t0) / static_cast<double>(n);
  return r;
}

Result run_gather(bool quick) {
  const int rounds = quick ? 5 : 50;
  const long long per = 10000;
  Result r;
  r.unit = "ns";
  r.n = rounds * per;
  std::vector<long long> out(per);
  auto t0 = clock_type::now();
  for (int g = 0; g < rounds; ++g) {
    tbb::task_group tg;
    for (long long i = 0; i < per; ++i) tg.run([&out, i] { out[i] = i; });
    tg.wait();
    long long sum = 0;
    for (long long v : out) sum += v;
    if (sum != 49995000LL && r.check == "ok")
      r.check = "FAIL: round " + std::to_string(g) + " sum " + std::to_string(sum);
    if (g + 1 < rounds) std::fill(out.begin(), out.end(), 0);  // next round must refill
  }
  r.value = ns_since(t0) / static_cast<double>(r.n);
  return r;
}

Result run_mutex(bool quick, int workers) {
  const long long k = quick ? 10000 : 100000;
  const long long tasks = 4LL * workers;
  Result r;
  r.unit = "ns";
  r.n = tasks * k;
  tbb::spin_mutex mtx;
  long long counter = 0;
  auto t0 = clock_type::now();
  tbb::task_group tg;
  for (long long t = 0; t < tasks; ++t)
    tg.run([&mtx, &counter, k] {
      for (long long i = 0; i < k; ++i) {
        tbb::spin_mutex::scoped_lock lk(mtx);
        ++counter;
      }
    });
  tg.wait();
  r.value = ns_since(t0) / static_cast<double>(tasks * k);
  if (counter != tasks * k) r.check = "FAIL: counter " + std::to_string(counter);
  return r;
}

// Run one task per arena slot and hold each until all N threads have shown up
// (or 2 s passed), so TBB's worker threads exist before any clock starts.
void warm_up(int workers) {
  std::atomic<int> arrived{0};
  tbb::task_group tg;
  for (int i = 0; i < workers; ++i)
    tg.run([&arrived, workers] {
      arrived.fetch_add(1);
      auto until = clock_type::now() + std::chrono::seconds(2);
      while (arrived.load() < workers && clock_type::now() < until) std::this_thread::yield();
    });
  tg.wait();
}

int usage() {
  std::fprintf(stderr,
               "usage: peer_tbb --workload NAME --workers N [--quick]\n"
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
  if (workers < 1) return usage();

  const char* why = nullptr;
  if (wl == "yield")
    why = "oneTBB tasks run to completion; there is no task yield that resumes the same task later";
  else if (wl == "pingpong")
    why = "oneTBB has no channel that suspends a task; concurrent_bounded_queue blocks the thread";
  else if (wl == "sleepers")
    why = "oneTBB has no async sleep that suspends a task without blocking its thread";
  else if (wl == "sleepers_event")
    why = "oneTBB has no event/condition variable that suspends a task without blocking its thread";
  else if (wl == "queue_mpmc")
    why =
        "oneTBB's concurrent_bounded_queue blocks threads, not tasks; with N threads and 2N "
        "blocking producers/consumers it can deadlock";
  else if (wl != "skynet" && wl != "spawn_join" && wl != "gather_10k" && wl != "mutex_contended")
    return usage();
  if (why) {
    print_unsupported(wl, workers, why);
    return 0;
  }

  tbb::global_control gc(tbb::global_control::max_allowed_parallelism,
                         static_cast<std::size_t>(workers));
  tbb::task_arena arena(workers);
  arena.initialize();
  Result r;
  try {
    arena.execute([&] { warm_up(workers); });
    arena.execute([&] {
      if (wl == "skynet")
        r = run_skynet(quick);
      else if (wl == "spawn_join")
        r = run_spawn_join(quick);
      else if (wl == "gather_10k")
        r = run_gather(quick);
      else if (wl == "mutex_contended")
        r = run_mutex(quick, workers);
    });
  } catch (const std::exception& e) {
    r.check = std::string("FAIL: exception: ") + e.what();
  }
  print_result(wl, workers, r);
  return 0;
}
