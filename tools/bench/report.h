// Presenting a run: the comparison table of medians over rounds, the
// per-round values and the target verdicts on stdout, and every round's
// numbers plus the medians with machine facts and parameters as JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/bench/bench_run.h"
#include "tools/bench/options.h"

namespace shunt::bench {

struct SystemInfo {
  std::string kernel_release;       // uname -r
  std::string uname;                // sysname release version machine
  long cpus = 0;                    // online CPUs
  std::string date_utc;             // ISO 8601, when the run ended
  int32_t cpu_dma_latency_us = -1;  // read back while held
};

SystemInfo CollectSystemInfo(int32_t cpu_dma_latency_us);

// One path's numbers reduced over rounds: each field is the median over
// rounds of that field (rr.samples: samples per round).
struct PathMedians {
  LatencySummary rr;
  double bulk_gbit_per_s = 0;
  double bulk_veth_bytes = 0;
};
PathMedians MediansOf(const std::vector<PathResult>& rounds);

// The targets from the benchmark issue, against the shunt/kernel ratios of
// the medians over rounds.
struct Target {
  std::string what;  // "rr p50 <= 0.70x kernel"
  double ratio = 0;  // median(shunt) / median(kernel)
  double limit = 0;
  bool at_most = true;  // ratio must be <= limit (latency) or >= limit (throughput)
  bool met = false;
  std::vector<double> round_ratios;  // shunt / kernel of the same round, for reference
};
std::vector<Target> EvaluateTargets(const BenchResults& r);

void PrintReport(FILE* out, const BenchResults& r, const SystemInfo& sys, const Options& opts);

// Errors: the path cannot be written.
absl::Status WriteJson(const std::string& path, const BenchResults& r, const SystemInfo& sys,
                       const Options& opts);

}  // namespace shunt::bench
