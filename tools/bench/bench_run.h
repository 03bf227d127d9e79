// One benchmark run: a simulated node with two pods (client, server) and the
// three paths measured on it in interleaved rounds. The node (namespaces,
// cgroups, pins, agent, haproxies) is torn down before RunBench returns, on
// every path out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/counters.h"
#include "tools/bench/latency_stats.h"
#include "tools/bench/options.h"
#include "tools/bench/workloads.h"

namespace shunt::bench {

struct PathResult {
  std::string name;
  int round = 0;  // 1-based
  LatencySummary rr;
  BulkResult bulk;
  // Bytes through the node side of the client pod's veth during each test:
  // the short-circuit keeps payload off it.
  uint64_t rr_veth_bytes = 0, bulk_veth_bytes = 0;
  // Data-path counter deltas during each test, when an agent was running.
  std::optional<lib::Counters> rr_counters, bulk_counters;
};

// Every round's measurements, one entry per round in the order run (all three
// vectors have opts.rounds entries).
struct BenchResults {
  std::vector<PathResult> kernel, shunt, haproxy;
};

// Order: opts.rounds rounds of { kernel (no agent); shunt (agent started with
// opts.agent_flags, pods meshed); agent stopped (SIGTERM) and uninstalled },
// then opts.rounds rounds of haproxy (a fresh sidecar chain each). Every round
// uses its own ports (base + 10 x round index), so connections are always
// fresh. Progress goes to stderr. Errors: whatever set-up step failed, with
// its cause; FailedPrecondition when any shunt round's counters show that
// nothing was short-circuited.
absl::StatusOr<BenchResults> RunBench(const Options& opts);

}  // namespace shunt::bench
