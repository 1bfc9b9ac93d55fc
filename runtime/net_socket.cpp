// spindle::net's sockets: each call tries its syscall and waits on the I/O
// driver after EAGAIN (io_driver.hpp, io_state.hpp INV-IO3), or at once when
// the readiness word says the last syscall drained the socket and nothing
// came since (INV-IO10).
//
// The loop every waiting call runs:
//   1. snapshot the readiness word (its tick is what a later clear checks);
//      if it says drained, wait (step 4) without the syscall;
//   2. the syscall; done unless EAGAIN (EINTR: again at once). A TCP read
//      or write that moved fewer bytes than asked also clears the ready bit
//      for the snapshot's tick (the next call then starts waiting);
//   3. after EAGAIN, clear the direction's ready bit for the snapshot's
//      tick; if a newer edge came meanwhile (the clear fails), back to 1;
//   4. wait on the direction (IoSource::wait), then back to 1.
// The whole call holds the source open (IoSource::enter, INV-IO8), so
// close() on another thread never releases the fd under its syscall.
#include <spindle/net.hpp>
#include <spindle/this_task.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "io_driver.hpp"
#include "net_sockaddr.hpp"
#include "park.hpp"
#include "perturb.hpp"
#include "scheduler.hpp"
#include "wait_kind.hpp"
#include "worker.hpp"

namespace spindle::net {
namespace {

using spindle::detail::IoDirection;
using spindle::detail::IoSnapshot;
using spindle::detail::IoSource;
using spindle::detail::WaitKind;

[[noreturn]] __attribute__((cold)) void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}

[[noreturn]] __attribute__((cold)) void throw_closed(const char* what) { throw_errno(EBADF, what); }

// The driver of the calling task's runtime; InvalidStateError on a plain
// thread (a socket belongs to the runtime of the task that made it).
spindle::detail::IoDriver& current_driver(const char* what) {
  spindle::detail::task_or_throw(what);
  return spindle::detail::Worker::current()->scheduler().io();
}

// A socket not yet registered: it is set up (bind, listen, connect) first,
// because epoll reports EPOLLHUP for a TCP socket that is neither connected
// nor listening, and that would mark both sides closed for good (INV-IO4).
class RawSocket {
 public:
  RawSocket(int family, int type, const char* what) : driver_(&current_driver(what)) {
    fd_ = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      throw_errno(errno, what);
    }
  }
  ~RawSocket() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  int fd() const noexcept { return fd_; }
  // Hands the fd to the driver.
  IoSource* register_now() {
    const int fd = fd_;
    fd_ = -1;
    return driver_->add(fd);  // closes fd if it throws
  }

 private:
  spindle::detail::IoDriver* driver_;
  int fd_ = -1;
};

// Holds a source open for one call (INV-IO8).
class Entered {
 public:
  Entered(IoSource* s, const char* what) : s_(s) {
    if (!s->enter()) {
      throw_closed(what);
    }
  }
  ~Entered() { s_->leave(); }
  Entered(const Entered&) = delete;
  Entered& operator=(const Entered&) = delete;

 private:
  IoSource* s_;
};

// The cooperative budget (DESIGN.md "I/O"): a task whose calls keep
// finding their socket ready never suspends, so every kBudget such calls it
// yields once, before its syscall (a yield there cancels nothing: no byte
// has moved yet, so the calls stay cancel-safe).
constexpr unsigned kBudget = 128;
thread_local const void* t_budget_task = nullptr;
thread_local unsigned t_budget_left = kBudget;

void spend_budget() {
  const void* self = spindle::detail::running_root();
  if (t_budget_task != self) {
    t_budget_task = self;
    t_budget_left = kBudget;
  }
  if (--t_budget_left == 0) {
    t_budget_left = kBudget;
    spindle::yield();
  }
}

// Steps 1-4 of the file's loop around `call`, which returns the syscall's
// result (>= 0) or -1 with errno set. EAGAIN waits on `d`; every other error
// is thrown unless `retry_on` says to try again at once. `stream_asked` is
// the byte count a TCP recv or send asked for, 0 for any other call: a
// result below it, above zero, is a short transfer (INV-IO10).
template <class Call>
long io_loop(IoSource* s, IoDirection d, WaitKind kind, const char* what, Call&& call,
             bool (*retry_on)(int) = nullptr, std::size_t stream_asked = 0) {
  spindle::detail::task_or_throw(what);
  Entered entered(s, what);
  if (s->driver().retired()) {
    // Nobody polls a shut-down runtime's sockets: a wait would never end.
    throw InvalidStateError(std::string(what) + ": the socket's runtime has shut down");
  }
  spend_budget();
  for (;;) {
    const IoSnapshot seen = s->readiness().snapshot();
    if (seen.closing()) {
      throw_closed(what);
    }
    if (seen.drained(d)) {
      // INV-IO10: the syscall could only say EAGAIN.
      s->driver().counters().bump(s->driver().counters().drained_waits);
      SPINDLE_PERTURB(kIoDrained);  // an edge may land before the wait links
      s->wait(d, spindle::detail::wait_text(kind));
      continue;
    }
    const long r = call(s->fd());
    if (r >= 0) {
      if (r > 0 && static_cast<std::size_t>(r) < stream_asked) {
        SPINDLE_PERTURB(kIoShortCount);             // widens the race with a newer edge
        s->readiness().clear_after_short(d, seen);  // INV-IO10
      }
      return r;
    }
    const int err = errno;
    if (err == EINTR || (retry_on != nullptr && retry_on(err))) {
      continue;
    }
    if (err != EAGAIN && err != EWOULDBLOCK) {
      throw_errno(err, what);
    }
    s->driver().counters().bump(s->driver().counters().eagains);
    if (!s->readiness().clear_ready(d, seen)) {
      continue;  // INV-IO3: an edge came after our snapshot
    }
    s->wait(d, spindle::detail::wait_text(kind));
  }
}

std::span<std::byte> as_bytes_span(std::span<char> buf) noexcept {
  return {reinterpret_cast<std::byte*>(buf.data()), buf.size()};
}

void set_int_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    throw_errno(errno, what);
  }
}

SocketAddress sockname(int fd, bool peer, const char* what) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (r != 0) {
    throw_errno(errno, what);
  }
  return detail::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace

// ---------------------------------------------------------------------------
// Socket
// ---------------------------------------------------------------------------

namespace detail {

Socket::Socket(Socket&& other) noexcept : handle_(other.handle_) { other.handle_ = nullptr; }

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) {
      handle_->drop_owner();
    }
    handle_ = other.handle_;
    other.handle_ = nullptr;
  }
  return *this;
}

Socket::~Socket() {
  if (handle_ != nullptr) {
    handle_->drop_owner();
  }
}

void Socket::close() noexcept {
  if (handle_ != nullptr) {
    handle_->close();
  }
}

bool Socket::is_open() const noexcept { return handle_ != nullptr && !handle_->closed(); }

int Socket::native_handle() const noexcept { return is_open() ? handle_->fd() : -1; }

IoSource* Socket::handle() const {
  if (!is_open()) {
    throw_closed("spindle::net: the socket is closed");
  }
  return handle_;
}

SocketAddress Socket::local_addr() const {
  IoSource* s = handle();
  Entered entered(s, "local_addr");
  return sockname(s->fd(), false, "getsockname");
}

}  // namespace detail

// ---------------------------------------------------------------------------
// TcpStream
// ---------------------------------------------------------------------------

TcpStream TcpStream::connect(const SocketAddress& addr) {
  sockaddr_storage ss{};
  const socklen_t len = detail::to_sockaddr(addr, &ss);
  RawSocket raw(ss.ss_family, SOCK_STREAM, "spindle::net::TcpStream::connect");
  set_int_option(raw.fd(), IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)");
  int r;
  do {
    r = ::connect(raw.fd(), reinterpret_cast<sockaddr*>(&ss), len);
  } while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EINPROGRESS) {
    throw_errno(errno, ("connect " + addr.to_string()).c_str());
  }
  TcpStream stream(raw.register_now());
  if (r == 0) {
    return stream;  // loopback may connect at once
  }
  IoSource* s = stream.handle();
  // In progress: wait for writability, then read the outcome. A
  // cancellation unwinds through `stream`, whose destructor closes the
  // half-open socket.
  io_loop(s, IoDirection::kWrite, WaitKind::kIoConnect, "connect", [](int fd) -> long {
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
      return -1;
    }
    if (err != 0) {
      errno = err;  // ECONNREFUSED, ETIMEDOUT...
      return -1;
    }
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) {
      return 0;  // connected
    }
    errno = EAGAIN;  // ENOTCONN: still in progress
    return -1;
  });
  return stream;
}

TcpStream TcpStream::connect(std::string_view host, std::uint16_t port) {
  std::vector<SocketAddress> addrs = resolve(host, port);
  std::exception_ptr last;
  for (const SocketAddress& a : addrs) {
    try {
      return connect(a);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  if (last) {
    std::rethrow_exception(last);
  }
  throw_errno(EHOSTUNREACH, "connect: no address");
}

std::size_t TcpStream::read_some(std::span<std::byte> buf) {
  IoSource* s = handle();
  if (buf.empty()) {
    return 0;
  }
  return static_cast<std::size_t>(io_loop(
      s, IoDirection::kRead, WaitKind::kIoRead, "read",
      [&](int fd) -> long { return ::recv(fd, buf.data(), buf.size(), 0); }, nullptr, buf.size()));
}

std::size_t TcpStream::read_some(std::span<char> buf) { return read_some(as_bytes_span(buf)); }

void TcpStream::read_exact(std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t n = read_some(buf.subspan(got));
    if (n == 0) {
      throw IncompleteReadError(got, buf.size());
    }
    got += n;
  }
}

void TcpStream::read_exact(std::span<char> buf) { read_exact(as_bytes_span(buf)); }

std::size_t TcpStream::write_some(std::span<const std::byte> buf) {
  IoSource* s = handle();
  if (buf.empty()) {
    return 0;
  }
  return static_cast<std::size_t>(io_loop(
      s, IoDirection::kWrite, WaitKind::kIoWrite, "write",
      [&](int fd) -> long { return ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL); }, nullptr,
      buf.size()));
}

void TcpStream::write_all(std::span<const std::byte> buf) {
  while (!buf.empty()) {
    buf = buf.subspan(write_some(buf));
  }
}

void TcpStream::write_all(std::string_view text) {
  write_all(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

void TcpStream::shutdown(Shutdown how) {
  IoSource* s = handle();
  Entered entered(s, "shutdown");
  const int h = how == Shutdown::Read ? SHUT_RD : how == Shutdown::Write ? SHUT_WR : SHUT_RDWR;
  if (::shutdown(s->fd(), h) != 0) {
    throw_errno(errno, "shutdown");
  }
}

void TcpStream::set_nodelay(bool on) {
  IoSource* s = handle();
  Entered entered(s, "set_nodelay");
  set_int_option(s->fd(), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt(TCP_NODELAY)");
}

SocketAddress TcpStream::peer_addr() const {
  IoSource* s = handle();
  Entered entered(s, "peer_addr");
  return sockname(s->fd(), true, "getpeername");
}

// ---------------------------------------------------------------------------
// TcpListener
// ---------------------------------------------------------------------------

TcpListener TcpListener::bind(const SocketAddress& addr, int backlog) {
  sockaddr_storage ss{};
  const socklen_t len = detail::to_sockaddr(addr, &ss);
  RawSocket raw(ss.ss_family, SOCK_STREAM, "spindle::net::TcpListener::bind");
  set_int_option(raw.fd(), SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)");
  if (::bind(raw.fd(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw_errno(errno, ("bind " + addr.to_string()).c_str());
  }
  // SOMAXCONN asks for the most: the kernel caps it at net.core.somaxconn.
  if (::listen(raw.fd(), backlog < 0 ? SOMAXCONN : backlog) != 0) {
    throw_errno(errno, "listen");
  }
  return TcpListener(raw.register_now());
}

TcpListener TcpListener::bind(std::string_view host, std::uint16_t port, int backlog) {
  std::vector<SocketAddress> addrs = resolve(host, port);
  std::exception_ptr last;
  for (const SocketAddress& a : addrs) {
    try {
      return bind(a, backlog);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  if (last) {
    std::rethrow_exception(last);
  }
  throw_errno(EADDRNOTAVAIL, "bind: no address");
}

TcpStream TcpListener::accept() {
  IoSource* s = handle();
  spindle::detail::IoDriver& driver = s->driver();
  const long fd = io_loop(
      s, IoDirection::kRead, WaitKind::kIoAccept, "accept",
      [](int lfd) -> long {
        return ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      },
      // A connection reset before we took it: take the next one. The
      // protocol errors accept(2) says to treat as EAGAIN likewise.
      [](int err) {
        return err == ECONNABORTED || err == EPROTO || err == ENETDOWN || err == ENOPROTOOPT ||
               err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH || err == EOPNOTSUPP ||
               err == ENETUNREACH;
      });
  TcpStream stream(driver.add(static_cast<int>(fd)));
  set_int_option(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)");
  return stream;
}

// ---------------------------------------------------------------------------
// UdpSocket
// ---------------------------------------------------------------------------

UdpSocket UdpSocket::bind(const SocketAddress& addr) {
  sockaddr_storage ss{};
  const socklen_t len = detail::to_sockaddr(addr, &ss);
  RawSocket raw(ss.ss_family, SOCK_DGRAM, "spindle::net::UdpSocket::bind");
  if (::bind(raw.fd(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw_errno(errno, ("bind " + addr.to_string()).c_str());
  }
  return UdpSocket(raw.register_now());
}

std::size_t UdpSocket::send_to(std::span<const std::byte> data, const SocketAddress& to) {
  IoSource* s = handle();
  sockaddr_storage ss{};
  const socklen_t len = detail::to_sockaddr(to, &ss);
  return static_cast<std::size_t>(
      io_loop(s, IoDirection::kWrite, WaitKind::kIoWrite, "send_to", [&](int fd) -> long {
        return ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL,
                        reinterpret_cast<sockaddr*>(&ss), len);
      }));
}

UdpSocket::Received UdpSocket::recv_from(std::span<std::byte> buf) {
  IoSource* s = handle();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const long n =
      io_loop(s, IoDirection::kRead, WaitKind::kIoRead, "recv_from", [&](int fd) -> long {
        len = sizeof ss;
        return ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
      });
  return Received{static_cast<std::size_t>(n),
                  detail::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len)};
}

void UdpSocket::connect(const SocketAddress& peer) {
  IoSource* s = handle();
  Entered entered(s, "connect");
  sockaddr_storage ss{};
  const socklen_t len = detail::to_sockaddr(peer, &ss);
  if (::connect(s->fd(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw_errno(errno, "connect");
  }
}

std::size_t UdpSocket::send(std::span<const std::byte> data) {
  IoSource* s = handle();
  return static_cast<std::size_t>(
      io_loop(s, IoDirection::kWrite, WaitKind::kIoWrite, "send",
              [&](int fd) -> long { return ::send(fd, data.data(), data.size(), MSG_NOSIGNAL); }));
}

std::size_t UdpSocket::recv(std::span<std::byte> buf) {
  IoSource* s = handle();
  return static_cast<std::size_t>(
      io_loop(s, IoDirection::kRead, WaitKind::kIoRead, "recv",
              [&](int fd) -> long { return ::recv(fd, buf.data(), buf.size(), 0); }));
}

}  // namespace spindle::net
