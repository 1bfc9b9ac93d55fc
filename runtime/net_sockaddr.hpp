// Conversions between SocketAddress and the kernel's sockaddr structures,
// shared by the socket code (bind, connect, accept, recvfrom, getsockname).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <spindle/net.hpp>

namespace spindle::net::detail {

// Fills *out with a sockaddr_in (v4) or a sockaddr_in6 (v6, no flow label,
// no scope id) and returns its length, ready for bind/connect/sendto.
socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage* out) noexcept;

// The address in sa (AF_INET or AF_INET6, len at least that family's
// struct). A v4-mapped v6 address (::ffff:a.b.c.d) stays v6, as the kernel
// reported it; a v6 scope id is dropped (SocketAddress has none). Any other
// family, or a short len: std::invalid_argument.
SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);

}  // namespace spindle::net::detail
