// The load of shunt-service-bench: a client that opens connections to the
// services' addresses and times them, and the servers behind them.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"
#include "test/e2e/harness/sim.h"
#include "tools/bench/service_bench_options.h"

namespace shunt::bench {

// connect() + abortive close (no TIME_WAIT to exhaust ports) of
// o.connections connections to random service addresses (or all to
// `direct_ip`:8080), with a request and response each in --request mode;
// connections per second. An error status names the connection that failed.
absl::StatusOr<double> ConnectionsPerSecond(e2e::TestNode& node, const e2e::TestPod& client,
                                            const ServiceBenchOptions& o,
                                            const std::string& direct_ip = "");

// The servers of --request mode on the calling thread, until `stop`.
void ServeRequests(const std::vector<lib::UniqueFd>& listeners, int bytes,
                   const std::atomic<bool>& stop);

}  // namespace shunt::bench
