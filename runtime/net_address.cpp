// spindle::net addresses: IP literals, "host:port" text, sockaddr
// conversions and resolve(). The sockets themselves live elsewhere.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include <spindle/net.hpp>
#include <spindle/this_task.hpp>
#include <spindle/to_thread.hpp>

#include "net_sockaddr.hpp"

namespace spindle::net {
namespace {

// Characters an IPv4 or IPv6 literal can hold. Checked before inet_pton so
// that "literals only" does not hang on how lenient a libc is: whitespace,
// brackets, ports and zone ids ("%eth0") never reach it.
bool addr_literal_chars(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
           c == ':';
  });
}

// Decimal 0..65535 in one to five digits; no sign, no spaces. Hand-rolled
// because strtoul and friends skip leading blanks and accept a sign.
std::optional<std::uint16_t> addr_parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) {
    return std::nullopt;
  }
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

[[noreturn]] void addr_bad_socket_address(std::string_view text, const char* why) {
  throw std::invalid_argument("SocketAddress::parse(\"" + std::string(text) + "\"): " + why);
}

struct AddrInfoFree {
  void operator()(addrinfo* ai) const noexcept { freeaddrinfo(ai); }
};

// getaddrinfo for a name (never a literal: resolve() answered those). Runs
// on whatever thread calls it, a blocking-pool thread when a task asked.
std::vector<SocketAddress> addr_lookup(const std::string& name, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  // One entry per address instead of one per socket type (stream, dgram,
  // raw); the port is the caller's, so no service is looked up.
  hints.ai_socktype = SOCK_STREAM;
  // No AI_ADDRCONFIG: on a machine whose only interface is loopback it
  // drops every result, "localhost" included.
  addrinfo* res = nullptr;
  int rc = getaddrinfo(name.c_str(), nullptr, &hints, &res);
  int saved_errno = errno;
  if (rc != 0) {
    // EHOSTUNREACH stands for every lookup failure (no such name, no
    // server...); the gai_strerror text says which. EAI_SYSTEM carries a
    // real errno.
    int err = rc == EAI_SYSTEM && saved_errno != 0 ? saved_errno : EHOSTUNREACH;
    throw std::system_error(err, std::generic_category(),
                            "resolve(\"" + name + "\"): " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, AddrInfoFree> owner(res);
  std::vector<SocketAddress> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
      continue;
    }
    SocketAddress a(detail::from_sockaddr(ai->ai_addr, ai->ai_addrlen).ip(), port);
    // A name listed twice (/etc/hosts and DNS, or two hosts lines) would
    // make connect() try the same address twice. The lists are a handful
    // long: a linear search keeps getaddrinfo's order (RFC 6724).
    if (std::find(out.begin(), out.end(), a) == out.end()) {
      out.push_back(a);
    }
  }
  if (out.empty()) {
    throw std::system_error(EHOSTUNREACH, std::generic_category(),
                            "resolve(\"" + name + "\"): no IPv4 or IPv6 address");
  }
  return out;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // The character check also keeps out an embedded NUL, which would end
  // the C string early and let "1.2.3.4\0junk" through.
  if (text.empty() || !addr_literal_chars(text)) {
    return std::nullopt;
  }
  std::string z(text);  // inet_pton wants a NUL-terminated string
  IpAddress ip;
  if (inet_pton(AF_INET, z.c_str(), ip.bytes_.data()) == 1) {
    ip.v4_ = true;
    return ip;
  }
  if (inet_pton(AF_INET6, z.c_str(), ip.bytes_.data()) == 1) {
    ip.v4_ = false;
    return ip;
  }
  return std::nullopt;
}

IpAddress IpAddress::loopback_v4() noexcept { return v4({127, 0, 0, 1}); }
IpAddress IpAddress::any_v4() noexcept { return IpAddress(); }

IpAddress IpAddress::loopback_v6() noexcept {
  std::array<std::uint8_t, 16> b{};
  b[15] = 1;
  return v6(b);
}

IpAddress IpAddress::any_v6() noexcept { return v6({}); }

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> bytes) noexcept {
  IpAddress ip;  // the other 12 bytes stay zero, so == compares v4s rightly
  std::copy(bytes.begin(), bytes.end(), ip.bytes_.begin());
  ip.v4_ = true;
  return ip;
}

IpAddress IpAddress::v6(std::array<std::uint8_t, 16> bytes) noexcept {
  IpAddress ip;
  ip.bytes_ = bytes;
  ip.v4_ = false;
  return ip;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (v4_) {
    inet_ntop(AF_INET, bytes_.data(), buf, sizeof buf);
    return buf;
  }
  // glibc prints a ::/96 address whose seventh group is not zero in the
  // deprecated IPv4-compatible form (::2:3 as "::0.2.0.3"); RFC 5952
  // section 5 keeps the dotted quad for v4-mapped addresses only. ::, ::1
  // and ::ffff:a.b.c.d come out right from inet_ntop.
  bool first_96_zero =
      std::all_of(bytes_.begin(), bytes_.begin() + 12, [](auto b) { return b == 0; });
  if (first_96_zero && (bytes_[12] != 0 || bytes_[13] != 0)) {
    std::snprintf(buf, sizeof buf, "::%x:%x", (bytes_[12] << 8) | bytes_[13],
                  (bytes_[14] << 8) | bytes_[15]);
    return buf;
  }
  inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

SocketAddress SocketAddress::parse(std::string_view text) {
  if (text.empty()) {
    addr_bad_socket_address(text, "empty address");
  }
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      addr_bad_socket_address(text, "no ']' after the IPv6 address");
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) {
      addr_bad_socket_address(text, "no port");
    }
    if (rest.front() != ':') {
      addr_bad_socket_address(text, "expected ':' and a port after ']'");
    }
    port = rest.substr(1);
    auto ip = IpAddress::parse(host);
    if (!ip || !ip->is_v6()) {
      addr_bad_socket_address(text, "not an IPv6 literal inside the brackets");
    }
    auto p = addr_parse_port(port);
    if (!p) {
      addr_bad_socket_address(text, "port is not a decimal number in 0..65535");
    }
    return SocketAddress(*ip, *p);
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    addr_bad_socket_address(text, "no port");
  }
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.find(':') != std::string_view::npos) {
    // Without brackets "::1:80" is itself a valid IPv6 address: which
    // colon starts the port cannot be told.
    addr_bad_socket_address(text, "an IPv6 address needs brackets: [addr]:port");
  }
  auto ip = IpAddress::parse(host);
  if (!ip) {
    addr_bad_socket_address(text, "not an IPv4 literal");
  }
  auto p = addr_parse_port(port);
  if (!p) {
    addr_bad_socket_address(text, "port is not a decimal number in 0..65535");
  }
  return SocketAddress(*ip, *p);
}

std::string SocketAddress::to_string() const {
  std::string port = std::to_string(port_);
  if (ip_.is_v6()) {
    return "[" + ip_.to_string() + "]:" + port;
  }
  return ip_.to_string() + ":" + port;
}

IncompleteReadError::IncompleteReadError(std::size_t partial, std::size_t expected)
    : Error("read_exact: end of stream after " + std::to_string(partial) + " of " +
            std::to_string(expected) + (expected == 1 ? " byte" : " bytes")),
      partial_(partial),
      expected_(expected) {}

std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port) {
  if (host.empty()) {
    throw std::invalid_argument("resolve: empty host name");
  }
  if (host.find('\0') != std::string_view::npos) {
    // getaddrinfo would look up the part before it, a different name.
    throw std::invalid_argument("resolve: host name contains a NUL byte");
  }
  if (auto ip = IpAddress::parse(host)) {
    return {SocketAddress(*ip, port)};
  }
  if (host.front() == '[') {
    // Brackets belong to URLs and "[v6]:port"; no name has them, so
    // anything but a v6 literal inside is a mistake, not a lookup.
    auto ip = host.back() == ']' ? IpAddress::parse(host.substr(1, host.size() - 2))
                                 : std::optional<IpAddress>();
    if (!ip || !ip->is_v6()) {
      throw std::invalid_argument("resolve(\"" + std::string(host) +
                                  "\"): brackets hold an IPv6 literal only");
    }
    return {SocketAddress(*ip, port)};
  }
  std::string name(host);
  if (in_task()) {
    // getaddrinfo blocks (hosts file, DNS and its retries): on the pool it
    // stalls no worker, and get() is a suspension point, so cancel() and
    // timeouts reach the task meanwhile. The job owns its copy of the name:
    // a cancelled task stops waiting while the lookup runs on.
    return to_thread([name = std::move(name), port] { return addr_lookup(name, port); }).get();
  }
  return addr_lookup(name, port);
}

namespace detail {

socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage* out) noexcept {
  std::memset(out, 0, sizeof *out);
  // ip() returns a copy: keep it, or bytes() would point into a temporary.
  const IpAddress ip = a.ip();
  const auto& b = ip.bytes();
  if (ip.is_v4()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(a.port());
    std::memcpy(&sin.sin_addr, b.data(), 4);
    std::memcpy(out, &sin, sizeof sin);
    return sizeof sin;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(a.port());
  std::memcpy(&sin6.sin6_addr, b.data(), 16);
  std::memcpy(out, &sin6, sizeof sin6);
  return sizeof sin6;
}

SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr || len < sizeof(sa_family_t)) {
    throw std::invalid_argument("from_sockaddr: no address family");
  }
  // Copied out with memcpy: sa may point into a buffer of another type
  // (sockaddr_storage, a raw recvfrom buffer).
  sa_family_t family;
  std::memcpy(&family, reinterpret_cast<const char*>(sa) + offsetof(sockaddr, sa_family),
              sizeof family);
  if (family == AF_INET) {
    if (len < sizeof(sockaddr_in)) {
      throw std::invalid_argument("from_sockaddr: AF_INET address too short");
    }
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);
    std::array<std::uint8_t, 4> b;
    std::memcpy(b.data(), &sin.sin_addr, 4);
    return SocketAddress(IpAddress::v4(b), ntohs(sin.sin_port));
  }
  if (family == AF_INET6) {
    if (len < sizeof(sockaddr_in6)) {
      throw std::invalid_argument("from_sockaddr: AF_INET6 address too short");
    }
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    std::array<std::uint8_t, 16> b;
    std::memcpy(b.data(), &sin6.sin6_addr, 16);
    return SocketAddress(IpAddress::v6(b), ntohs(sin6.sin6_port));
  }
  throw std::invalid_argument("from_sockaddr: address family " + std::to_string(family) +
                              " is neither AF_INET nor AF_INET6");
}

}  // namespace detail
}  // namespace spindle::net
