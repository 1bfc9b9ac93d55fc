// spindle::net over loopback: echo, EOF, close and cancel during waits,
// errors, UDP, and the driver's counters. Every loop is bounded.
#include <spindle/net.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "polling.hpp"
#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::net::IncompleteReadError;
using spindle::net::SocketAddress;
using spindle::net::TcpListener;
using spindle::net::TcpStream;
using spindle::net::UdpSocket;
using spindle::testing::RuntimeTest;

namespace {

TcpListener listen_loopback() { return TcpListener::bind(SocketAddress::parse("127.0.0.1:0")); }

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

int errno_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

// Echoes every byte of one connection until EOF.
void echo(TcpStream conn) {
  char buf[4096];
  for (;;) {
    const std::size_t n = conn.read_some(std::span<char>(buf));
    if (n == 0) {
      return;
    }
    conn.write_all(std::string_view(buf, n));
  }
}

}  // namespace

class Net : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(Net);

TEST_P(Net, EchoesManyMessagesOverManyConnections) {
  // Short messages, each answered before the next is sent: every read
  // finds its socket empty first and waits, so the register-versus-wake
  // race (io_state.hpp INV-IO2) runs thousands of times.
  const int conns = 8;
  const long rounds = spindle::testing::scaled(400);
  long echoed = rt().block_on([&] {
    TcpListener l = listen_loopback();
    const SocketAddress at = l.local_addr();
    auto server = spindle::spawn([&] {
      std::vector<spindle::Task<void>> handlers;
      for (int i = 0; i < conns; ++i) {
        handlers.push_back(spindle::spawn([c = l.accept()]() mutable { echo(std::move(c)); }));
      }
      for (auto& h : handlers) {
        h.get();
      }
    });
    std::vector<spindle::Task<long>> clients;
    for (int i = 0; i < conns; ++i) {
      clients.push_back(spindle::spawn([at, rounds, i] {
        TcpStream s = TcpStream::connect(at);
        long ok = 0;
        for (long r = 0; r < rounds; ++r) {
          const std::string msg = "m" + std::to_string(i) + ":" + std::to_string(r);
          s.write_all(msg);
          std::string back(msg.size(), '\0');
          s.read_exact(std::span<char>(back));
          ok += back == msg ? 1 : 0;
        }
        s.shutdown();
        char c;
        EXPECT_EQ(s.read_some(std::span<char>(&c, 1)), 0u);  // the server saw EOF, closed
        return ok;
      }));
    }
    long total = 0;
    for (auto& c : clients) {
      total += c.get();
    }
    server.get();
    return total;
  });
  EXPECT_EQ(echoed, conns * rounds);
  const spindle::IoStats io = rt().stats().io;
  EXPECT_GT(io.eagains, 0u);
  EXPECT_GT(io.wakes, 0u);
  EXPECT_GT(io.events, 0u);
  EXPECT_EQ(io.registered_fds, 0u) << "every socket was closed";
}

TEST_P(Net, ReadSomeGivesZeroAtEofAndReadExactReportsThePartialRead) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    auto peer = spindle::spawn([&] {
      TcpStream c = l.accept();
      c.write_all("abc");
      // destructor: close, so the reader meets EOF after 3 bytes
    });
    TcpStream s = TcpStream::connect(l.local_addr());
    char buf[10];
    try {
      s.read_exact(std::span<char>(buf));
      ADD_FAILURE() << "read_exact returned at EOF";
    } catch (const IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), 3u);
      EXPECT_EQ(e.expected(), 10u);
      EXPECT_EQ(std::string(buf, 3), "abc");
    }
    EXPECT_EQ(s.read_some(std::span<char>(buf)), 0u);
    EXPECT_EQ(s.read_some(std::span<char>(buf)), 0u) << "EOF is seen again";
    peer.get();
  });
}

TEST_P(Net, CloseWakesAWaitingReaderWriterAndAcceptorWithEbadf) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    TcpStream client = TcpStream::connect(l.local_addr());
    TcpStream served = l.accept();
    // For a writer that fills the send buffer of a connection nobody reads,
    // and waits for room. Accepted before the acceptor task exists.
    TcpStream unread = TcpStream::connect(l.local_addr());
    TcpStream writing = l.accept();
    std::atomic<int> reader_errno{-1}, acceptor_errno{-1};
    auto reader = spindle::spawn([&] {
      char c;
      reader_errno = errno_of([&] { client.read_some(std::span<char>(&c, 1)); });
    });
    auto acceptor = spindle::spawn([&] { acceptor_errno = errno_of([&] { l.accept(); }); });
    std::atomic<int> writer_errno{-1};
    auto writer = spindle::spawn([&] {
      const std::string chunk(64 * 1024, 'x');
      writer_errno = errno_of([&] {
        for (;;) {
          writing.write_all(chunk);
        }
      });
    });
    spindle::sleep(20ms);  // all three are waiting now (or soon will be)
    client.close();
    l.close();
    writing.close();
    reader.get();
    acceptor.get();
    writer.get();
    EXPECT_EQ(reader_errno.load(), EBADF);
    EXPECT_EQ(acceptor_errno.load(), EBADF);
    EXPECT_EQ(writer_errno.load(), EBADF);
    EXPECT_EQ(client.native_handle(), -1);
    EXPECT_FALSE(client.is_open());
    client.close();  // idempotent
  });
}

TEST_P(Net, CloseFromAPlainThreadWakesTheReader) {
  std::atomic<TcpStream*> shared{nullptr};
  std::atomic<bool> done{false};
  int err = -1;
  auto t = rt().spawn([&] {
    TcpListener l = listen_loopback();
    TcpStream client = TcpStream::connect(l.local_addr());
    TcpStream served = l.accept();
    shared = &client;
    char c;
    err = errno_of([&] { client.read_some(std::span<char>(&c, 1)); });
    done = true;
  });
  ASSERT_TRUE(spindle::testing::eventually([&] { return shared.load() != nullptr; }));
  std::this_thread::sleep_for(10ms);
  shared.load()->close();
  t.get();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(err, EBADF);
}

TEST_P(Net, ACancelledReadConsumesNothing) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    TcpStream client = TcpStream::connect(l.local_addr());
    TcpStream served = l.accept();
    auto reader = spindle::spawn([&] {
      char c;
      client.read_some(std::span<char>(&c, 1));
    });
    spindle::sleep(10ms);
    reader.cancel("stop reading");
    try {
      reader.get();
      ADD_FAILURE() << "the read was not cancelled";
    } catch (const spindle::Cancelled& c) {
      EXPECT_EQ(c.message(), "stop reading");
    }
    served.write_all("z");
    char c = 0;
    EXPECT_EQ(client.read_some(std::span<char>(&c, 1)), 1u);
    EXPECT_EQ(c, 'z') << "the byte was left for the next reader";
  });
}

TEST_P(Net, ACancellationPendingAtEntryStopsTheWait) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    TcpStream client = TcpStream::connect(l.local_addr());
    TcpStream served = l.accept();
    spindle::current_task().cancel("before the read");
    char c;
    EXPECT_THROW(client.read_some(std::span<char>(&c, 1)), spindle::Cancelled);
  });
}

TEST_P(Net, TimeoutAroundReadExact) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    TcpStream client = TcpStream::connect(l.local_addr());
    TcpStream served = l.accept();
    served.write_all("ab");
    char buf[4];
    EXPECT_THROW(spindle::timeout(20ms, [&] { client.read_exact(std::span<char>(buf)); }),
                 spindle::TimeoutError);
    // The socket still works after the timeout.
    served.write_all("q");
    EXPECT_EQ(client.read_some(std::span<char>(buf, 1)), 1u);
  });
}

TEST_P(Net, ACancelledConnectClosesItsSocket) {
  rt().block_on([] {
    // A listener whose backlog is full: a further connect stays in progress
    // (SYNs dropped) until cancelled.
    TcpListener l = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"), 0);
    const SocketAddress at = l.local_addr();
    std::vector<TcpStream> fill;
    bool pending = false;
    for (int i = 0; i < 16 && !pending; ++i) {
      auto t = spindle::spawn([at] { return TcpStream::connect(at); });
      if (t.wait_for(50ms)) {
        fill.push_back(t.result());  // the accept queue still had room
        continue;
      }
      t.cancel();
      EXPECT_THROW(t.get(), spindle::Cancelled);
      pending = true;
    }
    EXPECT_TRUE(pending) << "every connect completed: the backlog never filled";
  });
  EXPECT_EQ(rt().stats().io.registered_fds, 0u) << "the half-open socket was closed";
}

TEST_P(Net, ConnectToAClosedPortIsRefused) {
  rt().block_on([] {
    SocketAddress at;
    {
      TcpListener l = listen_loopback();
      at = l.local_addr();
    }  // closed: nobody listens there now
    EXPECT_EQ(errno_of([&] { TcpStream::connect(at); }), ECONNREFUSED);
  });
}

TEST_P(Net, WritingToAResetPeerFailsWithoutSigpipe) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    TcpStream client = TcpStream::connect(l.local_addr());
    {
      TcpStream served = l.accept();
      // SO_LINGER 0: close sends RST.
      linger lg{1, 0};
      ::setsockopt(served.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    const std::string chunk(4096, 'x');
    const int err = errno_of([&] {
      for (int i = 0; i < 1000; ++i) {
        client.write_all(chunk);
        spindle::sleep(1ms);
      }
    });
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << "errno " << err;
  });
}

TEST_P(Net, HalfCloseBothWays) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    TcpStream client = TcpStream::connect(l.local_addr());
    TcpStream served = l.accept();
    client.write_all("request");
    client.shutdown(spindle::net::Shutdown::Write);
    char buf[16];
    std::string got;
    while (std::size_t n = served.read_some(std::span<char>(buf))) {
      got.append(buf, n);
    }
    EXPECT_EQ(got, "request");
    served.write_all("reply");  // the other direction still works
    served.shutdown();
    got.clear();
    while (std::size_t n = client.read_some(std::span<char>(buf))) {
      got.append(buf, n);
    }
    EXPECT_EQ(got, "reply");
  });
}

TEST_P(Net, UdpSendReceiveAndTruncation) {
  rt().block_on([] {
    UdpSocket a = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    UdpSocket b = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    auto receiver = spindle::spawn([&] {
      std::byte buf[4];
      UdpSocket::Received r = b.recv_from(std::span<std::byte>(buf));  // waits first
      EXPECT_EQ(r.size, 4u) << "a longer datagram is truncated to the buffer";
      EXPECT_EQ(r.from, a.local_addr());
      EXPECT_EQ(std::memcmp(buf, "hell", 4), 0);
      return r.size;
    });
    spindle::sleep(5ms);
    const std::string msg = "hello, datagram";
    EXPECT_EQ(a.send_to(bytes_of(msg), b.local_addr()), msg.size());
    EXPECT_EQ(receiver.get(), 4u);
    a.connect(b.local_addr());
    EXPECT_EQ(a.send(bytes_of("x")), 1u);
    std::byte one[8];
    EXPECT_EQ(b.recv(std::span<std::byte>(one)), 1u);
  });
}

TEST_P(Net, ErrorOnAConnectedUdpSocketDoesNotSpinItsReader) {
  // An ICMP port-unreachable sets EPOLLERR; the error is reported once and
  // gone, so the next receive must wait, not spin (io_state.hpp).
  rt().block_on([] {
    UdpSocket a = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    SocketAddress nobody;
    {
      UdpSocket gone = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
      nobody = gone.local_addr();
    }
    a.connect(nobody);
    a.send(bytes_of("ping"));
    std::byte buf[8];
    EXPECT_EQ(errno_of([&] { spindle::timeout(50ms, [&] { a.recv(std::span<std::byte>(buf)); }); }),
              ECONNREFUSED);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(spindle::timeout(30ms, [&] { a.recv(std::span<std::byte>(buf)); }),
                 spindle::TimeoutError);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 25ms);
  });
  EXPECT_LT(rt().stats().io.eagains, 20u) << "the reader spun on a sticky error bit";
}

TEST_P(Net, NetCallsOnAPlainThreadAreInvalidState) {
  EXPECT_THROW(listen_loopback(), spindle::InvalidStateError);
  EXPECT_THROW(TcpStream::connect(SocketAddress::parse("127.0.0.1:9")), spindle::InvalidStateError);
  EXPECT_THROW(UdpSocket::bind(SocketAddress::parse("127.0.0.1:0")), spindle::InvalidStateError);
  TcpStream never;
  char c;
  EXPECT_EQ(errno_of([&] { never.read_some(std::span<char>(&c, 1)); }), EBADF);
}

TEST_P(Net, ShutdownEndsTasksWaitingInAcceptAndRead) {
  std::atomic<int> waiting{0};
  SocketAddress at;
  std::atomic<bool> bound{false};
  rt().spawn([&] {
    TcpListener l = listen_loopback();
    at = l.local_addr();
    bound = true;
    TcpStream c = l.accept();
    auto reader = spindle::spawn([&] {
      ++waiting;
      char b;
      c.read_some(std::span<char>(&b, 1));  // never answered
    });
    ++waiting;
    TcpStream extra = l.accept();  // never comes: ended by the shutdown
    reader.get();
  });
  ASSERT_TRUE(spindle::testing::eventually([&] { return bound.load(); }));
  rt().spawn([&] {
    TcpStream c = TcpStream::connect(at);
    ++waiting;
    spindle::sleep(std::chrono::hours(1));
  });
  ASSERT_TRUE(spindle::testing::eventually([&] { return waiting.load() == 3; }));
  std::this_thread::sleep_for(10ms);
  rt().shutdown();  // must not hang; TearDown checks nothing leaked
  EXPECT_EQ(rt().stats().io.registered_fds, 0u);
}

TEST_P(Net, ASocketMayOutliveItsRuntime) {
  std::optional<TcpListener> kept;
  {
    spindle::Runtime other;
    kept = other.block_on([] { return listen_loopback(); });
  }
  EXPECT_TRUE(kept->is_open());
  kept->close();
  EXPECT_FALSE(kept->is_open());
  kept.reset();
}

TEST_P(Net, AcceptReportsEmfileWithoutSpinningAndRecovers) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    // Nothing but the two calls runs with no fd to spare: a sanitizer's
    // check may need one. UBSan's vptr check opens a pipe the first time
    // it meets a type, so a system_error is made once beforehand, and the
    // exception is looked at only after the limit is restored.
    EXPECT_EQ(errno_of([] { throw std::system_error(EMFILE, std::generic_category(), "warm"); }),
              EMFILE);
    // The lowest free fd number becomes the last one allowed: the client's
    // connect takes it, and accept() then has none left.
    const int probe = ::dup(0);
    ASSERT_GE(probe, 0);
    ::close(probe);
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(probe) + 1;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    std::optional<TcpStream> client;
    std::exception_ptr failure;
    try {
      client = TcpStream::connect(l.local_addr());
      l.accept();
    } catch (...) {
      failure = std::current_exception();
    }
    ::setrlimit(RLIMIT_NOFILE, &saved);
    ASSERT_TRUE(client.has_value()) << "connect failed; the fd limit was too low for it";
    ASSERT_TRUE(failure) << "accept() succeeded with no fd left";
    EXPECT_EQ(errno_of([&] { std::rethrow_exception(failure); }), EMFILE);
    // The pending connection is still there once fds are free again.
    TcpStream served = l.accept();
    served.write_all("ok");
    char buf[2];
    client->read_exact(std::span<char>(buf));
    EXPECT_EQ(std::string(buf, 2), "ok");
  });
}

TEST_P(Net, AnAlwaysReadyConnectionDoesNotStarveTheOthers) {
  // One client floods a connection, so its server-side reader never finds
  // the socket empty and never suspends; with one worker, only the
  // cooperative budget lets the accept loop and the other connections'
  // handlers run. The clients live in a runtime of their own.
  const int others = 20;
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  rt().block_on([&] {
    TcpListener l = listen_loopback();
    const SocketAddress at = l.local_addr();
    std::thread clients([&] {
      spindle::Runtime crt(spindle::Options{.workers = 1});
      crt.block_on([&] {
        TcpStream f = TcpStream::connect(at);  // accepted first: the backlog is FIFO
        auto flooder = spindle::spawn([&] {
          const std::string chunk(16 * 1024, 'f');
          errno_of([&] {
            while (!stop.load()) {
              f.write_all(chunk);
            }
          });
        });
        try {
          spindle::timeout(20s, [&] {
            std::vector<spindle::Task<void>> asks;
            for (int i = 0; i < others; ++i) {
              asks.push_back(spindle::spawn([&] {
                TcpStream s = TcpStream::connect(at);
                s.write_all("x");
                char b;
                s.read_exact(std::span<char>(&b, 1));
                ++answered;
              }));
            }
            for (auto& t : asks) {
              t.get();
            }
          });
        } catch (const spindle::TimeoutError&) {
        }
        stop = true;
        f.close();  // the flooder wakes with EBADF, the hot reader sees EOF
        flooder.get();
      });
    });
    TcpStream hot = l.accept();
    auto hot_reader = spindle::spawn([&] {
      char buf[256];
      while (!stop.load() && hot.read_some(std::span<char>(buf)) != 0) {
      }
    });
    std::vector<spindle::Task<void>> handlers;
    for (int i = 0; i < others; ++i) {
      handlers.push_back(spindle::spawn([c = l.accept()]() mutable {
        char b;
        if (c.read_some(std::span<char>(&b, 1)) == 1) {
          c.write_all(std::string_view(&b, 1));
        }
      }));
    }
    for (auto& h : handlers) {
      h.get();
    }
    clients.join();
    hot_reader.get();
  });
  EXPECT_EQ(answered.load(), others) << "connections starved behind the always-ready one";
}

TEST_P(Net, AUdpSocketShutDownForReadingWaitsInsteadOfSpinning) {
  // epoll reports IN|RDHUP for it, yet recv says EAGAIN: the closed bit
  // must not stop the wait (io_state.hpp), or the reader spins and cannot
  // even be cancelled.
  rt().block_on([] {
    UdpSocket a = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    UdpSocket b = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    a.connect(b.local_addr());
    ::shutdown(a.native_handle(), SHUT_RD);
    auto reader = spindle::spawn([&] {
      std::byte buf[8];
      a.recv(std::span<std::byte>(buf));
    });
    spindle::sleep(30ms);
    reader.cancel();
    EXPECT_THROW(reader.get(), spindle::Cancelled);
  });
  EXPECT_LT(rt().stats().io.eagains, 20u) << "the reader spun";
}

TEST_P(Net, ASocketWhoseRuntimeShutDownRefusesToWait) {
  std::optional<UdpSocket> kept;
  {
    spindle::Runtime other;
    kept = other.block_on([] { return UdpSocket::bind(SocketAddress::parse("127.0.0.1:0")); });
  }
  rt().block_on([&] {
    std::byte buf[8];
    EXPECT_THROW(kept->recv(std::span<std::byte>(buf)), spindle::InvalidStateError);
  });
  kept.reset();
}

// INV-IO10 (io_state.hpp). Each side reads into a buffer larger than the
// message, so every read comes back short: the next read must wait
// without a syscall that could only say EAGAIN, and still wake for the
// next message.
TEST_P(Net, AShortReadMakesTheNextReadWaitWithoutASyscall) {
  const long rounds = spindle::testing::scaled(300);
  rt().block_on([&] {
    TcpListener l = listen_loopback();
    auto server = spindle::spawn([&] { echo(l.accept()); });
    TcpStream s = TcpStream::connect(l.local_addr());
    char buf[256];
    for (long r = 0; r < rounds; ++r) {
      const std::string msg = "ping " + std::to_string(r);
      s.write_all(msg);
      std::string back;
      while (back.size() < msg.size()) {
        const std::size_t n = s.read_some(std::span<char>(buf));
        ASSERT_GT(n, 0u);
        back.append(buf, n);
      }
      ASSERT_EQ(back, msg);
    }
    s.shutdown();
    server.get();
  });
  const spindle::IoStats io = rt().stats().io;
  EXPECT_GE(io.drained_waits, static_cast<std::uint64_t>(rounds))
      << "reads after a short read still made their syscall first";
  EXPECT_LT(io.eagains, static_cast<std::uint64_t>(rounds) / 2)
      << "most reads should wait without meeting EAGAIN";
}

// A peer's data and FIN arrive together: the short read that takes the
// data must not leave the next read waiting for an edge that never comes
// (INV-IO10 with INV-IO4: EOF is never drained).
TEST_P(Net, EofRightBehindTheDataEndsTheNextReadAfterAShortRead) {
  rt().block_on([] {
    for (int round = 0; round < 20; ++round) {
      TcpListener l = listen_loopback();
      TcpStream s = TcpStream::connect(l.local_addr());
      {
        TcpStream peer = l.accept();
        peer.write_all("tail");
      }                                            // closed: FIN right behind the data
      spindle::sleep(round % 2 == 0 ? 5ms : 0ms);  // the events applied first, or not
      char buf[64];
      std::string got;
      std::size_t n = 0;
      EXPECT_NO_THROW(spindle::timeout(5s,
                                       [&] {
                                         while ((n = s.read_some(std::span<char>(buf))) != 0) {
                                           got.append(buf, n);
                                         }
                                       }))
          << "round " << round << ": the read after the data never saw EOF";
      EXPECT_EQ(got, "tail");
    }
  });
}

// TCP urgent data: a read stops short at the urgent mark with bytes still
// queued behind it, and no edge follows. The next read must not wait for
// one (INV-IO10's exception: EPOLLPRI sets kUrgent, which refuses the
// clear).
TEST_P(Net, UrgentDataDoesNotStallTheReadAfterAShortOne) {
  rt().block_on([] {
    TcpListener l = listen_loopback();
    const SocketAddress at = l.local_addr();
    // A plain socket as the peer: MSG_OOB is not in spindle's API.
    std::thread peer([at] {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(at.port());
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
      ASSERT_EQ(::send(fd, "abc", 3, 0), 3);
      ASSERT_EQ(::send(fd, "!", 1, MSG_OOB), 1);
      ASSERT_EQ(::send(fd, "efg", 3, 0), 3);
      char c;
      (void)::recv(fd, &c, 1, 0);  // until the reader closes
      ::close(fd);
    });
    TcpStream s = l.accept();
    spindle::sleep(20ms);  // everything has arrived, and its events applied
    char buf[64];
    std::string got;
    EXPECT_NO_THROW(spindle::timeout(5s,
                                     [&] {
                                       while (got.size() < 6) {
                                         const std::size_t n = s.read_some(std::span<char>(buf));
                                         ASSERT_GT(n, 0u);
                                         got.append(buf, n);
                                       }
                                     }))
        << "the read after the urgent mark waited for an edge that never came; got '" << got << "'";
    EXPECT_EQ(got, "abcefg") << "the urgent byte is out of band (no SO_OOBINLINE)";
    s.close();
    peer.join();
  });
}

// A write bigger than the send buffer comes back short: the next write
// waits for EPOLLOUT without meeting EAGAIN first, and every byte arrives.
TEST_P(Net, AShortWriteWaitsForSpaceAndLosesNothing) {
  const std::size_t total = 8u << 20;
  rt().block_on([&] {
    TcpListener l = listen_loopback();
    TcpStream w = TcpStream::connect(l.local_addr());
    TcpStream r = l.accept();
    auto reader = spindle::spawn([&] {
      std::vector<char> buf(64 * 1024);
      std::size_t got = 0;
      std::uint64_t sum = 0;
      while (const std::size_t n = r.read_some(std::span<char>(buf))) {
        for (std::size_t i = 0; i < n; ++i) {
          sum = sum * 31 + static_cast<unsigned char>(buf[i]);
        }
        got += n;
        if (got % (1u << 20) < n) {
          spindle::sleep(1ms);  // a slow reader now and then: the writer fills up
        }
      }
      return std::pair{got, sum};
    });
    std::string data(total, '\0');
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < total; ++i) {
      data[i] = static_cast<char>('a' + (i * 7) % 26);
      sum = sum * 31 + static_cast<unsigned char>(data[i]);
    }
    w.write_all(data);
    w.shutdown();
    auto [got, rsum] = reader.get();
    EXPECT_EQ(got, total);
    EXPECT_EQ(rsum, sum);
  });
  EXPECT_GT(rt().stats().io.drained_waits, 0u) << "no transfer came back short";
}
