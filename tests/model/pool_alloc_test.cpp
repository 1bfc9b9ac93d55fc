// The task/future pool (runtime/alloc.hpp) through its slab sizes: enough
// live objects of one class that it carves its 256 KiB slabs and then 2 MiB
// huge-page slabs. Every object must be distinct, writable over its whole
// size, and keep its contents while the others are written, freed and
// reallocated (a carving bug hands out overlapping objects). Sanitizer
// builds bypass the pool; the test then checks operator new, harmlessly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "alloc.hpp"

namespace {

using spindle::detail::pool_alloc;
using spindle::detail::pool_free;

// Fills `p` (size bytes) with a pattern derived from `tag`; checks it.
void stamp(void* p, std::size_t size, std::uint64_t tag) {
  auto* w = static_cast<std::uint64_t*>(p);
  for (std::size_t i = 0; i < size / sizeof(std::uint64_t); ++i) {
    w[i] = tag * 0x9E3779B97F4A7C15ull + i;
  }
}
bool intact(const void* p, std::size_t size, std::uint64_t tag) {
  const auto* w = static_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i < size / sizeof(std::uint64_t); ++i) {
    if (w[i] != tag * 0x9E3779B97F4A7C15ull + i) {
      return false;
    }
  }
  return true;
}

TEST(PoolAlloc, ObjectsStayDistinctAcrossSmallAndHugeSlabs) {
  // 320 bytes: a 256 KiB slab holds 819, so 20,000 live objects need well
  // over the 8 small slabs and several 2 MiB ones.
  constexpr std::size_t kSize = 320;
  constexpr std::size_t kLive = 20'000;
  std::vector<void*> objs;
  std::set<std::uintptr_t> seen;
  for (std::size_t i = 0; i < kLive; ++i) {
    void* p = pool_alloc(kSize);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u) << "objects are 64-byte granules";
    ASSERT_TRUE(seen.insert(reinterpret_cast<std::uintptr_t>(p)).second) << "handed out twice";
    stamp(p, kSize, i);
    objs.push_back(p);
  }
  for (std::size_t i = 0; i < kLive; ++i) {
    ASSERT_TRUE(intact(objs[i], kSize, i)) << "object " << i << " was overwritten";
  }
  // Free a random half, reallocate it, and check everything again.
  std::mt19937 rng(7);
  std::vector<std::size_t> order(kLive);
  for (std::size_t i = 0; i < kLive; ++i) {
    order[i] = i;
  }
  std::shuffle(order.begin(), order.end(), rng);
  for (std::size_t k = 0; k < kLive / 2; ++k) {
    pool_free(objs[order[k]], kSize);
  }
  for (std::size_t k = 0; k < kLive / 2; ++k) {
    std::size_t i = order[k];
    objs[i] = pool_alloc(kSize);
    stamp(objs[i], kSize, i + kLive);
  }
  std::vector<bool> reallocated(kLive, false);
  for (std::size_t k = 0; k < kLive / 2; ++k) {
    reallocated[order[k]] = true;
  }
  for (std::size_t i = 0; i < kLive; ++i) {
    ASSERT_TRUE(intact(objs[i], kSize, reallocated[i] ? i + kLive : i)) << "object " << i;
  }
  for (void* p : objs) {
    pool_free(p, kSize);
  }
}

}  // namespace
