// What a parked task waits for, as an enum.
//
// A task records its wait in TaskCore's wait_reason_ (under task_lock_) as
// the text of a WaitKind, which dump_tasks() prints after "waiting on".
// Tests read the kind back with wait_kind() (tests/support/
// parking_support.hpp) and compare enums, so the texts can change without
// touching a test.
#pragma once

#include <cstdint>

namespace spindle::detail {

enum class WaitKind : std::uint8_t {
  kNone,         // not waiting: running, runnable or queued
  kFuture,       // get() on a future or task; every blocking primitive parks here
  kFutureTimed,  // wait_for() on a future or task
  kSleep,        // sleep(), sleep_until()
  kInlineChild,  // running a child that had not started, on this task's fiber
  kIoRead,       // a socket read or receive (io_driver.hpp)
  kIoWrite,      // a socket write or send
  kIoAccept,     // a listener's accept
  kIoConnect,    // a TCP connect in progress
};

// The text recorded for `k`: one string object per kind; nullptr for kNone.
const char* wait_text(WaitKind k) noexcept;

// The kind whose text `reason` is, compared by address (wait_reason_ only
// ever holds a wait_text() result); kNone for nullptr.
WaitKind wait_kind(const char* reason) noexcept;

}  // namespace spindle::detail
