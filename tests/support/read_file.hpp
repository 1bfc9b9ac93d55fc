// Test support: a whole file as a string ("" if it cannot be read).
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace spindle::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace spindle::testing
