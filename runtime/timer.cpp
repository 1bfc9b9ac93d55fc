#include "timer.hpp"

#include <chrono>
#include <sstream>

#include "debug.hpp"
#include "waiter.hpp"

namespace spindle::detail {

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

// The lowest level whose window (bits above 6(L+1) equal to elapsed's)
// contains `tick` (INV-TW2).
unsigned level_for(std::uint64_t elapsed, std::uint64_t tick) noexcept {
  std::uint64_t masked = (elapsed ^ tick) | (TimerWheel::kSlots - 1);
  unsigned significant = 63u - static_cast<unsigned>(__builtin_clzll(masked));
  unsigned level = significant / TimerWheel::kSlotBits;
  return level < TimerWheel::kLevels ? level : TimerWheel::kLevels - 1;
}

unsigned slot_for(std::uint64_t tick, unsigned level) noexcept {
  return static_cast<unsigned>((tick >> (level * TimerWheel::kSlotBits)) &
                               (TimerWheel::kSlots - 1));
}

}  // namespace

TimerWheel::TimerWheel(std::int64_t start_ns) : elapsed_(tick_of(start_ns)) {}

std::uint64_t TimerWheel::tick_of(std::int64_t ns) noexcept {
  if (ns <= 0) {
    return 0;
  }
  // Rounded up (INV-TW3).
  return (static_cast<std::uint64_t>(ns) + (std::uint64_t{1} << kTickShift) - 1) >> kTickShift;
}

void TimerWheel::link(TimerEntry* e) {
  if (e->tick < elapsed_) {
    e->tick = elapsed_;  // already due: fires at the next look
  }
  unsigned level = level_for(elapsed_, e->tick);
  if (level == kLevels - 1 &&
      (e->tick >> (kLevels * kSlotBits)) != (elapsed_ >> (kLevels * kSlotBits))) {
    // Beyond the wheel's 36-year span: park it in the last slot of the top
    // level; it cascades and is re-placed when that slot comes up.
    e->tick = ((elapsed_ >> (kLevels * kSlotBits)) << (kLevels * kSlotBits)) |
              ((std::uint64_t{1} << (kLevels * kSlotBits)) - 1);
  }
  unsigned slot = slot_for(e->tick, level);
  e->level = static_cast<std::uint8_t>(level);
  slots_[level][slot].push_front(e);
  occupied_[level] |= std::uint64_t{1} << slot;
  e->linked = true;
}

void TimerWheel::unlink(TimerEntry* e) {
  unsigned slot = slot_for(e->tick, e->level);
  Slot& list = slots_[e->level][slot];
  list.remove(e);
  if (list.empty()) {
    occupied_[e->level] &= ~(std::uint64_t{1} << slot);
  }
  e->linked = false;
}

bool TimerWheel::next_event(std::uint64_t* tick, unsigned* level) const noexcept {
  // The earliest of each level's first occupied slot at or after its current
  // position. Usually the lowest level wins (a higher level's later slots
  // start after the lower level's whole window), but a higher level's slot AT
  // its current position is a cascade that is due now: elapsed_ can reach
  // such a slot's start without processing it (take_due stops at `now`), and
  // entries armed meanwhile land in lower levels with later ticks.
  bool found = false;
  *tick = 0;
  *level = 0;
  for (unsigned l = 0; l < kLevels; ++l) {
    unsigned pos = slot_for(elapsed_, l);
    std::uint64_t bits = occupied_[l] & (~std::uint64_t{0} << pos);
    if (bits == 0) {
      continue;
    }
    unsigned slot = static_cast<unsigned>(__builtin_ctzll(bits));
    unsigned above = (l + 1) * kSlotBits;
    std::uint64_t base = above >= 64 ? 0 : (elapsed_ >> above) << above;
    std::uint64_t start = base | (static_cast<std::uint64_t>(slot) << (l * kSlotBits));
    if (start < elapsed_) {
      start = elapsed_;
    }
    // On a tie the higher level wins: a slot due for cascading at tick t may
    // hold entries for tick t itself, which must join level 0's slot
    // before that slot fires.
    if (!found || start <= *tick) {
      *tick = start;
      *level = l;
      found = true;
    }
  }
  return found;
}

void TimerWheel::update_next() {
  std::uint64_t tick = 0;
  unsigned level = 0;
  std::int64_t next = kNever;
  if (next_event(&tick, &level)) {
    next = static_cast<std::int64_t>(tick << kTickShift);
  }
  next_deadline_.store(next, std::memory_order_relaxed);
}

bool TimerWheel::insert(TimerEntry* e) {
  SpinGuard g(lock_);
  e->wheel = this;
  e->tick = tick_of(e->deadline_ns);
  std::int64_t before = next_deadline_.load(std::memory_order_relaxed);
  link(e);
  ++count_;
  update_next();
  return next_deadline_.load(std::memory_order_relaxed) < before;
}

bool TimerWheel::remove(TimerEntry* e) {
  SpinGuard g(lock_);
  if (!e->linked) {
    return false;
  }
  unlink(e);
  --count_;
  update_next();
  return true;
}

void TimerWheel::fire_list(TimerEntry* head, std::vector<Waiter*>& wake,
                           std::vector<TimerEntry*>& callbacks, std::size_t* n) {
  while (head != nullptr) {
    TimerEntry* e = head;
    head = Slot::next(e);
    Slot::clear_links(e);
    e->linked = false;
    --count_;
    ++*n;
    if (e->waiter != nullptr) {
      if (e->waiter->try_fire()) {  // INV-W2: under our lock
        wake.push_back(e->waiter);
      }
    } else {
      callbacks.push_back(e);
    }
  }
}

std::size_t TimerWheel::take_due(std::int64_t now, std::vector<Waiter*>& wake,
                                 std::vector<TimerEntry*>& callbacks) {
  if (next_deadline() > now) {
    return 0;
  }
  SpinGuard g(lock_);
  const std::uint64_t now_tick = static_cast<std::uint64_t>(now) >> kTickShift;
  std::size_t n = 0;
  std::uint64_t tick = 0;
  unsigned level = 0;
  while (next_event(&tick, &level) && tick <= now_tick) {
    elapsed_ = tick;
    unsigned slot = slot_for(tick, level);
    TimerEntry* list = slots_[level][slot].take_all();
    occupied_[level] &= ~(std::uint64_t{1} << slot);
    if (level == 0) {
      fire_list(list, wake, callbacks, &n);  // every entry here has this tick
      elapsed_ = tick + 1;
      continue;
    }
    // INV-TW4: cascade into lower levels, relative to the new elapsed_.
    while (list != nullptr) {
      TimerEntry* e = list;
      list = Slot::next(e);
      e->tick = tick_of(e->deadline_ns);  // undo a clamp to the wheel's span
      link(e);                            // relinks e: its old links are overwritten
    }
  }
  if (elapsed_ <= now_tick) {
    elapsed_ = now_tick + 1;  // nothing else before now: skip the empty ticks
  }
  update_next();
  return n;
}

std::size_t TimerWheel::take_all(std::vector<Waiter*>& wake, std::vector<TimerEntry*>& callbacks) {
  SpinGuard g(lock_);
  std::size_t n = 0;
  for (unsigned l = 0; l < kLevels; ++l) {
    for (unsigned s = 0; s < kSlots; ++s) {
      fire_list(slots_[l][s].take_all(), wake, callbacks, &n);
    }
    occupied_[l] = 0;
  }
  update_next();
  return n;
}

std::size_t TimerWheel::size() {
  SpinGuard g(lock_);
  return count_;
}

}  // namespace spindle::detail

namespace spindle::detail {
std::string TimerWheel::debug_string() {
  SpinGuard g(lock_);
  std::ostringstream os;
  os << "elapsed=" << elapsed_;
  for (unsigned l = 0; l < kLevels; ++l) {
    os << " L" << l << "[pos " << slot_for(elapsed_, l) << ":";
    for (unsigned sl = 0; sl < kSlots; ++sl) {
      if (occupied_[l] & (std::uint64_t{1} << sl)) {
        os << ' ' << sl;
      }
    }
    os << ']';
  }
  return os.str();
}
}  // namespace spindle::detail
