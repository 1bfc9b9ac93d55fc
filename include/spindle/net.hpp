// spindle::net: TCP and UDP sockets whose waits suspend the calling task.
//
// Every call that can wait (accept, connect, read_*, write_*, recv*, send*,
// a name lookup in resolve) is a suspension point of a task, and honours
// cancel(), timeout() and wait_for() like any other wait. On a plain thread
// (outside every task) every call that needs the runtime throws
// InvalidStateError. A socket belongs to the runtime of the task that made it.
//
// Each call tries the system call first and waits only when the kernel says
// EAGAIN; a failing call throws std::system_error with its errno
// (ECONNREFUSED, ECONNRESET, EPIPE, EADDRINUSE, EMFILE...). Sends never raise
// SIGPIPE. close() is safe from any thread while other tasks wait on the
// same socket: they throw std::system_error(EBADF). Destroy a socket only
// when no other task still uses it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "errors.hpp"

namespace spindle::detail {
class IoSource;  // the runtime's registration of one socket (runtime/io_driver.hpp)
}  // namespace spindle::detail

namespace spindle::net {

// An IPv4 or IPv6 address, by value.
class IpAddress {
 public:
  IpAddress() = default;  // 0.0.0.0
  // Literals only ("127.0.0.1", "::1", "fe80::1"); nullopt for anything else.
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress loopback_v4() noexcept;
  static IpAddress any_v4() noexcept;
  static IpAddress loopback_v6() noexcept;
  static IpAddress any_v6() noexcept;
  static IpAddress v4(std::array<std::uint8_t, 4> bytes) noexcept;
  static IpAddress v6(std::array<std::uint8_t, 16> bytes) noexcept;

  bool is_v4() const noexcept { return v4_; }
  bool is_v6() const noexcept { return !v4_; }
  // The address bytes, network order: the first 4 for v4, all 16 for v6.
  const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }
  std::string to_string() const;  // "127.0.0.1", "::1" (RFC 5952 form)

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
  bool v4_ = true;
};

// An IP address and a port.
class SocketAddress {
 public:
  SocketAddress() = default;
  SocketAddress(IpAddress ip, std::uint16_t port) : ip_(ip), port_(port) {}
  // "127.0.0.1:80", "[::1]:443"; std::invalid_argument if malformed.
  static SocketAddress parse(std::string_view text);

  IpAddress ip() const noexcept { return ip_; }
  std::uint16_t port() const noexcept { return port_; }
  std::string to_string() const;  // "127.0.0.1:80", "[::1]:443"

  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;

 private:
  IpAddress ip_;
  std::uint16_t port_ = 0;
};

// Literals at once; names through getaddrinfo on the blocking pool, the task
// waiting meanwhile. An unknown name is a std::system_error whose message
// names it. From a plain thread, a name is looked up on that thread.
std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port);

// read_exact() met end of stream first: partial() bytes arrived of expected().
class IncompleteReadError : public Error {
 public:
  IncompleteReadError(std::size_t partial, std::size_t expected);
  std::size_t partial() const noexcept { return partial_; }
  std::size_t expected() const noexcept { return expected_; }

 private:
  std::size_t partial_;
  std::size_t expected_;
};

enum class Shutdown { Read, Write, Both };

namespace detail {

// What the three socket classes share: the fd's registration with the
// runtime, and close(). Move-only.
class Socket {
 public:
  Socket() = default;
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  // Idempotent; tasks waiting on this socket throw std::system_error(EBADF).
  void close() noexcept;
  bool is_open() const noexcept;
  // The fd (-1 once closed). Do not close it yourself.
  int native_handle() const noexcept;
  SocketAddress local_addr() const;

 protected:
  explicit Socket(spindle::detail::IoSource* h) noexcept : handle_(h) {}
  spindle::detail::IoSource* handle() const;  // std::system_error(EBADF) once closed

 private:
  spindle::detail::IoSource* handle_ = nullptr;
};

}  // namespace detail

class TcpStream : public detail::Socket {
 public:
  TcpStream() = default;  // not connected: every call throws EBADF

  // Cancel-safe: a cancelled connect closes the half-open socket.
  static TcpStream connect(const SocketAddress& addr);
  // Each resolved address in turn; the last error if none accepts.
  static TcpStream connect(std::string_view host, std::uint16_t port);

  // At least one byte, waiting if none has arrived; 0 only at end of stream
  // (or for an empty buffer). Cancel-safe: a cancelled call consumed nothing.
  std::size_t read_some(std::span<std::byte> buf);
  std::size_t read_some(std::span<char> buf);
  // Fills buf. End of stream first: IncompleteReadError. Not cancel-safe:
  // bytes read before a cancellation are lost with it.
  void read_exact(std::span<std::byte> buf);
  void read_exact(std::span<char> buf);
  // At least one byte, waiting for room if none. Cancel-safe: a cancelled
  // call sent nothing.
  std::size_t write_some(std::span<const std::byte> buf);
  // All of buf. Not cancel-safe: a cancellation may come after part of it
  // was sent, and how much is not reported.
  void write_all(std::span<const std::byte> buf);
  void write_all(std::string_view text);

  void shutdown(Shutdown how = Shutdown::Write);  // half-close; does not wait
  void set_nodelay(bool on);                      // on by default
  SocketAddress peer_addr() const;

 private:
  friend class TcpListener;
  using detail::Socket::Socket;
};

class TcpListener : public detail::Socket {
 public:
  TcpListener() = default;
  // SO_REUSEADDR; backlog -1: the system's somaxconn.
  static TcpListener bind(const SocketAddress& addr, int backlog = -1);
  static TcpListener bind(std::string_view host, std::uint16_t port, int backlog = -1);

  // Waits for a connection; TCP_NODELAY is set on it. EINTR and
  // ECONNABORTED are retried inside; EMFILE and ENFILE are thrown, so that
  // an accept loop can back off. Cancel-safe: a cancelled call accepted
  // nothing.
  TcpStream accept();

 private:
  using detail::Socket::Socket;
};

class UdpSocket : public detail::Socket {
 public:
  UdpSocket() = default;
  static UdpSocket bind(const SocketAddress& addr);

  // Cancel-safe, as are all four below: a cancelled call sent or received
  // nothing.
  std::size_t send_to(std::span<const std::byte> data, const SocketAddress& to);
  struct Received {
    std::size_t size;  // bytes stored in buf: a longer datagram is truncated
    SocketAddress from;
  };
  Received recv_from(std::span<std::byte> buf);
  void connect(const SocketAddress& peer);
  std::size_t send(std::span<const std::byte> data);
  std::size_t recv(std::span<std::byte> buf);

 private:
  using detail::Socket::Socket;
};

}  // namespace spindle::net
