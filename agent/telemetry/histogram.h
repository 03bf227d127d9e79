// LatencyHistogram: the agent's side of the kernel's log-linear latency
// histogram. The bucket layout is not ours to choose: it is the one in
// shunt/abi/flow.h (shunt_hist_bucket), so a per-flow histogram read from the
// kernel folds in bucket by bucket, with no re-binning error, and per-flow
// histograms add up into per-edge ones.
//
// Layout (SHUNT_HIST_BUCKETS = 194): bucket 0 is [0, 1024 ns); each octave
// [2^k, 2^(k+1)) ns for k = 10..33 is cut into 8 equal sub-buckets; bucket
// 193 is [2^34 ns, inf). Every bucket is half-open, [lower, upper).
//
// Quantiles are estimates: linear interpolation inside one bucket (at most
// 12.5% wide), clamped to the smallest and largest values the histogram may
// hold. Counts, sums and the cumulative buckets for Prometheus are exact.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "shunt/abi/flow.h"

namespace shunt::telemetry {

class LatencyHistogram {
 public:
  static constexpr int kBuckets = SHUNT_HIST_BUCKETS;
  static constexpr int kOverflowBucket = SHUNT_HIST_BUCKETS - 1;

  // Counts n samples of value ns. n = 0 is a no-op.
  void Add(uint64_t ns, uint64_t n = 1);

  // Folds in a kernel per-flow histogram (struct shunt_flow_hist's rr_hist and
  // the record's rr_sum_ns). Its count is the sum of its buckets.
  void AddBuckets(const uint32_t (&buckets)[SHUNT_HIST_BUCKETS], uint64_t sum_ns);

  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // Exact sum of the samples, in ns; wraps modulo 2^64 (584 years of latency).
  uint64_t sum_ns() const { return sum_ns_; }
  bool empty() const { return count_ == 0; }
  const std::array<uint64_t, kBuckets>& buckets() const { return buckets_; }

  // Exact integer bounds of bucket i, 0 <= i < kBuckets (anything else is a
  // bug and aborts): shunt_hist_bucket(v) == i iff
  // BucketLower(i) <= v < BucketUpper(i). The overflow bucket's upper bound
  // is UINT64_MAX, which it also holds (there is no larger value to bound it).
  static uint64_t BucketLower(int i);
  static uint64_t BucketUpper(int i);

  // The q-quantile in ns, q in [0, 1] (clamped). Finds the bucket holding
  // rank q * count() and interpolates linearly between its bounds by the
  // rank's position among the bucket's samples; the overflow bucket, having
  // no upper bound, answers its lower bound (2^34 ns). The result is clamped
  // to the range the samples are known to lie in, so a histogram of
  // identical samples from Add() reports that value exactly. Empty -> 0.
  double Quantile(double q) const;

  // For a Prometheus histogram: (le in seconds, cumulative count) at exact
  // bucket boundaries only, increasing: 2^k ns and 1.5 * 2^k ns for
  // k = 10..33, then 2^34 ns (49 entries; 1.5 * 2^34 would fall inside the
  // overflow bucket, so it is not exact and is left out). No +Inf entry: the
  // caller adds +Inf = count().
  //
  // Each count is exact: the samples in buckets whose upper bound is <= le.
  // As buckets are [lower, upper), that is the samples strictly below le; a
  // sample exactly equal to le is counted from the next boundary on, not at
  // le as Prometheus' inclusive "le" would have it. Only samples landing
  // exactly on a boundary (to the nanosecond) are affected.
  std::vector<std::pair<double, uint64_t>> CumulativeBuckets() const;

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  // Bounds on the samples: exact after Add(), bucket bounds after
  // AddBuckets(). Meaningful only when count_ > 0.
  uint64_t min_ns_ = UINT64_MAX;
  uint64_t max_ns_ = 0;
};

// Short human text with 3 significant digits for CLI tables: "850ns",
// "12.3us", "4.98ms", "1.20s". Under 1 us, whole nanoseconds.
std::string FormatDuration(double ns);

}  // namespace shunt::telemetry
