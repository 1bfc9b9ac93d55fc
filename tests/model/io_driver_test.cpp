// The I/O driver's slot lifetime (io_driver.hpp INV-IO8, INV-IO9) on plain
// threads: the last call out of a closed socket releases its fd while the
// owner drops the socket and a new socket takes the recycled slot.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "io_driver.hpp"
#include "runtime_fixture.hpp"

using spindle::detail::IoDriver;
using spindle::detail::IoSource;

namespace {

void spin_for(unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    asm volatile("" ::: "memory");  // a delay the compiler keeps
  }
}

int udp_fd() { return ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }
bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

// INV-IO9: before the fix, drop_owner() recycled the slot on seeing a zero
// count while the releasing leave() was still before its ::close, which
// then closed the next socket's fd (found within ~10 rounds).
TEST(IoDriverSlots, TheLastLeaveNeverClosesTheNextSocketsFd) {
  IoDriver* driver = new IoDriver();
  std::atomic<long> go{0}, left{0};
  std::atomic<IoSource*> current{nullptr};
  std::atomic<unsigned> leaver_delay{0};
  std::atomic<bool> quit{false};
  std::thread leaver([&] {
    long seen = 0;
    while (!quit.load()) {
      const long g = go.load(std::memory_order_acquire);
      if (g == seen) {
        continue;
      }
      seen = g;
      spin_for(leaver_delay.load());
      current.load()->leave();
      left.store(g, std::memory_order_release);
    }
  });
  const long rounds = spindle::testing::scaled(20000);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  unsigned seed = 12345;
  long i = 0;
  for (; i < rounds && std::chrono::steady_clock::now() < deadline; ++i) {
    const int old_fd = udp_fd();
    const int new_fd = udp_fd();
    ASSERT_GE(old_fd, 0);
    ASSERT_GE(new_fd, 0);
    IoSource* s = driver->add(old_fd);
    ASSERT_TRUE(s->enter());
    s->close();  // a call is inside: the fd stays open until its leave()
    seed = seed * 1103515245 + 12345;
    leaver_delay = (seed >> 8) % 200;
    current = s;
    go.store(i + 1, std::memory_order_release);
    spin_for((seed >> 20) % 200);
    s->drop_owner();
    IoSource* next = driver->add(new_fd);  // may take the recycled slot
    while (left.load(std::memory_order_acquire) != i + 1) {
    }
    ASSERT_TRUE(fd_open(new_fd)) << "round " << i << ": the old socket closed the new one's fd";
    ASSERT_FALSE(fd_open(old_fd)) << "round " << i << ": the old socket's fd leaked";
    next->close();
    next->drop_owner();
  }
  quit = true;
  leaver.join();
  EXPECT_EQ(driver->registered(), 0u);
  driver->retire();
  EXPECT_GT(i, 0);
}
