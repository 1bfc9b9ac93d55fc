// Not API. The runtime's one intrusive doubly linked list: the nodes carry
// their own links (no allocation, O(1) unlink of a node known by address),
// and the list is only its ends.
//
// Users: WaitList (wait_list.hpp), a future's waiter list (future_core.hpp),
// a worker's overflow list (runtime/local_queue.hpp), the task registry's
// shards (runtime/registry.hpp) and the timer wheel's slots
// (runtime/timer.hpp).
//
// Two shapes, one template:
//   IntrusiveList<T, Links>      head and tail: FIFO (push_back, pop_front).
//   IntrusiveHeadList<T, Links>  head only, one word: push_front only. For
//                                arrays of lists (the timer wheel's 448
//                                slots) and lists that never need the tail.
//
// Links names a node's two link fields: a type with
//   static T*& prev(T* n) noexcept;  static T*& next(T* n) noexcept;
// The default, MemberLinks<T>, uses members `prev` and `next`; a node whose
// links are private (TaskCore) or that sits in more than one list names them
// with a Links type of its own. The list never reads Links before a method
// runs, so a member list may name a node type that is still incomplete.
//
// Contract (nothing here is atomic): every method of one list runs under
// the lock of whatever owns the list (or on one thread), and a node is in at
// most one list per pair of link fields. An unlinked node has both links
// null; a node's membership is not recorded here: a list that must answer
// "is this node linked?" keeps a flag of its own next to the links (WaitNode,
// Waiter and TimerEntry do, under the same lock). remove() of a node that
// is not in this list corrupts it.
#pragma once

#include <cstddef>

namespace spindle::detail {

template <class T>
struct MemberLinks {
  static T*& prev(T* n) noexcept { return n->prev; }
  static T*& next(T* n) noexcept { return n->next; }
};

namespace list_detail {

template <class T, bool kHasTail>
struct Ends {
  T* head = nullptr;
  T* tail = nullptr;
};
template <class T>
struct Ends<T, false> {
  T* head = nullptr;
};

}  // namespace list_detail

template <class T, class Links, bool kHasTail>
class BasicIntrusiveList {
 public:
  BasicIntrusiveList() = default;
  BasicIntrusiveList(const BasicIntrusiveList&) = delete;
  BasicIntrusiveList& operator=(const BasicIntrusiveList&) = delete;

  bool empty() const noexcept { return ends_.head == nullptr; }
  T* front() const noexcept { return ends_.head; }
  T* back() const noexcept requires kHasTail { return ends_.tail; }
  // The node after `n` in its list, nullptr at the end.
  static T* next(T* n) noexcept { return Links::next(n); }
  // Both links null: the state of a node in no list.
  static void clear_links(T* n) noexcept { Links::prev(n) = Links::next(n) = nullptr; }

  void push_back(T* n) noexcept requires kHasTail {
    Links::prev(n) = ends_.tail;
    Links::next(n) = nullptr;
    (ends_.tail != nullptr ? Links::next(ends_.tail) : ends_.head) = n;
    ends_.tail = n;
  }
  void push_front(T* n) noexcept {
    Links::prev(n) = nullptr;
    Links::next(n) = ends_.head;
    if (ends_.head != nullptr) {
      Links::prev(ends_.head) = n;
    } else {
      if constexpr (kHasTail) {
        ends_.tail = n;
      }
    }
    ends_.head = n;
  }
  // Unlinks `n`, which must be in this list, and clears its links.
  void remove(T* n) noexcept {
    T* p = Links::prev(n);
    T* x = Links::next(n);
    (p != nullptr ? Links::next(p) : ends_.head) = x;
    if (x != nullptr) {
      Links::prev(x) = p;
    } else {
      if constexpr (kHasTail) {
        ends_.tail = p;
      }
    }
    clear_links(n);
  }
  // Unlinks and returns the first node (links cleared); nullptr when empty.
  T* pop_front() noexcept {
    T* n = ends_.head;
    if (n == nullptr) {
      return nullptr;
    }
    T* x = Links::next(n);
    ends_.head = x;
    if (x != nullptr) {
      Links::prev(x) = nullptr;
    } else {
      if constexpr (kHasTail) {
        ends_.tail = nullptr;
      }
    }
    clear_links(n);
    return n;
  }
  // Empties the list and returns its old first node. The nodes keep their
  // links to one another: the caller walks them with next() and must
  // clear_links() (or relink) each before it counts as unlinked. For lists
  // taken whole (a future's waiters at publish, a timer slot that fires or
  // cascades): no successor is relinked on the way.
  T* take_all() noexcept {
    T* n = ends_.head;
    ends_.head = nullptr;
    if constexpr (kHasTail) {
      ends_.tail = nullptr;
    }
    return n;
  }

 private:
  list_detail::Ends<T, kHasTail> ends_;
};

template <class T, class Links = MemberLinks<T>>
using IntrusiveList = BasicIntrusiveList<T, Links, true>;
template <class T, class Links = MemberLinks<T>>
using IntrusiveHeadList = BasicIntrusiveList<T, Links, false>;

// The shapes cost what the hand-written lists they replace cost.
static_assert(sizeof(IntrusiveList<struct ListSizeProbe>) == 2 * sizeof(void*) &&
                  sizeof(IntrusiveHeadList<struct ListSizeProbe>) == sizeof(void*),
              "a list is its ends: two pointers, or one without a tail");

}  // namespace spindle::detail
