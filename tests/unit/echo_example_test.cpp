// The README's echo server (examples/echo_server.cpp, quoted verbatim)
// runs in a child process and echoes what clients send it, pipelined and
// split across reads.
#include <gtest/gtest.h>

#include "read_file.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <spindle/net.hpp>

#define main echo_server_main
#include "../../examples/echo_server.cpp"
#undef main

namespace {

// Forks a child running the example on port 0 and returns its pid; `at`
// gets the address it printed.
pid_t start_server(std::string* at) {
  int out[2];
  if (::pipe(out) != 0) {
    return -1;
  }
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    char arg0[] = "echo_server", arg1[] = "0", arg2[] = "2";
    char* argv[] = {arg0, arg1, arg2, nullptr};
    ::_exit(echo_server_main(3, argv));
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') {
    line += c;
  }
  ::close(out[0]);
  const std::string prefix = "echo server on ";
  if (line.rfind(prefix, 0) == 0) {
    *at = line.substr(prefix.size());
  }
  return pid;
}

}  // namespace

TEST(EchoExample, ReadmeQuotesItVerbatim) {
  const std::string readme = spindle::testing::read_file(SPINDLE_SOURCE_DIR "/README.md");
  const std::string example =
      spindle::testing::read_file(SPINDLE_SOURCE_DIR "/examples/echo_server.cpp");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(readme.find(example), std::string::npos)
      << "README.md must contain examples/echo_server.cpp verbatim";
}

TEST(EchoExample, EchoesPipelinedMessagesFromSeveralClients) {
  std::string at;
  const pid_t pid = start_server(&at);
  ASSERT_GT(pid, 0);
  ASSERT_FALSE(at.empty()) << "the server printed no address";
  spindle::Runtime rt;
  const bool ok = rt.block_on([&] {
    const auto addr = spindle::net::SocketAddress::parse(at);
    std::vector<spindle::Task<bool>> clients;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(spindle::spawn([addr, i] {
        auto s = spindle::net::TcpStream::connect(addr);
        std::string sent;
        for (int k = 0; k < 50; ++k) {  // pipelined: all sent before any is read
          sent += "client " + std::to_string(i) + " message " + std::to_string(k) + "\n";
        }
        s.write_all(sent);
        s.shutdown();
        std::string got;
        char buf[1000];
        while (std::size_t n = s.read_some(std::span<char>(buf))) {
          got.append(buf, n);
        }
        return got == sent;
      }));
    }
    bool all = true;
    for (auto& c : clients) {
      all = c.get() && all;
    }
    return all;
  });
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(ok);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the server exited by itself";
}
