// Percentiles of round-trip samples.
#pragma once

#include <cstdint>
#include <vector>

namespace shunt::bench {

struct LatencySummary {
  int64_t samples = 0;
  double min_us = 0, mean_us = 0, p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};

// Nearest-rank percentiles of `ns` (nanoseconds; sorted in place).
LatencySummary Summarize(std::vector<int64_t>& ns);

// The median of per-round values (the mean of the middle two for an even
// count; 0 for none).
double Median(std::vector<double> v);

}  // namespace shunt::bench
