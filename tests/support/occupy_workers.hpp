// Keeps every worker but the calling task's busy, so that a task spawned
// meanwhile cannot start: "the event loop is not running yet".
#pragma once

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <spindle/spindle.hpp>

#include "polling.hpp"

namespace spindle::testing {

// Call from a task of a runtime with `workers` workers. The blockers spin
// without suspending until release() (or destruction); ok() says whether
// all of them were running within 5 s.
class OccupyOtherWorkers {
 public:
  explicit OccupyOtherWorkers(unsigned workers) {
    for (unsigned i = 1; i < workers; ++i) {
      blockers_.push_back(spindle::spawn([this] {
        ++running_;
        spin_until(release_);
      }));
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (running_.load() < static_cast<int>(workers) - 1 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ok_ = running_.load() == static_cast<int>(workers) - 1;
  }
  OccupyOtherWorkers(const OccupyOtherWorkers&) = delete;
  OccupyOtherWorkers& operator=(const OccupyOtherWorkers&) = delete;
  ~OccupyOtherWorkers() {
    if (!blockers_.empty()) {
      release();
    }
  }

  bool ok() const { return ok_; }
  void release() {
    release_ = true;
    for (auto& b : blockers_) {
      b.get();
    }
    blockers_.clear();
  }

 private:
  std::atomic<int> running_{0};
  std::atomic<bool> release_{false};
  std::vector<Task<void>> blockers_;
  bool ok_ = false;
};

}  // namespace spindle::testing
