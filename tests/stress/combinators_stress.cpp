// Stress: gather, wait, as_completed, wait_for, timeout and task_group under
// concurrency and random cancellation, across workers and plain threads.
//
// Conservation: every child is accounted for — it ran to a value, threw, or
// was cancelled (inside its body, or before it started), exactly once, and
// what each combinator reported agrees with the children's final states.
// A hang aborts with a task dump instead of timing out silently.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spindle/combinators.hpp>
#include <spindle/task_group.hpp>

#include "runtime_fixture.hpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::ExceptionGroup;
using spindle::Future;
using spindle::ReturnWhen;
using spindle::Task;
using spindle::TaskGroup;
using spindle::TimeoutError;
using spindle::stress::await_bounded;
using spindle::stress::mix;
using spindle::testing::RuntimeTest;
using spindle::testing::scaled;

namespace {

constexpr auto kHang = 60s;
// A hang report prints the whole task dump, not just its first lines: with at
// most kWindow rounds in flight, every live task fits.
constexpr int kHangDumpLines = spindle::stress::kWholeDump;

// What the children did, counted from inside their bodies.
struct Tally {
  std::atomic<long> entered{0};
  std::atomic<long> returned{0};
  std::atomic<long> threw{0};
  std::atomic<long> cancelled_inside{0};
};

// A child's body with a random behaviour: return at once, after a yield,
// after a short sleep, or throw (after a yield).
int random_child_body(Tally& t, std::uint64_t r, int value = 0) {
  ++t.entered;
  try {
    switch (r % 5) {
      case 0:
        break;
      case 1:
        spindle::yield();
        break;
      case 2:
        spindle::sleep(std::chrono::microseconds(r % 300));
        break;
      case 3:
        spindle::sleep(std::chrono::microseconds(r % 2000));
        break;
      default:
        spindle::yield();
        ++t.threw;
        throw std::runtime_error("child failed");
    }
  } catch (const Cancelled&) {
    ++t.cancelled_inside;
    throw;
  }
  ++t.returned;
  return value;
}

Task<int> random_child(Tally& t, std::uint64_t r, int value) {
  return spindle::spawn([&t, r, value] { return random_child_body(t, r, value); });
}

// Final states of a set of finished children, checked against the tally.
void account(const std::vector<Task<int>>& kids, const Tally& t) {
  long values = 0;
  long failed = 0;
  long cancelled = 0;
  for (const auto& k : kids) {
    ASSERT_TRUE(k.done());
    switch (k.core()->status()) {
      case spindle::detail::Status::kResult:
        ++values;
        break;
      case spindle::detail::Status::kException:
        ++failed;
        (void)k.core()->error_for_outcome();
        break;
      default:
        ++cancelled;
        break;
    }
  }
  EXPECT_EQ(values + failed + cancelled, static_cast<long>(kids.size()));
  EXPECT_EQ(values, t.returned.load());
  EXPECT_EQ(failed, t.threw.load());
  EXPECT_EQ(t.entered.load(), t.returned.load() + t.threw.load() + t.cancelled_inside.load());
  // Cancelled = cancelled inside the body, or before it ever started.
  EXPECT_EQ(cancelled,
            t.cancelled_inside.load() + static_cast<long>(kids.size()) - t.entered.load());
}

// Rounds in flight at once: enough for real concurrency, few enough that no
// worker's run queue overflows its 256-entry ring. (An overflow racing a
// steal deadlocks the core scheduler today: Worker::refill_from_overflow
// re-enters overflow_lock_; these tests stress the combinators, not that.)
constexpr long kWindow = 8;

template <class T>
void settle(Task<T>& t) {
  try {
    (void)t.get();
  } catch (const Cancelled&) {
  }
}

// Waits until the children of an old round are done too (a gather or wait
// may return while some of them still run).
void settle_kids(const std::vector<Task<int>>& kids) {
  for (const auto& k : kids) {
    k.core()->wait();
  }
}

bool any_status(const std::vector<Task<int>>& kids, spindle::detail::Status s) {
  for (const auto& k : kids) {
    if (k.core()->status() == s) {
      return true;
    }
  }
  return false;
}

}  // namespace

class CombinatorsStress : public RuntimeTest {};
SPINDLE_WORKER_PARAMS(CombinatorsStress);

// Many gathers at once; a random child or the gatherer itself gets
// cancelled. The gatherer's outcome must agree with its children.
TEST_P(CombinatorsStress, GatherStormWithRandomCancellation) {
  const long rounds = scaled(300);
  static constexpr int kKids = 8;
  Tally tally;
  std::atomic<long> wrong{0};
  std::vector<Task<int>> all_kids;
  auto main = rt().spawn([&] {
    std::vector<Task<void>> gatherers;
    std::vector<std::vector<Task<int>>> round_kids;
    for (long round = 0; round < rounds; ++round) {
      std::uint64_t seed = mix(static_cast<std::uint64_t>(round) * 7919 + workers());
      std::vector<Task<int>> kids;
      for (int i = 0; i < kKids; ++i) {
        kids.push_back(random_child(tally, mix(seed + i), i));
      }
      all_kids.insert(all_kids.end(), kids.begin(), kids.end());
      round_kids.push_back(kids);
      auto gatherer = spindle::spawn([kids, &wrong] {
        try {
          auto v = spindle::gather(kids);
          for (int i = 0; i < kKids; ++i) {
            if (v[i] != i || !kids[i].done()) {
              ++wrong;
            }
          }
        } catch (const std::runtime_error&) {
          if (!any_status(kids, spindle::detail::Status::kException)) {
            ++wrong;  // reported a failure no child had
          }
        } catch (const Cancelled&) {
          throw;  // checked below
        }
      });
      gatherers.push_back(gatherer);
      if (round >= kWindow) {
        settle(gatherers[round - kWindow]);
        settle_kids(round_kids[round - kWindow]);
      }
      switch (seed % 4) {
        case 0:
          spindle::spawn([gatherer, seed]() mutable {
            for (std::uint64_t i = 0; i < seed % 3; ++i) {
              spindle::yield();
            }
            gatherer.cancel("round over");
          });
          break;
        case 1:
          spindle::spawn([k = kids[seed % kKids]]() mutable { k.cancel(); });
          break;
        default:
          break;
      }
    }
    for (auto& g : gatherers) {
      try {
        g.get();
      } catch (const Cancelled&) {
      }
    }
    for (auto& k : all_kids) {
      k.core()->wait();
    }
  });
  await_bounded(rt(), main, "gather storm", kHang, kHangDumpLines);
  account(all_kids, tally);
  EXPECT_EQ(wrong.load(), 0);
}

// Many waits with random conditions and timeouts over children that finish,
// fail, or never finish (until cancelled afterwards); some waiters are
// cancelled, which must not cancel the futures.
TEST_P(CombinatorsStress, WaitStormPartitionsAgreeWithConditions) {
  const long rounds = scaled(300);
  static constexpr int kKids = 6;
  std::atomic<long> wrong{0};
  std::atomic<long> checked{0};
  auto main = rt().spawn([&] {
    std::vector<Task<void>> waiters;
    std::vector<std::vector<Task<int>>> round_kids;
    std::vector<Future<int>> unset;  // plain futures nobody sets
    std::vector<Task<int>> kids_all;
    Tally tally;
    for (long round = 0; round < rounds; ++round) {
      std::uint64_t seed = mix(static_cast<std::uint64_t>(round) * 104729 + workers());
      std::vector<Future<int>> fs;
      round_kids.emplace_back();
      for (int i = 0; i < kKids; ++i) {
        if (mix(seed + i) % 7 == 0) {
          Future<int> f;
          unset.push_back(f);
          fs.push_back(f);
        } else {
          auto k = random_child(tally, mix(seed + i), i);
          kids_all.push_back(k);
          round_kids.back().push_back(k);
          fs.push_back(k);
        }
      }
      const auto mode = static_cast<ReturnWhen>(seed % 3);
      std::optional<spindle::Duration> timeout;
      if ((seed >> 8) % 3 == 0) {
        timeout = std::chrono::microseconds((seed >> 12) % 1500);
      }
      const bool has_unset = std::any_of(fs.begin(), fs.end(), [&](const Future<int>& f) {
        return std::find(unset.begin(), unset.end(), f) != unset.end();
      });
      if (has_unset && !timeout) {
        timeout = 2ms;  // it might never return otherwise
      }
      auto waiter = spindle::spawn([fs, mode, timeout, &wrong, &checked] {
        auto [done, pending] = spindle::wait(fs, mode, timeout);
        ++checked;
        if (done.size() + pending.size() != fs.size()) {
          ++wrong;
        }
        for (auto& d : done) {
          if (!d.done()) {
            ++wrong;
          }
        }
        if (!timeout) {
          bool failed = false;
          for (auto& d : done) {
            failed = failed || d.core()->status() == spindle::detail::Status::kException;
          }
          if ((mode == ReturnWhen::AllCompleted && !pending.empty()) ||
              (mode == ReturnWhen::FirstCompleted && done.empty()) ||
              (mode == ReturnWhen::FirstException && !pending.empty() && !failed)) {
            ++wrong;
          }
        }
      });
      waiters.push_back(waiter);
      if (round >= kWindow) {
        settle(waiters[round - kWindow]);
        settle_kids(round_kids[round - kWindow]);
      }
      if ((seed >> 20) % 5 == 0) {
        spindle::spawn([waiter]() mutable { waiter.cancel(); });
      }
    }
    for (auto& w : waiters) {
      try {
        w.get();
      } catch (const Cancelled&) {
      }
    }
    for (auto& f : unset) {
      // Only we cancel these: a cancelled waiter must not have.
      if (f.done()) {
        ++wrong;
      }
      f.cancel();
    }
    for (auto& k : kids_all) {
      k.core()->wait();
    }
    account(kids_all, tally);
    // Nobody cancelled a task child: waiters never cancel what they wait on.
    EXPECT_EQ(tally.cancelled_inside.load(), 0);
  });
  await_bounded(rt(), main, "wait storm", kHang, kHangDumpLines);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(checked.load(), 0);
}

// Many as_completed consumers: each future is handed out exactly once, in a
// done state, unless the consumer times out or is cancelled.
TEST_P(CombinatorsStress, AsCompletedStormHandsOutEachFutureOnce) {
  const long rounds = scaled(200);
  static constexpr int kKids = 8;
  std::atomic<long> wrong{0};
  Tally tally;
  std::vector<Task<int>> all_kids;
  auto main = rt().spawn([&] {
    std::vector<Task<void>> consumers;
    std::vector<std::vector<Task<int>>> round_kids;
    for (long round = 0; round < rounds; ++round) {
      std::uint64_t seed = mix(static_cast<std::uint64_t>(round) * 15485863 + workers());
      std::vector<Task<int>> kids;
      for (int i = 0; i < kKids; ++i) {
        kids.push_back(random_child(tally, mix(seed + i), i));
      }
      all_kids.insert(all_kids.end(), kids.begin(), kids.end());
      round_kids.push_back(kids);
      std::optional<spindle::Duration> timeout;
      if (seed % 4 == 0) {
        timeout = std::chrono::microseconds((seed >> 4) % 1000);
      }
      auto consumer = spindle::spawn([kids, timeout, &wrong] {
        std::set<spindle::detail::FutureCore*> seen;
        auto ac = spindle::as_completed(kids, timeout);
        try {
          for (auto& f : ac) {
            if (!f.done() || !seen.insert(f.core()).second) {
              ++wrong;
            }
          }
          if (seen.size() != kids.size()) {
            ++wrong;
          }
        } catch (const TimeoutError&) {
          if (!timeout || seen.size() + ac.remaining() != kids.size()) {
            ++wrong;
          }
        }
      });
      consumers.push_back(consumer);
      if (round >= kWindow) {
        settle(consumers[round - kWindow]);
        settle_kids(round_kids[round - kWindow]);
      }
      if ((seed >> 16) % 6 == 0) {
        spindle::spawn([consumer]() mutable { consumer.cancel(); });
      }
    }
    for (auto& c : consumers) {
      try {
        c.get();
      } catch (const Cancelled&) {
      }
    }
    for (auto& k : all_kids) {
      k.core()->wait();
    }
  });
  await_bounded(rt(), main, "as_completed storm", kHang, kHangDumpLines);
  account(all_kids, tally);
  EXPECT_EQ(tally.cancelled_inside.load(), 0);  // as_completed cancels nothing
  EXPECT_EQ(wrong.load(), 0);
}

// Many task groups at once, children failing at random, grandchildren
// spawned by children, owners cancelled at random from outside.
TEST_P(CombinatorsStress, TaskGroupStormAccountsForEveryChild) {
  const long rounds = scaled(200);
  std::atomic<long> wrong{0};
  std::atomic<long> groups_failed{0};
  auto main = rt().spawn([&] {
    std::vector<Task<void>> owners;
    std::vector<std::shared_ptr<std::atomic<bool>>> cancel_sent;
    for (long round = 0; round < rounds; ++round) {
      std::uint64_t seed = mix(static_cast<std::uint64_t>(round) * 3571 + workers());
      auto sent = std::make_shared<std::atomic<bool>>(false);
      cancel_sent.push_back(sent);
      auto owner = spindle::spawn([seed, sent, &wrong, &groups_failed] {
        std::mutex mu;
        std::vector<Task<int>> kids;  // guarded by mu
        Tally tally;
        auto record = [&](Task<int> t) {
          std::lock_guard<std::mutex> l(mu);
          kids.push_back(std::move(t));
        };
        std::size_t reported = 0;
        bool cancelled = false;
        bool refused = false;
        try {
          spindle::task_group([&](TaskGroup& tg) {
            for (int i = 0; i < 6 && !refused; ++i) {
              std::uint64_t r = mix(seed + i);
              if (r % 3 == 0) {
                // A child that spawns a grandchild into the same group.
                auto spawn_parent = [&] {
                  return tg.spawn([&tg, &record, &tally, r] {
                    try {
                      record(tg.spawn([&tally, r] { return random_child_body(tally, r >> 3); }));
                    } catch (const spindle::InvalidStateError&) {
                      // The group began shutting down meanwhile.
                    }
                    return random_child_body(tally, r >> 5);
                  });
                };
                try {
                  record(spawn_parent());
                } catch (const spindle::InvalidStateError&) {
                  refused = true;
                }
              } else {
                try {
                  record(tg.spawn([&tally, r] { return random_child_body(tally, r); }));
                } catch (const spindle::InvalidStateError&) {
                  // A child failed on another worker already: the group is
                  // shutting down (asyncio raises RuntimeError here too).
                  refused = true;
                }
              }
            }
            spindle::sleep(std::chrono::microseconds(seed % 500));
          });
        } catch (const ExceptionGroup& g) {
          reported = g.exceptions().size();
          ++groups_failed;
        } catch (const Cancelled&) {
          cancelled = true;
        }
        std::lock_guard<std::mutex> l(mu);
        long failed = 0;
        for (auto& k : kids) {
          if (!k.done()) {
            ++wrong;  // task_group returned with a child still running
          }
          if (k.core()->status() == spindle::detail::Status::kException) {
            ++failed;
          }
        }
        if (static_cast<long>(reported) != failed || failed != tally.threw.load()) {
          ++wrong;
        }
        if (refused && failed == 0) {
          ++wrong;  // refused to spawn without any failure
        }
        if (cancelled && (failed != 0 || !sent->load())) {
          ++wrong;  // Cancelled only for an outside cancellation without errors
        }
        if (!sent->load() && spindle::current_task().cancelling() != 0) {
          ++wrong;  // the group's own cancellation was not absorbed
        }
      });
      owners.push_back(owner);
      if (round >= kWindow) {
        settle(owners[round - kWindow]);
      }
      if (seed % 5 == 0) {
        spindle::spawn([owner, sent]() mutable {
          sent->store(true);
          owner.cancel();
        });
      }
    }
    for (auto& o : owners) {
      try {
        o.get();
      } catch (const Cancelled&) {
      }
    }
  });
  await_bounded(rt(), main, "task_group storm", kHang, kHangDumpLines);
  EXPECT_EQ(wrong.load(), 0);
}

// wait_for and timeout racing the deadline: either the value or
// TimeoutError, the child cancelled in the latter case, and the waiting
// task's cancel count balanced afterwards.
TEST_P(CombinatorsStress, DeadlinesRacingCompletion) {
  const long rounds = scaled(400);
  std::atomic<long> wrong{0};
  std::atomic<long> timeouts{0};
  auto main = rt().spawn([&] {
    std::vector<Task<void>> waiters;
    for (long round = 0; round < rounds; ++round) {
      std::uint64_t seed = mix(static_cast<std::uint64_t>(round) * 6151 + workers());
      waiters.push_back(spindle::spawn([seed, &wrong, &timeouts] {
        auto work = std::chrono::microseconds(seed % 400);
        auto limit = std::chrono::microseconds((seed >> 10) % 400);
        if (seed % 2 == 0) {
          auto child = spindle::spawn([work] {
            spindle::sleep(work);
            return 1;
          });
          try {
            if (spindle::wait_for(child, limit) != 1) {
              ++wrong;
            }
          } catch (const TimeoutError&) {
            ++timeouts;
            if (!child.cancelled()) {
              ++wrong;
            }
          }
        } else {
          bool expired = false;
          try {
            int v = spindle::timeout(limit, [&](spindle::Timeout& tm) {
              try {
                spindle::sleep(work);
              } catch (const Cancelled&) {
                expired = tm.expired();
                throw;
              }
              return 2;
            });
            if (v != 2) {
              ++wrong;
            }
          } catch (const TimeoutError&) {
            ++timeouts;
            if (!expired) {
              ++wrong;  // TimeoutError only for a Cancelled this timeout caused
            }
          }
        }
        if (spindle::current_task().cancelling() != 0) {
          ++wrong;
        }
        spindle::yield();  // no stray cancellation may be left pending
      }));
      if (round >= 4 * kWindow) {
        waiters[round - 4 * kWindow].get();
      }
    }
    for (auto& w : waiters) {
      w.get();
    }
  });
  await_bounded(rt(), main, "deadline storm", kHang, kHangDumpLines);
  EXPECT_EQ(wrong.load(), 0);
}

// Plain threads gathering, waiting and iterating on runtime tasks while the
// runtime is busy with other gathers.
TEST_P(CombinatorsStress, PlainThreadsUseTheCombinators) {
  const long rounds = scaled(100);
  std::atomic<long> wrong{0};
  auto body = [&](int which) {
    for (long r = 0; r < rounds; ++r) {
      std::vector<Task<long>> ts;
      for (long i = 0; i < 5; ++i) {
        ts.push_back(rt().spawn([i, r] {
          if ((i + r) % 2 == 0) {
            spindle::yield();
          }
          return i;
        }));
      }
      if (which == 0) {
        auto v = spindle::gather(ts);
        if (v != std::vector<long>{0, 1, 2, 3, 4}) {
          ++wrong;
        }
      } else if (which == 1) {
        auto res = spindle::wait(ts, ReturnWhen::AllCompleted, 30s);
        if (res.done.size() != 5) {
          ++wrong;
        }
      } else {
        long n = 0;
        for (auto& f : spindle::as_completed(ts)) {
          n += f.get() >= 0;
        }
        if (n != 5) {
          ++wrong;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back(body, i);
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(wrong.load(), 0);
}
