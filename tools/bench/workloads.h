// The two measurements every path gets, each on one fresh connection whose
// client and server ends are driven by two threads of this process.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "tools/bench/connection.h"
#include "tools/bench/latency_stats.h"

namespace shunt::bench {

inline constexpr size_t kRrMessageBytes = 64;
inline constexpr size_t kBulkWriteBytes = 128 * 1024;
inline constexpr size_t kBulkReadBytes = 1024 * 1024;

// Request/response: the client sends 64 bytes, the server echoes them, the
// client times each round trip with steady_clock. `warmup` round trips are
// not sampled. Errors: I/O errors of either side; DataLoss when an echo
// differs from what was sent.
absl::StatusOr<LatencySummary> RunRequestResponse(Connection conn, int warmup, int iterations);

struct BulkResult {
  uint64_t bytes_sent = 0;      // by the client, all of it
  uint64_t bytes_measured = 0;  // received by the server after its first read
  double server_seconds = 0;    // first read returned -> last data read returned
  double client_seconds = 0;    // first write started -> last write returned (>= the
                                // duration asked for; more if a write stalled)
  double gbit_per_s = 0;        // bytes_measured * 8 / server_seconds
};

// One stream: the client writes 128 KiB chunks for `seconds`, then shuts down
// its write side; the server reads into a 1 MiB buffer and discards. The rate
// is taken on the server side. Errors: I/O errors; DataLoss when the server
// did not receive every byte sent.
absl::StatusOr<BulkResult> RunBulk(Connection conn, double seconds);

}  // namespace shunt::bench
