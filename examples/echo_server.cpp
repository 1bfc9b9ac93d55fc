#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {  // echo_server [PORT [WORKERS]]
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 7000);
  spindle::Options options;
  options.workers = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 0;  // 0: per CPU
  spindle::Runtime rt(options);
  rt.block_on([port] {
    auto listener = spindle::net::TcpListener::bind("127.0.0.1", port);
    std::printf("echo server on %s\n", listener.local_addr().to_string().c_str());
    std::fflush(stdout);
    for (;;) {
      spindle::spawn([conn = listener.accept()]() mutable {  // a task per connection
        char buf[4096];
        try {
          while (std::size_t n = conn.read_some(std::span<char>(buf))) {  // 0: EOF
            conn.write_all(std::string_view(buf, n));
          }
        } catch (const std::system_error&) {  // ECONNRESET...: drop the connection
        }
      });
    }
  });
  return 0;
}
