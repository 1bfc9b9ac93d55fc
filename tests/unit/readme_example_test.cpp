// The README's example compiles, runs, and is the same code as
// examples/readme_example.cpp (the README quotes that file verbatim).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#define main readme_example_main
#include "../../examples/readme_example.cpp"
#undef main

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

TEST(ReadmeExample, RunsAndPrintsTheAnswer) { EXPECT_EQ(readme_example_main(), 0); }

TEST(ReadmeExample, ReadmeQuotesTheExampleVerbatim) {
  std::string readme = slurp(SPINDLE_SOURCE_DIR "/README.md");
  std::string example = slurp(SPINDLE_SOURCE_DIR "/examples/readme_example.cpp");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(readme.find(example), std::string::npos)
      << "README.md must contain examples/readme_example.cpp verbatim";
}
