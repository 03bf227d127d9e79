#include "tools/bench/latency_stats.h"

#include <algorithm>
#include <cmath>

namespace shunt::bench {

namespace {

double Us(int64_t ns) { return static_cast<double>(ns) / 1000.0; }

// Nearest rank: the smallest sample with at least q of all samples <= it.
int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<size_t>(std::ceil(q * n));
  if (rank < 1) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

}  // namespace

LatencySummary Summarize(std::vector<int64_t>& ns) {
  LatencySummary s;
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (int64_t v : ns) sum += static_cast<double>(v);
  s.samples = static_cast<int64_t>(ns.size());
  s.min_us = Us(ns.front());
  s.max_us = Us(ns.back());
  s.mean_us = sum / static_cast<double>(ns.size()) / 1000.0;
  s.p50_us = Us(Percentile(ns, 0.50));
  s.p99_us = Us(Percentile(ns, 0.99));
  s.p999_us = Us(Percentile(ns, 0.999));
  return s;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace shunt::bench
