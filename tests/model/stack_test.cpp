// The stack allocator's slot layout (runtime/stack.hpp): every stack ends one
// canary line below the next slot, an unguarded stack's canary line is the
// top line of the slot below it, releasing a stack never touches a
// neighbour's pages, and released stacks are handed out again guarded ones
// first, then lowest address first (so a reused stack's canary sits on a
// page its lower neighbour has already made resident).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "stack.hpp"

namespace {

using spindle::detail::kCanaryBytes;
using spindle::detail::StackAllocator;
using spindle::detail::StackRegion;

constexpr std::size_t kStack = 64 * 1024;

std::uintptr_t addr(const char* p) { return reinterpret_cast<std::uintptr_t>(p); }

TEST(StackLayout, UnguardedStacksTakeTheGuardRoomAndStopAtTheNextCanaryLine) {
  StackAllocator stacks(kStack, /*guard_pages=*/false);
  const std::size_t page = StackAllocator::page_size();
  std::vector<StackRegion> rs;
  for (int i = 0; i < 3; ++i) {
    rs.push_back(stacks.allocate());
  }
  for (std::size_t i = 0; i < rs.size(); ++i) {
    EXPECT_FALSE(rs[i].guarded);
    EXPECT_EQ(addr(rs[i].lo) % page, 0u);
    EXPECT_EQ(rs[i].size, kStack + page - kCanaryBytes);
  }
  for (std::size_t i = 0; i + 1 < rs.size(); ++i) {
    // The line between two stacks belongs to neither: it is the upper
    // one's canary, on the lower one's top page.
    EXPECT_EQ(rs[i + 1].lo, rs[i].lo + rs[i].size + kCanaryBytes);
    EXPECT_EQ((addr(rs[i + 1].lo) - kCanaryBytes) / page, (addr(rs[i].lo + rs[i].size) - 1) / page);
  }
  // Every canary line starts out zero, slot 0's (in the chunk's front page)
  // included.
  for (const StackRegion& r : rs) {
    const auto* line = reinterpret_cast<const std::uint64_t*>(r.lo - kCanaryBytes);
    for (std::size_t w = 0; w < kCanaryBytes / sizeof(std::uint64_t); ++w) {
      EXPECT_EQ(line[w], 0u);
    }
  }
  stacks.release(rs);
}

TEST(StackLayout, GuardedStacksStopOneCanaryLineShortOfTheSlot) {
  StackAllocator stacks(kStack, /*guard_pages=*/true);
  ASSERT_GT(stacks.guard_budget(), 2u);
  const std::size_t page = StackAllocator::page_size();
  std::vector<StackRegion> rs{stacks.allocate(), stacks.allocate()};
  EXPECT_TRUE(rs[0].guarded);
  EXPECT_TRUE(rs[1].guarded);
  EXPECT_EQ(rs[0].size, kStack - kCanaryBytes);
  EXPECT_EQ(rs[1].lo, rs[0].lo + rs[0].size + kCanaryBytes + page);
  stacks.release(rs);
}

TEST(StackLayout, ReleasingAStackLeavesTheSlotBelowAlone) {
  StackAllocator stacks(kStack, /*guard_pages=*/false);
  StackRegion lower = stacks.allocate();
  StackRegion upper = stacks.allocate();
  // The lower stack's top word: where its fiber record would be.
  auto* top = reinterpret_cast<volatile std::uint64_t*>(lower.lo + lower.size - 8);
  *top = 0x5EED;
  upper.lo[0] = 1;
  std::vector<StackRegion> one{upper};
  stacks.release(one);
  EXPECT_EQ(*top, 0x5EEDu) << "releasing a stack dropped the page of the slot below";
  EXPECT_EQ(upper.lo[0], 0) << "a released stack keeps its contents";
  std::vector<StackRegion> other{lower};
  stacks.release(other);
  EXPECT_EQ(*top, 0u);
}

TEST(StackLayout, ReleasedStacksComeBackLowestAddressFirst) {
  StackAllocator stacks(kStack, /*guard_pages=*/false);
  std::vector<StackRegion> rs;
  for (int i = 0; i < 8; ++i) {
    rs.push_back(stacks.allocate());
  }
  std::vector<StackRegion> released = rs;
  stacks.release(released);
  for (int i = 0; i < 8; ++i) {
    StackRegion r = stacks.allocate();
    EXPECT_EQ(r.lo, rs[static_cast<std::size_t>(i)].lo) << "reuse #" << i;
    EXPECT_EQ(r.size, rs[static_cast<std::size_t>(i)].size);
  }
}

TEST(StackLayout, ReleasedGuardedStacksComeBackFirst) {
  StackAllocator stacks(kStack, /*guard_pages=*/true);
  const std::size_t budget = stacks.guard_budget();
  ASSERT_GT(budget, 0u);
  std::vector<StackRegion> rs;
  for (std::size_t i = 0; i < budget + 4; ++i) {
    rs.push_back(stacks.allocate());
  }
  ASSERT_TRUE(rs.front().guarded);
  ASSERT_FALSE(rs.back().guarded);
  std::vector<StackRegion> released = rs;
  stacks.release(released);
  for (std::size_t i = 0; i < budget; ++i) {
    ASSERT_TRUE(stacks.allocate().guarded) << "reuse #" << i << " of " << budget;
  }
  EXPECT_FALSE(stacks.allocate().guarded);
}

// in_use() counts what allocate() handed out and release() has not taken
// back, fresh slots and reused ones alike (the tests' leak check relies on it).
TEST(StackLayout, InUseCountsStacksHandedOutAndNotReleased) {
  StackAllocator stacks(kStack, /*guard_pages=*/false);
  EXPECT_EQ(stacks.in_use(), 0u);
  std::vector<StackRegion> rs;
  for (int i = 0; i < 100; ++i) {  // past the first chunk of 64
    rs.push_back(stacks.allocate());
  }
  EXPECT_EQ(stacks.in_use(), 100u);
  std::vector<StackRegion> back(rs.begin(), rs.begin() + 40);
  rs.erase(rs.begin(), rs.begin() + 40);
  stacks.release(back);
  EXPECT_EQ(stacks.in_use(), 60u);
  rs.push_back(stacks.allocate());  // a released one again
  EXPECT_EQ(stacks.in_use(), 61u);
  stacks.release(rs);
  EXPECT_EQ(stacks.in_use(), 0u);
}

}  // namespace
