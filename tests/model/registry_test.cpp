// The task registry's "no live task" decision (registry.hpp INV-R2), on
// unspawned task records: one thread keeps exactly one task registered at
// every instant by a hand-off — the child enters shard (i+1) % 2 before the
// parent leaves shard i, as a parent spawning a child on another worker
// does — while another thread asks whether the registry is empty. A look
// that reads the shards one at a time can see the parent's shard after the
// parent left and the child's shard before the child came: "empty" with a
// task alive, the look shutdown once trusted.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <spindle/spindle.hpp>

#include "registry.hpp"
#include "runtime_fixture.hpp"

namespace {

spindle::Task<void> record() {
  std::string name = "record";
  return spindle::detail::make_task([] {}, name);
}

spindle::detail::TaskCore* core_of(const spindle::Task<void>& t) {
  return static_cast<spindle::detail::TaskCore*>(t.core());
}

}  // namespace

TEST(RegistryModel, NeverEmptyDuringAHandOffBetweenShards) {
  spindle::detail::Registry registry(2);
  std::vector<spindle::Task<void>> tasks;
  for (int i = 0; i < 2; ++i) {
    tasks.push_back(record());
  }
  registry.add(core_of(tasks[0]), 0);
  std::atomic<bool> stop{false};
  std::atomic<long> false_empty{0}, looks{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      looks.fetch_add(1, std::memory_order_relaxed);
      if (registry.empty_consistent()) {
        false_empty.fetch_add(1, std::memory_order_relaxed);
      }
      std::vector<spindle::detail::TaskCore*> seen = registry.snapshot(true);
      if (seen.empty()) {
        false_empty.fetch_add(1, std::memory_order_relaxed);
      }
      for (auto* t : seen) {
        t->unref();
      }
    }
  });
  const long handoffs = spindle::testing::scaled(1000000);
  for (long i = 0; i < handoffs; ++i) {
    auto* parent = core_of(tasks[i % 2]);
    auto* child = core_of(tasks[(i + 1) % 2]);
    registry.add(child, static_cast<unsigned>((i + 1) % 2));
    registry.remove(parent);
  }
  stop.store(true);
  reader.join();
  registry.remove(core_of(tasks[handoffs % 2]));
  EXPECT_EQ(false_empty.load(), 0) << "the registry looked empty with a task in it";
  EXPECT_GT(looks.load(), 0);
  EXPECT_TRUE(registry.empty_consistent());
}
