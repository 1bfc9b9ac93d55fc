// A program built against an installed spindle, as a user would.
#include <spindle/spindle.hpp>

#include <cstdio>

int main() {
  spindle::Runtime rt(spindle::Options{.workers = 2});
  int v = rt.block_on([] {
    auto t = spindle::spawn([] {
      spindle::sleep(std::chrono::milliseconds(1));
      return 40;
    });
    return t.get() + 2;
  });
  std::printf("consumer got %d\n", v);
  return v == 42 ? 0 : 1;
}
