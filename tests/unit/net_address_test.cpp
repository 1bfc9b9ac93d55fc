// spindle::net addresses: IP literals, "host:port" text, sockaddr
// conversions, resolve() and IncompleteReadError.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include "net_sockaddr.hpp"

using namespace std::chrono_literals;
using spindle::net::IpAddress;
using spindle::net::SocketAddress;

namespace {

// The bytes inet_pton gives for text, the reference the parser is checked
// against (so no expected byte array is written out by hand).
std::array<std::uint8_t, 16> pton_bytes(int family, const char* text) {
  std::array<std::uint8_t, 16> b{};
  EXPECT_EQ(inet_pton(family, text, b.data()), 1) << text;
  return b;
}

bool is_loopback(const IpAddress& ip) {
  return ip == IpAddress::loopback_v4() || ip == IpAddress::loopback_v6();
}

}  // namespace

TEST(NetAddress, ParsesV4LiteralsAndPrintsThemBack) {
  for (const char* text : {"127.0.0.1", "0.0.0.0", "255.255.255.255", "1.2.3.4", "10.0.0.254"}) {
    auto ip = IpAddress::parse(text);
    ASSERT_TRUE(ip.has_value()) << text;
    EXPECT_TRUE(ip->is_v4()) << text;
    EXPECT_FALSE(ip->is_v6()) << text;
    EXPECT_EQ(ip->bytes(), pton_bytes(AF_INET, text)) << text;
    EXPECT_EQ(ip->to_string(), text);
  }
}

TEST(NetAddress, ParsesV6LiteralsAndPrintsThemBack) {
  for (const char* text : {"::", "::1", "::ffff:1.2.3.4", "2001:db8::1", "fe80::1",
                           "2001:db8::1:0:0:1", "1:2:3:4:5:6:7:8", "ff02::2", "::2:3", "::1:0"}) {
    auto ip = IpAddress::parse(text);
    ASSERT_TRUE(ip.has_value()) << text;
    EXPECT_TRUE(ip->is_v6()) << text;
    EXPECT_FALSE(ip->is_v4()) << text;
    EXPECT_EQ(ip->bytes(), pton_bytes(AF_INET6, text)) << text;
    EXPECT_EQ(ip->to_string(), text);
  }
}

TEST(NetAddress, PrintsV6InRfc5952Form) {
  struct Case {
    const char* in;
    const char* out;
  };
  for (auto [in, out] : std::initializer_list<Case>{
           {"2001:0db8:0:0:0:0:0:1", "2001:db8::1"},
           {"2001:DB8::1", "2001:db8::1"},                    // lower case
           {"0:0:0:0:0:0:0:0", "::"},                         // all zero
           {"0:0:0:0:0:0:0:1", "::1"},                        // loopback
           {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},     // first of equal runs
           {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},           // longest run
           {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // a single 0 stays
           {"::FFFF:102:304", "::ffff:1.2.3.4"},              // v4-mapped: dotted
           {"0:0:0:0:0:0:2:3", "::2:3"},                      // not the deprecated "::0.2.0.3"
           {"::a:b", "::a:b"},
       }) {
    auto ip = IpAddress::parse(in);
    ASSERT_TRUE(ip.has_value()) << in;
    EXPECT_EQ(ip->to_string(), out) << in;
    // What it prints parses back to the same address.
    EXPECT_EQ(IpAddress::parse(ip->to_string()), ip) << in;
  }
}

TEST(NetAddress, ParseRejectsAnythingButALiteral) {
  for (std::string_view text : std::initializer_list<std::string_view>{
           "",
           " 1.2.3.4",
           "1.2.3.4 ",
           "1.2.3.4\n",
           "1.2.3.4:80",
           "1.2.3",
           "1.2.3.4.5",
           "256.1.1.1",
           "0x7f.0.0.1",
           "127.1",
           "localhost",
           "[::1]",
           " ::1",
           "::1 ",
           "fe80::1%eth0",
           "fe80::1%1",
           "[::1]:443",
           ":::",
           "1::2::3",
           "12345::1",
           "1:2:3:4:5:6:7:8:9",
           "::ffff:1.2.3",
           std::string_view("1.2.3.4\0junk", 12),
           std::string_view("::1\0", 4),
       }) {
    EXPECT_FALSE(IpAddress::parse(text).has_value()) << '"' << text << '"';
  }
}

TEST(NetAddress, Factories) {
  EXPECT_EQ(IpAddress::loopback_v4(), IpAddress::parse("127.0.0.1"));
  EXPECT_EQ(IpAddress::any_v4(), IpAddress::parse("0.0.0.0"));
  EXPECT_EQ(IpAddress::any_v4(), IpAddress());
  EXPECT_EQ(IpAddress::loopback_v6(), IpAddress::parse("::1"));
  EXPECT_EQ(IpAddress::any_v6(), IpAddress::parse("::"));
  EXPECT_EQ(IpAddress::v4({10, 1, 2, 3}), IpAddress::parse("10.1.2.3"));
  EXPECT_EQ(IpAddress::v4({10, 1, 2, 3}).to_string(), "10.1.2.3");
  std::array<std::uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
  b[15] = 7;
  EXPECT_EQ(IpAddress::v6(b), IpAddress::parse("2001:db8::7"));
  EXPECT_EQ(IpAddress::v6(b).bytes(), b);
  // Same bytes, other family: not equal.
  EXPECT_NE(IpAddress::any_v4(), IpAddress::any_v6());
  EXPECT_TRUE(IpAddress().is_v4());
}

TEST(NetAddress, SocketAddressRoundTrips) {
  struct Case {
    const char* text;
    const char* ip;
    std::uint16_t port;
  };
  for (auto [text, ip, port] : std::initializer_list<Case>{
           {"1.2.3.4:80", "1.2.3.4", 80},
           {"127.0.0.1:8080", "127.0.0.1", 8080},
           {"[::1]:443", "::1", 443},
           {"[2001:db8::1]:53", "2001:db8::1", 53},
           {"[::ffff:1.2.3.4]:1", "::ffff:1.2.3.4", 1},
           {"[::]:22", "::", 22},
       }) {
    SocketAddress a = SocketAddress::parse(text);
    EXPECT_EQ(a.ip(), IpAddress::parse(ip)) << text;
    EXPECT_EQ(a.port(), port) << text;
    EXPECT_EQ(a.to_string(), text);
    EXPECT_EQ(SocketAddress::parse(a.to_string()), a) << text;
  }
  // Printed from parts: brackets for v6 only.
  EXPECT_EQ(SocketAddress(IpAddress::loopback_v6(), 443).to_string(), "[::1]:443");
  EXPECT_EQ(SocketAddress(IpAddress::loopback_v4(), 80).to_string(), "127.0.0.1:80");
  // A non-canonical v6 inside brackets is accepted and printed canonical.
  EXPECT_EQ(SocketAddress::parse("[2001:0DB8:0:0:0:0:0:1]:80").to_string(), "[2001:db8::1]:80");
}

TEST(NetAddress, PortBounds) {
  EXPECT_EQ(SocketAddress::parse("1.2.3.4:0").port(), 0);
  EXPECT_EQ(SocketAddress::parse("1.2.3.4:65535").port(), 65535);
  EXPECT_EQ(SocketAddress::parse("[::1]:0").port(), 0);
  EXPECT_EQ(SocketAddress::parse("[::1]:65535").port(), 65535);
  EXPECT_EQ(SocketAddress::parse("1.2.3.4:00080").port(), 80);  // five digits
  EXPECT_THROW(SocketAddress::parse("1.2.3.4:65536"), std::invalid_argument);
  EXPECT_THROW(SocketAddress::parse("[::1]:65536"), std::invalid_argument);
  EXPECT_THROW(SocketAddress::parse("1.2.3.4:99999"), std::invalid_argument);
  EXPECT_THROW(SocketAddress::parse("1.2.3.4:000080"), std::invalid_argument);  // six
  // 65536 + 80 would wrap to 80 in 16 bits.
  EXPECT_THROW(SocketAddress::parse("1.2.3.4:65616"), std::invalid_argument);
}

TEST(NetAddress, SocketAddressRejectsMalformedAndQuotesIt) {
  for (const char* text : {
           "",
           "1.2.3.4",         // no port
           "1.2.3.4:",        // empty port
           ":80",             // no host
           "::1",             // bare v6
           "::1:80",          // bare v6 with what looks like a port
           "2001:db8::1:80",  // same
           "[::1]",           // no port
           "[::1]:",          // empty port
           "[::1]80",         // no colon
           "[::1:80",         // no closing bracket
           "[]:80",           // nothing inside
           "[1.2.3.4]:80",    // brackets hold v6 only
           "[[::1]]:80",
           "[::1]:443]",
           "[fe80::1%eth0]:80",  // zone id
           "localhost:80",       // not a literal
           "example.com:443",
           "1.2.3.4:+80",  // sign
           "1.2.3.4:-1",
           "1.2.3.4: 80",  // spaces
           "1.2.3.4:80 ",
           " 1.2.3.4:80",
           "1.2.3.4 :80",
           "1.2.3.4:0x50",
           "1.2.3.4:8o",
           "1.2.3.4:80:80",
           "1.2.3:80",
       }) {
    try {
      SocketAddress a = SocketAddress::parse(text);
      ADD_FAILURE() << '"' << text << "\" parsed as " << a.to_string();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find('"' + std::string(text) + '"'), std::string::npos)
          << "message does not quote the input: " << e.what();
    }
  }
  // An embedded NUL must not cut the text short.
  EXPECT_THROW(SocketAddress::parse(std::string_view("1.2.3.4:80\0", 11)), std::invalid_argument);
  EXPECT_THROW(SocketAddress::parse(std::string_view("1.2.3.4\0:80", 11)), std::invalid_argument);
}

TEST(NetAddress, SockaddrRoundTripV4) {
  SocketAddress a = SocketAddress::parse("1.2.3.4:8080");
  sockaddr_storage ss;
  std::memset(&ss, 0xab, sizeof ss);  // garbage that to_sockaddr must clear
  socklen_t len = spindle::net::detail::to_sockaddr(a, &ss);
  ASSERT_EQ(len, sizeof(sockaddr_in));
  sockaddr_in sin;
  std::memcpy(&sin, &ss, sizeof sin);
  EXPECT_EQ(sin.sin_family, AF_INET);
  EXPECT_EQ(ntohs(sin.sin_port), 8080);
  in_addr expected;
  ASSERT_EQ(inet_pton(AF_INET, "1.2.3.4", &expected), 1);
  EXPECT_EQ(sin.sin_addr.s_addr, expected.s_addr);
  for (unsigned char z : sin.sin_zero) {
    EXPECT_EQ(z, 0);
  }
  EXPECT_EQ(spindle::net::detail::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len), a);
}

TEST(NetAddress, SockaddrRoundTripV6) {
  for (const char* text : {"[2001:db8::1]:443", "[::1]:0", "[::ffff:1.2.3.4]:65535"}) {
    SocketAddress a = SocketAddress::parse(text);
    sockaddr_storage ss;
    std::memset(&ss, 0xab, sizeof ss);
    socklen_t len = spindle::net::detail::to_sockaddr(a, &ss);
    ASSERT_EQ(len, sizeof(sockaddr_in6)) << text;
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof sin6);
    EXPECT_EQ(sin6.sin6_family, AF_INET6) << text;
    EXPECT_EQ(ntohs(sin6.sin6_port), a.port()) << text;
    EXPECT_EQ(std::memcmp(&sin6.sin6_addr, a.ip().bytes().data(), 16), 0) << text;
    EXPECT_EQ(sin6.sin6_flowinfo, 0u) << text;
    EXPECT_EQ(sin6.sin6_scope_id, 0u) << text;
    SocketAddress back = spindle::net::detail::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    EXPECT_EQ(back, a) << text;
    EXPECT_TRUE(back.ip().is_v6()) << text << ": a v4-mapped address stays v6";
  }
}

TEST(NetAddress, FromSockaddrRejectsOtherFamiliesAndShortLengths) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  EXPECT_THROW(spindle::net::detail::from_sockaddr(reinterpret_cast<sockaddr*>(&sun), sizeof sun),
               std::invalid_argument);
  sockaddr_storage ss;
  socklen_t len = spindle::net::detail::to_sockaddr(SocketAddress::parse("1.2.3.4:1"), &ss);
  EXPECT_THROW(spindle::net::detail::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len - 1),
               std::invalid_argument);
  len = spindle::net::detail::to_sockaddr(SocketAddress::parse("[::1]:1"), &ss);
  EXPECT_THROW(spindle::net::detail::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len - 1),
               std::invalid_argument);
  EXPECT_THROW(spindle::net::detail::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), 0),
               std::invalid_argument);
}

TEST(NetAddress, ResolvesLiteralsOnAPlainThread) {
  EXPECT_EQ(spindle::net::resolve("127.0.0.1", 80),
            std::vector<SocketAddress>{SocketAddress::parse("127.0.0.1:80")});
  EXPECT_EQ(spindle::net::resolve("[::1]", 443),
            std::vector<SocketAddress>{SocketAddress::parse("[::1]:443")});
  EXPECT_EQ(spindle::net::resolve("::1", 443),
            std::vector<SocketAddress>{SocketAddress::parse("[::1]:443")});
  EXPECT_EQ(spindle::net::resolve("2001:db8::1", 0),
            std::vector<SocketAddress>{SocketAddress::parse("[2001:db8::1]:0")});
  // Brackets hold a v6 literal or nothing.
  EXPECT_THROW(spindle::net::resolve("[127.0.0.1]", 80), std::invalid_argument);
  EXPECT_THROW(spindle::net::resolve("[localhost]", 80), std::invalid_argument);
  EXPECT_THROW(spindle::net::resolve("[::1", 80), std::invalid_argument);
}

TEST(NetAddress, ResolveEmptyHostIsInvalid) {
  EXPECT_THROW(spindle::net::resolve("", 80), std::invalid_argument);
  EXPECT_THROW(spindle::net::resolve(std::string_view("localhost\0x", 11), 80),
               std::invalid_argument);
}

TEST(NetAddress, ResolvesLocalhostOnAPlainThread) {
  auto addrs = spindle::net::resolve("localhost", 8080);
  ASSERT_FALSE(addrs.empty());
  for (const auto& a : addrs) {
    EXPECT_TRUE(is_loopback(a.ip())) << a.to_string();
    EXPECT_EQ(a.port(), 8080) << a.to_string();
  }
}

TEST(NetAddress, ResolvesLocalhostInATask) {
  spindle::Runtime rt;
  auto addrs = rt.block_on([] { return spindle::net::resolve("localhost", 80); });
  ASSERT_FALSE(addrs.empty());
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    EXPECT_TRUE(is_loopback(addrs[i].ip())) << addrs[i].to_string();
    EXPECT_EQ(addrs[i].port(), 80) << addrs[i].to_string();
    for (std::size_t j = 0; j < i; ++j) {
      EXPECT_NE(addrs[i], addrs[j]) << "duplicate " << addrs[i].to_string();
    }
  }
}

TEST(NetAddress, UnknownNameOnAPlainThreadNamesIt) {
  try {
    auto addrs = spindle::net::resolve("no-such-host.invalid", 80);
    ADD_FAILURE() << "resolved to " << addrs.size() << " addresses";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-host.invalid"), std::string::npos) << e.what();
    EXPECT_NE(e.code().value(), 0);
  }
}

TEST(NetAddress, UnknownNameInATaskNamesIt) {
  spindle::Runtime rt;
  std::string what = rt.block_on([]() -> std::string {
    try {
      spindle::net::resolve("no-such-host.invalid", 80);
    } catch (const std::system_error& e) {
      return e.what();
    }
    return "no exception";
  });
  EXPECT_NE(what.find("no-such-host.invalid"), std::string::npos) << what;
}

TEST(NetAddress, LookupInATaskWaitsOnThePoolAndCanBeCancelled) {
  // The only pool thread is held, so the lookup queues behind it: a task
  // that called getaddrinfo on its worker would finish instead, and one that
  // waited without a suspension point could not be cancelled.
  spindle::Runtime rt(spindle::Options{.workers = 2, .blocking_threads = 1});
  bool cancelled = rt.block_on([] {
    spindle::Future<void> gate;
    auto hold = spindle::to_thread([gate]() mutable { gate.wait_for(10s); });
    std::atomic<bool> calling{false};
    auto lookup = spindle::spawn([&calling] {
      calling = true;
      return spindle::net::resolve("localhost", 80);
    });
    while (!calling.load()) {
      spindle::sleep(1ms);
    }
    spindle::sleep(20ms);
    bool still_waiting = !lookup.done();
    lookup.cancel();
    bool threw = false;
    try {
      lookup.get();
    } catch (const spindle::Cancelled&) {
      threw = true;
    }
    gate.set_result();
    hold.get();
    return still_waiting && threw;
  });
  EXPECT_TRUE(cancelled);
}

TEST(NetAddress, IncompleteReadError) {
  spindle::net::IncompleteReadError e(3, 10);
  EXPECT_EQ(e.partial(), 3u);
  EXPECT_EQ(e.expected(), 10u);
  EXPECT_STREQ(e.what(), "read_exact: end of stream after 3 of 10 bytes");
  spindle::net::IncompleteReadError one(0, 1);
  EXPECT_EQ(one.partial(), 0u);
  EXPECT_EQ(one.expected(), 1u);
  EXPECT_STREQ(one.what(), "read_exact: end of stream after 0 of 1 byte");
  const spindle::Error& base = e;  // caught with every other spindle error
  EXPECT_NE(std::string(base.what()).find("3 of 10"), std::string::npos);
}
