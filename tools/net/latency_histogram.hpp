// A log-linear latency histogram for the echo load client: 64 linear
// sub-buckets per power of two of nanoseconds, so any recorded value is
// reported within 1/128 (0.8%) of its true value (the bucket's middle), with an O(1) record and
// 8 KiB of counters per connection. Values are clamped at 2^36 ns (69 s).
// Percentiles are read after the histograms of every connection are merged.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace spindle_tools {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per octave
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMaxBits = 36;
  static constexpr int kOctaves = kMaxBits - kSubBits;
  static constexpr std::uint64_t kClamp = (std::uint64_t{1} << kMaxBits) - 1;

  void record(std::uint64_t ns) {
    ++counts_[index(ns < kClamp ? ns : kClamp)];
    ++total_;
    if (ns > max_) {
      max_ = ns;
    }
  }

  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      counts_[i] += other.counts_[i];
    }
    total_ += other.total_;
    if (other.max_ > max_) {
      max_ = other.max_;
    }
  }

  std::uint64_t total() const { return total_; }
  std::uint64_t max() const { return max_; }

  // The q-quantile (q in [0, 1]): the middle of the bucket that holds the
  // sample of rank q * total.
  double quantile(double q) const {
    if (total_ == 0) {
      return 0;
    }
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    if (rank >= total_) {
      rank = total_ - 1;
    }
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) {
        return static_cast<double>(lower_bound(i)) + static_cast<double>(width(i) - 1) / 2;
      }
    }
    return static_cast<double>(max_);
  }

 private:
  // Values below kSub get a bucket each; above, the octave (position of the
  // top bit) picks a row and the next kSubBits bits the column.
  static std::size_t index(std::uint64_t v) {
    if (v < kSub) {
      return static_cast<std::size_t>(v);
    }
    const int top = 63 - std::countl_zero(v);  // >= kSubBits
    const int shift = top - kSubBits;
    const auto column = static_cast<std::size_t>((v >> shift) & (kSub - 1));
    return static_cast<std::size_t>(shift + 1) * kSub + column;
  }

  static std::uint64_t lower_bound(std::size_t i) {
    if (i < kSub) {
      return i;
    }
    const std::size_t shift = i / kSub - 1;
    const std::uint64_t column = i % kSub;
    return (std::uint64_t{kSub} | column) << shift;
  }

  static std::uint64_t width(std::size_t i) {
    return i < 2 * kSub ? 1 : std::uint64_t{1} << (i / kSub - 1);
  }

  std::array<std::uint32_t, static_cast<std::size_t>(kOctaves + 1) * kSub> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace spindle_tools
