// What a translated tutorial example "printed": lines collected under a
// mutex from any task or thread, and questions about their order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace spindle::testing {

class Output {
 public:
  void print(const std::string& line) {
    std::lock_guard<std::mutex> l(mu_);
    lines_.push_back(line);
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> l(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// Position of `line` in `lines` (lines.size() if absent).
inline std::size_t pos(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<std::size_t>(std::find(lines.begin(), lines.end(), line) - lines.begin());
}

// `a` is printed, and before `b`.
inline ::testing::AssertionResult before(const std::vector<std::string>& lines,
                                         const std::string& a, const std::string& b) {
  std::size_t pa = pos(lines, a), pb = pos(lines, b);
  if (pa == lines.size()) {
    return ::testing::AssertionFailure() << "'" << a << "' was not printed";
  }
  if (pb == lines.size()) {
    return ::testing::AssertionFailure() << "'" << b << "' was not printed";
  }
  if (pa >= pb) {
    return ::testing::AssertionFailure() << "'" << a << "' printed after '" << b << "'";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace spindle::testing
