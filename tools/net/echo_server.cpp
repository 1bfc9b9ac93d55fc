// spindle_echo_server PORT WORKERS -- a TCP echo server on spindle::net, a
// task per connection: whatever a client sends comes back, until it closes.
// Binds 127.0.0.1:PORT (0: any free port), prints "listening on ADDR", runs
// until SIGTERM or SIGINT. The README's example is this program without the
// signal handling and the EMFILE back-off (serve.hpp).
#include <cstdio>
#include <cstdlib>

#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include "serve.hpp"

namespace {

void echo(spindle::net::TcpStream conn) {
  char buf[16 * 1024];
  while (std::size_t n = conn.read_some(std::span<char>(buf))) {  // 0: EOF
    conn.write_all(std::string_view(buf, n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT WORKERS\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  return spindle_tools::serve_forever(port, static_cast<unsigned>(std::atoi(argv[2])), echo);
}
