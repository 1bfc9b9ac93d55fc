// spindle_echo_server PORT WORKERS -- a TCP echo server on spindle::net, a
// task per connection: whatever a client sends comes back, until it closes.
// Binds 127.0.0.1:PORT (0: any free port), prints "listening on ADDR", runs
// until SIGTERM or SIGINT. The README's example is this program without the
// signal handling and the EMFILE back-off.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

namespace {

void echo(spindle::net::TcpStream conn) {
  char buf[16 * 1024];
  while (std::size_t n = conn.read_some(std::span<char>(buf))) {  // 0: EOF
    conn.write_all(std::string_view(buf, n));
  }
}

extern "C" void on_stop_signal(int) { ::_exit(0); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT WORKERS\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  ::signal(SIGTERM, on_stop_signal);
  ::signal(SIGINT, on_stop_signal);
  spindle::Options options;
  options.workers = static_cast<unsigned>(std::atoi(argv[2]));
  spindle::Runtime rt(options);
  rt.block_on([port] {
    auto listener = spindle::net::TcpListener::bind("127.0.0.1", port);
    std::printf("listening on %s\n", listener.local_addr().to_string().c_str());
    std::fflush(stdout);
    for (;;) {
      spindle::net::TcpStream conn;
      try {
        conn = listener.accept();
      } catch (const std::system_error& e) {
        if (e.code().value() == EMFILE || e.code().value() == ENFILE) {
          spindle::sleep(std::chrono::milliseconds(10));  // out of fds: back off, retry
          continue;
        }
        throw;
      }
      spindle::spawn([conn = std::move(conn)]() mutable {
        try {
          echo(std::move(conn));
        } catch (const std::system_error&) {  // ECONNRESET, EPIPE: drop the connection
        }
      });
    }
  });
  return 0;
}
