// What spindle_http_server and spindle_echo_server share: bind
// 127.0.0.1:PORT, say where, and run `handle(TcpStream)` in a task per
// connection until the process is stopped by SIGTERM or SIGINT (an
// immediate _exit(0): a benchmark server has nothing to flush).
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

namespace spindle_tools {

extern "C" inline void on_stop_signal(int) { ::_exit(0); }

template <class Handle>
int serve_forever(std::uint16_t port, unsigned workers, Handle handle) {
  ::signal(SIGTERM, on_stop_signal);
  ::signal(SIGINT, on_stop_signal);
  spindle::Options options;
  options.workers = workers;  // 0: one per CPU
  spindle::Runtime rt(options);
  rt.block_on([port, &handle] {
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
      spindle::spawn([conn = std::move(conn), handle]() mutable {
        try {
          handle(std::move(conn));
        } catch (const std::system_error&) {  // ECONNRESET, EPIPE: drop the connection
        }
      });
    }
  });
  return 0;
}

}  // namespace spindle_tools
