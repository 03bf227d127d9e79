// Command-line options of shunt-bench, parsed by hand (no flags library).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace shunt::bench {

struct Options {
  int rr_warmup = 2000;       // round trips before sampling starts (fixed)
  int rr_iterations = 50000;  // sampled round trips
  double bulk_seconds = 3.0;  // how long the bulk client writes
  std::string json_path = "bench-results.json";
  bool help = false;
};

extern const char kUsage[];

// InvalidArgumentError names the bad flag or value.
absl::StatusOr<Options> ParseOptions(int argc, char** argv);

}  // namespace shunt::bench
