// LatencyHistogram: bucket bounds agree with the kernel's shunt_hist_bucket,
// quantiles, folding kernel histograms in, and the Prometheus buckets.
#include "agent/telemetry/histogram.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "shunt/abi/flow.h"

namespace shunt::telemetry {
namespace {

using H = LatencyHistogram;

TEST(HistogramBucketsTest, BoundsRoundTripThroughTheKernelMappingForEveryBucket) {
  for (int i = 0; i < H::kBuckets; ++i) {
    const uint64_t lower = H::BucketLower(i), upper = H::BucketUpper(i);
    ASSERT_LT(lower, upper) << "bucket " << i;
    EXPECT_EQ(shunt_hist_bucket(lower), static_cast<uint32_t>(i)) << "bucket " << i;
    EXPECT_EQ(shunt_hist_bucket(upper - 1), static_cast<uint32_t>(i)) << "bucket " << i;
    if (i > 0) {
      EXPECT_EQ(H::BucketUpper(i - 1), lower)
          << "bucket " << i << " does not start where the last ended";
      EXPECT_EQ(shunt_hist_bucket(lower - 1), static_cast<uint32_t>(i - 1)) << "bucket " << i;
    }
  }
}

TEST(HistogramBucketsTest, BoundsHaveTheAbiLayout) {
  EXPECT_EQ(H::kBuckets, 194);
  EXPECT_EQ(H::BucketLower(0), 0u);
  EXPECT_EQ(H::BucketUpper(0), 1024u);
  EXPECT_EQ(H::BucketUpper(1), 1152u);  // 1024 + 1024/8
  EXPECT_EQ(H::BucketLower(5), 1536u);  // sub-bucket 4: the octave's midpoint
  EXPECT_EQ(H::BucketLower(9), 2048u);  // next octave
  EXPECT_EQ(H::BucketLower(192), (uint64_t{1} << 33) + 7 * (uint64_t{1} << 30));
  EXPECT_EQ(H::BucketUpper(192), uint64_t{1} << 34);
  EXPECT_EQ(H::BucketLower(193), uint64_t{1} << 34);
  EXPECT_EQ(H::BucketUpper(193), UINT64_MAX);
  EXPECT_EQ(shunt_hist_bucket(UINT64_MAX), 193u);
}

TEST(HistogramTest, EmptyHistogram) {
  H h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.sum_ns(), 0u);
  EXPECT_EQ(h.Quantile(0), 0.0);
  EXPECT_EQ(h.Quantile(0.5), 0.0);
  EXPECT_EQ(h.Quantile(1), 0.0);

  h.Add(5000, 0);  // no samples
  const uint32_t zeros[SHUNT_HIST_BUCKETS] = {};
  h.AddBuckets(zeros, 12345);  // a sum with no samples is not taken
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.sum_ns(), 0u);
  EXPECT_EQ(h.Quantile(0.5), 0.0);
}

TEST(HistogramTest, IdenticalSamplesReportTheExactValue) {
  H h;
  for (int i = 0; i < 1000; ++i) h.Add(5'000'000);
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.sum_ns(), 5'000'000'000u);
  EXPECT_FALSE(h.empty());
  // Without the clamp, p50 would be interpolated to the middle of
  // [4718592, 5242880): 4980736.
  EXPECT_EQ(h.Quantile(0.5), 5e6);
  EXPECT_EQ(h.Quantile(0), 5e6);
  EXPECT_EQ(h.Quantile(0.99), 5e6);
  EXPECT_EQ(h.Quantile(1), 5e6);
}

TEST(HistogramTest, AddWithACountIsRepeatedAdd) {
  H once, repeated;
  once.Add(3000, 5);
  for (int i = 0; i < 5; ++i) repeated.Add(3000);
  EXPECT_EQ(once.count(), 5u);
  EXPECT_EQ(once.sum_ns(), 15000u);
  EXPECT_EQ(once.buckets(), repeated.buckets());
  EXPECT_EQ(once.Quantile(0.5), 3000.0);
}

TEST(HistogramTest, UniformSamplesGiveQuantilesWithinTwoPercent) {
  H h;
  uint64_t n = 0;
  for (uint64_t ns = 1'000'000; ns <= 10'000'000; ns += 1000, ++n) h.Add(ns);  // 1 ms .. 10 ms
  ASSERT_EQ(h.count(), 9001u);
  EXPECT_EQ(h.count(), n);
  EXPECT_NEAR(h.Quantile(0.5), 5.5e6, 0.02 * 5.5e6);
  EXPECT_NEAR(h.Quantile(0.99), 9.91e6, 0.02 * 9.91e6);
  // The ends are clamped to the exact extremes.
  EXPECT_EQ(h.Quantile(0), 1e6);
  EXPECT_EQ(h.Quantile(1), 1e7);
  // q outside [0, 1] is clamped.
  EXPECT_EQ(h.Quantile(-1), 1e6);
  EXPECT_EQ(h.Quantile(2), 1e7);
}

TEST(HistogramTest, QuantilesInBucketZeroInterpolateFromZero) {
  H h;
  h.Add(100);
  h.Add(900);
  // Rank 1 of 2 in [0, 1024): 512, inside [100, 900].
  EXPECT_EQ(h.Quantile(0.5), 512.0);
}

TEST(HistogramTest, OverflowBucketAnswersItsLowerBound) {
  H h;
  h.Add(1'000'000);
  h.Add(uint64_t{1} << 40);
  EXPECT_EQ(h.buckets()[193], 1u);
  EXPECT_EQ(h.Quantile(1), static_cast<double>(uint64_t{1} << 34));
  EXPECT_EQ(h.Quantile(0), 1e6);

  // Only overflow samples: the clamp to the smallest sample wins.
  H big;
  big.Add(uint64_t{1} << 40, 3);
  EXPECT_EQ(big.Quantile(0.5), static_cast<double>(uint64_t{1} << 40));
}

std::vector<uint64_t> SpreadSamples() {
  std::vector<uint64_t> samples;
  for (uint64_t i = 1; i <= 2000; ++i) samples.push_back(i * i * 13 + 300);  // 313 ns .. 52 ms
  return samples;
}

TEST(HistogramTest, KernelBucketsFoldInLikeTheSamplesThemselves) {
  const std::vector<uint64_t> samples = SpreadSamples();
  uint32_t kernel[SHUNT_HIST_BUCKETS] = {};
  uint64_t sum = 0;
  H added;
  for (uint64_t ns : samples) {
    ++kernel[shunt_hist_bucket(ns)];  // what the BPF side does
    sum += ns;
    added.Add(ns);
  }
  H folded;
  folded.AddBuckets(kernel, sum);
  EXPECT_EQ(folded.count(), 2000u);
  EXPECT_EQ(folded.sum_ns(), added.sum_ns());
  EXPECT_EQ(folded.buckets(), added.buckets());
  for (double q : {0.1, 0.25, 0.5, 0.75, 0.9, 0.99})
    EXPECT_EQ(folded.Quantile(q), added.Quantile(q)) << "q = " << q;
  // At the ends only bucket bounds are known, not the exact extremes.
  EXPECT_EQ(folded.Quantile(0), 0.0);  // 313 ns is in bucket 0, [0, 1024)
  EXPECT_EQ(added.Quantile(0), 313.0);
  EXPECT_EQ(folded.Quantile(1),
            static_cast<double>(H::BucketUpper(shunt_hist_bucket(52'000'300)) - 1));
  EXPECT_EQ(added.Quantile(1), 52'000'300.0);
}

TEST(HistogramTest, KernelHistogramOfOneSampleIsExactThroughItsSum) {
  uint32_t kernel[SHUNT_HIST_BUCKETS] = {};
  ++kernel[shunt_hist_bucket(5'000'000)];
  H h;
  h.AddBuckets(kernel, 5'000'000);
  EXPECT_EQ(h.Quantile(0), 5e6);
  EXPECT_EQ(h.Quantile(0.5), 5e6);
  EXPECT_EQ(h.Quantile(1), 5e6);
}

TEST(HistogramTest, KernelSumThatDisagreesWithItsBucketsIsNotUsedToClamp) {
  uint32_t kernel[SHUNT_HIST_BUCKETS] = {};
  kernel[shunt_hist_bucket(5'000'000)] = 1;  // [4718592, 5242880)
  H h;
  h.AddBuckets(kernel, 7);  // impossible for a sample in that bucket
  EXPECT_EQ(h.sum_ns(), 7u);
  EXPECT_EQ(h.Quantile(0), 4718592.0);
  EXPECT_EQ(h.Quantile(0.5), 4980736.0);  // the bucket's middle
  EXPECT_EQ(h.Quantile(1), 5242879.0);
}

TEST(HistogramTest, MergeAddsCountsSumsAndBuckets) {
  const std::vector<uint64_t> samples = SpreadSamples();
  H all, even, odd;
  for (size_t i = 0; i < samples.size(); ++i) {
    all.Add(samples[i]);
    (i % 2 == 0 ? even : odd).Add(samples[i]);
  }
  ASSERT_NE(even.count(), 0u);
  ASSERT_NE(odd.count(), 0u);
  H merged = even;
  merged.Merge(odd);
  EXPECT_EQ(merged.count(), even.count() + odd.count());
  EXPECT_EQ(merged.count(), 2000u);
  EXPECT_EQ(merged.sum_ns(), even.sum_ns() + odd.sum_ns());
  EXPECT_EQ(merged.sum_ns(), all.sum_ns());
  EXPECT_EQ(merged.buckets(), all.buckets());
  for (double q : {0.0, 0.5, 0.9, 1.0})
    EXPECT_EQ(merged.Quantile(q), all.Quantile(q)) << "q = " << q;
}

TEST(HistogramTest, MergingAnEmptyHistogramChangesNothing) {
  H h;
  h.Add(5'000'000, 10);
  h.Merge(H{});
  EXPECT_EQ(h.count(), 10u);
  EXPECT_EQ(h.Quantile(0), 5e6);  // the empty one's placeholder min/max not taken
  EXPECT_EQ(h.Quantile(1), 5e6);

  H into;
  into.Merge(h);
  EXPECT_EQ(into.count(), 10u);
  EXPECT_EQ(into.sum_ns(), 50'000'000u);
  EXPECT_EQ(into.Quantile(0.5), 5e6);
}

// The exact boundaries CumulativeBuckets promises, in ns.
std::vector<uint64_t> ExpectedBoundariesNs() {
  std::vector<uint64_t> out;
  for (int k = 10; k <= 33; ++k) {
    out.push_back(uint64_t{1} << k);
    out.push_back(uint64_t{3} << (k - 1));
  }
  out.push_back(uint64_t{1} << 34);
  return out;
}

TEST(HistogramPrometheusTest, EmptyHistogramHasEveryBoundaryAtZero) {
  const auto cumulative = H{}.CumulativeBuckets();
  const std::vector<uint64_t> expected = ExpectedBoundariesNs();
  ASSERT_EQ(cumulative.size(), 49u);
  ASSERT_EQ(cumulative.size(), expected.size());
  for (size_t j = 0; j < expected.size(); ++j) {
    EXPECT_EQ(cumulative[j].first, static_cast<double>(expected[j]) / 1e9) << "entry " << j;
    EXPECT_EQ(cumulative[j].second, 0u) << "entry " << j;
  }
  EXPECT_DOUBLE_EQ(cumulative.front().first, 1.024e-6);
  EXPECT_DOUBLE_EQ(cumulative[1].first, 1.536e-6);
  EXPECT_DOUBLE_EQ(cumulative.back().first, 17.179869184);
}

TEST(HistogramPrometheusTest, CountsAreExactAndMonotone) {
  std::vector<uint64_t> samples = SpreadSamples();
  samples.push_back(uint64_t{1} << 35);  // overflow: only in +Inf
  H h;
  for (uint64_t ns : samples) h.Add(ns);
  const auto cumulative = h.CumulativeBuckets();
  const std::vector<uint64_t> boundaries = ExpectedBoundariesNs();
  ASSERT_EQ(cumulative.size(), boundaries.size());
  for (size_t j = 0; j < boundaries.size(); ++j) {
    uint64_t below = 0;
    for (uint64_t ns : samples) below += ns < boundaries[j];
    EXPECT_EQ(cumulative[j].second, below) << "le = " << boundaries[j] << " ns";
    if (j > 0) {
      EXPECT_GT(cumulative[j].first, cumulative[j - 1].first);
      EXPECT_GE(cumulative[j].second, cumulative[j - 1].second);
    }
  }
  EXPECT_EQ(cumulative.back().second, h.count() - 1);
}

TEST(HistogramPrometheusTest, ASampleOnABoundaryCountsFromTheNextOne) {
  // Buckets are [lower, upper): le counts samples strictly below it, unlike
  // Prometheus' inclusive le. Pinned so a change is deliberate.
  constexpr uint64_t k2Pow20 = uint64_t{1} << 20;
  H h;
  h.Add(k2Pow20 - 1);
  h.Add(k2Pow20);
  const auto cumulative = h.CumulativeBuckets();
  const std::vector<uint64_t> boundaries = ExpectedBoundariesNs();
  size_t at = 0;
  while (boundaries[at] != k2Pow20) ++at;
  EXPECT_EQ(cumulative[at].first, static_cast<double>(k2Pow20) / 1e9);
  EXPECT_EQ(cumulative[at - 1].second, 0u);  // le = 1.5 * 2^19 ns
  EXPECT_EQ(cumulative[at].second, 1u);      // le = 2^20 ns: 2^20 - 1 only
  EXPECT_EQ(cumulative[at + 1].second, 2u);  // le = 1.5 * 2^20 ns
}

TEST(HistogramFormatTest, ThreeSignificantDigits) {
  EXPECT_EQ(FormatDuration(0), "0ns");
  EXPECT_EQ(FormatDuration(850), "850ns");
  EXPECT_EQ(FormatDuration(999.4), "999ns");
  EXPECT_EQ(FormatDuration(999.6), "1.00us");
  EXPECT_EQ(FormatDuration(1234), "1.23us");
  EXPECT_EQ(FormatDuration(12'345), "12.3us");
  EXPECT_EQ(FormatDuration(99'960), "100us");
  EXPECT_EQ(FormatDuration(999'700), "1.00ms");  // not "1000us"
  EXPECT_EQ(FormatDuration(4'980'000), "4.98ms");
  EXPECT_EQ(FormatDuration(1.2e9), "1.20s");
  EXPECT_EQ(FormatDuration(3600e9), "3600s");
  EXPECT_EQ(FormatDuration(-12'345), "-12.3us");
}

}  // namespace
}  // namespace shunt::telemetry
