// Fault injection (fault.hpp).
#include "fault.hpp"

namespace spindle::detail::fault {
namespace {

constexpr unsigned kSites = static_cast<unsigned>(Site::kCount);

struct SiteState {
  std::atomic<std::uint64_t> nth{0};
  std::atomic<bool> sticky{false};
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> injected{0};
};
SiteState g_sites[kSites];

}  // namespace

const char* name(Site s) noexcept {
  static const char* const names[kSites] = {"alloc", "mmap", "mprotect", "thread", "futex"};
  unsigned i = static_cast<unsigned>(s);
  return i < kSites ? names[i] : "?";
}

void arm(Site s, std::uint64_t nth, bool sticky) {
  SiteState& st = g_sites[static_cast<unsigned>(s)];
  st.calls.store(0, std::memory_order_relaxed);
  st.injected.store(0, std::memory_order_relaxed);
  st.sticky.store(sticky, std::memory_order_relaxed);
  st.nth.store(nth, std::memory_order_relaxed);
#if SPINDLE_TEST_HOOKS
  // seq_cst, though no StoreLoad partner exists: should_fail() reads the
  // flag relaxed, and a test arms before it starts the workload it
  // injects into (thread creation or its own hand-off orders the two).
  g_armed.store(true, std::memory_order_seq_cst);
#endif
}

void disarm_all() {
#if SPINDLE_TEST_HOOKS
  // seq_cst, though no StoreLoad partner exists (see arm()).
  g_armed.store(false, std::memory_order_seq_cst);
#endif
  for (SiteState& st : g_sites) {
    st.nth.store(0, std::memory_order_relaxed);
    st.sticky.store(false, std::memory_order_relaxed);
  }
}

std::uint64_t calls(Site s) noexcept {
  return g_sites[static_cast<unsigned>(s)].calls.load(std::memory_order_relaxed);
}

std::uint64_t injected(Site s) noexcept {
  return g_sites[static_cast<unsigned>(s)].injected.load(std::memory_order_relaxed);
}

#if SPINDLE_TEST_HOOKS
bool should_fail_slow(Site s) noexcept {
  SiteState& st = g_sites[static_cast<unsigned>(s)];
  // relaxed: the counts are tallies; which call is "the Nth" is decided by
  // this one RMW.
  const std::uint64_t n = st.calls.fetch_add(1, std::memory_order_relaxed) + 1;
  const std::uint64_t nth = st.nth.load(std::memory_order_relaxed);
  if (nth == 0 || n < nth || (n > nth && !st.sticky.load(std::memory_order_relaxed))) {
    return false;
  }
  st.injected.fetch_add(1, std::memory_order_relaxed);
  return true;
}
#endif

}  // namespace spindle::detail::fault
