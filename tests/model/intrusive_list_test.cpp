// The intrusive list (include/spindle/detail/intrusive_list.hpp), both
// shapes, single-threaded: push and unlink at the head, in the middle, at
// the tail and of the only node; pop and take_all; a node unlinked and
// linked again. Every check walks the list both ways, so a link left
// dangling by an unlink shows up as a wrong forward or backward order.
#include <gtest/gtest.h>

#include <vector>

#include <spindle/detail/intrusive_list.hpp>

namespace {

using spindle::detail::IntrusiveHeadList;
using spindle::detail::IntrusiveList;

struct Node {
  int id = 0;
  Node* prev = nullptr;
  Node* next = nullptr;
};

// A node with its links under other names, as TaskCore's.
struct Other {
  int id = 0;
  Other* back = nullptr;
  Other* fwd = nullptr;
};
struct OtherLinks {
  static Other*& prev(Other* n) noexcept { return n->back; }
  static Other*& next(Other* n) noexcept { return n->fwd; }
};

// The ids front to back, checking every prev link on the way and, for a
// list with a tail, that back() is the last node walked.
template <class List, class T, class Links>
std::vector<int> walk(const List& l) {
  std::vector<int> ids;
  T* prev = nullptr;
  for (T* n = l.front(); n != nullptr; n = List::next(n)) {
    EXPECT_EQ(Links::prev(n), prev) << "node " << n->id << ": prev link";
    ids.push_back(n->id);
    prev = n;
    if (ids.size() > 100) {
      ADD_FAILURE() << "cycle";
      break;
    }
  }
  if constexpr (requires { l.back(); }) {
    EXPECT_EQ(l.back(), prev) << "tail";
  }
  EXPECT_EQ(l.empty(), ids.empty());
  return ids;
}

std::vector<int> ids(const IntrusiveList<Node>& l) {
  return walk<IntrusiveList<Node>, Node, spindle::detail::MemberLinks<Node>>(l);
}
std::vector<int> ids(const IntrusiveHeadList<Node>& l) {
  return walk<IntrusiveHeadList<Node>, Node, spindle::detail::MemberLinks<Node>>(l);
}
std::vector<int> ids(const IntrusiveList<Other, OtherLinks>& l) {
  return walk<IntrusiveList<Other, OtherLinks>, Other, OtherLinks>(l);
}

bool unlinked(const Node& n) { return n.prev == nullptr && n.next == nullptr; }

using V = std::vector<int>;

}  // namespace

TEST(IntrusiveListModel, EmptyList) {
  IntrusiveList<Node> l;
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.front(), nullptr);
  EXPECT_EQ(l.back(), nullptr);
  EXPECT_EQ(l.pop_front(), nullptr);
  EXPECT_EQ(l.take_all(), nullptr);
  EXPECT_TRUE(l.empty());
  IntrusiveHeadList<Node> h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.pop_front(), nullptr);
  EXPECT_EQ(h.take_all(), nullptr);
}

TEST(IntrusiveListModel, PushBackAndFrontKeepOrder) {
  Node n[4];
  for (int i = 0; i < 4; ++i) {
    n[i].id = i;
  }
  IntrusiveList<Node> l;
  l.push_back(&n[1]);
  EXPECT_EQ(ids(l), (V{1}));
  l.push_back(&n[2]);
  l.push_front(&n[0]);
  l.push_back(&n[3]);
  EXPECT_EQ(ids(l), (V{0, 1, 2, 3}));
  // push_front onto an empty list sets the tail too.
  IntrusiveList<Node> m;
  Node a;
  a.id = 7;
  m.push_front(&a);
  EXPECT_EQ(ids(m), (V{7}));
  EXPECT_EQ(m.back(), &a);
}

TEST(IntrusiveListModel, RemoveHeadMiddleTailAndOnly) {
  Node n[5];
  for (int i = 0; i < 5; ++i) {
    n[i].id = i;
  }
  IntrusiveList<Node> l;
  for (auto& x : n) {
    l.push_back(&x);
  }
  l.remove(&n[2]);  // middle
  EXPECT_TRUE(unlinked(n[2]));
  EXPECT_EQ(ids(l), (V{0, 1, 3, 4}));
  l.remove(&n[0]);  // head
  EXPECT_TRUE(unlinked(n[0]));
  EXPECT_EQ(ids(l), (V{1, 3, 4}));
  l.remove(&n[4]);  // tail
  EXPECT_TRUE(unlinked(n[4]));
  EXPECT_EQ(ids(l), (V{1, 3}));
  l.push_back(&n[4]);  // the tail moved back correctly: appending works
  EXPECT_EQ(ids(l), (V{1, 3, 4}));
  l.remove(&n[3]);
  l.remove(&n[1]);
  EXPECT_EQ(ids(l), (V{4}));
  l.remove(&n[4]);  // the only node
  EXPECT_TRUE(unlinked(n[4]));
  EXPECT_EQ(ids(l), (V{}));
  EXPECT_EQ(l.back(), nullptr);
}

TEST(IntrusiveListModel, RelinkAfterRemoveAndPop) {
  Node n[3];
  for (int i = 0; i < 3; ++i) {
    n[i].id = i;
  }
  IntrusiveList<Node> l;
  for (auto& x : n) {
    l.push_back(&x);
  }
  EXPECT_EQ(l.pop_front(), &n[0]);
  EXPECT_TRUE(unlinked(n[0]));
  EXPECT_EQ(ids(l), (V{1, 2}));
  l.push_back(&n[0]);  // re-link a popped node
  EXPECT_EQ(ids(l), (V{1, 2, 0}));
  l.remove(&n[2]);
  l.push_front(&n[2]);  // re-link a removed node at the other end
  EXPECT_EQ(ids(l), (V{2, 1, 0}));
  // The refill pattern (local_queue.cpp): pop the head, then put it back.
  Node* h = l.pop_front();
  l.push_front(h);
  EXPECT_EQ(ids(l), (V{2, 1, 0}));
  EXPECT_EQ(l.pop_front(), &n[2]);
  EXPECT_EQ(l.pop_front(), &n[1]);
  EXPECT_EQ(l.pop_front(), &n[0]);
  EXPECT_EQ(l.pop_front(), nullptr);
  EXPECT_EQ(ids(l), (V{}));
  l.push_back(&n[1]);  // usable again once emptied
  EXPECT_EQ(ids(l), (V{1}));
}

TEST(IntrusiveListModel, TakeAllLeavesTheChainAndAnEmptyList) {
  Node n[3];
  for (int i = 0; i < 3; ++i) {
    n[i].id = i;
  }
  IntrusiveList<Node> l;
  for (auto& x : n) {
    l.push_back(&x);
  }
  Node* chain = l.take_all();
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.back(), nullptr);
  V got;
  while (chain != nullptr) {
    Node* next = IntrusiveList<Node>::next(chain);
    got.push_back(chain->id);
    IntrusiveList<Node>::clear_links(chain);
    EXPECT_TRUE(unlinked(*chain));
    chain = next;
  }
  EXPECT_EQ(got, (V{0, 1, 2}));
  l.push_back(&n[2]);
  EXPECT_EQ(ids(l), (V{2}));
}

TEST(IntrusiveListModel, HeadOnlyShape) {
  Node n[4];
  for (int i = 0; i < 4; ++i) {
    n[i].id = i;
  }
  IntrusiveHeadList<Node> l;
  for (int i = 3; i >= 0; --i) {
    l.push_front(&n[i]);
  }
  EXPECT_EQ(ids(l), (V{0, 1, 2, 3}));
  l.remove(&n[3]);  // tail: no tail pointer to fix, the last node's next stays null
  EXPECT_EQ(ids(l), (V{0, 1, 2}));
  EXPECT_EQ(n[2].next, nullptr);
  l.remove(&n[1]);  // middle
  EXPECT_EQ(ids(l), (V{0, 2}));
  l.remove(&n[0]);  // head
  EXPECT_EQ(ids(l), (V{2}));
  EXPECT_EQ(n[2].prev, nullptr);
  l.push_front(&n[3]);  // re-link
  EXPECT_EQ(ids(l), (V{3, 2}));
  l.remove(&n[2]);
  l.remove(&n[3]);  // the only node
  EXPECT_TRUE(l.empty());
  EXPECT_TRUE(unlinked(n[3]));
  l.push_front(&n[1]);
  EXPECT_EQ(l.pop_front(), &n[1]);
  EXPECT_TRUE(l.empty());
}

TEST(IntrusiveListModel, LinksUnderOtherNames) {
  Other o[3];
  for (int i = 0; i < 3; ++i) {
    o[i].id = i;
  }
  IntrusiveList<Other, OtherLinks> l;
  for (auto& x : o) {
    l.push_back(&x);
  }
  l.remove(&o[1]);
  EXPECT_EQ(ids(l), (V{0, 2}));
  EXPECT_EQ(o[1].back, nullptr);
  EXPECT_EQ(o[1].fwd, nullptr);
  l.remove(&o[2]);
  l.push_back(&o[1]);
  EXPECT_EQ(ids(l), (V{0, 1}));
}

// The list is only its ends: no node layout grows when a list adopts it.
static_assert(sizeof(IntrusiveList<Node>) == 2 * sizeof(Node*));
static_assert(sizeof(IntrusiveHeadList<Node>) == sizeof(Node*));
