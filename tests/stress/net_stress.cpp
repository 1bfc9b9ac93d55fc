// Stress: many connections at once on spindle::net.
//
//   - N connections (10,000 where the fd limit allows; fewer under TSan,
//     which counts every fiber as a thread) are all open together, each
//     echoing through a task of its own, on 2 workers.
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include <spindle/net.hpp>

#include "runtime_fixture.hpp"

using spindle::net::SocketAddress;
using spindle::net::TcpListener;
using spindle::net::TcpStream;

namespace {

// Raises the soft fd limit to the hard one; returns how many fds it allows.
long raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) {
    return 1024;
  }
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);
  ::getrlimit(RLIMIT_NOFILE, &r);
  return static_cast<long>(r.rlim_cur);
}

}  // namespace

TEST(NetStress, TenThousandConnectionsAreOpenAndServedTogether) {
  // Two fds and two suspended tasks per connection.
  long n = spindle::testing::max_suspended_tasks(20000) / 2;
  const long fd_room = (raise_fd_limit() - 64) / 2;
  if (fd_room < n) {
    std::printf("fd limit allows %ld connections, not %ld\n", fd_room, n);
    n = fd_room;
  }
  ASSERT_GT(n, 100);
  spindle::Options o;
  o.workers = 2;
  spindle::Runtime rt(o);
  std::atomic<long> open{0};
  const long echoed = rt.block_on([&] {
    TcpListener l = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress at = l.local_addr();
    auto server = spindle::spawn([&] {
      std::vector<spindle::Task<void>> handlers;
      for (long i = 0; i < n; ++i) {
        handlers.push_back(spindle::spawn([c = l.accept()]() mutable {
          char buf[64];
          while (std::size_t got = c.read_some(std::span<char>(buf))) {
            c.write_all(std::string_view(buf, got));
          }
        }));
      }
      for (auto& h : handlers) {
        h.get();
      }
    });
    spindle::Event all_open;
    std::vector<spindle::Task<bool>> clients;
    for (long i = 0; i < n; ++i) {
      clients.push_back(spindle::spawn([&, i] {
        TcpStream s = TcpStream::connect(at);
        if (open.fetch_add(1) + 1 == n) {
          all_open.set();
        }
        all_open.wait();  // every connection is open at this point
        const std::string msg = std::to_string(i);
        s.write_all(msg);
        std::string back(msg.size(), '\0');
        s.read_exact(std::span<char>(back));
        return back == msg;
      }));
    }
    long ok = 0;
    for (auto& c : clients) {
      ok += c.get() ? 1 : 0;
    }
    server.get();
    return ok;
  });
  EXPECT_EQ(echoed, n);
  EXPECT_EQ(rt.stats().io.registered_fds, 0u);
  std::printf("%ld connections open together, each echoed once\n", n);
}
