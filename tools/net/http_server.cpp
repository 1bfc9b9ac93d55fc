// spindle_http_server PORT WORKERS [plain|full] -- an HTTP/1.1 server on
// spindle::net, a task per connection, written the way a user would write it.
//
// Both modes keep connections alive, answer pipelined requests in order (all
// the replies to one read go out in one write) and carry a request that is
// split across reads over to the next read.
//   plain  a request ends at the blank line; every request gets the same
//          78-byte reply (the work of a minimal epoll server).
//   full   parses the request line and the headers, reads and discards a
//          Content-Length body, honours "Connection: close" (and HTTP/1.0's
//          default), and replies with Date (formatted once per second),
//          Content-Type and Content-Length (the work of Go net/http, hyper).
// Binds 127.0.0.1:PORT (0: any free port), prints "listening on ADDR", runs
// until SIGTERM or SIGINT.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include "http_request.hpp"
#include "serve.hpp"

namespace {

using spindle::net::TcpStream;
using spindle_tools::HttpRequestParser;

constexpr std::string_view kPlainReply =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";
static_assert(kPlainReply.size() == 78);

constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kMaxHeader = 64 * 1024;  // a longer header block gets 431 and a close

// The Date header's value, formatted when the second changes. Each
// connection keeps its own: no state shared between workers.
class DateCache {
 public:
  std::string_view now() {
    const std::time_t t = std::time(nullptr);
    if (t != second_) {
      second_ = t;
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      len_ = std::strftime(text_, sizeof text_, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return {text_, len_};
  }

 private:
  std::time_t second_ = -1;
  char text_[40] = {};
  std::size_t len_ = 0;
};

// The input of one connection: bytes [begin, end) of buf are unparsed.
struct InputBuffer {
  std::vector<char> buf = std::vector<char>(kReadSize);
  std::size_t begin = 0;
  std::size_t end = 0;

  std::string_view pending() const { return {buf.data() + begin, end - begin}; }
  void consume(std::size_t n) { begin += n; }

  // Reads once, after moving a partial request to the front (or growing the
  // buffer for a long one). Returns false at EOF.
  bool fill(TcpStream& conn) {
    if (begin == end) {
      begin = end = 0;
    } else if (begin > 0 && buf.size() - end < kReadSize / 2) {
      std::memmove(buf.data(), buf.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    if (buf.size() - end < kReadSize / 2) {
      buf.resize(buf.size() * 2);
    }
    const std::size_t n = conn.read_some(std::span<char>(buf.data() + end, buf.size() - end));
    end += n;
    return n != 0;
  }
};

void serve_plain(TcpStream conn) {
  InputBuffer in;
  std::string out;
  while (in.fill(conn)) {
    out.clear();
    for (;;) {
      const std::string_view rest = in.pending();
      const std::size_t blank = rest.find("\r\n\r\n");
      if (blank == std::string_view::npos) {
        if (rest.size() > kMaxHeader) {
          return;
        }
        break;
      }
      in.consume(blank + 4);
      out += kPlainReply;
    }
    if (!out.empty()) {
      conn.write_all(out);
    }
  }
}

void append_full_reply(std::string& out, DateCache& date, bool close) {
  out += "HTTP/1.1 200 OK\r\nDate: ";
  out += date.now();
  out += "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n";
  if (close) {
    out += "Connection: close\r\n";
  }
  out += "\r\nHello, World!";
}

void serve_full(TcpStream conn) {
  InputBuffer in;
  std::string out;
  DateCache date;
  HttpRequestParser parser;
  std::uint64_t body_left = 0;  // of the request being read
  bool close_after = false;
  while (in.fill(conn)) {
    out.clear();
    for (;;) {
      if (body_left > 0) {  // discard the body, which may span reads
        const std::size_t n = std::min<std::uint64_t>(body_left, in.pending().size());
        in.consume(n);
        body_left -= n;
        if (body_left > 0) {
          break;
        }
        append_full_reply(out, date, close_after);
        if (close_after) {
          break;
        }
        continue;
      }
      const std::string_view rest = in.pending();
      const auto parsed = parser.parse(rest);
      if (parsed.status == HttpRequestParser::Status::kIncomplete) {
        if (rest.size() > kMaxHeader) {
          out +=
              "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
              "Connection: close\r\n\r\n";
          close_after = true;
        }
        break;
      }
      if (parsed.status == HttpRequestParser::Status::kBad) {
        out += "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        close_after = true;
        break;
      }
      in.consume(parsed.header_size);
      close_after = !parsed.keep_alive;
      body_left = parsed.content_length;
      if (body_left == 0) {
        append_full_reply(out, date, close_after);
        if (close_after) {
          break;
        }
      }
    }
    if (!out.empty()) {
      conn.write_all(out);
    }
    if (close_after && body_left == 0) {
      conn.shutdown(spindle::net::Shutdown::Write);
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 ||
      (argc == 4 && std::strcmp(argv[3], "plain") != 0 && std::strcmp(argv[3], "full") != 0)) {
    std::fprintf(stderr, "usage: %s PORT WORKERS [plain|full]\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  const bool full = argc == 4 && std::strcmp(argv[3], "full") == 0;
  const auto workers = static_cast<unsigned>(std::atoi(argv[2]));
  return spindle_tools::serve_forever(port, workers, [full](TcpStream conn) {
    full ? serve_full(std::move(conn)) : serve_plain(std::move(conn));
  });
}
