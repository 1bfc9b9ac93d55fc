// spindle_workloads: spindle's side of the peer comparison (bench/compare).
//
// Usage: spindle_workloads --workload NAME --workers N [--quick]
// Prints one line `RESULT {json}` on stdout and exits 0. The same work as
// bench/peers/<peer>/ (see the table in bench/compare/compare.py):
//
//   skynet          10-ary tree of tasks, 1M leaves (1,111,111 tasks) / 100K;
//                   each parent spawns ten children and get()s them in order.
//   spawn_join      one task spawns N empty tasks, keeps every Task<void>,
//                   then get()s them in spawn order. N = 1M / 100K.
//   yield           2*workers tasks each call spindle::yield() Y times.
//                   Y = 1M / 100K. Value: wall ns / (tasks * Y).
//   pingpong        two tasks pass a token R times each way through futures:
//                   every message carries the future the reply will come on
//                   (a fresh Future per message, as a channel of capacity 1
//                   would hand over one slot). R = 200K / 20K.
//   sleepers        N tasks each sleep 1 s (quick: 0.2 s), all spawned first,
//                   then joined. Default Options (64 KiB stacks, guard pages).
//   sleepers_event  N tasks wait on one shared Future<void> (a one-shot event);
//                   main waits until all N have started waiting, sets it once,
//                   joins. N = 1M / 100K.
//   gather_10k      G rounds of 10,000 tasks returning their index, results
//                   collected in order with spindle::gather. G = 50 / 5.
//   queue_mpmc      one spindle::Queue<long long>(1024); `workers` producer
//                   tasks put M items in total, `workers` consumer tasks get
//                   until the queue is shut down (Python 3.13 Queue.shutdown:
//                   the consumers drain it first) and sum. M = 1M / 100K.
//   mutex_contended 4*workers tasks each lock one spindle::Mutex K times
//                   (std::lock_guard) and increment a shared counter.
//                   K = 100K / 10K. Value: ns per lock.
//
// Every workload runs inside Runtime::block_on with Options{.workers = N};
// the clock covers the workload only, not runtime start-up or shutdown.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <spindle/spindle.hpp>

namespace {

using Clock = std::chrono::steady_clock;

struct Outcome {
  double value = 0;
  const char* unit = "ms";  // "ms" (wall) or "ns" (wall per item), as every peer reports
  long long n = 0;
  std::string check = "ok";
  bool unsupported = false;
  std::string reason;
};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
double ns_per(Clock::time_point t0, long long items) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
         static_cast<double>(items);
}

long long skynet(long long num, long long size) {
  if (size == 1) {
    return num;
  }
  const long long sub = size / 10;
  spindle::Task<long long> kids[10];
  for (int i = 0; i < 10; ++i) {
    kids[i] = spindle::spawn([num, i, sub] { return skynet(num + i * sub, sub); });
  }
  long long sum = 0;
  for (auto& k : kids) {
    sum += k.get();
  }
  return sum;
}

Outcome run_skynet(spindle::Runtime& rt, bool quick) {
  const long long leaves = quick ? 100'000 : 1'000'000;
  const long long expect = leaves * (leaves - 1) / 2;
  Outcome o;
  auto t0 = Clock::now();
  long long sum = rt.block_on([&] { return skynet(0, leaves); });
  o.value = ms_since(t0);
  o.n = leaves + leaves / 9;
  if (sum != expect) {
    o.check = "FAIL: sum " + std::to_string(sum);
  }
  return o;
}

Outcome run_spawn_join(spindle::Runtime& rt, bool quick) {
  const long long n = quick ? 100'000 : 1'000'000;
  Outcome o;
  o.unit = "ns";
  o.n = n;
  // The task is empty, as in every peer: a shared counter bumped by each
  // task would bounce one cache line between the workers per task. get()
  // returning for every handle is the check that each one ran.
  long long joined = 0;
  double v = rt.block_on([&] {
    auto t0 = Clock::now();
    std::vector<spindle::Task<void>> tasks;
    tasks.reserve(static_cast<std::size_t>(n));
    for (long long i = 0; i < n; ++i) {
      tasks.push_back(spindle::spawn([] {}));
    }
    for (auto& t : tasks) {
      t.get();
      ++joined;
    }
    return ns_per(t0, n);
  });
  o.value = v;
  if (joined != n) {
    o.check = "FAIL: joined " + std::to_string(joined);
  }
  return o;
}

Outcome run_yield(spindle::Runtime& rt, bool quick, unsigned workers) {
  const long long y = quick ? 100'000 : 1'000'000;
  const unsigned tasks = 2 * workers;
  Outcome o;
  o.unit = "ns";
  o.n = y * tasks;
  std::atomic<long long> total{0};
  double v = rt.block_on([&] {
    auto t0 = Clock::now();
    std::vector<spindle::Task<void>> ts;
    for (unsigned i = 0; i < tasks; ++i) {
      ts.push_back(spindle::spawn([&] {
        for (long long k = 0; k < y; ++k) {
          spindle::yield();
        }
        total.fetch_add(y, std::memory_order_relaxed);
      }));
    }
    for (auto& t : ts) {
      t.get();
    }
    return ns_per(t0, y * tasks);
  });
  o.value = v;
  if (total.load() != y * tasks) {
    o.check = "FAIL: yields " + std::to_string(total.load());
  }
  return o;
}

struct Ball {
  long long n;
  spindle::Future<Ball> reply;
};

Outcome run_pingpong(spindle::Runtime& rt, bool quick) {
  const long long rounds = quick ? 20'000 : 200'000;
  Outcome o;
  o.unit = "ns";
  o.n = rounds;
  long long last = rt.block_on([&] {
    spindle::Future<Ball> to_b;
    auto b = spindle::spawn([to_b, rounds]() mutable {
      for (long long i = 0; i < rounds; ++i) {
        Ball ball = to_b.get();
        spindle::Future<Ball> next;
        ball.reply.set_result(Ball{ball.n + 1, next});
        to_b = next;
      }
    });
    auto t0 = Clock::now();
    long long n = 0;
    for (long long i = 0; i < rounds; ++i) {
      spindle::Future<Ball> back;
      to_b.set_result(Ball{n, back});
      Ball got = back.get();
      n = got.n;
      to_b = got.reply;
    }
    o.value = ns_per(t0, rounds);
    b.get();
    return n;
  });
  if (last != rounds) {
    o.check = "FAIL: token " + std::to_string(last);
  }
  return o;
}

Outcome run_sleepers(spindle::Runtime& rt, bool quick) {
  const long long n = quick ? 100'000 : 1'000'000;
  const auto nap = quick ? std::chrono::milliseconds(200) : std::chrono::milliseconds(1000);
  Outcome o;
  o.n = n;
  std::atomic<long long> woke{0};
  auto t0 = Clock::now();
  rt.block_on([&] {
    std::vector<spindle::Task<void>> ts;
    ts.reserve(static_cast<std::size_t>(n));
    for (long long i = 0; i < n; ++i) {
      ts.push_back(spindle::spawn([&woke, nap] {
        spindle::sleep(nap);
        woke.fetch_add(1, std::memory_order_relaxed);
      }));
    }
    for (auto& t : ts) {
      t.get();
    }
  });
  o.value = ms_since(t0);
  if (woke.load() != n) {
    o.check = "FAIL: woke " + std::to_string(woke.load());
  }
  return o;
}

Outcome run_sleepers_event(spindle::Runtime& rt, bool quick) {
  const long long n = quick ? 100'000 : 1'000'000;
  Outcome o;
  o.n = n;
  std::atomic<long long> waiting{0}, done{0};
  auto t0 = Clock::now();
  rt.block_on([&] {
    spindle::Future<void> event;
    std::vector<spindle::Task<void>> ts;
    ts.reserve(static_cast<std::size_t>(n));
    for (long long i = 0; i < n; ++i) {
      ts.push_back(spindle::spawn([&, event]() mutable {
        waiting.fetch_add(1, std::memory_order_relaxed);
        event.get();
        done.fetch_add(1, std::memory_order_relaxed);
      }));
    }
    while (waiting.load(std::memory_order_relaxed) < n) {
      spindle::sleep(std::chrono::milliseconds(1));
    }
    event.set_result();
    for (auto& t : ts) {
      t.get();
    }
  });
  o.value = ms_since(t0);
  if (done.load() != n) {
    o.check = "FAIL: done " + std::to_string(done.load());
  }
  return o;
}

Outcome run_gather(spindle::Runtime& rt, bool quick) {
  const int rounds = quick ? 5 : 50;
  const int per = 10'000;
  Outcome o;
  o.unit = "ns";
  o.n = static_cast<long long>(rounds) * per;
  bool ok = true;
  double v = rt.block_on([&] {
    auto t0 = Clock::now();
    for (int r = 0; r < rounds; ++r) {
      std::vector<spindle::Task<long long>> ts;
      ts.reserve(per);
      for (int i = 0; i < per; ++i) {
        ts.push_back(spindle::spawn([i] { return static_cast<long long>(i); }));
      }
      std::vector<long long> results = spindle::gather(ts);
      long long sum = 0;
      for (long long r : results) {
        sum += r;
      }
      ok = ok && sum == 49'995'000 && results[9'999] == 9'999;
    }
    return ns_per(t0, static_cast<long long>(rounds) * per);
  });
  o.value = v;
  if (!ok) {
    o.check = "FAIL: wrong sum";
  }
  return o;
}

Outcome run_queue_mpmc(spindle::Runtime& rt, bool quick, unsigned workers) {
  const long long m = quick ? 100'000 : 1'000'000;
  const unsigned producers = workers, consumers = workers;
  Outcome o;
  o.unit = "ns";
  o.n = m;
  long long total = 0;
  double v = rt.block_on([&] {
    spindle::Queue<long long> q(1024);
    auto t0 = Clock::now();
    std::vector<spindle::Task<long long>> cons;
    for (unsigned c = 0; c < consumers; ++c) {
      cons.push_back(spindle::spawn([&q] {
        long long sum = 0;
        try {
          for (;;) {
            sum += q.get();
          }
        } catch (const spindle::QueueShutDown&) {
        }
        return sum;
      }));
    }
    std::vector<spindle::Task<void>> prods;
    const long long per = m / producers;
    for (unsigned p = 0; p < producers; ++p) {
      long long lo = p * per, hi = p + 1 == producers ? m : lo + per;
      prods.push_back(spindle::spawn([&q, lo, hi] {
        for (long long i = lo; i < hi; ++i) {
          q.put(i);
        }
      }));
    }
    for (auto& p : prods) {
      p.get();
    }
    q.shutdown();  // consumers drain what is left, then stop
    for (auto& c : cons) {
      total += c.get();
    }
    return ns_per(t0, m);
  });
  o.value = v;
  if (total != m * (m - 1) / 2) {
    o.check = "FAIL: sum " + std::to_string(total);
  }
  return o;
}

Outcome run_mutex_contended(spindle::Runtime& rt, bool quick, unsigned workers) {
  const long long k = quick ? 10'000 : 100'000;
  const unsigned tasks = 4 * workers;
  Outcome o;
  o.unit = "ns";
  o.n = k * tasks;
  long long counter = 0;  // guarded by mu
  double v = rt.block_on([&] {
    spindle::Mutex mu;
    auto t0 = Clock::now();
    std::vector<spindle::Task<void>> ts;
    for (unsigned i = 0; i < tasks; ++i) {
      ts.push_back(spindle::spawn([&] {
        for (long long j = 0; j < k; ++j) {
          std::lock_guard<spindle::Mutex> lock(mu);
          ++counter;
        }
      }));
    }
    for (auto& t : ts) {
      t.get();
    }
    return ns_per(t0, k * tasks);
  });
  o.value = v;
  if (counter != k * tasks) {
    o.check = "FAIL: counter " + std::to_string(counter);
  }
  return o;
}

void print(const char* workload, unsigned workers, const Outcome& o) {
  if (o.unsupported) {
    std::printf(
        "RESULT {\"runtime\":\"spindle\",\"workload\":\"%s\",\"workers\":%u,\"unsupported\":true,"
        "\"reason\":\"%s\"}\n",
        workload, workers, o.reason.c_str());
    return;
  }
  std::printf(
      "RESULT {\"runtime\":\"spindle\",\"workload\":\"%s\",\"workers\":%u,\"value\":%.4f,"
      "\"unit\":\"%s\",\"n\":%lld,\"check\":\"%s\"}\n",
      workload, workers, o.value, o.unit, o.n, o.check.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string workload;
  unsigned workers = 1;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--workload") && i + 1 < argc) {
      workload = argv[++i];
    } else if (!std::strcmp(argv[i], "--workers") && i + 1 < argc) {
      workers = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s --workload NAME --workers N [--quick]\n", argv[0]);
      return 2;
    }
  }
  spindle::Options opts;
  opts.workers = workers;
  spindle::Runtime rt(opts);
  Outcome o;
  if (workload == "skynet") {
    o = run_skynet(rt, quick);
  } else if (workload == "spawn_join") {
    o = run_spawn_join(rt, quick);
  } else if (workload == "yield") {
    o = run_yield(rt, quick, workers);
  } else if (workload == "pingpong") {
    o = run_pingpong(rt, quick);
  } else if (workload == "sleepers") {
    o = run_sleepers(rt, quick);
  } else if (workload == "sleepers_event") {
    o = run_sleepers_event(rt, quick);
  } else if (workload == "gather_10k") {
    o = run_gather(rt, quick);
  } else if (workload == "queue_mpmc") {
    o = run_queue_mpmc(rt, quick, workers);
  } else if (workload == "mutex_contended") {
    o = run_mutex_contended(rt, quick, workers);
  } else {
    o.unsupported = true;
    o.reason = "unknown workload";
  }
  print(workload.c_str(), workers, o);
  std::fflush(stdout);
  return 0;
}
