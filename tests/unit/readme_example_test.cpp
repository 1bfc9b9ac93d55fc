// The README's example compiles, runs, and is the same code as
// examples/readme_example.cpp (the README quotes that file verbatim).
#include <gtest/gtest.h>

#include <string>

#include "read_file.hpp"

#define main readme_example_main
#include "../../examples/readme_example.cpp"
#undef main

TEST(ReadmeExample, RunsAndPrintsTheAnswer) { EXPECT_EQ(readme_example_main(), 0); }

TEST(ReadmeExample, ReadmeQuotesTheExampleVerbatim) {
  std::string readme = spindle::testing::read_file(SPINDLE_SOURCE_DIR "/README.md");
  std::string example =
      spindle::testing::read_file(SPINDLE_SOURCE_DIR "/examples/readme_example.cpp");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(readme.find(example), std::string::npos)
      << "README.md must contain examples/readme_example.cpp verbatim";
}
