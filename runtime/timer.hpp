// A worker's timers: a hierarchical timing wheel under a spin lock (after
// tokio's time/wheel and the Linux kernel's timer wheel).
//
// Sleeps arm on the worker that runs the task; call_later from outside the
// runtime picks a worker. Any thread may cancel an entry (a task woken early
// removes its own entry, wherever it now runs); expired entries are fired by
// the owner when it looks for work, or by any idle worker (fire_timers looks
// at every wheel), so a timer never waits for a busy owner while another
// worker is idle:
//
//   INV-TK1  an arm that makes an entry its wheel's earliest stores the new
//            next deadline (under the wheel lock), fences, then reads every
//            worker's parked_until; a worker about to park stores
//            parked_until (kNever: not known yet), fences, then reads every
//            wheel. Dekker: either the parker sees the deadline and sleeps
//            no longer than it, or the arm sees the parker and, if no parked
//            worker wakes by the deadline, unparks one
//            (Scheduler::cover_deadline).
//   INV-TK2  a worker woken from park that goes busy instead of parking
//            again stores kAwake, fences, and covers the earliest deadline
//            the same way, so the duty an arm counted on it for passes on.
//   INV-TK3  the safety net: the monitor, awake whenever some worker is,
//            unparks a worker for any timer overdue by more than 2 ms.
//   Not promised: a timer fires on time when every worker is busy in a
//   task that does not suspend (cooperative scheduling).
//
// Layout. Time is counted in ticks of 2^18 ns (262 us). Level L (0..6) has
// 64 slots of 64^L ticks each: level 0 spans 16.7 ms, level 1 1.07 s,
// level 2 69 s, level 3 73 min, level 4 78 h, level 5 208 days, level 6
// 36 years. Each slot is an intrusive doubly-linked list; occupied_[L] has
// one bit per non-empty slot.
//
// Invariants (all under lock_)
//   INV-TW1  elapsed_ is the first tick not yet processed.
//   INV-TW2  an entry with tick t sits at the lowest level L whose window
//            (the 64 slots sharing elapsed_'s bits above 6(L+1)) contains t,
//            in slot (t >> 6L) & 63; t >= elapsed_.
//   INV-TW3  an entry's tick is its deadline rounded UP to a tick, so it
//            never fires early; it fires at most one tick late (plus the
//            time its worker takes to look).
//   INV-TW4  when elapsed_ reaches the start of an occupied slot at level
//            L > 0, that slot's entries are re-inserted (cascade), landing
//            in lower levels; level-0 slots hold a single tick and fire.
//
// Why a wheel: insert and cancel are O(1) and touch only the entry and its
// two neighbours. The binary heap it replaces spent 17% of a million-sleeper
// run in sift_down, each level a cache miss into another task's stack.
//
// next_deadline_ mirrors the earliest event (a fire or a cascade) so workers
// can decide how long to park without the lock (relaxed: a stale value only
// makes a worker wake early or check again; every arm that lowers it from
// outside the owner also kicks a parked worker).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <spindle/detail/intrusive_list.hpp>
#include <spindle/detail/spin_lock.hpp>

namespace spindle::detail {

struct Waiter;
class TimerWheel;

struct TimerEntry {
  std::int64_t deadline_ns = 0;
  Waiter* waiter = nullptr;  // fired under the lock (waiter.hpp INV-W2)
  // Callback entries (call_later): run after removal, outside the lock.
  void (*on_fire)(TimerEntry*) = nullptr;

  // Owned by the wheel, under its lock.
  TimerWheel* wheel = nullptr;  // set on insert; stays set after removal
  TimerEntry* prev = nullptr;   // its slot's list links (intrusive_list.hpp)
  TimerEntry* next = nullptr;
  std::uint64_t tick = 0;
  std::uint8_t level = 0;
  bool linked = false;  // in a slot; remove() reads it under the lock
};

std::int64_t now_ns() noexcept;  // steady clock

class TimerWheel {
 public:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
  static constexpr unsigned kTickShift = 18;  // 262,144 ns per tick
  static constexpr unsigned kLevels = 7;
  static constexpr unsigned kSlotBits = 6;
  static constexpr unsigned kSlots = 1u << kSlotBits;
  // The layout in the comment at the top: ticks of 2^18 ns, 7 levels of 64
  // slots, one occupied_ bit per slot in a 64-bit word.
  static_assert(kTickShift == 18 && kSlotBits == 6 && kSlots == 64 && kLevels == 7,
                "the wheel's shape is the one the layout comment gives");
  static_assert(kSlots == 8 * sizeof(std::uint64_t), "occupied_[L] has one bit per slot");
  static_assert(kTickShift + kLevels * kSlotBits <= 63,
                "the top level's span, in ns, fits an int64 deadline");

  // `start_ns`: the clock reading the wheel starts from (tests pass a fixed one).
  explicit TimerWheel(std::int64_t start_ns = now_ns());

  // Returns true if the entry became the earliest event.
  bool insert(TimerEntry* e);
  // True if the entry was still armed (and now is not).
  bool remove(TimerEntry* e);
  // Removes every entry due at `now`. Waiter entries are fired under the
  // lock and collected into `wake`; callback entries go to `callbacks`.
  // Returns the number of entries handled.
  std::size_t take_due(std::int64_t now, std::vector<Waiter*>& wake,
                       std::vector<TimerEntry*>& callbacks);
  // Every armed entry, due or not (shutdown).
  std::size_t take_all(std::vector<Waiter*>& wake, std::vector<TimerEntry*>& callbacks);
  std::int64_t next_deadline() const noexcept {
    return next_deadline_.load(std::memory_order_relaxed);
  }
  std::size_t size();
  // Elapsed tick and occupied slots per level (diagnostics and tests).
  std::string debug_string();

 private:
  static std::uint64_t tick_of(std::int64_t ns) noexcept;
  void link(TimerEntry* e);
  void unlink(TimerEntry* e);
  // The next tick at which something happens (a level-0 slot fires or a
  // higher slot cascades), and at which level; false if empty.
  bool next_event(std::uint64_t* tick, unsigned* level) const noexcept;
  using Slot = IntrusiveHeadList<TimerEntry>;
  void fire_list(TimerEntry* head, std::vector<Waiter*>& wake, std::vector<TimerEntry*>& callbacks,
                 std::size_t* n);
  void update_next();

  SpinLock lock_;
  std::uint64_t elapsed_;                 // INV-TW1
  std::uint64_t occupied_[kLevels] = {};  // bit per non-empty slot
  // One word per slot: a head-only list (a tail would double the array).
  IntrusiveHeadList<TimerEntry> slots_[kLevels][kSlots];
  std::size_t count_ = 0;
  std::atomic<std::int64_t> next_deadline_{kNever};
};

}  // namespace spindle::detail
