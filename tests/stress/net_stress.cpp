// Stress: many connections at once on spindle::net.
//
//   - N connections (10,000 where the fd limit allows; fewer under TSan,
//     which counts every fiber as a thread) are all open together, each
//     echoing through a task of its own, on 2 workers.
//   - short transfers racing new readiness (io_state.hpp INV-IO10): each
//     short read or write sleeps between its syscall and its clear, and each
//     wait that skips a syscall sleeps before it links, so the peer's next
//     bytes (or freed space) and their edge land inside the window; the
//     clear must then fail and nothing may stall or be lost.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <spindle/net.hpp>

#include "perturb.hpp"
#include "runtime_fixture.hpp"
#include "stress_support.hpp"

using spindle::detail::perturb::Point;
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

namespace {

// Holds `p` open (every pass sleeps `us`) for the scope.
class Forced {
 public:
  Forced(Point p, unsigned us) : p_(p), before_(spindle::detail::perturb::passes(p)) {
    spindle::detail::perturb::force(p, us);
  }
  ~Forced() { spindle::detail::perturb::force(p_, 0); }
  Forced(const Forced&) = delete;
  Forced& operator=(const Forced&) = delete;
  std::uint64_t passes() const { return spindle::detail::perturb::passes(p_) - before_; }

 private:
  Point p_;
  std::uint64_t before_;
};

std::uint64_t fold(std::uint64_t sum, const char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    sum = sum * 31 + static_cast<unsigned char>(p[i]);
  }
  return sum;
}

}  // namespace

TEST(NetStress, ShortTransfersRacingNewReadinessNeverStallOrLoseBytes) {
  // Each pair: a writer sends chunks of 1..3000 bytes, yielding after most,
  // so the reader's 16 KiB reads come back short while more bytes are on
  // the way; the reader replies with every 64th chunk echoed in bulk,
  // which fills the writer's side too. A lost byte is a checksum mismatch,
  // a hang aborts with a dump. A wrongly cleared bit only pauses a stream
  // until its next bytes: the test after this one turns that into a hang.
  Forced short_count(Point::kIoShortCount, 100);
  Forced drained(Point::kIoDrained, 100);
  constexpr int kPairs = 8;
  const long chunks = spindle::testing::scaled(5000);
  spindle::Options o;
  o.workers = 2;
  o.slow_task_warning = std::chrono::milliseconds(0);  // forced sleeps hold workers
  spindle::Runtime rt(o);
  auto run = rt.spawn([&] {
    TcpListener l = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress at = l.local_addr();
    std::vector<spindle::Task<bool>> sides;
    for (int p = 0; p < kPairs; ++p) {
      // The reading side: counts and folds what arrives, echoes back bulk.
      sides.push_back(spindle::spawn([&l] {
        TcpStream c = l.accept();
        std::vector<char> buf(16 * 1024);
        std::uint64_t sum = 0;
        std::size_t got = 0;
        long reads = 0;
        while (const std::size_t n = c.read_some(std::span<char>(buf))) {
          sum = fold(sum, buf.data(), n);
          got += n;
          if (++reads % 64 == 0) {
            c.write_all(std::string(32 * 1024, 'e'));
          }
        }
        const std::string tail = std::to_string(got) + ":" + std::to_string(sum);
        c.write_all(tail);
        c.shutdown();
        return true;
      }));
      // The writing side: sends, drains the echoes, checks the tally.
      sides.push_back(spindle::spawn([at, p, chunks] {
        TcpStream s = TcpStream::connect(at);
        auto drain = spindle::spawn([&s] {
          std::string back;
          std::vector<char> buf(8192);
          while (const std::size_t n = s.read_some(std::span<char>(buf))) {
            back.append(buf.data(), n);
          }
          return back.substr(back.find_first_not_of('e'));
        });
        std::uint64_t sum = 0;
        std::size_t sent = 0;
        std::string chunk;
        for (long i = 0; i < chunks; ++i) {
          const std::uint64_t h = spindle::stress::mix(static_cast<std::uint64_t>(p) * 100003 + i);
          chunk.assign(1 + h % 3000, static_cast<char>('a' + h % 26));
          s.write_all(chunk);
          sum = fold(sum, chunk.data(), chunk.size());
          sent += chunk.size();
          if (h % 8 != 0) {
            spindle::yield();
          }
        }
        s.shutdown();
        return drain.get() == std::to_string(sent) + ":" + std::to_string(sum);
      }));
    }
    bool all = true;
    for (auto& t : sides) {
      all = t.get() && all;
    }
    return all;
  });
  EXPECT_TRUE(spindle::stress::await_bounded(rt, spindle::Future<bool>(run), "short-transfer pairs",
                                             std::chrono::seconds(120)));
  EXPECT_GT(short_count.passes(), 0u) << "no transfer came back short";
  EXPECT_GT(drained.passes(), 0u) << "no call waited without its syscall";
  std::printf("%llu short transfers, %llu waits without a syscall\n",
              static_cast<unsigned long long>(short_count.passes()),
              static_cast<unsigned long long>(drained.passes()));
}

TEST(NetStress, SplitRequestsAndBigRepliesNeverLoseAnEdgeToAShortTransfer) {
  // Request and reply, one at a time, so a lost edge is a deadlock rather
  // than a pause until the next bytes: the client writes each request in two
  // parts a few microseconds apart, so the server's read of the first part
  // comes back short and the second part's edge lands in the forced sleep
  // between that read and its clear; the reply is big enough (up to 1 MiB)
  // that the server's writes come back short, and the client's reads free
  // space, and raise EPOLLOUT, inside the same window. The clear must fail
  // there (INV-IO3's tick check); if it cleared, both sides would wait
  // forever and the bounded wait aborts with a dump.
  Forced short_count(Point::kIoShortCount, 100);
  constexpr int kClients = 3;
  const long rounds = spindle::testing::scaled(150);
  spindle::Options o;
  o.workers = 2;
  o.slow_task_warning = std::chrono::milliseconds(0);  // forced sleeps hold workers
  spindle::Runtime rt(o);
  auto run = rt.spawn([&] {
    TcpListener l = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
    const SocketAddress at = l.local_addr();
    std::vector<spindle::Task<long>> sides;
    for (int c = 0; c < kClients; ++c) {
      // The server: reads an 8-byte length header plus a 4 KiB body, replies
      // with that many bytes.
      sides.push_back(spindle::spawn([&l] {
        TcpStream s = l.accept();
        std::vector<char> req(8 + 4096);
        long served = 0;
        for (;;) {
          std::size_t got = 0;
          while (got < req.size()) {
            const std::size_t n = s.read_some(std::span<char>(req).subspan(got));
            if (n == 0) {
              return served;
            }
            got += n;
          }
          std::uint64_t len = 0;
          std::memcpy(&len, req.data(), sizeof len);
          s.write_all(std::string(len, static_cast<char>('a' + served % 26)));
          ++served;
        }
      }));
      sides.push_back(spindle::spawn([at, c, rounds] {
        TcpStream s = TcpStream::connect(at);
        std::vector<char> req(8 + 4096, 'r');
        std::vector<char> buf(64 * 1024);
        long ok = 0;
        for (long i = 0; i < rounds; ++i) {
          const std::uint64_t h = spindle::stress::mix(static_cast<std::uint64_t>(c) * 7919 + i);
          const std::uint64_t len = 1 + h % (1u << 20);
          std::memcpy(req.data(), &len, sizeof len);
          const std::size_t split = 1 + h % (req.size() - 1);
          s.write_all(std::string_view(req.data(), split));
          spindle::stress::spin_for(h % 20000);  // the gap the second part's edge lands in
          s.write_all(std::string_view(req.data() + split, req.size() - split));
          std::uint64_t got = 0;
          bool same = true;
          const char want = static_cast<char>('a' + i % 26);
          while (got < len) {
            const std::size_t n = s.read_some(
                std::span<char>(buf.data(), std::min<std::uint64_t>(buf.size(), len - got)));
            if (n == 0) {
              return ok;
            }
            for (std::size_t k = 0; k < n; ++k) {
              same = same && buf[k] == want;
            }
            got += n;
          }
          ok += same ? 1 : 0;
        }
        s.shutdown();
        return ok;
      }));
    }
    long total = 0;
    for (auto& t : sides) {
      total += t.get();
    }
    return total;
  });
  // Each round counts once at the server and once, if intact, at the client.
  EXPECT_EQ(
      spindle::stress::await_bounded(rt, spindle::Future<long>(run),
                                     "split requests and big replies", std::chrono::seconds(120)),
      2 * kClients * rounds);
  EXPECT_GT(short_count.passes(), 0u) << "no transfer came back short";
  std::printf("%llu short transfers\n", static_cast<unsigned long long>(short_count.passes()));
}
