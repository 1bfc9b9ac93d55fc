#include "timer.hpp"

#include <chrono>

#include "waiter.hpp"

namespace spindle::detail {

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void TimerHeap::update_next() {
  next_deadline_.store(heap_.empty() ? kNever : heap_[0]->deadline_ns, std::memory_order_relaxed);
}

void TimerHeap::sift_up(std::uint32_t i) {
  TimerEntry* e = heap_[i];
  while (i > 0) {
    std::uint32_t parent = (i - 1) / 2;
    if (heap_[parent]->deadline_ns <= e->deadline_ns) {
      break;
    }
    heap_[i] = heap_[parent];
    heap_[i]->index = i;
    i = parent;
  }
  heap_[i] = e;
  e->index = i;
}

void TimerHeap::sift_down(std::uint32_t i) {
  TimerEntry* e = heap_[i];
  const std::uint32_t n = static_cast<std::uint32_t>(heap_.size());
  for (;;) {
    std::uint32_t child = 2 * i + 1;
    if (child >= n) {
      break;
    }
    if (child + 1 < n && heap_[child + 1]->deadline_ns < heap_[child]->deadline_ns) {
      ++child;
    }
    if (heap_[child]->deadline_ns >= e->deadline_ns) {
      break;
    }
    heap_[i] = heap_[child];
    heap_[i]->index = i;
    i = child;
  }
  heap_[i] = e;
  e->index = i;
}

void TimerHeap::remove_at(std::uint32_t i) {
  TimerEntry* e = heap_[i];
  e->index = TimerEntry::kNotInHeap;
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  if (last != e) {
    heap_[i] = last;
    last->index = i;
    if (i > 0 && heap_[(i - 1) / 2]->deadline_ns > last->deadline_ns) {
      sift_up(i);
    } else {
      sift_down(i);
    }
  }
}

bool TimerHeap::insert(TimerEntry* e) {
  SpinGuard g(lock_);
  e->heap = this;
  heap_.push_back(e);
  sift_up(static_cast<std::uint32_t>(heap_.size() - 1));
  update_next();
  return heap_[0] == e;
}

bool TimerHeap::remove(TimerEntry* e) {
  SpinGuard g(lock_);
  if (e->index == TimerEntry::kNotInHeap) {
    return false;
  }
  remove_at(e->index);
  update_next();
  return true;
}

std::size_t TimerHeap::take_due(std::int64_t now, std::vector<Waiter*>& wake,
                                std::vector<TimerEntry*>& callbacks) {
  if (next_deadline() > now) {
    return 0;
  }
  SpinGuard g(lock_);
  std::size_t n = 0;
  while (!heap_.empty() && heap_[0]->deadline_ns <= now) {
    TimerEntry* e = heap_[0];
    remove_at(0);
    ++n;
    if (e->waiter != nullptr) {
      if (e->waiter->try_fire()) {  // INV-W2: under our lock
        wake.push_back(e->waiter);
      }
    } else {
      callbacks.push_back(e);
    }
  }
  update_next();
  return n;
}

std::size_t TimerHeap::size() {
  SpinGuard g(lock_);
  return heap_.size();
}

}  // namespace spindle::detail
