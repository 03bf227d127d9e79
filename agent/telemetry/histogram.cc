#include "agent/telemetry/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shunt::telemetry {
namespace {

// Largest value bucket i can hold (its inclusive upper bound).
uint64_t BucketMax(int i) {
  return i == LatencyHistogram::kOverflowBucket ? UINT64_MAX : LatencyHistogram::BucketUpper(i) - 1;
}

}  // namespace

void LatencyHistogram::Add(uint64_t ns, uint64_t n) {
  if (n == 0) return;  // would otherwise widen min/max with no sample
  buckets_[shunt_hist_bucket(ns)] += n;
  count_ += n;
  sum_ns_ += ns * n;
  min_ns_ = std::min(min_ns_, ns);
  max_ns_ = std::max(max_ns_, ns);
}

void LatencyHistogram::AddBuckets(const uint32_t (&buckets)[SHUNT_HIST_BUCKETS], uint64_t sum_ns) {
  uint64_t n = 0;
  int lo = -1, hi = -1;
  for (int i = 0; i < kBuckets; ++i) {
    if (buckets[i] == 0) continue;
    buckets_[i] += buckets[i];
    n += buckets[i];
    if (lo < 0) lo = i;
    hi = i;
  }
  // No samples: a stray sum would make sum_ns() disagree with count().
  if (n == 0) return;
  count_ += n;
  sum_ns_ += sum_ns;

  // The samples lie within the outer non-empty buckets. The sum narrows that
  // further: the other n - 1 samples are each in [lo_b, hi_b], so
  // min >= sum - (n-1) * hi_b and max <= sum - (n-1) * lo_b; for one sample
  // it is exact. Used only when the sum agrees with the buckets
  // (n * lo_b <= sum <= n * hi_b) and nothing overflows, so a sum the kernel
  // got wrong falls back to the bucket bounds instead of a wrong clamp.
  const uint64_t lo_b = BucketLower(lo);
  const uint64_t hi_b = BucketMax(hi);
  uint64_t lo_bound = lo_b, hi_bound = hi_b;
  uint64_t others = 0;
  if (!__builtin_mul_overflow(n - 1, lo_b, &others) && sum_ns >= others && sum_ns - others >= lo_b)
    hi_bound = std::min(hi_bound, sum_ns - others);
  if (!__builtin_mul_overflow(n - 1, hi_b, &others) && sum_ns >= others && sum_ns - others <= hi_b)
    lo_bound = std::max(lo_bound, sum_ns - others);
  if (lo_bound > hi_bound) lo_bound = lo_b, hi_bound = hi_b;  // inconsistent sum: ignore it
  min_ns_ = std::min(min_ns_, lo_bound);
  max_ns_ = std::max(max_ns_, hi_bound);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.empty()) return;  // its min/max are placeholders
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  min_ns_ = std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

uint64_t LatencyHistogram::BucketLower(int i) {
  if (i < 0 || i >= kBuckets) {
    std::fprintf(stderr, "LatencyHistogram: bucket index %d out of [0, %d)\n", i, kBuckets);
    std::abort();
  }
  if (i == 0) return 0;
  // Bucket 1 + o * SUB + s is sub-bucket s of octave 2^(MIN_SHIFT + o);
  // o = OCTAVES, s = 0 is the overflow bucket, starting at the last octave's end.
  const int k = SHUNT_HIST_MIN_SHIFT + (i - 1) / static_cast<int>(SHUNT_HIST_SUB);
  const uint64_t s = static_cast<uint64_t>((i - 1) % static_cast<int>(SHUNT_HIST_SUB));
  return (uint64_t{1} << k) + (s << (k - SHUNT_HIST_SUB_SHIFT));
}

uint64_t LatencyHistogram::BucketUpper(int i) {
  if (i == kOverflowBucket) return UINT64_MAX;
  return BucketLower(i + 1);
}

double LatencyHistogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  if (!(q > 0)) q = 0;  // also NaN
  if (q > 1) q = 1;
  const double rank = q * static_cast<double>(count_);

  // The first non-empty bucket whose cumulative count reaches the rank; the
  // last non-empty one reaches count_, so the loop always finds one.
  uint64_t before = 0;
  int i = 0;
  for (; i < kOverflowBucket; ++i) {
    const uint64_t c = buckets_[i];
    if (c > 0 && static_cast<double>(before + c) >= rank) break;
    before += c;
  }
  double v = static_cast<double>(BucketLower(i));
  if (i != kOverflowBucket) {
    const double frac = std::clamp(
        (rank - static_cast<double>(before)) / static_cast<double>(buckets_[i]), 0.0, 1.0);
    v += frac * static_cast<double>(BucketUpper(i) - BucketLower(i));
  }
  return std::clamp(v, static_cast<double>(min_ns_), static_cast<double>(max_ns_));
}

std::vector<std::pair<double, uint64_t>> LatencyHistogram::CumulativeBuckets() const {
  std::vector<std::pair<double, uint64_t>> out;
  out.reserve(1 + 2 * SHUNT_HIST_OCTAVES);
  uint64_t cumulative = 0;
  for (int i = 0; i < kOverflowBucket; ++i) {
    cumulative += buckets_[i];
    // Emit where bucket i ends on an octave (bucket 0, sub-bucket 7) or on
    // its midpoint (sub-bucket 3): all 193 fine boundaries would be more
    // series per edge than dashboards need, and 2 per octave keeps 1.5x steps.
    const int sub = (i - 1) % static_cast<int>(SHUNT_HIST_SUB);
    if (i == 0 || sub == 3 || sub == static_cast<int>(SHUNT_HIST_SUB) - 1)
      out.emplace_back(static_cast<double>(BucketUpper(i)) / 1e9, cumulative);
  }
  return out;
}

std::string FormatDuration(double ns) {
  if (std::isnan(ns)) return "nan";
  if (ns < 0) return absl::StrCat("-", FormatDuration(-ns));
  if (std::isinf(ns)) return "inf";
  if (ns < 999.5) return absl::StrFormat("%.0fns", ns);
  struct Unit {
    double scale;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{1e3, "us"}, {1e6, "ms"}, {1e9, "s"}};
  for (const Unit& unit : kUnits) {
    const double v = ns / unit.scale;
    // Thresholds are on the value as it will round, so 999.7 us reads
    // "1.00ms" rather than "1000us".
    if (v < 9.995) return absl::StrFormat("%.2f%s", v, unit.name);
    if (v < 99.95) return absl::StrFormat("%.1f%s", v, unit.name);
    if (v < 999.5 || unit.scale == 1e9) return absl::StrFormat("%.0f%s", v, unit.name);
  }
  return "";  // not reached: seconds take any magnitude
}

}  // namespace shunt::telemetry
