// Queue<T>, LifoQueue<T>, PriorityQueue<T, Compare>: asyncio.Queue (Python
// 3.13, with shutdown) made thread-safe.
//
//   spindle::Queue<int> q(1024);     // maxsize 0: unbounded
//   q.put(1);                        // blocks (suspends) while full
//   int v = q.get();                 // blocks (suspends) while empty
//   q.task_done(); q.join();         // as asyncio
//   q.shutdown();                    // put: QueueShutDown; get: drains, then QueueShutDown
//
// Tasks on any worker and plain threads may share a queue; blocked getters
// and putters are served in FIFO order. put() and get() are suspension
// points only when they block; put_nowait()/get_nowait() never block
// (QueueFull, QueueEmpty). No call allocates unless it blocks (the ring of
// a FIFO/LIFO queue grows to its high-water mark once and is then reused).
//
// Cancellation: a cancelled get() loses no item — if an item had already
// been handed to it, get() either returns it (the cancellation is delivered
// at the task's next suspension point) or puts it back at the head of the
// queue before throwing Cancelled. A cancelled put() never enqueues its
// item, and passes on the free slot it may have been given.
//
// Shutdown (Python 3.13): after shutdown(), put() and put_nowait() throw
// QueueShutDown, and blocked putters wake and throw it; get() keeps
// returning the items left, then throws QueueShutDown instead of blocking.
// shutdown(true) also discards the items left (counting each as task_done()
// for join()), so getters throw QueueShutDown at once and join() returns
// when the items taken earlier are done.
//
// Misuse: task_done() called more times than there were items put throws
// std::invalid_argument (asyncio: ValueError).
//
// Memory ordering: everything a producer did before put() is visible to the
// consumer once get() returns that item; everything done before the last
// task_done() is visible once join() returns.
//
// Differences from asyncio, for thread safety and speed: an item put while
// getters wait goes straight to the first of them (asyncio wakes it to
// retry), and a blocked putter is woken with a slot reserved for it, which
// full() counts as taken — so wake-ups are never wasted and blocked callers
// are served strictly in FIFO order.
//
// Not promised: qsize() may briefly exceed maxsize() by the number of items
// that cancelled getters were putting back at that moment; PriorityQueue
// does not keep insertion order among equal elements (nor does heapq).
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "future.hpp"

namespace spindle {

namespace detail {

// A growable ring buffer: push/pop at both ends, power-of-two capacity,
// grows by doubling, never shrinks (so a bounded queue stops allocating
// once it has been full once).
template <class T>
class Ring {
 public:
  Ring() noexcept = default;
  Ring(Ring&& o) noexcept
      : buf_(std::exchange(o.buf_, nullptr)),
        cap_(std::exchange(o.cap_, 0)),
        head_(std::exchange(o.head_, 0)),
        size_(std::exchange(o.size_, 0)) {}
  Ring& operator=(Ring&& o) noexcept {
    if (this != &o) {
      release();
      buf_ = std::exchange(o.buf_, nullptr);
      cap_ = std::exchange(o.cap_, 0);
      head_ = std::exchange(o.head_, 0);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~Ring() { release(); }

  std::size_t size() const noexcept { return size_; }
  void push_back(T&& v) {
    reserve_one();
    ::new (static_cast<void*>(at(head_ + size_))) T(std::move(v));
    ++size_;
  }
  void push_front(T&& v) {
    reserve_one();
    std::size_t h = (head_ + cap_ - 1) & (cap_ - 1);
    ::new (static_cast<void*>(at(h))) T(std::move(v));
    head_ = h;
    ++size_;
  }
  T pop_front() {
    T* p = at(head_);
    T v(std::move(*p));
    p->~T();
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    return v;
  }
  T pop_back() {
    T* p = at(head_ + size_ - 1);
    T v(std::move(*p));
    p->~T();
    --size_;
    return v;
  }

 private:
  T* at(std::size_t i) const noexcept { return buf_ + (i & (cap_ - 1)); }
  void reserve_one() {
    if (size_ < cap_) {
      return;
    }
    std::size_t ncap = cap_ == 0 ? 16 : cap_ * 2;
    T* nbuf = std::allocator<T>().allocate(ncap);
    for (std::size_t i = 0; i < size_; ++i) {
      T* p = at(head_ + i);
      ::new (static_cast<void*>(nbuf + i)) T(std::move(*p));
      p->~T();
    }
    if (buf_ != nullptr) {
      std::allocator<T>().deallocate(buf_, cap_);
    }
    buf_ = nbuf;
    cap_ = ncap;
    head_ = 0;
  }
  void release() noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
      at(head_ + i)->~T();
    }
    if (buf_ != nullptr) {
      std::allocator<T>().deallocate(buf_, cap_);
    }
    buf_ = nullptr;
    cap_ = head_ = size_ = 0;
  }

  T* buf_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// Storage policies: put(), get() (the next item to hand out), unget() (an
// item that was handed out and comes back: it becomes the next again).
template <class T>
struct FifoStore {
  Ring<T> ring;
  std::size_t size() const noexcept { return ring.size(); }
  void put(T&& v) { ring.push_back(std::move(v)); }
  T get() { return ring.pop_front(); }
  void unget(T&& v) { ring.push_front(std::move(v)); }
};

template <class T>
struct LifoStore {
  Ring<T> ring;
  std::size_t size() const noexcept { return ring.size(); }
  void put(T&& v) { ring.push_back(std::move(v)); }
  T get() { return ring.pop_back(); }
  void unget(T&& v) { ring.push_back(std::move(v)); }
};

// A binary min-heap under Compare (the smallest comes out first, as heapq).
template <class T, class Compare>
struct HeapStore {
  std::vector<T> heap;
  Compare cmp;
  // std::*_heap builds a max-heap under its comparator: invert it.
  struct Greater {
    Compare* c;
    bool operator()(const T& a, const T& b) const { return (*c)(b, a); }
  };
  std::size_t size() const noexcept { return heap.size(); }
  void put(T&& v) {
    heap.push_back(std::move(v));
    std::push_heap(heap.begin(), heap.end(), Greater{&cmp});
  }
  T get() {
    std::pop_heap(heap.begin(), heap.end(), Greater{&cmp});
    T v(std::move(heap.back()));
    heap.pop_back();
    return v;
  }
  void unget(T&& v) { put(std::move(v)); }
};

// The queue proper, over a storage policy. The blocking protocol is the one
// of wait_list.hpp (INV-L1..L3); on top of it:
//
//   INV-BQ1  Getters wait only while the store is empty, and an item
//            arriving while getters wait goes straight into the first
//            claimable getter's node (direct hand-off): the store is
//            non-empty only while no getter is linked.
//   INV-BQ2  A putter is woken with a reserved slot (node.slot, counted in
//            reserved_) and then puts without re-checking fullness; full()
//            counts reserved slots, so nobody else takes them. A putter woken
//            by shutdown() gets no slot.
//   INV-BQ3  A granted getter that throws Cancelled (INV-L3) gives its item
//            to the next getter or back to the head of the store; a granted
//            putter that throws gives its slot to the next putter. Nothing is
//            lost; after shutdown(true) a returned item is discarded and
//            counted done, as the drain would have.
//   INV-BQ4  unfinished_ counts items put and not yet task_done()'d; it
//            reaches 0 only with joiners_ woken in the same critical section.
//
// All state is guarded by lock_ (a spin lock: critical sections are a few
// moves and pointer swaps; wake-ups are published after it is dropped).
template <class T, class Store>
class BasicQueue {
 public:
  using value_type = T;

  explicit BasicQueue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  // Blocks while the queue is full. Throws QueueShutDown after shutdown().
  void put(T item) {
    {
      WakeBatch wake;
      SpinGuard g(lock_);
      if (try_put_locked(item, wake)) {
        return;
      }
    }
    PutNode node;
    {
      WakeBatch wake;
      SpinGuard g(lock_);
      if (try_put_locked(item, wake)) {
        return;
      }
      putters_.push_back(&node);
    }
    try {
      node.fut.get();
    } catch (...) {
      WakeBatch wake;
      SpinGuard g(lock_);
      if (revoke(putters_, node) && node.slot) {
        --reserved_;  // INV-BQ3: the slot goes to the next putter
        grant_putters_locked(wake);
      }
      throw;
    }
    WakeBatch wake;
    SpinGuard g(lock_);
    if (node.slot) {
      --reserved_;  // INV-BQ2: the room is ours
    }
    if (shutdown_) {
      grant_putters_locked(wake);
      throw QueueShutDown();
    }
    put_locked(std::move(item), wake);
  }

  // Throws QueueShutDown after shutdown(), QueueFull if full.
  void put_nowait(T item) {
    WakeBatch wake;
    SpinGuard g(lock_);
    if (!try_put_locked(item, wake)) {
      throw QueueFull();
    }
  }

  // Blocks while the queue is empty. Throws QueueShutDown once the queue is
  // shut down and empty.
  T get() {
    for (;;) {
      {
        WakeBatch wake;
        SpinGuard g(lock_);
        if (store_.size() > 0) {
          return take_locked(wake);
        }
        if (shutdown_) {
          throw QueueShutDown();
        }
      }
      GetNode node;
      {
        WakeBatch wake;
        SpinGuard g(lock_);
        if (store_.size() > 0) {
          return take_locked(wake);
        }
        if (shutdown_) {
          throw QueueShutDown();
        }
        getters_.push_back(&node);
      }
      try {
        node.fut.get();
      } catch (...) {
        std::optional<T> dropped;  // destroyed after the lock is dropped
        WakeBatch wake;
        SpinGuard g(lock_);
        if (revoke(getters_, node) && node.item) {
          give_back_locked(std::move(*node.item), dropped, wake);  // INV-BQ3
        }
        throw;
      }
      if (node.item) {
        return std::move(*node.item);
      }
      // Woken without an item (shutdown, or the item failed to move): look
      // again.
    }
  }

  // Throws QueueEmpty if empty (QueueShutDown if also shut down).
  T get_nowait() {
    WakeBatch wake;
    SpinGuard g(lock_);
    if (store_.size() > 0) {
      return take_locked(wake);
    }
    if (shutdown_) {
      throw QueueShutDown();
    }
    throw QueueEmpty();
  }

  std::size_t qsize() const noexcept {
    SpinGuard g(lock_);
    return store_.size();
  }
  bool empty() const noexcept { return qsize() == 0; }
  bool full() const noexcept {
    SpinGuard g(lock_);
    return full_locked();
  }
  std::size_t maxsize() const noexcept { return maxsize_; }

  // Marks one item taken with get() as processed. Called more often than
  // items were put: std::invalid_argument.
  void task_done() {
    WakeBatch wake;
    SpinGuard g(lock_);
    if (unfinished_ == 0) {
      throw std::invalid_argument("task_done() called too many times");
    }
    if (--unfinished_ == 0) {
      wake_joiners_locked(wake);
    }
  }

  // Blocks until every item put has been task_done()'d.
  void join() {
    {
      SpinGuard g(lock_);
      if (unfinished_ == 0) {
        return;
      }
    }
    WaitNode node;
    {
      SpinGuard g(lock_);
      if (unfinished_ == 0) {
        return;
      }
      joiners_.push_back(&node);
    }
    try {
      node.fut.get();
    } catch (...) {
      SpinGuard g(lock_);
      (void)revoke(joiners_, node);  // nothing to pass on
      throw;
    }
  }

  // Python 3.13 Queue.shutdown(immediate).
  void shutdown(bool immediate = false) {
    Store drained;  // destroyed last, after the lock is dropped
    WakeBatch wake;
    SpinGuard g(lock_);
    shutdown_ = true;
    if (immediate) {
      immediate_ = true;
      std::size_t n = store_.size();
      std::swap(drained, store_);
      unfinished_ -= std::min(n, unfinished_);
      if (unfinished_ == 0) {
        wake_joiners_locked(wake);
      }
    }
    FutureCore* core;
    while (pop_and_claim(getters_, core) != nullptr) {
      wake.add(core);  // no item: they re-check and throw QueueShutDown
    }
    while (pop_and_claim(putters_, core) != nullptr) {
      wake.add(core);  // no slot (INV-BQ2)
    }
  }

 private:
  struct GetNode : WaitNode {
    std::optional<T> item;  // written by the putter that granted us (INV-BQ1)
  };
  struct PutNode : WaitNode {
    bool slot = false;  // granted a reserved slot (INV-BQ2)
  };

  bool full_locked() const noexcept SPINDLE_REQUIRES(lock_) {
    return maxsize_ > 0 && store_.size() + reserved_ >= maxsize_;
  }

  // put_nowait's core: false if full; throws QueueShutDown. `item` is moved
  // from only on success.
  bool try_put_locked(T& item, WakeBatch& wake) SPINDLE_REQUIRES(lock_) {
    if (shutdown_) {
      throw QueueShutDown();
    }
    if (full_locked()) {
      return false;
    }
    put_locked(std::move(item), wake);
    return true;
  }

  void put_locked(T&& item, WakeBatch& wake) SPINDLE_REQUIRES(lock_) {
    FutureCore* core;
    if (WaitNode* n = pop_and_claim(getters_, core)) {
      // INV-BQ1: hand it over. The getter cannot leave before it takes
      // lock_ (INV-L2), so writing its node here is safe.
      wake.add(core);
      static_cast<GetNode*>(n)->item.emplace(std::move(item));
      ++unfinished_;
      // The item took no room: a slot reserved for a woken putter (this
      // one) is still free, so it goes on to the next putter.
      grant_putters_locked(wake);
    } else {
      store_.put(std::move(item));
      ++unfinished_;
    }
  }

  T take_locked(WakeBatch& wake) SPINDLE_REQUIRES(lock_) {
    T item = store_.get();
    grant_putters_locked(wake);
    return item;
  }

  // Wakes putters, each with a reserved slot, while there is room.
  void grant_putters_locked(WakeBatch& wake) SPINDLE_REQUIRES(lock_) {
    FutureCore* core;
    while (!full_locked()) {
      WaitNode* n = pop_and_claim(putters_, core);
      if (n == nullptr) {
        return;
      }
      static_cast<PutNode*>(n)->slot = true;
      ++reserved_;
      wake.add(core);
    }
  }

  // INV-BQ3: an item handed to a getter that then threw Cancelled.
  void give_back_locked(T&& item, std::optional<T>& dropped, WakeBatch& wake)
      SPINDLE_REQUIRES(lock_) {
    if (immediate_) {
      // shutdown(true) discarded everything else; discard this one too.
      dropped.emplace(std::move(item));
      if (unfinished_ > 0 && --unfinished_ == 0) {
        wake_joiners_locked(wake);
      }
      return;
    }
    FutureCore* core;
    if (WaitNode* n = pop_and_claim(getters_, core)) {
      wake.add(core);
      static_cast<GetNode*>(n)->item.emplace(std::move(item));
    } else {
      store_.unget(std::move(item));  // the head again; may exceed maxsize
    }
  }

  void wake_joiners_locked(WakeBatch& wake) SPINDLE_REQUIRES(lock_) {
    FutureCore* core;
    while (pop_and_claim(joiners_, core) != nullptr) {
      wake.add(core);
    }
  }

  mutable detail::SpinLock lock_;
  Store store_ SPINDLE_GUARDED_BY(lock_);
  const std::size_t maxsize_;  // 0: unbounded
  // Slots granted to woken putters (INV-BQ2).
  std::size_t reserved_ SPINDLE_GUARDED_BY(lock_) = 0;
  std::size_t unfinished_ SPINDLE_GUARDED_BY(lock_) = 0;  // INV-BQ4
  bool shutdown_ SPINDLE_GUARDED_BY(lock_) = false;
  bool immediate_ SPINDLE_GUARDED_BY(lock_) = false;
  WaitList getters_ SPINDLE_GUARDED_BY(lock_);
  WaitList putters_ SPINDLE_GUARDED_BY(lock_);
  WaitList joiners_ SPINDLE_GUARDED_BY(lock_);
};

}  // namespace detail

// asyncio.Queue: first in, first out.
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStore<T>> {
 public:
  explicit Queue(std::size_t maxsize = 0) : detail::BasicQueue<T, detail::FifoStore<T>>(maxsize) {}
};

// asyncio.LifoQueue: last in, first out.
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
 public:
  explicit LifoQueue(std::size_t maxsize = 0)
      : detail::BasicQueue<T, detail::LifoStore<T>>(maxsize) {}
};

// asyncio.PriorityQueue: the smallest item under Compare comes out first
// (std::less: ascending, like heapq). For (priority, data) entries use a
// std::pair or std::tuple, as in Python.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStore<T, Compare>> {
 public:
  explicit PriorityQueue(std::size_t maxsize = 0)
      : detail::BasicQueue<T, detail::HeapStore<T, Compare>>(maxsize) {}
};

}  // namespace spindle
