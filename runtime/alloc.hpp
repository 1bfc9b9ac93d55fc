// Pooled allocation of futures and tasks: size classes of 64 bytes up to
// 1 KiB, a per-thread cache in front of a shared depot of batches.
//
// Why not malloc: spawning a task is one allocation and completing it one
// free, often on another thread. glibc serves worker threads from secondary
// arenas that it grows with mprotect and trims with madvise, so a spawn storm
// spends its time in the kernel (measured: ~60% of spawn_join in page-table
// syscalls before this pool).
//
// Thread-safety: the cache is thread-local (reached through a non-inlined
// accessor; allocation never suspends, so no migration can happen inside);
// the depot is guarded by a mutex per class. Slabs are 256 KiB, then 2 MiB
// transparent huge pages once a class is in a storm (alloc.cpp). Memory is
// never returned to the system: slabs stay reachable from the depot for the
// life of the process.
// Sanitizer builds bypass the pool so ASan/TSan see every allocation.
#pragma once

#include <cstddef>

namespace spindle::detail {

void* pool_alloc(std::size_t size);
void pool_free(void* p, std::size_t size) noexcept;

}  // namespace spindle::detail
