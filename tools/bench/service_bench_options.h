// What the pieces of shunt-service-bench share: its options, parsed from
// the command line, and the service addresses they configure.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shunt::bench {

struct ServiceBenchOptions {
  int services = 1000;
  int connections = 10000;
  int rounds = 5;
  int backends = 1;             // pods behind every service (P2C needs at least 2)
  bool fresh_conntrack = true;  // --conntrack fresh|kept: iptables' table emptied before each round
  // --policy allow: the mesh as it is meant to run, enforce mode with a
  // TrafficTarget that lets the client in; none: permissive mode without
  // any TrafficTarget, every connection audited and reported as a would-be
  // denial (a mesh being rolled out).
  bool policy_allow = true;
  std::string json_path = "service-bench-results.json";
  std::vector<std::string> agent_flags;  // --agent-flag, e.g. --telemetry=false
  std::string only;                      // --only shunt|iptables|direct: one case, for profiling
  // --request N: every connection sends an N-byte request and reads an
  // N-byte response before it closes (0: connect + close only).
  int request_bytes = 0;
  int window = 16;  // --window: connections open at once in --request mode
  bool help = false;
};

// `shunt-service-bench --help`.
extern const char kServiceBenchUsage[];

// argv (argv[0] skipped) -> options. InvalidArgumentError naming the bad flag
// or value (see cli::FlagSet::Parse), or an unexpected positional argument.
absl::StatusOr<ServiceBenchOptions> ParseServiceBenchOptions(int argc, char** argv);

// The cluster IP of service `i` (0 <= i < services): 10.96.0.0/16.
std::string ServiceVip(int i);

}  // namespace shunt::bench
