// The request head parser of spindle_http_server's full mode: the request
// line and the headers an HTTP/1.1 server must act on (Content-Length,
// Connection, Transfer-Encoding). It reads a buffer that may hold a partial
// request and, when the head is complete, says how long it is and what the
// server must do with the connection. No allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spindle_tools {

class HttpRequestParser {
 public:
  enum class Status { kIncomplete, kComplete, kBad };
  struct Result {
    Status status = Status::kIncomplete;
    std::size_t header_size = 0;       // bytes up to and including the blank line
    std::uint64_t content_length = 0;  // body bytes that follow the head
    bool keep_alive = true;            // false: close after the reply
  };

  Result parse(std::string_view in) const {
    Result r;
    const std::size_t blank = in.find("\r\n\r\n");
    if (blank == std::string_view::npos) {
      return r;
    }
    r.header_size = blank + 4;
    std::string_view head = in.substr(0, blank + 2);  // every line ends in CRLF
    const std::string_view line = take_line(head);
    // METHOD SP TARGET SP HTTP/1.x
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1) {
      return bad();
    }
    const std::string_view version = line.substr(sp2 + 1);
    if (version == "HTTP/1.1") {
      r.keep_alive = true;
    } else if (version == "HTTP/1.0") {
      r.keep_alive = false;
    } else {
      return bad();
    }
    bool have_length = false;
    while (!head.empty()) {
      const std::string_view field = take_line(head);
      const std::size_t colon = field.find(':');
      if (colon == 0 || colon == std::string_view::npos ||
          field.substr(0, colon).find(' ') != std::string_view::npos) {
        return bad();
      }
      const std::string_view name = field.substr(0, colon);
      const std::string_view value = trim(field.substr(colon + 1));
      if (iequals(name, "content-length")) {
        std::uint64_t n = 0;
        if (value.empty() || have_length || !parse_decimal(value, &n)) {
          return bad();  // a second length may disagree with the first: refuse
        }
        have_length = true;
        r.content_length = n;
      } else if (iequals(name, "connection")) {
        if (has_token(value, "close")) {
          r.keep_alive = false;
        } else if (has_token(value, "keep-alive")) {
          r.keep_alive = true;
        }
      } else if (iequals(name, "transfer-encoding")) {
        return bad();  // chunked bodies are not supported by this server
      }
    }
    r.status = Status::kComplete;
    return r;
  }

 private:
  static Result bad() {
    Result r;
    r.status = Status::kBad;
    return r;
  }

  // Splits off the first CRLF-terminated line of `text`.
  static std::string_view take_line(std::string_view& text) {
    const std::size_t eol = text.find("\r\n");
    const std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 2);
    return line;
  }

  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
      s.remove_suffix(1);
    }
    return s;
  }

  static char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

  static bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (lower(a[i]) != b[i]) {
        return false;
      }
    }
    return true;
  }

  // A comma-separated token list (the Connection header) holds `token`.
  static bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      if (iequals(trim(list.substr(0, comma)), token)) {
        return true;
      }
      list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    }
    return false;
  }

  static bool parse_decimal(std::string_view s, std::uint64_t* out) {
    std::uint64_t n = 0;
    for (const char c : s) {
      if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) {
        return false;
      }
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    *out = n;
    return true;
  }
};

}  // namespace spindle_tools
