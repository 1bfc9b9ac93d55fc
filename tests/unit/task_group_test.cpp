// task_group / TaskGroup: asyncio.TaskGroup (3.12) behaviour — joins every
// child, the first failure cancels the siblings and the body, failures come
// out as one ExceptionGroup, the owner's cancellation cancels the group.
#include <spindle/task_group.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <spindle/combinators.hpp>

#include "runtime_fixture.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::ExceptionGroup;
using spindle::Future;
using spindle::InvalidStateError;
using spindle::Task;
using spindle::TaskGroup;
using spindle::testing::RuntimeTest;

namespace {

// The what() of each exception in the group, in order.
std::vector<std::string> messages(const ExceptionGroup& g) {
  std::vector<std::string> out;
  for (const auto& e : g.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      out.emplace_back(x.what());
    } catch (const Cancelled&) {
      out.emplace_back("<Cancelled>");
    }
  }
  return out;
}

}  // namespace

class TaskGroupTest : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(TaskGroupTest);

TEST_P(TaskGroupTest, JoinsEveryChildAndReturnsTheBodysResult) {
  rt().block_on([] {
    Task<int> t1, t2, t3;
    int r = spindle::task_group([&](TaskGroup& tg) {
      t1 = tg.spawn([] {
        spindle::sleep(3ms);
        return 2;
      });
      t2 = tg.spawn([] { return 4; }, "named");
      t3 = tg.spawn([] {
        spindle::sleep(1ms);
        return 6;
      });
      EXPECT_EQ(t2.get_name(), "named");
      return 10;
    });
    EXPECT_EQ(r, 10);
    EXPECT_TRUE(t1.done() && t2.done() && t3.done());
    EXPECT_EQ(t1.result() + t2.result() + t3.result(), 12);
  });
}

TEST_P(TaskGroupTest, EmptyGroupAndVoidBody) {
  rt().block_on([] {
    spindle::task_group([](TaskGroup& tg) { EXPECT_EQ(tg.size(), 0u); });
    EXPECT_EQ(spindle::task_group([](TaskGroup&) { return std::string("x"); }), "x");
  });
}

TEST_P(TaskGroupTest, FirstFailureCancelsSiblingsAndBody) {
  rt().block_on([] {
    Task<void> sibling;
    bool body_cancelled = false;
    try {
      spindle::task_group([&](TaskGroup& tg) {
        sibling = tg.spawn([] { spindle::sleep(10s); });
        tg.spawn([]() -> int {
          spindle::sleep(2ms);
          throw std::runtime_error("child failed");
        });
        try {
          spindle::sleep(10s);
        } catch (const Cancelled&) {
          body_cancelled = true;
          throw;
        }
      });
      ADD_FAILURE() << "no ExceptionGroup";
    } catch (const ExceptionGroup& g) {
      EXPECT_EQ(messages(g), std::vector<std::string>{"child failed"});
      EXPECT_NE(std::string(g.what()).find("child failed"), std::string::npos) << g.what();
      EXPECT_NE(std::string(g.what()).find("unhandled errors in a TaskGroup"), std::string::npos);
    }
    EXPECT_TRUE(body_cancelled);
    EXPECT_TRUE(sibling.cancelled());
    // The owner's cancellation was absorbed.
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
    spindle::sleep(1ms);
  });
}

TEST_P(TaskGroupTest, EveryFailureIsCollected) {
  rt().block_on([] {
    try {
      spindle::task_group([](TaskGroup& tg) {
        Future<void> started;
        tg.spawn([started]() mutable {
          started.set_result();
          try {
            spindle::sleep(10s);
          } catch (const Cancelled&) {
          }
          throw std::logic_error("cleanup failed");  // a failure, not a cancellation
        });
        tg.spawn([started] {
          started.core()->wait();  // fail only once the sibling is running
          throw std::runtime_error("first");
        });
      });
      ADD_FAILURE();
    } catch (const ExceptionGroup& g) {
      EXPECT_EQ(messages(g), (std::vector<std::string>{"first", "cleanup failed"}));
    }
  });
}

TEST_P(TaskGroupTest, CancelledChildrenAreNotFailures) {
  rt().block_on([] {
    Task<void> victim;
    spindle::task_group([&](TaskGroup& tg) {
      victim = tg.spawn([] { spindle::sleep(10s); });
      tg.spawn([] { spindle::sleep(1ms); });
      spindle::sleep(2ms);
      victim.cancel();
    });
    EXPECT_TRUE(victim.cancelled());
  });
}

TEST_P(TaskGroupTest, BodyExceptionCancelsChildrenAndIsGrouped) {
  rt().block_on([] {
    Task<void> child;
    try {
      spindle::task_group([&](TaskGroup& tg) {
        child = tg.spawn([] { spindle::sleep(10s); });
        spindle::sleep(1ms);
        throw std::out_of_range("body failed");
      });
      ADD_FAILURE();
    } catch (const ExceptionGroup& g) {
      EXPECT_EQ(messages(g), std::vector<std::string>{"body failed"});
    }
    EXPECT_TRUE(child.cancelled());
  });
}

TEST_P(TaskGroupTest, BodyExceptionComesAfterTheChildrensFailures) {
  rt().block_on([] {
    try {
      spindle::task_group([&](TaskGroup& tg) {
        Future<void> started;
        tg.spawn([started]() mutable {
          started.set_result();
          try {
            spindle::sleep(10s);
          } catch (const Cancelled&) {
          }
          throw std::runtime_error("child");
        });
        started.get();
        throw std::out_of_range("body");
      });
      ADD_FAILURE();
    } catch (const ExceptionGroup& g) {
      EXPECT_EQ(messages(g), (std::vector<std::string>{"child", "body"}));
    }
  });
}

TEST_P(TaskGroupTest, CancellingTheOwnerCancelsTheGroup) {
  rt().block_on([] {
    std::atomic<int> cleaned{0};
    std::atomic<int> entered{0};
    Future<void> started;
    auto owner = spindle::spawn([&cleaned, &entered, started]() mutable {
      spindle::task_group([&](TaskGroup& tg) {
        for (int i = 0; i < 3; ++i) {
          tg.spawn([&cleaned, &entered] {
            ++entered;
            try {
              spindle::sleep(10s);
            } catch (const Cancelled&) {
              spindle::sleep(2ms);  // cleanup that suspends
              ++cleaned;
              throw;
            }
          });
        }
        started.set_result();
        spindle::sleep(10s);
      });
    });
    started.get();
    while (entered.load() < 3) {
      spindle::sleep(1ms);
    }
    owner.cancel("shutdown");
    try {
      owner.get();
      ADD_FAILURE();
    } catch (const Cancelled& c) {
      EXPECT_EQ(c.message(), "shutdown");
    }
    EXPECT_EQ(cleaned.load(), 3);  // children done before the owner ended
  });
}

TEST_P(TaskGroupTest, CancellingTheOwnerWhileItWaitsForChildren) {
  rt().block_on([] {
    Future<void> started;
    Task<void> child;
    auto owner = spindle::spawn([&child, started]() mutable {
      spindle::task_group([&](TaskGroup& tg) {
        child = tg.spawn([] { spindle::sleep(10s); });
        started.set_result();
      });  // the body is over: the owner waits for the child here
    });
    started.get();
    spindle::sleep(3ms);
    owner.cancel();
    EXPECT_THROW(owner.get(), Cancelled);
    EXPECT_TRUE(child.cancelled());
  });
}

TEST_P(TaskGroupTest, SpawningIntoAShuttingDownGroupIsMisuse) {
  rt().block_on([] {
    bool refused = false;
    try {
      spindle::task_group([&](TaskGroup& tg) {
        tg.spawn([] {
          spindle::sleep(1ms);
          throw std::runtime_error("x");
        });
        try {
          spindle::sleep(10s);
        } catch (const Cancelled&) {
          try {
            tg.spawn([] {});
          } catch (const InvalidStateError&) {
            refused = true;
          }
          throw;
        }
      });
    } catch (const ExceptionGroup&) {
    }
    EXPECT_TRUE(refused);
  });
}

TEST_P(TaskGroupTest, ChildrenSpawnChildren) {
  std::atomic<int> ran{0};
  rt().block_on([&] {
    spindle::task_group([&](TaskGroup& tg) {
      for (int i = 0; i < 4; ++i) {
        tg.spawn([&tg, &ran] {
          spindle::sleep(1ms);
          for (int j = 0; j < 3; ++j) {
            tg.spawn([&ran] {
              spindle::yield();
              ++ran;
            });
          }
          ++ran;
        });
      }
    });  // returns only once the grandchildren are done too
    EXPECT_EQ(ran.load(), 16);
  });
}

TEST_P(TaskGroupTest, NestedGroups) {
  rt().block_on([] {
    // An inner failure stays inside the inner group.
    int r = spindle::task_group([](TaskGroup& outer) {
      auto ok = outer.spawn([] {
        spindle::sleep(3ms);
        return 1;
      });
      try {
        spindle::task_group([](TaskGroup& inner) {
          inner.spawn([] { throw std::runtime_error("inner"); });
          spindle::sleep(10s);
        });
      } catch (const ExceptionGroup& g) {
        EXPECT_EQ(messages(g), std::vector<std::string>{"inner"});
      }
      return ok.get() + 1;
    });
    EXPECT_EQ(r, 2);
    EXPECT_EQ(spindle::current_task().cancelling(), 0);

    // An outer child's failure cancels the body, which is inside an inner
    // group: the inner group is cancelled too, and the outer reports.
    Task<void> inner_child;
    try {
      spindle::task_group([&](TaskGroup& outer) {
        outer.spawn([] {
          spindle::sleep(2ms);
          throw std::runtime_error("outer child");
        });
        spindle::task_group([&](TaskGroup& inner) {
          inner_child = inner.spawn([] { spindle::sleep(10s); });
          spindle::sleep(10s);
        });
      });
      ADD_FAILURE();
    } catch (const ExceptionGroup& g) {
      EXPECT_EQ(messages(g), std::vector<std::string>{"outer child"});
    }
    EXPECT_TRUE(inner_child.cancelled());
    EXPECT_EQ(spindle::current_task().cancelling(), 0);
    spindle::sleep(1ms);
  });
}

TEST_P(TaskGroupTest, GoodResultStillReachableAfterAFailure) {
  rt().block_on([] {
    Task<std::string> good;
    try {
      spindle::task_group([&](TaskGroup& tg) {
        good = tg.spawn([] {
          spindle::sleep(1ms);
          return std::string("OK");
        });
        tg.spawn([&good]() -> std::string {
          good.core()->wait();  // fail only once the good one is done
          throw std::invalid_argument("Something went wrong!");
        });
      });
      ADD_FAILURE();
    } catch (const ExceptionGroup& g) {
      ASSERT_EQ(g.exceptions().size(), 1u);
      EXPECT_THROW(std::rethrow_exception(g.exceptions()[0]), std::invalid_argument);
    }
    EXPECT_EQ(good.result(), "OK");
  });
}

TEST_P(TaskGroupTest, ExternalCancellationStaysPendingWhenErrorsWin) {
  // asyncio: errors win over the owner's own cancellation, which stays
  // pending (uncancel() + cancel()) and is delivered at the next suspension.
  rt().block_on([] {
    Future<void> started;
    auto owner = spindle::spawn([started]() mutable {
      try {
        spindle::task_group([&](TaskGroup& tg) {
          Future<void> child_started;
          tg.spawn([child_started]() mutable {
            child_started.set_result();
            try {
              spindle::sleep(10s);
            } catch (const Cancelled&) {
            }
            throw std::runtime_error("failed on cancel");
          });
          child_started.get();
          started.set_result();
          spindle::sleep(10s);
        });
      } catch (const ExceptionGroup&) {
        EXPECT_EQ(spindle::current_task().cancelling(), 1);
        spindle::sleep(10s);  // the pending request is delivered here
      }
    });
    started.get();
    spindle::sleep(2ms);
    owner.cancel();
    EXPECT_THROW(owner.get(), Cancelled);
  });
}

TEST_P(TaskGroupTest, OutsideATaskIsMisuse) {
  EXPECT_THROW(spindle::task_group([](TaskGroup&) {}), InvalidStateError);
}

TEST_P(TaskGroupTest, ManyChildren) {
  long sum = rt().block_on([] {
    std::vector<Task<long>> ts;
    spindle::task_group([&](TaskGroup& tg) {
      for (long i = 0; i < 2000; ++i) {
        ts.push_back(tg.spawn([i] {
          if (i % 3 == 0) {
            spindle::yield();
          }
          return i;
        }));
      }
    });
    long s = 0;
    for (auto& t : ts) {
      s += t.result();
    }
    return s;
  });
  EXPECT_EQ(sum, 2000L * 1999 / 2);
}
