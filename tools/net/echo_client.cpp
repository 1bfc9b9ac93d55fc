// spindle_echo_client HOST PORT CONNECTIONS SECONDS SIZE [WORKERS] -- an echo
// load client on spindle::net, a task per connection.
//
// Every connection is a closed loop: send SIZE bytes, read until SIZE bytes
// have come back, record the round trip, send again, until SECONDS have
// passed. All connections are open before the clock starts; a round trip
// still in flight at the end is not counted. The echoed bytes are compared
// with what was sent: a mismatch, an early EOF, a socket error or a round
// trip that has not come back 10 s after the end counts one error and ends
// that connection. Prints one line:
//   msgs=N seconds=S msgs_per_s=X p50_us=A p90_us=B p99_us=C p999_us=D max_us=E errors=K
// and exits 0 if errors=0 and msgs>0, 1 otherwise. WORKERS: the runtime's
// workers (default 1).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include "latency_histogram.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using spindle_tools::LatencyHistogram;

struct Connection {
  spindle::net::TcpStream stream;
  LatencyHistogram latency;
  bool failed = false;
};

// One connection's closed loop, from `start` until `stop`.
void run_loop(Connection& c, std::size_t size, Clock::time_point stop) {
  std::string sent(size, '\0');
  std::string got(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    sent[i] = static_cast<char>('a' + i % 26);
  }
  for (std::uint64_t round = 0;; ++round) {
    sent[0] = static_cast<char>('A' + round % 26);  // each round's bytes differ
    const auto t0 = Clock::now();
    c.stream.write_all(sent);
    c.stream.read_exact(std::span<char>(got));
    const auto t1 = Clock::now();
    if (got != sent) {
      c.failed = true;
      return;
    }
    if (t1 >= stop) {
      return;
    }
    c.latency.record(static_cast<std::uint64_t>((t1 - t0).count()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || argc > 7) {
    std::fprintf(stderr, "usage: %s HOST PORT CONNECTIONS SECONDS SIZE [WORKERS]\n", argv[0]);
    return 2;
  }
  const std::string host = argv[1];
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  const auto connections = static_cast<std::size_t>(std::atol(argv[3]));
  const double seconds = std::atof(argv[4]);
  const auto size = static_cast<std::size_t>(std::atol(argv[5]));
  if (connections == 0 || seconds <= 0 || size == 0) {
    std::fprintf(stderr, "%s: CONNECTIONS, SECONDS and SIZE must be positive\n", argv[0]);
    return 2;
  }
  spindle::Options options;
  options.workers = argc > 6 ? static_cast<unsigned>(std::atoi(argv[6])) : 1;
  spindle::Runtime rt(options);

  std::vector<std::unique_ptr<Connection>> conns(connections);
  std::size_t errors = 0;
  double elapsed = 0;
  rt.block_on([&] {
    const auto addr = spindle::net::resolve(host, port).at(0);
    for (auto& c : conns) {
      c = std::make_unique<Connection>();
      c->stream = spindle::net::TcpStream::connect(addr);
    }
    const auto start = Clock::now();
    const auto stop =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    std::vector<spindle::Task<void>> tasks;
    tasks.reserve(connections);
    for (auto& c : conns) {
      tasks.push_back(spindle::spawn([c = c.get(), size, stop, seconds] {
        try {
          spindle::timeout(std::chrono::duration<double>(seconds + 10),
                           [&] { run_loop(*c, size, stop); });
        } catch (const std::exception&) {  // socket errors, EOF, the timeout
          c->failed = true;
        }
      }));
    }
    for (auto& t : tasks) {
      t.get();
    }
    elapsed = std::chrono::duration<double>(std::min(Clock::now(), stop) - start).count();
  });

  LatencyHistogram all;
  for (const auto& c : conns) {
    all.merge(c->latency);
    errors += c->failed ? 1 : 0;
  }
  const double us = 1e-3;
  std::printf(
      "msgs=%llu seconds=%.3f msgs_per_s=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
      "p999_us=%.1f max_us=%.1f errors=%zu\n",
      static_cast<unsigned long long>(all.total()), elapsed,
      elapsed > 0 ? static_cast<double>(all.total()) / elapsed : 0.0, all.quantile(0.50) * us,
      all.quantile(0.90) * us, all.quantile(0.99) * us, all.quantile(0.999) * us,
      static_cast<double>(all.max()) * us, errors);
  return errors == 0 && all.total() > 0 ? 0 : 1;
}
