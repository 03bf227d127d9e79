// Command-line options of shunt-bench, parsed by cli::FlagSet.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shunt::bench {

// Ports are base + 10 x round index, so rounds stay below this.
inline constexpr int kMaxRounds = 99;

struct Options {
  int rounds = 3;             // interleaved rounds; the report gives medians over them
  int rr_warmup = 2000;       // round trips before sampling starts (fixed)
  int rr_iterations = 50000;  // sampled round trips per path per round
  double bulk_seconds = 3.0;  // how long the bulk client writes
  std::string json_path = "bench-results.json";
  std::vector<std::string> agent_flags;  // passed through to shunt-agent (--agent-flag)
  bool help = false;
};

extern const char kUsage[];

// InvalidArgumentError names the bad flag or value (see cli::FlagSet::Parse).
absl::StatusOr<Options> ParseOptions(int argc, char** argv);

}  // namespace shunt::bench
